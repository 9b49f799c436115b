#include "test_player.h"

#include <gst/video/video.h>
#include <gst/webrtc/webrtc.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "dtls_certificate.h"
#include "protocol/sdp.h"
#include "teardown.h"
#include "webrtc_utils.h"

namespace wish_test {

// Players alive. Callbacks on GStreamer's threads can still come while a player is destroyed
// (a pad added as its pipeline stops): they touch a player only while it is listed, and the
// probes and handlers that do no more than note what they saw hold the list's lock meanwhile.
static std::mutex &live_mutex() {
  static std::mutex m;
  return m;
}
static std::set<const TestPlayer *> &live_players() {
  static std::set<const TestPlayer *> s;
  return s;
}
struct IfAlive {
  std::unique_lock<std::mutex> lock;
  bool alive;
  explicit IfAlive(const TestPlayer *p) : lock(live_mutex()), alive(live_players().count(p) > 0) {}
};
static bool is_alive(const TestPlayer *p) { return IfAlive(p).alive; }

static bool wait_until(int timeout_ms, const std::function<bool()> &cond) {
  gint64 end = g_get_monotonic_time() + static_cast<gint64>(timeout_ms) * 1000;
  while (g_get_monotonic_time() < end) {
    if (cond()) return true;
    g_usleep(10 * 1000);
  }
  return cond();
}

TestPlayer::TestPlayer(const PlayerOptions &opts) : points_(opts.sample_points), at_(opts.sample_points.size()) {
  {
    std::lock_guard<std::mutex> lock(live_mutex());
    live_players().insert(this);
  }
  pipeline_ = gst_pipeline_new("player");
  stop_at_teardown(pipeline_);
  webrtc_ = gst_element_factory_make("webrtcbin", "player_webrtc");
  gst_bin_add(GST_BIN(pipeline_), webrtc_);
  std::string error;
  wish::configure_webrtcbin(webrtc_, {"127.0.0.1"}, "", {}, &error);
  g_signal_connect(webrtc_, "on-ice-candidate", G_CALLBACK(+[](GstElement *, guint, gchar *c, TestPlayer *self) {
                     IfAlive live(self);
                     if (!live.alive) return;
                     std::lock_guard<std::mutex> lock(self->mutex_);
                     std::string s = c;
                     if (s.rfind("a=", 0) == 0) s = s.substr(2);
                     self->candidates_.push_back(s);
                   }),
                   this);
  g_signal_connect(webrtc_, "pad-added", G_CALLBACK(&TestPlayer::on_pad_added), this);
  if (opts.video) {
    std::string caps;
    for (const auto &c : opts.video_codecs) {
      if (!caps.empty()) caps += ";";
      if (c == "H264")
        caps += "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,"
                "packetization-mode=(string)1,profile-level-id=(string)42e01f";
      else if (c == "VP8")
        caps += "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000";
      else if (c == "VP9")
        caps += "application/x-rtp,media=video,encoding-name=VP9,payload=98,clock-rate=90000";
      else if (c == "H265")
        caps += "application/x-rtp,media=video,encoding-name=H265,payload=100,clock-rate=90000";
    }
    GstCaps *vc = gst_caps_from_string(caps.c_str());
    GstWebRTCRTPTransceiver *t = nullptr;
    g_signal_emit_by_name(webrtc_, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, vc, &t);
    gst_caps_unref(vc);
    if (t) gst_object_unref(t);
  }
  if (opts.audio) {
    std::string caps;
    for (const auto &c : opts.audio_codecs) {
      if (!caps.empty()) caps += ";";
      if (c == "OPUS")
        caps += "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,encoding-params=(string)2";
      else if (c == "PCMU" || c == "PCMA" || c == "G722")
        caps += "application/x-rtp,media=audio,encoding-name=" + c + ",payload=" +
                (c == "PCMU" ? "0" : c == "PCMA" ? "8" : "9") + ",clock-rate=8000";
    }
    GstCaps *ac = gst_caps_from_string(caps.c_str());
    GstWebRTCRTPTransceiver *t = nullptr;
    g_signal_emit_by_name(webrtc_, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, ac, &t);
    gst_caps_unref(ac);
    if (t) gst_object_unref(t);
  }
  gst_element_set_state(pipeline_, GST_STATE_PLAYING);
}

TestPlayer::~TestPlayer() {
  {
    std::lock_guard<std::mutex> lock(live_mutex());
    live_players().erase(this);
  }
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  gst_object_unref(pipeline_);
}

void TestPlayer::on_pad_added(GstElement *, GstPad *pad, TestPlayer *self) {
  if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC || !is_alive(self)) return;
  GstCaps *rtp = gst_pad_get_current_caps(pad);
  if (!rtp) rtp = gst_pad_query_caps(pad, nullptr);
  const gchar *media = gst_structure_get_string(gst_caps_get_structure(rtp, 0), "media");
  bool video = !media || g_str_equal(media, "video");
  gst_caps_unref(rtp);
  if (video) {
    self->video_pads_++;
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER,
                      [](GstPad *, GstPadProbeInfo *info, gpointer d) {
                        auto *p = static_cast<TestPlayer *>(d);
                        IfAlive live(p);
                        if (!live.alive) return GST_PAD_PROBE_OK;
                        guint8 h[12];
                        if (gst_buffer_extract(GST_PAD_PROBE_INFO_BUFFER(info), 0, h, 12) == 12) {
                          unsigned ssrc = (h[8] << 24) | (h[9] << 16) | (h[10] << 8) | h[11];
                          std::lock_guard<std::mutex> lock(p->mutex_);
                          if (std::find(p->ssrcs_.begin(), p->ssrcs_.end(), ssrc) == p->ssrcs_.end())
                            p->ssrcs_.push_back(ssrc);
                        }
                        return GST_PAD_PROBE_OK;
                      },
                      self, nullptr);
  }
  GstElement *decodebin = gst_element_factory_make("decodebin", nullptr);
  g_signal_connect(decodebin, "pad-added", G_CALLBACK(&TestPlayer::on_decoded_pad), self);
  g_signal_connect(decodebin, "deep-element-added", G_CALLBACK(+[](GstBin *, GstBin *, GstElement *e, TestPlayer *self) {
                     // Remember which depayloader/decoder got the video, for codec assertions.
                     IfAlive live(self);
                     if (!live.alive) return;
                     GstElementFactory *f = gst_element_get_factory(e);
                     if (!f) return;
                     if (g_str_has_suffix(GST_OBJECT_NAME(f), "depay")) {
                       std::lock_guard<std::mutex> lock(self->mutex_);
                       self->video_caps_ += std::string(GST_OBJECT_NAME(f)) + " ";
                     }
                   }),
                   self);
  gst_bin_add(GST_BIN(self->pipeline_), decodebin);
  gst_element_sync_state_with_parent(decodebin);
  GstPad *sink = gst_element_get_static_pad(decodebin, "sink");
  gst_pad_link(pad, sink);
  gst_object_unref(sink);
}

void TestPlayer::on_decoded_pad(GstElement *, GstPad *pad, TestPlayer *self) {
  if (!is_alive(self)) return;
  GstCaps *caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, nullptr);
  bool video = g_str_has_prefix(gst_structure_get_name(gst_caps_get_structure(caps, 0)), "video");
  gst_caps_unref(caps);
  GstElement *sink = gst_element_factory_make("fakesink", nullptr);
  g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
  gst_bin_add(GST_BIN(self->pipeline_), sink);
  GstPad *target = pad;
  if (video) {
    // Pictures are read as RGB: the centre pixel says which source is shown.
    GstElement *convert = gst_element_factory_make("videoconvert", nullptr);
    GstElement *filter = gst_element_factory_make("capsfilter", nullptr);
    GstCaps *rgb = gst_caps_from_string("video/x-raw,format=RGB");
    g_object_set(filter, "caps", rgb, nullptr);
    gst_caps_unref(rgb);
    gst_bin_add_many(GST_BIN(self->pipeline_), convert, filter, nullptr);
    gst_element_link_many(convert, filter, sink, nullptr);
    gst_element_sync_state_with_parent(sink);
    gst_element_sync_state_with_parent(filter);
    gst_element_sync_state_with_parent(convert);
    GstPad *in = gst_element_get_static_pad(convert, "sink");
    gst_pad_link(pad, in);
    gst_object_unref(in);
    target = nullptr;
  } else {
    // Audio is kept as 48 kHz mono samples, for tone checks.
    GstElement *convert = gst_element_factory_make("audioconvert", nullptr);
    GstElement *resample = gst_element_factory_make("audioresample", nullptr);
    GstElement *filter = gst_element_factory_make("capsfilter", nullptr);
    GstCaps *mono = gst_caps_from_string("audio/x-raw,format=S16LE,channels=1,rate=48000");
    g_object_set(filter, "caps", mono, nullptr);
    gst_caps_unref(mono);
    gst_bin_add_many(GST_BIN(self->pipeline_), convert, resample, filter, nullptr);
    gst_element_link_many(convert, resample, filter, sink, nullptr);
    for (GstElement *e : {sink, filter, resample, convert}) gst_element_sync_state_with_parent(e);
    GstPad *in = gst_element_get_static_pad(convert, "sink");
    gst_pad_link(pad, in);
    gst_object_unref(in);
    target = nullptr;
  }
  GstPad *sinkpad = gst_element_get_static_pad(sink, "sink");
  if (target) gst_pad_link(target, sinkpad);
  gst_pad_add_probe(sinkpad, GST_PAD_PROBE_TYPE_BUFFER,
                    video ? +[](GstPad *p, GstPadProbeInfo *info, gpointer d) {
                      auto *self = static_cast<TestPlayer *>(d);
                      IfAlive live(self);
                      if (!live.alive) return GST_PAD_PROBE_OK;
                      self->video_frames_++;
                      GstCaps *caps = gst_pad_get_current_caps(p);
                      GstVideoInfo vi;
                      if (caps && gst_video_info_from_caps(&vi, caps)) {
                        GstVideoFrame frame;
                        if (gst_video_frame_map(&frame, &vi, GST_PAD_PROBE_INFO_BUFFER(info), GST_MAP_READ)) {
                          auto at = [&](double fx, double fy) -> Rgb {
                            int x = std::min(vi.width - 1, static_cast<int>(fx * vi.width));
                            int y = std::min(vi.height - 1, static_cast<int>(fy * vi.height));
                            const guint8 *px = static_cast<const guint8 *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)) +
                                               GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0) * y + 3 * x;
                            return {px[0], px[1], px[2]};
                          };
                          std::lock_guard<std::mutex> lock(self->mutex_);
                          self->center_ = at(0.5, 0.5);
                          for (size_t i = 0; i < self->points_.size(); i++)
                            self->at_[i] = at(self->points_[i].first, self->points_[i].second);
                          gst_video_frame_unmap(&frame);
                        }
                      }
                      if (caps) gst_caps_unref(caps);
                      return GST_PAD_PROBE_OK;
                    }
                          : +[](GstPad *, GstPadProbeInfo *info, gpointer d) {
                              auto *self = static_cast<TestPlayer *>(d);
                              IfAlive live(self);
                              if (!live.alive) return GST_PAD_PROBE_OK;
                              self->audio_buffers_++;
                              GstMapInfo map;
                              GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
                              if (gst_buffer_map(buf, &map, GST_MAP_READ)) {
                                const auto *samples = reinterpret_cast<const gint16 *>(map.data);
                                std::lock_guard<std::mutex> lock(self->mutex_);
                                self->audio_.insert(self->audio_.end(), samples, samples + map.size / 2);
                                if (self->audio_.size() > 48000)
                                  self->audio_.erase(self->audio_.begin(), self->audio_.end() - 48000);
                                gst_buffer_unmap(buf, &map);
                              }
                              return GST_PAD_PROBE_OK;
                            },
                    self, nullptr);
  gst_object_unref(sinkpad);
}

static GstStructure *wait_promise(GstPromise *p) {
  GstPromiseResult r = gst_promise_wait(p);
  if (r != GST_PROMISE_RESULT_REPLIED) return nullptr;
  const GstStructure *s = gst_promise_get_reply(p);
  return s ? gst_structure_copy(s) : gst_structure_new_empty("empty");
}

std::string TestPlayer::local_description_with_candidates(int timeout_ms) {
  wait_until(timeout_ms, [&] {
    GstWebRTCICEGatheringState st;
    g_object_get(webrtc_, "ice-gathering-state", &st, nullptr);
    return st == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE;
  });
  GstWebRTCSessionDescription *desc = nullptr;
  g_object_get(webrtc_, "local-description", &desc, nullptr);
  if (!desc) return "";
  gchar *text = gst_sdp_message_as_text(desc->sdp);
  std::string sdp = text;
  g_free(text);
  gst_webrtc_session_description_free(desc);
  std::vector<std::string> cands;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cands = candidates_;
  }
  return wish::finish_local_sdp(sdp, cands);
}

// webrtcbin 1.22 may describe its certificate with a fingerprint that is not the
// certificate's (dtls_certificate.h), which peers that check it refuse (the shared viewer
// transport, browsers): the fingerprint of the certificate its DTLS transport uses goes in
// instead, as whepsrc does it.
static std::string with_own_fingerprint(GstElement *webrtc, const std::string &sdp) {
  GstWebRTCRTPTransceiver *trans = nullptr;
  g_signal_emit_by_name(webrtc, "get-transceiver", 0, &trans);
  GstWebRTCRTPReceiver *receiver = nullptr;
  if (trans) g_object_get(trans, "receiver", &receiver, nullptr);
  GstWebRTCDTLSTransport *dtls = nullptr;
  if (receiver) g_object_get(receiver, "transport", &dtls, nullptr);
  gchar *pem = nullptr;
  if (dtls) g_object_get(dtls, "certificate", &pem, nullptr);
  std::string fingerprint = pem ? wish::certificate_fingerprint(pem) : "";
  g_free(pem);
  if (dtls) gst_object_unref(dtls);
  if (receiver) gst_object_unref(receiver);
  if (trans) gst_object_unref(trans);
  if (fingerprint.empty()) return sdp;
  const std::string key = "a=fingerprint:";
  std::string out = sdp;
  for (size_t at = out.find(key); at != std::string::npos; at = out.find(key, at + key.size())) {
    size_t end = out.find_first_of("\r\n", at);
    out.replace(at + key.size(), (end == std::string::npos ? out.size() : end) - at - key.size(),
                "sha-256 " + fingerprint);
  }
  return out;
}

std::string TestPlayer::create_offer() {
  GstPromise *p = gst_promise_new();
  g_signal_emit_by_name(webrtc_, "create-offer", nullptr, p);
  GstStructure *reply = wait_promise(p);
  gst_promise_unref(p);
  if (!reply) return "";
  GstWebRTCSessionDescription *offer = nullptr;
  gst_structure_get(reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, nullptr);
  gst_structure_free(reply);
  if (!offer) return "";
  p = gst_promise_new();
  g_signal_emit_by_name(webrtc_, "set-local-description", offer, p);
  gst_promise_wait(p);
  gst_promise_unref(p);
  gst_webrtc_session_description_free(offer);
  return with_own_fingerprint(webrtc_, local_description_with_candidates(5000));
}

static bool set_remote(GstElement *webrtc, GstWebRTCSDPType type, const std::string &sdp) {
  GstSDPMessage *msg = nullptr;
  if (gst_sdp_message_new_from_text(sdp.c_str(), &msg) != GST_SDP_OK) return false;
  GstWebRTCSessionDescription *desc = gst_webrtc_session_description_new(type, msg);
  GstPromise *p = gst_promise_new();
  g_signal_emit_by_name(webrtc, "set-remote-description", desc, p);
  GstStructure *reply = wait_promise(p);
  gst_promise_unref(p);
  gst_webrtc_session_description_free(desc);
  bool ok = reply && !gst_structure_has_field(reply, "error");
  if (reply) gst_structure_free(reply);
  return ok;
}

bool TestPlayer::set_remote_answer(const std::string &sdp) {
  return set_remote(webrtc_, GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
}

std::string TestPlayer::answer_remote_offer(const std::string &sdp) {
  if (!set_remote(webrtc_, GST_WEBRTC_SDP_TYPE_OFFER, sdp)) return "";
  GstPromise *p = gst_promise_new();
  g_signal_emit_by_name(webrtc_, "create-answer", nullptr, p);
  GstStructure *reply = wait_promise(p);
  gst_promise_unref(p);
  if (!reply) return "";
  GstWebRTCSessionDescription *answer = nullptr;
  gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer, nullptr);
  gst_structure_free(reply);
  if (!answer) return "";
  p = gst_promise_new();
  g_signal_emit_by_name(webrtc_, "set-local-description", answer, p);
  gst_promise_wait(p);
  gst_promise_unref(p);
  gst_webrtc_session_description_free(answer);
  return local_description_with_candidates(5000);
}

bool TestPlayer::wait_video_frames(guint64 count, int timeout_ms) {
  return wait_until(timeout_ms, [&] { return video_frames_ >= count; });
}

bool TestPlayer::wait_audio_buffers(guint64 count, int timeout_ms) {
  return wait_until(timeout_ms, [&] { return audio_buffers_ >= count; });
}

TestPlayer::Rgb TestPlayer::center_color() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return center_;
}

bool TestPlayer::wait_color(int timeout_ms, bool (*pred)(const Rgb &)) {
  return wait_until(timeout_ms, [&] { return pred(center_color()); });
}

TestPlayer::Rgb TestPlayer::color_at(size_t i) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return i < at_.size() ? at_[i] : Rgb{};
}

double TestPlayer::tone_level(double frequency) const {
  std::vector<gint16> samples;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (audio_.size() < 24000) return -1;
    samples.assign(audio_.end() - 24000, audio_.end());
  }
  double coeff = 2 * std::cos(2 * M_PI * frequency / 48000), s1 = 0, s2 = 0;
  for (gint16 x : samples) {
    double s0 = x / 32768.0 + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  double power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return 2 * std::sqrt(std::max(power, 0.0)) / samples.size();
}

std::vector<unsigned> TestPlayer::video_ssrcs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return ssrcs_;
}

std::string TestPlayer::depayloaders() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return video_caps_;
}

bool TestPlayer::restart_ice(std::string *ufrag, std::string *pwd, std::vector<std::string> *candidates) {
  wish::LocalIce local;
  std::string error;
  // Remote credentials are set later with apply_remote_ice; pass placeholders now.
  if (!wish::restart_ice(webrtc_, "placeholder", "placeholderplaceholder00", {}, &local, &error)) {
    g_printerr("player ICE restart failed: %s\n", error.c_str());
    return false;
  }
  *ufrag = local.ufrag;
  *pwd = local.pwd;
  *candidates = local.candidates;
  return true;
}

bool TestPlayer::apply_remote_ice(const std::string &ufrag, const std::string &pwd,
                                  const std::vector<std::string> &candidates) {
  return wish::set_remote_ice(webrtc_, ufrag, pwd, candidates);
}

std::string TestPlayer::ice_connection_state() const {
  GstWebRTCICEConnectionState st;
  g_object_get(webrtc_, "ice-connection-state", &st, nullptr);
  const char *names[] = {"new", "checking", "connected", "completed", "failed", "disconnected", "closed"};
  return st <= GST_WEBRTC_ICE_CONNECTION_STATE_CLOSED ? names[st] : "unknown";
}

}  // namespace wish_test
