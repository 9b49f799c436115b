// SRTP_AES128_CM_HMAC_SHA1_80 protection of outgoing RTP and RTCP (RFC 3711) done with OpenSSL:
// AES-128 in counter mode (AES-NI) and HMAC-SHA1 from precomputed pad states. Debian's
// libsrtp2 does this profile's cryptography through NSS at about 5 us per 1200-byte packet;
// this takes about a fifth of that (bench/viewer_send), for the profile webrtcbin peers and
// some browsers negotiate, and holds no libsrtp2 context (some 17 kB a viewer). The output is
// libsrtp2's, byte for byte (tests/protocol/test_dtls_srtp.cpp), including its guess of the
// rollover counter and its SRTCP index (from 1 for each SSRC); unlike libsrtp2 it never refuses
// an RTP packet more than its replay window behind (a late retransmission). It also unprotects
// the SRTCP a viewer sends (receiver reports, NACK, PLI).
// Not thread-safe: one caller at a time (the viewer's send lock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace wish {

class SrtpCmProtector {
public:
  static constexpr size_t kTagLen = 10;
  SrtpCmProtector();
  ~SrtpCmProtector();
  SrtpCmProtector(const SrtpCmProtector &) = delete;
  SrtpCmProtector &operator=(const SrtpCmProtector &) = delete;

  // master: the 16-byte master key followed by the 14-byte master salt.
  bool init(const std::vector<uint8_t> &master);
  // In place: *len grows by kTagLen; capacity is the buffer's size. False for what is not an
  // RTP packet or has no room.
  bool protect_rtp(uint8_t *packet, size_t *len, size_t capacity);
  // The same for an RTCP compound: *len grows by kRtcpTrailerLen (E flag and index, then tag).
  static constexpr size_t kRtcpTrailerLen = 4 + kTagLen;
  bool protect_rtcp(uint8_t *packet, size_t *len, size_t capacity);
  // With the peer's master key: an SRTCP packet in place (*len shrinks). False when its tag
  // is wrong or its index was seen (or is more than 64 behind the highest seen of its SSRC).
  bool unprotect_rtcp(uint8_t *packet, size_t *len);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wish
