// The shared viewer transport's SDP answers (protocol/answer.h), to Chromium's and webrtcbin's
// recvonly offers: the codecs picked, rtx paired, the m-lines we cannot serve rejected, and
// the answer readable by our own parser as a sendonly description.
// The streams first: gstcheck.h defines fail().
#include <fstream>
#include <sstream>

#include <gst/check/gstcheck.h>

#include "protocol/answer.h"

using namespace wish;

namespace {

std::string chromium_offer() {
  std::ifstream f(FIXTURES_DIR "/chromium-recvonly-offer.sdp");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// What webrtcbin 1.22 offers for a recvonly VP8 transceiver with rtx and a recvonly PCMA one
// (max-bundle: the second m-line bundle-only).
const char *kWebrtcbinOffer =
    "v=0\r\no=- 2651371930433893183 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-options:trickle\r\n"
    "a=group:BUNDLE video0 audio1\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=setup:actpass\r\na=ice-ufrag:Qx3U\r\n"
    "a=ice-pwd:0123456789abcdefghijklmn\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n"
    "a=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=mid:video0\r\n"
    "a=fingerprint:sha-256 "
    "E1:73:FC:C7:0B:46:F7:43:D8:4A:7D:2C:CC:0A:42:A7:F0:5D:F8:8B:92:AB:F8:5F:FD:6E:F2:5D:49:F5:59:85\r\n"
    "m=audio 0 UDP/TLS/RTP/SAVPF 8\r\nc=IN IP4 0.0.0.0\r\na=bundle-only\r\na=setup:actpass\r\na=rtcp-mux\r\n"
    "a=recvonly\r\na=rtpmap:8 PCMA/8000\r\na=mid:audio1\r\n";

AnswerTransport transport() {
  AnswerTransport t;
  t.ice_ufrag = "wish";
  t.ice_pwd = "abcdefghijklmnopqrstuvwx";
  t.fingerprint = "AA:BB";
  t.candidates = {"candidate:1 1 UDP 2015363327 127.0.0.1 50000 typ host"};
  return t;
}

AnswerTrack track(const char *kind, const char *encoding, unsigned clock, uint32_t ssrc, uint32_t rtx_ssrc = 0) {
  AnswerTrack t;
  t.codec.kind = kind;
  t.codec.encoding = encoding;
  t.codec.clock_rate = clock;
  t.ssrc = ssrc;
  t.rtx_ssrc = rtx_ssrc;
  return t;
}

bool has_line(const std::string &sdp, const std::string &line) { return sdp.find(line + "\r\n") != std::string::npos; }

}  // namespace

GST_START_TEST(test_chromium_vp8_opus) {
  std::string error;
  auto a = write_answer(chromium_offer(), {track("video", "VP8", 90000, 1111, 2222), track("audio", "OPUS", 48000, 3333)},
                        transport(), &error);
  fail_unless(a.has_value(), "%s", error.c_str());
  fail_unless_equals_int(a->media.size(), 2);
  fail_unless_equals_int(a->media[0].payload_type, 96);
  fail_unless_equals_int(a->media[0].rtx_payload_type, 97);
  fail_unless_equals_int(a->media[1].payload_type, 111);
  fail_unless_equals_int(a->media[1].rtx_payload_type, -1);
  const std::string &s = a->sdp;
  fail_unless(has_line(s, "a=group:BUNDLE 0 1"), "%s", s.c_str());
  fail_unless(has_line(s, "m=video 9 UDP/TLS/RTP/SAVPF 96 97"), "%s", s.c_str());
  fail_unless(has_line(s, "a=rtpmap:111 opus/48000/2"), "%s", s.c_str());
  fail_unless(has_line(s, "a=fmtp:97 apt=96"));
  fail_unless(has_line(s, "a=ssrc-group:FID 1111 2222"));
  fail_unless(has_line(s, "a=ssrc:3333 cname:wish"));
  fail_unless(has_line(s, "a=rtcp-fb:96 nack pli") && has_line(s, "a=rtcp-fb:96 ccm fir"));
  fail_if(has_line(s, "a=rtcp-fb:111 nack"), "feedback for audio");
  fail_unless(has_line(s, "a=setup:passive") && has_line(s, "a=ice-options:trickle") &&
              has_line(s, "a=fingerprint:sha-256 AA:BB") && has_line(s, "a=end-of-candidates"));
  auto parsed = parse_sdp(s, &error);
  fail_unless(parsed.has_value(), "%s", error.c_str());
  fail_unless_equals_int(parsed->media.size(), 2);
  for (const MediaSection &m : parsed->media) {
    fail_unless(m.direction == Direction::SendOnly);
    fail_unless_equals_string(m.ice_ufrag.c_str(), "wish");
    fail_unless_equals_int(m.candidates.size(), 1);
  }
  fail_unless_equals_string(parsed->media[0].msid_stream.c_str(), "wish");
}
GST_END_TEST;

// do-retransmission=false: neither rtx nor a=rtcp-fb nack, though the offer has both; the
// keyframe requests (PLI, FIR) stay.
GST_START_TEST(test_without_retransmission) {
  std::string error;
  AnswerTrack video = track("video", "VP8", 90000, 1111);
  video.nack = false;
  auto a = write_answer(chromium_offer(), {video, track("audio", "OPUS", 48000, 3333)}, transport(), &error);
  fail_unless(a.has_value(), "%s", error.c_str());
  fail_unless_equals_int(a->media[0].payload_type, 96);
  fail_unless_equals_int(a->media[0].rtx_payload_type, -1);
  const std::string &s = a->sdp;
  fail_unless(has_line(s, "m=video 9 UDP/TLS/RTP/SAVPF 96"), "%s", s.c_str());
  fail_if(has_line(s, "a=rtcp-fb:96 nack"), "%s", s.c_str());
  fail_if(s.find("rtx/") != std::string::npos || s.find("FID") != std::string::npos, "%s", s.c_str());
  fail_unless(has_line(s, "a=rtcp-fb:96 nack pli") && has_line(s, "a=rtcp-fb:96 ccm fir"), "%s", s.c_str());
}
GST_END_TEST;

GST_START_TEST(test_chromium_h264_profile) {
  std::string error;
  AnswerTrack h264 = track("video", "H264", 90000, 1111);
  h264.codec.h264_profile_level_id = "42e01f";
  auto a = write_answer(chromium_offer(), {h264}, transport(), &error);
  fail_unless(a.has_value(), "%s", error.c_str());
  auto offer = parse_sdp(chromium_offer(), &error);
  const RtpMap &r = offer->media[0].rtpmap.at(a->media[0].payload_type);
  fail_unless_equals_string(r.encoding.c_str(), "H264");
  fail_unless_equals_string(fmtp_param(r.fmtp, "packetization-mode").c_str(), "1");
  fail_unless_equals_string(fmtp_param(r.fmtp, "profile-level-id").c_str(), "42e01f");
  fail_unless_equals_int(a->media[0].rtx_payload_type, -1);  // no rtx SSRC: none answered
  // No audio track: the audio m-line is rejected and left out of BUNDLE.
  fail_unless_equals_int(a->media[1].track, -1);
  fail_unless(a->sdp.find("m=audio 0 ") != std::string::npos, "%s", a->sdp.c_str());
  fail_unless(has_line(a->sdp, "a=group:BUNDLE 0"), "%s", a->sdp.c_str());
}
GST_END_TEST;

GST_START_TEST(test_webrtcbin_offer) {
  std::string error;
  auto a = write_answer(kWebrtcbinOffer, {track("video", "VP8", 90000, 1111, 2222), track("audio", "OPUS", 48000, 3333)},
                        transport(), &error);
  fail_unless(a.has_value(), "%s", error.c_str());
  fail_unless_equals_string(a->media[0].mid.c_str(), "video0");
  fail_unless_equals_int(a->media[0].payload_type, 96);
  fail_unless_equals_int(a->media[0].rtx_payload_type, 97);
  // The viewer takes PCMA only; we have Opus.
  fail_unless_equals_int(a->media[1].track, -1);
  fail_unless(a->sdp.find("m=audio 0 UDP/TLS/RTP/SAVPF 8") != std::string::npos, "%s", a->sdp.c_str());
  fail_unless(has_line(a->sdp, "a=group:BUNDLE video0"));
  // Every m-line has the ICE credentials and fingerprint, the rejected one too: webrtcbin 1.22
  // rejects an answer with any m-line without them.
  auto parsed = parse_sdp(a->sdp, &error);
  fail_unless(parsed.has_value(), "%s", error.c_str());
  size_t from = 0;
  for (size_t k = 0; k < parsed->media.size(); k++) {
    size_t m = a->sdp.find("\nm=", from), next = a->sdp.find("\nm=", m + 3);
    std::string section = a->sdp.substr(m, next == std::string::npos ? std::string::npos : next - m);
    fail_unless(has_line(section, "a=fingerprint:sha-256 AA:BB") && has_line(section, "a=ice-ufrag:wish") &&
                    has_line(section, "a=ice-pwd:abcdefghijklmnopqrstuvwx"),
                "m-line %zu without ICE credentials or fingerprint:\n%s", k, a->sdp.c_str());
    from = m + 3;
  }
  // With PCMA to send, it is taken.
  a = write_answer(kWebrtcbinOffer, {track("audio", "PCMA", 8000, 3333)}, transport(), &error);
  fail_unless(a.has_value(), "%s", error.c_str());
  fail_unless_equals_int(a->media[0].track, -1);
  fail_unless_equals_int(a->media[1].payload_type, 8);
  fail_unless(has_line(a->sdp, "a=group:BUNDLE audio1"), "%s", a->sdp.c_str());
}
GST_END_TEST;

GST_START_TEST(test_unusable_offers) {
  std::string error;
  fail_if(write_answer("not sdp", {track("video", "VP8", 90000, 1)}, transport(), &error).has_value());
  fail_if(error.empty());
  error.clear();
  fail_if(write_answer(kWebrtcbinOffer, {track("video", "AV1", 90000, 1)}, transport(), &error).has_value());
  fail_if(error.empty());
  // An offer that only sends asks us for nothing.
  std::string sendonly = kWebrtcbinOffer;
  for (size_t p; (p = sendonly.find("a=recvonly")) != std::string::npos;) sendonly.replace(p, 10, "a=sendonly");
  fail_if(write_answer(sendonly, {track("video", "VP8", 90000, 1)}, transport(), &error).has_value());
}
GST_END_TEST;

static Suite *answer_suite(void) {
  Suite *s = suite_create("answer");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_chromium_vp8_opus);
  tcase_add_test(tc, test_without_retransmission);
  tcase_add_test(tc, test_chromium_h264_profile);
  tcase_add_test(tc, test_webrtcbin_offer);
  tcase_add_test(tc, test_unusable_offers);
  return s;
}

GST_CHECK_MAIN(answer);
