// WHISP on a real server: switching, merging, pulling and grabbing streams over HTTP, checked
// in what webrtcbin viewers decode (pixels, tones, SSRCs), and the error answers. 127.0.0.1.
#include <gst/gst.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
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

// /red (a red test pattern and 440 Hz) with WHISP on /whisp, /blue (blue, 880 Hz) and a
// whipserversrc on /whip, one HTTP server.
struct WhispServer : ServerPipeline {
  GstElement *red = nullptr;
  // `extra`: properties of red; `every`: properties of every element.
  explicit WhispServer(const std::string &extra = "", const std::string &every = "") {
    props += " " + every;
    std::string src = " ! video/x-raw,width=320,height=240,framerate=30/1 ! ";
    start("whepserversink name=red path=/red whisp-path=/whisp whisp-pull-allow=http://127.0.0.1,file:///tmp "
          "whisp-pull-timeout=4" + props + " " + extra + " whepserversink name=blue path=/blue" + props +
          " whipserversrc name=in" + props +
          " videotestsrc is-live=true pattern=red" + src + "red. audiotestsrc is-live=true freq=440 ! red."
          " videotestsrc is-live=true pattern=blue" + src + "blue. audiotestsrc is-live=true freq=880 ! blue.");
    red = element("red");
  }
  ~WhispServer() { gst_object_unref(red); }
  guint stat_viewers() {
    GstStructure *st = nullptr;
    g_object_get(red, "stats", &st, nullptr);
    guint n = 0;
    gst_structure_get_uint(st, "viewer-count", &n);
    gst_structure_free(st);
    return n;
  }
  // The next "wish-whisp" element message with this action (earlier other ones are skipped):
  // its string `field`; "" when none came within timeout_ms.
  std::string wait_event(const std::string &action, int timeout_ms, const char *field = "action") {
    GstBus *bus = gst_element_get_bus(pipeline);
    std::string found;
    gint64 end = g_get_monotonic_time() + timeout_ms * 1000LL;
    while (found.empty() && g_get_monotonic_time() < end) {
      GstMessage *m = gst_bus_timed_pop_filtered(bus, (end - g_get_monotonic_time()) * GST_USECOND, GST_MESSAGE_ELEMENT);
      if (!m) break;
      const GstStructure *st = gst_message_get_structure(m);
      if (st && gst_structure_has_name(st, "wish-whisp") &&
          g_strcmp0(gst_structure_get_string(st, "action"), action.c_str()) == 0) {
        const gchar *value = gst_structure_get_string(st, field);
        found = value ? value : "(no " + std::string(field) + ")";
      }
      gst_message_unref(m);
    }
    gst_object_unref(bus);
    return found;
  }
  HttpResult whisp(HttpClient &http, const std::string &message, const std::string &body,
                   const std::string &content_type = "application/json") {
    return http.request("POST", url("/whisp/" + message + "/endpoint"), {{"Content-Type", content_type}}, body);
  }
};

// A viewer of `url` that plays (it POSTs until the stream takes viewers).
static std::unique_ptr<TestPlayer> play(HttpClient &http, const std::string &url, std::string *location,
                                        const wish_test::PlayerOptions &opts = {}) {
  auto player = std::make_unique<TestPlayer>(opts);
  HttpResult r = negotiate(http, *player, url);
  if (location) *location = r.header("Location");
  return player;
}

GST_START_TEST(test_switching) {
  WhispServer s;
  HttpClient http;
  std::string session;
  auto viewer = play(http, s.url("/red"), &session);
  fail_unless(viewer->wait_color(10000, is_red));
  gint64 t0 = g_get_monotonic_time();
  HttpResult r = s.whisp(http, "switching",
                         R"({"source media":{"media ID":{"amsid":["rts audio"],"vmsid":["rts video"]},"URL":"/red"},)"
                         R"("destination media":{"URL":")" + s.url("/blue") + R"("}})");
  fail_unless_equals_int(r.status, 201);
  assert_str(r.header("Content-Type"), "application/json");
  std::string location = r.header("Location");
  fail_unless(location.rfind("/whisp/switching/", 0) == 0, "%s", location.c_str());
  assert_contains(r.body, "\"destination media\":{\"URL\":\"" + s.url("/blue") + "\"}");
  fail_unless(viewer->wait_color(1000, is_blue), "not blue within 1 s of the switching POST");
  g_print("switching: blue %" G_GINT64_FORMAT " ms after the POST\n", (g_get_monotonic_time() - t0) / 1000);
  // The application hears of it on the bus.
  assert_str(s.wait_event("switched", 2000, "destination"), "blue");
  // DELETE on the Location switches back.
  fail_unless_equals_int(http.request("DELETE", s.url(location)).status, 200);
  fail_unless(viewer->wait_color(1000, is_red), "not red within 1 s of the DELETE");
  assert_str(s.wait_event("switched-back", 2000, "source"), "red");
  fail_unless_equals_int(http.request("DELETE", s.url(location)).status, 404);
  // So does a switching POST whose destination is the source.
  fail_unless_equals_int(
      s.whisp(http, "switching", R"({"source media":{"URL":"red"},"destination media":{"URL":"/blue"}})").status, 201);
  fail_unless(viewer->wait_color(1000, is_blue));
  HttpResult back = s.whisp(http, "switching", R"({"source media":{"URL":"red"},"destination media":{"URL":"red"}})");
  fail_unless_equals_int(back.status, 200);
  fail_unless(back.header("Location").empty());
  fail_unless(viewer->wait_color(1000, is_red));
  fail_unless_equals_int(viewer->video_ssrcs().size(), 1);
  fail_unless_equals_int(viewer->video_pads(), 1);
  fail_unless_equals_int(
      s.whisp(http, "switching", R"({"source media":{"URL":"red"},"destination media":{"URL":"/nowhere"}})").status, 404);
  fail_unless_equals_int(http.request("DELETE", s.url(session)).status, 200);
}
GST_END_TEST;

GST_START_TEST(test_merging) {
  WhispServer s;
  HttpClient http;
  HttpResult templates = http.request("GET", s.url("/whisp/merging/templates"));
  fail_unless_equals_int(templates.status, 200);
  assert_contains(templates.body, "picture-in-picture");
  fail_unless(wait_until(10000, [&] {  // both inputs have media
    return http.request("POST", s.url("/red"), kSdp, kStaticOffer).status == 201 &&
           http.request("POST", s.url("/blue"), kSdp, kStaticOffer).status == 201;
  }));

  HttpResult pip = s.whisp(http, "merging", R"({"main media":{"URL":"/red"},"secondary media":{"URL":"/blue"},)"
                                            R"("merge template":{"merge template id":["01"]}})");
  fail_unless_equals_int(pip.status, 201);
  std::string pip_url = pip.body.substr(pip.body.find("\"URL\":\"") + 7);
  pip_url = pip_url.substr(0, pip_url.find('"'));
  fail_unless(pip_url.find("/merge-") != std::string::npos, "%s", pip.body.c_str());  // at a WHEP path
  assert_str(s.wait_event("merged", 2000, "template"), "01");
  wish_test::PlayerOptions corner;
  corner.sample_points = {{1104.0 / 1280, 614.0 / 720}};  // middle of the bottom-right patch
  std::string pip_session;
  auto viewer = play(http, s.url(pip_url), &pip_session, corner);
  fail_unless(viewer->wait_color(10000, is_red), "merge 01: centre not red but (%d,%d,%d) after %" G_GUINT64_FORMAT " frames",
              viewer->center_color().r, viewer->center_color().g, viewer->center_color().b, viewer->video_frames());
  fail_unless(wait_until(10000, [&] { return is_blue(viewer->color_at(0)); }), "merge 01: no blue patch bottom-right");
  // Both tones are in the mix.
  fail_unless(wait_until(10000, [&] { return viewer->tone_level(440) > 0.05 && viewer->tone_level(880) > 0.05; }),
              "mix: 440 Hz %.3f, 880 Hz %.3f", viewer->tone_level(440), viewer->tone_level(880));
  g_print("mix: 440 Hz %.3f, 880 Hz %.3f, 660 Hz %.3f\n", viewer->tone_level(440), viewer->tone_level(880),
          viewer->tone_level(660));
  fail_unless(viewer->tone_level(660) < viewer->tone_level(440) / 5);

  HttpResult side = s.whisp(http, "merging", R"({"main media":{"URL":"red"},"secondary media":{"URL":"blue"},)"
                                             R"("merge template":{"merge template id":2}})");
  fail_unless_equals_int(side.status, 201);
  std::string side_url = side.body.substr(side.body.find("\"URL\":\"") + 7);
  side_url = side_url.substr(0, side_url.find('"'));
  wish_test::PlayerOptions halves;
  halves.sample_points = {{0.25, 0.5}, {0.75, 0.5}};
  std::string side_session;
  auto viewer2 = play(http, s.url(side_url), &side_session, halves);
  fail_unless(wait_until(10000, [&] { return is_red(viewer2->color_at(0)) && is_blue(viewer2->color_at(1)); }),
              "merge 02: left (%d,%d,%d) right (%d,%d,%d)", viewer2->color_at(0).r, viewer2->color_at(0).g,
              viewer2->color_at(0).b, viewer2->color_at(1).r, viewer2->color_at(1).g, viewer2->color_at(1).b);

  // A viewer of /red switched to the merge goes back to red when the merge ends.
  std::string red_session;
  auto red_viewer = play(http, s.url("/red"), &red_session);
  fail_unless(red_viewer->wait_color(10000, is_red));
  HttpResult to_merge = s.whisp(http, "switching",
                                R"({"source media":{"URL":"red"},"destination media":{"URL":")" + side_url + R"("}})");
  fail_unless_equals_int(to_merge.status, 201);
  fail_unless(wait_until(3000, [&] { return is_blue(red_viewer->center_color()) || !is_red(red_viewer->center_color()); }),
              "the switch to the merge did not show");
  fail_unless_equals_int(http.request("DELETE", s.url(side.header("Location"))).status, 200);
  fail_unless(red_viewer->wait_color(3000, is_red), "not back to red after the merge ended");
  fail_unless_equals_int(http.request("DELETE", s.url(side.header("Location"))).status, 404);
  // The switch ended with it.
  assert_str(s.wait_event("switched-back", 2000, "reason"), "the destination ended");
  fail_unless_equals_int(http.request("DELETE", s.url(to_merge.header("Location"))).status, 404);
  fail_unless_equals_int(http.request("DELETE", s.url(pip.header("Location"))).status, 200);
}
GST_END_TEST;

// When the secondary's media stops, the main fills the picture.
GST_START_TEST(test_merge_secondary_ends) {
  WhispServer s;
  HttpClient http;
  TestPublisher guest([] {
    wish_test::PublisherOptions o;
    o.pattern = "blue";
    o.audio = false;
    return o;
  }());
  HttpResult pub = http.request("POST", s.url("/whip/guest"), kSdp, guest.create_offer());
  fail_unless_equals_int(pub.status, 201);
  fail_unless(guest.set_remote_answer(pub.body));
  fail_unless(wait_until(10000, [&] { return http.request("POST", s.url("/red/guest"), kSdp, kStaticOffer).status == 201; }));
  HttpResult side = s.whisp(http, "merging", R"({"main media":{"URL":"red"},"secondary media":{"URL":"/whip/guest"},)"
                                             R"("merge template":{"merge template id":"02"}})");
  fail_unless_equals_int(side.status, 201);
  std::string url = side.body.substr(side.body.find("\"URL\":\"") + 7);
  url = url.substr(0, url.find('"'));
  wish_test::PlayerOptions opts;
  opts.sample_points = {{0.7, 0.5}};
  auto viewer = play(http, s.url(url), nullptr, opts);
  fail_unless(wait_until(10000, [&] { return is_blue(viewer->color_at(0)); }), "the guest never showed");
  fail_unless_equals_int(http.request("DELETE", s.url(pub.header("Location"))).status, 200);
  fail_unless(wait_until(5000, [&] { return is_red(viewer->color_at(0)); }), "the main did not fill the picture");
}
GST_END_TEST;

// A second server process serves green; WHISP pulls it in and serves it.
GST_START_TEST(test_pulling) {
  unsigned up_port = free_port();
  gchar *argv[] = {g_strdup("gst-launch-1.0"), g_strdup("-q"), g_strdup("whepserversink"), g_strdup("name=s"),
                   g_strdup("address=127.0.0.1"), g_strdup(("port=" + std::to_string(up_port)).c_str()),
                   g_strdup("ice-local-addresses=127.0.0.1"), g_strdup("videotestsrc"), g_strdup("is-live=true"),
                   g_strdup("pattern=green"), g_strdup("!"), g_strdup("video/x-raw,width=320,height=240"), g_strdup("!"),
                   g_strdup("s."), nullptr};
  GPid upstream = 0;
  fail_unless(g_spawn_async(nullptr, argv, nullptr, G_SPAWN_SEARCH_PATH, nullptr, nullptr, &upstream, nullptr));
  wish_test::kill_at_teardown(upstream);
  for (gchar *a : argv) g_free(a);
  std::string up = "http://127.0.0.1:" + std::to_string(up_port) + "/whep";
  WhispServer s;
  HttpClient http;
  fail_unless(wait_until(10000, [&] { return http.request("POST", up, kSdp, kStaticOffer).status == 201; }),
              "the upstream server never served");

  HttpResult pulled = s.whisp(http, "pulling", R"({"media":{"URL":")" + up + R"("}})");
  fail_unless_equals_int(pulled.status, 201);
  std::string location = pulled.header("Location");
  fail_unless(location.rfind("/whisp/pulling/", 0) == 0);
  std::string url = pulled.body.substr(pulled.body.find("\"URL\":\"") + 7);
  url = url.substr(0, url.find('"'));
  auto viewer = play(http, s.url(url), nullptr);
  fail_unless(viewer->wait_color(10000, is_green), "the pulled stream is not green");
  assert_contains(viewer->depayloaders(), "rtph264depay");
  // The same URL again: the pull there is.
  HttpResult again = s.whisp(http, "pulling", R"({"media":{"URL":")" + up + R"("}})");
  fail_unless_equals_int(again.status, 200);
  assert_str(again.header("Location"), location);
  fail_unless_equals_int(http.request("DELETE", s.url(location)).status, 200);
  fail_unless(wait_until(5000, [&] { return http.request("POST", s.url(url), kSdp, kStaticOffer).status == 404; }),
              "the pulled stream is still served after DELETE");
  fail_unless_equals_int(http.request("DELETE", s.url(location)).status, 404);

  // An upstream that refuses: 502; one that never answers: 504; off the allow-list: 403.
  HttpResult refused = s.whisp(http, "pulling", R"({"media":{"URL":")" + up + R"(/nothing"}})");
  fail_unless_equals_int(refused.status, 502);
  assert_contains(refused.body, "404");
  int silent = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  fail_unless(bind(silent, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0 && listen(silent, 4) == 0);
  socklen_t len = sizeof addr;
  getsockname(silent, reinterpret_cast<sockaddr *>(&addr), &len);
  gint64 t0 = g_get_monotonic_time();
  HttpResult timeout = s.whisp(http, "pulling",
                               R"({"media":{"URL":"http://127.0.0.1:)" + std::to_string(ntohs(addr.sin_port)) + R"(/whep"}})");
  fail_unless_equals_int(timeout.status, 504);
  g_print("silent upstream: 504 after %" G_GINT64_FORMAT " ms (whisp-pull-timeout=4)\n",
          (g_get_monotonic_time() - t0) / 1000);
  close(silent);
  fail_unless_equals_int(s.whisp(http, "pulling", R"({"media":{"URL":"http://10.255.255.1/whep"}})").status, 403);
  fail_unless_equals_int(s.whisp(http, "pulling", R"({"media":{"URL":"rtsp://127.0.0.1/cam"}})").status, 403);

  kill(upstream, SIGTERM);
  waitpid(upstream, nullptr, 0);
  wish_test::forget_process(upstream);
}
GST_END_TEST;

// Any URI GStreamer can decode is pulled too: a VP8 + Opus file is relayed as it is.
GST_START_TEST(test_pulling_a_file) {
  gchar *dir = g_dir_make_tmp("wish-whisp-XXXXXX", nullptr);
  std::string file = std::string(dir) + "/green.webm";
  GError *err = nullptr;
  GstElement *writer = gst_parse_launch(
      ("videotestsrc num-buffers=150 pattern=green ! video/x-raw,width=320,height=240,framerate=30/1 ! "
       "vp8enc deadline=1 keyframe-max-dist=15 ! webmmux name=m ! filesink location=" + file +
       " audiotestsrc num-buffers=250 samplesperbuffer=960 ! audio/x-raw,rate=48000 ! opusenc ! m.").c_str(),
      &err);
  fail_unless(writer != nullptr);
  gst_element_set_state(writer, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus(writer);
  GstMessage *m = gst_bus_timed_pop_filtered(bus, 30 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS);
  gst_message_unref(m);
  gst_object_unref(bus);
  gst_element_set_state(writer, GST_STATE_NULL);
  gst_object_unref(writer);

  WhispServer s;
  HttpClient http;
  gint64 pulled_us = g_get_monotonic_time();
  HttpResult pulled = s.whisp(http, "pulling", R"({"media":{"URL":"file://)" + file + R"("}})");
  fail_unless_equals_int(pulled.status, 201);
  std::string url = pulled.body.substr(pulled.body.find("\"URL\":\"") + 7);
  url = url.substr(0, url.find('"'));
  auto viewer = play(http, s.url(url), nullptr);
  fail_unless(viewer->wait_color(10000, is_green), "the file's picture did not show");
  assert_contains(viewer->depayloaders(), "rtpvp8depay");  // relayed as VP8, not re-encoded
  fail_unless(viewer->wait_audio_buffers(20, 10000));
  // Played at its own pace, not as fast as it decodes: 5 s of media last about 5 s, and when
  // the file ends, so does the pull.
  std::string ended = s.wait_event("pull-ended", 8000, "reason");
  gint64 played_ms = (g_get_monotonic_time() - pulled_us) / 1000;
  g_print("file pull ended %" G_GINT64_FORMAT " ms after it was asked for: %s\n", played_ms, ended.c_str());
  fail_unless_equals_string(ended.c_str(), "end of stream");
  fail_unless(played_ms > 4000, "the 5 s file was over after %" G_GINT64_FORMAT " ms", played_ms);
  fail_unless_equals_int(http.request("DELETE", s.url(pulled.header("Location"))).status, 404);
  fail_unless_equals_int(http.request("POST", s.url(url), kSdp, kStaticOffer).status, 404);
  unlink(file.c_str());
  rmdir(dir);
  g_free(dir);
}
GST_END_TEST;

static std::unique_ptr<TestPublisher> publish(HttpClient &http, const std::string &url, const std::string &pattern,
                                              const std::string &msid, std::string *location) {
  wish_test::PublisherOptions o;
  o.pattern = pattern;
  o.msid = msid;
  auto pub = std::make_unique<TestPublisher>(o);
  HttpResult r = http.request("POST", url, kSdp, pub->create_offer());
  fail_unless_equals_int(r.status, 201);
  fail_unless(pub->set_remote_answer(r.body));
  if (location) *location = r.header("Location");
  return pub;
}

GST_START_TEST(test_grabbing) {
  WhispServer s;
  HttpClient http;
  std::string old_session, new_session;
  auto anchor = publish(http, s.url("/whip/cam"), "red", "anchor-wifi", &old_session);
  std::string viewing;
  auto viewer = play(http, s.url("/blue/cam"), &viewing);
  fail_unless(viewer->wait_color(10000, is_red));
  // A merge of the anchor's stream (left) with /blue (right).
  HttpResult merged = s.whisp(http, "merging", R"({"main media":{"URL":"/whip/cam"},"secondary media":{"URL":"blue"},)"
                                               R"("merge template":{"merge template id":"02"}})");
  fail_unless_equals_int(merged.status, 201);
  std::string merge_url = merged.body.substr(merged.body.find("\"URL\":\"") + 7);
  merge_url = merge_url.substr(0, merge_url.find('"'));
  wish_test::PlayerOptions left;
  left.sample_points = {{0.25, 0.5}};
  auto merge_viewer = play(http, s.url(merge_url), nullptr, left);
  fail_unless(wait_until(10000, [&] { return is_red(merge_viewer->color_at(0)); }));
  // The anchor comes back on another network as new media, then grabs its stream (0x0).
  auto back = publish(http, s.url("/whip/cam-4g"), "green", "anchor-4g", &new_session);
  HttpResult grab = s.whisp(http, "grabbing",
                            R"({"new media":{"media ID":{"vmsid":["anchor-4g"]},"URL":")" + s.url("/whip/cam") +
                                R"("},"error_code":"0x0"})");
  fail_unless(grab.status == 200, "grabbing: %u %s", grab.status, grab.body.c_str());
  gint64 grabbed_us = g_get_monotonic_time();
  assert_contains(grab.body, "\"error_code\":0");
  fail_unless(viewer->wait_color(3000, is_green), "the viewer does not show the new media");
  fail_unless_equals_int(viewer->video_ssrcs().size(), 1);
  fail_unless(wait_until(3000, [&] { return is_green(merge_viewer->color_at(0)); }), "the merge does not show the new media");
  assert_str(s.wait_event("grabbed", 2000, "stream"), "cam");
  // 0x0 holds the old publisher a few seconds, then its session is gone.
  fail_unless_equals_int(http.request("GET", s.url(old_session)).status, 200);
  fail_unless(wait_until(8000, [&] { return http.request("GET", s.url(old_session)).status == 404; }),
              "the old WHIP session is still there");
  gint64 held_ms = (g_get_monotonic_time() - grabbed_us) / 1000;
  g_print("0x0 grab: old publisher held %" G_GINT64_FORMAT " ms\n", held_ms);
  fail_unless(held_ms > 4000, "the old publisher went after %" G_GINT64_FORMAT " ms", held_ms);
  fail_unless_equals_int(http.request("GET", s.url(new_session)).status, 200);
  fail_unless(is_green(viewer->center_color()));
  // Unknown media ID, unknown stream, no media ID.
  fail_unless_equals_int(s.whisp(http, "grabbing", R"({"new media":{"media ID":{"vmsid":["x"]},"URL":"/whip/cam"},"error_code":1})").status, 404);
  fail_unless_equals_int(s.whisp(http, "grabbing", R"({"new media":{"media ID":{"vmsid":["anchor-4g"]},"URL":"/whip/none"},"error_code":1})").status, 404);
  fail_unless_equals_int(s.whisp(http, "grabbing", R"({"new media":{"URL":"/whip/cam"},"error_code":1})").status, 422);
}
GST_END_TEST;

// 0x1 (proactive): the old publisher goes at once; a whipsink publisher names its media with
// its msid property.
GST_START_TEST(test_grabbing_proactive) {
  WhispServer s;
  HttpClient http;
  std::string old_session;
  auto anchor = publish(http, s.url("/whip/cam"), "red", "", &old_session);
  auto viewer = play(http, s.url("/blue/cam"), nullptr);
  fail_unless(viewer->wait_color(10000, is_red));
  GError *err = nullptr;
  GstElement *phone = gst_parse_launch(
      ("whipsink name=w msid=anchor-phone ice-local-addresses=127.0.0.1 video-codec=vp8 whip-endpoint=" +
       s.url("/whip/cam-phone") +
       " videotestsrc is-live=true pattern=green ! video/x-raw,width=320,height=240,framerate=30/1 ! w."
       " audiotestsrc is-live=true ! w.").c_str(),
      &err);
  fail_unless(phone != nullptr, "%s", err ? err->message : "");
  wish_test::stop_at_teardown(phone);
  fail_unless(gst_element_set_state(phone, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  HttpResult grab;
  fail_unless(wait_until(10000, [&] {  // once the phone's session is up
    grab = s.whisp(http, "grabbing", R"({"new media":{"media ID":[{"amsid":"anchor-phone"}],"URL":"cam"},"error_code":1})");
    return grab.status == 200;
  }), "grabbing: %u %s", grab.status, grab.body.c_str());
  fail_unless(viewer->wait_color(3000, is_green), "the viewer does not show the phone");
  fail_unless(wait_until(1000, [&] { return http.request("GET", s.url(old_session)).status == 404; }),
              "0x1: the old WHIP session is still there");
  gst_element_set_state(phone, GST_STATE_NULL);
  gst_object_unref(phone);
}
GST_END_TEST;

// The worked example of docs/whisp.md: two hosts, a PK merge their audiences are switched
// to, a host grabbing her stream back from another network, the end of the PK.
GST_START_TEST(test_pk_with_takeover) {
  WhispServer s;
  HttpClient http;
  std::string alice_laptop;
  auto alice = publish(http, s.url("/whip/alice"), "red", "alice-laptop", &alice_laptop);
  auto bob = publish(http, s.url("/whip/bob"), "blue", "bob", nullptr);
  wish_test::PlayerOptions halves;
  halves.sample_points = {{0.25, 0.5}, {0.75, 0.5}};
  auto audience = play(http, s.url("/blue/alice"), nullptr, halves);
  fail_unless(audience->wait_color(10000, is_red));
  HttpResult pk = s.whisp(http, "merging", R"({"main media":{"URL":"alice"},"secondary media":{"URL":"bob"},)"
                                           R"("merge template":{"merge template id":"02"}})");
  fail_unless_equals_int(pk.status, 201);
  std::string pk_url = pk.body.substr(pk.body.find("\"URL\":\"") + 7);
  pk_url = pk_url.substr(0, pk_url.find('"'));
  HttpResult sw = s.whisp(http, "switching",
                          R"({"source media":{"URL":"alice"},"destination media":{"URL":")" + pk_url + R"("}})");
  fail_unless_equals_int(sw.status, 201);
  auto halves_are = [&](bool (*l)(const TestPlayer::Rgb &), bool (*r)(const TestPlayer::Rgb &)) {
    // A merge decodes and encodes again: on a loaded machine it may take a few seconds.
    return wait_until(10000, [&] { return l(audience->color_at(0)) && r(audience->color_at(1)); });
  };
  fail_unless(halves_are(is_red, is_blue), "PK: left (%d,%d,%d) right (%d,%d,%d)", audience->color_at(0).r,
              audience->color_at(0).g, audience->color_at(0).b, audience->color_at(1).r, audience->color_at(1).g,
              audience->color_at(1).b);
  // Alice is back from her phone: her half of the PK shows the phone; the audience stays on the PK.
  auto phone = publish(http, s.url("/whip/alice-phone"), "green", "alice-phone", nullptr);
  fail_unless_equals_int(s.whisp(http, "grabbing", R"({"new media":{"media ID":{"vmsid":["alice-phone"]},)"
                                                   R"("URL":"/whip/alice"},"error_code":"0x0"})")
                             .status,
                         200);
  fail_unless(halves_are(is_green, is_blue), "after the grab: left (%d,%d,%d) right (%d,%d,%d)",
              audience->color_at(0).r, audience->color_at(0).g, audience->color_at(0).b, audience->color_at(1).r,
              audience->color_at(1).g, audience->color_at(1).b);
  // A new viewer of alice joins the PK too.
  auto late = play(http, s.url("/blue/alice"), nullptr, halves);
  fail_unless(wait_until(10000, [&] { return is_green(late->color_at(0)) && is_blue(late->color_at(1)); }));
  // The PK ends: the audience sees alice, that is her phone; the switch went with the PK.
  fail_unless_equals_int(http.request("DELETE", s.url(pk.header("Location"))).status, 200);
  fail_unless(audience->wait_color(3000, is_green), "not back on alice's stream after the PK");
  fail_unless(wait_until(2000, [&] { return http.request("DELETE", s.url(sw.header("Location"))).status == 404; }));
  fail_unless_equals_int(audience->video_ssrcs().size(), 1);
  fail_unless(wait_until(8000, [&] { return http.request("GET", s.url(alice_laptop)).status == 404; }));
}
GST_END_TEST;

// A VP8 viewer switched to an H.264 publisher gets it transcoded, once, in VP8; with
// transcode=false the switch is refused (409) and the viewer keeps its picture.
GST_START_TEST(test_switching_codecs) {
  wish_test::PlayerOptions vp8_only;
  vp8_only.video_codecs = {"VP8"};
  wish_test::PublisherOptions h264_blue;
  h264_blue.video = "h264";
  h264_blue.pattern = "blue";
  {
    WhispServer s("video-codec=vp8");
    HttpClient http;
    TestPublisher cam(h264_blue);
    HttpResult pub = http.request("POST", s.url("/whip/cam"), kSdp, cam.create_offer());
    fail_unless_equals_int(pub.status, 201);
    fail_unless(cam.set_remote_answer(pub.body));
    std::string session;
    auto viewer = play(http, s.url("/red"), &session, vp8_only);
    fail_unless(viewer->wait_color(10000, is_red));
    fail_unless(wait_until(10000, [&] {  // the publisher's media is there (its codec known)
      return http.request("POST", s.url("/red/cam"), kSdp, kStaticOffer).status == 201;
    }));
    gint64 t0 = g_get_monotonic_time();
    HttpResult sw = s.whisp(http, "switching", R"({"source media":{"URL":"red"},"destination media":{"URL":"/whip/cam"}})");
    fail_unless_equals_int(sw.status, 201);
    fail_unless(viewer->wait_color(5000, is_blue), "the H.264 publisher did not show on the VP8 viewer");
    g_print("transcoded switch: blue %" G_GINT64_FORMAT " ms after the POST\n", (g_get_monotonic_time() - t0) / 1000);
    fail_unless(viewer->depayloaders().find("rtph264depay") == std::string::npos, "%s", viewer->depayloaders().c_str());
    fail_unless_equals_int(viewer->video_ssrcs().size(), 1);
    fail_unless_equals_int(http.request("DELETE", s.url(sw.header("Location"))).status, 200);
    fail_unless(viewer->wait_color(3000, is_red));
  }
  {
    WhispServer s("video-codec=vp8", "transcode=false");
    HttpClient http;
    TestPublisher cam(h264_blue);
    HttpResult pub = http.request("POST", s.url("/whip/cam"), kSdp, cam.create_offer());
    fail_unless_equals_int(pub.status, 201);
    fail_unless(cam.set_remote_answer(pub.body));
    auto viewer = play(http, s.url("/red"), nullptr, vp8_only);
    fail_unless(viewer->wait_color(10000, is_red));
    fail_unless(wait_until(10000, [&] {
      return http.request("POST", s.url("/red/cam"), kSdp, kStaticOffer).status == 201;
    }));
    HttpResult sw = s.whisp(http, "switching", R"({"source media":{"URL":"red"},"destination media":{"URL":"/whip/cam"}})");
    fail_unless_equals_int(sw.status, 409);
    assert_contains(sw.body, "transcoding is off");
    g_usleep(500 * 1000);
    fail_unless(is_red(viewer->center_color()));
  }
}
GST_END_TEST;

// With WHISP served, a new WHIP publisher on a live name grabs it.
GST_START_TEST(test_implicit_grab) {
  WhispServer s;
  HttpClient http;
  std::string first_session;
  auto first = publish(http, s.url("/whip/stage"), "red", "", &first_session);
  auto viewer = play(http, s.url("/red/stage"), nullptr);
  fail_unless(viewer->wait_color(10000, is_red));
  auto second = publish(http, s.url("/whip/stage"), "blue", "", nullptr);
  fail_unless(viewer->wait_color(5000, is_blue), "the second publisher did not take the stream over");
  fail_unless_equals_int(http.request("GET", s.url(first_session)).status, 404);
  fail_unless_equals_int(viewer->video_ssrcs().size(), 1);
}
GST_END_TEST;

GST_START_TEST(test_errors) {
  WhispServer s("auth-token=tok");
  HttpClient http;
  auto post = [&](const std::string &message, const std::string &body, bool token = true,
                  const std::string &type = "application/json") {
    std::vector<std::pair<std::string, std::string>> h = {{"Content-Type", type}};
    if (token) h.emplace_back("Authorization", "Bearer tok");
    return http.request("POST", s.url("/whisp/" + message + "/endpoint"), h, body).status;
  };
  // Nothing below may add to the element: count its children once its inputs are built.
  fail_unless(wait_until(10000, [&] {
    HttpResult r = http.request("POST", s.url("/red"), {{"Content-Type", "application/sdp"}, {"Authorization", "Bearer tok"}},
                                kStaticOffer);
    if (r.status != 201) return false;
    http.request("DELETE", s.url(r.header("Location")), {{"Authorization", "Bearer tok"}});
    return true;
  }));
  fail_unless(wait_until(5000, [&] { return s.stat_viewers() == 0; }));
  int children = GST_BIN_NUMCHILDREN(s.red);
  // The draft's Figure 7 as printed (HTTP message in braces, trailing comma).
  const char *figure7 = "{\n  POST /whisp/pulling/endpoint HTTP/1.1\n  Host: whisp.example.com\n"
                        "  Content-Type: application/json\n  Content-Length:\n  {\n    \"media\": {\n"
                        "      \"URL\": \"http://demo.example.com/liveapp****/liveStream****\",\n    }\n  }\n}";
  fail_unless_equals_int(post("pulling", figure7), 400);
  fail_unless_equals_int(post("switching", "{\"source media\": {\"URL\": \"red\",}, }"), 400);
  fail_unless_equals_int(post("switching", R"({"source media":{"URL":"red"}})"), 400);
  fail_unless_equals_int(post("merging", R"({"main media":{"URL":5},"secondary media":{"URL":"blue"},"merge template":{"merge template id":"01"}})"), 400);
  fail_unless_equals_int(post("merging", R"({"main media":{"URL":"red"},"secondary media":{"URL":"blue"},"merge template":{"merge template id":"99"}})"), 422);
  fail_unless_equals_int(post("merging", R"({"main media":{"URL":"red"},"secondary media":{"URL":"nowhere"},"merge template":{"merge template id":"01"}})"), 404);
  fail_unless_equals_int(post("switching", R"({"source media":{"URL":"red"},"destination media":{"URL":"blue"}})", false), 401);
  fail_unless_equals_int(post("switching", R"({"source media":{"URL":"red"},"destination media":{"URL":"blue"}})", true, "text/plain"), 415);
  fail_unless_equals_int(post("grabbing", R"({"new media":{"URL":"red"},"error_code":"0x9"})"), 422);
  fail_unless_equals_int(http.request("GET", s.url("/whisp/merging/templates")).status, 401);
  HttpResult pre = http.request("OPTIONS", s.url("/whisp/merging/endpoint"),
                                {{"Access-Control-Request-Method", "POST"}, {"Origin", "http://page.example"}});
  fail_unless_equals_int(pre.status, 200);
  assert_str(pre.header("Access-Control-Allow-Origin"), "*");
  // Nothing was made.
  fail_unless(wait_until(3000, [&] { return GST_BIN_NUMCHILDREN(s.red) <= children; }), "%d children, were %d",
              GST_BIN_NUMCHILDREN(s.red), children);
}
GST_END_TEST;

static Suite *whisp_suite(void) {
  Suite *s = suite_create("whisp");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_switching);
  tcase_add_test(tc, test_merging);
  tcase_add_test(tc, test_merge_secondary_ends);
  tcase_add_test(tc, test_pulling);
  tcase_add_test(tc, test_pulling_a_file);
  tcase_add_test(tc, test_grabbing);
  tcase_add_test(tc, test_grabbing_proactive);
  tcase_add_test(tc, test_pk_with_takeover);
  tcase_add_test(tc, test_implicit_grab);
  tcase_add_test(tc, test_switching_codecs);
  tcase_add_test(tc, test_errors);
  return s;
}

WISH_CHECK_MAIN(whisp);
