/**
 * SECTION:element-whipserversrc
 * @title: whipserversrc
 *
 * Takes WHIP publishers (RFC 9725) on `path` and exposes what they send as sometimes pads
 * `video_%u` / `audio_%u`: decoded by default, encoded or RTP when downstream asks. One
 * publisher at a time; the pads stay when it leaves and the next one continues on them.
 *
 * |[
 * gst-launch-1.0 whipserversrc name=in whepserversink name=out \
 *   in.video_0 ! queue ! out.video_0  in.audio_0 ! queue ! out.audio_0
 * ]|
 * relays WHIP ingest to WHEP viewers without decoding or re-encoding.
 */
#include "whipserversrc.h"

#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gst_utils.h"
#include "loop_thread.h"
#include "media_outputs.h"
#include "protocol/endpoint.h"
#include "protocol/sdp.h"
#include "server_host.h"
#include "webrtc_utils.h"

GST_DEBUG_CATEGORY_STATIC(whipserversrc_debug);
#define GST_CAT_DEFAULT whipserversrc_debug

namespace wish {

namespace {

constexpr guint kGatherTimeoutMs = 3000;

struct Settings {
  Settings() { http.path = "/whip"; }
  HttpSettings http;
  gboolean takeover = FALSE;
  guint latency = 50;
  guint publisher_timeout = 5;  // seconds without a packet before a publisher counts as gone
  gboolean eos_on_leave = FALSE;
};

// Codecs a publisher may send: what the pads can hand out (RTP, parsed or decoded).
bool receivable(const RtpMap &r) {
  if (r.encoding == "H264") return fmtp_param(r.fmtp, "packetization-mode") == "1";
  return r.encoding == "VP8" || r.encoding == "VP9" || r.encoding == "OPUS";
}

// The publisher's first receivable format on an m-line, as webrtcbin codec preferences that
// keep its payload type and fmtp, so the answer names exactly that codec.
GstCaps *preferred_caps(const MediaSection &m) {
  for (int pt : m.formats) {
    auto it = m.rtpmap.find(pt);
    if (it == m.rtpmap.end() || !receivable(it->second)) continue;
    const RtpMap &r = it->second;
    GstStructure *s = gst_structure_new("application/x-rtp", "media", G_TYPE_STRING, m.kind.c_str(), "encoding-name",
                                        G_TYPE_STRING, r.encoding.c_str(), "payload", G_TYPE_INT, pt, "clock-rate",
                                        G_TYPE_INT, static_cast<gint>(r.clock_rate), nullptr);
    if (r.channels) gst_structure_set(s, "encoding-params", G_TYPE_STRING, std::to_string(r.channels).c_str(), nullptr);
    for (const char *key : {"packetization-mode", "profile-level-id", "profile-id", "sprop-stereo", "stereo"}) {
      std::string v = fmtp_param(r.fmtp, key);
      if (!v.empty()) gst_structure_set(s, key, G_TYPE_STRING, v.c_str(), nullptr);
    }
    GstCaps *caps = gst_caps_new_empty();
    gst_caps_append_structure(caps, s);
    return caps;
  }
  return nullptr;
}

struct Publisher {
  std::string id;
  GstElement *webrtc = nullptr;
  MediaCallback pending;
  std::string local_sdp;
  std::vector<std::string> candidates;
  bool sdp_ready = false, gathering_done = false, connected = false, watching = false;
  guint gather_timeout = 0;
  std::shared_ptr<std::atomic<gint64>> last_rx = std::make_shared<std::atomic<gint64>>(0);
  std::vector<gulong> handlers;
};

}  // namespace

class WhipServer : public MediaBackend {
public:
  explicit WhipServer(GstWhipServerSrc *element) : element_(element) {}
  ~WhipServer() override { stop(); }

  Settings settings;  // guarded by the element's object lock

  bool start();
  void stop();
  void set_running(bool running) { running_ = running; }
  ServerHost &host() { return host_; }
  guint current_port() const { return host_.port(); }
  GstStructure *stats();

  // MediaBackend, all but admission and can_answer completing on the worker thread.
  unsigned admission_status() override;
  bool can_answer(const SessionDescription &offer) override;
  void answer_offer(const std::string &id, const std::string &offer, const SessionDescription &parsed,
                    MediaCallback done) override;
  void make_offer(const std::string &, MediaCallback done) override {
    done(MediaResult::failure(422, "WHIP has no counter-offers"));
  }
  void apply_answer(const std::string &, const std::string &, const SessionDescription &, MediaCallback done) override {
    done(MediaResult::failure(422, "WHIP has no counter-offers"));
  }
  void add_candidates(const std::string &id, const SdpFrag &frag) override;
  void restart_ice(const std::string &id, const SdpFrag &frag, MediaCallback done) override;
  void close(const std::string &id) override;

private:
  Settings snapshot();
  void on_local_description(const std::string &id, const std::string &sdp);
  void maybe_complete(const std::string &id);
  void on_connection_state(const std::string &id);
  void check_liveness();
  void teardown(const char *reason);
  Publisher *current(const std::string &id) { return pub_ && pub_->id == id ? pub_.get() : nullptr; }

  GstWhipServerSrc *element_;
  ServerHost host_;
  MediaOutputs outputs_{GST_ELEMENT(element_)};
  std::unique_ptr<LoopThread> worker_;
  std::shared_ptr<Dispatcher> dispatch_;
  std::vector<std::string> local_addresses_;
  std::unique_ptr<Publisher> pub_;  // worker thread only
  std::atomic<bool> busy_{false};   // a publisher exists: read by admission on the HTTP thread
  std::atomic<bool> running_{false};
  std::atomic<guint> publishers_{0};
  guint liveness_timer_ = 0;
  std::mutex stats_mutex_;
  std::string stats_session_;
};

}  // namespace wish

struct _GstWhipServerSrc {
  GstBin parent;
  wish::WhipServer *server;
};

G_DEFINE_TYPE(GstWhipServerSrc, gst_whip_server_src, GST_TYPE_BIN);
GST_ELEMENT_REGISTER_DEFINE(whipserversrc, "whipserversrc", GST_RANK_NONE, GST_TYPE_WHIP_SERVER_SRC);


namespace wish {

Settings WhipServer::snapshot() {
  GST_OBJECT_LOCK(element_);
  Settings s = settings;
  GST_OBJECT_UNLOCK(element_);
  return s;
}

bool WhipServer::start() {
  Settings s = snapshot();
  std::string error;
  if (!resolve_local_addresses(s.http.ice_local_addresses, &local_addresses_, &error)) {
    GST_ELEMENT_ERROR(element_, RESOURCE, SETTINGS, ("Invalid ice-local-addresses"), ("%s", error.c_str()));
    return false;
  }
  worker_ = std::make_unique<LoopThread>("whipserver-work");
  dispatch_ = std::make_shared<Dispatcher>(worker_.get());
  EndpointConfig cfg;
  cfg.kind = EndpointKind::Whip;
  cfg.path = s.http.endpoint_path();
  cfg.auth_token = s.http.auth_token;
  cfg.cors_allowed_origins = s.http.cors_allowed_origins;
  cfg.ice_servers = s.http.ice_servers();
  if (!host_.start(GST_ELEMENT(element_), s.http, cfg, this)) return false;
  liveness_timer_ = worker_->add_interval(500, [this] { check_liveness(); });
  return true;
}

void WhipServer::stop() {
  host_.stop();
  if (worker_) {
    worker_->invoke_sync([this] {
      worker_->cancel(liveness_timer_);
      liveness_timer_ = 0;
      teardown("stopped");
    });
  }
  if (dispatch_) dispatch_->close();
  worker_.reset();
  outputs_.remove_all();
}

unsigned WhipServer::admission_status() {
  if (!running_) return 503;
  Settings s = snapshot();
  return busy_ && !s.takeover ? 409 : 0;
}

// RFC 9725: one MediaStream, at most one audio and one video track, each in a codec we take.
bool WhipServer::can_answer(const SessionDescription &offer) {
  int audio = 0, video = 0, usable = 0;
  for (const auto &m : offer.media) {
    if (m.rejected() || (m.kind != "audio" && m.kind != "video")) continue;
    (m.kind == "audio" ? audio : video)++;
    GstCaps *caps = preferred_caps(m);
    if (caps) {
      usable++;
      gst_caps_unref(caps);
    }
  }
  return audio <= 1 && video <= 1 && usable > 0;
}

void WhipServer::answer_offer(const std::string &id, const std::string &offer, const SessionDescription &parsed,
                              MediaCallback done) {
  busy_ = true;
  dispatch_->post([this, id, offer, parsed, done = std::move(done)]() mutable {
    if (pub_) {
      GST_INFO_OBJECT(element_, "publisher %s replaced by %s", pub_->id.c_str(), id.c_str());
      host_.endpoint()->session_gone(pub_->id);
      teardown("replaced");
    }
    Settings s = snapshot();
    auto p = std::make_unique<Publisher>();
    p->id = id;
    p->webrtc = gst_element_factory_make("webrtcbin", nullptr);
    std::string error;
    if (!p->webrtc || !configure_webrtcbin(p->webrtc, local_addresses_, s.http.stun_server, s.http.turn_servers, &error)) {
      if (p->webrtc) gst_object_unref(gst_object_ref_sink(p->webrtc));
      busy_ = false;
      done(MediaResult::failure(500, error.empty() ? "webrtcbin is not available" : error));
      return;
    }
    g_object_set(p->webrtc, "latency", s.latency, nullptr);
    // Transceivers that accept exactly the publisher's first usable codec per m-line.
    for (const auto &m : parsed.media) {
      if (m.rejected() || (m.kind != "audio" && m.kind != "video")) continue;
      GstCaps *caps = preferred_caps(m);
      if (!caps) continue;
      GstWebRTCRTPTransceiver *trans = nullptr;
      g_signal_emit_by_name(p->webrtc, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps, &trans);
      if (trans) gst_object_unref(trans);
      gst_caps_unref(caps);
    }
    struct Ctx {
      WhipServer *self;
      std::string id;
      std::shared_ptr<Dispatcher> dispatch;
    };
    auto connect = [&](const char *signal, GCallback cb) {
      p->handlers.push_back(g_signal_connect_data(p->webrtc, signal, cb, new Ctx{this, id, dispatch_},
                                                  [](gpointer d, GClosure *) { delete static_cast<Ctx *>(d); },
                                                  static_cast<GConnectFlags>(0)));
    };
    connect("on-ice-candidate", G_CALLBACK(+[](GstElement *, guint, gchar *cand, gpointer d) {
              auto *c = static_cast<Ctx *>(d);
              std::string candidate = cand ? cand : "";
              if (candidate.rfind("a=", 0) == 0) candidate = candidate.substr(2);
              WhipServer *self = c->self;
              std::string id = c->id;
              c->dispatch->post([self, id, candidate] {
                if (Publisher *p = self->current(id)) p->candidates.push_back(candidate);
              });
            }));
    connect("notify::ice-gathering-state", G_CALLBACK(+[](GstElement *w, GParamSpec *, gpointer d) {
              auto *c = static_cast<Ctx *>(d);
              GstWebRTCICEGatheringState st;
              g_object_get(w, "ice-gathering-state", &st, nullptr);
              if (st != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) return;
              WhipServer *self = c->self;
              std::string id = c->id;
              c->dispatch->post([self, id] {
                if (Publisher *p = self->current(id)) {
                  p->gathering_done = true;
                  self->maybe_complete(id);
                }
              });
            }));
    connect("notify::connection-state", G_CALLBACK(+[](GstElement *, GParamSpec *, gpointer d) {
              auto *c = static_cast<Ctx *>(d);
              WhipServer *self = c->self;
              std::string id = c->id;
              c->dispatch->post([self, id] { self->on_connection_state(id); });
            }));
    connect("pad-added", G_CALLBACK(+[](GstElement *, GstPad *pad, gpointer d) {
              if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
              static_cast<Ctx *>(d)->self->outputs_.attach(pad, stream_kind(pad));
            }));
    gst_bin_add(GST_BIN(element_), p->webrtc);
    gst_element_sync_state_with_parent(p->webrtc);
    p->pending = std::move(done);
    GstElement *webrtc = p->webrtc;
    pub_ = std::move(p);
    {
      std::lock_guard<std::mutex> lock(stats_mutex_);
      stats_session_ = id;
    }
    auto dispatch = dispatch_;
    answer_remote_offer(webrtc, offer, [this, id, dispatch](Negotiated n) {
      dispatch->post([this, id, n] {
        Publisher *p = current(id);
        if (!p) return;
        if (n.ok) {
          on_local_description(id, n.sdp);
          return;
        }
        MediaCallback done = std::move(p->pending);
        p->pending = nullptr;
        teardown("failed");
        if (done) done(MediaResult::failure(n.status, n.error));
      });
    });
  });
}

void WhipServer::on_local_description(const std::string &id, const std::string &sdp) {
  Publisher *p = current(id);
  if (!p) return;
  p->local_sdp = sdp;
  p->sdp_ready = true;
  // A WHIP endpoint answers with all its candidates: wait for gathering, not forever.
  p->gather_timeout = worker_->add_timeout(kGatherTimeoutMs, [this, id] {
    if (Publisher *p = current(id)) {
      p->gather_timeout = 0;
      p->gathering_done = true;
      maybe_complete(id);
    }
  });
  maybe_complete(id);
}

void WhipServer::maybe_complete(const std::string &id) {
  Publisher *p = current(id);
  if (!p || !p->sdp_ready || !p->gathering_done || !p->pending) return;
  worker_->cancel(p->gather_timeout);
  p->gather_timeout = 0;
  MediaCallback done = std::move(p->pending);
  p->pending = nullptr;
  done(MediaResult::success(finish_local_sdp(p->local_sdp, p->candidates)));
}

void WhipServer::on_connection_state(const std::string &id) {
  Publisher *p = current(id);
  if (!p) return;
  GstWebRTCPeerConnectionState pc;
  g_object_get(p->webrtc, "connection-state", &pc, nullptr);
  if (pc == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED && !p->connected) {
    p->connected = true;
    p->watching = true;
    watch_incoming(p->webrtc, p->last_rx);
    publishers_++;
    GST_INFO_OBJECT(element_, "publisher %s connected", id.c_str());
    gst_element_post_message(GST_ELEMENT(element_),
                             gst_message_new_element(GST_OBJECT(element_),
                                                     gst_structure_new("wish-publisher-joined", "session-id",
                                                                       G_TYPE_STRING, id.c_str(), nullptr)));
  } else if (pc == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED || pc == GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED) {
    host_.endpoint()->session_gone(id);
    teardown("connection-lost");
  }
}

// A publisher streams all the time: silence means it vanished without DELETE.
void WhipServer::check_liveness() {
  if (!pub_ || !pub_->watching) return;
  Settings s = snapshot();
  if (g_get_monotonic_time() - pub_->last_rx->load() > static_cast<gint64>(s.publisher_timeout) * G_USEC_PER_SEC) {
    GST_INFO_OBJECT(element_, "nothing from publisher %s for %u s", pub_->id.c_str(), s.publisher_timeout);
    if (host_.endpoint()) host_.endpoint()->session_gone(pub_->id);
    teardown("timeout");
  }
}

void WhipServer::add_candidates(const std::string &id, const SdpFrag &frag) {
  std::vector<std::string> candidates;
  for (const auto &m : frag.media) candidates.insert(candidates.end(), m.candidates.begin(), m.candidates.end());
  if (candidates.empty()) return;
  dispatch_->post([this, id, candidates] {
    if (Publisher *p = current(id)) add_remote_candidates(p->webrtc, candidates);
  });
}

void WhipServer::restart_ice(const std::string &id, const SdpFrag &frag, MediaCallback done) {
  dispatch_->post([this, id, frag, done = std::move(done)] {
    Publisher *p = current(id);
    if (!p) {
      done(MediaResult::failure(404, "no such session"));
      return;
    }
    std::vector<std::string> remote;
    for (const auto &m : frag.media) remote.insert(remote.end(), m.candidates.begin(), m.candidates.end());
    LocalIce local;
    std::string error;
    if (!wish::restart_ice(p->webrtc, frag.ice_ufrag, frag.ice_pwd, remote, &local, &error)) {
      done(MediaResult::failure(422, "ICE restart failed: " + error));
      return;
    }
    SdpFrag answer;
    answer.ice_ufrag = local.ufrag;
    answer.ice_pwd = local.pwd;
    answer.media.push_back({frag.media.empty() ? "0" : frag.media[0].mid, local.candidates, true});
    p->last_rx->store(g_get_monotonic_time());
    done(MediaResult::success(build_sdpfrag(answer)));
  });
}

void WhipServer::close(const std::string &id) {
  if (!dispatch_) return;
  dispatch_->post([this, id] {
    if (current(id)) teardown("closed");
  });
}

// Worker thread: the publisher's webrtcbin goes, the output pads stay for the next one.
void WhipServer::teardown(const char *reason) {
  if (!pub_) return;
  std::unique_ptr<Publisher> p = std::move(pub_);
  busy_ = false;
  worker_->cancel(p->gather_timeout);
  for (gulong h : p->handlers) g_signal_handler_disconnect(p->webrtc, h);
  outputs_.detach_all();
  gst_element_set_locked_state(p->webrtc, TRUE);
  gst_element_set_state(p->webrtc, GST_STATE_NULL);
  gst_bin_remove(GST_BIN(element_), p->webrtc);
  if (p->pending) p->pending(MediaResult::failure(500, "publisher closed while being set up"));
  {
    std::lock_guard<std::mutex> lock(stats_mutex_);
    stats_session_.clear();
  }
  GST_INFO_OBJECT(element_, "publisher %s left (%s)", p->id.c_str(), reason);
  if (p->connected) {
    gst_element_post_message(GST_ELEMENT(element_),
                             gst_message_new_element(GST_OBJECT(element_),
                                                     gst_structure_new("wish-publisher-left", "session-id",
                                                                       G_TYPE_STRING, p->id.c_str(), "reason",
                                                                       G_TYPE_STRING, reason, nullptr)));
    if (snapshot().eos_on_leave) outputs_.push_eos();
  }
}

GstStructure *WhipServer::stats() {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  return gst_structure_new("application/x-whipserversrc-stats", "publishing", G_TYPE_BOOLEAN,
                           static_cast<gboolean>(!stats_session_.empty()), "session-id", G_TYPE_STRING,
                           stats_session_.c_str(), "publishers", G_TYPE_UINT, publishers_.load(), "buffers-out",
                           G_TYPE_UINT64, outputs_.buffers(), nullptr);
}

}  // namespace wish

// ---------------------------------------------------------------------------------------
// GObject glue

enum {
  PROP_TAKEOVER = wish::SERVER_PROP_LAST,
  PROP_LATENCY,
  PROP_PUBLISHER_TIMEOUT,
  PROP_EOS_ON_LEAVE,
  PROP_STATS,
};

static void gst_whip_server_src_init(GstWhipServerSrc *self) {
  self->server = new wish::WhipServer(self);
  wish::mark_live_source(GST_BIN(self));
}

static void gst_whip_server_src_finalize(GObject *object) {
  delete GST_WHIP_SERVER_SRC(object)->server;
  G_OBJECT_CLASS(gst_whip_server_src_parent_class)->finalize(object);
}

static void gst_whip_server_src_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec) {
  auto *self = GST_WHIP_SERVER_SRC(object);
  wish::Settings &s = self->server->settings;
  GST_OBJECT_LOCK(self);
  if (!wish::set_server_property(s.http, prop_id, value)) {
    switch (prop_id) {
      case PROP_TAKEOVER: s.takeover = g_value_get_boolean(value); break;
      case PROP_LATENCY: s.latency = g_value_get_uint(value); break;
      case PROP_PUBLISHER_TIMEOUT: s.publisher_timeout = g_value_get_uint(value); break;
      case PROP_EOS_ON_LEAVE: s.eos_on_leave = g_value_get_boolean(value); break;
      default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_whip_server_src_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  auto *self = GST_WHIP_SERVER_SRC(object);
  if (prop_id == wish::SERVER_PROP_CURRENT_PORT) {
    g_value_set_uint(value, self->server->current_port());
    return;
  }
  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, self->server->stats());
    return;
  }
  const wish::Settings &s = self->server->settings;
  GST_OBJECT_LOCK(self);
  if (!wish::get_server_property(s.http, prop_id, value)) {
    switch (prop_id) {
      case PROP_TAKEOVER: g_value_set_boolean(value, s.takeover); break;
      case PROP_LATENCY: g_value_set_uint(value, s.latency); break;
      case PROP_PUBLISHER_TIMEOUT: g_value_set_uint(value, s.publisher_timeout); break;
      case PROP_EOS_ON_LEAVE: g_value_set_boolean(value, s.eos_on_leave); break;
      default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
  }
  GST_OBJECT_UNLOCK(self);
}

static GstStateChangeReturn gst_whip_server_src_change_state(GstElement *element, GstStateChange transition) {
  auto *self = GST_WHIP_SERVER_SRC(element);
  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (!self->server->start()) {
        self->server->stop();
        return GST_STATE_CHANGE_FAILURE;
      }
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      self->server->set_running(true);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      self->server->set_running(false);
      break;
    default:
      break;
  }
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(gst_whip_server_src_parent_class)->change_state(element, transition);
  if (transition == GST_STATE_CHANGE_READY_TO_NULL) self->server->stop();
  return wish::live_source_result(transition, ret);
}

static void gst_whip_server_src_post(GstElement *self, GstStructure *request, GstPromise *promise) {
  GST_WHIP_SERVER_SRC(self)->server->host().handle_signal("POST", request, promise);
}
static void gst_whip_server_src_patch(GstElement *self, GstStructure *request, GstPromise *promise) {
  GST_WHIP_SERVER_SRC(self)->server->host().handle_signal("PATCH", request, promise);
}
static void gst_whip_server_src_delete(GstElement *self, GstStructure *request, GstPromise *promise) {
  GST_WHIP_SERVER_SRC(self)->server->host().handle_signal("DELETE", request, promise);
}

static void gst_whip_server_src_class_init(GstWhipServerSrcClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GST_DEBUG_CATEGORY_INIT(whipserversrc_debug, "whipserversrc", 0, "WHIP server source");
  gobject_class->finalize = gst_whip_server_src_finalize;
  gobject_class->set_property = gst_whip_server_src_set_property;
  gobject_class->get_property = gst_whip_server_src_get_property;
  element_class->change_state = gst_whip_server_src_change_state;

  wish::install_server_properties(gobject_class, "WHIP", "/whip");
  auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(gobject_class, PROP_TAKEOVER,
      g_param_spec_boolean("takeover", "Takeover",
                           "A new publisher replaces the current one instead of getting 409 Conflict", FALSE,
                           static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(gobject_class, PROP_LATENCY,
      g_param_spec_uint("latency", "Latency", "Jitterbuffer size in ms", 0, 10000, 50, flags));
  g_object_class_install_property(gobject_class, PROP_PUBLISHER_TIMEOUT,
      g_param_spec_uint("publisher-timeout", "Publisher timeout",
                        "Seconds without any packet before a publisher that did not DELETE counts as gone", 1, 3600, 5,
                        static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(gobject_class, PROP_EOS_ON_LEAVE,
      g_param_spec_boolean("eos-on-leave", "EOS on leave",
                           "Push EOS on the output pads when the publisher leaves (default: pads and pipeline stay "
                           "up for the next publisher)",
                           FALSE, static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(gobject_class, PROP_STATS,
      g_param_spec_boxed("stats", "Statistics", "publishing, session-id, publishers (count so far) and buffers-out",
                         GST_TYPE_STRUCTURE, static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
  wish::install_server_signals(gobject_class, "WHIP", gst_whip_server_src_post, gst_whip_server_src_patch,
                               gst_whip_server_src_delete);

  wish::MediaOutputs::add_pad_templates(element_class);
  gst_element_class_set_static_metadata(
      element_class, "WHIP server source", "Source/Network/WebRTC",
      "Takes WHIP publishers (RFC 9725): decoded by default, encoded or RTP when downstream asks; posts "
      "wish-publisher-joined and wish-publisher-left element messages",
      "wish project");
}
