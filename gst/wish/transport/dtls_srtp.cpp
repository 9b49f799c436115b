#include "dtls_srtp.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <srtp2/srtp.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <mutex>

namespace wish {

namespace {

template <typename T, void (*Free)(T *)>
struct OpenSslFree {
  void operator()(T *p) const { Free(p); }
};
using Bio = std::unique_ptr<BIO, OpenSslFree<BIO, BIO_free_all>>;
using Cert = std::unique_ptr<X509, OpenSslFree<X509, X509_free>>;
using PKey = std::unique_ptr<EVP_PKEY, OpenSslFree<EVP_PKEY, EVP_PKEY_free>>;
using SslCtx = std::unique_ptr<SSL_CTX, OpenSslFree<SSL_CTX, SSL_CTX_free>>;

// Path MTU we assume for handshake messages: what fits in a datagram on any path WebRTC uses
// (ICE/TURN overhead included), as browsers do.
constexpr long kDtlsMtu = 1200;

std::string openssl_error(const char *what) {
  std::string out = what;
  unsigned long e;
  while ((e = ERR_get_error())) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += ": ";
    out += buf;
  }
  return out;
}

std::string sha256_fingerprint(X509 *cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (!X509_digest(cert, EVP_sha256(), md, &len)) return {};
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned i = 0; i < len; i++) {
    if (i) out += ':';
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

// "sha-256 ab:cd" -> "AB:CD": the SDP's form, whatever its case.
std::string normalize_fingerprint(std::string fp) {
  std::string lower;
  for (char c : fp) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.rfind("sha-256", 0) == 0) fp = fp.substr(7);
  std::string out;
  for (char c : fp)
    if (!std::isspace(static_cast<unsigned char>(c))) out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

const char *srtp_profile_name(SrtpProfile p) {
  switch (p) {
    case SrtpProfile::Aes128CmSha1_80:
      return "SRTP_AES128_CM_SHA1_80";
    case SrtpProfile::AeadAes128Gcm:
      return "SRTP_AEAD_AES_128_GCM";
    default:
      return "none";
  }
}

// The callbacks OpenSSL makes into a session. Our BIO passes each datagram whole: DTLS needs
// datagram boundaries, which a memory BIO would lose when a flight has several records.
struct DtlsCallbacks {
  static DtlsSession *session(BIO *b) { return static_cast<DtlsSession *>(BIO_get_data(b)); }

  static int write(BIO *b, const char *data, int len) {
    DtlsSession *s = session(b);
    if (len > 0 && s->send_) s->send_(reinterpret_cast<const uint8_t *>(data), static_cast<size_t>(len));
    return len;
  }
  static int read(BIO *b, char *out, int size) {
    DtlsSession *s = session(b);
    BIO_clear_retry_flags(b);
    if (!s->pending_) {
      BIO_set_retry_read(b);
      return -1;
    }
    size_t n = std::min(s->pending_len_, static_cast<size_t>(size));
    std::memcpy(out, s->pending_, n);
    s->pending_ = nullptr;
    return static_cast<int>(n);
  }
  static long ctrl(BIO *, int cmd, long, void *) {
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;
      default:  // no MTU to query, nothing pending: the caller owns the socket
        return 0;
    }
  }
  static int create(BIO *b) {
    BIO_set_init(b, 1);
    return 1;
  }
  static BIO_METHOD *method() {
    // Made once per process and kept: every session's BIO uses it.
    static BIO_METHOD *m = [] {
      BIO_METHOD *meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "wish-dtls");
      BIO_meth_set_write(meth, write);
      BIO_meth_set_read(meth, read);
      BIO_meth_set_ctrl(meth, ctrl);
      BIO_meth_set_create(meth, create);
      return meth;
    }();
    return m;
  }

  // The peer's certificate is self-signed (preverify fails): what decides is that its
  // fingerprint is the SDP's.
  static int verify(int, X509_STORE_CTX *store) {
    if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;  // only the leaf is ours to judge
    SSL *ssl = static_cast<SSL *>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto *s = static_cast<DtlsSession *>(SSL_get_app_data(ssl));
    std::string got = sha256_fingerprint(X509_STORE_CTX_get_current_cert(store));
    if (!got.empty() && got == s->peer_fingerprint_) return 1;
    s->verify_error_ = "the peer's certificate has fingerprint " + got + ", its description said " + s->peer_fingerprint_;
    return 0;
  }

  static unsigned timer(SSL *ssl, unsigned previous_us) {
    auto *s = static_cast<DtlsSession *>(SSL_get_app_data(ssl));
    if (previous_us == 0) return s->initial_timeout_ms_ * 1000u;
    return std::min(previous_us * 2, 60u * 1000000u);
  }
};

std::shared_ptr<DtlsContext> DtlsContext::create(const std::string &pem, const std::vector<SrtpProfile> &profiles,
                                                 std::string *error) {
  ERR_clear_error();
  SslCtx ctx(SSL_CTX_new(DTLS_method()));
  if (!ctx) return *error = openssl_error("SSL_CTX_new"), nullptr;
  SSL_CTX_set_min_proto_version(ctx.get(), DTLS1_2_VERSION);
  // Each viewer is one association; nothing to resume.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);

  // Certificate and key each from their own reader: the key may come first in the PEM.
  Bio cert_bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Bio key_bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Cert cert(cert_bio ? PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr) : nullptr);
  PKey key(key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert || !key) return *error = openssl_error("no certificate and key in the PEM"), nullptr;
  if (SSL_CTX_use_certificate(ctx.get(), cert.get()) != 1 || SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1)
    return *error = openssl_error("certificate and key"), nullptr;
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, DtlsCallbacks::verify);

  std::string list;
  for (SrtpProfile p : profiles) {
    if (p == SrtpProfile::None) continue;
    if (!list.empty()) list += ':';
    list += srtp_profile_name(p);
  }
  if (list.empty()) return *error = "no SRTP profile", nullptr;
  if (SSL_CTX_set_tlsext_use_srtp(ctx.get(), list.c_str()) != 0)  // 0 is success here
    return *error = openssl_error("SRTP profiles"), nullptr;

  std::shared_ptr<DtlsContext> out(new DtlsContext);
  out->fingerprint_ = sha256_fingerprint(cert.get());
  out->ctx_ = ctx.release();
  return out;
}

DtlsContext::~DtlsContext() { SSL_CTX_free(ctx_); }

DtlsSession::DtlsSession(std::shared_ptr<DtlsContext> context, Role role, const std::string &peer_fingerprint,
                         SendFn send)
    : context_(std::move(context)), role_(role), peer_fingerprint_(normalize_fingerprint(peer_fingerprint)),
      send_(std::move(send)) {}

DtlsSession::~DtlsSession() { SSL_free(ssl_); }  // frees the BIO too

bool DtlsSession::start() {
  if (state_ != State::New) return state_ != State::Failed;
  ERR_clear_error();
  ssl_ = SSL_new(context_->ssl_ctx());
  BIO *bio = ssl_ ? BIO_new(DtlsCallbacks::method()) : nullptr;
  if (!bio) {
    set_failed(openssl_error("SSL_new"));
    return false;
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one reference for both directions
  SSL_set_app_data(ssl_, this);
  SSL_set_options(ssl_, SSL_OP_NO_QUERY_MTU);
  DTLS_set_link_mtu(ssl_, kDtlsMtu);
  DTLS_set_timer_cb(ssl_, DtlsCallbacks::timer);
  state_ = State::Handshaking;
  if (role_ == Role::Client) {
    SSL_set_connect_state(ssl_);
    advance();
  } else {
    SSL_set_accept_state(ssl_);
  }
  return state_ != State::Failed;
}

DtlsSession::State DtlsSession::receive(const uint8_t *data, size_t len) {
  if (state_ == State::New && !start()) return state_;
  if (state_ != State::Handshaking && state_ != State::Connected) return state_;
  pending_ = data;
  pending_len_ = len;
  advance();
  pending_ = nullptr;
  return state_;
}

void DtlsSession::advance() {
  ERR_clear_error();
  if (state_ == State::Handshaking) {
    int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      if (export_keys()) state_ = State::Connected;
      return;
    }
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
    set_failed(verify_error_.empty() ? openssl_error("DTLS handshake") : verify_error_);
    return;
  }
  // Connected: alerts, and the peer's last flight again when our answer to it was lost
  // (OpenSSL answers that itself). No application data is expected: it is dropped.
  uint8_t buf[2048];
  for (int i = 0; i < 4; i++) {
    int r = SSL_read(ssl_, buf, sizeof buf);
    if (r > 0) continue;
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
    if (e == SSL_ERROR_ZERO_RETURN) {
      state_ = State::Closed;
      return;
    }
    set_failed(openssl_error("DTLS"));
    return;
  }
}

int64_t DtlsSession::next_timeout_us() const {
  if (!ssl_ || (state_ != State::Handshaking && state_ != State::Connected)) return -1;
  struct timeval tv;
  if (DTLSv1_get_timeout(ssl_, &tv) != 1) return -1;
  return static_cast<int64_t>(tv.tv_sec) * 1000000 + tv.tv_usec;
}

DtlsSession::State DtlsSession::on_timeout() {
  if (!ssl_ || (state_ != State::Handshaking && state_ != State::Connected)) return state_;
  ERR_clear_error();
  if (DTLSv1_handle_timeout(ssl_) < 0) set_failed(openssl_error("DTLS retransmission limit reached"));
  return state_;
}

void DtlsSession::close() {
  if (ssl_ && state_ == State::Connected) SSL_shutdown(ssl_);
  if (state_ != State::Failed) state_ = State::Closed;
}

void DtlsSession::set_failed(const std::string &what) {
  state_ = State::Failed;
  if (error_.empty()) error_ = what;
}

bool DtlsSession::export_keys() {
  // Also when verification was skipped somehow: no fingerprint match, no keys.
  X509 *peer = SSL_get0_peer_certificate(ssl_);
  if (!peer || sha256_fingerprint(peer) != peer_fingerprint_) {
    set_failed(verify_error_.empty() ? "the peer's certificate does not match its fingerprint" : verify_error_);
    return false;
  }
  const SRTP_PROTECTION_PROFILE *p = SSL_get_selected_srtp_profile(ssl_);
  size_t key_len = 16, salt_len = 0;
  if (p && p->id == SRTP_AES128_CM_SHA1_80) {
    keys_.profile = SrtpProfile::Aes128CmSha1_80;
    salt_len = 14;
  } else if (p && p->id == SRTP_AEAD_AES_128_GCM) {
    keys_.profile = SrtpProfile::AeadAes128Gcm;
    salt_len = 12;
  } else {
    set_failed("the peer agreed on no SRTP profile we have");
    return false;
  }
  // RFC 5764 4.2: client key, server key, client salt, server salt.
  std::vector<uint8_t> m(2 * (key_len + salt_len));
  static const char kLabel[] = "EXTRACTOR-dtls_srtp";
  if (SSL_export_keying_material(ssl_, m.data(), m.size(), kLabel, sizeof kLabel - 1, nullptr, 0, 0) != 1) {
    set_failed(openssl_error("exporting the SRTP keys"));
    return false;
  }
  auto key_of = [&](size_t which) {
    std::vector<uint8_t> k(m.begin() + which * key_len, m.begin() + (which + 1) * key_len);
    auto salt = m.begin() + 2 * key_len + which * salt_len;
    k.insert(k.end(), salt, salt + salt_len);
    return k;
  };
  std::vector<uint8_t> client = key_of(0), server = key_of(1);
  keys_.local = role_ == Role::Client ? client : server;
  keys_.remote = role_ == Role::Client ? server : client;
  return true;
}

SrtpSession::~SrtpSession() {
  if (out_) srtp_dealloc(out_);
  if (in_) srtp_dealloc(in_);
}

namespace {

// libsrtp2's policy for a profile, keys and SSRC left to the caller; false for none.
bool policy_for(SrtpProfile profile, srtp_policy_t *policy, size_t *key_len) {
  if (profile == SrtpProfile::Aes128CmSha1_80) {
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy->rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy->rtcp);
    *key_len = SRTP_AES_ICM_128_KEY_LEN_WSALT;
  } else if (profile == SrtpProfile::AeadAes128Gcm) {
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy->rtp);
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy->rtcp);
    *key_len = SRTP_AES_GCM_128_KEY_LEN_WSALT;
  } else {
    return false;
  }
  // Large enough for packets reordered or sent again after a NACK.
  policy->window_size = 1024;
  return true;
}

}  // namespace

bool SrtpSession::init(const SrtpKeys &keys, std::string *error, bool own_cm) {
  // Once per process. When another user of libsrtp2 in the process (GStreamer's srtp plugin)
  // initialised it first, srtp_init() runs the self-tests again and Debian's NSS-backed build
  // fails one of them (bad_param): the kernel is usable all the same, so only srtp_create()
  // below decides.
  static std::once_flag once;
  std::call_once(once, [] { srtp_init(); });
  if (out_ || in_ || cm_) return *error = "already initialised", false;

  srtp_policy_t policy{};
  size_t key_len;
  if (!policy_for(keys.profile, &policy, &key_len)) return *error = "no SRTP profile", false;
  if (keys.local.size() != key_len || keys.remote.size() != key_len) return *error = "SRTP key of the wrong length", false;
  profile_ = keys.profile;
  remote_ = keys.remote;
  if (keys.profile == SrtpProfile::Aes128CmSha1_80 && own_cm) {
    cm_ = std::make_unique<SrtpCmProtector>();
    cm_in_ = std::make_unique<SrtpCmProtector>();
    if (!cm_->init(keys.local) || !cm_in_->init(keys.remote)) {
      cm_.reset();
      cm_in_.reset();
      return *error = "AES-CM key derivation failed", false;
    }
    return true;  // libsrtp2's inbound context once the peer sends RTP (most never do)
  }
  // libsrtp copies the keys in srtp_create(); it only takes them as non-const.
  std::vector<uint8_t> local = keys.local;
  policy.ssrc.type = ssrc_any_outbound;
  policy.key = local.data();
  // A packet sent again (NACK without RTX) keeps its index: not a replay on our side.
  policy.allow_repeat_tx = 1;
  srtp_err_status_t st = srtp_create(&out_, &policy);
  if (st != srtp_err_status_ok) {
    out_ = nullptr;
    return *error = "srtp_create (outbound) failed (" + std::to_string(st) + ")", false;
  }
  return create_in(error);
}

bool SrtpSession::create_in(std::string *error) {
  srtp_policy_t policy{};
  size_t key_len;
  if (!policy_for(profile_, &policy, &key_len)) return *error = "no SRTP profile", false;
  std::vector<uint8_t> remote = remote_;
  policy.ssrc.type = ssrc_any_inbound;
  policy.key = remote.data();
  srtp_err_status_t st = srtp_create(&in_, &policy);
  if (st != srtp_err_status_ok) {
    in_ = nullptr;
    return *error = "srtp_create (inbound) failed (" + std::to_string(st) + ")", false;
  }
  return true;
}

namespace {

// Called after the libsrtp call has run (not as one expression with it: len is its output).
bool checked(srtp_err_status_t st, int len, size_t *out, std::string *error, const char *what) {
  if (st != srtp_err_status_ok) {
    *error = std::string(what) + " failed (" + std::to_string(st) + ")";
    return false;
  }
  *out = static_cast<size_t>(len);
  return true;
}

}  // namespace

bool SrtpSession::protect_rtp(uint8_t *packet, size_t *len, size_t capacity) {
  if (!(out_ || cm_) || capacity < *len + kMaxTrailer) return last_error_ = "no room or no keys", false;
  if (cm_) return cm_->protect_rtp(packet, len, capacity) || (last_error_ = "not an RTP packet", false);
  int n = static_cast<int>(*len);
  srtp_err_status_t st = srtp_protect(out_, packet, &n);
  return checked(st, n, len, &last_error_, "srtp_protect");
}

bool SrtpSession::protect_rtcp(uint8_t *packet, size_t *len, size_t capacity) {
  if (!(out_ || cm_) || capacity < *len + kMaxTrailer) return last_error_ = "no room or no keys", false;
  if (cm_) return cm_->protect_rtcp(packet, len, capacity) || (last_error_ = "not an RTCP packet", false);
  int n = static_cast<int>(*len);
  srtp_err_status_t st = srtp_protect_rtcp(out_, packet, &n);
  return checked(st, n, len, &last_error_, "srtp_protect_rtcp");
}

bool SrtpSession::unprotect_rtp(uint8_t *packet, size_t *len) {
  if (!in_ && cm_in_ && !create_in(&last_error_)) return false;
  if (!in_) return last_error_ = "no keys", false;
  int n = static_cast<int>(*len);
  srtp_err_status_t st = srtp_unprotect(in_, packet, &n);
  return checked(st, n, len, &last_error_, "srtp_unprotect");
}

bool SrtpSession::unprotect_rtcp(uint8_t *packet, size_t *len) {
  if (cm_in_) return cm_in_->unprotect_rtcp(packet, len) || (last_error_ = "SRTCP not authentic, or a replay", false);
  if (!in_) return last_error_ = "no keys", false;
  int n = static_cast<int>(*len);
  srtp_err_status_t st = srtp_unprotect_rtcp(in_, packet, &n);
  return checked(st, n, len, &last_error_, "srtp_unprotect_rtcp");
}

namespace {

template <typename F>
bool in_vector(std::vector<uint8_t> *v, size_t extra, F f) {
  size_t len = v->size();
  v->resize(len + extra);
  bool ok = f(v->data(), &len, v->size());
  v->resize(ok ? len : v->size() - extra);
  return ok;
}

}  // namespace

bool SrtpSession::protect_rtp(std::vector<uint8_t> *v) {
  return in_vector(v, kMaxTrailer, [this](uint8_t *p, size_t *l, size_t c) { return protect_rtp(p, l, c); });
}
bool SrtpSession::protect_rtcp(std::vector<uint8_t> *v) {
  return in_vector(v, kMaxTrailer, [this](uint8_t *p, size_t *l, size_t c) { return protect_rtcp(p, l, c); });
}
bool SrtpSession::unprotect_rtp(std::vector<uint8_t> *v) {
  return in_vector(v, 0, [this](uint8_t *p, size_t *l, size_t) { return unprotect_rtp(p, l); });
}
bool SrtpSession::unprotect_rtcp(std::vector<uint8_t> *v) {
  return in_vector(v, 0, [this](uint8_t *p, size_t *l, size_t) { return unprotect_rtcp(p, l); });
}

}  // namespace wish
