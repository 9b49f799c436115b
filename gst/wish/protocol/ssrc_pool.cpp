#include "ssrc_pool.h"

#include <random>

namespace wish {

SsrcPool::SsrcPool(std::function<uint32_t()> random) : random_(std::move(random)) {}

SsrcPool &SsrcPool::shared() {
  // Never destroyed: sessions may end after static destructors ran.
  static SsrcPool *pool = new SsrcPool([] {
    static std::mutex mutex;
    static std::mt19937 engine{std::random_device{}()};
    std::lock_guard<std::mutex> lock(mutex);
    return static_cast<uint32_t>(engine());
  });
  return *pool;
}

uint32_t SsrcPool::take() {
  std::lock_guard<std::mutex> lock(mutex_);
  uint32_t ssrc;
  if (!free_.empty()) {
    ssrc = free_.back();
    free_.pop_back();
  } else {
    do ssrc = random_();
    while (ssrc == 0 || used_.count(ssrc));
  }
  used_.insert(ssrc);
  return ssrc;
}

void SsrcPool::give(uint32_t ssrc) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (used_.erase(ssrc)) free_.push_back(ssrc);
}

size_t SsrcPool::held() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return used_.size();
}

size_t SsrcPool::available() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return free_.size();
}

SsrcLease::~SsrcLease() {
  for (uint32_t s : held_) SsrcPool::shared().give(s);
}

uint32_t SsrcLease::take() {
  held_.push_back(SsrcPool::shared().take());
  return held_.back();
}

}  // namespace wish
