// The WHEP extensions between whepserversink and whepsrc, over real HTTP and webrtcbin peers
// on 127.0.0.1. Server-sent events: viewer counts, a publisher leaving and coming back through
// the relay, players moved to another server when theirs stops (or when told to), still
// playing. Layers: viewers choosing among the sizes of a ladder the server encodes.
#include <gst/gst.h>

#include <memory>
#include <string>
#include <vector>

#include "fixtures.h"
#include "http_client.h"
#include "test_publisher.h"
#include "event_log.h"
#include "whepsrc_player.h"

using wish_test::HttpClient;
using wish_test::HttpResult;
using wish_test::TestPublisher;

namespace {

const std::vector<std::pair<std::string, std::string>> kSdp = {{"Content-Type", "application/sdp"}};

}  // namespace

// The 201 offers the events; whepsrc subscribes by itself and posts each one: the stream is
// active, and the viewer count follows the players as they come and go.
GST_START_TEST(test_viewercount_and_active) {
  Server server;
  fail_unless(server.wait_ready());
  HttpClient http;
  HttpResult raw = http.request("POST", server.url(), kSdp, kStaticOffer);
  fail_unless_equals_int(raw.status, 201);
  bool linked = false;
  for (const auto &link : raw.all("Link"))
    linked = linked || (link.find("rel=\"urn:ietf:params:whep:ext:core:server-sent-events\"") != std::string::npos &&
                        link.find("events=\"active,inactive,reconnect,viewercount\"") != std::string::npos);
  fail_unless(linked, "no server-sent events Link in the 201");
  fail_unless_equals_int(http.request("DELETE", server.base + raw.header("Location")).status, 200);

  Player a(server.url());
  EventLog log(a);
  fail_unless(a.wait_video(30, 15000));
  fail_unless(log.wait("active", 5000), "no active event: %zu messages", log.seen.size());
  fail_unless(log.wait("viewercount", 5000, "viewercount=(gint64)1"));
  {
    Player b(server.url(), "events=viewercount");
    fail_unless(b.wait_video(10, 15000));
    fail_unless(log.wait("viewercount", 5000, "viewercount=(gint64)2"), "a never heard of b");
    EventLog blog(b);
    fail_unless(blog.wait("viewercount", 5000, "viewercount=(gint64)2"));
    fail_if(blog.wait("active", 300), "b got an event it did not ask for");
  }
  size_t mark = log.seen.size();
  fail_unless(log.wait("viewercount", 5000, "viewercount=(gint64)1", mark), "a never heard b leave");
  fail_unless(log.error.empty(), "%s", log.error.c_str());
}
GST_END_TEST;

// A publisher leaves the relay and comes back: the viewer of its stream hears inactive, then
// active, and plays on.
GST_START_TEST(test_inactive_and_active_through_relay) {
  ServerPipeline server;
  server.start("whipserversrc name=in" + server.props + " whepserversink name=out" + server.props +
               " in.video_0 ! queue ! out.video_0  in.audio_0 ! queue ! out.audio_0");
  HttpClient http;
  wish_test::PublisherOptions vp8;
  vp8.video = "vp8";
  TestPublisher cam(vp8);
  HttpResult pub = negotiate(http, cam, server.url("/whip/cam1"));
  fail_unless_equals_int(pub.status, 201);
  Player viewer(server.url("/whep/cam1"), "audio-codecs=none");
  EventLog log(viewer);
  fail_unless(viewer.wait_video(30, 15000));
  fail_unless(log.wait("active", 5000));
  fail_unless_equals_int(http.request("DELETE", server.url(pub.header("Location"))).status, 200);
  fail_unless(log.wait("inactive", 5000), "no inactive event after the publisher left");
  TestPublisher again(vp8);
  fail_unless_equals_int(negotiate(http, again, server.url("/whip/cam1"), 5000).status, 201);
  size_t mark = log.seen.size();
  fail_unless(log.wait("active", 5000, "", mark), "no active event after the publisher came back");
  guint64 frames = viewer.video;
  fail_unless(viewer.wait_video(frames + 30, 15000));
  fail_unless(log.error.empty(), "%s", log.error.c_str());
}
GST_END_TEST;

// The server a player plays from stops: it tells the player to go to its redirect endpoint,
// and the player moves there without an error or leaving PLAYING. Then the second server
// asks its players to reconnect (reconnect-viewers): a new session on the same server.
GST_START_TEST(test_reconnect_moves_players) {
  Server second;
  fail_unless(second.wait_ready());
  auto first = std::make_unique<Server>("redirect-endpoints=" + second.url());
  fail_unless(first->wait_ready());
  Player player(first->url());
  EventLog log(player);
  fail_unless(player.wait_video(30, 15000));
  fail_unless(log.wait("viewercount", 5000));  // subscribed
  std::string old_session = player.session_url();
  gint64 stopped = g_get_monotonic_time();
  size_t before_stop = log.seen.size();
  first.reset();  // a graceful stop
  fail_unless(log.wait("reconnect", 5000, "url=(string)" + second.url(), before_stop), "no reconnect event");
  fail_unless(log.wait("wish-session-started", 5000, second.url(), before_stop), "no new session");
  fail_unless(wait_until(5000, [&] { return second.stat("viewer-count") == 1; }));
  guint64 frames = player.video;
  fail_unless(player.wait_video(frames + 30, 10000), "no video from the second server");
  double moved_s = (g_get_monotonic_time() - stopped) / 1e6;
  printf("moved to the second server and played 30 more frames %.2f s after the first one stopped\n", moved_s);
  assert_contains(player.session_url(), second.url() + "/sessions/");
  fail_if(player.session_url() == old_session);
  GstState state;
  gst_element_get_state(player.pipeline, &state, nullptr, 0);
  fail_unless_equals_int(state, GST_STATE_PLAYING);

  // Told to reconnect with no place named: this endpoint again, a new session.
  std::string before = player.session_url();
  guint told = 0;
  g_signal_emit_by_name(second.sink, "reconnect-viewers", nullptr, &told);
  fail_unless_equals_int(told, 1);
  size_t mark = log.seen.size();
  fail_unless(log.wait("reconnect", 5000, "url=(string)/whep", mark));
  fail_unless(wait_until(5000, [&] { return !player.session_url().empty() && player.session_url() != before; }));
  frames = player.video;
  fail_unless(player.wait_video(frames + 30, 10000));
  fail_unless(wait_until(5000, [&] { return second.stat("viewer-count") == 1; }), "the old session stayed");
  fail_unless(log.error.empty(), "%s", log.error.c_str());
}
GST_END_TEST;

// A ladder of three sizes from a 320x240 input: each player decodes the size it asks for,
// changes it while playing, and hears the layers in an event; each lower layer is encoded once
// however many viewers take it; requests the server cannot serve are refused.
GST_START_TEST(test_video_layers) {
  Server server("video-layers=m:160x120:300,l:80x60:100 metrics-path=/metrics");
  fail_unless(server.wait_ready());
  HttpClient http;
  HttpResult raw = http.request("POST", server.url(), kSdp, kStaticOffer);
  fail_unless_equals_int(raw.status, 201);
  std::string layer_url;
  for (const auto &link : raw.all("Link"))
    if (link.find("rel=\"urn:ietf:params:whep:ext:core:layer\"") != std::string::npos)
      layer_url = server.base + link.substr(1, link.find('>') - 1);
  fail_if(layer_url.empty(), "no layer Link in the 201");
  std::vector<std::pair<std::string, std::string>> json = {{"Content-Type", "application/json"}};
  fail_unless_equals_int(http.request("POST", layer_url, json, "{\"rid\":\"x\"}").status, 422);
  fail_unless_equals_int(http.request("POST", layer_url, json, "{\"rid\":").status, 400);
  fail_unless_equals_int(http.request("DELETE", server.base + raw.header("Location")).status, 200);

  Player top(server.url());
  Player mid(server.url(), "video-layer=m");
  Player low(server.url(), "video-layer=l");
  Player mid2(server.url(), "video-layer=m events=");
  EventLog log(mid);
  fail_unless(log.wait("wish-layer", 10000, "status=(uint)200"), "the layer request was not answered 200");
  fail_unless(log.wait("layers", 10000, "\\\"rid\\\":\\\"l\\\""), "no layers event");
  auto size_is = [](Player &p, int w, int h) {
    return wait_until(15000, [&] { return p.video_width == w && p.video_height == h && p.video > 10; });
  };
  fail_unless(size_is(top, 320, 240), "top: %dx%d", top.video_width.load(), top.video_height.load());
  fail_unless(size_is(mid, 160, 120), "mid: %dx%d", mid.video_width.load(), mid.video_height.load());
  fail_unless(size_is(low, 80, 60), "low: %dx%d", low.video_width.load(), low.video_height.load());
  fail_unless(size_is(mid2, 160, 120));
  // One scaler (and encoder) per lower layer, whatever the number of viewers.
  int scalers = 0;
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(server.sink));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElementFactory *f = gst_element_get_factory(GST_ELEMENT(g_value_get_object(&item)));
    scalers += f && g_str_equal(GST_OBJECT_NAME(f), "videoscale");
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  fail_unless_equals_int(scalers, 2);

  // While playing: down to l, then back to the server's choice (the input's own size).
  size_t mark = log.seen.size();
  g_object_set(mid.src, "video-layer", "l", nullptr);
  fail_unless(log.wait("wish-layer", 5000, "rid=(string)l", mark));
  guint64 frames = mid.video;
  fail_unless(size_is(mid, 80, 60), "mid after switching: %dx%d", mid.video_width.load(), mid.video_height.load());
  fail_unless(mid.wait_video(frames + 30, 10000));
  g_object_set(mid.src, "video-layer", "", nullptr);
  fail_unless(size_is(mid, 320, 240));
  g_object_set(mid.src, "video-layer", "nonsense", nullptr);
  mark = log.seen.size();
  fail_unless(log.wait("wish-layer", 5000, "status=(uint)422", mark));
  fail_unless(log.error.empty(), "%s", log.error.c_str());
  // Three first choices and two changes (the refused one is not one).
  std::string metrics;
  auto switches = [&] {
    metrics = http.request("GET", server.url("/metrics")).body;
    size_t at = metrics.find("\nwish_layer_switches_total{stream=\"whep\"} ");
    return at == std::string::npos ? -1 : atoi(metrics.c_str() + metrics.find('}', at) + 2);
  };
  fail_unless(wait_until(3000, [&] { return switches() == 5; }), "%s", metrics.c_str());
}
GST_END_TEST;

static Suite *whep_extensions_suite(void) {
  Suite *s = suite_create("whep_extensions");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_viewercount_and_active);
  tcase_add_test(tc, test_inactive_and_active_through_relay);
  tcase_add_test(tc, test_reconnect_moves_players);
  tcase_add_test(tc, test_video_layers);
  return s;
}

GST_CHECK_MAIN(whep_extensions);
