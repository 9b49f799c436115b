// When a relay asks a publisher for key frames: the requests of the encodings of one sender
// (one video, or the simulcast encodings of one), paced and coalesced.
//
// Senders ignore requests that come too soon after the previous one: libwebrtc (Chromium)
// drops a PLI/FIR that arrives within 300 ms of the last one it honoured, for all encodings
// of the sender at once, and makes a key frame of every encoding for the one it honours. A
// viewer whose request met that interval waited for the next request or the sender's own
// key frame, seconds later. So requests leave at most once per min_interval (more than 300 ms
// with the up to 100 ms rtpsession may hold an early RTCP packet); one asked for
// meanwhile is kept and leaves when the interval ends, unless a key frame of its encoding
// starts before (it reaches everyone who asked by then). A request a key frame does not
// answer within answer_timeout (lost, or ignored all the same) goes again, max_attempts in
// all.
#pragma once

#include <cstdint>
#include <vector>

namespace wish {

class KeyframePacer {
public:
  struct Config {
    int64_t min_interval_us = 500 * 1000;
    int64_t answer_timeout_us = 1000 * 1000;
    int max_attempts = 4;
  };
  KeyframePacer() = default;
  explicit KeyframePacer(Config config) : config_(config) {}

  // A new encoding of the sender; returns its index.
  int add_encoding();
  // The sender's pacing from now on (Config::min_interval_us).
  void set_min_interval_us(int64_t us) { config_.min_interval_us = us; }
  // Someone needs a key frame of `encoding` starting after now_us. Returns the encodings to
  // ask for now (empty when the request waits or one under way covers it).
  std::vector<int> want(int encoding, int64_t now_us);
  // A key frame of `encoding` started: whoever wanted one before has it.
  void keyframe(int encoding);
  // True while a key frame of `encoding` is wanted (the relay looks for one then).
  bool wanted(int encoding) const;
  // The encodings to ask for now, once next_poll_us() has come.
  std::vector<int> poll(int64_t now_us);
  // When poll() has something to send, at the earliest; -1 when nothing is wanted.
  int64_t next_poll_us() const;
  // Encodings given up on (max_attempts requests unanswered) so far.
  uint64_t given_up() const { return given_up_; }

private:
  struct Encoding {
    bool wanted = false;
    int64_t sent_us = -1;  // the last request for the current want; -1: none yet
    int attempts = 0;
  };
  int64_t due_us(const Encoding &e) const;

  Config config_;
  std::vector<Encoding> encodings_;
  int64_t last_sent_us_ = -1;
  uint64_t given_up_ = 0;
};

}  // namespace wish
