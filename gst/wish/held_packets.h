// The RTP packets of one simulcast encoding from its latest key frame on, held while
// whipserversrc's pads choose the encoding they take (the largest, known only once each
// encoding's key frame told its size). The chosen one then starts on the key frame it already
// sent: asking the publisher for another one there would come close to the key frame requests
// of the first viewers, and a sender ignores a request that soon after the last one.
#pragma once

#include <gst/gst.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace wish {

class HeldPackets {
public:
  explicit HeldPackets(size_t max_packets) : max_packets_(max_packets) {}
  ~HeldPackets() { clear(); }
  HeldPackets(const HeldPackets &) = delete;
  HeldPackets &operator=(const HeldPackets &) = delete;

  // A packet of the encoding (`encoding` the a=rtpmap name; `data` its mapped bytes): a key
  // frame's first packet starts the hold again, later ones join it (a reference taken), up to
  // max_packets (then nothing is held until the next key frame). Sets the picture size the
  // packet tells, if any.
  void add(GstBuffer *buffer, const std::string &encoding, const uint8_t *data, size_t size, int *width,
           int *height);
  // Marks the packets held so far: those before the packet being looked at.
  void mark() { mark_ = packets_.size(); }
  // True when a key frame is held (the packets start with one).
  bool holds_keyframe() const { return !packets_.empty(); }
  // The packets before the mark, references passed; the others are let go.
  std::vector<GstBuffer *> take_marked();
  void clear();

private:
  const size_t max_packets_;
  std::vector<GstBuffer *> packets_;
  size_t mark_ = 0;
  uint32_t timestamp_ = 0;  // the held key frame's RTP timestamp
};

}  // namespace wish
