// A WHIP publisher built from webrtcbin in the test process: test pattern and tone encoded
// (VP8 or H.264, Opus), offered sendonly, gathered on 127.0.0.1.
#pragma once

#include <gst/gst.h>

#include <mutex>
#include <string>
#include <vector>

#include "webrtc_utils.h"

namespace wish_test {

struct PublisherOptions {
  std::string video = "vp8";  // "vp8", "h264" or "" for none
  bool audio = true;
  int keyframe_interval = 30;  // frames
  int video_tracks = 1;        // >1 to provoke 422
  std::string pattern = "ball";  // videotestsrc pattern
  std::string msid;              // a=msid stream id of its tracks ("" : webrtcbin's own)
};

// webrtcbin offers a sink pad's m-line with what the caps of the media reaching it add (fmtp,
// a=ssrc): waits (at most `caps_wait_us`) until `pads` sink pads (0: all there are) have caps,
// then makes and applies the offer (at most 10 s). What create_local_offer gave.
wish::Negotiated offer_once_media_flows(GstElement *webrtc, int pads, gint64 caps_wait_us);

class TestPublisher {
public:
  explicit TestPublisher(const PublisherOptions &opts = {});
  ~TestPublisher();
  // Full offer, candidates included, made once media reaches webrtcbin: webrtcbin writes the
  // fmtp (H.264 packetization-mode) and a=ssrc msid lines from the caps of its pads.
  std::string create_offer();
  bool set_remote_answer(const std::string &sdp);
  bool restart_ice(std::string *ufrag, std::string *pwd, std::vector<std::string> *candidates);
  bool apply_remote_ice(const std::string &ufrag, const std::string &pwd, const std::vector<std::string> &candidates);
  guint keyframe_requests() const;  // force-key-unit events that reached the encoder

private:
  GstElement *pipeline_ = nullptr;
  GstElement *webrtc_ = nullptr;
  mutable std::mutex mutex_;
  std::vector<std::string> candidates_;
  guint keyframe_requests_ = 0;
};

}  // namespace wish_test
