// The rate something arrives at, over a sliding window: what a simulcast encoding's layer
// reports as its bitrate. Plain C++; add() and rate() may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace wish {

class RateMeter {
public:
  // The window is cut into `slots` parts: the oldest part leaves at once as time goes on.
  explicit RateMeter(int64_t window_us = 2'000'000, int slots = 20);
  void add(int64_t now_us, size_t bytes);
  // Bits per second over the window ending now: over the time since the first byte while
  // that is shorter (at least one slot's), 0 before any byte or after a silent window.
  uint64_t bits_per_second(int64_t now_us) const;

private:
  const int64_t slot_us_;
  mutable std::mutex mutex_;
  struct Slot {
    int64_t index = -1;  // now_us / slot_us_ of the bytes it holds
    uint64_t bytes = 0;
  };
  std::vector<Slot> slots_;
  int64_t first_us_ = -1;
};

}  // namespace wish
