// The DTLS certificate of the elements' sessions: an ECDSA P-256 one, made in about a
// millisecond, in place of the RSA-2048 key GStreamer 1.22 makes for a process's first
// webrtcbin. Checked on a real whepsrc <-> whepserversink session: both ends' certificates,
// as webrtcbin's DTLS transports hold them after the handshake, are ECDSA.
#include <gst/check/gstcheck.h>
#include <gst/gst.h>
#include <gst/webrtc/webrtc.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <string>

#include "dtls_certificate.h"
#include "fixtures.h"
#include "http_client.h"
#include "test_player.h"

namespace {

struct Parsed {
  bool cert = false, key = false, ec_p256 = false, self_signed = false, key_matches = false;
};

// What a PEM holds: a certificate (and a key), whether its public key is P-256 and signed by itself.
Parsed parse(const std::string &pem) {
  Parsed p;
  BIO *bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509 *x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!x) return p;
  p.cert = true;
  EVP_PKEY *pub = X509_get0_pubkey(x);
  char group[64] = {};
  size_t len = 0;
  p.ec_p256 = pub && EVP_PKEY_id(pub) == EVP_PKEY_EC &&
              EVP_PKEY_get_utf8_string_param(pub, "group", group, sizeof group, &len) &&
              std::string(group) == "prime256v1";
  p.self_signed = pub && X509_verify(x, pub) == 1;
  bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key) {
    p.key = true;
    p.key_matches = X509_check_private_key(x, key) == 1;
    EVP_PKEY_free(key);
  }
  X509_free(x);
  return p;
}

GstElement *find_webrtcbin(GstElement *bin) {
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(bin));
  GValue item = G_VALUE_INIT;
  GstElement *found = nullptr;
  while (!found && gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    auto *e = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory *f = gst_element_get_factory(e);
    if (f && g_str_equal(GST_OBJECT_NAME(f), "webrtcbin")) found = GST_ELEMENT(gst_object_ref(e));
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return found;
}

}  // namespace

GST_START_TEST(test_made_certificate) {
  std::string pem = wish::make_ecdsa_certificate_pem();
  Parsed p = parse(pem);
  fail_unless(p.cert && p.key, "not a certificate with its key:\n%s", pem.c_str());
  fail_unless(p.ec_p256, "not ECDSA P-256");
  fail_unless(p.self_signed && p.key_matches);
  fail_if(wish::make_ecdsa_certificate_pem() == pem, "the same certificate twice");
  // webrtcbin 1.22's way over the whole PEM (the key too) differs from the certificate's own.
  std::string own = wish::certificate_fingerprint(pem);
  fail_unless_equals_int(own.size(), 32 * 3 - 1);
  fail_if(wish::webrtcbin_fingerprint(pem) == own);
  // Over a certificate alone both agree.
  std::string cert_only = pem.substr(0, pem.find("-----END CERTIFICATE-----") + 26);
  fail_unless(wish::webrtcbin_fingerprint(cert_only) == own);
}
GST_END_TEST;

// The first test of the process: no DTLS element exists before the server starts.
GST_START_TEST(test_sessions_use_ecdsa) {
  Server server;
  fail_unless(server.wait_ready());
  GstElement *pipeline = gst_pipeline_new("player");
  GError *err = nullptr;
  GstElement *src =
      gst_parse_launch(("whepsrc ice-local-addresses=127.0.0.1 whep-endpoint=" + server.url()).c_str(), &err);
  fail_unless(src != nullptr, "%s", err ? err->message : "");
  gst_bin_add(GST_BIN(pipeline), src);
  CountingSinks sinks;
  sinks.count_pads_of(pipeline, src);
  watch_test_pipeline(pipeline);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  fail_unless(sinks.wait_video(10, 15000), "no video");

  GstElement *webrtc = find_webrtcbin(src);
  fail_unless(webrtc != nullptr);
  GstWebRTCRTPTransceiver *trans = nullptr;
  g_signal_emit_by_name(webrtc, "get-transceiver", 0, &trans);
  fail_unless(trans != nullptr);
  GstWebRTCRTPReceiver *receiver = nullptr;
  g_object_get(trans, "receiver", &receiver, nullptr);
  GstWebRTCDTLSTransport *dtls = nullptr;
  g_object_get(receiver, "transport", &dtls, nullptr);
  fail_unless(dtls != nullptr);
  gchar *local = nullptr, *remote = nullptr;
  g_object_get(dtls, "certificate", &local, "remote-certificate", &remote, nullptr);
  fail_unless(local && remote, "no certificates on the DTLS transport");
  Parsed mine = parse(local), theirs = parse(remote);
  fail_unless(mine.cert && mine.ec_p256 && mine.key_matches, "the player's certificate is not ours:\n%s", local);
  fail_unless(theirs.cert && theirs.ec_p256, "the server's certificate is not ECDSA:\n%s", remote);
  // What the server's answers say its certificate is: the one it used (browsers check this).
  wish_test::HttpClient http;
  wish_test::TestPlayer offerer;
  wish_test::HttpResult r =
      http.request("POST", server.url(), {{"Content-Type", "application/sdp"}}, offerer.create_offer());
  fail_unless_equals_int(r.status, 201);
  std::string line = "a=fingerprint:sha-256 " + wish::certificate_fingerprint(remote);
  fail_unless(r.body.find(line) != std::string::npos, "the answer has not %s:\n%s", line.c_str(), r.body.c_str());
  g_free(local);
  g_free(remote);
  gst_object_unref(dtls);
  gst_object_unref(receiver);
  gst_object_unref(trans);
  gst_object_unref(webrtc);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}
GST_END_TEST;

static Suite *dtls_certificate_suite() {
  Suite *s = suite_create("dtls_certificate");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_sessions_use_ecdsa);
  tcase_add_test(tc, test_made_certificate);
  return s;
}

GST_CHECK_MAIN(dtls_certificate);
