// RTP header rules for output slots: where a keyframe starts, and one outgoing stream kept
// continuous (SSRC, sequence numbers, timestamps) while its source is switched or restarts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace wish {

struct RtpHeader {
  uint8_t payload_type = 0;
  uint16_t seq = 0;
  uint32_t timestamp = 0;
  uint32_t ssrc = 0;
  size_t payload_offset = 0;  // after CSRCs and the header extension
};

// Parses the fixed header of an RTP packet (version 2); false for anything shorter or else.
bool parse_rtp_header(const uint8_t *packet, size_t len, RtpHeader *out);
// Writes payload type (marker kept), sequence number, timestamp and SSRC.
void write_rtp_header(uint8_t *packet, const RtpHeader &h);

// Whether the packet begins a picture a decoder can start from: an H.264 IDR or SPS (single
// NAL, STAP-A, or the first FU-A fragment), a VP8 key frame's first partition, a VP9 frame
// start that is not inter-predicted. Other encodings (audio) always count as a start.
bool rtp_starts_keyframe(std::string_view encoding, const uint8_t *packet, size_t len);

// One outgoing RTP stream with a fixed SSRC and payload type, fed by a source that can
// change. After a change (switch_source(), or a new SSRC from the source) the stream waits
// for a keyframe when asked to, then goes on one sequence number after the last packet sent,
// its timestamps advanced by the time that passed. While nothing changes, input sequence
// numbers and timestamps pass through with a fixed offset (zero for the first source).
class RtpContinuity {
public:
  RtpContinuity(uint32_t ssrc, uint8_t payload_type, uint32_t clock_rate, bool wait_for_keyframe)
      : ssrc_(ssrc), payload_type_(payload_type), clock_rate_(clock_rate), wait_for_keyframe_(wait_for_keyframe) {}

  void switch_source() { rebase_ = true; }

  enum class Verdict { Drop, Unchanged, Rewrite };
  // Decides what happens to a packet that arrived at now_us (monotonic). With Rewrite, *out
  // is the header to write; with Unchanged the packet already carries it.
  Verdict process(const RtpHeader &in, bool keyframe_start, int64_t now_us, RtpHeader *out);

  bool waiting_for_keyframe() const { return rebase_ && wait_for_keyframe_; }
  uint32_t ssrc() const { return ssrc_; }
  uint64_t sent() const { return sent_; }

private:
  uint32_t ssrc_;
  uint8_t payload_type_;
  uint32_t clock_rate_;
  bool wait_for_keyframe_;
  bool rebase_ = true;     // the next packet starts a source (the first one too)
  bool started_ = false;   // a packet has been sent
  uint32_t source_ssrc_ = 0;
  uint16_t seq_delta_ = 0;
  uint32_t ts_delta_ = 0;
  uint16_t last_seq_ = 0;
  uint32_t last_ts_ = 0;
  int64_t last_time_us_ = 0;
  uint64_t sent_ = 0;
};

}  // namespace wish
