// whipsink publishing to whipserversrc (and through the relay) on 127.0.0.1.
#include <memory>
#include <string>

#include "child_pipeline.h"
#include "http_client.h"
#include "test_player.h"
#include "fixtures.h"
#include "whip_ingest.h"

// A whipsink publishing a test pattern and a tone.
struct Publisher {
  GstElement *pipeline;
  GstElement *sink;
  explicit Publisher(const std::string &endpoint, const std::string &props = "", bool audio = true) {
    std::string desc = "whipsink name=w ice-local-addresses=127.0.0.1 whip-endpoint=" + endpoint + " " + props +
                       " videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! w.";
    if (audio) desc += " audiotestsrc is-live=true ! w.";
    GError *err = nullptr;
    pipeline = gst_parse_launch(desc.c_str(), &err);
    fail_unless(pipeline != nullptr, "%s", err ? err->message : "");
    sink = gst_bin_get_by_name(GST_BIN(pipeline), "w");
    watch_test_pipeline(pipeline);
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
  }
  ~Publisher() {
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(pipeline);
  }
  std::string wait_message(const char *name, int ms, std::string *error = nullptr) {
    return wait_bus_message(pipeline, name, ms, error);
  }
};

GST_START_TEST(test_publishes) {
  Ingest ingest;
  Publisher pub(ingest.url());
  fail_unless(ingest.wait_video(30, 15000), "video: %" G_GUINT64_FORMAT, ingest.video.load());
  fail_unless(ingest.wait_audio(20, 10000));
  fail_if(pub.wait_message("wish-session-started", 2000).empty());
  gchar *url = nullptr;
  g_object_get(pub.sink, "session-url", &url, nullptr);
  fail_unless(url && g_str_has_prefix(url, (ingest.url() + "/sessions/").c_str()), "%s", url ? url : "(null)");
  g_free(url);
}
GST_END_TEST;

GST_START_TEST(test_publishes_without_trickle_vp8) {
  Ingest ingest;
  Publisher pub(ingest.url(), "trickle=false video-codec=vp8");
  fail_unless(ingest.wait_video(30, 15000));
  fail_unless(ingest.wait_audio(20, 10000));
}
GST_END_TEST;

GST_START_TEST(test_auth) {
  Ingest ingest("auth-token=tok");
  {
    Publisher wrong(ingest.url(), "auth-token=nope");
    std::string error = wrong.wait_message("error", 5000);
    assert_contains(error, "401");
  }
  Publisher right(ingest.url(), "auth-token=tok");
  fail_unless(ingest.wait_video(10, 15000));
}
GST_END_TEST;

GST_START_TEST(test_second_publisher_waits) {
  Ingest ingest;
  Publisher first(ingest.url());
  fail_unless(ingest.wait_video(10, 15000));
  Publisher second(ingest.url());
  assert_contains(second.wait_message("wish-waiting", 5000), "status=(uint)409");
  GstState state;
  gst_element_get_state(second.pipeline, &state, nullptr, 0);
  fail_unless_equals_int(state, GST_STATE_PLAYING);
}
GST_END_TEST;

GST_START_TEST(test_ice_restart) {
  Ingest ingest;
  Publisher pub(ingest.url());
  fail_unless(ingest.wait_video(30, 15000));
  g_signal_emit_by_name(pub.sink, "restart-ice");
  fail_if(pub.wait_message("wish-ice-restarted", 5000).empty());
  guint64 before = ingest.video;
  fail_unless(ingest.wait_video(before + 60, 15000), "media stopped after the ICE restart");
}
GST_END_TEST;

GST_START_TEST(test_server_restart) {
  unsigned port = free_port();
  std::string props = "port=" + std::to_string(port);
  auto ingest = std::make_unique<Ingest>(props);
  Publisher pub(ingest->url(), "max-reconnects=-1");
  fail_unless(ingest->wait_video(30, 15000));
  ingest.reset();
  g_usleep(G_USEC_PER_SEC);
  ingest = std::make_unique<Ingest>(props);
  fail_if(pub.wait_message("wish-reconnecting", 15000).empty());
  fail_unless(ingest->wait_video(30, 30000), "no video after the server came back");
}
GST_END_TEST;

// whipserversrc in a process of its own on `port`, its video decoded into a sink whose frames
// the process reports; *answering_us: when it first answered HTTP.
static std::unique_ptr<ChildPipeline> start_ingest_process(unsigned port, gint64 *answering_us) {
  auto child = std::make_unique<ChildPipeline>(
      "whipserversrc name=in address=127.0.0.1 port=" + std::to_string(port) +
      " ice-local-addresses=127.0.0.1 in.video_0 ! video/x-raw ! fakesink name=frames");
  fail_unless(child->started(), "%s", child->spawn_error().c_str());
  wish_test::HttpClient http;
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/whip";
  fail_unless(wait_until(10000, [&] { return http.request("OPTIONS", url).status == 200; }), "the server never answered");
  *answering_us = g_get_monotonic_time();
  return child;
}

// The server process is killed (SIGKILL: no DELETE, no goodbye) under a publishing whipsink and
// started again on the same port 4 s later: whipsink, which receives no media, notices it by
// its probe, tells the application (wish-reconnecting, then wish-reconnected), never posts an
// error, and the new server decodes its video within 3 s of answering.
GST_START_TEST(test_server_killed) {
  unsigned port = free_port();
  gint64 up = 0;
  auto server = start_ingest_process(port, &up);
  Publisher pub("http://127.0.0.1:" + std::to_string(port) + "/whip", "", false);
  fail_if(server->wait_prefix("frame ", 15000).empty(), "the first server decoded nothing");
  server->kill_now();
  gint64 killed = g_get_monotonic_time();
  g_usleep(4 * G_USEC_PER_SEC);
  server = start_ingest_process(port, &up);
  std::string frame = server->wait_prefix("frame ", 10000);
  fail_if(frame.empty(), "the restarted server decoded nothing");
  double resumed_ms = (ChildPipeline::time_of(frame) - up) / 1000.0;
  std::string error;
  std::string reconnecting = pub.wait_message("wish-reconnecting", 1000, &error);
  std::string reconnected = pub.wait_message("wish-reconnected", 3000, &error);
  g_print("whipsink: server killed, restarted and answering %.0f ms later; its first decoded frame %.0f ms after "
          "it answered\n  %s\n  %s\n",
          (up - killed) / 1000.0, resumed_ms, reconnecting.c_str(), reconnected.c_str());
  fail_if(reconnecting.empty(), "no wish-reconnecting: %s", error.c_str());
  fail_if(reconnected.empty(), "no wish-reconnected: %s", error.c_str());
  fail_unless(error.empty(), "error posted: %s", error.c_str());
  fail_unless(pub.wait_message("error", 500).empty());
  fail_unless(resumed_ms < 3000, "the restarted server decoded its first frame %.0f ms after answering", resumed_ms);
  GstState state;
  gst_element_get_state(pub.pipeline, &state, nullptr, 0);
  fail_unless_equals_int(state, GST_STATE_PLAYING);
}
GST_END_TEST;

GST_START_TEST(test_eos_deletes_session) {
  Ingest ingest;
  Publisher pub(ingest.url());
  fail_unless(ingest.wait_video(10, 15000));
  gst_element_send_event(pub.pipeline, gst_event_new_eos());
  assert_contains(ingest.wait_message("wish-publisher-left", 5000), "reason=(string)closed");
  GstBus *bus = gst_element_get_bus(pub.pipeline);
  GstMessage *eos = gst_bus_timed_pop_filtered(bus, 5 * GST_SECOND, GST_MESSAGE_EOS);
  fail_unless(eos != nullptr, "whipsink posted no EOS");
  gst_message_unref(eos);
  gst_object_unref(bus);
}
GST_END_TEST;

// A video-only relay, whipserversrc ! whepserversink, on two free ports of 127.0.0.1.
struct VideoRelay {
  GstElement *pipeline = nullptr;
  guint in_port = 0, out_port = 0;
  VideoRelay() {
    GError *err = nullptr;
    pipeline = gst_parse_launch(
        "whipserversrc name=in address=127.0.0.1 port=0 ice-local-addresses=127.0.0.1 "
        "whepserversink name=out address=127.0.0.1 port=0 ice-local-addresses=127.0.0.1 "
        "in.video_0 ! queue ! out.video_0",
        &err);
    fail_unless(pipeline != nullptr, "%s", err ? err->message : "");
    watch_test_pipeline(pipeline);
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    for (auto [name, port] : {std::pair<const char *, guint *>{"in", &in_port}, {"out", &out_port}}) {
      GstElement *e = gst_bin_get_by_name(GST_BIN(pipeline), name);
      g_object_get(e, "current-port", port, nullptr);
      gst_object_unref(e);
    }
  }
  ~VideoRelay() {
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
  }
  std::string whip_url() const { return "http://127.0.0.1:" + std::to_string(in_port) + "/whip"; }
  // The player POSTs its offer to the relay's WHEP endpoint until it is answered (409 until
  // a publisher sends) and applies the answer.
  void join(wish_test::TestPlayer &player) const {
    wish_test::HttpClient http;
    wish_test::HttpResult r;
    fail_unless(wait_until(10000, [&] {
      r = http.request("POST", "http://127.0.0.1:" + std::to_string(out_port) + "/whep",
                       {{"Content-Type", "application/sdp"}}, player.create_offer());
      return r.status == 201;
    }), "the relay answered %d", r.status);
    fail_unless(player.set_remote_answer(r.body));
  }
};

GST_START_TEST(test_relay_keyframe_on_request) {
  // whipsink -> whipserversrc -> whepserversink with a 20 s GOP: a late viewer's keyframe
  // request must reach whipsink's encoder as PLI.
  VideoRelay relay;
  Publisher pub(relay.whip_url(), "key-int-max=600", false);
  g_usleep(3 * G_USEC_PER_SEC);  // the first keyframe is long gone
  wish_test::PlayerOptions opts;
  opts.audio = false;
  wish_test::TestPlayer player(opts);
  relay.join(player);
  fail_unless(player.wait_video_frames(1, 4000), "no frame within 4 s of joining a 20 s GOP");
}
GST_END_TEST;

GST_START_TEST(test_relay_viewers_survive_publisher_reconnect) {
  VideoRelay relay;
  wish_test::PlayerOptions opts;
  opts.audio = false;
  wish_test::TestPlayer player(opts);
  auto pub = std::make_unique<Publisher>(relay.whip_url(), "", false);
  relay.join(player);
  fail_unless(player.wait_video_frames(30, 15000));
  pub.reset();  // the publisher leaves (DELETE) ...
  g_usleep(500 * 1000);
  pub = std::make_unique<Publisher>(relay.whip_url(), "", false);  // ... and comes back
  guint64 before = player.video_frames();
  fail_unless(player.wait_video_frames(before + 60, 20000),
              "the viewer stopped at %" G_GUINT64_FORMAT " frames after the publisher came back", player.video_frames());
}
GST_END_TEST;

static Suite *whipsink_suite(void) {
  Suite *s = suite_create("whipsink");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_publishes);
  tcase_add_test(tc, test_publishes_without_trickle_vp8);
  tcase_add_test(tc, test_auth);
  tcase_add_test(tc, test_second_publisher_waits);
  tcase_add_test(tc, test_ice_restart);
  tcase_add_test(tc, test_server_restart);
  tcase_add_test(tc, test_server_killed);
  tcase_add_test(tc, test_eos_deletes_session);
  tcase_add_test(tc, test_relay_keyframe_on_request);
  tcase_add_test(tc, test_relay_viewers_survive_publisher_reconnect);
  return s;
}

WISH_CHECK_MAIN(whipsink);
