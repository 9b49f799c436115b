#include "held_packets.h"

#include "protocol/rtp_continuity.h"
#include "protocol/simulcast.h"

namespace wish {

void HeldPackets::add(GstBuffer *buffer, const std::string &encoding, const uint8_t *data, size_t size, int *width,
                      int *height) {
  rtp_picture_size(data, size, encoding, width, height);
  RtpHeader h;
  if (!parse_rtp_header(data, size, &h)) return;
  // A key frame may start in several packets of one picture (an H.264 SPS and PPS, then the
  // IDR slice): the hold starts again only with a new picture.
  bool same_picture = !packets_.empty() && h.timestamp == timestamp_;
  if (!same_picture && rtp_starts_keyframe(encoding, data, size)) {
    clear();
    timestamp_ = h.timestamp;
  } else if (packets_.empty()) {
    return;  // no key frame to start from
  } else if (packets_.size() >= max_packets_) {
    clear();
    return;
  }
  packets_.push_back(gst_buffer_ref(buffer));
}

std::vector<GstBuffer *> HeldPackets::take_marked() {
  std::vector<GstBuffer *> out(packets_.begin(), packets_.begin() + std::min(mark_, packets_.size()));
  packets_.erase(packets_.begin(), packets_.begin() + out.size());
  clear();
  return out;
}

void HeldPackets::clear() {
  for (GstBuffer *b : packets_) gst_buffer_unref(b);
  packets_.clear();
  mark_ = 0;
}

}  // namespace wish
