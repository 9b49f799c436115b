// DTLS-SRTP (RFC 5764) for a viewer transport that runs without a DTLS element per viewer:
// OpenSSL over our own BIOs, driven by the caller (datagrams in, datagrams out through a
// callback, retransmission timer polled), and libsrtp2 for the media once the keys are known.
// No threads and no GLib here: the transport's thread calls everything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "transport/srtp_cm.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct srtp_ctx_t_ srtp_ctx_t;

namespace wish {

enum class SrtpProfile { None, Aes128CmSha1_80, AeadAes128Gcm };
const char *srtp_profile_name(SrtpProfile p);

// Master key followed by master salt, in each direction, as libsrtp2 takes them.
struct SrtpKeys {
  SrtpProfile profile = SrtpProfile::None;
  std::vector<uint8_t> local;   // protects what we send
  std::vector<uint8_t> remote;  // unprotects what the peer sends
};

// What every session of one certificate shares: the SSL_CTX with our certificate and key and
// the SRTP profiles we offer (one per process is enough, however many viewers).
class DtlsContext {
public:
  // pem: the certificate and its private key (make_ecdsa_certificate_pem()). profiles in
  // order of preference. Null with *error on failure.
  static std::shared_ptr<DtlsContext> create(const std::string &pem,
                                             const std::vector<SrtpProfile> &profiles, std::string *error);
  ~DtlsContext();
  DtlsContext(const DtlsContext &) = delete;
  DtlsContext &operator=(const DtlsContext &) = delete;

  // "sha-256" fingerprint of our certificate, "AB:CD:...", for the SDP.
  const std::string &fingerprint() const { return fingerprint_; }
  SSL_CTX *ssl_ctx() const { return ctx_; }

private:
  DtlsContext() = default;
  SSL_CTX *ctx_ = nullptr;
  std::string fingerprint_;
};

// One DTLS association with one peer. The peer's certificate is accepted only when its
// SHA-256 fingerprint is the one its SDP announced.
class DtlsSession {
public:
  enum class Role { Client, Server };  // a=setup:active is the client
  enum class State { New, Handshaking, Connected, Failed, Closed };
  using SendFn = std::function<void(const uint8_t *data, size_t len)>;

  // peer_fingerprint: "AB:CD:..." (case and the "sha-256 " prefix do not matter). send is
  // called with each datagram to send, from within the calls below.
  DtlsSession(std::shared_ptr<DtlsContext> context, Role role, const std::string &peer_fingerprint, SendFn send);
  ~DtlsSession();
  DtlsSession(const DtlsSession &) = delete;
  DtlsSession &operator=(const DtlsSession &) = delete;

  // The client sends its first flight; the server waits for it. False on failure.
  bool start();
  // One datagram from the peer (first byte 20..63, RFC 7983). Returns the state after it.
  State receive(const uint8_t *data, size_t len);
  // Microseconds until on_timeout() is due (0: now); -1 while no retransmission is pending.
  int64_t next_timeout_us() const;
  // Sends the last flight again when its timer ran out. Returns the state after it.
  State on_timeout();
  // Sends close_notify; the session is Closed afterwards.
  void close();

  // First retransmission after this many milliseconds (then doubling, as RFC 6347 4.2.4.1).
  void set_initial_timeout_ms(unsigned ms) { initial_timeout_ms_ = ms; }

  State state() const { return state_; }
  const std::string &error() const { return error_; }
  // The keys once Connected.
  const SrtpKeys &keys() const { return keys_; }
  Role role() const { return role_; }

private:
  friend struct DtlsCallbacks;  // OpenSSL's BIO, verification and timer callbacks
  void advance();
  void set_failed(const std::string &what);
  bool export_keys();

  std::shared_ptr<DtlsContext> context_;
  Role role_;
  std::string peer_fingerprint_;
  SendFn send_;
  SSL *ssl_ = nullptr;
  State state_ = State::New;
  std::string error_, verify_error_;
  SrtpKeys keys_;
  unsigned initial_timeout_ms_ = 1000;
  const uint8_t *pending_ = nullptr;  // the datagram being read, for our BIO
  size_t pending_len_ = 0;
};

// SRTP/SRTCP for one viewer: our SSRCs outbound, the peer's inbound, both by wildcard. Two
// srtp_t inside: libsrtp2 takes one wildcard (template) stream per srtp_t; with AES-CM the
// outbound one is an SrtpCmProtector instead, and so is the inbound one for SRTCP (libsrtp2's
// is made when the peer first sends RTP).
class SrtpSession {
public:
  // Room the protected packet needs after the plain one (tag, SRTCP index).
  static constexpr size_t kMaxTrailer = 16 + 128 + 4;

  SrtpSession() = default;
  ~SrtpSession();
  SrtpSession(const SrtpSession &) = delete;
  SrtpSession &operator=(const SrtpSession &) = delete;

  // own_cm: with SRTP_AES128_CM_SHA1_80, outgoing RTP and RTCP and incoming RTCP by
  // SrtpCmProtector (srtp_cm.h) rather than libsrtp2 (false: libsrtp2 for everything).
  bool init(const SrtpKeys &keys, std::string *error, bool own_cm = true);

  // In place: *len grows by the trailer; capacity is the buffer's size (at least
  // *len + kMaxTrailer). Retransmissions of a packet already sent are allowed.
  bool protect_rtp(uint8_t *packet, size_t *len, size_t capacity);
  bool protect_rtcp(uint8_t *packet, size_t *len, size_t capacity);
  // In place: *len shrinks. False for a packet that fails authentication or is a replay;
  // its bytes may then have been changed (AES-GCM decrypts before it checks).
  bool unprotect_rtp(uint8_t *packet, size_t *len);
  bool unprotect_rtcp(uint8_t *packet, size_t *len);

  // The same for vectors (resized).
  bool protect_rtp(std::vector<uint8_t> *packet);
  bool protect_rtcp(std::vector<uint8_t> *packet);
  bool unprotect_rtp(std::vector<uint8_t> *packet);
  bool unprotect_rtcp(std::vector<uint8_t> *packet);

  const std::string &last_error() const { return last_error_; }

private:
  bool create_in(std::string *error);

  srtp_ctx_t *out_ = nullptr, *in_ = nullptr;
  // With AES-CM: outgoing RTP and RTCP (no out_), incoming RTCP (in_ made for incoming RTP only).
  std::unique_ptr<SrtpCmProtector> cm_, cm_in_;
  SrtpProfile profile_ = SrtpProfile::None;
  std::vector<uint8_t> remote_;  // the peer's master key and salt, for create_in()
  std::string last_error_;
};

}  // namespace wish
