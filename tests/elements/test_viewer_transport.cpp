// The shared viewer transport (transport/viewer_transport.h) against real webrtcbins: one
// SharedIceAgent (controlled, 127.0.0.1 only) with a ViewerConnection per viewer answers each
// webrtcbin's recvonly offer; VP8 payloaded once (appsink of rtpvp8pay) goes out to each
// through its header rewrite, SRTP and the shared agent. Each webrtcbin must decode the frames
// (their colour is checked), and its RTCP (receiver reports, a PLI or FIR) must arrive, on the
// agent's thread, and parse; our sender reports must show in its statistics.
#include <gst/app/gstappsink.h>
#include <gst/check/gstcheck.h>
#include <gst/sdp/sdp.h>
#include <gst/video/video.h>
#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "dtls_certificate.h"
#include "protocol/answer.h"
#include "protocol/rtcp.h"
#include "teardown.h"
#include "transport/dtls_srtp.h"
#include "transport/viewer_transport.h"
#include "webrtc_utils.h"

using namespace wish;

namespace {

constexpr int kViewers = 2;
constexpr int kTimeoutMs = 30000;

// What the test sees of one viewer: its connection on the shared agent, and what its
// callbacks reported.
struct Viewer {
  SharedIceAgent *shared = nullptr;
  std::shared_ptr<ViewerConnection> conn;
  uint32_t ssrc = 0;
  uint8_t pt = 96;
  std::atomic<bool> other_thread{false};

  std::mutex m;  // guards rtcp_in
  std::vector<rtcp::Compound> rtcp_in;
  std::atomic<GstElement *> encoder{nullptr};  // asked for a keyframe on PLI

  ViewerCallbacks callbacks() {
    ViewerCallbacks cb;
    cb.on_rtcp = [this](const rtcp::Compound &c) {
      if (!shared->on_agent_thread()) other_thread = true;
      std::lock_guard<std::mutex> lock(m);
      rtcp_in.push_back(c);
    };
    cb.on_keyframe_request = [this](size_t) {
      // PLI -> keyframe request to the one encoder every viewer shares.
      if (GstElement *e = encoder.load()) gst_element_send_event(e, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
    };
    return cb;
  }
};

// Every viewer of the media pipeline, fixed before it plays.
struct Media {
  std::vector<Viewer *> viewers;
};

std::string attr(const GstSDPMessage *sdp, const GstSDPMedia *media, const char *key) {
  const char *v = gst_sdp_media_get_attribute_val(media, key);
  if (!v) v = gst_sdp_message_get_attribute_val(sdp, key);
  return v ? v : "";
}

// What our answer needs of webrtcbin's offer.
struct Offer {
  std::string mid, fingerprint, ufrag, pwd;
  int vp8_pt = -1;
};

Offer read_offer(const std::string &offer) {
  GstSDPMessage *sdp = nullptr;
  gst_sdp_message_new_from_text(offer.c_str(), &sdp);
  fail_unless(sdp && gst_sdp_message_medias_len(sdp) == 1);
  const GstSDPMedia *media = gst_sdp_message_get_media(sdp, 0);
  Offer o;
  o.mid = attr(sdp, media, "mid");
  o.fingerprint = attr(sdp, media, "fingerprint");
  o.ufrag = attr(sdp, media, "ice-ufrag");
  o.pwd = attr(sdp, media, "ice-pwd");
  fail_unless(!o.mid.empty() && o.fingerprint.rfind("sha-256 ", 0) == 0, "offer without mid or sha-256 fingerprint");
  for (guint i = 0; i < gst_sdp_media_attributes_len(media); i++) {
    const GstSDPAttribute *at = gst_sdp_media_get_attribute(media, i);
    if (g_strcmp0(at->key, "rtpmap") == 0 && at->value && strstr(at->value, " VP8/90000")) o.vp8_pt = atoi(at->value);
  }
  fail_unless(o.vp8_pt > 0, "no VP8 in the offer");
  gst_sdp_message_free(sdp);
  return o;
}

// Our sendonly VP8 track, for the answer writer.
std::vector<AnswerTrack> answer_tracks(const Viewer &v) {
  AnswerTrack t;
  t.codec.kind = "video";
  t.codec.encoding = "VP8";
  t.codec.clock_rate = 90000;
  t.ssrc = v.ssrc;
  return {t};
}

// The answer to webrtcbin's offer (protocol/answer.h) with our ICE credentials, candidates and
// fingerprint; we are the DTLS server (a=setup:passive).
std::string make_answer(const std::string &offer, Viewer *s) {
  AnswerTransport transport;
  fail_unless(s->conn->local_credentials(&transport.ice_ufrag, &transport.ice_pwd));
  transport.fingerprint = s->shared->dtls_context()->fingerprint();
  transport.candidates = s->conn->local_candidates();
  transport.cname = "wish-viewer-transport";
  fail_if(transport.candidates.empty(), "no local candidate");
  std::string error;
  std::optional<Answer> a = write_answer(offer, answer_tracks(*s), transport, &error);
  fail_unless(a.has_value(), "%s", error.c_str());
  fail_unless_equals_int(a->media[0].payload_type, s->pt);
  return a->sdp;
}

struct Receiver {
  std::atomic<int> frames{0}, good_frames{0};
  GstElement *pipeline = nullptr, *webrtc = nullptr, *sink = nullptr;
  std::mutex m;
  std::vector<std::string> candidates;  // webrtcbin's, for our agent
  size_t forwarded = 0;
};

GstFlowReturn on_frame(GstAppSink *sink, gpointer data) {
  auto *r = static_cast<Receiver *>(data);
  GstSample *sample = gst_app_sink_pull_sample(sink);
  GstVideoInfo info;
  GstVideoFrame frame;
  if (sample && gst_video_info_from_caps(&info, gst_sample_get_caps(sample)) &&
      gst_video_frame_map(&frame, &info, gst_sample_get_buffer(sample), GST_MAP_READ)) {
    // The sender's test pattern is solid green: look at the middle pixel.
    const guint8 *px = static_cast<const guint8 *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)) +
                       (info.height / 2) * GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0) + (info.width / 2) * 3;
    r->frames++;
    if (px[0] < 60 && px[1] > 190 && px[2] < 60) r->good_frames++;
    gst_video_frame_unmap(&frame);
  }
  if (sample) gst_sample_unref(sample);
  return GST_FLOW_OK;
}

void on_pad_added(GstElement *, GstPad *pad, gpointer data) {
  auto *r = static_cast<Receiver *>(data);
  if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
  GstElement *bin = gst_parse_bin_from_description(
      "rtpvp8depay ! vp8dec ! videoconvert ! video/x-raw,format=RGB ! appsink name=frames sync=false", TRUE, nullptr);
  gst_bin_add(GST_BIN(r->pipeline), bin);
  r->sink = gst_bin_get_by_name(GST_BIN(bin), "frames");
  GstAppSinkCallbacks cb = {};
  cb.new_sample = on_frame;
  gst_app_sink_set_callbacks(GST_APP_SINK(r->sink), &cb, r, nullptr);
  gst_element_sync_state_with_parent(bin);
  GstPad *sinkpad = gst_element_get_static_pad(bin, "sink");
  fail_unless_equals_int(gst_pad_link(pad, sinkpad), GST_PAD_LINK_OK);
  gst_object_unref(sinkpad);
}

GstFlowReturn on_rtp(GstAppSink *sink, gpointer data) {
  GstSample *sample = gst_app_sink_pull_sample(sink);
  if (!sample) return GST_FLOW_OK;
  GstMapInfo map;
  GstBuffer *buf = gst_sample_get_buffer(sample);
  if (gst_buffer_map(buf, &map, GST_MAP_READ)) {
    // Payloaded once: every viewer's history holds the same bytes.
    auto packet = std::make_shared<const std::vector<uint8_t>>(map.data, map.data + map.size);
    for (Viewer *v : static_cast<Media *>(data)->viewers) v->conn->send(0, packet);
    gst_buffer_unmap(buf, &map);
  }
  gst_sample_unref(sample);
  return GST_FLOW_OK;
}

template <typename F>
bool wait_for(F done, int ms = kTimeoutMs) {
  for (int i = 0; i < ms / 20; i++) {
    if (done()) return true;
    g_usleep(20000);
  }
  return done();
}

// Negotiates viewer i: webrtcbin's offer, our answer, DTLS session made, ICE credentials set.
void negotiate(Receiver &r, Viewer &v) {
  r.pipeline = gst_pipeline_new(nullptr);
  wish_test::stop_at_teardown(r.pipeline);
  r.webrtc = gst_element_factory_make("webrtcbin", nullptr);
  gst_bin_add(GST_BIN(r.pipeline), r.webrtc);
  std::string error;
  fail_unless(configure_webrtcbin(r.webrtc, {"127.0.0.1"}, "", {}, &error), "%s", error.c_str());
  g_signal_connect(r.webrtc, "pad-added", G_CALLBACK(on_pad_added), &r);
  g_signal_connect(r.webrtc, "on-ice-candidate", G_CALLBACK(+[](GstElement *, guint, gchar *cand, gpointer d) {
                     auto *rr = static_cast<Receiver *>(d);
                     std::lock_guard<std::mutex> lock(rr->m);
                     rr->candidates.push_back(cand);
                   }), &r);
  GstCaps *caps = gst_caps_from_string("application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000");
  GstWebRTCRTPTransceiver *transceiver = nullptr;
  g_signal_emit_by_name(r.webrtc, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps, &transceiver);
  gst_caps_unref(caps);
  fail_unless(transceiver != nullptr);
  gst_object_unref(transceiver);
  fail_unless(gst_element_set_state(r.pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);

  std::mutex nm;
  std::string offer;
  bool offered = false, answered = false, answer_ok = false;
  create_local_offer(r.webrtc, [&](Negotiated n) {
    std::lock_guard<std::mutex> lock(nm);
    offer = n.ok ? n.sdp : "";
    offered = true;
  });
  fail_unless(wait_for([&] { std::lock_guard<std::mutex> l(nm); return offered; }));
  fail_if(offer.empty(), "webrtcbin made no offer");

  Offer o = read_offer(offer);
  std::optional<std::vector<AnsweredMedia>> chosen = match_offer(offer, answer_tracks(v), &error);
  fail_unless(chosen.has_value() && (*chosen)[0].payload_type == o.vp8_pt, "%s", error.c_str());
  v.pt = static_cast<uint8_t>(o.vp8_pt);
  ViewerConfig config;
  config.peer_fingerprint = o.fingerprint;
  config.cname = "wish-viewer-transport";
  ViewerTrack track;
  track.encoding = "VP8";
  track.payload_type = v.pt;
  track.ssrc = v.ssrc;
  config.tracks.push_back(track);
  v.conn = v.shared->add_viewer(config, v.callbacks(), &error);
  fail_unless(v.conn != nullptr, "%s", error.c_str());
  fail_unless(v.conn->set_remote_credentials(o.ufrag, o.pwd));
  std::string answer = make_answer(offer, &v);
  apply_remote_answer(r.webrtc, answer, [&](Negotiated n) {
    std::lock_guard<std::mutex> lock(nm);
    answer_ok = n.ok;
    if (!n.ok) error = n.error;
    answered = true;
  });
  fail_unless(wait_for([&] { std::lock_guard<std::mutex> l(nm); return answered; }));
  fail_unless(answer_ok, "webrtcbin refused the answer: %s\n%s", error.c_str(), answer.c_str());
}

// webrtcbin's candidates to our agent as they come.
void forward_candidates(Receiver &r, Viewer &v) {
  std::lock_guard<std::mutex> lock(r.m);
  for (; r.forwarded < r.candidates.size(); r.forwarded++) v.conn->add_remote_candidate(r.candidates[r.forwarded]);
}

// The packet count of the sender reports webrtcbin took from us (its remote-outbound-rtp
// statistics come from them); 0 when it has none.
guint64 reported_packets(GstElement *webrtc) {
  GstPromise *promise = gst_promise_new();
  g_signal_emit_by_name(webrtc, "get-stats", nullptr, promise);
  guint64 packets = 0;
  if (gst_promise_wait(promise) == GST_PROMISE_RESULT_REPLIED) {
    gst_structure_foreach(
        gst_promise_get_reply(promise),
        [](GQuark, const GValue *value, gpointer data) -> gboolean {
          if (!GST_VALUE_HOLDS_STRUCTURE(value)) return TRUE;
          const GstStructure *st = gst_value_get_structure(value);
          GstWebRTCStatsType type;
          const GValue *sent = gst_structure_get_value(st, "packets-sent");
          if (gst_structure_get(st, "type", GST_TYPE_WEBRTC_STATS_TYPE, &type, nullptr) &&
              type == GST_WEBRTC_STATS_REMOTE_OUTBOUND_RTP && sent) {
            GValue v = G_VALUE_INIT;
            g_value_init(&v, G_TYPE_UINT64);
            if (g_value_transform(sent, &v)) *static_cast<guint64 *>(data) = g_value_get_uint64(&v);
            g_value_unset(&v);
          }
          return TRUE;
        },
        &packets);
  }
  gst_promise_unref(promise);
  return packets;
}

bool seen_rtcp(Viewer &v, bool want_pli) {
  std::lock_guard<std::mutex> lock(v.m);
  for (const auto &c : v.rtcp_in) {
    if (want_pli) {
      // rtpsession asks by FIR when the answer has "ccm fir" (ours has), else by PLI.
      for (const auto &p : c.plis)
        if (p.media_ssrc == v.ssrc) return true;
      for (const auto &f : c.firs)
        for (const auto &e : f.entries)
          if (e.ssrc == v.ssrc) return true;
    } else {
      for (const auto &rr : c.receiver_reports)
        for (const auto &b : rr.blocks)
          if (b.ssrc == v.ssrc && b.highest_seq > 0) return true;
    }
  }
  return false;
}

}  // namespace

GST_START_TEST(test_webrtcbin_decodes_shared_transport) {
  // On the heap, and left there when a check fails: the agent's thread and the pipelines'
  // callbacks still point at them then.
  std::string error;
  auto dtls = DtlsContext::create(make_ecdsa_certificate_pem(), {SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmSha1_80},
                                  &error);
  fail_unless(dtls != nullptr, "%s", error.c_str());
  IceConfig ice;
  ice.local_addresses = {"127.0.0.1"};
  auto &shared = *SharedIceAgent::create(ice, dtls, &error).release();
  fail_unless(&shared != nullptr, "%s", error.c_str());
  auto &media_viewers = *new Media;
  auto &viewers = *new std::vector<std::unique_ptr<Viewer>>;
  auto &receivers = *new std::vector<std::unique_ptr<Receiver>>;
  for (int i = 0; i < kViewers; i++) {
    viewers.push_back(std::make_unique<Viewer>());
    viewers.back()->ssrc = 0x5eed0001 + i;
    viewers.back()->shared = &shared;
    receivers.push_back(std::make_unique<Receiver>());
  }
  for (int i = 0; i < kViewers; i++) {
    negotiate(*receivers[i], *viewers[i]);
    media_viewers.viewers.push_back(viewers[i].get());
  }

  // The media, payloaded once for every viewer: solid green VP8, a keyframe every second.
  GstElement *media = gst_parse_launch(
      "videotestsrc is-live=true pattern=solid-color foreground-color=0xff00ff00 ! "
      "video/x-raw,width=320,height=240,framerate=30/1 ! vp8enc name=enc deadline=1 keyframe-max-dist=30 ! "
      "rtpvp8pay pt=96 mtu=1200 ! appsink name=rtp sync=false",
      nullptr);
  fail_unless(media != nullptr);
  wish_test::stop_at_teardown(media);
  GstElement *encoder = gst_bin_get_by_name(GST_BIN(media), "enc");
  for (auto &v : viewers) v->encoder = encoder;
  GstElement *rtp_sink = gst_bin_get_by_name(GST_BIN(media), "rtp");
  GstAppSinkCallbacks cb = {};
  cb.new_sample = on_rtp;
  gst_app_sink_set_callbacks(GST_APP_SINK(rtp_sink), &cb, &media_viewers, nullptr);
  fail_unless(gst_element_set_state(media, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);

  for (int i = 0; i < kViewers; i++) {
    Viewer &v = *viewers[i];
    bool connected = wait_for([&] {
      for (int j = 0; j < kViewers; j++) forward_candidates(*receivers[j], *viewers[j]);
      auto st = v.conn->state();
      return st == ViewerConnection::State::DtlsConnected || st == ViewerConnection::State::Failed;
    });
    fail_unless(connected && v.conn->state() == ViewerConnection::State::DtlsConnected, "viewer %d: state %d, %s", i,
                static_cast<int>(v.conn->state()), v.conn->error().c_str());
  }

  for (int i = 0; i < kViewers; i++) {
    Receiver &r = *receivers[i];
    Viewer &v = *viewers[i];
    // Frames decoded, green in the middle.
    fail_unless(wait_for([&] { return r.good_frames >= 30; }), "viewer %d: %d frames, %d green, %d RTP packets sent", i,
                r.frames.load(), r.good_frames.load(), int(v.conn->stats().rtp_sent));
    // A keyframe asked for at the viewer (what a decoder does after loss): rtpsession sends a PLI.
    gst_element_send_event(r.sink, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
    fail_unless(wait_for([&] { return seen_rtcp(v, false); }, 15000), "viewer %d: no receiver report about its SSRC", i);
    fail_unless(wait_for([&] { return seen_rtcp(v, true); }, 15000), "viewer %d: no PLI or FIR for its SSRC", i);
    std::lock_guard<std::mutex> lock(v.m);
    ViewerConnection::Stats st = v.conn->stats();
    fail_unless_equals_int(st.rtcp_rejected, 0);
    fail_if(v.other_thread, "a datagram of viewer %d arrived on another thread than the agent's", i);
    fail_unless(st.srs_sent > 0);
    g_print("viewer %d: %s, %d RTP packets sent, %d SRs, %d frames decoded (%d green), %zu RTCP packets, %d NACKed, %d resent\n",
            i, srtp_profile_name(v.conn->srtp_profile()), int(st.rtp_sent), int(st.srs_sent), r.frames.load(),
            r.good_frames.load(), v.rtcp_in.size(), int(st.nacked), int(st.retransmitted));
  }

  // Our sender reports reached webrtcbin's rtpsession: it reports their packet counts.
  for (int i = 0; i < kViewers; i++) {
    guint64 packets = 0;
    fail_unless(wait_for([&] { return (packets = reported_packets(receivers[i]->webrtc)) > 0; }, 10000),
                "viewer %d: webrtcbin has no remote-outbound-rtp statistics from our sender reports", i);
    fail_unless(packets <= viewers[i]->conn->stats().rtp_sent);
  }

  gst_element_set_state(media, GST_STATE_NULL);
  gst_object_unref(rtp_sink);
  gst_object_unref(encoder);
  gst_object_unref(media);
  for (auto &r : receivers) {
    gst_element_set_state(r->pipeline, GST_STATE_NULL);
    if (r->sink) gst_object_unref(r->sink);
    gst_object_unref(r->pipeline);
  }
  for (auto &v : viewers) v->conn->close();
  fail_unless_equals_int(shared.viewer_count(), 0);
  for (auto &v : viewers) v->conn.reset();
  delete &shared;
  delete &receivers;
  delete &viewers;
  delete &media_viewers;
}
GST_END_TEST;

namespace {

int entries(const char *dir) {
  GDir *d = g_dir_open(dir, 0, nullptr);
  int n = 0;
  if (d) {
    while (g_dir_read_name(d)) n++;
    g_dir_close(d);
  }
  return n;
}

// A viewer on the server's agent and the peer that plays it on a second agent (controlling,
// DTLS client), which counts the SRTP packets it can unprotect.
struct Pair {
  std::shared_ptr<ViewerConnection> server, peer;
  std::atomic<int> received{0};
  std::atomic<gint64> peer_ice_us{0}, peer_dtls_us{0};  // when the peer's ICE, then DTLS, connected
};

ViewerTrack audio_track(uint32_t ssrc) {
  ViewerTrack audio;
  audio.encoding = "OPUS";
  audio.clock_rate = 48000;
  audio.payload_type = 111;
  audio.ssrc = ssrc;
  audio.video = false;
  return audio;
}

void connect_pair(SharedIceAgent &server, SharedIceAgent &peers, Pair *p, const ViewerTrack &track,
                  ViewerCallbacks server_callbacks = {},
                  std::function<void(const uint8_t *, size_t)> peer_rtp = nullptr) {
  std::string error, fp = "sha-256 " + server.dtls_context()->fingerprint();
  ViewerConfig sc;
  sc.peer_fingerprint = fp;
  sc.tracks.push_back(track);
  p->server = server.add_viewer(sc, server_callbacks, &error);
  fail_unless(p->server != nullptr, "%s", error.c_str());
  ViewerConfig pc;
  pc.dtls_role = DtlsSession::Role::Client;
  pc.peer_fingerprint = fp;
  ViewerCallbacks pcb;
  pcb.on_state = [p](ViewerCallbacks::State s) {
    if (s == ViewerCallbacks::State::IceConnected) p->peer_ice_us = g_get_monotonic_time();
    if (s == ViewerCallbacks::State::DtlsConnected) p->peer_dtls_us = g_get_monotonic_time();
  };
  pcb.on_rtp = [p, peer_rtp](const uint8_t *d, size_t n) {
    if (peer_rtp) peer_rtp(d, n);
    p->received++;
  };
  p->peer = peers.add_viewer(pc, pcb, &error);
  fail_unless(p->peer != nullptr, "%s", error.c_str());
  for (auto [from, to] : {std::pair{p->server.get(), p->peer.get()}, std::pair{p->peer.get(), p->server.get()}}) {
    std::string ufrag, pwd;
    fail_unless(from->local_credentials(&ufrag, &pwd));
    fail_unless(to->set_remote_credentials(ufrag, pwd));
    for (const std::string &c : from->local_candidates()) fail_unless(to->add_remote_candidate(c), "%s", c.c_str());
  }
}

}  // namespace

// Viewers that connect (ICE, DTLS, SRTP media) and go, 200 of them, 20 at a time, leave no
// stream on the agent, no socket and no thread behind.
GST_START_TEST(test_viewers_come_and_go_leave_nothing) {
  std::string error;
  auto dtls = DtlsContext::create(make_ecdsa_certificate_pem(), {SrtpProfile::AeadAes128Gcm}, &error);
  fail_unless(dtls != nullptr, "%s", error.c_str());
  IceConfig ice;
  ice.local_addresses = {"127.0.0.1"};
  std::unique_ptr<SharedIceAgent> server = SharedIceAgent::create(ice, dtls, &error);
  ice.controlling = true;
  std::unique_ptr<SharedIceAgent> peers = SharedIceAgent::create(ice, dtls, &error);
  fail_unless(server && peers, "%s", error.c_str());
  std::vector<uint8_t> rtp = {0x80, 111, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  rtp.resize(12 + 80, 0x55);
  uint16_t seq = 0;
  int fds = 0, threads = 0;
  for (int round = 0; round <= 10; round++) {
    int n = round == 0 ? 1 : 20;  // round 0 warms up what GLib and OpenSSL keep for good
    std::vector<std::unique_ptr<Pair>> pairs;
    for (int i = 0; i < n; i++) {
      pairs.push_back(std::make_unique<Pair>());
      connect_pair(*server, *peers, pairs.back().get(), audio_track(0x1000 + i));
    }
    bool all = wait_for([&] {
      rtp[2] = static_cast<uint8_t>(seq >> 8);
      rtp[3] = static_cast<uint8_t>(seq++);
      auto packet = std::make_shared<const std::vector<uint8_t>>(rtp);
      bool done = true;
      for (auto &p : pairs) {
        p->server->send(0, packet);
        done = done && p->received > 0;
      }
      return done;
    });
    for (auto &p : pairs)
      fail_unless(all, "round %d: server %d (%s), peer %d (%s), %d received", round, static_cast<int>(p->server->state()),
                  p->server->error().c_str(), static_cast<int>(p->peer->state()), p->peer->error().c_str(),
                  p->received.load());
    // The peer (DTLS client) sends its ClientHello as it starts, before ICE has a pair to
    // send on: held, it goes once ICE connects, and the handshake takes milliseconds. Lost,
    // it went again at the DTLS retransmission timer, a second later.
    for (auto &p : pairs) {
      gint64 ms = (p->peer_dtls_us - p->peer_ice_us) / 1000;
      fail_unless(p->peer_ice_us > 0 && ms < 900, "round %d: DTLS connected %" G_GINT64_FORMAT " ms after ICE", round, ms);
    }
    for (auto &p : pairs) {
      p->server->close();
      p->peer->close();
    }
    fail_unless_equals_int(server->viewer_count(), 0);
    fail_unless_equals_int(peers->viewer_count(), 0);
    pairs.clear();
    if (round == 0) {
      fds = entries("/proc/self/fd");
      threads = entries("/proc/self/task");
    }
  }
  fail_unless(wait_for([&] { return entries("/proc/self/fd") == fds; }, 2000), "%d fds, %d before",
              entries("/proc/self/fd"), fds);
  fail_unless(entries("/proc/self/task") <= threads, "%d threads, %d before", entries("/proc/self/task"), threads);
  g_print("200 viewers came and went: %d fds, %d threads\n", fds, threads);
}
GST_END_TEST;

// A viewer's NACK is answered with an RTX packet (RFC 4588: the original sequence number
// first) from the history, its PLI and a new FIR become keyframe requests, a repeated FIR
// does not; after an ICE restart media still flows.
GST_START_TEST(test_nack_and_keyframe_requests) {
  std::string error;
  auto dtls = DtlsContext::create(make_ecdsa_certificate_pem(), {SrtpProfile::AeadAes128Gcm}, &error);
  fail_unless(dtls != nullptr, "%s", error.c_str());
  IceConfig ice;
  ice.local_addresses = {"127.0.0.1"};
  ice.min_port = 41000;  // the server's candidates from a port range, like ice-port-range
  ice.max_port = 41199;
  std::unique_ptr<SharedIceAgent> server = SharedIceAgent::create(ice, dtls, &error);
  ice.controlling = true;
  ice.min_port = ice.max_port = 0;
  std::unique_ptr<SharedIceAgent> peers = SharedIceAgent::create(ice, dtls, &error);
  fail_unless(server && peers, "%s", error.c_str());
  ViewerTrack video;
  video.encoding = "VP8";
  video.payload_type = 96;
  video.ssrc = 0x1111;
  video.rtx_payload_type = 97;
  video.rtx_ssrc = 0x2222;
  std::atomic<int> keyframe_requests{0};
  ViewerCallbacks scb;
  scb.on_keyframe_request = [&](size_t track) {
    if (track == 0) keyframe_requests++;
  };
  std::mutex m;  // guards rtx_osns
  std::vector<uint16_t> rtx_osns;
  Pair pair;
  connect_pair(*server, *peers, &pair, video, scb, [&](const uint8_t *d, size_t n) {
    size_t h = rtp::header_length(d, n);
    if (h && rtp::payload_type(d) == 97 && rtp::ssrc(d) == 0x2222 && n >= h + 2) {
      std::lock_guard<std::mutex> lock(m);
      rtx_osns.push_back(static_cast<uint16_t>((d[h] << 8) | d[h + 1]));
    }
  });
  for (const std::string &c : pair.server->local_candidates()) {
    gchar **f = g_strsplit(c.c_str(), " ", -1);
    int port = g_strv_length(f) > 5 ? atoi(f[5]) : 0;
    g_strfreev(f);
    fail_unless(port >= 41000 && port <= 41199, "candidate outside the port range: %s", c.c_str());
  }
  // VP8 key frame starts (S bit, partition 0, P bit clear), so the track starts at once.
  std::vector<uint8_t> rtp = {0x80, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x10, 0x00};
  rtp.resize(200, 0x55);
  uint16_t seq = 1000;
  fail_unless(wait_for([&] {
    rtp[2] = static_cast<uint8_t>(seq >> 8);
    rtp[3] = static_cast<uint8_t>(seq);
    if (pair.server->send(0, std::make_shared<const std::vector<uint8_t>>(rtp))) seq++;
    return pair.received > 0;
  }), "server %d (%s), peer %d (%s)", static_cast<int>(pair.server->state()), pair.server->error().c_str(),
              static_cast<int>(pair.peer->state()), pair.peer->error().c_str());
  // The first source keeps its sequence numbers: the last one sent is seq - 1.
  uint16_t lost = static_cast<uint16_t>(seq - 1);
  std::vector<uint8_t> c;
  rtcp::append_receiver_report({0x9999, {}}, &c);
  rtcp::append_nack({0x9999, 0x1111, {lost, 60000}}, &c);  // 60000: never sent, not answered
  fail_unless(pair.peer->send_rtcp(c));
  fail_unless(wait_for([&] { std::lock_guard<std::mutex> l(m); return !rtx_osns.empty(); }, 5000), "no RTX");
  {
    std::lock_guard<std::mutex> lock(m);
    fail_unless_equals_int(rtx_osns.size(), 1);
    fail_unless_equals_int(rtx_osns[0], lost);
  }
  ViewerConnection::Stats st = pair.server->stats();
  fail_unless_equals_int(st.nacked, 2);
  fail_unless_equals_int(st.retransmitted, 1);

  int before = keyframe_requests;
  c.clear();
  rtcp::append_receiver_report({0x9999, {}}, &c);
  rtcp::append_pli({0x9999, 0x1111}, &c);
  fail_unless(pair.peer->send_rtcp(c));
  fail_unless(wait_for([&] { return keyframe_requests == before + 1; }, 5000), "PLI: no keyframe request");
  for (int i = 0; i < 2; i++) {  // the same FIR twice: one request
    c.clear();
    rtcp::append_receiver_report({0x9999, {}}, &c);
    rtcp::append_fir({0x9999, {{0x1111, 7}}}, &c);
    fail_unless(pair.peer->send_rtcp(c));
  }
  fail_unless(wait_for([&] { return pair.server->stats().rtcp_received >= 4; }, 5000));
  fail_unless_equals_int(keyframe_requests, before + 2);
  fail_unless_equals_int(pair.server->stats().rtcp_rejected, 0);

  // ICE restart on both sides: new credentials exchanged, media still flows over the same
  // DTLS and SRTP.
  std::string old_ufrag, old_pwd, ufrag, pwd;
  fail_unless(pair.server->local_credentials(&old_ufrag, &old_pwd));
  fail_unless(pair.server->restart_ice() && pair.peer->restart_ice());
  fail_unless(pair.server->local_credentials(&ufrag, &pwd));
  fail_if(ufrag == old_ufrag || pwd == old_pwd, "the same credentials after an ICE restart");
  for (auto [from, to] : {std::pair{pair.server.get(), pair.peer.get()}, std::pair{pair.peer.get(), pair.server.get()}}) {
    fail_unless(from->local_credentials(&ufrag, &pwd));
    fail_unless(to->set_remote_credentials(ufrag, pwd));
    for (const std::string &cand : from->local_candidates()) fail_unless(to->add_remote_candidate(cand));
  }
  int received = pair.received;
  fail_unless(wait_for([&] {
    rtp[2] = static_cast<uint8_t>(seq >> 8);
    rtp[3] = static_cast<uint8_t>(seq);
    if (pair.server->send(0, std::make_shared<const std::vector<uint8_t>>(rtp))) seq++;
    return pair.received > received + 10;
  }, 10000), "no media after the ICE restart: %d packets before, %d now", received, pair.received.load());
  fail_unless(pair.server->state() == ViewerConnection::State::DtlsConnected);
  pair.server->close();
  pair.peer->close();
}
GST_END_TEST;

static Suite *viewer_transport_suite(void) {
  Suite *s = suite_create("viewer-transport");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  tcase_add_test(tc, test_webrtcbin_decodes_shared_transport);
  tcase_add_test(tc, test_viewers_come_and_go_leave_nothing);
  tcase_add_test(tc, test_nack_and_keyframe_requests);
  return s;
}

GST_CHECK_MAIN(viewer_transport);
