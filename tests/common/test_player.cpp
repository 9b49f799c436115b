#include "test_player.h"

#include <gst/webrtc/webrtc.h>

#include "protocol/sdp.h"
#include "teardown.h"
#include "webrtc_utils.h"

namespace wish_test {

static bool wait_until(int timeout_ms, const std::function<bool()> &cond) {
  gint64 end = g_get_monotonic_time() + static_cast<gint64>(timeout_ms) * 1000;
  while (g_get_monotonic_time() < end) {
    if (cond()) return true;
    g_usleep(10 * 1000);
  }
  return cond();
}

TestPlayer::TestPlayer(const PlayerOptions &opts) {
  pipeline_ = gst_pipeline_new("player");
  stop_at_teardown(pipeline_);
  webrtc_ = gst_element_factory_make("webrtcbin", "player_webrtc");
  gst_bin_add(GST_BIN(pipeline_), webrtc_);
  std::string error;
  wish::configure_webrtcbin(webrtc_, {"127.0.0.1"}, "", {}, &error);
  g_signal_connect(webrtc_, "on-ice-candidate", G_CALLBACK(+[](GstElement *, guint, gchar *c, TestPlayer *self) {
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
    }
    GstCaps *vc = gst_caps_from_string(caps.c_str());
    GstWebRTCRTPTransceiver *t = nullptr;
    g_signal_emit_by_name(webrtc_, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, vc, &t);
    gst_caps_unref(vc);
    if (t) gst_object_unref(t);
  }
  if (opts.audio) {
    GstCaps *ac = gst_caps_from_string(
        "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,encoding-params=(string)2");
    GstWebRTCRTPTransceiver *t = nullptr;
    g_signal_emit_by_name(webrtc_, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, ac, &t);
    gst_caps_unref(ac);
    if (t) gst_object_unref(t);
  }
  gst_element_set_state(pipeline_, GST_STATE_PLAYING);
}

TestPlayer::~TestPlayer() {
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  gst_object_unref(pipeline_);
}

void TestPlayer::on_pad_added(GstElement *, GstPad *pad, TestPlayer *self) {
  if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
  GstElement *decodebin = gst_element_factory_make("decodebin", nullptr);
  g_signal_connect(decodebin, "pad-added", G_CALLBACK(&TestPlayer::on_decoded_pad), self);
  g_signal_connect(decodebin, "deep-element-added", G_CALLBACK(+[](GstBin *, GstBin *, GstElement *e, TestPlayer *self) {
                     // Remember which depayloader/decoder got the video, for codec assertions.
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
  GstCaps *caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, nullptr);
  bool video = g_str_has_prefix(gst_structure_get_name(gst_caps_get_structure(caps, 0)), "video");
  gst_caps_unref(caps);
  GstElement *sink = gst_element_factory_make("fakesink", nullptr);
  g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
  gst_bin_add(GST_BIN(self->pipeline_), sink);
  gst_element_sync_state_with_parent(sink);
  GstPad *sinkpad = gst_element_get_static_pad(sink, "sink");
  gst_pad_link(pad, sinkpad);
  gst_pad_add_probe(sinkpad, GST_PAD_PROBE_TYPE_BUFFER,
                    video ? +[](GstPad *, GstPadProbeInfo *, gpointer d) {
                      static_cast<TestPlayer *>(d)->video_frames_++;
                      return GST_PAD_PROBE_OK;
                    }
                          : +[](GstPad *, GstPadProbeInfo *, gpointer d) {
                              static_cast<TestPlayer *>(d)->audio_buffers_++;
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
  return local_description_with_candidates(5000);
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
