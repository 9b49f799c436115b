// whepserversink with shared-transport=true: viewers on one shared ICE agent instead of a
// webrtcbin each, checked in decoded pixels and tones; two at once; DELETE and a viewer that
// vanishes free their place (max-viewers); an offer the shared path cannot serve still plays
// on a webrtcbin.
#include <gst/gst.h>

#include <memory>
#include <string>
#include <vector>

#include <signal.h>

#include "child_pipeline.h"
#include "fixtures.h"
#include "http_client.h"
#include "test_player.h"
#include "whepsrc_player.h"

using wish_test::HttpClient;
using wish_test::HttpResult;
using wish_test::PlayerOptions;
using wish_test::TestPlayer;
using wish_test::is_red;

// Elements of the server bin made by this factory.
static int count_elements(GstElement *bin, const char *factory) {
  int n = 0;
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(bin));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElementFactory *f = gst_element_get_factory(GST_ELEMENT(g_value_get_object(&item)));
    if (f && g_str_equal(GST_OBJECT_NAME(f), factory)) n++;
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return n;
}

// A red 440 Hz stream on /cam, raw input.
struct SharedServer : ServerPipeline {
  GstElement *sink = nullptr;
  explicit SharedServer(const std::string &sink_props = "") {
    start("whepserversink name=cam path=/cam shared-transport=true" + props + " " + sink_props +
          " videotestsrc is-live=true pattern=red ! video/x-raw,width=320,height=240,framerate=30/1 ! cam."
          " audiotestsrc is-live=true freq=440 ! cam.");
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
  return s;
}

WISH_CHECK_MAIN(shared_transport);
