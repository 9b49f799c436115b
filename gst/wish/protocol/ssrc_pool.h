// SSRCs for the outputs a server sends, taken again once their session is gone.
//
// webrtcbin turns each a=ssrc line of its local description into a caps field named after
// the SSRC ("ssrc-<n>-cname", "ssrc-<n>-msid"; gst_sdp_media_attributes_to_caps) and keys
// its RTX map by the SSRC, and GLib never frees the quark of a field name: a new random
// SSRC for every viewer made the process keep a few hundred bytes for every viewer that
// ever came. Taken from this pool, the SSRCs (and their quarks) are bounded by the most
// outputs served at once. Outputs served at the same time still get different SSRCs; each
// viewer is an RTP session of its own, so a later one getting a gone one's SSRC is no
// collision.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <vector>

namespace wish {

class SsrcPool {
public:
  // random: where new SSRCs come from (tests give their own).
  explicit SsrcPool(std::function<uint32_t()> random);

  // The one pool of the process, like the quarks it saves.
  static SsrcPool &shared();

  // An SSRC no one holds (never 0): a given-back one if any, else a new random one.
  uint32_t take();
  void give(uint32_t ssrc);

  size_t held() const;
  size_t available() const;  // given back, not taken again yet

private:
  std::function<uint32_t()> random_;
  mutable std::mutex mutex_;  // guards free_ and used_
  std::vector<uint32_t> free_;
  std::set<uint32_t> used_;
};

// The SSRCs one session holds, given back to the shared pool when it ends.
class SsrcLease {
public:
  SsrcLease() = default;
  SsrcLease(const SsrcLease &) = delete;
  SsrcLease &operator=(const SsrcLease &) = delete;
  ~SsrcLease();
  uint32_t take();

private:
  std::vector<uint32_t> held_;
};

}  // namespace wish
