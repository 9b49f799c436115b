// Simulcast ingest from a publisher shaped as OBS Studio's (libdatachannel, obs_publisher.h):
// three H.264 encodings, rids 0 (largest) to 2, no candidates in the offer, published to
// whipserversrc on a named stream and relayed by whepserversink without re-encoding; whepsrc
// viewers choose an encoding by rid. Real HTTP and webrtcbin peers on 127.0.0.1.
#include <gst/gst.h>
#include <json-glib/json-glib.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "event_log.h"
#include "fixtures.h"
#include "http_client.h"
#include "obs_publisher.h"
#include "whepsrc_player.h"

using wish_test::HttpClient;
using wish_test::HttpResult;
using wish_test::ObsPublisher;
using wish_test::ObsPublisherOptions;

namespace {

const std::vector<std::pair<std::string, std::string>> kSdp = {{"Content-Type", "application/sdp"}};

// The README's relay: whipserversrc and whepserversink on one HTTP server.
struct Relay : ServerPipeline {
  Relay() {
    start("whipserversrc name=in" + props + " whepserversink name=out" + props +
          " in.video_0 ! queue ! out.video_0  in.audio_0 ! queue ! out.audio_0");
  }
  // Elements of the relay that encode media (none: the encodings go out as they came).
  std::vector<std::string> encoders() const {
    std::vector<std::string> out;
    GstIterator *it = gst_bin_iterate_recurse(GST_BIN(pipeline));
    GValue item = G_VALUE_INIT;
    while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
      GstElementFactory *f = gst_element_get_factory(GST_ELEMENT(g_value_get_object(&item)));
      const gchar *klass = f ? gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS) : nullptr;
      if (klass && strstr(klass, "Codec/Encoder")) out.push_back(GST_OBJECT_NAME(f));
      g_value_reset(&item);
    }
    g_value_unset(&item);
    gst_iterator_free(it);
    return out;
  }
};

HttpResult publish(HttpClient &http, ObsPublisher &pub, const std::string &url) {
  std::string offer = pub.create_offer();
  HttpResult r = http.request("POST", url, kSdp, offer);
  fail_unless(r.status == 201, "%u %s\n%s", r.status, r.body.c_str(), offer.c_str());
  fail_unless(pub.set_remote_answer(r.body), "the publisher refused the answer:\n%s", r.body.c_str());
  return r;
}

bool size_is(Player &p, int w, int h, int ms = 20000) {
  guint64 from = p.video;
  return wait_until(ms, [&] { return p.video_width == w && p.video_height == h && p.video > from + 10; });
}

struct LayerInfo {
  int width = 0, height = 0;
  gint64 bitrate = 0;
};

// The layers of the last layers event a player posted, by rid.
std::map<std::string, LayerInfo> last_layers(const EventLog &log) {
  std::map<std::string, LayerInfo> out;
  for (auto it = log.seen.rbegin(); it != log.seen.rend(); ++it) {
    if (it->find("event=(string)layers,") == std::string::npos) continue;
    GstStructure *s = gst_structure_from_string(it->c_str(), nullptr);
    const gchar *data = s ? gst_structure_get_string(s, "data") : nullptr;
    g_autoptr(JsonParser) parser = json_parser_new();
    if (data && json_parser_load_from_data(parser, data, -1, nullptr)) {
      JsonObject *root = json_node_get_object(json_parser_get_root(parser));
      GList *members = json_object_get_members(root);
      JsonArray *layers = members ? json_object_get_array_member(root, static_cast<const char *>(members->data)) : nullptr;
      g_list_free(members);
      for (guint i = 0; layers && i < json_array_get_length(layers); i++) {
        JsonObject *l = json_array_get_object_element(layers, i);
        LayerInfo info;
        if (json_object_has_member(l, "width")) info.width = json_object_get_int_member(l, "width");
        if (json_object_has_member(l, "height")) info.height = json_object_get_int_member(l, "height");
        info.bitrate = json_object_get_int_member(l, "bitrate");
        out[json_object_get_string_member(l, "rid")] = info;
      }
    }
    if (s) gst_structure_free(s);
    break;
  }
  return out;
}

std::string describe(const std::map<std::string, LayerInfo> &layers) {
  std::string out;
  for (const auto &kv : layers)
    out += kv.first + " " + std::to_string(kv.second.width) + "x" + std::to_string(kv.second.height) + " " +
           std::to_string(kv.second.bitrate) + " bit/s; ";
  return out;
}

std::string player_props(const std::string &rid) { return "audio-codecs=none" + (rid.empty() ? "" : " video-layer=" + rid); }

// Publishes `opts` to /whip/cam of the relay and checks that every encoding reaches a viewer
// that asks for it, at its size, and one that asks for none gets the largest.
void relay_each_layer(const ObsPublisherOptions &opts) {
  Relay relay;
  HttpClient http;
  ObsPublisher pub(opts);
  std::string offer = pub.create_offer();
  fail_if(offer.find("a=candidate") != std::string::npos, "OBS offers no candidates");
  HttpResult r = http.request("POST", relay.url("/whip/cam"), kSdp, offer);
  fail_unless(r.status == 201, "%u %s\n%s", r.status, r.body.c_str(), offer.c_str());
  // OBS counts the layers of the answer's a=simulcast line and stops unless all are there.
  std::string rids, recv;
  for (const auto &l : pub.layers()) {
    rids += (rids.empty() ? "" : ";") + l.rid;
    fail_unless(r.body.find("a=rid:" + l.rid + " recv\r\n") != std::string::npos, "%s", r.body.c_str());
  }
  fail_unless(r.body.find("a=simulcast:recv " + rids + "\r\n") != std::string::npos, "%s", r.body.c_str());
  fail_unless(pub.set_remote_answer(r.body));

  std::vector<std::unique_ptr<Player>> players;
  for (const auto &l : pub.layers()) players.push_back(std::make_unique<Player>(relay.url("/whep/cam"), player_props(l.rid)));
  Player automatic(relay.url("/whep/cam"), player_props(""));
  for (size_t i = 0; i < players.size(); i++) {
    const auto &l = pub.layers()[i];
    fail_unless(size_is(*players[i], l.width, l.height), "viewer of %s: %dx%d, not %dx%d (%" G_GUINT64_FORMAT " frames)",
                l.rid.c_str(), players[i]->video_width.load(), players[i]->video_height.load(), l.width, l.height,
                players[i]->video.load());
  }
  fail_unless(size_is(automatic, opts.width, opts.height), "viewer of no layer: %dx%d", automatic.video_width.load(),
              automatic.video_height.load());
  auto encoders = relay.encoders();
  fail_unless(encoders.empty(), "the relay encodes: %s", encoders.empty() ? "" : encoders.front().c_str());

  // A viewer that comes now is told the layers: every rid, its size and the bitrate it
  // arrives at (larger layers more).
  Player late(relay.url("/whep/cam"), player_props(""));
  EventLog log(late);
  fail_unless(log.wait("layers", 10000), "no layers event");
  auto layers = last_layers(log);
  fail_unless_equals_int(layers.size(), pub.layers().size());
  for (size_t i = 0; i < pub.layers().size(); i++) {
    const auto &l = pub.layers()[i];
    const LayerInfo &got = layers[l.rid];
    fail_unless(got.width == l.width && got.height == l.height, "%s", describe(layers).c_str());
    fail_unless(got.bitrate > 0, "%s", describe(layers).c_str());
    if (i > 0) fail_unless(got.bitrate < layers[pub.layers()[i - 1].rid].bitrate, "%s", describe(layers).c_str());
  }
  g_print("layers: %s\n", describe(layers).c_str());
  fail_unless_equals_int(http.request("DELETE", relay.url(r.header("Location"))).status, 200);
}

}  // namespace

GST_START_TEST(test_obs_simulcast_relay) { relay_each_layer({}); }
GST_END_TEST;

// The README relay's pads take one encoding: the largest, though OBS lists its encodings
// largest first and browsers smallest first (the pads once took the one listed last: OBS's
// smallest, 212x120).
GST_START_TEST(test_obs_simulcast_pads) {
  Relay relay;
  HttpClient http;
  ObsPublisher pub(ObsPublisherOptions{});
  HttpResult r = publish(http, pub, relay.url("/whip"));
  Player viewer(relay.url("/whep"), player_props(""));
  const auto &largest = pub.layers().front();
  fail_unless(size_is(viewer, largest.width, largest.height), "viewer of the pads: %dx%d, not %dx%d (%" G_GUINT64_FORMAT
              " frames)", viewer.video_width.load(), viewer.video_height.load(), largest.width, largest.height,
              viewer.video.load());
  fail_unless_equals_int(http.request("DELETE", relay.url(r.header("Location"))).status, 200);
}
GST_END_TEST;

// The stream's layers follow its publisher: one with other rids replaces the one that left,
// and the old rids are gone from the layers; a viewer of a layer that is gone goes on with
// one that is there.
GST_START_TEST(test_stale_rids) {
  Relay relay;
  HttpClient http;
  ObsPublisherOptions first;
  first.layers = 3;
  std::unique_ptr<Player> low;
  {
    ObsPublisher pub(first);
    HttpResult r = publish(http, pub, relay.url("/whip/cam"));
    low = std::make_unique<Player>(relay.url("/whep/cam"), player_props("2"));
    fail_unless(size_is(*low, pub.layers()[2].width, pub.layers()[2].height), "%dx%d", low->video_width.load(),
                low->video_height.load());
    fail_unless_equals_int(http.request("DELETE", relay.url(r.header("Location"))).status, 200);
  }
  ObsPublisherOptions second;
  second.layers = 2;
  second.width = 480;
  second.height = 270;
  second.rids = {"hi", "lo"};
  second.pattern = "smpte";
  ObsPublisher pub(second);
  HttpResult r = publish(http, pub, relay.url("/whip/cam"));
  // The viewer of the gone layer 2 plays one of the new ones.
  fail_unless(wait_until(20000, [&] {
                return (low->video_width == 480 && low->video_height == 270) ||
                       (low->video_width == 240 && low->video_height == 134);
              }),
              "the viewer of a gone layer: %dx%d", low->video_width.load(), low->video_height.load());
  guint64 frames = low->video;
  fail_unless(low->wait_video(frames + 30, 10000), "the viewer of a gone layer stopped");
  Player hi(relay.url("/whep/cam"), player_props("lo"));
  EventLog log(hi);
  fail_unless(log.wait("layers", 10000), "no layers event");
  auto layers = last_layers(log);
  fail_unless(layers.size() == 2 && layers.count("hi") && layers.count("lo"), "%s", describe(layers).c_str());
  fail_unless(size_is(hi, 240, 134), "%dx%d", hi.video_width.load(), hi.video_height.load());
  fail_unless_equals_int(http.request("DELETE", relay.url(r.header("Location"))).status, 200);
}
GST_END_TEST;

static Suite *obs_simulcast_suite(void) {
  Suite *s = suite_create("obs_simulcast");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 150);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_obs_simulcast_relay);
  tcase_add_test(tc, test_obs_simulcast_pads);
  tcase_add_test(tc, test_stale_rids);
  return s;
}

GST_CHECK_MAIN(obs_simulcast);
