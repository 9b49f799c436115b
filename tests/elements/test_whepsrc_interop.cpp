// whepsrc against a WHEP server nobody here wrote: werift (an independent TypeScript WebRTC
// stack from npm) behind the small HTTP wrapper in tests/interop.
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <string>

#include "fixtures.h"
#include "whepsrc_player.h"

// The werift server, started by PID and stopped by PID.
struct WeriftServer {
  GPid pid = 0;
  std::string url;
  explicit WeriftServer(const std::string &video) {
    std::string script = std::string(INTEROP_DIR) + "/run-werift-whep-server.sh";
    gchar *argv[] = {const_cast<gchar *>("bash"), const_cast<gchar *>(script.c_str()), const_cast<gchar *>("--port"),
                     const_cast<gchar *>("0"), const_cast<gchar *>("--video"), const_cast<gchar *>(video.c_str()),
                     nullptr};
    gint out_fd = -1;
    GError *err = nullptr;
    fail_unless(g_spawn_async_with_pipes(nullptr, argv, nullptr,
                                         static_cast<GSpawnFlags>(G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD),
                                         nullptr, nullptr, &pid, nullptr, &out_fd, nullptr, &err),
                "%s", err ? err->message : "");
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
    if (line.rfind("WHEP_URL=", 0) == 0) url = std::string(g_strstrip(&line[9]));
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

GST_START_TEST(test_werift_h264) { play_werift("h264", "rtph264depay"); }
GST_END_TEST;

GST_START_TEST(test_werift_vp8) { play_werift("vp8", "rtpvp8depay"); }
GST_END_TEST;

static Suite *interop_suite(void) {
  Suite *s = suite_create("whepsrc_interop");
  TCase *tc = tcase_create("werift");
  tcase_set_timeout(tc, 180);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_werift_h264);
  tcase_add_test(tc, test_werift_vp8);
  return s;
}

GST_CHECK_MAIN(interop);
