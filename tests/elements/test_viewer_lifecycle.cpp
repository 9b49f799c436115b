// The viewer lifecycle of whepserversink under churn: players that reload their page (POST +
// DELETE in a loop, one and four at a time) while a connected viewer keeps playing, and
// sessions whose player never connects, a player whose process stops and then vanishes.
// Real HTTP, real webrtcbin, 127.0.0.1 only.
#include <gst/gst.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "child_pipeline.h"
#include "http_client.h"
#include "test_player.h"
#include "fixtures.h"

using wish_test::HttpClient;
using wish_test::HttpResult;
using wish_test::TestPlayer;


static unsigned churn_cycles() {
  const char *env = g_getenv("WISH_CHURN_CYCLES");
  return env ? static_cast<unsigned>(atoi(env)) : 20000;
}

// The first error the pipeline posted, "" while there is none.
static std::string pipeline_error(GstElement *pipeline) {
  GstBus *bus = gst_element_get_bus(pipeline);
  std::string text;
  GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  if (m) {
    GError *err = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_error(m, &err, &dbg);
    text = std::string(err->message) + " | " + (dbg ? dbg : "");
    g_clear_error(&err);
    g_free(dbg);
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  return text;
}

// `workers` clients each POST the Chromium offer and DELETE the session, `cycles` in all,
// while a connected viewer plays; every 500 cycles its video and audio must have moved on.
static void churn(unsigned workers) {
  // The clients stand for many players but share one address: no per-client request rate.
  Server server("http-max-requests-per-client=0");
  fail_unless(server.wait_ready());
  TestPlayer viewer;
  HttpClient http;
  HttpResult r = http.request("POST", server.url(), {{"Content-Type", "application/sdp"}}, viewer.create_offer());
  fail_unless_equals_int(r.status, 201);
  fail_unless(viewer.set_remote_answer(r.body));
  fail_unless(viewer.wait_video_frames(10, 15000));
  fail_unless(viewer.wait_audio_buffers(10, 15000));

  const std::string offer = chromium_offer();
  const unsigned total = churn_cycles();
  std::atomic<unsigned> next{0}, done{0}, refused{0};
  std::atomic<bool> stop{false};
  std::string first_refusal;
  std::mutex refusal_mutex;
  std::vector<std::thread> threads;
  gint64 start = g_get_monotonic_time();
  for (unsigned w = 0; w < workers; w++) {
    threads.emplace_back([&] {
      HttpClient client;
      while (!stop && next++ < total) {
        HttpResult p = client.request("POST", server.url(), {{"Content-Type", "application/sdp"}}, offer);
        HttpResult d = p.status == 201 ? client.request("DELETE", server.url(p.header("Location"))) : HttpResult{};
        if (p.status != 201 || d.status != 200) {
          refused++;
          std::lock_guard<std::mutex> lock(refusal_mutex);
          if (first_refusal.empty())
            first_refusal = "POST " + std::to_string(p.status) + " " + p.body + ", DELETE " + std::to_string(d.status);
        }
        done++;
      }
    });
  }
  guint64 video = viewer.video_frames(), audio = viewer.audio_buffers();
  unsigned checked = 0;
  std::string failure;
  while (done < total && failure.empty()) {
    g_usleep(100 * 1000);
    std::string error = pipeline_error(server.pipeline);
    if (!error.empty()) failure = "the server pipeline posted an error after " + std::to_string(done) + " cycles: " + error;
    if (refused) failure = "a cycle was refused: " + first_refusal;
    if (done >= checked + 500) {
      // A second's worth of media at 30 fps and 50 audio buffers/s, at least.
      if (!viewer.wait_video_frames(video + 20, 5000) || !viewer.wait_audio_buffers(audio + 20, 5000))
        failure = "the connected viewer stopped receiving after " + std::to_string(done) + " cycles (video " +
                  std::to_string(viewer.video_frames() - video) + ", audio " +
                  std::to_string(viewer.audio_buffers() - audio) + " new buffers)";
      video = viewer.video_frames();
      audio = viewer.audio_buffers();
      checked = done;
    }
  }
  stop = true;
  for (auto &t : threads) t.join();
  double seconds = (g_get_monotonic_time() - start) / 1e6;
  g_print("%u POST/DELETE cycles, %u at a time, in %.1f s (%.1f ms each)\n", done.load(), workers, seconds,
          seconds * 1000 / std::max(1u, done.load()));
  fail_unless(failure.empty(), "%s", failure.c_str());
  fail_unless(viewer.wait_video_frames(viewer.video_frames() + 30, 5000), "viewer stopped after the churn");
  fail_unless(viewer.wait_audio_buffers(viewer.audio_buffers() + 30, 5000), "viewer's audio stopped after the churn");
  fail_unless(wait_until(10000, [&] { return server.stat("viewer-count") == 1; }), "viewer-count %u, not 1",
              server.stat("viewer-count"));
  fail_unless_equals_int(http.request("DELETE", server.url(r.header("Location"))).status, 200);
}

GST_START_TEST(test_churn_one_at_a_time) { churn(1); }
GST_END_TEST;

GST_START_TEST(test_churn_four_at_a_time) { churn(4); }
GST_END_TEST;

// A player that POSTs and never sends a usable candidate: its session goes within
// viewer-timeout, and it cannot hold max-viewers against everyone else.
GST_START_TEST(test_unconnected_sessions_expire) {
  // webrtcbin players send RTCP every 2.5 to 7.5 s: a connected one stays within 8 s.
  const int timeout_s = 8;
  Server server("viewer-timeout=" + std::to_string(timeout_s) + " max-viewers=2");
  fail_unless(server.wait_ready());
  HttpClient http;
  const std::string offer = chromium_offer();  // no candidates: ICE never connects
  std::vector<std::string> sessions;
  for (int i = 0; i < 2; i++) {
    HttpResult r = http.request("POST", server.url(), {{"Content-Type", "application/sdp"}}, offer);
    fail_unless_equals_int(r.status, 201);
    sessions.push_back(server.url(r.header("Location")));
  }
  fail_unless_equals_int(http.request("POST", server.url(), {{"Content-Type", "application/sdp"}}, offer).status, 503);
  gint64 start = g_get_monotonic_time();
  fail_unless(wait_until(timeout_s * 1000 + 500, [&] { return server.stat("viewer-count") == 0; }),
              "unconnected sessions still there after viewer-timeout (%d s) + 0.5 s", timeout_s);
  double took = (g_get_monotonic_time() - start) / 1e6;
  g_print("unconnected sessions removed after %.1f s (viewer-timeout=%d)\n", took, timeout_s);
  for (const auto &url : sessions) fail_unless_equals_int(http.request("DELETE", url).status, 404);
  // Everyone else can join again, and plays.
  TestPlayer player;
  HttpResult r = http.request("POST", server.url(), {{"Content-Type", "application/sdp"}}, player.create_offer());
  fail_unless_equals_int(r.status, 201);
  fail_unless(player.set_remote_answer(r.body));
  fail_unless(player.wait_video_frames(10, 15000));
  // A connected viewer is not subject to the connect deadline.
  g_usleep((timeout_s + 1) * G_USEC_PER_SEC);
  fail_unless_equals_int(server.stat("viewer-count"), 1);
  fail_unless(player.wait_video_frames(player.video_frames() + 30, 5000));
}
GST_END_TEST;

// A player that negotiates and then never connects must not hold up anyone else: connected
// viewers keep receiving while its session waits for its deadline.
GST_START_TEST(test_unconnected_session_stalls_nobody) {
  Server server("viewer-timeout=10");
  fail_unless(server.wait_ready());
  HttpClient http;
  TestPlayer viewer;
  HttpResult r = http.request("POST", server.url(), {{"Content-Type", "application/sdp"}}, viewer.create_offer());
  fail_unless_equals_int(r.status, 201);
  fail_unless(viewer.set_remote_answer(r.body));
  fail_unless(viewer.wait_video_frames(10, 15000));
  // Negotiated, never connected (no candidate of its own).
  fail_unless_equals_int(http.request("POST", server.url(), {{"Content-Type", "application/sdp"}}, chromium_offer()).status, 201);
  guint64 video = viewer.video_frames(), audio = viewer.audio_buffers();
  fail_unless(viewer.wait_video_frames(video + 30, 3000), "the connected viewer got %" G_GUINT64_FORMAT
              " frames in 3 s while another session waited to connect", viewer.video_frames() - video);
  fail_unless(viewer.wait_audio_buffers(audio + 50, 3000));
  // A new viewer joins and plays meanwhile.
  TestPlayer late;
  HttpResult lr = http.request("POST", server.url(), {{"Content-Type", "application/sdp"}}, late.create_offer());
  fail_unless_equals_int(lr.status, 201);
  fail_unless(late.set_remote_answer(lr.body));
  fail_unless(late.wait_video_frames(10, 5000), "a new viewer did not play while another session waited");
}
GST_END_TEST;

// Every viewer is fed from the track's one thread (no queue of its own): a viewer whose
// process stops reading (SIGSTOP), then disappears without a DELETE (SIGKILL), must hold up
// nobody. The other viewer keeps playing video and audio, and a new one joins and plays.
GST_START_TEST(test_stopped_viewer_stalls_nobody) {
  Server server;
  fail_unless(server.wait_ready());
  ChildPipeline stopped("whepsrc whep-endpoint=" + server.url() +
                        " ice-local-addresses=127.0.0.1 audio-codecs=none ! video/x-raw ! fakesink name=frames_played");
  fail_unless(stopped.started(), "%s", stopped.spawn_error().c_str());
  fail_if(stopped.wait_prefix("frame ", 20000).empty(), "the viewer in its own process did not play");
  TestPlayer viewer;
  HttpClient http;
  HttpResult r = http.request("POST", server.url(), {{"Content-Type", "application/sdp"}}, viewer.create_offer());
  fail_unless_equals_int(r.status, 201);
  fail_unless(viewer.set_remote_answer(r.body));
  fail_unless(viewer.wait_video_frames(10, 15000));
  fail_unless_equals_int(server.stat("viewer-count"), 2);

  fail_unless_equals_int(kill(stopped.pid(), SIGSTOP), 0);
  for (int round = 0; round < 2; round++) {  // its socket's receive buffer fills meanwhile
    guint64 video = viewer.video_frames(), audio = viewer.audio_buffers();
    fail_unless(viewer.wait_video_frames(video + 30, 3000), "%" G_GUINT64_FORMAT " frames in 3 s while a viewer was stopped",
                viewer.video_frames() - video);
    fail_unless(viewer.wait_audio_buffers(audio + 50, 3000));
  }
  TestPlayer late;
  HttpResult lr = http.request("POST", server.url(), {{"Content-Type", "application/sdp"}}, late.create_offer());
  fail_unless_equals_int(lr.status, 201);
  fail_unless(late.set_remote_answer(lr.body));
  fail_unless(late.wait_video_frames(10, 5000), "a new viewer did not play while another was stopped");

  stopped.kill_now();  // gone without a word
  guint64 video = viewer.video_frames();
  fail_unless(viewer.wait_video_frames(video + 30, 3000), "%" G_GUINT64_FORMAT " frames in 3 s after a viewer vanished",
              viewer.video_frames() - video);
  fail_unless(late.wait_video_frames(late.video_frames() + 30, 3000));
}
GST_END_TEST;

static Suite *viewer_lifecycle_suite(void) {
  Suite *s = suite_create("viewer_lifecycle");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 900);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_unconnected_sessions_expire);
  tcase_add_test(tc, test_unconnected_session_stalls_nobody);
  tcase_add_test(tc, test_stopped_viewer_stalls_nobody);
  tcase_add_test(tc, test_churn_one_at_a_time);
  tcase_add_test(tc, test_churn_four_at_a_time);
  return s;
}

WISH_CHECK_MAIN(viewer_lifecycle);
