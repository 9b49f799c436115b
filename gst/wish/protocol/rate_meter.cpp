#include "rate_meter.h"

#include <algorithm>

namespace wish {

RateMeter::RateMeter(int64_t window_us, int slots)
    : slot_us_(std::max<int64_t>(1, window_us / std::max(1, slots))), slots_(std::max(1, slots)) {}

void RateMeter::add(int64_t now_us, size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (first_us_ < 0) first_us_ = now_us;
  int64_t index = now_us / slot_us_;
  Slot &s = slots_[static_cast<size_t>(index % static_cast<int64_t>(slots_.size()))];
  if (s.index != index) s = Slot{index, 0};  // a slot of an older window is reused
  s.bytes += bytes;
}

uint64_t RateMeter::bits_per_second(int64_t now_us) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (first_us_ < 0) return 0;
  const int64_t n = static_cast<int64_t>(slots_.size());
  int64_t index = now_us / slot_us_;
  uint64_t bytes = 0;
  for (const auto &s : slots_)
    if (s.index > index - n && s.index <= index) bytes += s.bytes;
  // The slots counted cover the time since the oldest one began (the current one only up to
  // now), or since the first byte; at least one slot's time, so one burst is no peak.
  int64_t span_us = now_us - std::max(first_us_, (index - n + 1) * slot_us_);
  span_us = std::max(span_us, slot_us_);
  return bytes * 8 * 1'000'000 / static_cast<uint64_t>(span_us);
}

}  // namespace wish
