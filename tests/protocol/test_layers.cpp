// The WHEP video layer extension without media: the ladder property's syntax, layer requests
// and which layer they name, and the layer resource of a real endpoint over a fake media side.
#include <gst/check/gstcheck.h>

#include <map>
#include <string>

#include "fake_media.h"
#include "protocol/events.h"
#include "protocol/ice_servers.h"
#include "protocol/layer_control.h"
#include "protocol/layers.h"
#include "string_checks.h"

using namespace wish;

namespace {

const char *kOffer =
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=ice-ufrag:u1\r\n"
    "a=ice-pwd:p1p1p1p1p1p1p1p1p1p1p1p1\r\na=rtpmap:111 opus/48000/2\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\n"
    "a=rtpmap:96 VP8/90000\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n";
const std::map<std::string, std::string> kSdp = {{"Content-Type", "application/sdp"}};
const std::map<std::string, std::string> kJsonType = {{"Content-Type", "application/json"}};

std::vector<VideoLayer> ladder() {
  return {{"h", 1280, 720, 2500}, {"m", 640, 360, 800}, {"l", 320, 180, 300}};
}

std::string link_of(const Response &r, const char *rel) {
  for (const auto &v : r.headers.get_all("Link"))
    for (const auto &link : parse_link_header(v))
      if (link.param("rel") == rel) return link.target;
  return "";
}

}  // namespace

GST_START_TEST(test_layer_ladder_syntax) {
  std::vector<VideoLayer> layers;
  std::string error;
  fail_unless(parse_video_layers("m:640x360:800, l:320x180:300", &layers, &error), "%s", error.c_str());
  fail_unless_equals_int(layers.size(), 2);
  assert_str(layers[1].rid, "l");
  fail_unless_equals_int(layers[1].width, 320);
  fail_unless_equals_int(layers[1].kbps, 300);
  fail_unless(parse_video_layers("", &layers, &error) && layers.empty());
  for (const char *bad : {"m", "m:640x360", "m:640:800", "m:641x360:800", "m:8x8:100", "m:640x360:0", "m:640x360:x",
                          ":640x360:800", "m-1:640x360:800", "m:640x360:800,m:320x180:300", "m:640x-360:800"}) {
    fail_if(parse_video_layers(bad, &layers, &error), "accepted %s", bad);
    fail_if(error.empty());
  }
}
GST_END_TEST;

GST_START_TEST(test_layer_requests) {
  LayerRequest r;
  std::string error;
  fail_unless(parse_layer_request("{\"mediaId\":\"1\"}", &r, &error));
  fail_unless(r.automatic());
  assert_str(r.media_id, "1");
  fail_unless(parse_layer_request("{\"mediaId\":1,\"encodingId\":\"m\"}", &r, &error));  // older shapes
  assert_str(r.media_id, "1");
  assert_str(r.rid, "m");
  fail_if(r.automatic());
  for (const char *bad : {"", "[]", "{\"rid\":3}", "{\"maxWidth\":\"640\"}", "{\"spatialLayerId\":-1}",
                          "{\"rid\":\"h\",\"encodingId\":\"l\"}", "{\"mediaId\":{}}", "nonsense"}) {
    fail_if(parse_layer_request(bad, &r, &error), "accepted %s", bad);
    fail_if(error.empty());
  }
  assert_str(layer_request_body("1", "m"), "{\"mediaId\":\"1\",\"rid\":\"m\"}");
  assert_str(layer_request_body("0", ""), "{\"mediaId\":\"0\"}");

  auto pick = [](const char *body) {
    LayerRequest req;
    std::string e;
    fail_unless(parse_layer_request(body, &req, &e), "%s", e.c_str());
    return choose_layer(ladder(), req, &e);
  };
  fail_unless_equals_int(pick("{\"rid\":\"m\"}"), 1);
  fail_unless_equals_int(pick("{\"spatialLayerId\":0}"), 2);  // spatial ids count from the smallest
  fail_unless_equals_int(pick("{\"spatialLayerId\":2}"), 0);
  fail_unless_equals_int(pick("{\"maxWidth\":700}"), 1);
  fail_unless_equals_int(pick("{\"maxHeight\":720}"), 0);
  fail_unless_equals_int(pick("{\"maxSpatialLayerId\":0}"), 2);
  fail_unless_equals_int(pick("{\"temporalLayerId\":0,\"rid\":\"l\"}"), 2);
  for (const char *unknown : {"{\"rid\":\"x\"}", "{\"spatialLayerId\":3}", "{\"maxWidth\":100}", "{\"temporalLayerId\":1}"})
    fail_unless_equals_int(pick(unknown), -1);

  std::string data = layers_event_data(1, ladder());
  assert_contains(data, "{\"1\":[{\"rid\":\"h\",\"spatialLayerId\":2,\"temporalLayerId\":0,\"bitrate\":2500000");
  assert_contains(data, "\"width\":320,\"height\":180}]}");
}
GST_END_TEST;

// A viewer whose media has layers gets the layer Link and the layers event; its requests are
// checked and handed to the media side; one without layers has neither.
GST_START_TEST(test_layer_resource) {
  FakeBackend be;
  auto ep = std::make_shared<Endpoint>(EndpointConfig{}, &be);
  Response plain = call(ep, "POST", "/whep", kSdp, kOffer);
  fail_unless(link_of(plain, kLayerRel).empty());
  fail_unless_equals_int(call(ep, "POST", *plain.headers.get("Location") + "/layer", kJsonType, "{}").status, 404);
  // Without layers a subscription to them is refused.
  fail_unless_equals_int(call(ep, "POST", link_of(plain, kEventsRel), kJsonType, "[\"layers\"]").status, 400);

  be.layers = ladder();
  Response created = call(ep, "POST", "/whep", kSdp, kOffer);
  std::string layer = link_of(created, kLayerRel);
  assert_str(layer, *created.headers.get("Location") + "/layer");
  for (const auto &v : created.headers.get_all("Link"))
    if (v.find(kEventsRel) != std::string::npos) assert_contains(v, "events=\"active,inactive,layers,reconnect,viewercount\"");

  fail_unless_equals_int(call(ep, "POST", layer, kJsonType, "{\"mediaId\":\"1\",\"rid\":\"l\"}").status, 200);
  fail_unless_equals_int(call(ep, "POST", layer, kJsonType, "{\"encodingId\":\"m\"}").status, 200);  // first video m-line
  fail_unless_equals_int(call(ep, "POST", layer, kJsonType, "{\"mediaId\":\"1\"}").status, 200);      // automatic again
  fail_unless_equals_int(be.selected.size(), 3);
  fail_unless_equals_int(be.selected[0], 2);
  fail_unless_equals_int(be.selected[1], 1);
  fail_unless_equals_int(be.selected[2], -1);
  Response malformed = call(ep, "POST", layer, kJsonType, "{\"rid\":5}");
  fail_unless_equals_int(malformed.status, 400);
  assert_str(malformed.headers.get("Content-Type").value_or(""), "application/problem+json");
  fail_unless_equals_int(call(ep, "POST", layer, kJsonType, "{\"rid\":\"x\"}").status, 422);
  fail_unless_equals_int(call(ep, "POST", layer, kJsonType, "{\"mediaId\":\"0\",\"rid\":\"h\"}").status, 422);  // audio
  fail_unless_equals_int(call(ep, "POST", layer, {{"Content-Type", "text/plain"}}, "{}").status, 415);
  fail_unless_equals_int(call(ep, "GET", layer).status, 405);
  fail_unless_equals_int(be.selected.size(), 3);  // none of those reached the media

  // The layers event opens the stream of a subscriber who asked for it.
  std::string sse = link_of(created, kEventsRel);
  Response sub = call(ep, "POST", sse, kJsonType, "[\"layers\"]");
  fail_unless_equals_int(sub.status, 201);
  Response got = call(ep, "GET", *sub.headers.get("Location"));
  std::string text;
  got.stream->attach([&text](const std::string *chunk) {
    if (chunk) text += *chunk;
  });
  EventStreamParser parser;
  auto events = parser.feed(text);
  fail_unless_equals_int(events.size(), 1);
  assert_str(events[0].type, "layers");
  assert_str(events[0].data, layers_event_data(1, ladder()));
  got.stream->detach();
}
GST_END_TEST;

// The server's own choice: down after two congested samples, up after eight quiet ones, and
// twice as long before trying up again when the last try failed at once.
GST_START_TEST(test_layer_control) {
  LayerControl c;
  uint64_t packets = 0, nacks = 0;
  auto step = [&](double nack_share, int current, double lost = -1) {
    packets += 1000;
    nacks += static_cast<uint64_t>(nack_share * 1000);
    return c.update({packets, nacks, lost}, current, 3);
  };
  int layer = 0;
  layer = step(0, layer);  // the first sample only sets the counts
  fail_unless_equals_int(layer = step(0.20, layer), 0);
  fail_unless_equals_int(layer = step(0.20, layer), 1);  // two in a row: down
  fail_unless_equals_int(layer = step(0.20, layer), 1);
  fail_unless_equals_int(layer = step(0.20, layer), 2);
  fail_unless_equals_int(layer = step(0.20, layer), 2);  // no lower layer
  fail_unless_equals_int(layer = step(0.20, layer), 2);
  fail_unless_equals_int(layer = step(0.0, layer, 0.30), 2);  // loss the viewer reports counts too
  for (int i = 0; i < LayerControl::kUpAfter - 1; i++) fail_unless_equals_int(layer = step(0.0, layer, 0.0), 2);
  fail_unless_equals_int(layer = step(0.0, layer, 0.0), 1);  // quiet long enough: up
  fail_unless_equals_int(layer = step(0.2, layer), 1);
  fail_unless_equals_int(layer = step(0.2, layer), 2);  // that failed at once: down, and wait longer
  for (int i = 0; i < 2 * LayerControl::kUpAfter - 1; i++) fail_unless_equals_int(layer = step(0.0, layer), 2);
  fail_unless_equals_int(layer = step(0.0, layer), 1);
  // In between (1..5 %) is neither: nothing changes.
  for (int i = 0; i < 40; i++) fail_unless_equals_int(layer = step(0.03, layer), 1);
  // One layer only: nothing to choose.
  LayerControl one;
  one.update({1000, 0, -1}, 0, 1);
  fail_unless_equals_int(one.update({2000, 900, -1}, 0, 1), 0);
}
GST_END_TEST;

static Suite *layers_suite(void) {
  Suite *s = suite_create("layers");
  TCase *tc = tcase_create("layer");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_layer_ladder_syntax);
  tcase_add_test(tc, test_layer_requests);
  tcase_add_test(tc, test_layer_resource);
  tcase_add_test(tc, test_layer_control);
  return s;
}

GST_CHECK_MAIN(layers);
