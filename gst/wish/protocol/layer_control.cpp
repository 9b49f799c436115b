#include "layer_control.h"

#include <algorithm>

namespace wish {

int LayerControl::update(const Sample &s, int current, int layers) {
  current = std::clamp(current, 0, std::max(layers - 1, 0));
  double nack_share = 0;
  if (have_last_ && s.packets > last_packets_)
    nack_share = static_cast<double>(s.nacks - std::min(s.nacks, last_nacks_)) / (s.packets - last_packets_);
  bool first = !have_last_;
  have_last_ = true;
  last_packets_ = s.packets;
  last_nacks_ = s.nacks;
  if (first || layers < 2) return current;
  if (since_up_ >= 0) since_up_++;
  bool congested = nack_share > kCongested || s.fraction_lost > kCongested;
  bool quiet = nack_share < kClear && s.fraction_lost < kClear;
  if (congested) {
    quiet_ = 0;
    if (++congested_ < kDownAfter || current == layers - 1) return current;
    congested_ = 0;
    if (since_up_ >= 0 && since_up_ <= kFailedUpWithin) up_after_ = std::min(up_after_ * 2, kMaxUpAfter);
    since_up_ = -1;
    return current + 1;
  }
  congested_ = 0;
  if (!quiet) {
    quiet_ = 0;
    return current;
  }
  if (since_up_ > kFailedUpWithin) up_after_ = kUpAfter;  // the last step up held
  if (++quiet_ < up_after_ || current == 0) return current;
  quiet_ = 0;
  since_up_ = 0;
  return current - 1;
}

}  // namespace wish
