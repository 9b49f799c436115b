#include "transport/srtp_cm.h"

// SHA1_* are deprecated in OpenSSL 3 in favour of EVP, whose HMAC copies or allocates a
// context per message; HMAC from two saved SHA_CTX states is a struct copy each.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstring>

namespace wish {

namespace {

constexpr size_t kKeyLen = 16, kSaltLen = 14, kAuthKeyLen = 20;

// One SSRC. Sending: the highest packet index sent (rollover counter << 16 | sequence number)
// and the last SRTCP index. Receiving: the highest SRTCP index and which of the 64 up to it came.
struct Stream {
  uint32_t ssrc;
  uint64_t index;
  uint32_t rtcp_index;
  uint64_t rtcp_seen;
};

// Session keys of one direction and kind (RTP or RTCP).
struct Keys {
  EVP_CIPHER_CTX *ctr = nullptr;  // AES-128-CTR with the session key
  SHA_CTX inner{}, outer{};       // HMAC-SHA1 after the session auth key's ipad and opad blocks
  uint8_t salt[kSaltLen] = {};
  ~Keys() {
    if (ctr) EVP_CIPHER_CTX_free(ctr);
  }
};

}  // namespace

struct SrtpCmProtector::Impl {
  Keys rtp, rtcp;
  std::vector<Stream> streams;  // a viewer has a handful of SSRCs: searched in order

  // RFC 3711 4.3.3: the AES-CM PRF of the master key, IV = (master salt ^ label << 48) << 16.
  static bool derive(const uint8_t *key, const uint8_t *salt, uint8_t label, uint8_t *out, size_t n) {
    uint8_t iv[16] = {};
    memcpy(iv, salt, kSaltLen);
    iv[7] ^= label;
    uint8_t zeros[32] = {};
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0;
    bool ok = c && EVP_EncryptInit_ex(c, EVP_aes_128_ctr(), nullptr, key, iv) &&
              EVP_EncryptUpdate(c, out, &len, zeros, static_cast<int>(n));
    EVP_CIPHER_CTX_free(c);
    return ok;
  }

  // The session keys of labels first, first + 1, first + 2 (encryption, authentication, salt).
  static bool make_keys(const uint8_t *mkey, const uint8_t *msalt, uint8_t first, Keys *k) {
    uint8_t key[kKeyLen], auth[kAuthKeyLen];
    if (!derive(mkey, msalt, first, key, sizeof key) || !derive(mkey, msalt, first + 1, auth, sizeof auth) ||
        !derive(mkey, msalt, first + 2, k->salt, sizeof k->salt))
      return false;
    k->ctr = EVP_CIPHER_CTX_new();
    if (!k->ctr || !EVP_EncryptInit_ex(k->ctr, EVP_aes_128_ctr(), nullptr, key, nullptr)) return false;
    uint8_t ipad[64], opad[64];
    for (size_t i = 0; i < 64; i++) {
      uint8_t b = i < kAuthKeyLen ? auth[i] : 0;
      ipad[i] = b ^ 0x36;
      opad[i] = b ^ 0x5c;
    }
    SHA1_Init(&k->inner);
    SHA1_Update(&k->inner, ipad, sizeof ipad);
    SHA1_Init(&k->outer);
    SHA1_Update(&k->outer, opad, sizeof opad);
    return true;
  }

  Stream &stream(uint32_t ssrc) {
    for (Stream &s : streams)
      if (s.ssrc == ssrc) return s;
    streams.push_back({ssrc, 0, 0, 0});
    return streams.back();
  }

  // AES-CM over data with IV = (salt << 16) ^ (SSRC << 64) ^ (index << 16) (RFC 3711 4.1.1).
  static bool encrypt(Keys &k, uint32_t ssrc, uint64_t index, uint8_t *data, size_t n) {
    uint8_t iv[16] = {};
    memcpy(iv, k.salt, kSaltLen);
    for (int i = 0; i < 4; i++) iv[4 + i] ^= static_cast<uint8_t>(ssrc >> (24 - 8 * i));
    for (int i = 0; i < 6; i++) iv[8 + i] ^= static_cast<uint8_t>(index >> (40 - 8 * i));
    int out = 0;
    return EVP_EncryptInit_ex(k.ctr, nullptr, nullptr, nullptr, iv) &&
           EVP_EncryptUpdate(k.ctr, data, &out, data, static_cast<int>(n));
  }

  // The first kTagLen bytes of HMAC-SHA1 over data and then extra (4 bytes), written to tag.
  static void tag(const Keys &k, const uint8_t *data, size_t n, const uint8_t *extra, uint8_t *out) {
    uint8_t md[SHA_DIGEST_LENGTH];
    SHA_CTX c = k.inner;
    SHA1_Update(&c, data, n);
    if (extra) SHA1_Update(&c, extra, 4);
    SHA1_Final(md, &c);
    c = k.outer;
    SHA1_Update(&c, md, sizeof md);
    SHA1_Final(md, &c);
    memcpy(out, md, kTagLen);
  }

  // The packet index of sequence number seq, guessed from the highest sent as libsrtp2 does
  // (srtp_rdbx_estimate_index: no rollover guess while the index is below 2^15).
  static uint64_t estimate(uint64_t highest, uint16_t seq) {
    if (highest <= 0x8000) return seq;
    uint32_t roc = static_cast<uint32_t>(highest >> 16);
    int local_seq = static_cast<uint16_t>(highest), s = seq;
    if (local_seq < 0x8000) {
      if (s - local_seq > 0x8000) roc--;
    } else if (local_seq - 0x8000 > s) {
      roc++;
    }
    return (uint64_t(roc) << 16) | seq;
  }
};

SrtpCmProtector::SrtpCmProtector() = default;
SrtpCmProtector::~SrtpCmProtector() = default;

bool SrtpCmProtector::init(const std::vector<uint8_t> &master) {
  if (master.size() != kKeyLen + kSaltLen) return false;
  auto impl = std::make_unique<Impl>();
  const uint8_t *mkey = master.data(), *msalt = master.data() + kKeyLen;
  if (!Impl::make_keys(mkey, msalt, 0x00, &impl->rtp) || !Impl::make_keys(mkey, msalt, 0x03, &impl->rtcp)) return false;
  impl_ = std::move(impl);
  return true;
}

bool SrtpCmProtector::protect_rtp(uint8_t *p, size_t *len, size_t capacity) {
  size_t n = *len;
  if (!impl_ || n < 12 || capacity < n + kTagLen || (p[0] >> 6) != 2) return false;
  size_t header = 12 + 4 * (p[0] & 0x0f);
  if (p[0] & 0x10) {  // header extension: 4 bytes, then its length in 32-bit words
    if (n < header + 4) return false;
    header += 4 + 4 * ((size_t(p[header + 2]) << 8) | p[header + 3]);
  }
  if (n < header) return false;
  uint16_t seq = static_cast<uint16_t>((p[2] << 8) | p[3]);
  uint32_t ssrc = (uint32_t(p[8]) << 24) | (uint32_t(p[9]) << 16) | (uint32_t(p[10]) << 8) | p[11];
  Stream &st = impl_->stream(ssrc);
  uint64_t index = Impl::estimate(st.index, seq);
  if (index > st.index) st.index = index;
  if (!Impl::encrypt(impl_->rtp, ssrc, index, p + header, n - header)) return false;
  // The tag covers the packet and the rollover counter.
  uint32_t roc = static_cast<uint32_t>(index >> 16);
  uint8_t roc_be[4] = {uint8_t(roc >> 24), uint8_t(roc >> 16), uint8_t(roc >> 8), uint8_t(roc)};
  Impl::tag(impl_->rtp, p, n, roc_be, p + n);
  *len = n + kTagLen;
  return true;
}

bool SrtpCmProtector::protect_rtcp(uint8_t *p, size_t *len, size_t capacity) {
  size_t n = *len;
  if (!impl_ || n < 8 || capacity < n + kRtcpTrailerLen || (p[0] >> 6) != 2) return false;
  uint32_t ssrc = (uint32_t(p[4]) << 24) | (uint32_t(p[5]) << 16) | (uint32_t(p[6]) << 8) | p[7];
  Stream &st = impl_->stream(ssrc);
  uint32_t index = st.rtcp_index = (st.rtcp_index + 1) & 0x7fffffff;
  // Everything after the first header and SSRC encrypted, then E flag | index, then the tag
  // over all of it (RFC 3711 3.4).
  if (!Impl::encrypt(impl_->rtcp, ssrc, index, p + 8, n - 8)) return false;
  uint32_t e = 0x80000000u | index;
  uint8_t *trailer = p + n;
  for (int i = 0; i < 4; i++) trailer[i] = static_cast<uint8_t>(e >> (24 - 8 * i));
  Impl::tag(impl_->rtcp, p, n + 4, nullptr, p + n + 4);
  *len = n + kRtcpTrailerLen;
  return true;
}

bool SrtpCmProtector::unprotect_rtcp(uint8_t *p, size_t *len) {
  size_t n = *len;
  if (!impl_ || n < 8 + kRtcpTrailerLen) return false;
  size_t body = n - kTagLen;  // through the E flag and index
  uint8_t tag[kTagLen];
  Impl::tag(impl_->rtcp, p, body, nullptr, tag);
  if (CRYPTO_memcmp(tag, p + body, kTagLen) != 0) return false;
  const uint8_t *t = p + body - 4;
  uint32_t e = (uint32_t(t[0]) << 24) | (uint32_t(t[1]) << 16) | (uint32_t(t[2]) << 8) | t[3];
  uint32_t index = e & 0x7fffffff;
  uint32_t ssrc = (uint32_t(p[4]) << 24) | (uint32_t(p[5]) << 16) | (uint32_t(p[6]) << 8) | p[7];
  Stream &st = impl_->stream(ssrc);  // after the tag: no stream for what is not the peer's
  uint32_t behind = st.rtcp_index - index;
  if (st.rtcp_seen && index <= st.rtcp_index && (behind >= 64 || (st.rtcp_seen >> behind) & 1)) return false;
  if ((e & 0x80000000u) && !Impl::encrypt(impl_->rtcp, ssrc, index, p + 8, body - 4 - 8)) return false;
  if (!st.rtcp_seen || index > st.rtcp_index) {
    uint32_t ahead = st.rtcp_seen ? index - st.rtcp_index : 64;
    st.rtcp_seen = (ahead >= 64 ? 0 : st.rtcp_seen << ahead) | 1;
    st.rtcp_index = index;
  } else {
    st.rtcp_seen |= uint64_t(1) << behind;
  }
  *len = body - 4;
  return true;
}

}  // namespace wish
