// The server's choice of a viewer's video layer (the layer extension's "automatic" mode): down
// a layer when the viewer's connection shows congestion for two samples in a row (about 2 s),
// up a layer after a quiet while, waiting twice as long after an attempt up that failed.
// Congestion is loss the viewer reports, or the share of packets it asks for again (NACK).
#pragma once

#include <cstdint>

namespace wish {

class LayerControl {
public:
  static constexpr double kCongested = 0.05;      // loss or NACK share above this
  static constexpr double kClear = 0.01;          // ... and below this counts as quiet
  static constexpr int kDownAfter = 2;            // congested samples in a row
  static constexpr int kUpAfter = 8;              // quiet samples in a row, at first
  static constexpr int kMaxUpAfter = 64;
  static constexpr int kFailedUpWithin = 10;      // a down this soon after an up: that up failed

  struct Sample {
    uint64_t packets = 0, nacks = 0;  // sent to the viewer / asked for again, so far
    double fraction_lost = -1;        // the viewer's last report (-1: none)
  };
  // One sample a second or so; the layer index to show now (0 the largest, layers - 1 the
  // smallest).
  int update(const Sample &s, int current, int layers);
  void reset() { *this = LayerControl(); }

private:
  uint64_t last_packets_ = 0, last_nacks_ = 0;
  bool have_last_ = false;
  int congested_ = 0, quiet_ = 0;
  int up_after_ = kUpAfter;
  int since_up_ = -1;  // samples since the last step up (-1: none yet)
};

}  // namespace wish
