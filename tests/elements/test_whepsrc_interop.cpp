// whepsrc and whipsink against servers nobody here wrote: werift (an independent TypeScript
// WebRTC stack from npm) behind the small HTTP wrappers in tests/interop.
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <string>

#include <json-glib/json-glib.h>

#include "http_client.h"
#include "fixtures.h"
#include "whepsrc_player.h"

// The werift server, started by PID and stopped by PID.
struct WeriftServer {
  GPid pid = 0;
  std::string url;
  // run-werift-whep-server.sh --video <codec>, or run-werift-whip-server.sh when video is empty.
  explicit WeriftServer(const std::string &video) {
    std::string script = std::string(INTEROP_DIR) + (video.empty() ? "/run-werift-whip-server.sh" : "/run-werift-whep-server.sh");
    gchar *argv[] = {const_cast<gchar *>("bash"), const_cast<gchar *>(script.c_str()), const_cast<gchar *>("--port"),
                     const_cast<gchar *>("0"), video.empty() ? nullptr : const_cast<gchar *>("--video"),
                     const_cast<gchar *>(video.c_str()), nullptr};
    gint out_fd = -1;
    GError *err = nullptr;
    fail_unless(g_spawn_async_with_pipes(nullptr, argv, nullptr,
                                         static_cast<GSpawnFlags>(G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD),
                                         nullptr, nullptr, &pid, nullptr, &out_fd, nullptr, &err),
                "%s", err ? err->message : "");
    wish_test::kill_at_teardown(pid);
    // First line: WHEP_URL=... (npm ci may run first: allow time)
    GIOChannel *ch = g_io_channel_unix_new(out_fd);
    gint64 end = g_get_monotonic_time() + 90 * G_USEC_PER_SEC;
    std::string line;
    while (g_get_monotonic_time() < end && line.empty()) {
      GPollFD pfd = {out_fd, G_IO_IN | G_IO_HUP, 0};
      if (g_poll(&pfd, 1, 500) <= 0) continue;
      gchar *l = nullptr;
      gsize len = 0;
      if (g_io_channel_read_line(ch, &l, &len, nullptr, nullptr) != G_IO_STATUS_NORMAL) break;
      line = l ? l : "";
      g_free(l);
    }
    g_io_channel_unref(ch);
    if (line.rfind("WHEP_URL=", 0) == 0 || line.rfind("WHIP_URL=", 0) == 0) url = std::string(g_strstrip(&line[9]));
  }
  ~WeriftServer() {
    if (!pid) return;
    kill(pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 100 && waitpid(pid, &status, WNOHANG) == 0; i++) g_usleep(50 * 1000);
    if (waitpid(pid, &status, WNOHANG) == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
    g_spawn_close_pid(pid);
    wish_test::forget_process(pid);
  }
};

static void play_werift(const char *video, const char *depay_caps) {
  if (!g_find_program_in_path("node")) {
    g_print("SKIP: node is not installed\n");
    return;
  }
  WeriftServer server(video);
  fail_if(server.url.empty(), "the werift WHEP server did not start");
  Player player(server.url);
  bool video_ok = player.wait_video(30, 20000);
  bool audio_ok = player.wait_audio(20, 10000);
  // Which depayloader decodebin chose tells the codec werift sent.
  bool codec_ok = false;
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(player.src));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElementFactory *f = gst_element_get_factory(GST_ELEMENT(g_value_get_object(&item)));
    if (f && g_str_equal(GST_OBJECT_NAME(f), depay_caps)) codec_ok = true;
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  fail_unless(video_ok, "%s: %" G_GUINT64_FORMAT " decoded video frames", video, player.video.load());
  fail_unless(audio_ok, "%s: %" G_GUINT64_FORMAT " decoded audio buffers", video, player.audio.load());
  fail_unless(codec_ok, "%s: no %s in the pipeline", video, depay_caps);
}

// What werift's WHIP server counted for the first session: video frames and keyframes,
// audio packets and the negotiated video codec.
struct WhipCounts {
  gint64 frames = 0, keyframes = 0, audio_packets = 0;
  std::string codec;
};

static WhipCounts werift_counts(wish_test::HttpClient &http, const std::string &whip_url) {
  WhipCounts c;
  wish_test::HttpResult r = http.request("GET", whip_url + "/stats");
  JsonParser *parser = json_parser_new();
  if (r.status == 200 && json_parser_load_from_data(parser, r.body.c_str(), -1, nullptr)) {
    JsonObject *root = json_node_get_object(json_parser_get_root(parser));
    JsonArray *sessions = json_object_get_array_member(root, "sessions");
    if (sessions && json_array_get_length(sessions) > 0) {
      JsonObject *session = json_array_get_object_element(sessions, 0);
      JsonNode *video = json_object_get_member(session, "video");
      if (video && JSON_NODE_HOLDS_OBJECT(video)) {
        JsonObject *v = json_node_get_object(video);
        c.frames = json_object_get_int_member(v, "frames");
        c.keyframes = json_object_get_int_member(v, "keyframes");
        if (json_object_has_member(v, "codec") && !json_object_get_null_member(v, "codec"))
          c.codec = json_object_get_string_member(v, "codec");
      }
      JsonNode *audio = json_object_get_member(session, "audio");
      if (audio && JSON_NODE_HOLDS_OBJECT(audio)) c.audio_packets = json_object_get_int_member(json_node_get_object(audio), "packets");
    }
  }
  g_object_unref(parser);
  return c;
}

static void publish_werift(const char *codec_prop, const char *expected_codec) {
  if (!g_find_program_in_path("node")) {
    g_print("SKIP: node is not installed\n");
    return;
  }
  WeriftServer server("");
  fail_if(server.url.empty(), "the werift WHIP server did not start");
  std::string desc = std::string("whipsink name=w ice-local-addresses=127.0.0.1 video-codec=") + codec_prop +
                     " key-int-max=300 whip-endpoint=" + server.url +
                     " videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! w. "
                     "audiotestsrc is-live=true ! w.";
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(desc.c_str(), &err);
  fail_unless(pipeline != nullptr, "%s", err ? err->message : "");
  watch_test_pipeline(pipeline);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  wish_test::HttpClient http;
  WhipCounts c;
  bool flowing = wait_until(20000, [&] {
    c = werift_counts(http, server.url);
    return c.frames >= 30 && c.audio_packets > 0;
  });
  // A keyframe request from the server (RTCP PLI) gets a keyframe long before the 10 s GOP.
  gint64 keyframes_before = c.keyframes;
  wish_test::HttpResult pli = http.request("POST", server.url + "/pli");
  bool keyframe = wait_until(3000, [&] { return werift_counts(http, server.url).keyframes > keyframes_before; });
  if (!flowing) g_printerr("werift stats: %s\n", http.request("GET", server.url + "/stats").body.c_str());
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  fail_unless(flowing, "werift got %" G_GINT64_FORMAT " video frames, %" G_GINT64_FORMAT " audio packets", c.frames,
              c.audio_packets);
  assert_str(c.codec, expected_codec);
  fail_unless_equals_int(pli.status, 204);
  fail_unless(keyframe, "no keyframe within 3 s of the PLI");
}

GST_START_TEST(test_whipsink_to_werift_h264) { publish_werift("h264", "video/H264"); }
GST_END_TEST;

GST_START_TEST(test_whipsink_to_werift_vp8) { publish_werift("vp8", "video/VP8"); }
GST_END_TEST;

GST_START_TEST(test_werift_h264) { play_werift("h264", "rtph264depay"); }
GST_END_TEST;

GST_START_TEST(test_werift_vp8) { play_werift("vp8", "rtpvp8depay"); }
GST_END_TEST;

static Suite *interop_suite(void) {
  Suite *s = suite_create("whepsrc_interop");
  TCase *tc = tcase_create("werift");
  tcase_set_timeout(tc, 180);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_werift_h264);
  tcase_add_test(tc, test_werift_vp8);
  tcase_add_test(tc, test_whipsink_to_werift_h264);
  tcase_add_test(tc, test_whipsink_to_werift_vp8);
  return s;
}

WISH_CHECK_MAIN(interop);
