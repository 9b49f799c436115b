// Unit tests of the protocol library: no pipeline, no network.
#include <gst/check/gstcheck.h>

#include <map>
#include <string>

#include "protocol/client.h"
#include "protocol/endpoint.h"
#include "protocol/http.h"
#include "protocol/ice_servers.h"
#include "protocol/sdp.h"
#include "protocol/rtp_continuity.h"
#include "protocol/sdpfrag.h"
#include "protocol/stream_names.h"
#include "protocol/whisp.h"
#include "fake_media.h"
#include "string_checks.h"

using namespace wish;

// Compares as std::string: fail_unless_equals_string would keep a pointer into a temporary.

static const char *kOffer =
    "v=0\r\n"
    "o=- 1 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0 1\r\n"
    "a=ice-ufrag:sess\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 102 108\r\n"
    "a=mid:0\r\n"
    "a=recvonly\r\n"
    "a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
    "a=rtpmap:102 H264/90000\r\n"
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n"
    "a=rtpmap:108 h264/90000\r\n"
    "a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
    "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "a=mid:1\r\n"
    "a=rtpmap:111 opus/48000/2\r\n";

GST_START_TEST(test_header_helpers) {
  assert_str(media_type("Application/SDP; charset=utf-8"), "application/sdp");
  assert_str(media_type(" application/trickle-ice-sdpfrag "),
                            "application/trickle-ice-sdpfrag");
  Headers h;
  h.add("Link", "a");
  h.add("link", "b");
  fail_unless_equals_int(h.get_all("LINK").size(), 2);
  h.set("LINK", "c");
  fail_unless_equals_int(h.get_all("link").size(), 1);
  assert_str(h.get("Link")->c_str(), "c");
  assert_str(http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
}
GST_END_TEST;

GST_START_TEST(test_if_match) {
  fail_unless(parse_if_match(std::nullopt).kind == IfMatch::Missing);
  fail_unless(parse_if_match(std::string("*")).kind == IfMatch::Any);
  fail_unless(parse_if_match(std::string("\"*\"")).kind == IfMatch::Any);
  auto v = parse_if_match(std::string("\"abc\", W/\"def\""));
  fail_unless(v.kind == IfMatch::Tags);
  fail_unless_equals_int(v.tags.size(), 2);
  fail_unless(if_match_accepts(v, "\"abc\""));
  fail_if(if_match_accepts(v, "\"def\""));  // weak tags never match strongly
  fail_if(if_match_accepts(parse_if_match(std::string("abc")), "\"abc\""));
}
GST_END_TEST;

GST_START_TEST(test_bearer) {
  fail_unless(bearer_token_matches(std::string("Bearer s3cret"), "s3cret"));
  fail_unless(bearer_token_matches(std::string("bearer  s3cret "), "s3cret"));
  fail_if(bearer_token_matches(std::string("Bearer s3cre"), "s3cret"));
  fail_if(bearer_token_matches(std::string("Basic s3cret"), "s3cret"));
  fail_if(bearer_token_matches(std::nullopt, "s3cret"));
  fail_if(bearer_token_matches(std::string("Bearer "), ""));
}
GST_END_TEST;

GST_START_TEST(test_sdp_parse) {
  std::string err;
  auto sd = parse_sdp(kOffer, &err);
  fail_unless(sd.has_value(), "%s", err.c_str());
  fail_unless_equals_int(sd->media.size(), 2);
  assert_str(sd->media[0].kind, "video");
  fail_unless(sd->media[0].direction == Direction::RecvOnly);
  fail_unless(sd->media[1].direction == Direction::SendRecv);
  assert_str(sd->media[1].ice_ufrag, "sess");  // inherited
  assert_str(sd->media[0].rtpmap[108].encoding, "H264");
  fail_unless_equals_int(sd->media[1].rtpmap[111].channels, 2);
  fail_unless_equals_int(sd->media[0].candidates.size(), 1);
  fail_unless_equals_int(sd->bundle_mids.size(), 2);

  fail_if(parse_sdp("", &err).has_value());
  fail_if(parse_sdp("hello", &err).has_value());
  fail_if(parse_sdp("v=0\r\ns=-\r\n", &err).has_value());
  fail_unless(err.find("no m-line") != std::string::npos);
  fail_if(parse_sdp("v=0\r\nm=video x UDP 96\r\n", &err).has_value());
  fail_if(parse_sdp("v=0\r\nm=video 9 UDP 96\r\na=rtpmap:96\r\n", &err).has_value());
  fail_if(parse_sdp("v=0\r\nm=video 9 UDP 96\r\nbogus\r\n", &err).has_value());
  // msid, and the older ssrc msid attribute
  auto ms = parse_sdp("v=0\r\nm=video 9 UDP 96\r\na=msid:anchor cam\r\nm=audio 9 UDP 111\r\n"
                      "a=ssrc:1 cname:x\r\na=ssrc:1 msid:anchor mic\r\n",
                      &err);
  fail_unless(ms.has_value(), "%s", err.c_str());
  assert_str(ms->media[0].msid_stream, "anchor");
  assert_str(ms->media[0].msid_track, "cam");
  assert_str(ms->media[1].msid_stream, "anchor");
  assert_str(ms->media[1].msid_track, "mic");
}
GST_END_TEST;

GST_START_TEST(test_codec_match) {
  std::string err;
  auto sd = parse_sdp(kOffer, &err);
  SendCodec h264{"video", "H264", 90000, "42c01f"};
  auto pt = match_codec(sd->media[0], h264);
  fail_unless(pt.has_value());
  fail_unless_equals_int(*pt, 108);  // packetization-mode=1 only
  SendCodec vp8{"video", "VP8", 90000, ""};
  fail_unless_equals_int(*match_codec(sd->media[0], vp8), 96);
  SendCodec vp9{"video", "VP9", 90000, ""};
  fail_if(match_codec(sd->media[0], vp9).has_value());
  SendCodec opus{"audio", "OPUS", 48000, ""};
  fail_unless_equals_int(*match_codec(sd->media[1], opus), 111);
  // max-bundle offers put port 0 and a=bundle-only on all but the first m-line
  auto bundled = parse_sdp("v=0\r\nm=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=bundle-only\r\na=rtpmap:111 opus/48000/2\r\n", &err);
  fail_unless_equals_int(*match_codec(bundled->media[0], opus), 111);
  auto rejected = parse_sdp("v=0\r\nm=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n", &err);
  fail_if(match_codec(rejected->media[0], opus).has_value());
  fail_if(match_codec(sd->media[0], opus).has_value());
  // High profile source cannot go to a baseline-only player.
  SendCodec high{"video", "H264", 90000, "640028"};
  fail_if(match_codec(sd->media[0], high).has_value());
}
GST_END_TEST;

// webrtcbin 1.22 offers rtx for the first codec only; the offer gets one for each codec with
// NACK, on payload types no m-line uses.
GST_START_TEST(test_rtx_for_every_codec) {
  std::string in =
      "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
      "m=video 9 UDP/TLS/RTP/SAVPF 102 96 97 98\r\na=mid:0\r\n"
      "a=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack\r\na=rtcp-fb:102 nack pli\r\n"
      "a=fmtp:102 packetization-mode=1\r\n"
      "a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\n"
      "a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=102\r\n"
      "a=rtpmap:98 VP9/90000\r\n"  // no NACK: no rtx
      "m=audio 9 UDP/TLS/RTP/SAVPF 111 99 9\r\na=mid:1\r\n"
      "a=rtpmap:111 OPUS/48000/2\r\na=rtcp-fb:111 nack\r\na=rtpmap:99 rtx/48000\r\na=fmtp:99 apt=111\r\n"
      "a=rtpmap:9 G722/8000\r\na=rtcp-fb:9 nack\r\n"
      "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n";
  std::string out = add_rtx_for_every_codec(in);
  assert_contains(out, "m=video 9 UDP/TLS/RTP/SAVPF 102 96 97 98 100\r\n");
  assert_contains(out, "a=rtpmap:100 rtx/90000\r\na=fmtp:100 apt=96\r\nm=audio");
  assert_contains(out, "m=audio 9 UDP/TLS/RTP/SAVPF 111 99 9 101\r\n");
  assert_contains(out, "a=rtpmap:101 rtx/8000\r\na=fmtp:101 apt=9\r\nm=application");
  fail_unless(out.find("apt=98") == std::string::npos);
  assert_contains(out, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n");
  std::string err;
  fail_unless(parse_sdp(out, &err).has_value(), "%s", err.c_str());
  // Without any rtx (do-nack off, or a sendonly offer with one codec that has it) unchanged.
  std::string plain = "v=0\r\nm=video 9 X 96 98\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\n"
                      "a=rtpmap:98 VP9/90000\r\na=rtcp-fb:98 nack\r\n";
  std::string unchanged = add_rtx_for_every_codec(plain);
  fail_unless_equals_string(unchanged.c_str(), plain.c_str());
}
GST_END_TEST;

GST_START_TEST(test_finish_local_sdp) {
  std::string in =
      "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\nm=video 9 UDP/TLS/RTP/SAVPF 96\na=mid:0\na=rtcp-mux\n"
      "a=candidate:9 1 UDP 1 10.0.0.1 1 typ host\nm=audio 0 UDP/TLS/RTP/SAVPF 111\na=mid:1\n";
  std::string out = finish_local_sdp(in, {"candidate:1 1 UDP 2015364095 127.0.0.1 40000 typ host"});
  fail_unless(out.find("a=rtcp-mux\r\na=rtcp-mux-only\r\n") != std::string::npos);
  fail_unless(out.find("10.0.0.1") == std::string::npos);
  fail_unless(out.find("a=candidate:1 1 UDP 2015364095 127.0.0.1 40000 typ host\r\na=end-of-candidates\r\n"
                       "m=audio 0") != std::string::npos);
  // rejected m-line gets no candidates
  fail_unless(out.rfind("a=end-of-candidates") < out.find("m=audio"));
  std::string unb = unbundle_only("v=0\r\nm=video 9 X 96\r\na=mid:0\r\nm=audio 0 X 111\r\na=bundle-only\r\na=mid:1\r\nm=text 0 X 1\r\n");
  fail_unless(unb.find("m=audio 9 X 111\r\na=mid:1") != std::string::npos, "%s", unb.c_str());
  fail_unless(unb.find("bundle-only") == std::string::npos);
  fail_unless(unb.find("m=text 0 X 1") != std::string::npos);  // really rejected stays rejected
  std::string dirs = set_directions("v=0\r\nm=video 9 X 96\r\na=sendrecv\r\n", Direction::SendOnly);
  fail_unless(dirs.find("a=sendonly") != std::string::npos);
  fail_unless(dirs.find("a=sendrecv") == std::string::npos);
}
GST_END_TEST;

GST_START_TEST(test_sdpfrag) {
  std::string err;
  auto f = parse_sdpfrag(
      "a=ice-ufrag:EsAw\r\na=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n"
      "a=candidate:1 1 UDP 2130706431 203.0.113.1 9 typ host\r\na=end-of-candidates\r\n",
      &err);
  fail_unless(f.has_value());
  assert_str(f->ice_ufrag, "EsAw");
  fail_unless_equals_int(f->media.size(), 1);
  assert_str(f->media[0].mid, "0");
  assert_str(f->media[0].candidates[0], "candidate:1 1 UDP 2130706431 203.0.113.1 9 typ host");
  fail_unless(f->end_of_candidates);
  // Candidates without an m-line (seen in the wild) still count.
  auto g = parse_sdpfrag("a=candidate:1 1 UDP 1 127.0.0.1 9 typ host\n", &err);
  fail_unless_equals_int(g->candidate_count(), 1);
  fail_if(parse_sdpfrag("garbage line\n", &err).has_value());
  // Round trip
  auto h = parse_sdpfrag(build_sdpfrag(*f), &err);
  assert_str(h->ice_pwd, f->ice_pwd);
  fail_unless_equals_int(h->candidate_count(), 1);
}
GST_END_TEST;

GST_START_TEST(test_ice_servers) {
  auto s = parse_ice_server_url("turn://us%40er:p%3Ass@turn.example.net:3478?transport=tcp");
  fail_unless(s.has_value());
  assert_str(s->username, "us@er");
  assert_str(s->credential, "p:ss");
  fail_unless_equals_int(s->port, 3478);
  assert_str(s->link_value(),
                            "<turn:turn.example.net:3478?transport=tcp>; rel=\"ice-server\"; username=\"us@er\"; "
                            "credential=\"p:ss\"; credential-type=\"password\"");
  assert_str(s->gst_url(), "turn://us%40er:p%3Ass@turn.example.net:3478?transport=tcp");
  auto stun = parse_ice_server_url("stun://stun.example.net:19302");
  assert_str(stun->link_value(), "<stun:stun.example.net:19302>; rel=\"ice-server\"");
  fail_unless(parse_ice_server_url("stun:[::1]:3478")->host == "[::1]");
  fail_if(parse_ice_server_url("http://x").has_value());
  fail_if(parse_ice_server_url("stun://host:99999").has_value());

  auto links = parse_link_header(
      "<stun:stun.example.net>; rel=\"ice-server\", <turn:t.example.net?transport=udp>; rel=ice-server; "
      "username=u; credential=\"p,w\"; credential-type=\"password\", <https://x/sse>; "
      "rel=\"urn:ietf:params:whep:ext:core:server-sent-events\" events=\"active,inactive\"");
  fail_unless_equals_int(links.size(), 3);
  assert_str(links[2].param("events"), "active,inactive");
  auto servers = ice_servers_from_links(links);
  fail_unless_equals_int(servers.size(), 2);
  assert_str(servers[1].credential, "p,w");
  assert_str(servers[1].transport, "udp");
  fail_unless_equals_int(random_hex(16).size(), 32);
  fail_if(random_hex(16) == random_hex(16));
}
GST_END_TEST;

// At max_sessions new clients are sent to the other endpoints in turn (307), the stream's
// name appended; sessions are never redirected; without redirects, 503.
GST_START_TEST(test_endpoint_redirects_when_full) {
  FakeBackend be;
  EndpointConfig cfg;
  cfg.max_sessions = 1;
  cfg.redirect_to = {"http://b.example/whep", "http://c.example/whep"};
  auto ep = std::make_shared<Endpoint>(cfg, &be);
  Response kept = call(ep, "POST", "/whep", kSdpType, kOffer);
  fail_unless_equals_int(kept.status, 201);
  Response r1 = call(ep, "POST", "/whep", kSdpType, kOffer);
  fail_unless_equals_int(r1.status, 307);
  assert_str(r1.headers.get("Location").value_or(""), "http://b.example/whep");
  Response r2 = call(ep, "POST", "/whep/cam1", kSdpType, kOffer);
  fail_unless_equals_int(r2.status, 307);
  assert_str(r2.headers.get("Location").value_or(""), "http://c.example/whep/cam1");
  assert_str(call(ep, "POST", "/whep", kSdpType, kOffer).headers.get("Location").value_or(""), "http://b.example/whep");
  fail_unless_equals_int(be.streams.size(), 1);  // nothing made for the redirected ones
  std::string session = *kept.headers.get("Location");
  fail_unless_equals_int(call(ep, "DELETE", session).status, 200);
  fail_unless_equals_int(call(ep, "POST", "/whep", kSdpType, kOffer).status, 201);  // room again
  cfg.redirect_to.clear();
  ep->set_config(cfg);
  fail_unless_equals_int(call(ep, "POST", "/whep", kSdpType, kOffer).status, 503);
}
GST_END_TEST;

GST_START_TEST(test_endpoint_post_and_delete) {
  FakeBackend be;
  EndpointConfig cfg;
  cfg.ice_servers.push_back(*parse_ice_server_url("stun://127.0.0.1:3478"));
  auto ep = std::make_shared<Endpoint>(cfg, &be);
  Response r = call(ep, "POST", "/whep", {{"Content-Type", "application/sdp; charset=utf-8"}}, kOffer);
  fail_unless_equals_int(r.status, 201);
  std::string loc = *r.headers.get("Location");
  fail_unless(loc.rfind("/whep/sessions/", 0) == 0);
  fail_unless_equals_int(loc.size() - strlen("/whep/sessions/"), 32);  // 128 bits
  std::string etag = *r.headers.get("ETag");
  fail_unless(etag.size() > 2 && etag.front() == '"' && etag.back() == '"');
  assert_str(r.headers.get("Link")->c_str(), "<stun:127.0.0.1:3478>; rel=\"ice-server\"");
  assert_str(r.headers.get("Access-Control-Allow-Origin")->c_str(), "*");
  fail_unless(r.headers.get("Access-Control-Expose-Headers")->find("ETag") != std::string::npos);
  fail_unless_equals_int(ep->session_count(), 1);
  fail_unless_equals_int(call(ep, "GET", loc).status, 200);
  fail_unless_equals_int(call(ep, "DELETE", loc).status, 200);
  fail_unless_equals_int(be.closed.size(), 1);
  fail_unless_equals_int(call(ep, "DELETE", loc).status, 404);
  fail_unless_equals_int(ep->session_count(), 0);
}
GST_END_TEST;

GST_START_TEST(test_endpoint_errors) {
  FakeBackend be;
  EndpointConfig cfg;
  cfg.max_sessions = 1;
  auto ep = std::make_shared<Endpoint>(cfg, &be);
  fail_unless_equals_int(call(ep, "POST", "/whep", {{"Content-Type", "text/plain"}}, kOffer).status, 415);
  fail_unless_equals_int(call(ep, "POST", "/whep", {}, kOffer).status, 415);
  Response bad = call(ep, "POST", "/whep", kSdpType, "not sdp");
  fail_unless_equals_int(bad.status, 400);
  assert_str(bad.headers.get("Content-Type")->c_str(), "application/problem+json");
  fail_unless_equals_int(call(ep, "POST", "/whep", kSdpType, "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n").status, 400);
  // sendonly from a WHEP player offers nothing to receive
  fail_unless_equals_int(call(ep, "POST", "/whep", kSdpType, "v=0\r\nm=video 9 X 96\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n").status, 400);
  fail_unless_equals_int(call(ep, "POST", "/whep", kSdpType, std::string(70000, 'a')).status, 413);
  be.admission = {409, "nothing published yet"};
  Response conflict = call(ep, "POST", "/whep", kSdpType, kOffer);
  fail_unless_equals_int(conflict.status, 409);
  fail_unless(conflict.headers.get("Retry-After").has_value());
  be.admission = {};
  fail_unless_equals_int(call(ep, "POST", "/whep", kSdpType, kOffer).status, 201);
  Response full = call(ep, "POST", "/whep", kSdpType, kOffer);
  fail_unless_equals_int(full.status, 503);
  fail_unless(full.headers.get("Retry-After").has_value());
  fail_unless_equals_int(call(ep, "PUT", "/whep", kSdpType, kOffer).status, 405);
  fail_unless_equals_int(call(ep, "GET", "/other").status, 404);
  fail_unless_equals_int(call(ep, "DELETE", "/whep/sessions/unknown").status, 404);
  Response head = call(ep, "HEAD", "/whep");
  fail_unless_equals_int(head.status, 200);
  assert_str(head.headers.get("Content-Type")->c_str(), "application/sdp");
  Response opt = call(ep, "OPTIONS", "/whep");
  fail_unless_equals_int(opt.status, 200);
  assert_str(opt.headers.get("Accept-Post")->c_str(), "application/sdp");
}
GST_END_TEST;

// Sessions of one client address not connected yet are limited; connected ones, other
// addresses and requests without an address (action signals) are not. Huge offers are refused.
GST_START_TEST(test_endpoint_client_limits) {
  FakeBackend be;
  EndpointConfig cfg;
  cfg.max_pending_per_client = 2;
  auto ep = std::make_shared<Endpoint>(cfg, &be);
  auto post = [&](const std::string &client, const std::string &body = kOffer) {
    Request req;
    req.method = "POST";
    req.path = "/whep";
    req.client = client;
    req.headers.add("Content-Type", "application/sdp");
    req.body = body;
    Response out;
    ep->handle(req, Reply([&](Response r) { out = std::move(r); }));
    return out;
  };
  Response opened = post("10.0.0.1");
  fail_unless_equals_int(opened.status, 201);
  fail_unless_equals_int(post("10.0.0.1").status, 201);
  Response busy = post("10.0.0.1");
  fail_unless_equals_int(busy.status, 503);
  fail_unless(busy.headers.get("Retry-After").has_value());
  fail_unless_equals_int(post("10.0.0.2").status, 201);
  fail_unless_equals_int(post("").status, 201);
  std::string id = opened.headers.get("Location")->substr(strlen("/whep/sessions/"));
  be.events[id]->connected();
  fail_unless_equals_int(post("10.0.0.1").status, 201);
  fail_unless_equals_int(post("10.0.0.1").status, 503);

  std::string many = "v=0\r\n";
  for (int i = 0; i < 17; i++) many += "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n";
  Response huge = post("10.0.0.3", many);
  fail_unless_equals_int(huge.status, 400);
  fail_unless(huge.body.find("16 m-lines") != std::string::npos, "%s", huge.body.c_str());
  std::string candidates = kOffer;
  for (int i = 0; i < 65; i++) candidates += "a=candidate:" + std::to_string(i) + " 1 udp 1 127.0.0.1 9 typ host\r\n";
  huge = post("10.0.0.3", candidates);
  fail_unless_equals_int(huge.status, 400);
  fail_unless(huge.body.find("64 candidates") != std::string::npos, "%s", huge.body.c_str());
}
GST_END_TEST;

GST_START_TEST(test_endpoint_auth_and_cors) {
  FakeBackend be;
  EndpointConfig cfg;
  cfg.auth_token = "tok";
  cfg.cors_allowed_origins = "http://a.example, http://b.example";
  auto ep = std::make_shared<Endpoint>(cfg, &be);
  Response r = call(ep, "POST", "/whep", kSdpType, kOffer);
  fail_unless_equals_int(r.status, 401);
  assert_str(r.headers.get("WWW-Authenticate")->c_str(), "Bearer");
  fail_unless_equals_int(call(ep, "POST", "/whep", {{"Content-Type", "application/sdp"}, {"Authorization", "Bearer nope"}}, kOffer).status, 401);
  Response ok = call(ep, "POST", "/whep", {{"Content-Type", "application/sdp"}, {"Authorization", "Bearer tok"}, {"Origin", "http://b.example"}}, kOffer);
  fail_unless_equals_int(ok.status, 201);
  assert_str(ok.headers.get("Access-Control-Allow-Origin")->c_str(), "http://b.example");
  // Preflight: no auth, no Link
  Response pre = call(ep, "OPTIONS", "/whep", {{"Access-Control-Request-Method", "POST"}, {"Origin", "http://a.example"}});
  fail_unless_equals_int(pre.status, 200);
  fail_if(pre.headers.has("Link"));
  fail_unless(pre.headers.get("Access-Control-Allow-Methods")->find("POST") != std::string::npos);
  assert_str(pre.headers.get("Access-Control-Allow-Origin")->c_str(), "http://a.example");
  Response other = call(ep, "OPTIONS", "/whep", {{"Access-Control-Request-Method", "POST"}, {"Origin", "http://evil.example"}});
  fail_if(other.headers.has("Access-Control-Allow-Origin"));
  // Non-preflight OPTIONS needs the token like everything else
  fail_unless_equals_int(call(ep, "OPTIONS", "/whep").status, 401);
}
GST_END_TEST;

GST_START_TEST(test_endpoint_patch_rules) {
  FakeBackend be;
  auto ep = std::make_shared<Endpoint>(EndpointConfig{}, &be);
  Response created = call(ep, "POST", "/whep", kSdpType, kOffer);
  std::string loc = *created.headers.get("Location"), etag = *created.headers.get("ETag");
  std::string frag = "a=ice-ufrag:u\r\na=ice-pwd:pppppppppppppppppppppp\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n"
                     "a=candidate:1 1 UDP 1 127.0.0.1 5 typ host\r\n";
  std::map<std::string, std::string> h = {{"Content-Type", "application/trickle-ice-sdpfrag"}};
  fail_unless_equals_int(call(ep, "PATCH", loc, h, frag).status, 428);
  h["If-Match"] = "\"stale\"";
  fail_unless_equals_int(call(ep, "PATCH", loc, h, frag).status, 412);
  h["If-Match"] = etag;
  fail_unless_equals_int(call(ep, "PATCH", loc, h, frag).status, 204);
  fail_unless_equals_int(be.candidates, 1);
  fail_unless_equals_int(call(ep, "PATCH", loc, {{"Content-Type", "text/plain"}, {"If-Match", etag}}, frag).status, 415);
  fail_unless_equals_int(call(ep, "PATCH", "/whep/sessions/nope", h, frag).status, 404);
  // An SDP PATCH outside the counter-offer flow
  fail_unless_equals_int(call(ep, "PATCH", loc, kSdpType, kOffer).status, 422);
  // ICE restart: new ETag, the old one is stale afterwards
  h["If-Match"] = "\"*\"";
  Response rs = call(ep, "PATCH", loc, h, frag);
  fail_unless_equals_int(rs.status, 200);
  assert_str(rs.headers.get("Content-Type")->c_str(), "application/trickle-ice-sdpfrag");
  std::string etag2 = *rs.headers.get("ETag");
  fail_if(etag2 == etag);
  h["If-Match"] = etag;
  fail_unless_equals_int(call(ep, "PATCH", loc, h, frag).status, 412);
  h["If-Match"] = etag2;
  fail_unless_equals_int(call(ep, "PATCH", loc, h, frag).status, 204);
  // Restart without credentials is malformed; a failed restart keeps the ETag
  h["If-Match"] = "*";
  fail_unless_equals_int(call(ep, "PATCH", loc, h, "a=candidate:1 1 UDP 1 127.0.0.1 5 typ host\r\n").status, 400);
  be.restart_ok = false;
  fail_unless_equals_int(call(ep, "PATCH", loc, h, frag).status, 422);
  h["If-Match"] = etag2;
  fail_unless_equals_int(call(ep, "PATCH", loc, h, frag).status, 204);
}
GST_END_TEST;

GST_START_TEST(test_endpoint_counter_offer) {
  FakeBackend be;
  int64_t now = 1000000000;  // ms
  EndpointConfig cfg;
  cfg.counter_offer = CounterOfferMode::Always;
  auto ep = std::make_shared<Endpoint>(cfg, &be, [&] { return now; });
  Response r = call(ep, "POST", "/whep", kSdpType, kOffer);
  fail_unless_equals_int(r.status, 406);
  fail_unless(r.headers.get("Content-Type")->rfind("application/sdp; valid-until=\"", 0) == 0);
  fail_unless(r.headers.get("Content-Type")->find(http_date(now / 1000 + 30)) != std::string::npos);
  std::string loc = *r.headers.get("Location");
  // A trickle before the answer is refused
  fail_unless_equals_int(call(ep, "PATCH", loc, {{"Content-Type", "application/trickle-ice-sdpfrag"}, {"If-Match", *r.headers.get("ETag")}}, "a=ice-ufrag:x\r\n").status, 409);
  fail_unless_equals_int(call(ep, "PATCH", loc, kSdpType, "garbage").status, 400);
  fail_unless_equals_int(call(ep, "PATCH", loc, kSdpType, kOffer).status, 204);
  fail_unless_equals_int(call(ep, "PATCH", loc, kSdpType, kOffer).status, 422);  // only once
  be.events[loc.substr(loc.rfind('/') + 1)]->connected();  // its media flows: no connect deadline

  // An unanswered counter-offer expires after 30 s
  Response r2 = call(ep, "POST", "/whep", kSdpType, kOffer);
  fail_unless_equals_int(r2.status, 406);
  now += 29000;
  fail_unless_equals_int(ep->expire_stale().size(), 0);
  now += 1000;
  fail_unless_equals_int(ep->expire_stale().size(), 1);
  fail_unless_equals_int(call(ep, "PATCH", *r2.headers.get("Location"), kSdpType, kOffer).status, 404);
  fail_unless_equals_int(ep->session_count(), 1);

  // when-needed: only when the offer cannot be answered; never: 422
  cfg.counter_offer = CounterOfferMode::WhenNeeded;
  ep->set_config(cfg);
  fail_unless_equals_int(call(ep, "POST", "/whep", kSdpType, kOffer).status, 201);
  be.answerable = false;
  fail_unless_equals_int(call(ep, "POST", "/whep", kSdpType, kOffer).status, 406);
  cfg.counter_offer = CounterOfferMode::Never;
  ep->set_config(cfg);
  fail_unless_equals_int(call(ep, "POST", "/whep", kSdpType, kOffer).status, 422);
}
GST_END_TEST;

// The endpoint owns its sessions: a handle dropped is the media freed, for every way a
// session ends, and each with its reason.
GST_START_TEST(test_endpoint_session_ownership) {
  FakeBackend be;
  int64_t now = 5000000;
  EndpointConfig cfg;
  cfg.connect_timeout_ms = 3000;
  auto ep = std::make_shared<Endpoint>(cfg, &be, [&] { return now; });
  auto id_of = [](const Response &r) {
    std::string loc = *r.headers.get("Location");
    return loc.substr(loc.rfind('/') + 1);
  };
  Response a = call(ep, "POST", "/whep", kSdpType, kOffer);
  Response b = call(ep, "POST", "/whep", kSdpType, kOffer);
  Response c = call(ep, "POST", "/whep", kSdpType, kOffer);
  fail_unless_equals_int(ep->session_count(), 3);
  // a connects; b never does; c's media ends by itself.
  be.events[id_of(a)]->connected();
  be.events[id_of(c)]->ended("connection-lost");
  fail_unless_equals_int(ep->session_count(), 2);
  assert_str(be.closed.back(), id_of(c) + " connection-lost");
  fail_unless_equals_int(call(ep, "DELETE", *c.headers.get("Location")).status, 404);
  now += 2999;
  fail_unless_equals_int(ep->expire_stale().size(), 0);
  now += 1;
  auto expired = ep->expire_stale();
  fail_unless_equals_int(expired.size(), 1);
  assert_str(expired[0], id_of(b));
  assert_str(be.closed.back(), id_of(b) + " not-connected");
  fail_unless_equals_int(call(ep, "DELETE", *a.headers.get("Location")).status, 200);
  assert_str(be.closed.back(), id_of(a) + " closed");
  fail_unless_equals_int(ep->session_count(), 0);
  // Events for sessions that are gone, or from an endpoint that is gone, do nothing.
  be.events[id_of(a)]->ended("late");
  Response d = call(ep, "POST", "/whep", kSdpType, kOffer);
  auto events = be.events[id_of(d)];
  ep.reset();  // the endpoint goes: its sessions' media with it
  assert_str(be.closed.back(), id_of(d) + " stopped");
  events->ended("after the endpoint");
  events->connected();
}
GST_END_TEST;

// Every request is answered exactly once: a reply dropped unanswered (a media step that
// never completed, a request that raced shutdown) answers 503, and a DELETE during set-up
// frees the media that arrives afterwards.
GST_START_TEST(test_reply_exactly_once) {
  {
    int sent = 0;
    unsigned status = 0;
    {
      Reply r([&](Response resp) {
        sent++;
        status = resp.status;
      });
      Reply copy = r;
      copy.send(Response::empty(204));
      r.send(Response::empty(500));  // ignored
    }
    fail_unless_equals_int(sent, 1);
    fail_unless_equals_int(status, 204);
  }
  {
    int sent = 0;
    unsigned status = 0;
    { Reply r([&](Response resp) { sent++, status = resp.status; }); }
    fail_unless_equals_int(sent, 1);
    fail_unless_equals_int(status, 503);
  }
  FakeBackend be;
  be.hold = true;
  auto ep = std::make_shared<Endpoint>(EndpointConfig{}, &be);
  std::vector<unsigned> statuses;
  Request req;
  req.method = "POST";
  req.path = "/whep";
  req.headers.add("Content-Type", "application/sdp");
  req.body = kOffer;
  ep->handle(req, Reply([&](Response r) { statuses.push_back(r.status); }));
  ep->handle(req, Reply([&](Response r) { statuses.push_back(r.status); }));
  fail_unless_equals_int(statuses.size(), 0);
  fail_unless_equals_int(ep->session_count(), 2);
  ep->close_all();  // a DELETE of everything while both are being set up
  be.held[0]();     // the media arrives for a session that is gone: freed, 503
  fail_unless_equals_int(statuses.size(), 1);
  fail_unless_equals_int(statuses[0], 503);
  fail_unless_equals_int(be.closed.size(), 1);
  ep.reset();
  be.held[1]();  // the endpoint is gone: the media is freed and the reply answers 503
  be.held.clear();
  fail_unless_equals_int(statuses.size(), 2);
  fail_unless_equals_int(statuses[1], 503);
  fail_unless_equals_int(be.closed.size(), 2);
}
GST_END_TEST;

GST_START_TEST(test_endpoint_named_streams) {
  FakeBackend be;
  auto ep = std::make_shared<Endpoint>(EndpointConfig{}, &be);
  fail_unless_equals_int(call(ep, "POST", "/whep/cam1", kSdpType, kOffer).status, 201);
  fail_unless_equals_int(call(ep, "POST", "/whep", kSdpType, kOffer).status, 201);
  assert_str(be.streams[0], "cam1");
  assert_str(be.streams[1], "");
  fail_unless_equals_int(call(ep, "POST", "/whep/a/b", kSdpType, kOffer).status, 404);
  fail_unless_equals_int(call(ep, "POST", "/whep/..", kSdpType, kOffer).status, 404);
  fail_unless_equals_int(call(ep, "POST", "/whep/sessions", kSdpType, kOffer).status, 404);
  fail_unless_equals_int(call(ep, "OPTIONS", "/whep/cam1").status, 200);
  be.admission = {404, "no stream named 'x'"};
  Response unknown = call(ep, "POST", "/whep/x", kSdpType, kOffer);
  fail_unless_equals_int(unknown.status, 404);
  fail_if(unknown.headers.has("Retry-After"));
  EndpointConfig plain;
  plain.named_streams = false;
  ep->set_config(plain);
  fail_unless_equals_int(call(ep, "POST", "/whep/cam1", kSdpType, kOffer).status, 404);
}
GST_END_TEST;

GST_START_TEST(test_stream_names) {
  fail_unless(valid_stream_name("cam-1.main_x~"));
  fail_if(valid_stream_name(""));
  fail_if(valid_stream_name("a/b"));
  fail_if(valid_stream_name(".."));
  fail_if(valid_stream_name("sessions"));
  fail_if(valid_stream_name("a b"));
  fail_if(valid_stream_name(std::string(65, 'a')));
  std::vector<std::string> paths = {"/whep", "/whip", "/live/in"};
  assert_str(stream_name_from_locator("cam1", paths), "cam1");
  assert_str(stream_name_from_locator("/whep/cam1", paths), "cam1");
  assert_str(stream_name_from_locator("/whip/cam1/", paths), "cam1");
  assert_str(stream_name_from_locator("http://h.example:8889/whep/cam1?x=1", paths), "cam1");
  assert_str(stream_name_from_locator("/live/in/cam2", paths), "cam2");
  assert_str(stream_name_from_locator("/whep", paths), "whep");
  assert_str(stream_name_from_locator("/red", paths), "red");
  assert_str(stream_name_from_locator("http://h.example/", paths), "");
}
GST_END_TEST;

static std::vector<uint8_t> rtp_packet(uint8_t pt, uint16_t seq, uint32_t ts, uint32_t ssrc,
                                       std::vector<uint8_t> payload, bool extension = false) {
  std::vector<uint8_t> p = {static_cast<uint8_t>(0x80 | (extension ? 0x10 : 0)), pt, static_cast<uint8_t>(seq >> 8),
                            static_cast<uint8_t>(seq)};
  for (int i = 0; i < 4; i++) p.push_back(static_cast<uint8_t>(ts >> (24 - 8 * i)));
  for (int i = 0; i < 4; i++) p.push_back(static_cast<uint8_t>(ssrc >> (24 - 8 * i)));
  if (extension) p.insert(p.end(), {0xbe, 0xde, 0x00, 0x01, 0x10, 0xaa, 0x00, 0x00});
  p.insert(p.end(), payload.begin(), payload.end());
  return p;
}

GST_START_TEST(test_rtp_keyframes) {
  auto key = [](const char *enc, std::vector<uint8_t> payload, bool ext = false) {
    auto p = rtp_packet(96, 1, 1, 1, std::move(payload), ext);
    return rtp_starts_keyframe(enc, p.data(), p.size());
  };
  // H.264: IDR, SPS, STAP-A holding SPS/PPS, FU-A start of an IDR; not: P slice, FU-A middle.
  fail_unless(key("H264", {0x65, 0x88}));
  fail_unless(key("H264", {0x67, 0x42}));
  fail_unless(key("H264", {0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce}));
  fail_unless(key("H264", {0x7c, 0x85, 0x00}));
  fail_unless(key("H264", {0x7c, 0x85, 0x00}, true));
  fail_if(key("H264", {0x41, 0x9a}));
  fail_if(key("H264", {0x7c, 0x05, 0x00}));
  fail_if(key("H264", {0x78, 0x00, 0x02, 0x41, 0x9a}));
  // VP8: start of partition 0 with P=0, with and without the extended descriptor.
  fail_unless(key("VP8", {0x10, 0x10}));
  fail_unless(key("VP8", {0x90, 0x80, 0x81, 0x23, 0x50}));
  fail_if(key("VP8", {0x90, 0x80, 0x81, 0x23, 0x51}));  // inter frame
  fail_if(key("VP8", {0x00, 0x10}));                    // not a partition start
  // VP9: frame start without inter-prediction.
  fail_unless(key("VP9", {0x88}));
  fail_if(key("VP9", {0xc8}));
  fail_unless(key("OPUS", {0x01}));
  fail_if(key("H264", {}));
  std::vector<uint8_t> junk = {0x80, 0x60};
  fail_if(rtp_starts_keyframe("H264", junk.data(), junk.size()));
}
GST_END_TEST;

GST_START_TEST(test_rtp_continuity) {
  RtpContinuity out(0xabcdef01, 102, 90000, true);
  RtpHeader h, o;
  auto feed = [&](uint16_t seq, uint32_t ts, uint32_t ssrc, bool key, int64_t now_us) {
    auto p = rtp_packet(96, seq, ts, ssrc, {0});
    fail_unless(parse_rtp_header(p.data(), p.size(), &h));
    return out.process(h, key, now_us, &o);
  };
  // Nothing before the first keyframe; then the source's numbering, our SSRC and payload type.
  fail_unless(feed(100, 9000, 1, false, 0) == RtpContinuity::Verdict::Drop);
  fail_unless(feed(101, 9000, 1, true, 0) == RtpContinuity::Verdict::Rewrite);
  fail_unless_equals_int(o.seq, 101);
  fail_unless_equals_int(o.timestamp, 9000);
  fail_unless_equals_int(o.ssrc, 0xabcdef01);
  fail_unless_equals_int(o.payload_type, 102);
  fail_unless(feed(102, 12000, 1, false, 33000) == RtpContinuity::Verdict::Rewrite);
  // Switch to a source with other numbers: it starts at its keyframe, one sequence number
  // on, the timestamp advanced by the 100 ms that passed (9000 ticks).
  out.switch_source();
  fail_unless(feed(60000, 500, 2, false, 100000) == RtpContinuity::Verdict::Drop);
  fail_unless(feed(60001, 700, 2, true, 133000) == RtpContinuity::Verdict::Rewrite);
  fail_unless_equals_int(o.seq, 103);
  fail_unless_equals_int(o.timestamp, 12000 + 9000);
  fail_unless_equals_int(o.ssrc, 0xabcdef01);
  fail_unless(feed(60002, 700 + 3000, 2, false, 166000) == RtpContinuity::Verdict::Rewrite);
  fail_unless_equals_int(o.seq, 104);
  fail_unless_equals_int(o.timestamp, 12000 + 9000 + 3000);
  // Wrap-around of the source's numbers stays continuous.
  fail_unless(feed(65535, 5000, 2, false, 170000) == RtpContinuity::Verdict::Rewrite);
  uint16_t at_wrap = o.seq;
  fail_unless(feed(0, 5000, 2, false, 171000) == RtpContinuity::Verdict::Rewrite);
  fail_unless_equals_int(static_cast<uint16_t>(o.seq - at_wrap), 1);
  // A source that restarts with a new SSRC is a switch by itself.
  fail_unless(feed(7, 1, 3, false, 200000) == RtpContinuity::Verdict::Drop);
  fail_unless(feed(8, 1, 3, true, 200000) == RtpContinuity::Verdict::Rewrite);
  fail_unless_equals_int(static_cast<uint16_t>(o.seq - at_wrap), 2);
  // Same SSRC, payload type and numbers as the first source: the packet passes untouched.
  RtpContinuity same(1, 96, 48000, false);
  auto p = rtp_packet(96, 5, 960, 1, {0});
  fail_unless(parse_rtp_header(p.data(), p.size(), &h));
  fail_unless(same.process(h, false, 0, &o) == RtpContinuity::Verdict::Unchanged);
  std::vector<uint8_t> copy = p;
  o.seq = 0x1234;
  o.timestamp = 0x01020304;
  o.ssrc = 0x0a0b0c0d;
  o.payload_type = 111;
  write_rtp_header(copy.data(), o);
  RtpHeader back;
  fail_unless(parse_rtp_header(copy.data(), copy.size(), &back));
  fail_unless_equals_int(back.seq, 0x1234);
  fail_unless_equals_int(back.timestamp, 0x01020304);
  fail_unless_equals_int(back.ssrc, 0x0a0b0c0d);
  fail_unless_equals_int(back.payload_type, 111);
}
GST_END_TEST;

GST_START_TEST(test_client_failures) {
  fail_unless(client_failure(401) == ClientFailure::NotAuthorized);
  fail_unless(client_failure(403) == ClientFailure::NotAuthorized);
  fail_unless(client_failure(404) == ClientFailure::NotFound);
  fail_unless(client_failure(409) == ClientFailure::Busy);
  fail_unless(client_failure(503) == ClientFailure::Busy);
  fail_unless(client_failure(0) == ClientFailure::Unreachable);
  fail_unless(client_failure(422) == ClientFailure::Refused);
  fail_unless(client_failure(500) == ClientFailure::Other);
}
GST_END_TEST;

// The draft's figures, as printed (the HTTP message inside braces, keys in arrays, trailing
// commas): not JSON, so 400.
static const char *kWhispFigure4 = R"({
  POST /whisp/merging/endpoint HTTP/1.1
  Host: whisp.example.com
  Content-Type: application/json
  Content-Length:
  {
    "main media": {
      "media ID": [
        "amsid": [
          "rts audio"
        ],
        "vmsid": [
          "rts video"
        ]
      ],
      "URL": "http://demo.example.com/liveapp****/liveStream****1",
    },
    "secondary media": {
      "media ID": [
        "amsid": [
          "rts audio"
        ],
        "vmsid": [
          "rts video"
        ]
      ],
      "URL": "http://demo.example.com/liveapp****/liveStream****2",
    },
    "merge template": {
      "merge template id" [
        "01"
      ]
    }
  }
})";
static const char *kWhispFigure6Body = R"({
    "new media": {
      "media ID": [
        "amsid": [
          "rts audio"
        ],
        "vmsid": [
          "rts video"
        ]
      },
      ],
      "URL": "http://demo.example.com/liveapp****/liveStream****",
    }
    error_code,
  })";

GST_START_TEST(test_whisp_parsing) {
  WhispRequest r;
  std::string err;
  fail_if(parse_whisp_request(WhispMessage::Merging, kWhispFigure4, &r, &err));
  fail_if(parse_whisp_request(WhispMessage::Grabbing, kWhispFigure6Body, &r, &err));
  // The well-formed readings of the figures.
  fail_unless(parse_whisp_request(WhispMessage::Merging,
                                  R"({"main media":{"media ID":{"amsid":["rts audio"],"vmsid":["rts video"]},
                                      "URL":"http://demo.example.com/liveapp/liveStream1"},
                                     "secondary media":{"media ID":{"amsid":["rts audio"],"vmsid":["rts video"]},
                                      "URL":"http://demo.example.com/liveapp/liveStream2"},
                                     "merge template":{"merge template id":["01"]}})",
                                  &r, &err),
              "%s", err.c_str());
  assert_str(r.media.url, "http://demo.example.com/liveapp/liveStream1");
  assert_str(r.other.url, "http://demo.example.com/liveapp/liveStream2");
  assert_str(r.template_id, "01");
  fail_unless_equals_int(r.media.amsid.size(), 1);
  assert_str(r.media.vmsid[0], "rts video");
  // "media ID" as an array of one-key objects; template id as a number; msid as a string.
  WhispRequest m;
  fail_unless(parse_whisp_request(WhispMessage::Merging,
                                  R"({"main media":{"media ID":[{"amsid":["a"]},{"vmsid":"v"}],"URL":"/whep/a"},
                                     "secondary media":{"URL":"b"},"merge template":{"merge template id":2}})",
                                  &m, &err),
              "%s", err.c_str());
  assert_str(m.media.amsid[0], "a");
  assert_str(m.media.vmsid[0], "v");
  fail_if(m.other.has_media_id);
  assert_str(m.template_id, "02");
  // error_code as a number or a hex string.
  WhispRequest g;
  fail_unless(parse_whisp_request(WhispMessage::Grabbing, R"({"new media":{"URL":"red"},"error_code":"0x1"})", &g, &err));
  fail_unless_equals_int(g.error_code, 1);
  fail_unless(parse_whisp_request(WhispMessage::Grabbing, R"({"new media":{"URL":"red"},"error_code":2})", &g, &err));
  fail_unless_equals_int(g.error_code, 2);
  fail_unless(parse_whisp_request(WhispMessage::Grabbing, R"({"new media":{"URL":"red"},"error_code":"0x7"})", &g, &err));
  fail_unless_equals_int(g.error_code, 7);  // read; refused by the endpoint (422)
  // Wrong types and missing members.
  const char *bad[] = {
      R"([])", R"({"media":"http://x"})", R"({"media":{"URL":3}})", R"({"media":{}})",
      R"({"media":{"URL":"u","media ID":5}})", R"({"media":{"URL":"u","media ID":{"vmsid":[1]}}})",
      R"({"media":{"URL":""}})"};
  for (const char *b : bad) fail_if(parse_whisp_request(WhispMessage::Pulling, b, &r, &err), "%s accepted", b);
  fail_if(parse_whisp_request(WhispMessage::Grabbing, R"({"new media":{"URL":"r"},"error_code":"0x"})", &g, &err));
  fail_if(parse_whisp_request(WhispMessage::Grabbing, R"({"new media":{"URL":"r"}})", &g, &err));
  fail_if(parse_whisp_request(WhispMessage::Merging,
                              R"({"main media":{"URL":"a"},"secondary media":{"URL":"b"},"merge template":{}})", &m, &err));
  // What the server writes is JSON it reads back.
  std::string out = whisp_media_json(r.media);
  WhispRequest back;
  fail_unless(parse_whisp_request(WhispMessage::Pulling, "{\"media\":" + out + "}", &back, &err), "%s", out.c_str());
  assert_str(back.media.url, r.media.url);
  assert_str(back.media.vmsid[0], "rts video");
  fail_unless(parse_whisp_request(WhispMessage::Pulling, whisp_pulling_response("/whep/p1", "p1"), &back, &err));
  assert_str(back.media.url, "/whep/p1");
  assert_contains(whisp_templates_json(), "\"merge template id\":\"03\"");
}
GST_END_TEST;

class FakeWhisp : public WhispBackend {
public:
  std::vector<WhispRequest> seen;
  std::vector<std::string> ended;
  WhispResult result = WhispResult::ok(201);
  void pull(const WhispRequest &r, WhispCallback done) override { answer(r, done); }
  void switch_streams(const WhispRequest &r, WhispCallback done) override { answer(r, done); }
  void merge(const WhispRequest &r, WhispCallback done) override { answer(r, done); }
  void grab(const WhispRequest &r, WhispCallback done) override { answer(r, done); }
  unsigned end(WhispMessage, const std::string &id) override {
    ended.push_back(id);
    return id == "known" ? 200 : 404;
  }

private:
  void answer(const WhispRequest &r, WhispCallback done) {
    seen.push_back(r);
    done(result);
  }
};

GST_START_TEST(test_whisp_endpoint) {
  FakeWhisp be;
  WhispConfig cfg;
  cfg.auth_token = "tok";
  auto ep = std::make_shared<WhispEndpoint>(cfg, &be);
  std::map<std::string, std::string> json = {{"Content-Type", "application/json"}, {"Authorization", "Bearer tok"}};
  const std::string pull = R"({"media":{"URL":"http://up.example/whep"}})";
  fail_unless_equals_int(call(ep, "POST", "/whisp/pulling/endpoint", {{"Content-Type", "application/json"}}, pull).status, 401);
  Response pre = call(ep, "OPTIONS", "/whisp/pulling/endpoint", {{"Access-Control-Request-Method", "POST"}});
  fail_unless_equals_int(pre.status, 200);
  assert_contains(*pre.headers.get("Access-Control-Allow-Methods"), "POST");
  assert_str(*pre.headers.get("Access-Control-Allow-Origin"), "*");
  fail_unless_equals_int(call(ep, "POST", "/whisp/pulling/endpoint", {{"Content-Type", "text/plain"}, {"Authorization", "Bearer tok"}}, pull).status, 415);
  fail_unless_equals_int(call(ep, "POST", "/whisp/merging/endpoint", json, kWhispFigure4).status, 400);
  fail_unless_equals_int(be.seen.size(), 0);

  be.result.resource = "p1";
  be.result.stream = "pull-p1";
  be.result.url = "/whep/pull-p1";
  Response created = call(ep, "POST", "/whisp/pulling/endpoint", json, pull);
  fail_unless_equals_int(created.status, 201);
  assert_str(*created.headers.get("Location"), "/whisp/pulling/p1");
  assert_str(*created.headers.get("Content-Type"), "application/json");
  assert_contains(created.body, "\"URL\":\"/whep/pull-p1\"");
  assert_str(be.seen.back().media.url, "http://up.example/whep");

  be.result = WhispResult::ok(201);
  be.result.resource = "s1";
  Response sw = call(ep, "POST", "/whisp/switching/endpoint", json,
                           R"({"source media":{"URL":"red"},"destination media":{"URL":"/whep/blue"}})");
  fail_unless_equals_int(sw.status, 201);
  assert_contains(sw.body, "\"source media\":{\"URL\":\"red\"}");
  assert_contains(sw.body, "\"destination media\":{\"URL\":\"/whep/blue\"}");

  const std::string merge = R"({"main media":{"URL":"a"},"secondary media":{"URL":"b"},"merge template":{"merge template id":"09"}})";
  Response unknown = call(ep, "POST", "/whisp/merging/endpoint", json, merge);
  fail_unless_equals_int(unknown.status, 422);
  assert_contains(unknown.body, "templates");
  Response bad_code = call(ep, "POST", "/whisp/grabbing/endpoint", json, R"({"new media":{"URL":"red"},"error_code":3})");
  fail_unless_equals_int(bad_code.status, 422);
  be.result = WhispResult::refused(404, "no stream named 'nowhere'");
  Response missing = call(ep, "POST", "/whisp/grabbing/endpoint", json, R"({"new media":{"URL":"nowhere"},"error_code":0})");
  fail_unless_equals_int(missing.status, 404);
  assert_str(*missing.headers.get("Content-Type"), "application/problem+json");

  Response templates = call(ep, "GET", "/whisp/merging/templates", {{"Authorization", "Bearer tok"}});
  fail_unless_equals_int(templates.status, 200);
  assert_contains(templates.body, "\"01\"");
  fail_unless_equals_int(call(ep, "DELETE", "/whisp/merging/known", {{"Authorization", "Bearer tok"}}).status, 200);
  fail_unless_equals_int(call(ep, "DELETE", "/whisp/merging/other", {{"Authorization", "Bearer tok"}}).status, 404);
  Response wrong = call(ep, "GET", "/whisp/switching/endpoint", {{"Authorization", "Bearer tok"}});
  fail_unless_equals_int(wrong.status, 405);
  assert_str(*wrong.headers.get("Allow"), "OPTIONS, POST");
  fail_unless_equals_int(call(ep, "DELETE", "/whisp/grabbing/x", {{"Authorization", "Bearer tok"}}).status, 404);
  fail_unless_equals_int(call(ep, "POST", "/whisp/other/endpoint", json, pull).status, 404);
  fail_unless_equals_int(call(ep, "POST", "/whisp", json, pull).status, 404);
}
GST_END_TEST;

// Bounded fuzzing of the parsers that see network input: random mutations of valid bodies
// must never crash or hang.
GST_START_TEST(test_parsers_fuzz) {
  GRand *rand = g_rand_new_with_seed(1234);
  const std::string seeds[] = {kOffer, "a=ice-ufrag:x\r\na=ice-pwd:y\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n",
                               "<turn:h?transport=udp>; rel=\"ice-server\"; username=\"u\", <stun:x>; rel=ice-server",
                               R"({"main media":{"media ID":[{"amsid":["a"]},{"vmsid":"v"}],"URL":"/whep/x"},)"
                               R"("secondary media":{"URL":"y"},"merge template":{"merge template id":["01"]},)"
                               R"("new media":{"URL":"z"},"error_code":"0x1","media":{"URL":"http://h/p"},)"
                               R"("source media":{"URL":"a"},"destination media":{"URL":"b"}})"};
  for (int i = 0; i < 20000; i++) {
    std::string s = seeds[i % 4];
    int edits = g_rand_int_range(rand, 1, 12);
    for (int e = 0; e < edits && !s.empty(); e++) {
      size_t pos = g_rand_int_range(rand, 0, static_cast<gint32>(s.size()));
      switch (g_rand_int_range(rand, 0, 3)) {
        case 0: s[pos] = static_cast<char>(g_rand_int_range(rand, 0, 256)); break;
        case 1: s.erase(pos, g_rand_int_range(rand, 1, 20)); break;
        default: s.insert(pos, s.substr(0, g_rand_int_range(rand, 0, 30))); break;
      }
    }
    std::string err;
    auto sd = parse_sdp(s, &err);
    if (sd)
      for (auto &m : sd->media) match_codec(m, SendCodec{"video", "H264", 90000, "42e01f"});
    parse_sdpfrag(s, &err);
    parse_link_header(s);
    parse_ice_server_url(s);
    parse_if_match(s);
    resolve_url("http://h:1/a/b?c", s);
    parse_retry_after(s, 0);
    WhispRequest wr;
    for (WhispMessage m : {WhispMessage::Pulling, WhispMessage::Switching, WhispMessage::Merging, WhispMessage::Grabbing})
      parse_whisp_request(m, s, &wr, &err);
    finish_local_sdp(s, {"candidate:1 1 UDP 1 127.0.0.1 1 typ host"});
  }
  g_rand_free(rand);
}
GST_END_TEST;

GST_START_TEST(test_split_list) {
  std::vector<std::string> items = split_list(" http://a , ,rtsp://b,\tfile:///c ");
  fail_unless_equals_int(items.size(), 3);
  assert_str(items[0], "http://a");
  assert_str(items[1], "rtsp://b");
  assert_str(items[2], "file:///c");
  fail_unless(split_list("").empty());
  fail_unless(split_list(" , ").empty());
}
GST_END_TEST;

GST_START_TEST(test_resolve_url) {
  const char *base = "http://a.example:8080/whep/endpoint?x=1";
  assert_str(resolve_url(base, "/whep/sessions/1"), "http://a.example:8080/whep/sessions/1");
  assert_str(resolve_url(base, "sessions/1"), "http://a.example:8080/whep/sessions/1");
  assert_str(resolve_url(base, "../s/1"), "http://a.example:8080/s/1");
  assert_str(resolve_url(base, "https://b.example/s"), "https://b.example/s");
  assert_str(resolve_url(base, "//c.example/s"), "http://c.example/s");
  assert_str(resolve_url(base, "?y=2"), "http://a.example:8080/whep/endpoint?y=2");
  assert_str(resolve_url("http://h", "s"), "http://h/s");
}
GST_END_TEST;

GST_START_TEST(test_retry_after_and_backoff) {
  fail_unless_equals_int(*parse_retry_after(std::string("5"), 0), 5);
  fail_unless_equals_int(*parse_retry_after(std::string(http_date(1000)), 990), 10);
  fail_unless_equals_int(*parse_retry_after(std::string(http_date(1000)), 2000), 0);
  fail_if(parse_retry_after(std::string("soon"), 0).has_value());
  fail_if(parse_retry_after(std::nullopt, 0).has_value());
  fail_unless_equals_int(*parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  Backoff b(1, 8);
  fail_unless(b.next() == 1);
  fail_unless(b.next() == 2);
  fail_unless(b.next(std::optional<int64_t>(5)) == 5);  // the server's Retry-After
  fail_unless(b.next() == 8);
  fail_unless(b.next() == 8);  // bounded
  b.reset();
  fail_unless(b.next() == 1);
  // A server that keeps saying "Retry-After: 1" is asked again every second, however many
  // attempts came before (it used to be a floor under the doubling: 1, 2, 4, 8 s).
  Backoff busy(1, 30);
  for (int i = 0; i < 6; i++) fail_unless(busy.next(std::optional<int64_t>(1)) == 1);
  fail_unless(busy.next(std::optional<int64_t>(0)) == Backoff::kMinRetryAfter);
  fail_unless(busy.next(std::optional<int64_t>(3600)) == 30);  // bounded too
  fail_unless(busy.next() == 30);  // doubling counts every attempt
}
GST_END_TEST;

GST_START_TEST(test_decide_post) {
  Response r = Response::empty(201);
  r.headers.set("Location", "sessions/abc");
  r.headers.set("ETag", "\"e1\"");
  r.headers.add("Link", "<stun:s.example:3478>; rel=\"ice-server\", <turn:t.example?transport=udp>; rel=ice-server; username=u; credential=p");
  r.headers.add("Link", "<https://x/sse>; rel=\"urn:ietf:params:whep:ext:core:server-sent-events\"");
  r.body = "v=0\r\n";
  auto d = decide_post("http://h:1/whep/", r, 0);
  fail_unless(d.outcome == PostOutcome::Answer);
  assert_str(d.location, "http://h:1/whep/sessions/abc");
  assert_str(d.etag, "\"e1\"");
  fail_unless_equals_int(d.ice_servers.size(), 2);
  assert_str(d.ice_servers[1].gst_url(), "turn://u:p@t.example?transport=udp");

  Response co = Response::empty(406);
  co.headers.set("Content-Type", "application/sdp; valid-until=\"x\"");
  co.headers.set("Location", "/s/1");
  co.body = "v=0\r\n";
  fail_unless(decide_post("http://h/whep", co, 0).outcome == PostOutcome::CounterOffer);
  co.headers.set("Content-Type", "application/problem+json");
  fail_unless(decide_post("http://h/whep", co, 0).outcome == PostOutcome::Fail);  // 406 without SDP: an error

  Response red = Response::empty(307);
  red.headers.set("Location", "http://other:2/whep");
  auto rd = decide_post("http://h/whep", red, 0);
  fail_unless(rd.outcome == PostOutcome::Redirect);
  assert_str(rd.location, "http://other:2/whep");

  Response busy = Response::empty(503);
  busy.headers.set("Retry-After", "7");
  auto bd = decide_post("http://h/whep", busy, 0);
  fail_unless(bd.outcome == PostOutcome::RetryLater);
  fail_unless_equals_int(*bd.retry_after, 7);
  fail_unless(decide_post("http://h/whep", Response::empty(409), 0).outcome == PostOutcome::RetryLater);

  Response denied = Response::problem(401, "bad token");
  auto dd = decide_post("http://h/whep", denied, 0);
  fail_unless(dd.outcome == PostOutcome::Fail);
  fail_unless(dd.error.find("401") != std::string::npos && dd.error.find("bad token") != std::string::npos);
  Response no_loc = Response::empty(201);
  no_loc.body = "v=0\r\n";
  fail_unless(decide_post("http://h/whep", no_loc, 0).outcome == PostOutcome::Fail);
  fail_unless(patch_unsupported(405) && patch_unsupported(501) && patch_unsupported(422));
  fail_if(patch_unsupported(412) || patch_unsupported(204));
}
GST_END_TEST;

GST_START_TEST(test_trickle_buffer) {
  TrickleBuffer t;
  std::string if_match;
  t.add("0", "candidate:1 1 udp 1 127.0.0.1 1000 typ host");
  fail_if(t.take(&if_match).has_value());  // no ETag yet: buffered
  t.add("0", "candidate:2 1 udp 1 127.0.0.1 1001 typ host");
  t.set_session("\"e1\"", "uf", "pw");
  auto body = t.take(&if_match);
  fail_unless(body.has_value());
  assert_str(if_match, "\"e1\"");
  std::string err;
  auto frag = parse_sdpfrag(*body, &err);
  fail_unless_equals_int(frag->candidate_count(), 2);  // one aggregated PATCH
  assert_str(frag->ice_ufrag, "uf");
  fail_if(t.take(&if_match).has_value());
  t.end_of_candidates();
  auto end = t.take(&if_match);
  fail_unless(end.has_value() && end->find("a=end-of-candidates") != std::string::npos);
  fail_if(t.take(&if_match).has_value());
  // After a restart candidates wait for the new ETag again.
  t.restart("uf2", "pw2");
  t.add("0", "candidate:3 1 udp 1 127.0.0.1 1002 typ host");
  fail_if(t.take(&if_match).has_value());
  fail_unless_equals_int(t.generation(), 1);
  t.set_session("\"e2\"", "uf2", "pw2");
  auto again = t.take(&if_match);
  assert_str(if_match, "\"e2\"");
  fail_unless(again->find("uf2") != std::string::npos);
}
GST_END_TEST;

static Suite *protocol_suite(void) {
  Suite *s = suite_create("protocol");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_header_helpers);
  tcase_add_test(tc, test_if_match);
  tcase_add_test(tc, test_bearer);
  tcase_add_test(tc, test_sdp_parse);
  tcase_add_test(tc, test_codec_match);
  tcase_add_test(tc, test_finish_local_sdp);
  tcase_add_test(tc, test_rtx_for_every_codec);
  tcase_add_test(tc, test_sdpfrag);
  tcase_add_test(tc, test_ice_servers);
  tcase_add_test(tc, test_endpoint_post_and_delete);
  tcase_add_test(tc, test_endpoint_redirects_when_full);
  tcase_add_test(tc, test_endpoint_errors);
  tcase_add_test(tc, test_endpoint_client_limits);
  tcase_add_test(tc, test_endpoint_auth_and_cors);
  tcase_add_test(tc, test_endpoint_patch_rules);
  tcase_add_test(tc, test_endpoint_counter_offer);
  tcase_add_test(tc, test_endpoint_session_ownership);
  tcase_add_test(tc, test_reply_exactly_once);
  tcase_add_test(tc, test_endpoint_named_streams);
  tcase_add_test(tc, test_stream_names);
  tcase_add_test(tc, test_rtp_keyframes);
  tcase_add_test(tc, test_rtp_continuity);
  tcase_add_test(tc, test_client_failures);
  tcase_add_test(tc, test_whisp_parsing);
  tcase_add_test(tc, test_whisp_endpoint);
  tcase_add_test(tc, test_parsers_fuzz);
  tcase_add_test(tc, test_split_list);
  tcase_add_test(tc, test_resolve_url);
  tcase_add_test(tc, test_retry_after_and_backoff);
  tcase_add_test(tc, test_decide_post);
  tcase_add_test(tc, test_trickle_buffer);
  return s;
}

GST_CHECK_MAIN(protocol);
