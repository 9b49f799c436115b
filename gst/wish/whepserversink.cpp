/**
 * SECTION:element-whepserversink
 * @title: whepserversink
 *
 * Serves the pipeline's audio and video to any number of WHEP players
 * (draft-ietf-wish-whep-03) over HTTP(S). Raw input is encoded once (H.264 constrained
 * baseline or VP8, Opus); encoded input is sent as is. Each viewer gets its own webrtcbin fed
 * from a shared, already payloaded stream through a leaky queue.
 *
 * |[
 * gst-launch-1.0 whepserversink name=s port=8889 \
 *   videotestsrc is-live=true ! s. audiotestsrc is-live=true ! s.
 * ]|
 * and open http://localhost:8889/whep in a browser.
 */
#include "whepserversink.h"

#include <gst/rtp/rtp.h>
#include <gst/sdp/sdp.h>
#include <gst/video/video.h>
#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gst_utils.h"
#include "gstptr.h"
#include "http_server.h"
#include "send_chain.h"
#include "server_host.h"
#include "loop_thread.h"
#include "player_page.h"
#include "protocol/endpoint.h"
#include "protocol/sdpfrag.h"
#include "webrtc_utils.h"

GST_DEBUG_CATEGORY_STATIC(whepserversink_debug);
#define GST_CAT_DEFAULT whepserversink_debug

namespace wish {
class WhepServer;
namespace {

constexpr gint64 kKeyframeThrottleUs = 200 * 1000;
constexpr gint64 kInputGraceUs = 3 * G_USEC_PER_SEC;  // how long viewers wait for a late input
constexpr guint kGatherTimeoutMs = 3000;

struct Settings {
  Settings() { http.path = "/whep"; }
  HttpSettings http;
  guint max_viewers = 0;
  GstWishCounterOffer counter_offer = GST_WISH_COUNTER_OFFER_WHEN_NEEDED;
  EncoderSettings encoder;
  guint viewer_timeout = 10;  // seconds without a packet from a connected viewer
};

// One sink pad: entry queue, encoder/parser/payloader chain, tee fanning out to viewers.
struct Input {
  WhepServer *server = nullptr;
  std::string kind;  // "video" / "audio"
  GstPad *ghost = nullptr;  // owned by the element
  GstElement *entry = nullptr;
  GstElement *tee = nullptr;
  std::vector<GstElement *> chain;
  GPtr<GstCaps> rtp_caps;  // payloader output, guarded by the server lock
  SendCodec codec;
  std::atomic<gint64> last_keyframe_request{0};
  std::atomic<bool> eos{false};

  // entry, chain and tee are also the bin's children; the extra references keep them valid
  // when the bin disposes its children before releasing the request pads.
  ~Input() {
    if (entry) gst_object_unref(entry);
    for (GstElement *e : chain) gst_object_unref(e);
    if (tee) gst_object_unref(tee);
  }
};

// The path from one input's tee to one viewer's webrtcbin.
struct Branch {
  Input *input = nullptr;
  int pt = 0;
  GstPad *tee_pad = nullptr;
  GstElement *queue = nullptr;
  GPtr<GstCaps> caps;  // what webrtcbin is told: negotiated payload type and fmtp
  std::atomic<guint64> packets{0}, bytes{0};
};

struct Viewer {
  std::string id;
  GstElement *webrtc = nullptr;
  std::vector<std::unique_ptr<Branch>> branches;
  std::vector<std::string> local_candidates;
  std::string local_sdp;
  bool sdp_ready = false, gathering_done = false;
  MediaCallback pending;  // creation waiting for candidates
  guint gather_timeout = 0;
  gint64 created_us = 0;
  std::string connection_state = "new";
  bool counted_join = false;
  std::vector<gulong> handler_ids;
  // Time anything last arrived from the viewer (RTCP, DTLS); shared with pad probes.
  std::shared_ptr<std::atomic<gint64>> last_rx = std::make_shared<std::atomic<gint64>>(0);
  bool watching = false;
  bool closing = false;  // being torn down: invisible to find_viewer, still counted in stats
};

}  // namespace

class WhepServer : public MediaBackend {
public:
  explicit WhepServer(GstWhepServerSink *element) : element_(element) {}
  ~WhepServer() override { stop(); }

  Settings settings;  // guarded by the element's object lock

  bool start();
  void stop();
  void close_all_sessions();
  void set_media_running(bool running) { running_ = running; }

  GstPad *request_pad(GstPadTemplate *templ, const gchar *name);
  void release_pad(GstPad *pad);

  ServerHost &host() { return host_; }
  GstStructure *stats();
  guint current_port() const { return host_.port(); }

  // MediaBackend
  unsigned admission_status() override;
  bool can_answer(const SessionDescription &offer) override;
  void answer_offer(const std::string &id, const std::string &offer, const SessionDescription &parsed,
                    MediaCallback done) override;
  void make_offer(const std::string &id, MediaCallback done) override;
  void apply_answer(const std::string &id, const std::string &answer, const SessionDescription &parsed,
                    MediaCallback done) override;
  void add_candidates(const std::string &id, const SdpFrag &frag) override;
  void restart_ice(const std::string &id, const SdpFrag &frag, MediaCallback done) override;
  void close(const std::string &id) override;

private:
  struct SignalData {
    WhepServer *self;
    std::string id;
    std::shared_ptr<Dispatcher> dispatch;  // stays valid after the server stops
  };

  EndpointConfig endpoint_config();
  void on_input_caps(Input *input, GstCaps *caps);
  bool build_chain(Input *input, GstCaps *caps);
  void on_rtp_caps(Input *input, GstCaps *caps);
  void request_keyframe(Input *input);

  std::shared_ptr<Viewer> find_viewer(const std::string &id);
  // A viewer with its webrtcbin, or null after failing `done` with the reason.
  std::shared_ptr<Viewer> create_viewer(const std::string &id, MediaCallback done);
  bool add_branch(Viewer &v, Input *input, int pt, GstCaps *caps, std::string *error);
  void start_viewer(Viewer &v);
  void negotiate_answer(const std::string &id, const std::string &offer);
  void negotiate_offer(const std::string &id);
  void on_local_description(const std::string &id, const std::string &sdp);
  void on_gathering_done(const std::string &id);
  void maybe_complete(const std::string &id);
  void fail_viewer(const std::string &id, unsigned status, const std::string &error);
  void teardown(const std::string &id, const char *reason);
  void on_connection_state(const std::string &id);
  void post_viewer_message(const char *name, const std::string &id, const char *reason);

  static GstPadProbeReturn on_entry_event(GstPad *pad, GstPadProbeInfo *info, gpointer data);
  static GstPadProbeReturn on_payloader_event(GstPad *pad, GstPadProbeInfo *info, gpointer data);
  static GstPadProbeReturn on_keyframe_request(GstPad *pad, GstPadProbeInfo *info, gpointer data);
  static GstPadProbeReturn rewrite_for_viewer(GstPad *pad, GstPadProbeInfo *info, gpointer data);
  static GstPadProbeReturn isolate_branch_caps(GstPad *pad, GstPadProbeInfo *info, gpointer data);
  static GstPadProbeReturn on_input_eos(GstPad *pad, GstPadProbeInfo *info, gpointer data);

  void watch_viewer(Viewer &v);
  void drop_silent_viewers();

public:
  // Children's EOS is not ours: the element is EOS when every input is.
  bool all_inputs_eos();

  GstWhepServerSink *element_;
  std::mutex mutex_;  // guards inputs_' rtp caps and viewers_; never held across GStreamer calls that can block
  std::vector<std::unique_ptr<Input>> inputs_;
  std::map<std::string, std::shared_ptr<Viewer>> viewers_;
  ServerHost host_;
  std::unique_ptr<LoopThread> worker_;  // topology changes and negotiation steps
  std::shared_ptr<Dispatcher> dispatch_;  // how other threads queue work on worker_
  std::vector<std::string> local_addresses_;
  guint expiry_source_ = 0;
  std::atomic<bool> running_{false};
  unsigned pad_counter_[2] = {0, 0};
  gint64 first_media_us_ = 0;  // when the first input had media; guarded by mutex_
};

}  // namespace wish

struct _GstWhepServerSink {
  GstBin parent;
  wish::WhepServer *server;
};

G_DEFINE_TYPE(GstWhepServerSink, gst_whep_server_sink, GST_TYPE_BIN);
GST_ELEMENT_REGISTER_DEFINE(whepserversink, "whepserversink", GST_RANK_NONE, GST_TYPE_WHEP_SERVER_SINK);

namespace wish {

#define SETTINGS_LOCK() GST_OBJECT_LOCK(element_)
#define SETTINGS_UNLOCK() GST_OBJECT_UNLOCK(element_)

EndpointConfig WhepServer::endpoint_config() {
  EndpointConfig cfg;
  SETTINGS_LOCK();
  cfg.kind = EndpointKind::Whep;
  cfg.path = settings.http.endpoint_path();
  cfg.auth_token = settings.http.auth_token;
  cfg.cors_allowed_origins = settings.http.cors_allowed_origins;
  cfg.ice_servers = settings.http.ice_servers();
  cfg.max_sessions = settings.max_viewers;
  cfg.counter_offer = settings.counter_offer == GST_WISH_COUNTER_OFFER_NEVER    ? CounterOfferMode::Never
                      : settings.counter_offer == GST_WISH_COUNTER_OFFER_ALWAYS ? CounterOfferMode::Always
                                                                                : CounterOfferMode::WhenNeeded;
  SETTINGS_UNLOCK();
  cfg.player_page = whep_player_page();
  return cfg;
}

bool WhepServer::start() {
  std::string error;
  SETTINGS_LOCK();
  HttpSettings http = settings.http;
  SETTINGS_UNLOCK();
  if (!resolve_local_addresses(http.ice_local_addresses, &local_addresses_, &error)) {
    GST_ELEMENT_ERROR(element_, RESOURCE, SETTINGS, ("Invalid ice-local-addresses"), ("%s", error.c_str()));
    return false;
  }
  worker_ = std::make_unique<LoopThread>("whepserver-work");
  dispatch_ = std::make_shared<Dispatcher>(worker_.get());
  if (!host_.start(GST_ELEMENT(element_), http, endpoint_config(), this)) return false;

  // Counter-offers nobody answered expire (default validity 30 s); silent viewers go.
  expiry_source_ = worker_->add_interval(1000, [this] {
    for (const auto &id : host_.endpoint()->expire_stale())
      GST_INFO_OBJECT(element_, "counter-offer of session %s expired", id.c_str());
    drop_silent_viewers();
  });
  return true;
}

void WhepServer::close_all_sessions() {
  if (host_.endpoint()) host_.endpoint()->close_all();
  // Sessions still being negotiated are not known to the endpoint as closable yet.
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto &kv : viewers_) ids.push_back(kv.first);
  }
  for (const auto &id : ids) close(id);
  if (worker_) worker_->invoke_sync([] {});  // teardowns queued before this one are done
}

void WhepServer::stop() {
  host_.stop();  // no new requests; every session closed
  close_all_sessions();
  if (dispatch_) dispatch_->close();
  if (worker_ && expiry_source_) {
    worker_->invoke_sync([this] { worker_->cancel(expiry_source_); });
    expiry_source_ = 0;
  }
  worker_.reset();
}

// ---------------------------------------------------------------------------------------
// Inputs

GstPad *WhepServer::request_pad(GstPadTemplate *templ, const gchar *name) {
  auto input = std::make_unique<Input>();
  input->server = this;
  const gchar *tname = GST_PAD_TEMPLATE_NAME_TEMPLATE(templ);
  input->kind = g_str_has_prefix(tname, "video") ? "video" : "audio";
  unsigned &counter = pad_counter_[input->kind == "video" ? 0 : 1];
  std::string pad_name;
  if (name) {
    pad_name = name;
  } else {
    pad_name = input->kind + "_" + std::to_string(counter);
  }
  counter++;
  if (gst_element_get_static_pad(GST_ELEMENT(element_), pad_name.c_str())) {
    GST_WARNING_OBJECT(element_, "pad %s exists already", pad_name.c_str());
    return nullptr;
  }

  input->entry = gst_element_factory_make("queue", (pad_name + "_queue").c_str());
  g_object_set(input->entry, "max-size-buffers", 0, "max-size-bytes", 0, "max-size-time",
               (guint64)(2 * GST_SECOND), nullptr);
  gst_bin_add(GST_BIN(element_), GST_ELEMENT(gst_object_ref(input->entry)));
  GPtr<GstPad> target = GPtr<GstPad>::adopt(gst_element_get_static_pad(input->entry, "sink"));
  GstPad *ghost = gst_ghost_pad_new_from_template(pad_name.c_str(), target.get(), templ);
  input->ghost = ghost;
  gst_pad_add_probe(target.get(),
                    static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM | GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM),
                    &WhepServer::on_entry_event, input.get(), nullptr);
  gst_element_sync_state_with_parent(input->entry);
  gst_pad_set_active(ghost, TRUE);
  gst_element_add_pad(GST_ELEMENT(element_), ghost);
  GST_DEBUG_OBJECT(element_, "new input pad %s", pad_name.c_str());
  std::lock_guard<std::mutex> lock(mutex_);
  inputs_.push_back(std::move(input));
  return ghost;
}

void WhepServer::release_pad(GstPad *pad) {
  std::unique_ptr<Input> input;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = inputs_.begin(); it != inputs_.end(); ++it) {
      if ((*it)->ghost == pad) {
        input = std::move(*it);
        inputs_.erase(it);
        break;
      }
    }
  }
  if (!input) return;
  // Viewers fed by this input lose that stream; end their sessions rather than leave a
  // dangling branch.
  std::vector<std::string> affected;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto &kv : viewers_)
      for (auto &b : kv.second->branches)
        if (b->input == input.get()) affected.push_back(kv.first);
  }
  for (auto &id : affected) {
    if (host_.endpoint()) host_.endpoint()->session_gone(id);
    worker_->invoke_sync([this, id] { teardown(id, "input-removed"); });
  }
  gst_element_remove_pad(GST_ELEMENT(element_), pad);
  std::vector<GstElement *> elements = input->chain;
  elements.insert(elements.begin(), input->entry);
  if (input->tee) elements.push_back(input->tee);
  for (GstElement *e : elements) {
    if (GST_OBJECT_PARENT(e) != GST_OBJECT(element_)) continue;  // the bin is being disposed
    gst_element_set_state(e, GST_STATE_NULL);
    gst_bin_remove(GST_BIN(element_), e);
  }
}

GstPadProbeReturn WhepServer::on_entry_event(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  auto *input = static_cast<Input *>(data);
  if (info->type & GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM) {
    GstQuery *query = GST_PAD_PROBE_INFO_QUERY(info);
    if (GST_QUERY_TYPE(query) != GST_QUERY_CAPS || input->tee) return GST_PAD_PROBE_OK;
    answer_input_caps_query(query, input->kind);  // until the chain exists nothing downstream answers
    return GST_PAD_PROBE_HANDLED;
  }
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
    input->eos = true;
    if (input->server->all_inputs_eos()) {
      GST_INFO_OBJECT(input->server->element_, "all inputs are EOS");
      gst_element_post_message(GST_ELEMENT(input->server->element_),
                               gst_message_new_eos(GST_OBJECT(input->server->element_)));
    }
    return GST_PAD_PROBE_OK;
  }
  if (GST_EVENT_TYPE(event) == GST_EVENT_FLUSH_STOP || GST_EVENT_TYPE(event) == GST_EVENT_STREAM_START) {
    input->eos = false;
    return GST_PAD_PROBE_OK;
  }
  if (GST_EVENT_TYPE(event) != GST_EVENT_CAPS) return GST_PAD_PROBE_OK;
  GstCaps *caps;
  gst_event_parse_caps(event, &caps);
  if (!input->tee) {
    if (!input->server->build_chain(input, caps)) return GST_PAD_PROBE_DROP;
  }
  return GST_PAD_PROBE_OK;
}

// Builds entry -> [convert/encode/parse] -> payloader -> tee for the first caps seen.
bool WhepServer::build_chain(Input *input, GstCaps *caps) {
  SETTINGS_LOCK();
  EncoderSettings enc = settings.encoder;
  SETTINGS_UNLOCK();
  std::vector<GstElement *> chain;
  std::string summary, detail;
  if (!make_send_chain(caps, enc, &chain, &summary, &detail)) {
    GST_ELEMENT_ERROR(element_, STREAM, FORMAT, ("%s", summary.c_str()), ("%s", detail.c_str()));
    return false;
  }

  GstElement *tee = gst_element_factory_make("tee", nullptr);
  g_object_set(tee, "allow-not-linked", TRUE, nullptr);
  chain.push_back(tee);
  for (GstElement *e : chain) gst_bin_add(GST_BIN(element_), e);
  GstElement *prev = input->entry;
  for (GstElement *e : chain) {
    if (!gst_element_link(prev, e)) {
      GST_ELEMENT_ERROR(element_, CORE, NEGOTIATION, ("Cannot link the %s chain", input->kind.c_str()),
                        ("%s ! %s failed", GST_OBJECT_NAME(prev), GST_OBJECT_NAME(e)));
      return false;
    }
    prev = e;
  }
  GPtr<GstPad> tee_sink = GPtr<GstPad>::adopt(gst_element_get_static_pad(tee, "sink"));
  gst_pad_add_probe(tee_sink.get(), GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, &WhepServer::on_payloader_event,
                    input, nullptr);
  gst_pad_add_probe(tee_sink.get(), GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, &WhepServer::on_keyframe_request,
                    input, nullptr);
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) gst_element_sync_state_with_parent(*it);
  chain.pop_back();
  for (GstElement *e : chain) gst_object_ref(e);
  input->chain = chain;
  input->tee = GST_ELEMENT(gst_object_ref(tee));
  GST_INFO_OBJECT(element_, "%s input %s: %" GST_PTR_FORMAT, input->kind.c_str(),
                  GST_PAD_NAME(input->ghost), caps);
  return true;
}

GstPadProbeReturn WhepServer::on_payloader_event(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
  if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
    GstCaps *caps;
    gst_event_parse_caps(event, &caps);
    auto *input = static_cast<Input *>(data);
    input->server->on_rtp_caps(input, caps);
  }
  return GST_PAD_PROBE_OK;
}

void WhepServer::on_rtp_caps(Input *input, GstCaps *caps) {
  const GstStructure *s = gst_caps_get_structure(caps, 0);
  SendCodec codec;
  codec.kind = input->kind;
  const gchar *enc = gst_structure_get_string(s, "encoding-name");
  codec.encoding = enc ? enc : "";
  for (auto &c : codec.encoding) c = static_cast<char>(g_ascii_toupper(c));
  gint rate = 0;
  gst_structure_get_int(s, "clock-rate", &rate);
  codec.clock_rate = static_cast<unsigned>(rate);
  const gchar *plid = gst_structure_get_string(s, "profile-level-id");
  codec.h264_profile_level_id = plid ? plid : "";
  GST_DEBUG_OBJECT(element_, "%s sends %s/%u %s", input->kind.c_str(), codec.encoding.c_str(),
                   codec.clock_rate, codec.h264_profile_level_id.c_str());
  std::lock_guard<std::mutex> lock(mutex_);
  if (!first_media_us_) first_media_us_ = g_get_monotonic_time();
  input->rtp_caps = GPtr<GstCaps>::ref(caps);
  input->codec = codec;
}

// Many viewers asking for a keyframe within a few frames get one keyframe.
GstPadProbeReturn WhepServer::on_keyframe_request(GstPad *, GstPadProbeInfo *info, gpointer data) {
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
  if (!gst_video_event_is_force_key_unit(event)) return GST_PAD_PROBE_OK;
  auto *input = static_cast<Input *>(data);
  gint64 now = g_get_monotonic_time();
  gint64 last = input->last_keyframe_request.load();
  if (now - last < kKeyframeThrottleUs) return GST_PAD_PROBE_DROP;
  input->last_keyframe_request = now;
  return GST_PAD_PROBE_OK;
}

void WhepServer::request_keyframe(Input *input) {
  if (input->kind != "video" || !input->tee) return;
  // A viewer that just connected must get its keyframe even if another one was requested a
  // moment ago, possibly before this viewer's DTLS was up: past the throttle, which then
  // counts it like any other.
  input->last_keyframe_request = g_get_monotonic_time();
  GstPad *peer = nullptr;
  {
    GPtr<GstPad> sink = GPtr<GstPad>::adopt(gst_element_get_static_pad(input->tee, "sink"));
    peer = gst_pad_get_peer(sink.get());
  }
  if (!peer) return;
  gst_pad_send_event(peer, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
  gst_object_unref(peer);
}

// ---------------------------------------------------------------------------------------
// Sessions

// Viewers are taken once every input has media, so nobody gets a video-only answer because
// the audio started a moment later; an input still silent after a grace period is left out.
unsigned WhepServer::admission_status() {
  if (!running_) return 503;
  std::lock_guard<std::mutex> lock(mutex_);
  size_t ready = 0;
  for (const auto &in : inputs_)
    if (in->rtp_caps) ready++;
  if (ready == 0) return 409;
  if (ready == inputs_.size()) return 0;
  return g_get_monotonic_time() - first_media_us_ > kInputGraceUs ? 0 : 409;
}

bool WhepServer::all_inputs_eos() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto &in : inputs_)
    if (!in->eos) return false;
  return !inputs_.empty();
}

bool WhepServer::can_answer(const SessionDescription &offer) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto &m : offer.media) {
    if (m.direction != Direction::RecvOnly && m.direction != Direction::SendRecv) continue;
    for (const auto &in : inputs_)
      if (in->rtp_caps && match_codec(m, in->codec)) return true;
  }
  return false;
}

std::shared_ptr<Viewer> WhepServer::find_viewer(const std::string &id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = viewers_.find(id);
  return it == viewers_.end() || it->second->closing ? nullptr : it->second;
}

std::shared_ptr<Viewer> WhepServer::create_viewer(const std::string &id, MediaCallback done) {
  std::string why;
  std::string *error = &why;
  auto fail_with = [&]() -> std::shared_ptr<Viewer> {
    done(MediaResult::failure(500, why));
    return nullptr;
  };
  SETTINGS_LOCK();
  std::string stun = settings.http.stun_server;
  std::vector<std::string> turn = settings.http.turn_servers;
  SETTINGS_UNLOCK();
  auto v = std::make_shared<Viewer>();
  v->id = id;
  v->created_us = g_get_real_time();
  v->webrtc = gst_element_factory_make("webrtcbin", ("viewer_" + id.substr(0, 8)).c_str());
  if (!v->webrtc) {
    why = "webrtcbin is not available";
    return fail_with();
  }
  gst_object_ref_sink(v->webrtc);
  if (!configure_webrtcbin(v->webrtc, local_addresses_, stun, turn, error)) {
    gst_object_unref(v->webrtc);
    return fail_with();
  }
  v->pending = std::move(done);
  auto connect = [&](const char *signal, GCallback cb) {
    v->handler_ids.push_back(g_signal_connect_data(v->webrtc, signal, cb, new SignalData{this, id, dispatch_},
                          [](gpointer d, GClosure *) { delete static_cast<SignalData *>(d); },
                          static_cast<GConnectFlags>(0)));
  };
  connect("on-ice-candidate", G_CALLBACK(+[](GstElement *, guint, gchar *candidate, gpointer d) {
            auto *sd = static_cast<SignalData *>(d);
            std::lock_guard<std::mutex> lock(sd->self->mutex_);
            auto it = sd->self->viewers_.find(sd->id);
            if (it != sd->self->viewers_.end() && candidate && *candidate) {
              std::string c = candidate;
              if (c.rfind("a=", 0) == 0) c = c.substr(2);
              it->second->local_candidates.push_back(c);
            }
          }));
  connect("notify::ice-gathering-state", G_CALLBACK(+[](GstElement *webrtc, GParamSpec *, gpointer d) {
            auto *sd = static_cast<SignalData *>(d);
            GstWebRTCICEGatheringState state;
            g_object_get(webrtc, "ice-gathering-state", &state, nullptr);
            if (state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) {
              WhepServer *self = sd->self;
              std::string id = sd->id;
              sd->dispatch->post([self, id] { self->on_gathering_done(id); });
            }
          }));
  connect("notify::connection-state", G_CALLBACK(+[](GstElement *, GParamSpec *, gpointer d) {
            auto *sd = static_cast<SignalData *>(d);
            WhepServer *self = sd->self;
            std::string id = sd->id;
            sd->dispatch->post([self, id] { self->on_connection_state(id); });
          }));
  connect("notify::ice-connection-state", G_CALLBACK(+[](GstElement *, GParamSpec *, gpointer d) {
            auto *sd = static_cast<SignalData *>(d);
            WhepServer *self = sd->self;
            std::string id = sd->id;
            sd->dispatch->post([self, id] { self->on_connection_state(id); });
          }));
  std::lock_guard<std::mutex> lock(mutex_);
  viewers_[id] = v;
  return v;
}

// RTP caps webrtcbin is told about for one viewer: the payload type and fmtp the viewer
// offered, so the answer's codec intersection succeeds.
static GstCaps *viewer_caps(GstCaps *rtp_caps, int pt, const RtpMap *offered) {
  const GstStructure *s = gst_caps_get_structure(rtp_caps, 0);
  GstStructure *out = gst_structure_new_empty("application/x-rtp");
  for (const char *field : {"media", "encoding-name", "clock-rate", "encoding-params", "packetization-mode",
                            "profile-level-id", "sprop-stereo", "stereo"}) {
    const GValue *v = gst_structure_get_value(s, field);
    if (v) gst_structure_set_value(out, field, v);
  }
  gst_structure_set(out, "payload", G_TYPE_INT, pt, nullptr);
  const gchar *enc = gst_structure_get_string(s, "encoding-name");
  if (enc && g_ascii_strcasecmp(enc, "OPUS") == 0 && !gst_structure_has_field(out, "encoding-params"))
    gst_structure_set(out, "encoding-params", G_TYPE_STRING, "2", nullptr);
  if (offered && !offered->fmtp.empty()) {
    // Keep the peer's fmtp values so intersection with its offer is exact.
    std::string fmtp = offered->fmtp;
    size_t i = 0;
    while (i < fmtp.size()) {
      size_t end = fmtp.find(';', i);
      if (end == std::string::npos) end = fmtp.size();
      std::string kv = fmtp.substr(i, end - i);
      size_t eq = kv.find('=');
      if (eq != std::string::npos) {
        std::string k = std::string(trim(kv.substr(0, eq))), val = std::string(trim(kv.substr(eq + 1)));
        for (auto &c : k) c = static_cast<char>(g_ascii_tolower(c));
        // webrtcbin adds level-asymmetry-allowed for H.264 itself
        if (!k.empty() && g_ascii_isalpha(k[0]) && k != "level-asymmetry-allowed") gst_structure_set(out, k.c_str(), G_TYPE_STRING, val.c_str(), nullptr);
      }
      i = end + 1;
    }
  }
  GstCaps *caps = gst_caps_new_empty();
  gst_caps_append_structure(caps, out);
  return caps;
}

GstPadProbeReturn WhepServer::isolate_branch_caps(GstPad *, GstPadProbeInfo *info, gpointer) {
  GstQuery *query = GST_PAD_PROBE_INFO_QUERY(info);
  if (GST_QUERY_TYPE(query) == GST_QUERY_CAPS) {
    GstCaps *filter = nullptr;
    gst_query_parse_caps(query, &filter);
    GstCaps *any = gst_caps_new_any();
    gst_query_set_caps_result(query, filter ? filter : any);
    gst_caps_unref(any);
    return GST_PAD_PROBE_HANDLED;
  }
  if (GST_QUERY_TYPE(query) == GST_QUERY_ACCEPT_CAPS) {
    gst_query_set_accept_caps_result(query, TRUE);
    return GST_PAD_PROBE_HANDLED;
  }
  return GST_PAD_PROBE_OK;
}

// Rewrites the shared stream's payload type for this viewer and counts what it gets.
GstPadProbeReturn WhepServer::rewrite_for_viewer(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *b = static_cast<Branch *>(data);
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
      GstCaps *caps;
      gst_event_parse_caps(event, &caps);
      GstCaps *merged = gst_caps_copy(caps);
      GstStructure *ms = gst_caps_get_structure(merged, 0);
      const GstStructure *want = gst_caps_get_structure(b->caps.get(), 0);
      gst_structure_foreach(
          want,
          [](GQuark field, const GValue *value, gpointer s) -> gboolean {
            gst_structure_id_set_value(static_cast<GstStructure *>(s), field, value);
            return TRUE;
          },
          ms);
      GstEvent *replacement = gst_event_new_caps(merged);
      gst_caps_unref(merged);
      gst_event_unref(event);
      GST_PAD_PROBE_INFO_DATA(info) = replacement;
    }
    return GST_PAD_PROBE_OK;
  }
  auto fix = [b](GstBuffer *buf) -> GstBuffer * {
    guint8 byte1;
    if (gst_buffer_extract(buf, 1, &byte1, 1) != 1) return buf;
    b->packets++;
    b->bytes += gst_buffer_get_size(buf);
    if ((byte1 & 0x7f) == b->pt) return buf;
    buf = gst_buffer_make_writable(buf);
    byte1 = static_cast<guint8>((byte1 & 0x80) | (b->pt & 0x7f));
    gst_buffer_fill(buf, 1, &byte1, 1);
    return buf;
  };
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    GST_PAD_PROBE_INFO_DATA(info) = fix(GST_PAD_PROBE_INFO_BUFFER(info));
  } else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
    GstBufferList *list = gst_buffer_list_make_writable(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
    guint n = gst_buffer_list_length(list);
    for (guint i = 0; i < n; i++) {
      GstBuffer *buf = gst_buffer_ref(gst_buffer_list_get(list, i));
      GstBuffer *fixed = fix(buf);
      gst_buffer_list_remove(list, i, 1);
      gst_buffer_list_insert(list, static_cast<gint>(i), fixed);
    }
    GST_PAD_PROBE_INFO_DATA(info) = list;
  }
  return GST_PAD_PROBE_OK;
}

bool WhepServer::add_branch(Viewer &v, Input *input, int pt, GstCaps *caps, std::string *error) {
  auto b = std::make_unique<Branch>();
  b->input = input;
  b->pt = pt;
  b->caps = GPtr<GstCaps>::ref(caps);
  // Pads only link within one bin: the viewer's webrtcbin joins ours first.
  if (!GST_OBJECT_PARENT(v.webrtc)) gst_bin_add(GST_BIN(element_), v.webrtc);
  GST_DEBUG_OBJECT(element_, "viewer %s gets %" GST_PTR_FORMAT, v.id.c_str(), caps);
  GstPadTemplate *templ = gst_element_get_pad_template(v.webrtc, "sink_%u");
  GstPad *sink = gst_element_request_pad(v.webrtc, templ, nullptr, caps);
  if (!sink) {
    *error = "webrtcbin refused a sink pad";
    return false;
  }
  GstWebRTCRTPTransceiver *trans = nullptr;
  g_object_get(sink, "transceiver", &trans, nullptr);
  if (trans) {
    g_object_set(trans, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, "codec-preferences", caps,
                 nullptr);
    gst_object_unref(trans);
  }
  b->queue = gst_element_factory_make("queue", nullptr);
  // A slow or dead viewer loses its oldest packets instead of holding back the others.
  g_object_set(b->queue, "max-size-buffers", 0, "max-size-bytes", 0, "max-size-time", (guint64)(1 * GST_SECOND),
               nullptr);
  gst_util_set_object_arg(G_OBJECT(b->queue), "leaky", "downstream");
  gst_bin_add(GST_BIN(element_), b->queue);
  GPtr<GstPad> qsrc = GPtr<GstPad>::adopt(gst_element_get_static_pad(b->queue, "src"));
  gst_pad_add_probe(qsrc.get(),
                    static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST |
                                                 GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
                    &WhepServer::rewrite_for_viewer, b.get(), nullptr);
  // The viewer's codec choice must not reach the shared payloader through caps queries.
  GPtr<GstPad> qsink = GPtr<GstPad>::adopt(gst_element_get_static_pad(b->queue, "sink"));
  gst_pad_add_probe(qsink.get(), GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM, &WhepServer::isolate_branch_caps, nullptr,
                    nullptr);
  GstPadLinkReturn linked = gst_pad_link(qsrc.get(), sink);
  gst_object_unref(sink);
  v.branches.push_back(std::move(b));
  if (GST_PAD_LINK_FAILED(linked)) {
    *error = std::string("cannot link a viewer branch: ") + gst_pad_link_get_name(linked);
    return false;
  }
  return true;
}

// Adds the viewer's elements to the running bin and links them to the tees.
void WhepServer::start_viewer(Viewer &v) {
  gst_element_sync_state_with_parent(v.webrtc);
  for (auto &b : v.branches) {
    gst_element_sync_state_with_parent(b->queue);
    b->tee_pad = gst_element_request_pad_simple(b->input->tee, "src_%u");
    GPtr<GstPad> qsink = GPtr<GstPad>::adopt(gst_element_get_static_pad(b->queue, "sink"));
    gst_pad_link(b->tee_pad, qsink.get());
  }
}

void WhepServer::answer_offer(const std::string &id, const std::string &offer, const SessionDescription &parsed,
                              MediaCallback done) {
  dispatch_->post([this, id, offer, parsed, done = std::move(done)]() mutable {
    std::string error;
    auto v = create_viewer(id, std::move(done));
    if (!v) return;
    // Pair each m-line the player can receive with an input of that kind, first come first served.
    std::vector<Input *> used;
    std::vector<std::pair<Input *, std::pair<int, GPtr<GstCaps>>>> plan;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto &m : parsed.media) {
        if (m.rejected() || (m.direction != Direction::RecvOnly && m.direction != Direction::SendRecv)) continue;
        for (const auto &in : inputs_) {
          if (!in->rtp_caps || std::find(used.begin(), used.end(), in.get()) != used.end()) continue;
          auto pt = match_codec(m, in->codec);
          if (!pt) continue;
          auto it = m.rtpmap.find(*pt);
          GPtr<GstCaps> caps = GPtr<GstCaps>::adopt(viewer_caps(in->rtp_caps.get(), *pt, it == m.rtpmap.end() ? nullptr : &it->second));
          plan.push_back({in.get(), {*pt, caps}});
          used.push_back(in.get());
          break;
        }
      }
    }
    if (plan.empty()) {
      fail_viewer(id, 422, "no codec in common with the offer");
      return;
    }
    for (auto &p : plan) {
      if (!add_branch(*v, p.first, p.second.first, p.second.second.get(), &error)) {
        fail_viewer(id, 500, error);
        return;
      }
    }
    start_viewer(*v);
    negotiate_answer(id, offer);
  });
}

void WhepServer::negotiate_answer(const std::string &id, const std::string &offer) {
  auto v = find_viewer(id);
  if (!v) return;
  auto dispatch = dispatch_;  // the reply comes on a webrtcbin thread: it only queues work
  answer_remote_offer(v->webrtc, offer, [this, id, dispatch](Negotiated n) {
    dispatch->post([this, id, n] {
      if (n.ok)
        on_local_description(id, n.sdp);
      else
        fail_viewer(id, n.status, n.error);
    });
  });
}

void WhepServer::make_offer(const std::string &id, MediaCallback done) {
  dispatch_->post([this, id, done = std::move(done)]() mutable {
    std::string error;
    auto v = create_viewer(id, std::move(done));
    if (!v) return;
    std::vector<std::pair<Input *, GPtr<GstCaps>>> plan;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto &in : inputs_) {
        if (!in->rtp_caps) continue;
        gint pt = in->kind == "audio" ? 111 : 96;
        gst_structure_get_int(gst_caps_get_structure(in->rtp_caps.get(), 0), "payload", &pt);
        plan.push_back({in.get(), GPtr<GstCaps>::adopt(viewer_caps(in->rtp_caps.get(), pt, nullptr))});
      }
    }
    for (auto &p : plan) {
      gint pt = 0;
      gst_structure_get_int(gst_caps_get_structure(p.second.get(), 0), "payload", &pt);
      if (!add_branch(*v, p.first, pt, p.second.get(), &error)) {
        fail_viewer(id, 500, error);
        return;
      }
    }
    start_viewer(*v);
    negotiate_offer(id);
  });
}

void WhepServer::negotiate_offer(const std::string &id) {
  auto v = find_viewer(id);
  if (!v) return;
  auto dispatch = dispatch_;
  create_local_offer(v->webrtc, [this, id, dispatch](Negotiated n) {
    dispatch->post([this, id, n] {
      if (n.ok)
        on_local_description(id, n.sdp);
      else
        fail_viewer(id, n.status, n.error);
    });
  });
}

void WhepServer::on_local_description(const std::string &id, const std::string &sdp) {
  auto v = find_viewer(id);
  if (!v) return;
  v->local_sdp = sdp;
  v->sdp_ready = true;
  // The endpoint never trickles to the player: wait for gathering, but not forever.
  v->gather_timeout = worker_->add_timeout(kGatherTimeoutMs, [this, id] {
    auto v = find_viewer(id);
    if (!v) return;
    v->gather_timeout = 0;
    GST_WARNING_OBJECT(element_, "ICE gathering for %s timed out", id.c_str());
    v->gathering_done = true;
    maybe_complete(id);
  });
  maybe_complete(id);
}

void WhepServer::on_gathering_done(const std::string &id) {
  auto v = find_viewer(id);
  if (!v) return;
  v->gathering_done = true;
  maybe_complete(id);
}

void WhepServer::maybe_complete(const std::string &id) {
  auto v = find_viewer(id);
  if (!v || !v->sdp_ready || !v->gathering_done || !v->pending) return;
  worker_->cancel(v->gather_timeout);
  v->gather_timeout = 0;
  std::vector<std::string> candidates;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    candidates = v->local_candidates;
  }
  MediaCallback done = std::move(v->pending);
  v->pending = nullptr;
  std::string sdp = finish_local_sdp(v->local_sdp, candidates);
  GST_DEBUG_OBJECT(element_, "session %s local description:\n%s", id.c_str(), sdp.c_str());
  done(MediaResult::success(sdp));
  if (!v->counted_join) {
    v->counted_join = true;
    post_viewer_message("wish-viewer-joined", id, nullptr);
  }
}

void WhepServer::fail_viewer(const std::string &id, unsigned status, const std::string &error) {
  auto v = find_viewer(id);
  if (!v) return;
  GST_INFO_OBJECT(element_, "session %s failed: %s", id.c_str(), error.c_str());
  MediaCallback done = std::move(v->pending);
  v->pending = nullptr;
  teardown(id, "failed");
  if (done) done(MediaResult::failure(status, error));
}

void WhepServer::apply_answer(const std::string &id, const std::string &answer, const SessionDescription &,
                              MediaCallback done) {
  dispatch_->post([this, id, answer, done = std::move(done)]() mutable {
    auto v = find_viewer(id);
    if (!v) {
      done(MediaResult::failure(404, "no such session"));
      return;
    }
    auto shared_done = std::make_shared<MediaCallback>(std::move(done));
    apply_remote_answer(v->webrtc, answer, [shared_done](Negotiated n) {
      (*shared_done)(n.ok ? MediaResult::success("") : MediaResult::failure(n.status, n.error));
    });
  });
}

void WhepServer::add_candidates(const std::string &id, const SdpFrag &frag) {
  std::vector<std::string> candidates;
  for (const auto &m : frag.media) candidates.insert(candidates.end(), m.candidates.begin(), m.candidates.end());
  if (candidates.empty()) return;
  dispatch_->post([this, id, candidates] {
    auto v = find_viewer(id);
    if (v) add_remote_candidates(v->webrtc, candidates);
  });
}

void WhepServer::restart_ice(const std::string &id, const SdpFrag &frag, MediaCallback done) {
  dispatch_->post([this, id, frag, done = std::move(done)] {
    auto v = find_viewer(id);
    if (!v) {
      done(MediaResult::failure(404, "no such session"));
      return;
    }
    std::vector<std::string> remote;
    for (const auto &m : frag.media) remote.insert(remote.end(), m.candidates.begin(), m.candidates.end());
    LocalIce local;
    std::string error;
    if (!wish::restart_ice(v->webrtc, frag.ice_ufrag, frag.ice_pwd, remote, &local, &error)) {
      done(MediaResult::failure(422, "ICE restart failed: " + error));
      return;
    }
    SdpFrag answer;
    answer.ice_ufrag = local.ufrag;
    answer.ice_pwd = local.pwd;
    SdpFragMedia m;
    GstWebRTCRTPTransceiver *trans = nullptr;
    g_signal_emit_by_name(v->webrtc, "get-transceiver", 0, &trans);
    if (trans) {
      gchar *mid = nullptr;
      g_object_get(trans, "mid", &mid, nullptr);
      if (mid) m.mid = mid;
      g_free(mid);
      gst_object_unref(trans);
    }
    m.candidates = local.candidates;
    m.end_of_candidates = true;
    answer.media.push_back(m);
    GST_INFO_OBJECT(element_, "ICE restarted for session %s", id.c_str());
    done(MediaResult::success(build_sdpfrag(answer)));
  });
}

void WhepServer::close(const std::string &id) {
  if (!dispatch_) return;
  dispatch_->post([this, id] { teardown(id, "closed"); });
}

void WhepServer::on_connection_state(const std::string &id) {
  auto v = find_viewer(id);
  if (!v) return;
  GstWebRTCPeerConnectionState pc;
  GstWebRTCICEConnectionState ice;
  g_object_get(v->webrtc, "connection-state", &pc, "ice-connection-state", &ice, nullptr);
  const char *names[] = {"new", "connecting", "connected", "disconnected", "failed", "closed"};
  std::string state = pc <= GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED ? names[pc] : "unknown";
  if (state != v->connection_state) {
    GST_INFO_OBJECT(element_, "session %s: connection %s", id.c_str(), state.c_str());
    v->connection_state = state;
    if (pc == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED) {
      // A new viewer starts decoding at once instead of waiting for the next GOP.
      for (auto &b : v->branches) request_keyframe(b->input);
      watch_viewer(*v);
    }
  }
  if (pc == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED || pc == GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED ||
      ice == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED || ice == GST_WEBRTC_ICE_CONNECTION_STATE_CLOSED) {
    if (host_.endpoint()) host_.endpoint()->session_gone(id);
    teardown(id, "connection-lost");
  }
}

// Players send RTCP every second or so; a viewer that vanished without DELETE goes silent.
void WhepServer::watch_viewer(Viewer &v) {
  if (v.watching) return;
  v.watching = true;
  watch_incoming(v.webrtc, v.last_rx);
}

void WhepServer::drop_silent_viewers() {
  SETTINGS_LOCK();
  gint64 timeout_us = static_cast<gint64>(settings.viewer_timeout) * G_USEC_PER_SEC;
  SETTINGS_UNLOCK();
  gint64 now = g_get_monotonic_time();
  std::vector<std::string> silent;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto &kv : viewers_)
      if (!kv.second->closing && kv.second->watching && now - kv.second->last_rx->load() > timeout_us)
        silent.push_back(kv.first);
  }
  for (const auto &id : silent) {
    GST_INFO_OBJECT(element_, "nothing heard from session %s for %u s: removing it", id.c_str(),
                    static_cast<unsigned>(timeout_us / G_USEC_PER_SEC));
    if (host_.endpoint()) host_.endpoint()->session_gone(id);
    teardown(id, "timeout");
  }
}

void WhepServer::post_viewer_message(const char *name, const std::string &id, const char *reason) {
  guint count;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    count = static_cast<guint>(viewers_.size());
  }
  GstStructure *s = gst_structure_new(name, "session-id", G_TYPE_STRING, id.c_str(), "viewers", G_TYPE_UINT, count,
                                      nullptr);
  if (reason) gst_structure_set(s, "reason", G_TYPE_STRING, reason, nullptr);
  gst_element_post_message(GST_ELEMENT(element_), gst_message_new_element(GST_OBJECT(element_), s));
}

// Runs on the worker thread: unlinks the viewer from the tees and frees its elements.
void WhepServer::teardown(const std::string &id, const char *reason) {
  std::shared_ptr<Viewer> v;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = viewers_.find(id);
    if (it == viewers_.end() || it->second->closing) return;
    v = it->second;
    v->closing = true;
  }
  // The bin's own state changes must not bring these elements back up while they go away.
  gst_element_set_locked_state(v->webrtc, TRUE);
  for (auto &b : v->branches) gst_element_set_locked_state(b->queue, TRUE);
  worker_->cancel(v->gather_timeout);
  // Each handler's SignalData is freed with its closure.
  for (gulong h : v->handler_ids) g_signal_handler_disconnect(v->webrtc, h);
  v->handler_ids.clear();
  // Unhook from the tees first so no new data comes, then stop webrtcbin: that flushes its
  // sink pads and releases a queue thread blocked in them, so the queues can stop too.
  for (auto &b : v->branches) {
    if (!b->tee_pad) continue;
    GPtr<GstPad> qsink = GPtr<GstPad>::adopt(gst_element_get_static_pad(b->queue, "sink"));
    gst_pad_unlink(b->tee_pad, qsink.get());
    gst_element_release_request_pad(b->input->tee, b->tee_pad);
    gst_object_unref(b->tee_pad);
    b->tee_pad = nullptr;
  }
  gst_element_set_state(v->webrtc, GST_STATE_NULL);
  for (auto &b : v->branches) {
    gst_element_set_state(b->queue, GST_STATE_NULL);
    if (GST_OBJECT_PARENT(b->queue)) gst_bin_remove(GST_BIN(element_), b->queue);
  }
  if (GST_OBJECT_PARENT(v->webrtc)) gst_bin_remove(GST_BIN(element_), v->webrtc);
  gst_object_unref(v->webrtc);
  v->webrtc = nullptr;
  if (v->pending) {
    MediaCallback done = std::move(v->pending);
    v->pending = nullptr;
    done(MediaResult::failure(500, "session closed while being set up"));
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    viewers_.erase(id);
  }
  GST_INFO_OBJECT(element_, "session %s ended (%s)", id.c_str(), reason);
  if (v->counted_join) post_viewer_message("wish-viewer-left", id, reason);
}

GstStructure *WhepServer::stats() {
  GValue list = G_VALUE_INIT;
  gst_value_list_init(&list, 0);
  guint count = 0, inputs_ready = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto &in : inputs_)
      if (in->rtp_caps) inputs_ready++;
    for (const auto &kv : viewers_) {
      const Viewer &v = *kv.second;
      guint64 packets = 0, bytes = 0;
      for (const auto &b : v.branches) {
        packets += b->packets;
        bytes += b->bytes;
      }
      GstStructure *s = gst_structure_new("viewer", "session-id", G_TYPE_STRING, v.id.c_str(), "connection-state",
                                          G_TYPE_STRING, v.connection_state.c_str(), "packets-sent", G_TYPE_UINT64,
                                          packets, "bytes-sent", G_TYPE_UINT64, bytes, "duration", G_TYPE_UINT64,
                                          (guint64)((g_get_real_time() - v.created_us) * GST_USECOND), nullptr);
      GValue sv = G_VALUE_INIT;
      g_value_init(&sv, GST_TYPE_STRUCTURE);
      g_value_take_boxed(&sv, s);
      gst_value_list_append_and_take_value(&list, &sv);
      count++;
    }
  }
  GstStructure *out = gst_structure_new("application/x-whepserversink-stats", "viewer-count", G_TYPE_UINT, count,
                                        "inputs-ready", G_TYPE_UINT, inputs_ready, nullptr);
  gst_structure_take_value(out, "viewers", &list);
  return out;
}

}  // namespace wish

// ---------------------------------------------------------------------------------------
// GObject glue

enum {
  PROP_MAX_VIEWERS = wish::SERVER_PROP_LAST,
  PROP_COUNTER_OFFER,
  PROP_ENCODER_FIRST,  // the encoder properties (send_chain.h)
  PROP_VIEWER_TIMEOUT = PROP_ENCODER_FIRST + wish::ENCODER_PROP_COUNT,
  PROP_STATS,
};


GType gst_wish_counter_offer_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_WISH_COUNTER_OFFER_NEVER, "Never counter-offer; refuse offers without a common codec with 422", "never"},
      {GST_WISH_COUNTER_OFFER_WHEN_NEEDED, "Counter-offer (406) only when the player's offer cannot be answered",
       "when-needed"},
      {GST_WISH_COUNTER_OFFER_ALWAYS, "Always answer a POST with a 406 counter-offer", "always"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstWishCounterOffer", values));
  return type;
}

GType gst_wish_video_codec_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_WISH_VIDEO_CODEC_H264, "H.264 constrained baseline (x264enc)", "h264"},
      {GST_WISH_VIDEO_CODEC_VP8, "VP8 (vp8enc)", "vp8"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstWishVideoCodec", values));
  return type;
}


static void gst_whep_server_sink_init(GstWhepServerSink *self) {
  self->server = new wish::WhepServer(self);
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SINK);
}

static void gst_whep_server_sink_finalize(GObject *object) {
  auto *self = GST_WHEP_SERVER_SINK(object);
  delete self->server;
  self->server = nullptr;
  G_OBJECT_CLASS(gst_whep_server_sink_parent_class)->finalize(object);
}

static void gst_whep_server_sink_set_property(GObject *object, guint prop_id, const GValue *value,
                                              GParamSpec *pspec) {
  auto *self = GST_WHEP_SERVER_SINK(object);
  wish::Settings &s = self->server->settings;
  GST_OBJECT_LOCK(self);
  if (!wish::set_server_property(s.http, prop_id, value) &&
      !wish::set_encoder_property(s.encoder, PROP_ENCODER_FIRST, prop_id, value)) {
    switch (prop_id) {
      case PROP_MAX_VIEWERS: s.max_viewers = g_value_get_uint(value); break;
      case PROP_COUNTER_OFFER: s.counter_offer = static_cast<GstWishCounterOffer>(g_value_get_enum(value)); break;
      case PROP_VIEWER_TIMEOUT: s.viewer_timeout = g_value_get_uint(value); break;
      default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_whep_server_sink_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  auto *self = GST_WHEP_SERVER_SINK(object);
  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, self->server->stats());
    return;
  }
  if (prop_id == wish::SERVER_PROP_CURRENT_PORT) {
    g_value_set_uint(value, self->server->current_port());
    return;
  }
  const wish::Settings &s = self->server->settings;
  GST_OBJECT_LOCK(self);
  if (!wish::get_server_property(s.http, prop_id, value) &&
      !wish::get_encoder_property(s.encoder, PROP_ENCODER_FIRST, prop_id, value)) {
    switch (prop_id) {
      case PROP_MAX_VIEWERS: g_value_set_uint(value, s.max_viewers); break;
      case PROP_COUNTER_OFFER: g_value_set_enum(value, s.counter_offer); break;
      case PROP_VIEWER_TIMEOUT: g_value_set_uint(value, s.viewer_timeout); break;
      default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
  }
  GST_OBJECT_UNLOCK(self);
}

static GstStateChangeReturn gst_whep_server_sink_change_state(GstElement *element, GstStateChange transition) {
  auto *self = GST_WHEP_SERVER_SINK(element);
  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (!self->server->start()) {
        self->server->stop();
        return GST_STATE_CHANGE_FAILURE;
      }
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      self->server->set_media_running(true);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      self->server->set_media_running(false);
      self->server->close_all_sessions();
      break;
    default:
      break;
  }
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(gst_whep_server_sink_parent_class)->change_state(element, transition);
  if (transition == GST_STATE_CHANGE_READY_TO_NULL) self->server->stop();
  return ret;
}

static void gst_whep_server_sink_handle_message(GstBin *bin, GstMessage *message) {
  // Viewers' webrtcbins hold sinks whose EOS says nothing about the element: it posts its own
  // when every input is EOS.
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_EOS && GST_MESSAGE_SRC(message) != GST_OBJECT(bin)) {
    gst_message_unref(message);
    return;
  }
  GST_BIN_CLASS(gst_whep_server_sink_parent_class)->handle_message(bin, message);
}

static GstPad *gst_whep_server_sink_request_new_pad(GstElement *element, GstPadTemplate *templ, const gchar *name,
                                                    const GstCaps *) {
  return GST_WHEP_SERVER_SINK(element)->server->request_pad(templ, name);
}

static void gst_whep_server_sink_release_pad(GstElement *element, GstPad *pad) {
  GST_WHEP_SERVER_SINK(element)->server->release_pad(pad);
}

static void gst_whep_server_sink_post(GstElement *self, GstStructure *request, GstPromise *promise) {
  GST_WHEP_SERVER_SINK(self)->server->host().handle_signal("POST", request, promise);
}
static void gst_whep_server_sink_patch(GstElement *self, GstStructure *request, GstPromise *promise) {
  GST_WHEP_SERVER_SINK(self)->server->host().handle_signal("PATCH", request, promise);
}
static void gst_whep_server_sink_delete(GstElement *self, GstStructure *request, GstPromise *promise) {
  GST_WHEP_SERVER_SINK(self)->server->host().handle_signal("DELETE", request, promise);
}

static void gst_whep_server_sink_class_init(GstWhepServerSinkClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GST_DEBUG_CATEGORY_INIT(whepserversink_debug, "whepserversink", 0, "WHEP server sink");

  gobject_class->finalize = gst_whep_server_sink_finalize;
  gobject_class->set_property = gst_whep_server_sink_set_property;
  gobject_class->get_property = gst_whep_server_sink_get_property;
  element_class->change_state = gst_whep_server_sink_change_state;
  element_class->request_new_pad = gst_whep_server_sink_request_new_pad;
  element_class->release_pad = gst_whep_server_sink_release_pad;
  GST_BIN_CLASS(klass)->handle_message = gst_whep_server_sink_handle_message;

  auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  auto ro = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  wish::install_server_properties(gobject_class, "WHEP", "/whep");
  g_object_class_install_property(gobject_class, PROP_MAX_VIEWERS,
      g_param_spec_uint("max-viewers", "Maximum viewers",
                        "Viewers served at once; more get 503 with Retry-After (0 = unlimited)", 0, G_MAXUINT, 0,
                        flags));
  g_object_class_install_property(gobject_class, PROP_COUNTER_OFFER,
      g_param_spec_enum("counter-offer", "Counter-offer",
                        "When to answer a POST with a 406 counter-offer carrying the server's own SDP offer",
                        gst_wish_counter_offer_get_type(), GST_WISH_COUNTER_OFFER_WHEN_NEEDED, flags));
  wish::install_encoder_properties(gobject_class, PROP_ENCODER_FIRST, "new viewers get a keyframe at once anyway");
  g_object_class_install_property(gobject_class, PROP_VIEWER_TIMEOUT,
      g_param_spec_uint("viewer-timeout", "Viewer timeout",
                        "Seconds without any packet from a connected viewer (RTCP, DTLS) before its session is "
                        "removed, for players that vanish without DELETE",
                        2, 3600, 10, static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(gobject_class, PROP_STATS,
      g_param_spec_boxed("stats", "Statistics",
                         "viewer-count, inputs-ready (inputs whose stream can be served) and viewers, a list "
                         "of structures with session-id, connection-state, packets-sent, bytes-sent and duration",
                         GST_TYPE_STRUCTURE, ro));

  /* Action signals post, patch, delete (request GstStructure, GstPromise): see
   * install_server_signals and docs/whepserversink.md. */
  wish::install_server_signals(gobject_class, "WHEP", gst_whep_server_sink_post, gst_whep_server_sink_patch,
                               gst_whep_server_sink_delete);

  wish::add_send_pad_templates(element_class);
  gst_element_class_set_static_metadata(
      element_class, "WHEP server sink", "Sink/Network/WebRTC",
      "Serves audio and video to WHEP players (draft-ietf-wish-whep-03) over HTTP(S); posts "
      "wish-viewer-joined / wish-viewer-left element messages",
      "wish project");
  gst_type_mark_as_plugin_api(gst_wish_counter_offer_get_type(), static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(gst_wish_video_codec_get_type(), static_cast<GstPluginAPIFlags>(0));
}
