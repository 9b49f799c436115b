// The WHEP video layer extension without media: the ladder property's syntax, layer requests
// and which layer they name, and the layer resource of a real endpoint over a fake media side;
// simulcast ingest's SDP and RTP parts (the encodings that become layers).
#include <gst/check/gstcheck.h>

#include <map>
#include <string>
#include <vector>

#include "fake_media.h"
#include "protocol/events.h"
#include "protocol/ice_servers.h"
#include "protocol/layer_control.h"
#include "protocol/layers.h"
#include "protocol/rate_meter.h"
#include "protocol/sdp.h"
#include "protocol/simulcast.h"
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

// Chromium's sendEncodings offer (rids q, h, f without a=ssrc), shortened.
const char *kSimulcastOffer =
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=rtpmap:111 opus/48000/2\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\n"
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n"
    "a=extmap:11/sendonly urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n"
    "a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
    "a=rid:q send\r\na=rid:h send\r\na=rid:f send max-width=1280\r\na=simulcast:send q;h;~f\r\n";

const char *kAnswer =
    "v=0\r\no=- 3 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtpmap:111 OPUS/48000/2\r\n"
    "a=candidate:1 1 UDP 2015364095 127.0.0.1 44906 typ host\r\na=end-of-candidates\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\n"
    "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\na=recvonly\r\n"
    "a=candidate:1 1 UDP 2015364095 127.0.0.1 44906 typ host\r\na=end-of-candidates\r\n";

// The offer's simulcast is read (paused encodings too), and the answer takes it: the rids
// received, the extensions that tell them apart with the offered ids, candidates last.
GST_START_TEST(test_simulcast_sdp) {
  std::string error;
  auto offer = parse_sdp(kSimulcastOffer, &error);
  fail_unless(offer.has_value(), "%s", error.c_str());
  const MediaSection &video = offer->media[1];
  fail_unless_equals_int(video.rids.size(), 3);
  assert_str(video.extmaps.at(11), kRepairedRidExtension);
  fail_if(simulcast_offer(offer->media[0]).has_value(), "audio has no simulcast");
  auto sc = simulcast_offer(video);
  fail_unless(sc.has_value());
  assert_str(sc->mid, "1");
  fail_unless_equals_int(sc->rids.size(), 3);
  assert_str(sc->rids[0], "q");
  assert_str(sc->rids[2], "f");  // "~f": paused, still an encoding
  fail_unless_equals_int(sc->mid_ext, 4);
  fail_unless_equals_int(sc->rid_ext, 10);
  fail_unless_equals_int(sc->repaired_rid_ext, 11);

  std::string answer = accept_simulcast(kAnswer, {*sc});
  auto parsed = parse_sdp(answer, &error);
  fail_unless(parsed.has_value(), "%s", error.c_str());
  const MediaSection &a = parsed->media[1];
  assert_str(a.simulcast, "recv q;h;f");
  fail_unless_equals_int(a.rids.size(), 3);
  fail_if(a.rids[1].send);
  assert_str(a.extmaps.at(4), kMidExtension);
  assert_str(a.extmaps.at(11), kRepairedRidExtension);
  fail_unless_equals_int(a.extmaps.size(), 3);  // the RID extension webrtcbin had answered is not doubled
  fail_unless(a.simulcast.size() && parsed->media[0].simulcast.empty() && parsed->media[0].rids.empty());
  // Candidates stay last in the m-section.
  size_t sim = answer.find("a=simulcast:recv"), cand = answer.find("a=candidate:", answer.find("m=video"));
  fail_unless(sim != std::string::npos && sim < cand);
  fail_unless(answer.find("\r\n\r\n") == std::string::npos);
  // Without simulcast offers, or with the video rejected, the answer is unchanged.
  assert_str(accept_simulcast(kAnswer, {}), kAnswer);
  std::string rejected(kAnswer);
  rejected.replace(rejected.find("m=video 9"), 9, "m=video 0");
  assert_str(accept_simulcast(rejected, {*sc}), rejected);

  // Not simulcast: one rid, no RID extension, a rid not declared for sending.
  auto plain = parse_sdp(std::string(kSimulcastOffer).replace(std::string(kSimulcastOffer).find("q;h;~f"), 6, "q"), &error);
  fail_if(simulcast_offer(plain->media[1]).has_value());
  std::string no_ext(kSimulcastOffer);
  no_ext.erase(no_ext.find("a=extmap:10"), no_ext.find("a=extmap:11") - no_ext.find("a=extmap:10"));
  fail_if(simulcast_offer(parse_sdp(no_ext, &error)->media[1]).has_value());
  std::string undeclared(kSimulcastOffer);
  undeclared.replace(undeclared.find("a=rid:h send"), 12, "a=rid:h recv");
  auto two = simulcast_offer(parse_sdp(undeclared, &error)->media[1]);
  fail_unless(two.has_value());
  fail_unless_equals_int(two->rids.size(), 2);
}
GST_END_TEST;

// The RID header extension of RTP packets, one-byte and two-byte forms; VP8 key frame sizes.
GST_START_TEST(test_simulcast_rtp) {
  // V=2, X=1, one CSRC; one-byte extensions: padding, id 4 "1" (mid), id 10 "h" (rid).
  const uint8_t one[] = {0x91, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 9,
                         0xBE, 0xDE, 0, 2, 0x00, 0x40, '1', 0xA0, 'h', 0, 0, 0, 0xff};
  auto rid = rtp_header_extension(one, sizeof one, 10);
  fail_unless(rid.has_value());
  assert_str(*rid, "h");
  assert_str(*rtp_header_extension(one, sizeof one, 4), "1");
  fail_if(rtp_header_extension(one, sizeof one, 11).has_value());
  fail_if(rtp_header_extension(one, 22, 10).has_value(), "truncated");
  const uint8_t two[] = {0x90, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0x10, 0x00, 0, 2, 10, 3, 'm', 'i', 'd', 0, 0, 0, 0xff};
  assert_str(*rtp_header_extension(two, sizeof two, 10), "mid");
  const uint8_t none[] = {0x80, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xff};
  fail_if(rtp_header_extension(none, sizeof none, 10).has_value());

  const uint8_t key[] = {0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02};  // 1280x720
  int w = 0, h = 0;
  fail_unless(vp8_picture_size(key, sizeof key, &w, &h));
  fail_unless_equals_int(w, 1280);
  fail_unless_equals_int(h, 720);
  uint8_t delta[sizeof key];
  std::copy(key, key + sizeof key, delta);
  delta[0] |= 1;
  fail_if(vp8_picture_size(delta, sizeof delta, &w, &h));
}
GST_END_TEST;

// Picture sizes from the RTP of an encoding, before any decoding: the pads of a simulcast
// publisher take its largest encoding, whatever order it lists them in.
static std::vector<uint8_t> from_hex(const char *hex) {
  std::vector<uint8_t> out;
  for (size_t i = 0; hex[i] && hex[i + 1]; i += 2) out.push_back(static_cast<uint8_t>(std::stoi(std::string(hex + i, 2), nullptr, 16)));
  return out;
}

GST_START_TEST(test_picture_size_from_rtp) {
  // SPS as x264 writes them (emulation prevention bytes included), with the size they code.
  struct {
    const char *sps;
    int width, height;
  } cases[] = {
      {"6742c01ed900a02ff97016a0c0c0d4a0000003002000000791e2c5c9", 640, 360},        // baseline, cropped
      {"6742c015d901b1fe4f016a0c0c0d4a000003000200000300791e2c5c90", 426, 240},      // odd width
      {"67640014acd9438479e5c05a8303035280000003008000001e478a14cb", 212, 120},      // high
      {"6764001facd9405005bb016a02020280000003008000001e478c18cb", 1280, 720},       // high
  };
  for (const auto &c : cases) {
    auto sps = from_hex(c.sps);
    int w = 0, h = 0;
    fail_unless(h264_sps_picture_size(sps.data(), sps.size(), &w, &h), "%s", c.sps);
    fail_unless_equals_int(w, c.width);
    fail_unless_equals_int(h, c.height);
    // In RTP: the SPS alone (RFC 6184 single NAL unit packet), then in a STAP-A with its PPS.
    std::vector<uint8_t> rtp = {0x80, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3};
    rtp.insert(rtp.end(), sps.begin(), sps.end());
    w = h = 0;
    fail_unless(rtp_picture_size(rtp.data(), rtp.size(), "H264", &w, &h));
    fail_unless_equals_int(w, c.width);
    std::vector<uint8_t> stap = {0x80, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0x78};
    stap.push_back(static_cast<uint8_t>(sps.size() >> 8));
    stap.push_back(static_cast<uint8_t>(sps.size()));
    stap.insert(stap.end(), sps.begin(), sps.end());
    for (uint8_t b : {0x00, 0x04, 0x68, 0xcb, 0x8c, 0xb2}) stap.push_back(b);  // PPS
    w = h = 0;
    fail_unless(rtp_picture_size(stap.data(), stap.size(), "h264", &w, &h));
    fail_unless_equals_int(h, c.height);
    // Truncated anywhere: never a size it does not have, never a read past the end.
    for (size_t cut = 0; cut < sps.size() - 1; cut++) {
      int tw = 0, th = 0;
      if (h264_sps_picture_size(sps.data(), cut, &tw, &th)) fail_unless(tw > 0 && th > 0);
    }
  }
  // Not an SPS: a PPS, an IDR slice, a FU-A.
  const uint8_t pps[] = {0x80, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0x68, 0xcb, 0x8c, 0xb2};
  int w = 0, h = 0;
  fail_if(rtp_picture_size(pps, sizeof pps, "H264", &w, &h));

  // VP8 (RFC 7741): descriptor with X, a 15-bit PictureID and TL0PICIDX, then the key frame.
  const uint8_t vp8[] = {0x80, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3,
                         0x90, 0xc0, 0x81, 0x23, 0x07,
                         0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00};  // 320x180
  fail_unless(rtp_picture_size(vp8, sizeof vp8, "VP8", &w, &h));
  fail_unless_equals_int(w, 320);
  fail_unless_equals_int(h, 180);
  uint8_t later[sizeof vp8];
  std::copy(vp8, vp8 + sizeof vp8, later);
  later[12] &= ~0x10;  // not the start of the frame
  fail_if(rtp_picture_size(later, sizeof later, "VP8", &w, &h));
  fail_if(rtp_picture_size(vp8, sizeof vp8, "H264", &w, &h));
  fail_if(rtp_picture_size(vp8, 12, "VP8", &w, &h), "no payload");
}
GST_END_TEST;

// The pads' encoding: the largest, in whatever order the publisher lists them.
GST_START_TEST(test_encoding_choice) {
  // OBS Studio: largest first. Undecided until every encoding told its size.
  EncodingChoice obs({"0", "1", "2"}, 3'000'000);
  fail_if(obs.observe("2", 212, 120, 0).has_value());
  fail_if(obs.observe("0", 0, 0, 1000).has_value(), "a packet without a size");
  fail_if(obs.observe("0", 640, 360, 2000).has_value());
  assert_str(*obs.observe("1", 426, 240, 3000), "0");
  assert_str(*obs.observe("2", 0, 0, 4000), "0");  // and from then on
  // A browser: smallest first; its largest held back: the largest known after the wait.
  EncodingChoice browser({"q", "h", "f"}, 3'000'000);
  fail_if(browser.observe("q", 320, 180, 10'000'000).has_value());
  fail_if(browser.observe("h", 640, 360, 11'000'000).has_value());
  fail_if(browser.observe("q", 0, 0, 12'999'999).has_value());
  assert_str(*browser.observe("q", 0, 0, 13'000'000), "h");
  // No size ever told (a codec it cannot read): the one listed last, as before.
  EncodingChoice blind({"a", "b"}, 1'000'000);
  fail_if(blind.observe("a", 0, 0, 0).has_value());
  assert_str(*blind.observe("b", 0, 0, 1'000'000), "b");
  // Unknown rids do not count.
  EncodingChoice strict({"a", "b"}, 1'000'000);
  fail_if(strict.observe("x", 1920, 1080, 0).has_value());
  fail_if(strict.observe("a", 320, 180, 1).has_value());
  assert_str(*strict.observe("b", 160, 90, 2), "a");
}
GST_END_TEST;

// A layer's bitrate as received: bytes over the last two seconds, from the first byte on while
// younger; nothing for a window is 0. The layers event gives it, and the target without it.
GST_START_TEST(test_rate_meter) {
  RateMeter meter;
  fail_unless_equals_int(meter.bits_per_second(5'000'000), 0);
  int64_t t = 10'000'000;
  // 1000 bytes every 10 ms: 800 kbit/s.
  for (int i = 0; i < 50; i++, t += 10'000) meter.add(t, 1000);
  uint64_t young = meter.bits_per_second(t);
  fail_unless(young > 700'000 && young < 900'000, "after 0.5 s: %" G_GUINT64_FORMAT, young);
  for (int i = 0; i < 250; i++, t += 10'000) meter.add(t, 1000);
  uint64_t steady = meter.bits_per_second(t);
  fail_unless(steady > 740'000 && steady < 860'000, "after 3 s: %" G_GUINT64_FORMAT, steady);
  // Half the rate: the window forgets the old one.
  for (int i = 0; i < 300; i++, t += 10'000) meter.add(t, 500);
  uint64_t half = meter.bits_per_second(t);
  fail_unless(half > 370'000 && half < 430'000, "at half the rate: %" G_GUINT64_FORMAT, half);
  fail_unless_equals_int(meter.bits_per_second(t + 2'100'000), 0);

  std::vector<VideoLayer> layers = ladder();
  layers[1].bitrate = 654'321;
  std::string data = layers_event_data(1, layers);
  fail_unless(data.find("\"bitrate\":654321,\"targetBitrate\":800000") != std::string::npos, "%s", data.c_str());
  fail_unless(data.find("\"bitrate\":300000,\"targetBitrate\":300000") != std::string::npos, "%s", data.c_str());
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
  tcase_add_test(tc, test_simulcast_sdp);
  tcase_add_test(tc, test_simulcast_rtp);
  tcase_add_test(tc, test_picture_size_from_rtp);
  tcase_add_test(tc, test_encoding_choice);
  tcase_add_test(tc, test_rate_meter);
  return s;
}

GST_CHECK_MAIN(layers);
