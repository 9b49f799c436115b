#include "transport/srtp_cm.h"

// SHA1_* are deprecated in OpenSSL 3 in favour of EVP, whose HMAC copies or allocates a
// context per message; HMAC from two saved SHA_CTX states is a struct copy each.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstring>

namespace wish {

namespace {

constexpr size_t kKeyLen = 16, kSaltLen = 14, kAuthKeyLen = 20;

// One outgoing SSRC: the highest packet index sent (rollover counter << 16 | sequence number).
struct Stream {
  uint32_t ssrc;
  uint64_t index;
};

}  // namespace

struct SrtpCmProtector::Impl {
  EVP_CIPHER_CTX *ctr = nullptr;  // AES-128-CTR with the session key
  SHA_CTX inner{}, outer{};       // HMAC-SHA1 after the session auth key's ipad and opad blocks
  uint8_t salt[kSaltLen] = {};
  std::vector<Stream> streams;  // a viewer has a handful of SSRCs: searched in order

  ~Impl() {
    if (ctr) EVP_CIPHER_CTX_free(ctr);
  }

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
  uint8_t key[kKeyLen], auth[kAuthKeyLen];
  if (!Impl::derive(mkey, msalt, 0x00, key, sizeof key) || !Impl::derive(mkey, msalt, 0x01, auth, sizeof auth) ||
      !Impl::derive(mkey, msalt, 0x02, impl->salt, sizeof impl->salt))
    return false;
  impl->ctr = EVP_CIPHER_CTX_new();
  if (!impl->ctr || !EVP_EncryptInit_ex(impl->ctr, EVP_aes_128_ctr(), nullptr, key, nullptr)) return false;
  uint8_t ipad[64], opad[64];
  for (size_t i = 0; i < 64; i++) {
    uint8_t k = i < kAuthKeyLen ? auth[i] : 0;
    ipad[i] = k ^ 0x36;
    opad[i] = k ^ 0x5c;
  }
  SHA1_Init(&impl->inner);
  SHA1_Update(&impl->inner, ipad, sizeof ipad);
  SHA1_Init(&impl->outer);
  SHA1_Update(&impl->outer, opad, sizeof opad);
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
  Stream *st = nullptr;
  for (Stream &s : impl_->streams)
    if (s.ssrc == ssrc) st = &s;
  if (!st) {
    impl_->streams.push_back({ssrc, 0});
    st = &impl_->streams.back();
  }
  uint64_t index = Impl::estimate(st->index, seq);
  if (index > st->index) st->index = index;

  // RFC 3711 4.1.1: IV = (session salt << 16) ^ (SSRC << 64) ^ (index << 16).
  uint8_t iv[16] = {};
  memcpy(iv, impl_->salt, kSaltLen);
  for (int i = 0; i < 4; i++) iv[4 + i] ^= static_cast<uint8_t>(ssrc >> (24 - 8 * i));
  for (int i = 0; i < 6; i++) iv[8 + i] ^= static_cast<uint8_t>(index >> (40 - 8 * i));
  int out = 0;
  if (!EVP_EncryptInit_ex(impl_->ctr, nullptr, nullptr, nullptr, iv) ||
      !EVP_EncryptUpdate(impl_->ctr, p + header, &out, p + header, static_cast<int>(n - header)))
    return false;

  // Tag: HMAC-SHA1 over the packet and the rollover counter, its first 10 bytes.
  uint32_t roc = static_cast<uint32_t>(index >> 16);
  uint8_t roc_be[4] = {uint8_t(roc >> 24), uint8_t(roc >> 16), uint8_t(roc >> 8), uint8_t(roc)};
  uint8_t md[SHA_DIGEST_LENGTH];
  SHA_CTX c = impl_->inner;
  SHA1_Update(&c, p, n);
  SHA1_Update(&c, roc_be, sizeof roc_be);
  SHA1_Final(md, &c);
  c = impl_->outer;
  SHA1_Update(&c, md, sizeof md);
  SHA1_Final(md, &c);
  memcpy(p + n, md, kTagLen);
  *len = n + kTagLen;
  return true;
}

}  // namespace wish
