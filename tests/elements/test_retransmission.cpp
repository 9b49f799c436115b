// NACK/RTX in both directions on 127.0.0.1: the receiving webrtcbin loses 10 % of the video
// packets (a pad probe after SRTP decryption drops every 10th), asks for them again, the
// sender retransmits them on the rtx payload type, and nearly every frame still decodes.
// whepserversink -> whepsrc and whipsink -> whipserversrc; and with do-retransmission=false
// nothing is retransmitted. Packets lost before the first one a receiver gets cannot be asked
// for: a relay that lost its publisher's first keyframe asks for a new one. Where the server's
// own counters (its viewer's rtprtxsend) are read, it gives every viewer a webrtcbin
// (shared-transport=false); test_shared_transport checks NACK/RTX on the shared transport.
#include <gst/rtp/gstrtpbuffer.h>
#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "http_client.h"
#include "rtx_counters.h"
#include "fixtures.h"
#include "whepsrc_player.h"
#include "whip_ingest.h"

using wish_test::RtxCounters;
using wish_test::rtx_counters;
using wish_test::RtpDropper;

namespace {

constexpr int kFps = 30;
constexpr int kWindowS = 6;

// Video only, 30 fps, published by whipsink.
struct VideoPublisher {
  GstElement *pipeline;
  explicit VideoPublisher(const std::string &endpoint, const std::string &props = "") {
    std::string desc = "whipsink name=w ice-local-addresses=127.0.0.1 whip-endpoint=" + endpoint + " " + props +
                       " videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! w.";
    GError *err = nullptr;
    pipeline = gst_parse_launch(desc.c_str(), &err);
    fail_unless(pipeline != nullptr, "%s", err ? err->message : "");
    watch_test_pipeline(pipeline);
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
  }
  ~VideoPublisher() {
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
  }
};

// Frames that reached the sinks in kWindowS seconds once media flows.
template <class Sinks>
guint64 frames_in_window(Sinks &sinks) {
  fail_unless(sinks.wait_video(15, 15000), "no video");
  guint64 before = sinks.video;
  g_usleep(kWindowS * G_USEC_PER_SEC);
  return sinks.video - before;
}

}  // namespace

// The SSRCs the server's rtprtxsend sends with, against the a=ssrc-group:FID of the answer
// it gave: webrtcbin draws the retransmission SSRC itself, whepserversink announces one of
// its pool instead (ssrc_pool.h) and must send with it.
struct RtxSsrcWatch {
  guint media = 0, rtx = 0;
  std::atomic<guint64> announced{0}, other{0};
  std::vector<std::pair<GstPad *, gulong>> probes;
  explicit RtxSsrcWatch(GstBin *server) {
    wish_test::for_each_element(server, [this](GstElement *e) {
      if (g_str_equal(wish_test::factory_name(e), "webrtcbin")) {
        GstWebRTCSessionDescription *local = nullptr;
        g_object_get(e, "local-description", &local, nullptr);
        if (!local) return;
        gchar *text = gst_sdp_message_as_text(local->sdp);
        std::string sdp = text;
        g_free(text);
        gst_webrtc_session_description_free(local);
        std::smatch m;
        if (std::regex_search(sdp, m, std::regex("a=ssrc-group:FID ([0-9]+) ([0-9]+)"))) {
          media = std::stoul(m[1]);
          rtx = std::stoul(m[2]);
        }
      } else if (g_str_equal(wish_test::factory_name(e), "rtprtxsend")) {
        GstPad *src = gst_element_get_static_pad(e, "src");
        probes.emplace_back(src, gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, this, nullptr));
      }
    });
  }
  ~RtxSsrcWatch() {
    for (auto &p : probes) {
      gst_pad_remove_probe(p.first, p.second);
      gst_object_unref(p.first);
    }
  }
  static GstPadProbeReturn on_buffer(GstPad *, GstPadProbeInfo *info, gpointer data) {
    auto *self = static_cast<RtxSsrcWatch *>(data);
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    if (!gst_rtp_buffer_map(GST_PAD_PROBE_INFO_BUFFER(info), GST_MAP_READ, &rtp)) return GST_PAD_PROBE_OK;
    guint ssrc = gst_rtp_buffer_get_ssrc(&rtp);
    gst_rtp_buffer_unmap(&rtp);
    if (ssrc == self->rtx)
      self->announced++;
    else if (ssrc != self->media)
      self->other++;
    return GST_PAD_PROBE_OK;
  }
};

// The value of a sample in the server's metrics text, -1 when absent.
static double metric(const std::string &text, const std::string &sample) {
  size_t at = text.find("\n" + sample + " ");
  return at == std::string::npos ? -1 : g_ascii_strtod(text.c_str() + at + sample.size() + 2, nullptr);
}

GST_START_TEST(test_whep_retransmits_lost_packets) {
  Server server("metrics-path=/metrics shared-transport=false", "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! s.");
  fail_unless(server.wait_ready(1));
  // whepsrc offers H.264 first as payload type 102; whepserversink sends it on that one.
  Player player(server.url(), "video-codecs=h264 audio-codecs=none latency=200");
  RtpDropper dropper(player.pipeline, {102}, 10);
  guint64 frames = frames_in_window(player);
  RtxCounters sent = rtx_counters(GST_BIN(server.pipeline)), got = rtx_counters(GST_BIN(player.pipeline));
  g_printerr("frames %" G_GUINT64_FORMAT "/%d, dropped %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT ", server: %s; player: %s\n",
           frames, kFps * kWindowS, dropper.dropped(), dropper.seen(), sent.text().c_str(), got.text().c_str());
  fail_unless(dropper.dropped() >= 10, "only %" G_GUINT64_FORMAT " packets dropped", dropper.dropped());
  fail_unless(got.nacks_sent > 0, "whepsrc sent no NACK: %s", got.text().c_str());
  fail_unless(sent.nacks_received > 0, "whepserversink got no NACK: %s", sent.text().c_str());
  fail_unless(sent.rtx_sent > 0, "whepserversink retransmitted nothing: %s", sent.text().c_str());
  fail_unless(got.rtx_received > 0, "whepsrc received no retransmission: %s", got.text().c_str());
  // Nearly every dropped packet came back in time, and nearly every frame was decoded.
  fail_unless(got.rtx_recovered * 10 >= dropper.dropped() * 8, "recovered %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT,
              got.rtx_recovered, dropper.dropped());
  fail_unless(frames * 100 >= kFps * kWindowS * 95, "decoded %" G_GUINT64_FORMAT " of %d frames", frames, kFps * kWindowS);
  // Retransmitted on the SSRC the answer announced for them.
  guint64 announced = 0, other = 0;
  guint rtx_ssrc = 0;
  {
    RtxSsrcWatch watch(GST_BIN(server.pipeline));
    rtx_ssrc = watch.rtx;
    wait_until(10000, [&] { return watch.announced >= 5; });
    announced = watch.announced;
    other = watch.other;
  }  // probes removed before any assertion can leave the scope
  fail_unless(rtx_ssrc != 0, "no a=ssrc-group:FID in the server's answer");
  fail_unless(announced >= 5 && other == 0,
              "%" G_GUINT64_FORMAT " retransmissions on %u, the SSRC announced, %" G_GUINT64_FORMAT " on others",
              announced, rtx_ssrc, other);
  // The metrics say so too (sampled about once a second), with the viewer's round trip.
  wish_test::HttpClient http;
  std::string text;
  fail_unless(wait_until(5000, [&] {
    text = http.request("GET", server.url("/metrics")).body;
    return metric(text, "wish_retransmitted_packets_total{stream=\"whep\"}") > 0;
  }), "%s", text.c_str());
  fail_unless(metric(text, "wish_nacks_received_total{stream=\"whep\"}") > 0, "%s", text.c_str());
  // Loss as the viewer reports it (absent, -1, while its last report was about the RTX
  // stream); a round trip only when its reports echo our sender reports.
  double lost = metric(text, "wish_viewer_fraction_lost{stream=\"whep\"}");
  fail_unless(lost <= 1, "fraction lost %f", lost);
  double rtt = metric(text, "wish_viewer_rtt_seconds{stream=\"whep\"}");
  fail_unless(rtt < 0.5, "round trip %f s on 127.0.0.1", rtt);
}
GST_END_TEST;

GST_START_TEST(test_whip_retransmits_lost_packets) {
  Ingest ingest("latency=200");
  // whipsink sends H.264 as payload type 96.
  VideoPublisher pub(ingest.url());
  RtpDropper dropper(ingest.pipeline, {96}, 10);
  guint64 frames = frames_in_window(ingest);
  RtxCounters sent = rtx_counters(GST_BIN(pub.pipeline)), got = rtx_counters(GST_BIN(ingest.pipeline));
  g_printerr("frames %" G_GUINT64_FORMAT "/%d, dropped %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT ", whipsink: %s; whipserversrc: %s\n",
           frames, kFps * kWindowS, dropper.dropped(), dropper.seen(), sent.text().c_str(), got.text().c_str());
  fail_unless(dropper.dropped() >= 10, "only %" G_GUINT64_FORMAT " packets dropped", dropper.dropped());
  fail_unless(got.nacks_sent > 0, "whipserversrc sent no NACK: %s", got.text().c_str());
  fail_unless(sent.nacks_received > 0, "whipsink got no NACK: %s", sent.text().c_str());
  fail_unless(sent.rtx_sent > 0, "whipsink retransmitted nothing: %s", sent.text().c_str());
  fail_unless(got.rtx_received > 0, "whipserversrc received no retransmission: %s", got.text().c_str());
  fail_unless(got.rtx_recovered * 10 >= dropper.dropped() * 8, "recovered %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT,
              got.rtx_recovered, dropper.dropped());
  fail_unless(frames * 100 >= kFps * kWindowS * 95, "got %" G_GUINT64_FORMAT " of %d frames", frames, kFps * kWindowS);
}
GST_END_TEST;

// do-retransmission=false on both sides: no NACK is negotiated and nothing is retransmitted;
// the packets dropped stay lost.
GST_START_TEST(test_retransmission_off) {
  Server server("do-retransmission=false",
                "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! s.");
  fail_unless(server.wait_ready(1));
  Player player(server.url(), "video-codecs=h264 audio-codecs=none latency=200 do-retransmission=false");
  RtpDropper dropper(player.pipeline, {102}, 10);
  frames_in_window(player);
  RtxCounters sent = rtx_counters(GST_BIN(server.pipeline)), got = rtx_counters(GST_BIN(player.pipeline));
  g_printerr("off: dropped %" G_GUINT64_FORMAT ", server: %s; player: %s\n", dropper.dropped(), sent.text().c_str(),
           got.text().c_str());
  fail_unless(dropper.dropped() >= 10);
  fail_unless_equals_int(got.nacks_sent, 0);
  fail_unless_equals_int(sent.rtx_sent, 0);
  fail_unless_equals_int(got.rtx_received, 0);
  fail_unless(got.lost > 0, "the dropped packets were not missed: %s", got.text().c_str());
}
GST_END_TEST;

// The answers carry rtx for the codec chosen; whepsrc's offer has one for every codec
// (webrtcbin 1.22 makes one for the first codec only).
GST_START_TEST(test_offer_and_answer_carry_rtx) {
  Server server("shared-transport=false",
                "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! vp8enc deadline=1 ! s.");
  fail_unless(server.wait_ready(1));
  // VP8 is second in whepsrc's offer (payload type 96).
  Player player(server.url(), "video-codecs=h264,vp8 audio-codecs=none latency=200");
  RtpDropper dropper(player.pipeline, {96}, 10);
  guint64 frames = frames_in_window(player);
  RtxCounters sent = rtx_counters(GST_BIN(server.pipeline)), got = rtx_counters(GST_BIN(player.pipeline));
  g_printerr("vp8: frames %" G_GUINT64_FORMAT ", dropped %" G_GUINT64_FORMAT ", server: %s; player: %s\n", frames,
           dropper.dropped(), sent.text().c_str(), got.text().c_str());
  fail_unless(dropper.dropped() >= 10);
  fail_unless(sent.rtx_sent > 0, "no retransmission of VP8, the second codec offered: %s", sent.text().c_str());
  fail_unless(got.rtx_received > 0, "%s", got.text().c_str());
}
GST_END_TEST;

// The network loses the first packets of a publisher that sends keyframes only when asked, as
// browsers do: the first keyframe is gone, and the relay cannot NACK packets older than the
// first one it got. Its depayloader, without SPS/PPS, asks upstream for a keyframe, which
// whipserversrc's webrtcbin sends to the publisher as a PLI; the viewer gets pictures.
GST_START_TEST(test_relay_recovers_lost_first_keyframe) {
  ServerPipeline relay;
  relay.start("whipserversrc name=in latency=200" + relay.props + " whepserversink name=out" + relay.props +
              " in.video_0 ! queue ! out.video_0");
  RtpDropper dropper(relay.pipeline, {96}, wish_test::DropFirst{60});
  VideoPublisher pub(relay.url("/whip"), "key-int-max=100000");
  fail_unless(wait_until(10000, [&] { return dropper.dropped() >= 60; }), "only %" G_GUINT64_FORMAT " packets came",
              dropper.dropped());
  Player player(relay.url("/whep"), "video-codecs=h264 audio-codecs=none");
  bool played = player.wait_video(30, 15000);
  RtxCounters in = rtx_counters(GST_BIN(relay.pipeline));
  g_printerr("first keyframe lost: %" G_GUINT64_FORMAT " frames played; relay: %s\n", player.video.load(),
             in.text().c_str());
  fail_unless(played, "the relay's viewer got %" G_GUINT64_FORMAT " frames", player.video.load());
}
GST_END_TEST;

static Suite *retransmission_suite(void) {
  Suite *s = suite_create("retransmission");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_whep_retransmits_lost_packets);
  tcase_add_test(tc, test_whip_retransmits_lost_packets);
  tcase_add_test(tc, test_retransmission_off);
  tcase_add_test(tc, test_offer_and_answer_carry_rtx);
  tcase_add_test(tc, test_relay_recovers_lost_first_keyframe);
  return s;
}

WISH_CHECK_MAIN(retransmission);
