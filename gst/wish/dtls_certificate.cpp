#include "dtls_certificate.h"

#include <gst/gst.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <cstring>
#include <memory>

GST_DEBUG_CATEGORY_STATIC(wish_dtls_debug);
#define GST_CAT_DEFAULT wish_dtls_debug

namespace wish {
namespace {

template <typename T, void (*Free)(T *)>
struct OpenSslFree {
  void operator()(T *p) const { Free(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, OpenSslFree<EVP_PKEY, EVP_PKEY_free>>;
using PKeyCtx = std::unique_ptr<EVP_PKEY_CTX, OpenSslFree<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using Cert = std::unique_ptr<X509, OpenSslFree<X509, X509_free>>;
using Name = std::unique_ptr<X509_NAME, OpenSslFree<X509_NAME, X509_NAME_free>>;
using Bio = std::unique_ptr<BIO, OpenSslFree<BIO, BIO_free_all>>;
using Bn = std::unique_ptr<BIGNUM, OpenSslFree<BIGNUM, BN_free>>;

// Set once, before the string class's default hook below is installed; never freed.
const char *ecdsa_pem = nullptr;
// The fingerprint webrtcbin puts in descriptions with ecdsa_pem (as "a=fingerprint:sha-256 ..."),
// and the true one; set with ecdsa_pem.
std::string *wrong_fingerprint_line = nullptr, *true_fingerprint_line = nullptr;
void (*string_default)(GParamSpec *, GValue *) = nullptr;

// The string properties' default values as GLib computes them (once per property), except
// GstDtlsCertificate's "pem", which is the ECDSA certificate.
void dtls_aware_string_default(GParamSpec *pspec, GValue *value) {
  if (pspec->owner_type && std::strcmp(pspec->name, "pem") == 0 &&
      std::strcmp(g_type_name(pspec->owner_type), "GstDtlsCertificate") == 0) {
    g_value_set_string(value, ecdsa_pem);
    return;
  }
  string_default(pspec, value);
}

std::string hex_fingerprint(const unsigned char *digest, unsigned len) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned i = 0; i < len; i++) {
    if (i) out += ':';
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

std::string sha256_fingerprint(const unsigned char *data, size_t size) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (!EVP_Digest(data, size, digest, &len, EVP_sha256(), nullptr)) return {};
  return hex_fingerprint(digest, len);
}

}  // namespace

std::string certificate_fingerprint(const std::string &pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Cert cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) return {};
  unsigned char *der = nullptr;
  int n = i2d_X509(cert.get(), &der);
  if (n <= 0) return {};
  std::string out = sha256_fingerprint(der, static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

std::string webrtcbin_fingerprint(const std::string &pem) {
  // As webrtcbin 1.22 does: every line not starting with "-----", decoded as one base64 text.
  std::string decoded(pem.size(), '\0');
  gint state = 0;
  guint save = 0;
  size_t out = 0;
  size_t start = 0;
  while (start <= pem.size()) {
    size_t end = pem.find('\n', start);
    if (end == std::string::npos) end = pem.size();
    std::string line = pem.substr(start, end - start);
    if (!line.empty() && line.compare(0, 5, "-----") != 0)
      out += g_base64_decode_step(line.c_str(), line.size(), reinterpret_cast<guchar *>(&decoded[out]), &state, &save);
    start = end + 1;
  }
  return out ? sha256_fingerprint(reinterpret_cast<const unsigned char *>(decoded.data()), out) : std::string();
}

std::string with_true_dtls_fingerprint(const std::string &sdp) {
  if (!wrong_fingerprint_line) return sdp;
  std::string out = sdp;
  for (size_t at = out.find(*wrong_fingerprint_line); at != std::string::npos;
       at = out.find(*wrong_fingerprint_line, at + true_fingerprint_line->size()))
    out.replace(at, wrong_fingerprint_line->size(), *true_fingerprint_line);
  return out;
}

std::string make_ecdsa_certificate_pem() {
  PKeyCtx kctx(EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr));
  EVP_PKEY *raw_key = nullptr;
  if (!kctx || EVP_PKEY_keygen_init(kctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kctx.get(), NID_X9_62_prime256v1) <= 0 ||
      EVP_PKEY_keygen(kctx.get(), &raw_key) <= 0)
    return {};
  PKey key(raw_key);

  Cert cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), 2)) return {};
  unsigned char serial[8];
  if (RAND_bytes(serial, sizeof serial) != 1) return {};
  serial[0] &= 0x7f;  // positive
  Bn bn(BN_bin2bn(serial, sizeof serial, nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()))) return {};

  // A random name, as GStreamer and browsers give theirs: nothing names the host.
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char random_name[8];
  if (RAND_bytes(random_name, sizeof random_name) != 1) return {};
  char common_name[sizeof random_name + 1] = {};
  for (size_t i = 0; i < sizeof random_name; i++) common_name[i] = alphabet[random_name[i] % (sizeof alphabet - 1)];
  Name name(X509_NAME_new());
  if (!name ||
      !X509_NAME_add_entry_by_NID(name.get(), NID_commonName, MBSTRING_ASC,
                                  reinterpret_cast<const unsigned char *>(common_name), -1, -1, 0) ||
      !X509_set_subject_name(cert.get(), name.get()) || !X509_set_issuer_name(cert.get(), name.get()))
    return {};
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -86400L) ||  // peers whose clocks are behind
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 86400L) || !X509_set_pubkey(cert.get(), key.get()) ||
      !X509_sign(cert.get(), key.get(), EVP_sha256()))
    return {};

  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_X509(bio.get(), cert.get()) ||
      !PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr))
    return {};
  char *data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 && data ? std::string(data, static_cast<size_t>(n)) : std::string();
}

bool prefer_ecdsa_dtls_certificate() {
  static gsize once = 0;
  static bool supplied = false;
  if (!g_once_init_enter(&once)) return supplied;
  GST_DEBUG_CATEGORY_INIT(wish_dtls_debug, "wishdtls", 0, "wish DTLS certificate");
  if (g_type_from_name("GstDtlsCertificate")) {
    // A DTLS element was made already: its certificate is the process's.
    GST_INFO("a DTLS element exists already: GStreamer's own certificate stays");
  } else {
    gint64 start = g_get_monotonic_time();
    std::string pem = make_ecdsa_certificate_pem();
    std::string wrong = webrtcbin_fingerprint(pem), right = certificate_fingerprint(pem);
    if (pem.empty() || wrong.empty() || right.empty()) {
      GST_WARNING("could not make an ECDSA certificate: GStreamer makes its own (RSA)");
    } else {
      ecdsa_pem = g_strdup(pem.c_str());
      wrong_fingerprint_line = new std::string("a=fingerprint:sha-256 " + wrong);
      true_fingerprint_line = new std::string("a=fingerprint:sha-256 " + right);
      auto *klass = static_cast<GParamSpecClass *>(g_type_class_ref(G_TYPE_PARAM_STRING));
      string_default = klass->value_set_default;
      klass->value_set_default = dtls_aware_string_default;  // the class stays: never unreffed
      supplied = true;
      GST_INFO("DTLS elements will use an ECDSA P-256 certificate (made in %" G_GINT64_FORMAT " us)",
               g_get_monotonic_time() - start);
    }
  }
  g_once_init_leave(&once, 1);
  return supplied;
}

}  // namespace wish
