// Streams of one HTTP server: viewers re-pointed from one stream to another with no new
// offer/answer (decoded pixels, one SSRC), and WHIP publishers naming their streams, many at
// once, each played through the relay at <whep path>/<name>. Real HTTP and webrtcbin peers on
// 127.0.0.1.
#include <gst/gst.h>

#include <string>
#include <vector>

#include "http_client.h"
#include "test_player.h"
#include "test_publisher.h"
#include "fixtures.h"

using wish_test::HttpClient;
using wish_test::HttpResult;
using wish_test::TestPlayer;
using wish_test::is_blue;
using wish_test::is_green;
using wish_test::is_red;
using wish_test::TestPublisher;


static const std::vector<std::pair<std::string, std::string>> kSdp = {{"Content-Type", "application/sdp"}};

// Two whepserversinks on one HTTP server: /red and /blue, each a test pattern and a tone.
struct TwoStreams : ServerPipeline {
  GstElement *red = nullptr, *blue = nullptr;
  explicit TwoStreams(const std::string &codec = "h264") {
    std::string p = props + " video-codec=" + codec;
    std::string src = " ! video/x-raw,width=320,height=240,framerate=30/1 ! ";
    start("whepserversink name=red path=/red" + p + " whepserversink name=blue path=/blue" + p +
          " videotestsrc is-live=true pattern=red" + src + "red. audiotestsrc is-live=true ! red. " +
          "videotestsrc is-live=true pattern=blue" + src + "blue. audiotestsrc is-live=true freq=880 ! blue.");
    red = element("red");
    blue = element("blue");
  }
  ~TwoStreams() {
    gst_object_unref(red);
    gst_object_unref(blue);
  }
  bool switch_stream(const char *from, const char *to, GstElement *on = nullptr) {
    gboolean ok = FALSE;
    g_signal_emit_by_name(on ? on : red, "switch-stream", from, to, &ok);
    return ok;
  }
  std::string showing() {
    GstStructure *s = nullptr;
    g_object_get(red, "stats", &s, nullptr);
    const GValue *viewers = gst_structure_get_value(s, "viewers");
    std::string out;
    if (gst_value_list_get_size(viewers) > 0)
      out = gst_structure_get_string(gst_value_get_structure(gst_value_list_get_value(viewers, 0)), "showing");
    gst_structure_free(s);
    return out;
  }
};

// A viewer of /red is switched to /blue and back: the picture follows within a second,
// with the one offer/answer it made, one video pad and one SSRC throughout.
static void switch_and_back(const std::string &codec) {
  TwoStreams s(codec);
  HttpClient http;
  TestPlayer viewer;
  HttpResult r = negotiate(http, viewer, s.url("/red"));
  fail_unless(viewer.wait_color(10000, is_red), "never red");
  guint64 audio = viewer.audio_buffers();

  gint64 t0 = g_get_monotonic_time();
  fail_unless(s.switch_stream("red", "blue"));
  fail_unless(viewer.wait_color(3000, is_blue), "not blue 3 s after switch-stream");
  g_print("%s: blue %" G_GINT64_FORMAT " ms after switch-stream\n", codec.c_str(), (g_get_monotonic_time() - t0) / 1000);
  assert_str(s.showing(), "blue");
  fail_unless(viewer.wait_audio_buffers(audio + 50, 5000), "audio stopped after the switch");
  // Later viewers of /red see blue too.
  TestPlayer late;
  HttpResult lr = http.request("POST", s.url("/red"), kSdp, late.create_offer());
  fail_unless_equals_int(lr.status, 201);
  fail_unless(late.set_remote_answer(lr.body));
  fail_unless(late.wait_color(10000, is_blue), "a later viewer of /red does not see blue");

  t0 = g_get_monotonic_time();
  fail_unless(s.switch_stream("/red", nullptr, s.blue));  // back, by path, through the other element
  fail_unless(viewer.wait_color(3000, is_red), "not red again 3 s after switching back");
  g_print("%s: red again %" G_GINT64_FORMAT " ms after switching back\n", codec.c_str(),
          (g_get_monotonic_time() - t0) / 1000);
  guint64 frames = viewer.video_frames();
  fail_unless(viewer.wait_video_frames(frames + 30, 5000));

  fail_unless_equals_int(viewer.video_pads(), 1);
  fail_unless_equals_int(viewer.video_ssrcs().size(), 1);
  fail_unless(!s.switch_stream("red", "nowhere"));
  fail_unless(!s.switch_stream("nowhere", "blue"));
  fail_unless_equals_int(http.request("DELETE", s.url(r.header("Location"))).status, 200);
  fail_unless_equals_int(http.request("DELETE", s.url(lr.header("Location"))).status, 200);
}

GST_START_TEST(test_switch_stream_h264) { switch_and_back("h264"); }
GST_END_TEST;

GST_START_TEST(test_switch_stream_vp8) { switch_and_back("vp8"); }
GST_END_TEST;

// The README's relay line, unchanged: publishers on /whip/<name>, many at once, each played at
// /whep/<name> without re-encoding; the publisher on /whip itself still feeds the pads.
GST_START_TEST(test_named_whip_streams) {
  ServerPipeline server;
  server.start("whipserversrc name=in" + server.props + " whepserversink name=out" + server.props +
               " in.video_0 ! queue ! out.video_0  in.audio_0 ! queue ! out.audio_0");
  GstElement *pipeline = server.pipeline;
  std::string base = server.url("");
  HttpClient http;

  wish_test::PublisherOptions vp8, h264;
  vp8.video = "vp8";
  h264.video = "h264";
  TestPublisher cam1(vp8), cam2(h264);
  HttpResult p1 = http.request("POST", base + "/whip/cam1", kSdp, cam1.create_offer());
  fail_unless_equals_int(p1.status, 201);
  fail_unless(cam1.set_remote_answer(p1.body));
  HttpResult p2 = http.request("POST", base + "/whip/cam2", kSdp, cam2.create_offer());
  fail_unless_equals_int(p2.status, 201);
  fail_unless(cam2.set_remote_answer(p2.body));
  assert_contains(p1.header("Location"), "/whip/sessions/");

  // A second publisher on a live name is refused; unknown names are not found.
  TestPublisher intruder(vp8);
  HttpResult busy = http.request("POST", base + "/whip/cam1", kSdp, intruder.create_offer());
  fail_unless_equals_int(busy.status, 409);
  fail_unless_equals_int(http.request("POST", base + "/whep/nothing", kSdp, kStaticOffer).status, 404);

  TestPlayer v1, v2;
  HttpResult r1 = negotiate(http, v1, base + "/whep/cam1");
  HttpResult r2 = negotiate(http, v2, base + "/whep/cam2");
  fail_unless(v1.wait_video_frames(30, 15000), "cam1: %" G_GUINT64_FORMAT " frames", v1.video_frames());
  fail_unless(v2.wait_video_frames(30, 15000), "cam2: %" G_GUINT64_FORMAT " frames", v2.video_frames());
  fail_unless(v1.wait_audio_buffers(20, 10000));
  assert_contains(v1.depayloaders(), "rtpvp8depay");
  assert_contains(v2.depayloaders(), "rtph264depay");
  // Nothing was encoded or decoded on the way: no encoder or video decoder in the server.
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(pipeline));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElementFactory *f = gst_element_get_factory(GST_ELEMENT(g_value_get_object(&item)));
    const gchar *klass = f ? gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS) : "";
    bool media = strstr(klass, "Video") || strstr(klass, "Audio");
    fail_if(media && (strstr(klass, "Encoder") || (strstr(klass, "Decoder") && strstr(klass, "Video"))),
            "%s in the relay", GST_OBJECT_NAME(f));
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);

  // cam1's publisher leaves: its viewer stays; a publisher that comes back on the name
  // continues on the same viewer session, SSRC and pad.
  fail_unless_equals_int(http.request("DELETE", base + p1.header("Location")).status, 200);
  TestPublisher again(vp8);
  HttpResult p3 = negotiate(http, again, base + "/whip/cam1", 5000);
  guint64 frames = v1.video_frames();
  fail_unless(v1.wait_video_frames(frames + 30, 15000), "cam1's viewer got nothing from the returning publisher");
  fail_unless_equals_int(v1.video_ssrcs().size(), 1);

  // takeover: a new publisher on a live name replaces the current one, whose session is gone.
  GstElement *in = server.element("in");
  g_object_set(in, "takeover", TRUE, nullptr);
  gst_object_unref(in);
  TestPublisher successor(vp8);
  HttpResult p4 = http.request("POST", base + "/whip/cam1", kSdp, successor.create_offer());
  fail_unless_equals_int(p4.status, 201);
  fail_unless(successor.set_remote_answer(p4.body));
  fail_unless_equals_int(http.request("DELETE", base + p3.header("Location")).status, 404);
  frames = v1.video_frames();
  fail_unless(v1.wait_video_frames(frames + 30, 15000), "cam1's viewer got nothing from the successor");

  fail_unless_equals_int(http.request("DELETE", base + r1.header("Location")).status, 200);
  fail_unless_equals_int(http.request("DELETE", base + r2.header("Location")).status, 200);
}
GST_END_TEST;

// A WHIP publisher's stream can be switched to like any other: a viewer of an element's own
// stream is shown a named WHIP stream, then its own again.
// Pausing the server pipeline while a named WHIP stream feeds a viewer, then stopping it:
// the publisher's threads feed the viewer's webrtcbin, and a viewer paused with the pipeline
// held them in its sinks' preroll, so that the publisher's session could not close (a hang).
GST_START_TEST(test_pause_and_stop_with_viewers_of_a_publisher) {
  ServerPipeline server;
  server.start("whipserversrc name=in" + server.props + " whepserversink name=out" + server.props +
               " videotestsrc is-live=true ! out.video_0");
  HttpClient http;
  TestPublisher cam;
  HttpResult pub = http.request("POST", server.url("/whip/cam"), kSdp, cam.create_offer());
  fail_unless_equals_int(pub.status, 201);
  fail_unless(cam.set_remote_answer(pub.body));
  TestPlayer viewer;
  negotiate(http, viewer, server.url("/whep/cam"));
  fail_unless(viewer.wait_video_frames(10, 10000));
  for (int i = 0; i < 3; i++) {
    fail_unless(gst_element_set_state(server.pipeline, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
    g_usleep(300 * 1000);
    fail_unless(gst_element_set_state(server.pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    guint64 frames = viewer.video_frames();
    fail_unless(viewer.wait_video_frames(frames + 10, 5000), "no video after pause %d", i);
  }
  // The publisher's session ends while the pipeline goes down: bounded.
  fail_unless(gst_element_set_state(server.pipeline, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  g_usleep(300 * 1000);
  gint64 t0 = g_get_monotonic_time();
  fail_unless(gst_element_set_state(server.pipeline, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS);
  gint64 ms = (g_get_monotonic_time() - t0) / 1000;
  fail_unless(ms < 5000, "stopping took %" G_GINT64_FORMAT " ms", ms);
}
GST_END_TEST;

GST_START_TEST(test_switch_to_whip_stream) {
  ServerPipeline server;
  server.start("whipserversrc name=in" + server.props + " whepserversink name=out video-codec=vp8" + server.props +
               " videotestsrc is-live=true pattern=red ! video/x-raw,width=320,height=240 ! out.");
  GstElement *out = server.element("out");
  std::string base = server.url("");
  HttpClient http;
  wish_test::PublisherOptions green;
  green.video = "vp8";
  green.pattern = "green";
  green.audio = false;
  TestPublisher cam(green);
  HttpResult pr = http.request("POST", base + "/whip/cam", kSdp, cam.create_offer());
  fail_unless_equals_int(pr.status, 201);
  fail_unless(cam.set_remote_answer(pr.body));

  wish_test::PlayerOptions video_only;
  video_only.audio = false;
  TestPlayer viewer(video_only);
  negotiate(http, viewer, base + "/whep");
  fail_unless(viewer.wait_color(10000, is_red), "never red");
  gboolean ok = FALSE;
  std::string cam_url = base + "/whip/cam";  // any locator of the stream does
  g_signal_emit_by_name(out, "switch-stream", "whep", cam_url.c_str(), &ok);
  fail_unless(ok);
  fail_unless(viewer.wait_color(5000, is_green), "the WHIP publisher's green never showed");
  g_signal_emit_by_name(out, "switch-stream", "/whep", "whep", &ok);
  fail_unless(ok);
  fail_unless(viewer.wait_color(5000, is_red), "not red again");
  fail_unless_equals_int(viewer.video_ssrcs().size(), 1);
  gst_object_unref(out);
}
GST_END_TEST;

static Suite *streams_suite(void) {
  Suite *s = suite_create("streams");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_switch_stream_h264);
  tcase_add_test(tc, test_switch_stream_vp8);
  tcase_add_test(tc, test_named_whip_streams);
  tcase_add_test(tc, test_switch_to_whip_stream);
  tcase_add_test(tc, test_pause_and_stop_with_viewers_of_a_publisher);
  return s;
}

WISH_CHECK_MAIN(streams);
