#include "keyframe_pacer.h"

#include <algorithm>

namespace wish {

int KeyframePacer::add_encoding() {
  encodings_.emplace_back();
  return static_cast<int>(encodings_.size()) - 1;
}

std::vector<int> KeyframePacer::want(int encoding, int64_t now_us) {
  if (encoding < 0 || encoding >= static_cast<int>(encodings_.size())) return {};
  Encoding &e = encodings_[encoding];
  if (!e.wanted) {
    e.wanted = true;
    e.sent_us = -1;
    e.attempts = 0;
  }
  // Still wanted after a request went out: the key frame it brings is not here yet and will
  // reach this one too.
  return poll(now_us);
}

void KeyframePacer::keyframe(int encoding) {
  if (encoding < 0 || encoding >= static_cast<int>(encodings_.size())) return;
  encodings_[encoding].wanted = false;
}

bool KeyframePacer::wanted(int encoding) const {
  return encoding >= 0 && encoding < static_cast<int>(encodings_.size()) && encodings_[encoding].wanted;
}

// When a wanted encoding's request may go: its first at once, again once unanswered; never
// within min_interval of the last request of the sender.
int64_t KeyframePacer::due_us(const Encoding &e) const {
  int64_t due = e.sent_us < 0 ? 0 : e.sent_us + config_.answer_timeout_us;
  if (last_sent_us_ >= 0) due = std::max(due, last_sent_us_ + config_.min_interval_us);
  return due;
}

std::vector<int> KeyframePacer::poll(int64_t now_us) {
  std::vector<int> out;
  for (size_t i = 0; i < encodings_.size(); i++) {
    Encoding &e = encodings_[i];
    if (!e.wanted || due_us(e) > now_us) continue;
    if (e.attempts >= config_.max_attempts) {
      e.wanted = false;
      given_up_++;
      continue;
    }
    out.push_back(static_cast<int>(i));
  }
  // All that are due leave together (one RTCP packet can carry them all).
  for (int i : out) {
    encodings_[i].sent_us = now_us;
    encodings_[i].attempts++;
  }
  if (!out.empty()) last_sent_us_ = now_us;
  return out;
}

int64_t KeyframePacer::next_poll_us() const {
  int64_t next = -1;
  for (const Encoding &e : encodings_) {
    if (!e.wanted) continue;
    int64_t due = due_us(e);
    if (next < 0 || due < next) next = due;
  }
  return next;
}

}  // namespace wish
