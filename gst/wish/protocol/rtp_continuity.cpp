#include "rtp_continuity.h"

namespace wish {

bool parse_rtp_header(const uint8_t *p, size_t len, RtpHeader *out) {
  if (len < 12 || (p[0] >> 6) != 2) return false;
  size_t offset = 12 + 4 * static_cast<size_t>(p[0] & 0x0f);
  if (p[0] & 0x10) {  // header extension: 4 bytes, then its length in 32-bit words
    if (len < offset + 4) return false;
    offset += 4 + 4 * static_cast<size_t>((p[offset + 2] << 8) | p[offset + 3]);
  }
  if (offset > len) return false;
  out->payload_type = p[1] & 0x7f;
  out->seq = static_cast<uint16_t>((p[2] << 8) | p[3]);
  out->timestamp = (static_cast<uint32_t>(p[4]) << 24) | (static_cast<uint32_t>(p[5]) << 16) |
                   (static_cast<uint32_t>(p[6]) << 8) | p[7];
  out->ssrc = (static_cast<uint32_t>(p[8]) << 24) | (static_cast<uint32_t>(p[9]) << 16) |
              (static_cast<uint32_t>(p[10]) << 8) | p[11];
  out->payload_offset = offset;
  return true;
}

void write_rtp_header(uint8_t *p, const RtpHeader &h) {
  p[1] = static_cast<uint8_t>((p[1] & 0x80) | (h.payload_type & 0x7f));
  p[2] = static_cast<uint8_t>(h.seq >> 8);
  p[3] = static_cast<uint8_t>(h.seq);
  for (int i = 0; i < 4; i++) {
    p[4 + i] = static_cast<uint8_t>(h.timestamp >> (24 - 8 * i));
    p[8 + i] = static_cast<uint8_t>(h.ssrc >> (24 - 8 * i));
  }
}

static bool h264_key_nal(uint8_t type) { return type == 5 || type == 7; }

static bool h264_starts_keyframe(const uint8_t *p, size_t n) {
  if (n < 1) return false;
  uint8_t type = p[0] & 0x1f;
  if (type >= 1 && type <= 23) return h264_key_nal(type);
  if (type == 24) {  // STAP-A: 16-bit sizes, each followed by a NAL unit
    size_t i = 1;
    while (i + 2 < n) {
      size_t size = (static_cast<size_t>(p[i]) << 8) | p[i + 1];
      if (size == 0 || i + 2 + size > n) break;
      if (h264_key_nal(p[i + 2] & 0x1f)) return true;
      i += 2 + size;
    }
    return false;
  }
  if (type == 28) return n >= 2 && (p[1] & 0x80) && h264_key_nal(p[1] & 0x1f);  // FU-A start
  return false;
}

static bool vp8_starts_keyframe(const uint8_t *p, size_t n) {
  if (n < 1) return false;
  bool start = p[0] & 0x10, extended = p[0] & 0x80;
  if (!start || (p[0] & 0x07) != 0) return false;  // S set, partition 0
  size_t i = 1;
  if (extended) {
    if (n < 2) return false;
    uint8_t x = p[1];
    i = 2;
    if (x & 0x80) {  // I: picture id, 7 or 15 bits
      if (i >= n) return false;
      i += (p[i] & 0x80) ? 2 : 1;
    }
    if (x & 0x40) i++;          // L: TL0PICIDX
    if (x & 0x30) i++;          // T or K: TID/Y/KEYIDX
  }
  return i < n && (p[i] & 0x01) == 0;  // P bit of the VP8 payload header: 0 = key frame
}

static bool vp9_starts_keyframe(const uint8_t *p, size_t n) {
  return n >= 1 && (p[0] & 0x08) && !(p[0] & 0x40);  // B (frame start) without P (inter-predicted)
}

bool rtp_starts_keyframe(std::string_view encoding, const uint8_t *packet, size_t len) {
  RtpHeader h;
  if (!parse_rtp_header(packet, len, &h)) return false;
  const uint8_t *payload = packet + h.payload_offset;
  size_t n = len - h.payload_offset;
  if (packet[0] & 0x20 && n > 0) {  // padding
    size_t pad = packet[len - 1];
    n = pad <= n ? n - pad : 0;
  }
  if (encoding == "H264") return h264_starts_keyframe(payload, n);
  if (encoding == "VP8") return vp8_starts_keyframe(payload, n);
  if (encoding == "VP9") return vp9_starts_keyframe(payload, n);
  return true;
}

RtpContinuity::Verdict RtpContinuity::process(const RtpHeader &in, bool keyframe_start, int64_t now_us, RtpHeader *out) {
  if (started_ && in.ssrc != source_ssrc_) rebase_ = true;  // the source restarted
  if (rebase_) {
    if (wait_for_keyframe_ && !keyframe_start) return Verdict::Drop;
    if (!started_) {
      seq_delta_ = 0;
      ts_delta_ = 0;
    } else {
      uint16_t seq = static_cast<uint16_t>(last_seq_ + 1);
      int64_t elapsed = now_us > last_time_us_ ? now_us - last_time_us_ : 0;
      uint64_t ticks = static_cast<uint64_t>(elapsed) * clock_rate_ / 1000000;
      uint32_t ts = last_ts_ + static_cast<uint32_t>(ticks ? ticks : 1);
      seq_delta_ = static_cast<uint16_t>(seq - in.seq);
      ts_delta_ = ts - in.timestamp;
    }
    source_ssrc_ = in.ssrc;
    rebase_ = false;
  }
  *out = in;
  out->ssrc = ssrc_;
  out->payload_type = payload_type_;
  out->seq = static_cast<uint16_t>(in.seq + seq_delta_);
  out->timestamp = in.timestamp + ts_delta_;
  // Only a newer packet moves the point the next source continues from.
  if (!started_ || static_cast<int16_t>(out->seq - last_seq_) > 0) {
    last_seq_ = out->seq;
    last_ts_ = out->timestamp;
    last_time_us_ = now_us;
  }
  started_ = true;
  sent_++;
  bool same = out->ssrc == in.ssrc && out->payload_type == in.payload_type && seq_delta_ == 0 && ts_delta_ == 0;
  return same ? Verdict::Unchanged : Verdict::Rewrite;
}

}  // namespace wish
