// whepserversink against real HTTP requests and real webrtcbin players on 127.0.0.1.
#include <gst/app/gstappsrc.h>
#include <gst/sdp/sdp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dirent.h>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <regex>
#include <string>
#include <thread>

#include "http_client.h"
#include "protocol/sdp.h"
#include "protocol/sdpfrag.h"
#include "test_player.h"
#include "test_publisher.h"
#include "fixtures.h"
#include "prometheus.h"

using wish_test::HttpClient;
using wish_test::HttpResult;
using wish_test::TestPlayer;

static std::vector<std::pair<std::string, std::string>> sdp_headers(const std::string &extra_name = "",
                                                                    const std::string &extra_value = "") {
  std::vector<std::pair<std::string, std::string>> h = {{"Content-Type", "application/sdp"}};
  if (!extra_name.empty()) h.emplace_back(extra_name, extra_value);
  return h;
}

static std::vector<std::string> candidate_addresses(const std::string &sdp) {
  std::vector<std::string> out;
  std::regex re("a=candidate:\\S+ \\d+ \\S+ \\d+ (\\S+) \\d+ typ");
  for (auto it = std::sregex_iterator(sdp.begin(), sdp.end(), re); it != std::sregex_iterator(); ++it)
    out.push_back((*it)[1]);
  return out;
}

GST_START_TEST(test_post_answer) {
  Server server("stun-server=stun://127.0.0.1:3478 turn-servers=\"<\\\"turn://user:pa%20ss@127.0.0.1:3478?transport=udp\\\">\"");
  fail_unless(server.wait_ready());
  HttpClient http;
  HttpResult r = http.request("POST", server.url(), {{"Content-Type", "application/sdp; charset=utf-8"}}, kStaticOffer);
  fail_unless_equals_int(r.status, 201);
  assert_str(r.header("Content-Type"), "application/sdp");
  std::string loc = r.header("Location");
  fail_unless(std::regex_match(loc, std::regex("/whep/sessions/[0-9a-f]{32}")), "%s", loc.c_str());
  fail_unless(std::regex_match(r.header("ETag"), std::regex("\"[0-9a-f]+\"")));
  auto links = r.all("Link");
  std::string joined;
  for (auto &l : links) joined += l + ",";
  assert_contains(joined, "<stun:127.0.0.1:3478>; rel=\"ice-server\"");
  assert_contains(joined, "<turn:127.0.0.1:3478?transport=udp>; rel=\"ice-server\"; username=\"user\"; "
                          "credential=\"pa ss\"; credential-type=\"password\"");
  assert_str(r.header("Access-Control-Allow-Origin"), "*");
  assert_contains(r.header("Access-Control-Expose-Headers"), "Location, ETag, Link, Accept-Post");

  std::string err;
  auto answer = wish::parse_sdp(r.body, &err);
  fail_unless(answer.has_value(), "%s", err.c_str());
  fail_unless_equals_int(answer->media.size(), 2);
  fail_unless_equals_int(answer->bundle_mids.size(), 2);
  for (const auto &m : answer->media) {
    fail_unless(m.direction == wish::Direction::SendOnly);
    fail_unless(!m.candidates.empty());
  }
  assert_str(answer->media[0].rtpmap.begin()->second.encoding, "H264");
  assert_contains(r.body, "a=rtcp-mux-only");
  assert_contains(r.body, "a=end-of-candidates");
  auto addrs = candidate_addresses(r.body);
  fail_unless(!addrs.empty());
  for (auto &a : addrs) assert_str(a, "127.0.0.1");

  fail_unless_equals_int(http.request("GET", server.url(loc)).status, 200);
  fail_unless_equals_int(http.request("DELETE", server.url(loc)).status, 200);
  fail_unless_equals_int(http.request("DELETE", server.url(loc)).status, 404);
  fail_unless(wait_until(5000, [&] { return server.stat("viewer-count") == 0; }));
}
GST_END_TEST;

static void play_and_check(const std::string &codec_prop, const char *depayloader) {
  Server server("video-codec=" + codec_prop);
  fail_unless(server.wait_ready());
  TestPlayer player;
  std::string offer = player.create_offer();
  fail_if(offer.empty());
  for (auto &a : candidate_addresses(offer)) assert_str(a, "127.0.0.1");
  HttpClient http;
  HttpResult r = http.request("POST", server.url(), sdp_headers(), offer);
  fail_unless_equals_int(r.status, 201);
  fail_unless(player.set_remote_answer(r.body));
  fail_unless(player.wait_video_frames(30, 15000), "only %" G_GUINT64_FORMAT " frames", player.video_frames());
  fail_unless(player.wait_audio_buffers(10, 10000));
  assert_contains(player.depayloaders(), depayloader);
  fail_unless_equals_int(server.stat("viewer-count"), 1);
  GstStructure *stats = nullptr;
  g_object_get(server.sink, "stats", &stats, nullptr);
  const GValue *viewers = gst_structure_get_value(stats, "viewers");
  fail_unless_equals_int(gst_value_list_get_size(viewers), 1);
  const GstStructure *v = gst_value_get_structure(gst_value_list_get_value(viewers, 0));
  guint64 packets = 0;
  gst_structure_get_uint64(v, "packets-sent", &packets);
  fail_unless(packets > 30);
  assert_str(gst_structure_get_string(v, "connection-state"), "connected");
  gst_structure_free(stats);
  fail_unless_equals_int(http.request("DELETE", server.url(r.header("Location"))).status, 200);
  fail_unless(wait_until(5000, [&] { return server.stat("viewer-count") == 0; }));
}

GST_START_TEST(test_player_receives_h264) { play_and_check("h264", "rtph264depay"); }
GST_END_TEST;

GST_START_TEST(test_player_receives_vp8) { play_and_check("vp8", "rtpvp8depay"); }
GST_END_TEST;

GST_START_TEST(test_encoded_input_passthrough) {
  // Already encoded H.264 is payloaded as is; the player still decodes it.
  Server server("", "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! "
                    "x264enc tune=zerolatency key-int-max=30 ! video/x-h264,profile=constrained-baseline ! s.");
  fail_unless(server.wait_ready(1));
  // No encoder inside the element for encoded input.
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(server.sink));
  GValue item = G_VALUE_INIT;
  int encoders = 0;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElement *e = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory *f = gst_element_get_factory(e);
    if (f && strstr(gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS), "Encoder")) encoders++;
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  fail_unless_equals_int(encoders, 0);
  wish_test::PlayerOptions opts;
  opts.audio = false;
  TestPlayer player(opts);
  HttpClient http;
  HttpResult r = http.request("POST", server.url(), sdp_headers(), player.create_offer());
  fail_unless_equals_int(r.status, 201);
  fail_unless(player.set_remote_answer(r.body));
  fail_unless(player.wait_video_frames(30, 15000));
}
GST_END_TEST;

GST_START_TEST(test_http_surface) {
  Server server;
  fail_unless(server.wait_ready());
  HttpClient http;
  HttpResult opt = http.request("OPTIONS", server.url());
  fail_unless_equals_int(opt.status, 200);
  assert_str(opt.header("Accept-Post"), "application/sdp");
  HttpResult pre = http.request("OPTIONS", server.url(), {{"Origin", "http://page.example"},
                                                          {"Access-Control-Request-Method", "POST"},
                                                          {"Access-Control-Request-Headers", "content-type"}});
  fail_unless_equals_int(pre.status, 200);
  assert_contains(pre.header("Access-Control-Allow-Methods"), "POST");
  assert_str(pre.header("Access-Control-Allow-Origin"), "*");
  fail_unless(pre.all("Link").empty());
  HttpResult get = http.request("GET", server.url());
  fail_unless_equals_int(get.status, 200);
  fail_unless(get.body.empty());
  HttpResult page = http.request("GET", server.url(), {{"Accept", "text/html"}});
  fail_unless_equals_int(page.status, 200);
  assert_contains(page.header("Content-Type"), "text/html");
  assert_contains(page.body, "RTCPeerConnection");
  HttpResult head = http.request("HEAD", server.url());
  fail_unless_equals_int(head.status, 200);
  assert_str(head.header("Content-Type"), "application/sdp");

  HttpResult wrong_type = http.request("POST", server.url(), {{"Content-Type", "text/plain"}}, kStaticOffer);
  fail_unless_equals_int(wrong_type.status, 415);
  HttpResult malformed = http.request("POST", server.url(), sdp_headers(), "this is not SDP");
  fail_unless_equals_int(malformed.status, 400);
  assert_str(malformed.header("Content-Type"), "application/problem+json");
  assert_contains(malformed.body, "v=0");
  HttpResult no_media = http.request("POST", server.url(), sdp_headers(),
                                     "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                                     "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n");
  fail_unless_equals_int(no_media.status, 400);
  assert_contains(no_media.body, "m-line");
  fail_unless_equals_int(http.request("POST", server.url(), sdp_headers(), std::string(70 * 1024, 'x')).status, 413);
  fail_unless_equals_int(http.request("PUT", server.url(), sdp_headers(), kStaticOffer).status, 405);
  fail_unless_equals_int(http.request("GET", server.url("/elsewhere")).status, 404);
  fail_unless_equals_int(http.request("PATCH", server.url("/whep/sessions/0123"),
                                      {{"Content-Type", "application/trickle-ice-sdpfrag"}, {"If-Match", "\"x\""}},
                                      "a=ice-ufrag:x\r\n")
                             .status,
                         404);
  // None of that left a session behind.
  fail_unless_equals_int(server.stat("viewer-count"), 0);
}
GST_END_TEST;

GST_START_TEST(test_auth) {
  Server server("auth-token=s3cret");
  fail_unless(server.wait_ready());
  HttpClient http;
  HttpResult none = http.request("POST", server.url(), sdp_headers(), kStaticOffer);
  fail_unless_equals_int(none.status, 401);
  assert_str(none.header("WWW-Authenticate"), "Bearer");
  fail_unless_equals_int(http.request("POST", server.url(), sdp_headers("Authorization", "Bearer wrong"), kStaticOffer).status, 401);
  HttpResult pre = http.request("OPTIONS", server.url(), {{"Access-Control-Request-Method", "POST"}});
  fail_unless_equals_int(pre.status, 200);
  HttpResult ok = http.request("POST", server.url(), sdp_headers("Authorization", "Bearer s3cret"), kStaticOffer);
  fail_unless_equals_int(ok.status, 201);
  std::string loc = server.url(ok.header("Location"));
  fail_unless_equals_int(http.request("DELETE", loc).status, 401);
  fail_unless_equals_int(http.request("DELETE", loc, {{"Authorization", "Bearer s3cret"}}).status, 200);
}
GST_END_TEST;

GST_START_TEST(test_conflict_until_media) {
  Server server("", "appsrc name=src is-live=true format=time "
                    "caps=video/x-raw,format=I420,width=160,height=120,framerate=30/1 ! s.");
  HttpClient http;
  HttpResult early = http.request("POST", server.url(), sdp_headers(), kStaticOffer);
  fail_unless_equals_int(early.status, 409);
  fail_unless(!early.header("Retry-After").empty());
  GstElement *src = gst_bin_get_by_name(GST_BIN(server.pipeline), "src");
  for (int i = 0; i < 5; i++) {
    GstBuffer *buf = gst_buffer_new_allocate(nullptr, 160 * 120 * 3 / 2, nullptr);
    gst_buffer_memset(buf, 0, 0x80, 160 * 120 * 3 / 2);
    GST_BUFFER_PTS(buf) = i * GST_SECOND / 30;
    GST_BUFFER_DURATION(buf) = GST_SECOND / 30;
    fail_unless_equals_int(gst_app_src_push_buffer(GST_APP_SRC(src), buf), GST_FLOW_OK);
  }
  gst_object_unref(src);
  fail_unless(server.wait_ready(1));
  fail_unless_equals_int(http.request("POST", server.url(), sdp_headers(), kStaticOffer).status, 201);
}
GST_END_TEST;

GST_START_TEST(test_max_viewers) {
  Server server("max-viewers=1");
  fail_unless(server.wait_ready());
  HttpClient http;
  HttpResult first_viewer = http.request("POST", server.url(), sdp_headers(), kStaticOffer);
  fail_unless_equals_int(first_viewer.status, 201);
  HttpResult second = http.request("POST", server.url(), sdp_headers(), kStaticOffer);
  fail_unless_equals_int(second.status, 503);
  fail_unless(!second.header("Retry-After").empty());
  fail_unless_equals_int(http.request("DELETE", server.url(first_viewer.header("Location"))).status, 200);
  fail_unless_equals_int(http.request("POST", server.url(), sdp_headers(), kStaticOffer).status, 201);
}
GST_END_TEST;

GST_START_TEST(test_trickle_rules) {
  Server server;
  fail_unless(server.wait_ready());
  HttpClient http;
  HttpResult r = http.request("POST", server.url(), sdp_headers(), kStaticOffer);
  fail_unless_equals_int(r.status, 201);
  std::string loc = server.url(r.header("Location")), etag = r.header("ETag");
  std::string frag = "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n"
                     "a=candidate:1 1 UDP 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n";
  const std::string type = "application/trickle-ice-sdpfrag";
  HttpResult ok = http.request("PATCH", loc, {{"Content-Type", type}, {"If-Match", etag}}, frag);
  fail_unless_equals_int(ok.status, 204);
  fail_unless(ok.body.empty());
  fail_unless(ok.header("ETag").empty());
  fail_unless_equals_int(http.request("PATCH", loc, {{"Content-Type", type}}, frag).status, 428);
  fail_unless_equals_int(http.request("PATCH", loc, {{"Content-Type", type}, {"If-Match", "\"stale\""}}, frag).status, 412);
  fail_unless_equals_int(http.request("PATCH", loc, {{"Content-Type", "text/plain"}, {"If-Match", etag}}, frag).status, 415);
  fail_unless_equals_int(http.request("PATCH", loc, {{"Content-Type", type}, {"If-Match", etag}}, "\x01\x02 junk").status, 400);
}
GST_END_TEST;

GST_START_TEST(test_ice_restart_keeps_media) {
  Server server;
  fail_unless(server.wait_ready());
  TestPlayer player;
  HttpClient http;
  HttpResult r = http.request("POST", server.url(), sdp_headers(), player.create_offer());
  fail_unless_equals_int(r.status, 201);
  fail_unless(player.set_remote_answer(r.body));
  fail_unless(player.wait_video_frames(30, 15000));
  std::string loc = server.url(r.header("Location")), etag = r.header("ETag");

  std::string ufrag, pwd;
  std::vector<std::string> cands;
  fail_unless(player.restart_ice(&ufrag, &pwd, &cands));
  wish::SdpFrag frag;
  frag.ice_ufrag = ufrag;
  frag.ice_pwd = pwd;
  frag.media.push_back({"0", cands, true});
  for (const char *if_match : {"*", "\"*\""}) {
    HttpResult rs = http.request("PATCH", loc,
                                 {{"Content-Type", "application/trickle-ice-sdpfrag"}, {"If-Match", if_match}},
                                 wish::build_sdpfrag(frag));
    fail_unless_equals_int(rs.status, 200);
    assert_str(rs.header("Content-Type"), "application/trickle-ice-sdpfrag");
    std::string new_etag = rs.header("ETag");
    fail_if(new_etag.empty() || new_etag == etag);
    std::string err;
    auto answer = wish::parse_sdpfrag(rs.body, &err);
    fail_unless(answer.has_value());
    fail_if(answer->ice_ufrag.empty() || answer->ice_pwd.empty());
    fail_unless(answer->candidate_count() > 0);
    fail_unless(player.apply_remote_ice(answer->ice_ufrag, answer->ice_pwd, answer->media[0].candidates));
    // The old ICE session's tag is stale now.
    fail_unless_equals_int(http.request("PATCH", loc, {{"Content-Type", "application/trickle-ice-sdpfrag"}, {"If-Match", etag}},
                                        "a=end-of-candidates\r\n").status, 412);
    etag = new_etag;
    guint64 before = player.video_frames();
    fail_unless(player.wait_video_frames(before + 60, 15000), "media stopped after the ICE restart");
  }
}
GST_END_TEST;

GST_START_TEST(test_counter_offer) {
  Server server("counter-offer=always");
  fail_unless(server.wait_ready());
  TestPlayer player;
  HttpClient http;
  HttpResult r = http.request("POST", server.url(), sdp_headers(), player.create_offer());
  fail_unless_equals_int(r.status, 406);
  fail_unless(std::regex_match(r.header("Content-Type"),
                               std::regex("application/sdp; valid-until=\"\\w{3}, \\d\\d \\w{3} \\d{4} [\\d:]{8} GMT\"")),
              "%s", r.header("Content-Type").c_str());
  std::string loc = server.url(r.header("Location"));
  assert_contains(r.body, "a=sendonly");
  // A fresh player answers the server's offer (WHEP's server-offered flow).
  TestPlayer answerer;
  std::string answer = answerer.answer_remote_offer(r.body);
  fail_if(answer.empty());
  HttpResult patched = http.request("PATCH", loc, sdp_headers(), answer);
  fail_unless_equals_int(patched.status, 204);
  fail_unless(answerer.wait_video_frames(30, 15000));
  // A second SDP PATCH is outside the flow.
  fail_unless_equals_int(http.request("PATCH", loc, sdp_headers(), answer).status, 422);
}
GST_END_TEST;

GST_START_TEST(test_counter_offer_when_needed) {
  // Sends H.264; this player only takes VP9. Transcoding on (the default), the server encodes
  // VP9 for it; off, it counter-offers what it has (406), or refuses (422) with
  // counter-offer=never.
  wish_test::PlayerOptions opts;
  opts.video_codecs = {"VP9"};
  opts.audio = false;
  HttpClient http;
  {
    Server server;
    fail_unless(server.wait_ready());
    TestPlayer player(opts);
    HttpResult r = http.request("POST", server.url(), sdp_headers(), player.create_offer());
    fail_unless_equals_int(r.status, 201);
    assert_contains(r.body, "VP9/90000");
    fail_unless(player.set_remote_answer(r.body));
    fail_unless(player.wait_video_frames(30, 15000));
  }
  Server server("transcode=false");
  fail_unless(server.wait_ready());
  TestPlayer player(opts);
  HttpResult r = http.request("POST", server.url(), sdp_headers(), player.create_offer());
  fail_unless_equals_int(r.status, 406);
  assert_contains(r.body, "H264");
  Server strict("counter-offer=never transcode=false");
  fail_unless(strict.wait_ready());
  HttpResult refused = http.request("POST", strict.url(), sdp_headers(), player.create_offer());
  fail_unless_equals_int(refused.status, 422);
  assert_contains(refused.body, "transcoding is off");
}
GST_END_TEST;

// Over max-cpu-load (of the process: here it encodes two streams, far over 1 %) new viewers
// go to the redirect endpoint, or get 503 without one; under it they are taken.
GST_START_TEST(test_redirect_when_loaded) {
  Server spare;
  Server loaded("max-cpu-load=1 redirect-endpoints=" + spare.url());
  fail_unless(loaded.wait_ready());
  fail_unless(spare.wait_ready());
  g_usleep(1500 * 1000);  // a load figure over a second or two
  HttpClient http;
  TestPlayer one;
  HttpResult r = http.request("POST", loaded.url(), sdp_headers(), one.create_offer());
  fail_unless_equals_int(r.status, 307);
  assert_str(r.header("Location"), spare.url());
  Server lone("max-cpu-load=1");
  fail_unless(lone.wait_ready());
  g_usleep(1500 * 1000);
  r = http.request("POST", lone.url(), sdp_headers(), one.create_offer());
  fail_unless_equals_int(r.status, 503);
  assert_contains(r.body, "load limit");
  fail_if(r.header("Retry-After").empty());
  g_object_set(loaded.sink, "max-cpu-load", 6400u, nullptr);
  r = http.request("POST", loaded.url(), sdp_headers(), one.create_offer());
  fail_unless_equals_int(r.status, 201);
  fail_unless(one.set_remote_answer(r.body));
  fail_unless(one.wait_video_frames(10, 10000));
}
GST_END_TEST;

// A server at max-viewers sends new viewers to the next endpoint (307) instead of refusing
// them; whepsrc follows and plays from there. Sessions are never redirected.
GST_START_TEST(test_redirect_when_full) {
  Server spare;
  Server full("max-viewers=1 redirect-endpoints=" + spare.url());
  fail_unless(full.wait_ready());
  fail_unless(spare.wait_ready());
  HttpClient http;
  TestPlayer one;
  HttpResult r = http.request("POST", full.url(), sdp_headers(), one.create_offer());
  fail_unless_equals_int(r.status, 201);
  fail_unless(one.set_remote_answer(r.body));
  TestPlayer two;
  HttpResult redirected = http.request("POST", full.url(), sdp_headers(), two.create_offer());
  fail_unless_equals_int(redirected.status, 307);
  assert_str(redirected.header("Location"), spare.url());
  fail_unless_equals_int(http.request("POST", full.url("/whep/cam"), sdp_headers(), two.create_offer()).status, 404);
  // whepsrc pointed at the full server plays from the spare one.
  GstElement *pipeline = gst_pipeline_new("redirected");
  GError *err = nullptr;
  GstElement *src = gst_parse_launch(
      ("whepsrc ice-local-addresses=127.0.0.1 whep-endpoint=" + full.url()).c_str(), &err);
  fail_unless(src != nullptr);
  gst_bin_add(GST_BIN(pipeline), src);
  CountingSinks sinks;
  sinks.count_pads_of(pipeline, src);
  watch_test_pipeline(pipeline);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  fail_unless(sinks.wait_video(30, 10000), "the redirected whepsrc plays nothing");
  fail_unless_equals_int(full.stat("viewer-count"), 1);
  fail_unless_equals_int(spare.stat("viewer-count"), 1);
  // The full viewer's session stays where it is: DELETE is answered there.
  fail_unless_equals_int(http.request("DELETE", full.url(r.header("Location"))).status, 200);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}
GST_END_TEST;

// With redirect-policy=least-loaded a full server sends new viewers to the endpoint whose
// server serves the fewest viewers (its metrics read with the shared token), skipping one that
// does not answer, and counts those it sent until the next reading: round-robin would send the
// first to the dead endpoint and the second to the busy one.
GST_START_TEST(test_redirect_least_loaded) {
  const std::string common = "auth-token=tok metrics-path=/metrics ";
  Server busy(common), idle(common);
  fail_unless(busy.wait_ready());
  fail_unless(idle.wait_ready());
  HttpClient http;
  auto with_token = sdp_headers("Authorization", "Bearer tok");
  std::vector<std::unique_ptr<TestPlayer>> busy_players;
  for (int i = 0; i < 2; i++) {
    busy_players.push_back(std::make_unique<TestPlayer>());
    HttpResult r = http.request("POST", busy.url(), with_token, busy_players.back()->create_offer());
    fail_unless_equals_int(r.status, 201);
    fail_unless(busy_players.back()->set_remote_answer(r.body));
    fail_unless(busy_players.back()->wait_video_frames(5, 10000));
  }
  // A port nothing listens on: taken from a server that stopped.
  std::string dead;
  {
    Server gone;
    dead = gone.url();
  }
  Server full(common + "max-viewers=1 redirect-policy=least-loaded redirect-endpoints=" + dead + "," + busy.url() +
              "," + idle.url());
  fail_unless(full.wait_ready());
  TestPlayer one;
  HttpResult r = http.request("POST", full.url(), with_token, one.create_offer());
  fail_unless_equals_int(r.status, 201);
  g_usleep(2500 * 1000);  // a reading of every endpoint (at start, then every 2 s)
  for (int i = 0; i < 2; i++) {
    TestPlayer next;
    HttpResult redirected = http.request("POST", full.url(), with_token, next.create_offer());
    fail_unless_equals_int(redirected.status, 307);
    // idle: 0 viewers, then 1 sent there, still fewer than busy's 2.
    assert_str(redirected.header("Location"), idle.url());
  }
  TestPlayer moved;
  HttpResult redirected = http.request("POST", full.url(), with_token, moved.create_offer());
  fail_unless_equals_int(redirected.status, 307);
  HttpResult there = http.request("POST", redirected.header("Location"), with_token, moved.create_offer());
  fail_unless_equals_int(there.status, 201);
  fail_unless(moved.set_remote_answer(there.body));
  fail_unless(moved.wait_video_frames(10, 10000), "the redirected viewer plays nothing");

  // Without the token the endpoints' metrics cannot be read: all unknown, so in turn.
  Server blind("max-viewers=1 redirect-policy=least-loaded redirect-endpoints=" + busy.url() + "," + idle.url());
  fail_unless(blind.wait_ready());
  TestPlayer own;
  fail_unless_equals_int(http.request("POST", blind.url(), sdp_headers(), own.create_offer()).status, 201);
  g_usleep(500 * 1000);
  TestPlayer a, b;
  assert_str(http.request("POST", blind.url(), sdp_headers(), a.create_offer()).header("Location"), busy.url());
  assert_str(http.request("POST", blind.url(), sdp_headers(), b.create_offer()).header("Location"), idle.url());
}
GST_END_TEST;

// metrics-path serves the server's metrics in Prometheus text, with the endpoints' token:
// values that match what the test did, read by Python's prometheus_client parser.
GST_START_TEST(test_metrics) {
  ServerPipeline server;
  server.start("whipserversrc name=in path=/whip" + server.props + " whepserversink name=out path=/whep" +
               server.props + " metrics-path=/metrics auth-token=tok"
               " videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! out."
               " audiotestsrc is-live=true ! out.");
  HttpClient http;
  auto with_token = sdp_headers("Authorization", "Bearer tok");
  wish_test::TestPublisher publisher;
  HttpResult pub = http.request("POST", server.url("/whip/cam"), sdp_headers(), publisher.create_offer());
  fail_unless_equals_int(pub.status, 201);
  fail_unless(publisher.set_remote_answer(pub.body));
  TestPlayer one, two;
  std::vector<std::string> sessions;
  for (TestPlayer *p : {&one, &two}) {
    HttpResult r;
    fail_unless(wait_until(10000, [&] {
      r = http.request("POST", server.url("/whep"), with_token, p->create_offer());
      return r.status == 201;
    }));
    fail_unless(p->set_remote_answer(r.body));
    fail_unless(p->wait_video_frames(10, 10000));
    sessions.push_back(server.url(r.header("Location")));
  }
  fail_unless_equals_int(http.request("DELETE", sessions[0], {{"Authorization", "Bearer tok"}}).status, 200);
  fail_unless_equals_int(http.request("POST", server.url("/whep"), with_token, "not sdp").status, 400);
  fail_unless_equals_int(http.request("GET", server.url("/metrics")).status, 401);
  g_usleep(800 * 1000);  // the worker's next count
  HttpResult m = http.request("GET", server.url("/metrics"), {{"Authorization", "Bearer tok"}});
  fail_unless_equals_int(m.status, 200);
  assert_contains(m.header("Content-Type"), "text/plain; version=0.0.4");
  bool parsed = false;
  auto samples = parse_prometheus(m.body, &parsed);
  fail_unless(parsed, "Python's prometheus_client (Debian python3-prometheus-client) could not read:\n%s",
              m.body.c_str());
  auto value = [&](const std::string &key) {
    auto it = samples.find(key);
    fail_unless(it != samples.end(), "no sample %s in\n%s", key.c_str(), m.body.c_str());
    return it->second;
  };
  fail_unless_equals_int(value("wish_viewers{stream=\"whep\"}"), 1);
  fail_unless_equals_int(value("wish_publishers{stream=\"cam\"}"), 1);
  fail_unless_equals_int(value("wish_sessions_created_total{endpoint=\"/whep\"}"), 2);
  fail_unless_equals_int(value("wish_sessions_created_total{endpoint=\"/whip\"}"), 1);
  fail_unless_equals_int(value("wish_sessions_ended_total{endpoint=\"/whep\",reason=\"closed\"}"), 1);
  fail_unless(value("wish_http_responses_total{code=\"400\"}") >= 1);
  fail_unless(value("wish_http_responses_total{code=\"401\"}") >= 1);
  fail_unless(value("wish_http_responses_total{code=\"201\"}") >= 3);
  fail_unless(value("wish_sent_bytes_total{stream=\"whep\"}") > 10000);
  fail_unless(value("wish_sent_packets_total{stream=\"whep\"}") > 10);
}
GST_END_TEST;

GST_START_TEST(test_vanished_viewer_removed) {
  Server server;
  fail_unless(server.wait_ready());
  HttpClient http;
  std::string loc;
  {
    TestPlayer player;
    HttpResult r = http.request("POST", server.url(), sdp_headers(), player.create_offer());
    fail_unless_equals_int(r.status, 201);
    fail_unless(player.set_remote_answer(r.body));
    fail_unless(player.wait_video_frames(10, 15000));
    loc = server.url(r.header("Location"));
  }  // the player is gone without DELETE
  gint64 start = g_get_monotonic_time();
  fail_unless(wait_until(30000, [&] { return server.stat("viewer-count") == 0; }),
              "a vanished viewer was still there after 30 s");
  GST_INFO("vanished viewer removed after %" G_GINT64_FORMAT " ms", (g_get_monotonic_time() - start) / 1000);
  fail_unless_equals_int(http.request("DELETE", loc).status, 404);
}
GST_END_TEST;

static std::string fd_summary() {
  std::map<std::string, int> kinds;
  DIR *d = opendir("/proc/self/fd");
  while (struct dirent *e = readdir(d)) {
    char path[512], target[512];
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = 0;
    std::string t = target;
    std::string kind = t.substr(0, t.find(':'));
    if (kind == "socket") {
      std::string inode = t.substr(8, t.size() - 9);
      for (const char *table : {"tcp", "udp", "tcp6", "udp6", "unix", "netlink"}) {
        gchar *contents = nullptr;
        if (g_file_get_contents((std::string("/proc/net/") + table).c_str(), &contents, nullptr, nullptr)) {
          std::string c = contents;
          g_free(contents);
          size_t at = c.find(" " + inode + " ");
          if (at != std::string::npos) {
            kind += std::string("/") + table;
            if (table[0] == 't') {  // TCP state column: 0A LISTEN, 01 ESTABLISHED, 08 CLOSE_WAIT
              size_t line = c.rfind('\n', at) + 1;
              std::istringstream fields(c.substr(line, at - line));
              std::string f;
              for (int i = 0; i < 4 && (fields >> f); i++) {
              }
              kind += "/" + f;
              if (f == "08") { std::istringstream again(c.substr(line, at - line)); std::string a, b; again >> a >> b; kind += "/local=" + b.substr(b.find(':') + 1); }
            }
            break;
          }
        }
      }
    }
    kinds[kind]++;
  }
  closedir(d);
  std::string out;
  for (auto &kv : kinds) out += kv.first + "=" + std::to_string(kv.second) + " ";
  return out;
}

static int count_entries(const char *dir) {
  int n = 0;
  DIR *d = opendir(dir);
  if (!d) return -1;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

GST_START_TEST(test_sessions_leave_nothing_behind) {
  Server server("http-max-requests-per-client=0");  // 410 requests as fast as they are answered
  fail_unless(server.wait_ready());
  HttpClient http;
  auto cycle = [&] {
    HttpResult r = http.request("POST", server.url(), sdp_headers(), kStaticOffer);
    fail_unless_equals_int(r.status, 201);
    fail_unless_equals_int(http.request("DELETE", server.url(r.header("Location"))).status, 200);
  };
  for (int i = 0; i < 5; i++) cycle();  // warm up lazily created pools
  fail_unless(wait_until(5000, [&] { return server.stat("viewer-count") == 0; }));
  g_usleep(300 * 1000);
  int fds = count_entries("/proc/self/fd"), threads = count_entries("/proc/self/task");
  for (int i = 0; i < 200; i++) cycle();
  fail_unless(wait_until(10000, [&] { return server.stat("viewer-count") == 0; }));
  fail_unless(wait_until(10000, [&] {
    return count_entries("/proc/self/fd") <= fds && count_entries("/proc/self/task") <= threads + 2;
  }), "fds %d -> %d (%s), threads %d -> %d", fds, count_entries("/proc/self/fd"), fd_summary().c_str(), threads,
              count_entries("/proc/self/task"));
  // Only the element's own elements are left in the bin: inputs, chains, tees.
  GstIterator *it = gst_bin_iterate_elements(GST_BIN(server.sink));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElement *e = GST_ELEMENT(g_value_get_object(&item));
    fail_if(g_str_has_prefix(GST_OBJECT_NAME(e), "session_"), "left behind: %s", GST_OBJECT_NAME(e));
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
}
GST_END_TEST;

GST_START_TEST(test_shared_http_server) {
  unsigned port = free_port();
  std::string p = std::to_string(port);
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(
      ("videotestsrc is-live=true ! whepserversink name=a address=127.0.0.1 port=" + p +
       " path=/one ice-local-addresses=127.0.0.1 videotestsrc is-live=true ! whepserversink name=b "
       "address=127.0.0.1 port=" + p + " path=/two ice-local-addresses=127.0.0.1")
          .c_str(),
      &err);
  fail_unless(pipeline != nullptr);
  watch_test_pipeline(pipeline);
  fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  HttpClient http;
  std::string base = "http://127.0.0.1:" + p;
  fail_unless(wait_until(10000, [&] {
    return http.request("POST", base + "/one", sdp_headers(), kStaticOffer).status == 201 &&
           http.request("POST", base + "/two", sdp_headers(), kStaticOffer).status == 201;
  }));
  fail_unless_equals_int(http.request("GET", base + "/three").status, 404);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);

  // A port=0 element's server is joined by an element given its current-port.
  Server origin("path=/first");
  fail_unless(origin.wait_ready());
  Server joiner("path=/second port=" + std::to_string(origin.port));
  fail_unless(joiner.wait_ready());
  fail_unless_equals_int(joiner.port, origin.port);
  fail_unless_equals_int(http.request("POST", origin.url("/second"), sdp_headers(), kStaticOffer).status, 201);
}
GST_END_TEST;

// Requests that race the element's shutdown are all answered: 201, 503 when their session
// could not be made, 404 once the path is no longer served; none hangs, and the element
// stops in bounded time.
GST_START_TEST(test_requests_racing_stop) {
  for (int round = 0; round < 3; round++) {
    auto server = std::make_unique<Server>();
    fail_unless(server->wait_ready());
    std::string url = server->url();
    std::atomic<int> answered{0}, unanswered{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < 4; c++)
      clients.emplace_back([&] {
        HttpClient http;
        for (int i = 0; i < 10; i++) {
          HttpResult r = http.request("POST", url, sdp_headers(), kStaticOffer);
          if (r.status == 201 || r.status == 503 || r.status == 404)
            answered++;
          else if (r.status != 0) {  // 0: the server was gone before the request reached it
            g_printerr("racing stop: %u %s\n", r.status, r.body.c_str());
            unanswered++;
          }
        }
      });
    g_usleep(20 * 1000 * (round + 1));
    gint64 t0 = g_get_monotonic_time();
    server.reset();  // to NULL while requests are in flight
    gint64 stop_ms = (g_get_monotonic_time() - t0) / 1000;
    for (auto &t : clients) t.join();
    fail_unless(stop_ms < 5000, "stopping took %" G_GINT64_FORMAT " ms", stop_ms);
    fail_unless_equals_int(unanswered.load(), 0);
    GST_INFO("round %d: %d answered, stop took %" G_GINT64_FORMAT " ms", round, answered.load(), stop_ms);
  }
}
GST_END_TEST;

GST_START_TEST(test_https) {
  gchar *dir = g_dir_make_tmp("wish-tls-XXXXXX", nullptr);
  std::string cert = std::string(dir) + "/cert.pem", key = std::string(dir) + "/key.pem";
  std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout " + key +
                    " -out " + cert + " 2>/dev/null";
  fail_unless_equals_int(system(cmd.c_str()), 0);
  {
    Server server("tls-certificate-file=" + cert + " tls-key-file=" + key);
    fail_unless(server.wait_ready());
    HttpClient https(true);
    std::string url = "https://127.0.0.1:" + std::to_string(server.port) + "/whep";
    HttpResult r = https.request("POST", url, sdp_headers(), kStaticOffer);
    fail_unless_equals_int(r.status, 201);
    HttpClient plain;
    fail_unless_equals_int(plain.request("POST", server.url(), sdp_headers(), kStaticOffer).status, 0);
  }
  unlink(cert.c_str());
  unlink(key.c_str());
  rmdir(dir);
  g_free(dir);
}
GST_END_TEST;

static GstStructure *emit(GstElement *sink, const char *signal, GstStructure *request) {
  GstPromise *promise = gst_promise_new();
  g_signal_emit_by_name(sink, signal, request, promise);
  gst_structure_free(request);
  fail_unless_equals_int(gst_promise_wait(promise), GST_PROMISE_RESULT_REPLIED);
  GstStructure *reply = gst_structure_copy(gst_promise_get_reply(promise));
  gst_promise_unref(promise);
  return reply;
}

GST_START_TEST(test_action_signals) {
  Server server("serve-http=false");
  fail_unless(server.wait_ready());
  GstStructure *reply = emit(server.sink, "post",
                             gst_structure_new("request", "content-type", G_TYPE_STRING, "application/sdp", "body",
                                               G_TYPE_STRING, kStaticOffer, nullptr));
  guint status = 0;
  gst_structure_get_uint(reply, "status", &status);
  fail_unless_equals_int(status, 201);
  assert_contains(gst_structure_get_string(reply, "body"), "a=sendonly");
  GstStructure *headers = nullptr;
  gst_structure_get(reply, "headers", GST_TYPE_STRUCTURE, &headers, nullptr);
  std::string loc = gst_structure_get_string(headers, "location");
  std::string etag = gst_structure_get_string(headers, "etag");
  gst_structure_free(headers);
  gst_structure_free(reply);
  fail_unless_equals_int(server.stat("viewer-count"), 1);

  reply = emit(server.sink, "patch",
               gst_structure_new("request", "path", G_TYPE_STRING, loc.c_str(), "content-type", G_TYPE_STRING,
                                 "application/trickle-ice-sdpfrag", "if-match", G_TYPE_STRING, etag.c_str(), "body",
                                 G_TYPE_STRING, "a=end-of-candidates\r\n", nullptr));
  gst_structure_get_uint(reply, "status", &status);
  fail_unless_equals_int(status, 204);
  gst_structure_free(reply);
  reply = emit(server.sink, "delete", gst_structure_new("request", "path", G_TYPE_STRING, loc.c_str(), nullptr));
  gst_structure_get_uint(reply, "status", &status);
  fail_unless_equals_int(status, 200);
  gst_structure_free(reply);
  fail_unless(wait_until(5000, [&] { return server.stat("viewer-count") == 0; }));
}
GST_END_TEST;

GST_START_TEST(test_viewer_messages) {
  Server server;
  fail_unless(server.wait_ready());
  GstBus *bus = gst_element_get_bus(server.pipeline);
  HttpClient http;
  HttpResult r = http.request("POST", server.url(), sdp_headers(), kStaticOffer);
  fail_unless_equals_int(r.status, 201);
  auto wait_message = [&](const char *name) -> std::string {
    gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    while (g_get_monotonic_time() < end) {
      GstMessage *m = gst_bus_timed_pop_filtered(bus, 100 * GST_MSECOND, GST_MESSAGE_ELEMENT);
      if (!m) continue;
      const GstStructure *s = gst_message_get_structure(m);
      std::string id = gst_structure_has_name(s, name) ? gst_structure_get_string(s, "session-id") : "";
      gst_message_unref(m);
      if (!id.empty()) return id;
    }
    return "";
  };
  std::string joined = wait_message("wish-viewer-joined");
  assert_contains(r.header("Location"), joined);
  fail_if(joined.empty());
  fail_unless_equals_int(http.request("DELETE", server.url(r.header("Location"))).status, 200);
  assert_str(wait_message("wish-viewer-left"), joined);
  gst_object_unref(bus);
}
GST_END_TEST;

GST_START_TEST(test_keyframe_for_new_viewer) {
  // A 10-second GOP: without a key unit request a late viewer would wait up to 10 s.
  Server server("key-int-max=300");
  fail_unless(server.wait_ready());
  g_usleep(1500 * 1000);  // the first keyframe is long gone
  TestPlayer player;
  HttpClient http;
  HttpResult r = http.request("POST", server.url(), sdp_headers(), player.create_offer());
  fail_unless_equals_int(r.status, 201);
  gint64 start = g_get_monotonic_time();
  fail_unless(player.set_remote_answer(r.body));
  fail_unless(player.wait_video_frames(1, 3000), "no frame within 3 s of joining a 10 s GOP");
  GST_INFO("first frame %" G_GINT64_FORMAT " ms after the answer", (g_get_monotonic_time() - start) / 1000);
}
GST_END_TEST;

static Suite *whepserversink_suite(void) {
  Suite *s = suite_create("whepserversink");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_post_answer);
  tcase_add_test(tc, test_player_receives_h264);
  tcase_add_test(tc, test_player_receives_vp8);
  tcase_add_test(tc, test_encoded_input_passthrough);
  tcase_add_test(tc, test_http_surface);
  tcase_add_test(tc, test_auth);
  tcase_add_test(tc, test_conflict_until_media);
  tcase_add_test(tc, test_max_viewers);
  tcase_add_test(tc, test_trickle_rules);
  tcase_add_test(tc, test_ice_restart_keeps_media);
  tcase_add_test(tc, test_counter_offer);
  tcase_add_test(tc, test_counter_offer_when_needed);
  tcase_add_test(tc, test_redirect_when_full);
  tcase_add_test(tc, test_redirect_least_loaded);
  tcase_add_test(tc, test_redirect_when_loaded);
  tcase_add_test(tc, test_metrics);
  tcase_add_test(tc, test_vanished_viewer_removed);
  tcase_add_test(tc, test_sessions_leave_nothing_behind);
  tcase_add_test(tc, test_shared_http_server);
  tcase_add_test(tc, test_requests_racing_stop);
  tcase_add_test(tc, test_https);
  tcase_add_test(tc, test_action_signals);
  tcase_add_test(tc, test_viewer_messages);
  tcase_add_test(tc, test_keyframe_for_new_viewer);
  return s;
}

WISH_CHECK_MAIN(whepserversink);
