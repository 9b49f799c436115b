// whipserversrc with real WHIP publishers (webrtcbin in the test process) on 127.0.0.1, and the
// WHIP -> WHEP relay through whepserversink.
#include <atomic>
#include <memory>
#include <regex>
#include <string>

#include "http_client.h"
#include "protocol/sdp.h"
#include "protocol/sdpfrag.h"
#include "test_player.h"
#include "test_publisher.h"
#include "fixtures.h"
#include "whip_ingest.h"

using wish_test::HttpClient;
using wish_test::HttpResult;
using wish_test::PublisherOptions;
using wish_test::TestPublisher;

static std::vector<std::pair<std::string, std::string>> sdp_type() { return {{"Content-Type", "application/sdp"}}; }

// Publishes and returns the POST's response; the publisher is ready to stream.
static HttpResult publish(HttpClient &http, TestPublisher &pub, const std::string &url,
                          std::vector<std::pair<std::string, std::string>> headers = sdp_type()) {
  HttpResult r = http.request("POST", url, headers, pub.create_offer());
  if (r.status == 201) fail_unless(pub.set_remote_answer(r.body));
  return r;
}

GST_START_TEST(test_publisher_media_arrives) {
  Ingest ingest;
  TestPublisher pub;
  HttpClient http;
  HttpResult r = publish(http, pub, ingest.url());
  fail_unless_equals_int(r.status, 201);
  fail_unless(std::regex_match(r.header("Location"), std::regex("/whip/sessions/[0-9a-f]{32}")));
  fail_if(r.header("ETag").empty());
  std::string err;
  auto answer = wish::parse_sdp(r.body, &err);
  fail_unless(answer.has_value());
  for (const auto &m : answer->media) {
    fail_unless(m.direction == wish::Direction::RecvOnly);
    for (const auto &c : m.candidates) assert_contains(c, " 127.0.0.1 ");
  }
  assert_contains(r.body, "a=rtcp-mux-only");
  fail_unless(wait_until(15000, [&] { return ingest.video >= 30; }), "video: %" G_GUINT64_FORMAT, ingest.video.load());
  fail_unless(wait_until(10000, [&] { return ingest.audio >= 20; }));
  fail_if(ingest.wait_message("wish-publisher-joined", 2000).empty());
  fail_unless_equals_int(http.request("DELETE", ingest.url(r.header("Location"))).status, 200);
  fail_unless_equals_int(http.request("DELETE", ingest.url(r.header("Location"))).status, 404);
  assert_contains(ingest.wait_message("wish-publisher-left", 5000), "reason=(string)closed");
}
GST_END_TEST;

GST_START_TEST(test_second_publisher_conflict_and_takeover) {
  {
    Ingest ingest;
    TestPublisher one, two;
    HttpClient http;
    fail_unless_equals_int(publish(http, one, ingest.url()).status, 201);
    HttpResult busy = publish(http, two, ingest.url());
    fail_unless_equals_int(busy.status, 409);
    assert_contains(busy.body, "another publisher");
  }
  Ingest ingest("takeover=true");
  TestPublisher one, two;
  HttpClient http;
  fail_unless_equals_int(publish(http, one, ingest.url()).status, 201);
  fail_unless(wait_until(15000, [&] { return ingest.video >= 10; }));
  fail_unless_equals_int(publish(http, two, ingest.url()).status, 201);
  assert_contains(ingest.wait_message("wish-publisher-left", 5000), "reason=(string)replaced");
  guint64 before = ingest.video;
  fail_unless(wait_until(15000, [&] { return ingest.video >= before + 30; }), "the new publisher's media did not flow");
  fail_unless_equals_int(ingest.video_pads.load(), 1);  // same pad
}
GST_END_TEST;

GST_START_TEST(test_next_publisher_same_pads) {
  Ingest ingest;
  HttpClient http;
  {
    TestPublisher pub;
    HttpResult r = publish(http, pub, ingest.url());
    fail_unless(wait_until(15000, [&] { return ingest.video >= 30; }));
    fail_unless_equals_int(http.request("DELETE", ingest.url(r.header("Location"))).status, 200);
  }
  GstState state;
  gst_element_get_state(ingest.pipeline, &state, nullptr, 0);
  fail_unless_equals_int(state, GST_STATE_PLAYING);  // no EOS, no error: the pipeline stays up
  guint64 before = ingest.video;
  TestPublisher next;
  fail_unless_equals_int(publish(http, next, ingest.url()).status, 201);
  fail_unless(wait_until(15000, [&] { return ingest.video >= before + 30; }));
  fail_unless_equals_int(ingest.video_pads.load(), 1);
}
GST_END_TEST;

GST_START_TEST(test_vanished_publisher) {
  Ingest ingest("publisher-timeout=2");
  HttpClient http;
  std::string loc;
  {
    TestPublisher pub;
    HttpResult r = publish(http, pub, ingest.url());
    loc = ingest.url(r.header("Location"));
    fail_unless(wait_until(15000, [&] { return ingest.video >= 10; }));
  }  // gone without DELETE
  assert_contains(ingest.wait_message("wish-publisher-left", 8000), "reason=(string)timeout");
  fail_unless_equals_int(http.request("DELETE", loc).status, 404);
  TestPublisher next;
  fail_unless_equals_int(publish(http, next, ingest.url()).status, 201);  // room for the next one
}
GST_END_TEST;

GST_START_TEST(test_http_surface) {
  Ingest ingest("auth-token=tok stun-server=stun://127.0.0.1:3478");
  HttpClient http;
  auto auth = std::make_pair(std::string("Authorization"), std::string("Bearer tok"));
  HttpResult opt = http.request("OPTIONS", ingest.url(), {{"Access-Control-Request-Method", "POST"}});
  fail_unless_equals_int(opt.status, 200);
  assert_str(opt.header("Accept-Post"), "application/sdp");
  assert_str(opt.header("Access-Control-Allow-Origin"), "*");
  fail_unless_equals_int(http.request("GET", ingest.url(), {auth}).status, 200);
  TestPublisher pub;
  std::string offer = pub.create_offer();
  fail_unless_equals_int(http.request("POST", ingest.url(), sdp_type(), offer).status, 401);
  fail_unless_equals_int(http.request("POST", ingest.url(), {{"Content-Type", "text/plain"}, auth}, offer).status, 415);
  fail_unless_equals_int(http.request("POST", ingest.url(), {{"Content-Type", "application/sdp"}, auth}, "nonsense").status, 400);
  fail_unless_equals_int(http.request("POST", ingest.url(), {{"Content-Type", "application/sdp"}, auth},
                                      std::string(70000, 'v')).status,
                         413);
  PublisherOptions two;
  two.video_tracks = 2;
  TestPublisher twice(two);
  HttpResult too_many = http.request("POST", ingest.url(), {{"Content-Type", "application/sdp"}, auth}, twice.create_offer());
  fail_unless_equals_int(too_many.status, 422);
  HttpResult ok = http.request("POST", ingest.url(), {{"Content-Type", "application/sdp"}, auth}, offer);
  fail_unless_equals_int(ok.status, 201);
  assert_contains(ok.header("Link"), "<stun:127.0.0.1:3478>; rel=\"ice-server\"");
  fail_unless(pub.set_remote_answer(ok.body));
  std::string loc = ingest.url(ok.header("Location")), etag = ok.header("ETag");
  std::string frag = "a=ice-ufrag:x\r\na=ice-pwd:yyyyyyyyyyyyyyyyyyyyyy\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n"
                     "a=candidate:1 1 UDP 2130706431 127.0.0.1 9 typ host\r\n";
  const std::string type = "application/trickle-ice-sdpfrag";
  fail_unless_equals_int(http.request("PATCH", loc, {{"Content-Type", type}, {"If-Match", etag}, auth}, frag).status, 204);
  fail_unless_equals_int(http.request("PATCH", loc, {{"Content-Type", type}, auth}, frag).status, 428);
  fail_unless_equals_int(http.request("PATCH", loc, {{"Content-Type", type}, {"If-Match", "\"old\""}, auth}, frag).status, 412);
  fail_unless_equals_int(http.request("PATCH", loc, {{"Content-Type", "text/plain"}, {"If-Match", etag}, auth}, frag).status, 415);
  // An SDP body is only taken as the answer to a counter-offer, which a WHIP server never makes.
  fail_unless_equals_int(http.request("PATCH", loc, {{"Content-Type", "application/sdp"}, {"If-Match", etag}, auth}, offer).status, 422);
  fail_unless_equals_int(http.request("DELETE", loc, {auth}).status, 200);
  fail_unless_equals_int(http.request("DELETE", loc, {auth}).status, 404);
}
GST_END_TEST;

GST_START_TEST(test_ice_restart) {
  Ingest ingest;
  TestPublisher pub;
  HttpClient http;
  HttpResult r = publish(http, pub, ingest.url());
  fail_unless(wait_until(15000, [&] { return ingest.video >= 30; }));
  std::string ufrag, pwd;
  std::vector<std::string> cands;
  fail_unless(pub.restart_ice(&ufrag, &pwd, &cands));
  wish::SdpFrag frag;
  frag.ice_ufrag = ufrag;
  frag.ice_pwd = pwd;
  frag.media.push_back({"0", cands, true});
  HttpResult rs = http.request("PATCH", ingest.url(r.header("Location")),
                               {{"Content-Type", "application/trickle-ice-sdpfrag"}, {"If-Match", "*"}},
                               wish::build_sdpfrag(frag));
  fail_unless_equals_int(rs.status, 200);
  fail_if(rs.header("ETag").empty() || rs.header("ETag") == r.header("ETag"));
  std::string err;
  auto answer = wish::parse_sdpfrag(rs.body, &err);
  fail_unless(answer.has_value() && !answer->ice_ufrag.empty());
  fail_unless(pub.apply_remote_ice(answer->ice_ufrag, answer->ice_pwd, answer->media[0].candidates));
  guint64 before = ingest.video;
  fail_unless(wait_until(15000, [&] { return ingest.video >= before + 60; }), "media stopped after the ICE restart");
}
GST_END_TEST;

// WHIP in, WHEP out, no decoding or re-encoding in between.
struct Relay {
  GstElement *pipeline;
  GstElement *in, *out;
  Relay() {
    GError *err = nullptr;
    pipeline = gst_parse_launch(
        "whipserversrc name=in address=127.0.0.1 port=0 ice-local-addresses=127.0.0.1 "
        "whepserversink name=out address=127.0.0.1 port=0 ice-local-addresses=127.0.0.1 "
        "in.video_0 ! queue ! out.video_0 in.audio_0 ! queue ! out.audio_0",
        &err);
    fail_unless(pipeline != nullptr, "%s", err ? err->message : "");
    in = gst_bin_get_by_name(GST_BIN(pipeline), "in");
    out = gst_bin_get_by_name(GST_BIN(pipeline), "out");
    watch_test_pipeline(pipeline);
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
  }
  ~Relay() {
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(in);
    gst_object_unref(out);
    gst_object_unref(pipeline);
  }
  std::string url(GstElement *e, const char *path) const {
    guint port = 0;
    g_object_get(e, "current-port", &port, nullptr);
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }
};

static std::vector<std::string> elements_of_klass(GstElement *bin, const char *klass_part) {
  std::vector<std::string> out;
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(bin));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElementFactory *f = gst_element_get_factory(GST_ELEMENT(g_value_get_object(&item)));
    if (f && strstr(gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS), klass_part))
      out.push_back(GST_OBJECT_NAME(f));
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return out;
}

static void relay_plays(const std::string &codec, const char *depay) {
  Relay relay;
  HttpClient http;
  HttpResult viewer_early = http.request("POST", relay.url(relay.out, "/whep"), sdp_type(), kStaticOffer);
  fail_unless_equals_int(viewer_early.status, 409);  // nothing published yet
  fail_if(viewer_early.header("Retry-After").empty());
  PublisherOptions opts;
  opts.video = codec;
  TestPublisher pub(opts);
  fail_unless_equals_int(publish(http, pub, relay.url(relay.in, "/whip")).status, 201);
  wish_test::TestPlayer player;
  HttpResult r;
  fail_unless(wait_until(10000, [&] {
    r = http.request("POST", relay.url(relay.out, "/whep"), sdp_type(), player.create_offer());
    return r.status == 201;
  }));
  fail_unless(player.set_remote_answer(r.body));
  fail_unless(player.wait_video_frames(30, 15000), "viewer decoded %" G_GUINT64_FORMAT " frames", player.video_frames());
  fail_unless(player.wait_audio_buffers(10, 10000));
  assert_contains(player.depayloaders(), depay);
  auto encoders = elements_of_klass(relay.out, "Encoder/Video");
  auto audio_encoders = elements_of_klass(relay.out, "Encoder/Audio");
  encoders.insert(encoders.end(), audio_encoders.begin(), audio_encoders.end());
  fail_unless(encoders.empty(), "the relay re-encoded with %s", encoders.empty() ? "" : encoders[0].c_str());
  auto decoders = elements_of_klass(relay.in, "Decoder/Video");
  fail_unless(decoders.empty(), "the relay decoded with %s", decoders.empty() ? "" : decoders[0].c_str());
}

GST_START_TEST(test_relay_vp8) { relay_plays("vp8", "rtpvp8depay"); }
GST_END_TEST;

GST_START_TEST(test_relay_h264) { relay_plays("h264", "rtph264depay"); }
GST_END_TEST;

GST_START_TEST(test_relay_late_viewer_gets_keyframe) {
  Relay relay;
  HttpClient http;
  PublisherOptions opts;
  opts.keyframe_interval = 600;  // 20 s at 30 fps: only a PLI brings a keyframe sooner
  TestPublisher pub(opts);
  fail_unless_equals_int(publish(http, pub, relay.url(relay.in, "/whip")).status, 201);
  g_usleep(2 * G_USEC_PER_SEC);
  guint requests_before = pub.keyframe_requests();
  wish_test::TestPlayer player;
  HttpResult r;
  fail_unless(wait_until(10000, [&] {
    r = http.request("POST", relay.url(relay.out, "/whep"), sdp_type(), player.create_offer());
    return r.status == 201;
  }));
  fail_unless(player.set_remote_answer(r.body));
  fail_unless(player.wait_video_frames(1, 4000), "no frame within 4 s of joining a 20 s GOP");
  fail_unless(pub.keyframe_requests() > requests_before, "the publisher got no keyframe request");
}
GST_END_TEST;

static Suite *whipserversrc_suite(void) {
  Suite *s = suite_create("whipserversrc");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_publisher_media_arrives);
  tcase_add_test(tc, test_second_publisher_conflict_and_takeover);
  tcase_add_test(tc, test_next_publisher_same_pads);
  tcase_add_test(tc, test_vanished_publisher);
  tcase_add_test(tc, test_http_surface);
  tcase_add_test(tc, test_ice_restart);
  tcase_add_test(tc, test_relay_vp8);
  tcase_add_test(tc, test_relay_h264);
  tcase_add_test(tc, test_relay_late_viewer_gets_keyframe);
  return s;
}

WISH_CHECK_MAIN(whipserversrc);
