// whepserversink with shared-transport=true: viewers on one shared ICE agent instead of a
// webrtcbin each, checked in decoded pixels and tones; two at once; DELETE and a viewer that
// vanishes free their place (max-viewers); an offer the shared path cannot serve still plays
// on a webrtcbin. What the element reports of its viewers (stats, metrics, messages, WHEP
// events) counts these viewers too; trickle, ICE restart and NACK/RTX through the element.
#include <gst/gst.h>
#include <gst/video/video.h>

#include <atomic>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <signal.h>

#include "protocol/sdpfrag.h"
#include "rtx_counters.h"

#include "child_pipeline.h"
#include "event_log.h"
#include "fixtures.h"
#include "http_client.h"
#include "prometheus.h"
#include "test_player.h"
#include "whepsrc_player.h"

using wish_test::HttpClient;
using wish_test::HttpResult;
using wish_test::PlayerOptions;
using wish_test::TestPlayer;
using wish_test::is_red;

// A red 440 Hz stream on /cam, raw input.
struct SharedServer : ServerPipeline {
  GstElement *sink = nullptr;
  explicit SharedServer(const std::string &sink_props = "") {
    start("whepserversink name=cam path=/cam shared-transport=true" + props + " " + sink_props +
          " videotestsrc is-live=true pattern=red ! video/x-raw,width=320,height=240,framerate=30/1 ! cam."
          " audiotestsrc name=asrc is-live=true freq=440 ! cam.");
    sink = element("cam");
  }
  ~SharedServer() { gst_object_unref(sink); }
};

// The raw input's own codec: H.264 (others are encoded for the viewer, which needs webrtcbin).
static PlayerOptions h264() {
  PlayerOptions o;
  o.video_codecs = {"H264"};
  return o;
}

GST_START_TEST(test_whepsrc_viewer_plays) {
  SharedServer s;
  gboolean shared = FALSE;
  g_object_get(s.sink, "shared-transport", &shared, nullptr);
  fail_unless(shared);
  Player viewer(s.url("/cam"));
  fail_unless(viewer.wait_video(30, 10000), "whepsrc decoded no video from the shared transport");
  fail_unless(viewer.wait_audio(20, 5000), "whepsrc decoded no audio from the shared transport");
  {
    std::lock_guard<std::mutex> lock(viewer.mutex);
    assert_str(viewer.video_caps, "video/x-raw");
  }
  // Served without a webrtcbin for the viewer.
  fail_unless_equals_int(count_elements(s.sink, "webrtcbin"), 0);
}
GST_END_TEST;

GST_START_TEST(test_two_viewers_at_once) {
  SharedServer s;
  Player a(s.url("/cam")), b(s.url("/cam"));
  fail_unless(a.wait_video(30, 10000), "first viewer decoded no video");
  fail_unless(b.wait_video(30, 10000), "second viewer decoded no video");
  fail_unless_equals_int(count_elements(s.sink, "webrtcbin"), 0);
  guint64 frames = a.video;
  fail_unless(a.wait_video(frames + 30, 5000), "the first viewer stopped");
}
GST_END_TEST;

// max-viewers=1: the place comes back after DELETE, and after the viewer vanished (viewer-timeout).
GST_START_TEST(test_delete_and_vanished_viewer_free_their_place) {
  SharedServer s("max-viewers=1 viewer-timeout=2");
  HttpClient http;
  std::string session;
  {
    Player first(s.url("/cam"));
    fail_unless(first.wait_video(30, 10000));
    session = first.session_url();
    fail_if(session.empty());
    fail_unless_equals_int(http.request("DELETE", session).status, 200);
  }
  // A viewer in its own process, killed: gone without a word (no DELETE, no RTCP).
  ChildPipeline second("whepsrc whep-endpoint=" + s.url("/cam") +
                       " ice-local-addresses=127.0.0.1 audio-codecs=none ! video/x-raw ! fakesink name=frames_played");
  fail_unless(second.started(), "%s", second.spawn_error().c_str());
  fail_if(second.wait_prefix("frame ", 20000).empty(), "the viewer in its own process did not play");
  TestPlayer refused;
  fail_unless_equals_int(http.request("POST", s.url("/cam"), {{"Content-Type", "application/sdp"}},
                                      refused.create_offer()).status, 503);
  second.kill_now();
  Player third(s.url("/cam"));  // whepsrc retries while the place is taken
  fail_unless(third.wait_video(30, 20000), "no video after a viewer vanished");
}
GST_END_TEST;

// A VP9-only viewer of the H.264 input needs transcoding: a webrtcbin serves it.
GST_START_TEST(test_offer_it_cannot_serve_goes_to_webrtcbin) {
  SharedServer s;
  Player shared(s.url("/cam"));
  fail_unless(shared.wait_video(30, 10000));
  Player fallback(s.url("/cam"), "video-codecs=vp9");
  fail_unless(fallback.wait_video(30, 10000), "the webrtcbin viewer decoded no video");
  fail_unless_equals_int(count_elements(s.sink, "webrtcbin"), 1);
}
GST_END_TEST;

// The decoded picture is the red test pattern and the audio the 440 Hz tone.
GST_START_TEST(test_decoded_colour_and_tone) {
  SharedServer s;
  TestPlayer player(h264());
  HttpClient http;
  negotiate(http, player, s.url("/cam"));
  bool red = player.wait_color(15000, is_red);
  TestPlayer::Rgb c = player.center_color();
  fail_unless(red, "the centre pixel is r=%d g=%d b=%d after %" G_GUINT64_FORMAT " frames", c.r, c.g, c.b,
              player.video_frames());
  fail_unless(wait_until(5000, [&] { return player.tone_level(440) > 0.1; }), "no 440 Hz tone");
  fail_unless_equals_int(count_elements(s.sink, "webrtcbin"), 0);
}
GST_END_TEST;

// The element's metrics, as Prometheus reads them.
static std::map<std::string, double> read_metrics(HttpClient &http, const std::string &url, std::string *text) {
  HttpResult m = http.request("GET", url);
  fail_unless_equals_int(m.status, 200);
  bool parsed = false;
  auto samples = parse_prometheus(m.body, &parsed);
  fail_unless(parsed, "prometheus_client could not read:\n%s", m.body.c_str());
  *text = m.body;
  return samples;
}

static double sample(const std::map<std::string, double> &samples, const std::string &key) {
  auto it = samples.find(key);
  return it == samples.end() ? -1 : it->second;
}

// The viewers of the stats property, each as its structure's text.
static std::vector<std::string> stats_viewers(GstElement *sink, guint *count) {
  GstStructure *st = nullptr;
  g_object_get(sink, "stats", &st, nullptr);
  fail_unless(st != nullptr);
  fail_unless(gst_structure_get_uint(st, "viewer-count", count));
  const GValue *list = gst_structure_get_value(st, "viewers");
  std::vector<std::string> out;
  for (guint i = 0; list && i < gst_value_list_get_size(list); i++) {
    gchar *text = gst_structure_to_string(gst_value_get_structure(gst_value_list_get_value(list, i)));
    out.push_back(text);
    g_free(text);
  }
  gst_structure_free(st);
  return out;
}

// The stats property and the metrics count shared viewers as webrtcbin ones: each viewer
// connected with what it was sent, viewers per stream, packets and bytes sent (also after one
// left), sessions created and ended, loss from their receiver reports.
GST_START_TEST(test_stats_and_metrics_count_shared_viewers) {
  SharedServer s("metrics-path=/metrics");
  HttpClient http;
  Player a(s.url("/cam")), b(s.url("/cam"));
  fail_unless(a.wait_video(30, 10000) && b.wait_video(30, 10000));
  fail_unless_equals_int(count_elements(s.sink, "webrtcbin"), 0);
  guint count = 0;
  std::vector<std::string> viewers = stats_viewers(s.sink, &count);
  fail_unless_equals_int(count, 2);
  fail_unless_equals_int(viewers.size(), 2);
  for (const auto &v : viewers) {
    assert_contains(v, "connection-state=(string)connected");
    assert_contains(v, "stream=(string)cam");
    fail_if(v.find("packets-sent=(guint64)0,") != std::string::npos, "nothing sent: %s", v.c_str());
  }
  assert_contains(viewers[0] + viewers[1], a.session_url().substr(a.session_url().rfind('/') + 1));

  std::string text;
  std::map<std::string, double> m;
  // Receiver reports come every few seconds from webrtcbin players.
  bool reported = wait_until(15000, [&] {
    m = read_metrics(http, s.url("/metrics"), &text);
    return sample(m, "wish_viewers{stream=\"cam\"}") == 2 && sample(m, "wish_viewer_fraction_lost{stream=\"cam\"}") >= 0;
  });
  fail_unless(reported, "no viewers or no loss figures in\n%s", text.c_str());
  fail_unless(sample(m, "wish_sent_packets_total{stream=\"cam\"}") > 30, "%s", text.c_str());
  fail_unless(sample(m, "wish_sent_bytes_total{stream=\"cam\"}") > 10000, "%s", text.c_str());
  fail_unless_equals_int(sample(m, "wish_sessions_created_total{endpoint=\"/cam\"}"), 2);
  fail_unless(sample(m, "wish_viewer_fraction_lost{stream=\"cam\"}") < 0.05, "%s", text.c_str());
  double rtt = sample(m, "wish_viewer_rtt_seconds{stream=\"cam\"}");
  fail_unless(rtt < 1, "round trip %f s on 127.0.0.1", rtt);  // -1: the players echoed no sender report
  double sent = sample(m, "wish_sent_packets_total{stream=\"cam\"}");
  // A keyframe asked for downstream of a player becomes its PLI (rtpsession), and counts.
  gst_element_send_event(a.pipeline, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
  fail_unless(wait_until(5000, [&] {
    m = read_metrics(http, s.url("/metrics"), &text);
    return sample(m, "wish_keyframe_requests_total{stream=\"cam\"}") > 0;
  }), "the player's PLI was not counted:\n%s", text.c_str());

  fail_unless_equals_int(http.request("DELETE", a.session_url()).status, 200);
  fail_unless(wait_until(5000, [&] {
    m = read_metrics(http, s.url("/metrics"), &text);
    return sample(m, "wish_viewers{stream=\"cam\"}") == 1;
  }), "%s", text.c_str());
  fail_unless_equals_int(sample(m, "wish_sessions_ended_total{endpoint=\"/cam\",reason=\"closed\"}"), 1);
  fail_unless(sample(m, "wish_sent_packets_total{stream=\"cam\"}") >= sent, "the packets of the viewer that left vanished");
  stats_viewers(s.sink, &count);
  fail_unless_equals_int(count, 1);
}
GST_END_TEST;

// wish-viewer-joined and wish-viewer-left, with the session and the count, as for webrtcbin viewers.
GST_START_TEST(test_viewer_messages) {
  SharedServer s;
  TestPlayer player(h264());
  HttpClient http;
  HttpResult r = negotiate(http, player, s.url("/cam"));
  std::string location = r.header("Location"), id = location.substr(location.rfind('/') + 1);
  std::string joined = wait_bus_message(s.pipeline, "wish-viewer-joined", 5000);
  assert_contains(joined, "session-id=(string)" + id);
  assert_contains(joined, "viewers=(uint)1");
  fail_unless(player.wait_video_frames(10, 10000));
  fail_unless_equals_int(count_elements(s.sink, "webrtcbin"), 0);
  fail_unless_equals_int(http.request("DELETE", s.url(location)).status, 200);
  std::string left = wait_bus_message(s.pipeline, "wish-viewer-left", 5000);
  assert_contains(left, "session-id=(string)" + id);
  assert_contains(left, "reason=(string)closed");
  assert_contains(left, "viewers=(uint)0");
}
GST_END_TEST;

// The offer with a fingerprint no certificate has: DTLS fails with it.
static std::string with_wrong_fingerprint(std::string offer) {
  std::string wrong = "a=fingerprint:sha-256 ";
  for (int i = 0; i < 32; i++) wrong += std::string(i ? ":" : "") + "AB";
  for (size_t at = offer.find("a=fingerprint:"); at != std::string::npos; at = offer.find("a=fingerprint:", at + 1))
    offer.replace(at, offer.find_first_of("\r\n", at) - at, wrong);
  return offer;
}

// A viewer whose DTLS handshake fails (its offer names another certificate) ends as a
// webrtcbin viewer would: wish-viewer-left and the metrics say connection-lost.
GST_START_TEST(test_failed_viewer_ends_as_connection_lost) {
  SharedServer s("metrics-path=/metrics");
  TestPlayer player(h264());
  HttpClient http;
  std::string offer = with_wrong_fingerprint(player.create_offer());
  HttpResult r;
  fail_unless(wait_until(10000, [&] {
    r = http.request("POST", s.url("/cam"), {{"Content-Type", "application/sdp"}}, offer);
    return r.status == 201;
  }), "POST: %u %s", r.status, r.body.c_str());
  fail_unless(player.set_remote_answer(r.body));
  std::string left = wait_bus_message(s.pipeline, "wish-viewer-left", 15000);
  assert_contains(left, "reason=(string)connection-lost");
  fail_unless_equals_int(count_elements(s.sink, "webrtcbin"), 0);
  std::string text;
  std::map<std::string, double> m = read_metrics(http, s.url("/metrics"), &text);
  fail_unless_equals_int(sample(m, "wish_sessions_ended_total{endpoint=\"/cam\",reason=\"connection-lost\"}"), 1);
  fail_unless_equals_int(player.video_frames(), 0);
}
GST_END_TEST;

// switch-stream re-points a shared viewer: it sees the other stream on its one SSRC, and the
// stats say what it is shown.
GST_START_TEST(test_switch_stream) {
  ServerPipeline p;
  std::string src = " ! video/x-raw,width=320,height=240,framerate=30/1 ! ";
  p.start("whepserversink name=red path=/red shared-transport=true" + p.props + " whepserversink name=blue path=/blue" +
          p.props + " videotestsrc is-live=true pattern=red" + src + "red. audiotestsrc is-live=true ! red."
          " videotestsrc is-live=true pattern=blue" + src + "blue. audiotestsrc is-live=true ! blue.");
  GstElement *red = p.element("red");
  TestPlayer viewer(h264());
  HttpClient http;
  negotiate(http, viewer, p.url("/red"));
  fail_unless(viewer.wait_color(10000, is_red), "never red");
  fail_unless_equals_int(count_elements(red, "webrtcbin"), 0);
  gboolean ok = FALSE;
  g_signal_emit_by_name(red, "switch-stream", "red", "blue", &ok);
  fail_unless(ok);
  fail_unless(viewer.wait_color(3000, wish_test::is_blue), "not blue 3 s after switch-stream");
  guint count = 0;
  std::vector<std::string> viewers = stats_viewers(red, &count);
  fail_unless_equals_int(count, 1);
  assert_contains(viewers[0], "showing=(string)blue");
  g_signal_emit_by_name(red, "switch-stream", "red", nullptr, &ok);
  fail_unless(ok);
  fail_unless(viewer.wait_color(3000, is_red), "not red again 3 s after switching back");
  fail_unless_equals_int(viewer.video_ssrcs().size(), 1);
  gst_object_unref(red);
}
GST_END_TEST;

// Releasing an input pad ends the shared viewers it fed, as it ends webrtcbin ones.
GST_START_TEST(test_input_removed_ends_viewer) {
  SharedServer s;
  TestPlayer player(h264());
  HttpClient http;
  negotiate(http, player, s.url("/cam"));
  fail_unless(player.wait_audio_buffers(10, 10000));
  release_input(s.sink, s.element("asrc"));
  std::string left = wait_bus_message(s.pipeline, "wish-viewer-left", 5000);
  assert_contains(left, "reason=(string)input-removed");
}
GST_END_TEST;

// Stopped and started again, the element serves shared viewers as at first: one plays, and
// one whose DTLS fails is told apart from one that never connected.
GST_START_TEST(test_restarted_element_serves_anew) {
  SharedServer s;
  {
    Player first(s.url("/cam"));
    fail_unless(first.wait_video(30, 10000));
  }
  fail_unless(gst_element_set_state(s.pipeline, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS);
  fail_unless(gst_element_set_state(s.pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  Player again(s.url("/cam"));
  fail_unless(again.wait_video(30, 10000), "no video after the restart");
  fail_unless_equals_int(count_elements(s.sink, "webrtcbin"), 0);
  TestPlayer player(h264());
  HttpClient http;
  std::string offer = with_wrong_fingerprint(player.create_offer());
  HttpResult r = http.request("POST", s.url("/cam"), {{"Content-Type", "application/sdp"}}, offer);
  fail_unless_equals_int(r.status, 201);
  fail_unless(player.set_remote_answer(r.body));
  // Before viewer-timeout (10 s) would end it as not-connected.
  std::string left = wait_bus_message(s.pipeline, "wish-viewer-left", 8000);
  assert_contains(left, "reason=(string)connection-lost");
}
GST_END_TEST;

// WHEP server-sent events: active, the viewer count as shared viewers come and go, and
// reconnect (reconnect-viewers) moving the player to a new shared session.
GST_START_TEST(test_server_sent_events) {
  SharedServer s;
  Player a(s.url("/cam"));
  EventLog log(a);
  fail_unless(a.wait_video(30, 10000));
  fail_unless(log.wait("active", 5000), "no active event: %zu messages", log.seen.size());
  fail_unless(log.wait("viewercount", 5000, "viewercount=(gint64)1"));
  {
    Player b(s.url("/cam"), "events=viewercount");
    fail_unless(b.wait_video(10, 10000));
    fail_unless(log.wait("viewercount", 5000, "viewercount=(gint64)2"), "a never heard of b");
  }
  size_t mark = log.seen.size();
  fail_unless(log.wait("viewercount", 5000, "viewercount=(gint64)1", mark), "a never heard b leave");
  std::string before = a.session_url();
  guint told = 0;
  g_signal_emit_by_name(s.sink, "reconnect-viewers", nullptr, &told);
  fail_unless_equals_int(told, 1);
  mark = log.seen.size();
  fail_unless(log.wait("reconnect", 5000, "url=(string)/cam", mark));
  fail_unless(wait_until(5000, [&] { return !a.session_url().empty() && a.session_url() != before; }));
  guint64 frames = a.video;
  fail_unless(a.wait_video(frames + 30, 10000), "no video after the reconnect");
  fail_unless_equals_int(count_elements(s.sink, "webrtcbin"), 0);
  fail_unless(log.error.empty(), "%s", log.error.c_str());
}
GST_END_TEST;

// The SDP without its candidates, and the candidates ("candidate:...").
static std::string without_candidates(const std::string &sdp) {
  std::string out;
  size_t at = 0;
  while (at < sdp.size()) {
    size_t end = sdp.find('\n', at);
    end = end == std::string::npos ? sdp.size() : end + 1;
    std::string line = sdp.substr(at, end - at);
    if (line.rfind("a=candidate:", 0) != 0 && line.rfind("a=end-of-candidates", 0) != 0) out += line;
    at = end;
  }
  return out;
}
static std::vector<std::string> candidates_of(const std::string &sdp) {
  std::vector<std::string> out;
  for (size_t at = sdp.find("a=candidate:"); at != std::string::npos; at = sdp.find("a=candidate:", at + 1))
    out.push_back(sdp.substr(at + 2, sdp.find_first_of("\r\n", at) - at - 2));
  return out;
}

// Neither side's description has candidates: ICE starts only with those the player trickles
// in a PATCH (then the server's checks reach the player, which answers them).
GST_START_TEST(test_trickle_patch) {
  SharedServer s;
  TestPlayer player(h264());
  HttpClient http;
  std::string offer = player.create_offer();
  std::vector<std::string> candidates = candidates_of(offer);
  fail_if(candidates.empty(), "the player gathered nothing:\n%s", offer.c_str());
  HttpResult r;
  fail_unless(wait_until(10000, [&] {
    r = http.request("POST", s.url("/cam"), {{"Content-Type", "application/sdp"}}, without_candidates(offer));
    return r.status == 201;
  }), "POST: %u %s", r.status, r.body.c_str());
  fail_unless(player.set_remote_answer(without_candidates(r.body)));
  fail_if(player.wait_video_frames(1, 1500), "media without any candidate exchanged");
  size_t mid = offer.find("a=mid:");
  wish::SdpFrag frag;
  frag.media.push_back({offer.substr(mid + 6, offer.find_first_of("\r\n", mid) - mid - 6), candidates, true});
  frag.end_of_candidates = true;
  HttpResult patched = http.request("PATCH", s.url(r.header("Location")),
                                    {{"Content-Type", "application/trickle-ice-sdpfrag"}, {"If-Match", r.header("ETag")}},
                                    wish::build_sdpfrag(frag));
  fail_unless_equals_int(patched.status, 204);
  fail_unless(player.wait_video_frames(30, 15000), "no video after the trickled candidates");
  fail_unless(player.wait_color(5000, is_red));
}
GST_END_TEST;

// ICE restart (PATCH with the player's new credentials): new server credentials in the
// answer fragment, a new ETag, and the media goes on over the new ICE session.
GST_START_TEST(test_ice_restart) {
  SharedServer s;
  TestPlayer player(h264());
  HttpClient http;
  HttpResult r = negotiate(http, player, s.url("/cam"));
  fail_unless(player.wait_video_frames(30, 15000));
  std::string location = s.url(r.header("Location")), etag = r.header("ETag");
  size_t at = r.body.find("a=ice-ufrag:");
  std::string old_ufrag = r.body.substr(at + 12, r.body.find_first_of("\r\n", at) - at - 12);
  std::string ufrag, pwd;
  std::vector<std::string> cands;
  fail_unless(player.restart_ice(&ufrag, &pwd, &cands));
  wish::SdpFrag frag;
  frag.ice_ufrag = ufrag;
  frag.ice_pwd = pwd;
  frag.media.push_back({"0", cands, true});
  HttpResult rs = http.request("PATCH", location, {{"Content-Type", "application/trickle-ice-sdpfrag"}, {"If-Match", "*"}},
                               wish::build_sdpfrag(frag));
  fail_unless_equals_int(rs.status, 200);
  assert_str(rs.header("Content-Type"), "application/trickle-ice-sdpfrag");
  fail_if(rs.header("ETag").empty() || rs.header("ETag") == etag);
  std::string err;
  auto answer = wish::parse_sdpfrag(rs.body, &err);
  fail_unless(answer.has_value(), "%s", err.c_str());
  fail_if(answer->ice_ufrag.empty() || answer->ice_pwd.empty());
  fail_if(answer->ice_ufrag == old_ufrag, "the same ICE credentials after the restart");
  fail_unless(answer->candidate_count() > 0);
  fail_unless(player.apply_remote_ice(answer->ice_ufrag, answer->ice_pwd, answer->media[0].candidates));
  guint64 before = player.video_frames();
  fail_unless(player.wait_video_frames(before + 60, 15000), "media stopped after the ICE restart");
  std::string ice = player.ice_connection_state();
  fail_unless(ice == "connected" || ice == "completed", "ICE %s after the restart", ice.c_str());
  fail_unless_equals_int(http.request("PATCH", location, {{"Content-Type", "application/trickle-ice-sdpfrag"}, {"If-Match", etag}},
                                      "a=end-of-candidates\r\n").status, 412);
}
GST_END_TEST;

// A player loses every 10th video packet: it asks for them (NACK), the shared transport sends
// them again on the rtx payload type, nearly every frame decodes, and the metrics say so.
GST_START_TEST(test_rtx_answers_nack) {
  SharedServer s("metrics-path=/metrics");
  Player player(s.url("/cam"), "video-codecs=h264 audio-codecs=none latency=200");
  wish_test::RtpDropper dropper(player.pipeline, {102}, 10);  // whepsrc offers H.264 as 102
  fail_unless(player.wait_video(15, 15000), "no video");
  guint64 before = player.video;
  g_usleep(6 * G_USEC_PER_SEC);
  guint64 frames = player.video - before;
  wish_test::RtxCounters got = wish_test::rtx_counters(GST_BIN(player.pipeline));
  g_printerr("shared: frames %" G_GUINT64_FORMAT "/180, dropped %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT ", player: %s\n",
             frames, dropper.dropped(), dropper.seen(), got.text().c_str());
  fail_unless_equals_int(count_elements(s.sink, "webrtcbin"), 0);
  fail_unless(dropper.dropped() >= 10, "only %" G_GUINT64_FORMAT " packets dropped", dropper.dropped());
  fail_unless(got.nacks_sent > 0, "whepsrc sent no NACK: %s", got.text().c_str());
  fail_unless(got.rtx_received > 0, "whepsrc received no retransmission: %s", got.text().c_str());
  fail_unless(got.rtx_recovered * 10 >= dropper.dropped() * 8, "recovered %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT,
              got.rtx_recovered, dropper.dropped());
  fail_unless(frames * 100 >= 180 * 95, "decoded %" G_GUINT64_FORMAT " of 180 frames", frames);
  HttpClient http;
  std::string text;
  std::map<std::string, double> m;
  fail_unless(wait_until(3000, [&] {
    m = read_metrics(http, s.url("/metrics"), &text);
    return sample(m, "wish_retransmitted_packets_total{stream=\"cam\"}") > 0;
  }), "no retransmission in the metrics:\n%s", text.c_str());
  fail_unless(sample(m, "wish_nacks_received_total{stream=\"cam\"}") >= sample(m, "wish_retransmitted_packets_total{stream=\"cam\"}"),
              "%s", text.c_str());
}
GST_END_TEST;

// do-retransmission=false: the answer has neither nack nor rtx, as a webrtcbin viewer's,
// and the viewer still plays on the shared transport.
GST_START_TEST(test_without_retransmission) {
  SharedServer s("do-retransmission=false");
  TestPlayer player(h264());
  HttpClient http;
  HttpResult r = negotiate(http, player, s.url("/cam"));
  fail_unless_equals_int(r.status, 201);
  fail_unless(r.body.find("rtcp-fb:") != std::string::npos, "%s", r.body.c_str());
  fail_unless(r.body.find(" nack\r\n") == std::string::npos, "nack answered:\n%s", r.body.c_str());
  fail_unless(r.body.find("rtx/") == std::string::npos, "rtx answered:\n%s", r.body.c_str());
  fail_unless(player.wait_video_frames(10, 10000), "no video");
  fail_unless_equals_int(count_elements(s.sink, "webrtcbin"), 0);
}
GST_END_TEST;

// The shared agent gathers host candidates only: with a STUN (or TURN) server set, viewers
// get a webrtcbin, which gathers through it.
GST_START_TEST(test_ice_servers_go_to_webrtcbin) {
  SharedServer s("stun-server=stun://127.0.0.1:9");
  Player viewer(s.url("/cam"));
  fail_unless(viewer.wait_video(30, 15000), "the webrtcbin viewer decoded no video");
  fail_unless_equals_int(count_elements(s.sink, "webrtcbin"), 1);
}
GST_END_TEST;

// A stream without audio, a viewer that offers audio too: the answer rejects its audio
// m-line in a form webrtcbin takes (it wants ICE credentials and a fingerprint on every
// m-line), and the video plays.
GST_START_TEST(test_rejected_mline_answer_plays) {
  ServerPipeline p;
  p.start("whepserversink name=cam path=/cam" + p.props +
          " videotestsrc is-live=true pattern=red ! video/x-raw,width=320,height=240,framerate=30/1 ! cam.");
  GstElement *sink = p.element("cam");
  Player viewer(p.url("/cam"));
  fail_unless(viewer.wait_video(30, 10000), "whepsrc decoded no video: %s", viewer.wait_message("error", 1).c_str());
  fail_unless_equals_int(count_elements(sink, "webrtcbin"), 0);
  gst_object_unref(sink);
}
GST_END_TEST;

// The first element of a bin, at any depth, made by this factory (a reference; null when none).
static GstElement *find_element(GstElement *bin, const char *factory) {
  GstElement *found = nullptr;
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(bin));
  GValue item = G_VALUE_INIT;
  while (!found && gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElement *e = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory *f = gst_element_get_factory(e);
    if (f && g_str_equal(GST_OBJECT_NAME(f), factory)) found = GST_ELEMENT(gst_object_ref(e));
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return found;
}

static GstPadProbeReturn count_force_key_unit(GstPad *, GstPadProbeInfo *info, gpointer data) {
  if (gst_video_event_is_force_key_unit(GST_PAD_PROBE_INFO_EVENT(info)))
    static_cast<std::atomic<int> *>(data)->fetch_add(1);
  return GST_PAD_PROBE_OK;
}

// A joining viewer costs the encoder one key frame, asked for once DTLS is up: one asked for
// before (when its outputs were attached) could not reach it and held the one that could
// behind the key frame pacing (500 ms), so the first picture came late.
GST_START_TEST(test_joining_viewer_asks_one_keyframe) {
  SharedServer s("key-int-max=600");  // no key frame of the encoder's own in the test's time
  GstElement *encoder = nullptr;
  fail_unless(wait_until(5000, [&] { return (encoder = find_element(s.sink, "x264enc")) != nullptr; }),
              "no x264enc in the server");
  static std::atomic<int> requests;  // outlives the pad, should the test fail with the probe on
  requests = 0;
  GstPad *src = gst_element_get_static_pad(encoder, "src");
  gulong probe = gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, count_force_key_unit, &requests, nullptr);
  {
    Player viewer(s.url("/cam"), "audio-codecs=none");
    fail_unless(viewer.wait_video(1, 10000), "no video");
    fail_unless_equals_int(requests.load(), 1);
    fail_unless_equals_int(count_elements(s.sink, "webrtcbin"), 0);
  }
  gst_pad_remove_probe(src, probe);
  gst_object_unref(src);
  gst_object_unref(encoder);
}
GST_END_TEST;

static Suite *shared_transport_suite(void) {
  Suite *s = suite_create("shared-transport");
  TCase *tc = tcase_create("shared-transport");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_whepsrc_viewer_plays);
  tcase_add_test(tc, test_two_viewers_at_once);
  tcase_add_test(tc, test_delete_and_vanished_viewer_free_their_place);
  tcase_add_test(tc, test_offer_it_cannot_serve_goes_to_webrtcbin);
  tcase_add_test(tc, test_decoded_colour_and_tone);
  tcase_add_test(tc, test_stats_and_metrics_count_shared_viewers);
  tcase_add_test(tc, test_viewer_messages);
  tcase_add_test(tc, test_failed_viewer_ends_as_connection_lost);
  tcase_add_test(tc, test_switch_stream);
  tcase_add_test(tc, test_input_removed_ends_viewer);
  tcase_add_test(tc, test_restarted_element_serves_anew);
  tcase_add_test(tc, test_server_sent_events);
  tcase_add_test(tc, test_trickle_patch);
  tcase_add_test(tc, test_ice_restart);
  tcase_add_test(tc, test_rtx_answers_nack);
  tcase_add_test(tc, test_without_retransmission);
  tcase_add_test(tc, test_ice_servers_go_to_webrtcbin);
  tcase_add_test(tc, test_joining_viewer_asks_one_keyframe);
  tcase_add_test(tc, test_rejected_mline_answer_plays);
  return s;
}

WISH_CHECK_MAIN(shared_transport);
