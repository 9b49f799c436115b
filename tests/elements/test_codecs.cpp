// Every viewer gets a picture: viewers that take different codecs play one whepserversink at
// once (raw input encoded once per codec, encoded input transcoded once per codec), checked
// in decoded pixels and tones; with transcoding off the answer says why instead of leaving
// the video m-line inactive. The codecs cameras bring (H.265, G.711, G.722) go through.
#include <gst/gst.h>

#include <memory>
#include <string>
#include <vector>

#include "http_client.h"
#include "test_player.h"
#include "fixtures.h"

using wish_test::HttpClient;
using wish_test::HttpResult;
using wish_test::PlayerOptions;
using wish_test::TestPlayer;
using wish_test::is_blue;
using wish_test::is_green;
using wish_test::is_red;


static PlayerOptions video_only(std::vector<std::string> codecs, std::vector<std::string> audio = {"OPUS"}) {
  PlayerOptions o;
  o.video_codecs = std::move(codecs);
  o.audio_codecs = std::move(audio);
  return o;
}

// A red 440 Hz stream on /cam; `upstream` encodes before the sink ("" : raw input).
struct CodecServer : ServerPipeline {
  GstElement *sink = nullptr;
  CodecServer(const std::string &sink_props, const std::string &video_upstream = "",
              const std::string &audio_upstream = "") {
    start("whepserversink name=cam path=/cam" + props + " " + sink_props +
          " videotestsrc is-live=true pattern=red ! video/x-raw,width=320,height=240,framerate=30/1 ! " +
          video_upstream + " cam. audiotestsrc is-live=true freq=440 ! " + audio_upstream + " cam.");
    sink = element("cam");
  }
  ~CodecServer() { gst_object_unref(sink); }
};

GST_START_TEST(test_raw_input_every_codec_at_once) {
  CodecServer s("");
  HttpClient http;
  std::vector<std::unique_ptr<TestPlayer>> players;
  std::vector<std::string> sessions;
  const std::vector<std::vector<std::string>> codecs = {{"VP8"}, {"H264"}, {"VP9"}, {"VP8"}};
  for (const auto &c : codecs) {
    players.push_back(std::make_unique<TestPlayer>(video_only(c)));
    HttpResult r = negotiate(http, *players.back(), s.url("/cam"));
    sessions.push_back(s.url(r.header("Location")));
    fail_if(r.body.find("a=inactive") != std::string::npos, "an m-line was left inactive:\n%s", r.body.c_str());
  }
  for (size_t i = 0; i < players.size(); i++) {
    fail_unless(players[i]->wait_color(10000, is_red), "viewer %zu (%s) shows no red", i, codecs[i][0].c_str());
    fail_unless(players[i]->wait_audio_buffers(20, 5000));
  }
  assert_contains(players[0]->depayloaders(), "rtpvp8depay");
  assert_contains(players[1]->depayloaders(), "rtph264depay");
  assert_contains(players[2]->depayloaders(), "rtpvp9depay");
  // One encoder per codec, whatever the number of viewers in it.
  fail_unless_equals_int(count_elements(s.sink, "x264enc"), 1);
  fail_unless_equals_int(count_elements(s.sink, "vp8enc"), 1);
  fail_unless_equals_int(count_elements(s.sink, "vp9enc"), 1);
  // From the raw input: nothing decoded.
  fail_unless_equals_int(count_elements(s.sink, "avdec_h264"), 0);
  // The last VP9 viewer leaves: its encoder goes; the VP8 one stays for the other VP8 viewers.
  fail_unless_equals_int(http.request("DELETE", sessions[2]).status, 200);
  fail_unless_equals_int(http.request("DELETE", sessions[0]).status, 200);
  fail_unless(wait_until(8000, [&] { return count_elements(s.sink, "vp9enc") == 0; }), "the VP9 encoder stayed");
  fail_unless_equals_int(count_elements(s.sink, "vp8enc"), 1);
  guint64 frames = players[3]->video_frames();
  fail_unless(players[3]->wait_video_frames(frames + 30, 5000), "the remaining VP8 viewer stopped");
}
GST_END_TEST;

GST_START_TEST(test_encoded_input_transcoded_for_a_vp8_viewer) {
  CodecServer s("", "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! video/x-h264,profile=constrained-baseline !");
  HttpClient http;
  TestPlayer h264(video_only({"H264"})), vp8(video_only({"VP8"}));
  negotiate(http, h264, s.url("/cam"));
  HttpResult r = negotiate(http, vp8, s.url("/cam"));
  assert_contains(r.body, "VP8/90000");
  fail_unless(h264.wait_color(10000, is_red));
  fail_unless(vp8.wait_color(10000, is_red), "the VP8 viewer of an H.264 stream shows no red");
  assert_contains(vp8.depayloaders(), "rtpvp8depay");
  fail_unless_equals_int(count_elements(s.sink, "vp8enc"), 1);
}
GST_END_TEST;

GST_START_TEST(test_transcoding_off_says_why) {
  CodecServer s("transcode=false counter-offer=never");
  HttpClient http;
  TestPlayer vp8(video_only({"VP8"}));
  HttpResult r;
  // Until the stream is up the answer is 409; then 422 saying why.
  fail_unless(wait_until(10000, [&] {
    r = http.request("POST", s.url("/cam"), {{"Content-Type", "application/sdp"}}, vp8.create_offer());
    return r.status != 409 && r.status != 503;
  }));
  fail_unless_equals_int(r.status, 422);
  assert_str(r.header("Content-Type"), "application/problem+json");
  assert_contains(r.body, "transcoding is off");
  assert_contains(r.body, "H264");
  // With counter-offers allowed, the server offers what it has instead (406).
  CodecServer c("transcode=false");
  TestPlayer other(video_only({"VP8"}));
  fail_unless(wait_until(10000, [&] {
    r = http.request("POST", c.url("/cam"), {{"Content-Type", "application/sdp"}}, other.create_offer());
    return r.status != 409 && r.status != 503;
  }));
  fail_unless_equals_int(r.status, 406);
  assert_contains(r.body, "H264/90000");
}
GST_END_TEST;

GST_START_TEST(test_camera_codecs) {
  // H.265 and G.711 from a camera: relayed as they are to viewers that take them.
  CodecServer s("", "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=30 !",
                "audioresample ! audio/x-raw,rate=8000,channels=1 ! mulawenc !");
  HttpClient http;
  TestPlayer camera_viewer(video_only({"H265"}, {"PCMU"}));
  HttpResult r = negotiate(http, camera_viewer, s.url("/cam"));
  assert_contains(r.body, "H265/90000");
  assert_contains(r.body, "PCMU/8000");
  fail_unless(camera_viewer.wait_color(10000, is_red), "no red over H.265");
  fail_unless(wait_until(5000, [&] { return camera_viewer.tone_level(440) > 0.1; }), "no 440 Hz tone over PCMU");
  // Relayed as it came: nothing decoded or encoded in the server for this viewer.
  fail_unless_equals_int(count_elements(s.sink, "x265enc"), 0);
  fail_unless_equals_int(count_elements(s.sink, "avdec_h265"), 0);
  fail_unless_equals_int(count_elements(s.sink, "mulawdec"), 0);
  // A browser-like viewer (VP8, Opus) of the same camera: transcoded, once.
  TestPlayer browser(video_only({"VP8"}, {"OPUS"}));
  negotiate(http, browser, s.url("/cam"));
  fail_unless(browser.wait_color(10000, is_red), "no red for the VP8 viewer of the H.265 camera");
  fail_unless(wait_until(5000, [&] { return browser.tone_level(440) > 0.1; }), "no tone for the Opus viewer of G.711");
  // Raw audio encoded to G.722 and PCMA for viewers that take only those.
  TestPlayer g722(video_only({"H265"}, {"G722"})), pcma(video_only({"H265"}, {"PCMA"}));
  CodecServer raw("");
  negotiate(http, g722, raw.url("/cam"));
  negotiate(http, pcma, raw.url("/cam"));
  fail_unless(wait_until(8000, [&] { return g722.tone_level(440) > 0.1; }), "no tone over G.722");
  fail_unless(wait_until(8000, [&] { return pcma.tone_level(440) > 0.1; }), "no tone over PCMA");
  fail_unless(g722.wait_color(10000, is_red), "no red over H.265 encoded from raw");
}
GST_END_TEST;

// A camera's H.265 and G.711 through all four elements: whipsink publishes them as they are,
// whipserversrc relays them without re-encoding, a webrtcbin viewer and whepsrc (asked for
// h265/pcmu) decode them.
GST_START_TEST(test_camera_codecs_through_every_element) {
  ServerPipeline server;
  server.start("whipserversrc name=in" + server.props + " whepserversink name=out" + server.props);
  GError *err = nullptr;
  GstElement *camera = gst_parse_launch(
      ("whipsink name=w ice-local-addresses=127.0.0.1 whip-endpoint=" + server.url("/whip/cam") +
       " videotestsrc is-live=true pattern=red ! video/x-raw,width=320,height=240,framerate=30/1 ! "
       "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! w. "
       "audiotestsrc is-live=true freq=440 ! audioresample ! audio/x-raw,rate=8000,channels=1 ! mulawenc ! w.")
          .c_str(),
      &err);
  fail_unless(camera != nullptr, "%s", err ? err->message : "");
  watch_test_pipeline(camera);
  fail_unless(gst_element_set_state(camera, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  HttpClient http;
  TestPlayer viewer(video_only({"H265"}, {"PCMU"}));
  HttpResult r = negotiate(http, viewer, server.url("/whep/cam"));
  assert_contains(r.body, "H265/90000");
  assert_contains(r.body, "PCMU/8000");
  fail_unless(viewer.wait_color(10000, is_red), "no red over H.265 through the relay");
  fail_unless(wait_until(5000, [&] { return viewer.tone_level(440) > 0.1; }), "no tone over PCMU through the relay");
  GstElement *out = server.element("out");
  fail_unless_equals_int(count_elements(out, "x265enc") + count_elements(out, "avdec_h265"), 0);
  gst_object_unref(out);
  // whepsrc asked for the camera's codecs decodes them.
  GstElement *player = gst_pipeline_new("whepsrc-player");
  GstElement *src = gst_parse_launch(("whepsrc ice-local-addresses=127.0.0.1 video-codecs=h265 audio-codecs=pcmu "
                                      "whep-endpoint=" + server.url("/whep/cam")).c_str(), &err);
  fail_unless(src != nullptr);
  gst_bin_add(GST_BIN(player), src);
  CountingSinks sinks;
  sinks.count_pads_of(player, src);
  watch_test_pipeline(player);
  gst_element_set_state(player, GST_STATE_PLAYING);
  fail_unless(sinks.wait_video(30, 10000), "whepsrc decoded no H.265");
  fail_unless(sinks.wait_audio(20, 5000), "whepsrc decoded no PCMU");
  {
    std::lock_guard<std::mutex> lock(sinks.mutex);
    assert_str(sinks.video_caps, "video/x-raw");
  }
  gst_element_set_state(player, GST_STATE_NULL);
  gst_object_unref(player);
  gst_element_set_state(camera, GST_STATE_NULL);
  gst_object_unref(camera);
}
GST_END_TEST;

static Suite *codecs_suite(void) {
  Suite *s = suite_create("codecs");
  TCase *tc = tcase_create("codecs");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_raw_input_every_codec_at_once);
  tcase_add_test(tc, test_encoded_input_transcoded_for_a_vp8_viewer);
  tcase_add_test(tc, test_transcoding_off_says_why);
  tcase_add_test(tc, test_camera_codecs);
  tcase_add_test(tc, test_camera_codecs_through_every_element);
  return s;
}

WISH_CHECK_MAIN(codecs);
