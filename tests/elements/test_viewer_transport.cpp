// The pieces of the shared viewer transport against real webrtcbins: one libnice agent on a
// context thread of its own (controlled, 127.0.0.1 only) with a stream per viewer, and per
// viewer a DtlsSession and an SrtpSession, answer each webrtcbin's recvonly offer; VP8
// payloaded once (appsink of rtpvp8pay) goes out to each with its header rewritten, SRTP-
// protected and sent with nice_agent_send. Each webrtcbin must decode the frames (their colour
// is checked), and its RTCP (receiver reports, a PLI) must arrive, on the agent's thread, and
// parse; our sender reports must show in its statistics.
#include <agent.h>
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
#include "protocol/rtcp.h"
#include "teardown.h"
#include "transport/dtls_srtp.h"
#include "webrtc_utils.h"

using namespace wish;

namespace {

constexpr int kViewers = 2;
constexpr int kTimeoutMs = 30000;

struct Viewer;

// The one ICE agent of every viewer, on one context and one thread (the transport's).
struct SharedAgent {
  GMainContext *ctx = g_main_context_new();
  GMainLoop *loop = g_main_loop_new(ctx, FALSE);
  std::thread thread;
  NiceAgent *agent = nullptr;
  std::vector<Viewer *> viewers;  // fixed before the thread starts
  std::shared_ptr<DtlsContext> dtls_ctx;
  std::atomic<std::thread::id> thread_id{};

  void start();
  void stop();
  Viewer *viewer_of(guint stream) const;
};

// What the transport will hold per viewer: a stream on the shared agent, DTLS, SRTP.
struct Viewer {
  using State = DtlsSession::State;
  SharedAgent *shared = nullptr;
  uint32_t ssrc = 0;
  guint stream = 0;
  std::unique_ptr<DtlsSession> dtls;  // touched on the agent's thread only, once made
  SrtpSession srtp;                   // protect on the media thread, unprotect on the agent's
  std::atomic<bool> srtp_ready{false}, gathered{false}, ice_ready{false}, other_thread{false};
  std::atomic<int> rtp_sent{0};
  uint32_t octets = 0, last_ts = 0;
  int srs_sent = 0;
  uint8_t pt = 96;
  uint16_t seq = 1000;

  std::mutex m;
  std::vector<rtcp::Compound> rtcp_in;
  int rtcp_bad = 0;
  std::string dtls_error;
  std::string profile;
  GstElement *encoder = nullptr;  // asked for a keyframe on PLI

  void on_datagram(const uint8_t *d, size_t n) {
    if (std::this_thread::get_id() != shared->thread_id.load()) other_thread = true;
    if (n == 0) return;
    if (d[0] >= 20 && d[0] <= 63) {  // DTLS (RFC 7983)
      if (!dtls) return;
      State s = dtls->receive(d, n);
      if (s == State::Connected && !srtp_ready) {
        std::string error;
        bool ok = srtp.init(dtls->keys(), &error);
        std::lock_guard<std::mutex> lock(m);
        profile = srtp_profile_name(dtls->keys().profile);
        if (!ok) dtls_error = error;
        srtp_ready.store(ok, std::memory_order_release);
      } else if (s == State::Failed) {
        std::lock_guard<std::mutex> lock(m);
        dtls_error = dtls->error();
      }
      return;
    }
    if (d[0] >= 128 && d[0] <= 191 && rtcp::is_rtcp(d, n) && srtp_ready.load(std::memory_order_acquire)) {
      std::vector<uint8_t> p(d, d + n);
      rtcp::Compound c;
      bool ok = srtp.unprotect_rtcp(&p) && rtcp::parse_compound(p.data(), p.size(), &c);
      if (ok && (!c.plis.empty() || !c.firs.empty()) && encoder) {
        // PLI -> keyframe request to the one encoder every viewer shares.
        gst_element_send_event(encoder, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
      }
      std::lock_guard<std::mutex> lock(m);
      if (ok) rtcp_in.push_back(std::move(c));
      else rtcp_bad++;
    }
  }

  // From the media thread: header rewrite, SRTP, send.
  void send_rtp(const uint8_t *d, size_t n) {
    if (!srtp_ready.load(std::memory_order_acquire) || rtp::header_length(d, n) == 0) return;
    std::vector<uint8_t> p(n + SrtpSession::kMaxTrailer);
    std::copy(d, d + n, p.begin());
    rtp::set_ssrc(p.data(), ssrc);
    rtp::set_payload_type(p.data(), pt);
    rtp::set_seq(p.data(), seq++);
    size_t len = n;
    if (!srtp.protect_rtp(p.data(), &len, p.size())) return;
    if (nice_agent_send(shared->agent, stream, 1, static_cast<guint>(len), reinterpret_cast<const gchar *>(p.data())) > 0)
      rtp_sent++;
    octets += static_cast<uint32_t>(n - rtp::header_length(d, n));
    last_ts = rtp::timestamp(d);
    // A sender report now and then, from this thread: libsrtp's outbound session is this
    // thread's alone.
    if (rtp_sent % 20 == 1) {
      rtcp::SenderReport sr;
      sr.ssrc = ssrc;
      sr.ntp_time = rtcp::ntp_from_unix_us(g_get_real_time());
      sr.rtp_time = last_ts;
      sr.packet_count = static_cast<uint32_t>(rtp_sent.load());
      sr.octet_count = octets;
      std::vector<uint8_t> c = rtcp::build_sender_compound(sr, "wish-viewer-transport");
      if (srtp.protect_rtcp(&c) &&
          nice_agent_send(shared->agent, stream, 1, static_cast<guint>(c.size()), reinterpret_cast<const gchar *>(c.data())) > 0)
        srs_sent++;
    }
  }
};

Viewer *SharedAgent::viewer_of(guint stream) const {
  for (Viewer *v : viewers)
    if (v->stream == stream) return v;
  return nullptr;
}

void SharedAgent::start() {
  std::string error;
  dtls_ctx = DtlsContext::create(make_ecdsa_certificate_pem(), {SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmSha1_80},
                                 &error);
  fail_unless(dtls_ctx != nullptr, "%s", error.c_str());
  agent = nice_agent_new(ctx, NICE_COMPATIBILITY_RFC5245);
  g_object_set(agent, "controlling-mode", FALSE, "ice-tcp", FALSE, "upnp", FALSE, nullptr);
  NiceAddress addr;
  fail_unless(nice_address_set_from_string(&addr, "127.0.0.1"));
  fail_unless(nice_agent_add_local_address(agent, &addr));
  g_signal_connect(agent, "candidate-gathering-done", G_CALLBACK(+[](NiceAgent *, guint stream, gpointer d) {
                     if (Viewer *v = static_cast<SharedAgent *>(d)->viewer_of(stream)) v->gathered = true;
                   }),
                   this);
  g_signal_connect(agent, "component-state-changed", G_CALLBACK(+[](NiceAgent *, guint stream, guint, guint state, gpointer d) {
                     Viewer *v = static_cast<SharedAgent *>(d)->viewer_of(stream);
                     if (v && state == NICE_COMPONENT_STATE_READY) v->ice_ready = true;
                   }),
                   this);
  for (Viewer *v : viewers) {
    v->shared = this;
    v->stream = nice_agent_add_stream(agent, 1);
    fail_unless(v->stream != 0);
    nice_agent_attach_recv(agent, v->stream, 1, ctx,
                           +[](NiceAgent *, guint, guint, guint len, gchar *buf, gpointer d) {
                             static_cast<Viewer *>(d)->on_datagram(reinterpret_cast<const uint8_t *>(buf), len);
                           },
                           v);
  }
  // Every viewer's DTLS timer from one source.
  GSource *timer = g_timeout_source_new(10);
  g_source_set_callback(timer, +[](gpointer d) -> gboolean {
                          for (Viewer *v : static_cast<SharedAgent *>(d)->viewers)
                            if (v->dtls && v->dtls->next_timeout_us() == 0) v->dtls->on_timeout();
                          return G_SOURCE_CONTINUE;
                        },
                        this, nullptr);
  g_source_attach(timer, ctx);
  g_source_unref(timer);
  thread = std::thread([this] {
    thread_id = std::this_thread::get_id();
    g_main_context_push_thread_default(ctx);
    g_main_loop_run(loop);
    g_main_context_pop_thread_default(ctx);
  });
  for (Viewer *v : viewers) fail_unless(nice_agent_gather_candidates(agent, v->stream));
}

void SharedAgent::stop() {
  for (Viewer *v : viewers)
    if (agent) nice_agent_remove_stream(agent, v->stream);
  g_main_loop_quit(loop);
  if (thread.joinable()) thread.join();
  for (Viewer *v : viewers) v->dtls.reset();
  if (agent) g_object_unref(agent);
  g_main_loop_unref(loop);
  g_main_context_unref(ctx);
}

std::string attr(const GstSDPMessage *sdp, const GstSDPMedia *media, const char *key) {
  const char *v = gst_sdp_media_get_attribute_val(media, key);
  if (!v) v = gst_sdp_message_get_attribute_val(sdp, key);
  return v ? v : "";
}

// The answer to webrtcbin's offer: its mid, its VP8 payload type, our ICE credentials,
// candidates and fingerprint; we are the DTLS server (a=setup:passive).
std::string make_answer(const std::string &offer, Viewer *s, std::string *peer_fingerprint) {
  GstSDPMessage *sdp = nullptr;
  gst_sdp_message_new_from_text(offer.c_str(), &sdp);
  fail_unless(sdp && gst_sdp_message_medias_len(sdp) == 1);
  const GstSDPMedia *media = gst_sdp_message_get_media(sdp, 0);
  std::string mid = attr(sdp, media, "mid"), fp = attr(sdp, media, "fingerprint");
  fail_unless(!mid.empty() && fp.rfind("sha-256 ", 0) == 0, "offer without mid or sha-256 fingerprint");
  *peer_fingerprint = fp;
  int pt = -1;
  for (guint i = 0; i < gst_sdp_media_attributes_len(media); i++) {
    const GstSDPAttribute *a = gst_sdp_media_get_attribute(media, i);
    if (g_strcmp0(a->key, "rtpmap") == 0 && a->value && strstr(a->value, " VP8/90000")) pt = atoi(a->value);
  }
  fail_unless(pt > 0, "no VP8 in the offer");
  s->pt = static_cast<uint8_t>(pt);
  gst_sdp_message_free(sdp);

  gchar *ufrag = nullptr, *pwd = nullptr;
  fail_unless(nice_agent_get_local_credentials(s->shared->agent, s->stream, &ufrag, &pwd));
  std::string a = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE " + mid + "\r\n";
  a += "m=video 9 UDP/TLS/RTP/SAVPF " + std::to_string(pt) + "\r\nc=IN IP4 0.0.0.0\r\n";
  a += "a=mid:" + mid + "\r\na=sendonly\r\na=rtcp-mux\r\n";
  a += std::string("a=ice-ufrag:") + ufrag + "\r\na=ice-pwd:" + pwd + "\r\n";
  a += "a=fingerprint:sha-256 " + s->shared->dtls_ctx->fingerprint() + "\r\na=setup:passive\r\n";
  a += "a=rtpmap:" + std::to_string(pt) + " VP8/90000\r\n";
  a += "a=rtcp-fb:" + std::to_string(pt) + " nack\r\na=rtcp-fb:" + std::to_string(pt) + " nack pli\r\n";
  a += "a=ssrc:" + std::to_string(s->ssrc) + " cname:wish-viewer-transport\r\n";
  g_free(ufrag);
  g_free(pwd);
  GSList *cands = nice_agent_get_local_candidates(s->shared->agent, s->stream, 1);
  fail_unless(cands != nullptr, "no local candidate");
  for (GSList *l = cands; l; l = l->next) {
    gchar *line = nice_agent_generate_local_candidate_sdp(s->shared->agent, static_cast<NiceCandidate *>(l->data));
    a += std::string(line) + "\r\n";
    g_free(line);
  }
  g_slist_free_full(cands, reinterpret_cast<GDestroyNotify>(nice_candidate_free));
  a += "a=end-of-candidates\r\n";
  return a;
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
    for (Viewer *v : static_cast<SharedAgent *>(data)->viewers) v->send_rtp(map.data, map.size);
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

  std::string peer_fp;
  std::string answer = make_answer(offer, &v, &peer_fp);
  // Made before ICE can connect: from then on only the agent's thread touches it.
  Viewer *vp = &v;
  v.dtls = std::make_unique<DtlsSession>(v.shared->dtls_ctx, DtlsSession::Role::Server, peer_fp,
                                         [vp](const uint8_t *d, size_t n) {
                                           nice_agent_send(vp->shared->agent, vp->stream, 1, static_cast<guint>(n),
                                                           reinterpret_cast<const gchar *>(d));
                                         });
  fail_unless(v.dtls->start());
  GstSDPMessage *osdp = nullptr;
  gst_sdp_message_new_from_text(offer.c_str(), &osdp);
  const GstSDPMedia *om = gst_sdp_message_get_media(osdp, 0);
  fail_unless(nice_agent_set_remote_credentials(v.shared->agent, v.stream, attr(osdp, om, "ice-ufrag").c_str(),
                                                attr(osdp, om, "ice-pwd").c_str()));
  gst_sdp_message_free(osdp);
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
  GSList *list = nullptr;
  for (; r.forwarded < r.candidates.size(); r.forwarded++) {
    std::string line = r.candidates[r.forwarded];
    if (line.rfind("a=", 0) != 0) line = "a=" + line;
    if (NiceCandidate *c = nice_agent_parse_remote_candidate_sdp(v.shared->agent, v.stream, line.c_str()))
      list = g_slist_append(list, c);
  }
  if (list) nice_agent_set_remote_candidates(v.shared->agent, v.stream, 1, list);
  g_slist_free_full(list, reinterpret_cast<GDestroyNotify>(nice_candidate_free));
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
      for (const auto &p : c.plis)
        if (p.media_ssrc == v.ssrc) return true;
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
  auto &shared = *new SharedAgent;
  auto &viewers = *new std::vector<std::unique_ptr<Viewer>>;
  auto &receivers = *new std::vector<std::unique_ptr<Receiver>>;
  for (int i = 0; i < kViewers; i++) {
    viewers.push_back(std::make_unique<Viewer>());
    viewers.back()->ssrc = 0x5eed0001 + i;
    shared.viewers.push_back(viewers.back().get());
    receivers.push_back(std::make_unique<Receiver>());
  }
  shared.start();
  for (auto &v : viewers) fail_unless(wait_for([&] { return v->gathered.load(); }, 5000), "our agent gathered nothing");
  for (int i = 0; i < kViewers; i++) negotiate(*receivers[i], *viewers[i]);

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
  gst_app_sink_set_callbacks(GST_APP_SINK(rtp_sink), &cb, &shared, nullptr);
  fail_unless(gst_element_set_state(media, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);

  for (int i = 0; i < kViewers; i++) {
    Viewer &v = *viewers[i];
    bool connected = wait_for([&] {
      for (int j = 0; j < kViewers; j++) forward_candidates(*receivers[j], *viewers[j]);
      std::lock_guard<std::mutex> lock(v.m);
      return v.srtp_ready.load() || !v.dtls_error.empty();
    });
    std::lock_guard<std::mutex> lock(v.m);
    fail_unless(connected && v.dtls_error.empty(), "viewer %d: ICE %d, DTLS: %s", i, v.ice_ready.load(),
                v.dtls_error.c_str());
  }

  for (int i = 0; i < kViewers; i++) {
    Receiver &r = *receivers[i];
    Viewer &v = *viewers[i];
    // Frames decoded, green in the middle.
    fail_unless(wait_for([&] { return r.good_frames >= 30; }), "viewer %d: %d frames, %d green, %d RTP packets sent", i,
                r.frames.load(), r.good_frames.load(), v.rtp_sent.load());
    // A keyframe asked for at the viewer (what a decoder does after loss): rtpsession sends a PLI.
    gst_element_send_event(r.sink, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
    fail_unless(wait_for([&] { return seen_rtcp(v, false); }, 15000), "viewer %d: no receiver report about its SSRC", i);
    fail_unless(wait_for([&] { return seen_rtcp(v, true); }, 15000), "viewer %d: no PLI for its SSRC", i);
    std::lock_guard<std::mutex> lock(v.m);
    fail_unless_equals_int(v.rtcp_bad, 0);
    fail_if(v.other_thread, "a datagram of viewer %d arrived on another thread than the agent's", i);
    fail_unless(v.srs_sent > 0);
    g_print("viewer %d: %s, %d RTP packets sent, %d frames decoded (%d green), %zu RTCP packets\n", i, v.profile.c_str(),
            v.rtp_sent.load(), r.frames.load(), r.good_frames.load(), v.rtcp_in.size());
  }

  // Our sender reports reached webrtcbin's rtpsession: it reports their packet counts.
  for (int i = 0; i < kViewers; i++) {
    guint64 packets = 0;
    fail_unless(wait_for([&] { return (packets = reported_packets(receivers[i]->webrtc)) > 0; }, 10000),
                "viewer %d: webrtcbin has no remote-outbound-rtp statistics from our sender reports", i);
    fail_unless(packets <= static_cast<guint64>(viewers[i]->rtp_sent.load()));
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
  shared.stop();
  delete &receivers;
  delete &viewers;
  delete &shared;
}
GST_END_TEST;

static Suite *viewer_transport_suite(void) {
  Suite *s = suite_create("viewer-transport");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  tcase_add_test(tc, test_webrtcbin_decodes_shared_transport);
  return s;
}

GST_CHECK_MAIN(viewer_transport);
