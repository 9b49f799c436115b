/**
 * SECTION:element-whepsrc
 * @title: whepsrc
 *
 * Plays a WHEP endpoint (draft-ietf-wish-whep-03). Sometimes pads `video_%u` / `audio_%u`
 * carry decoded media by default (decoders autoplugged by rank); when downstream only takes
 * encoded caps (video/x-h264, audio/x-opus, ...) or application/x-rtp, the pad gives that.
 *
 * |[
 * gst-launch-1.0 whepsrc whep-endpoint=http://127.0.0.1:8889/whep name=s \
 *   s. ! queue ! videoconvert ! autovideosink s. ! queue ! audioconvert ! autoaudiosink
 * gst-play-1.0 whep://127.0.0.1:8889/whep
 * ]|
 */
#include "whepsrc.h"

#include <gst/rtp/rtp.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <libsoup/soup.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gst_utils.h"
#include "gstptr.h"
#include "loop_thread.h"
#include "media_outputs.h"
#include "protocol/client.h"
#include "protocol/sdp.h"
#include "protocol/sdpfrag.h"
#include "webrtc_utils.h"

GST_DEBUG_CATEGORY_STATIC(whepsrc_debug);
#define GST_CAT_DEFAULT whepsrc_debug

namespace wish {

namespace {

constexpr int kMaxRedirects = 10;
constexpr gint64 kSilenceUs = 5 * G_USEC_PER_SEC;  // connected but nothing arrives: ICE restart

struct Settings {
  std::string endpoint;
  std::string auth_token;
  std::string stun_server;
  std::vector<std::string> turn_servers;
  gboolean use_link_headers = TRUE;
  GstWebRTCICETransportPolicy ice_transport_policy = GST_WEBRTC_ICE_TRANSPORT_POLICY_ALL;
  guint latency = 50;
  guint timeout = 10;
  std::string video_codecs, audio_codecs;
  gint max_reconnects = 10;
  guint retry_max_delay = 30;
  gboolean trickle = TRUE;
  std::string ice_local_addresses;
};

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct CodecChoice {
  const char *name;        // as users write it in video-codecs / audio-codecs
  const char *decoder_caps;  // what a decoder must accept for the default list
  const char *rtp_caps;
};

const CodecChoice kVideoCodecs[] = {
    {"h264", "video/x-h264",
     "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,"
     "packetization-mode=(string)1,profile-level-id=(string)42e01f,level-asymmetry-allowed=(string)1"},
    {"vp8", "video/x-vp8", "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000"},
    {"vp9", "video/x-vp9", "application/x-rtp,media=video,encoding-name=VP9,payload=98,clock-rate=90000"},
};
const CodecChoice kAudioCodecs[] = {
    {"opus", "audio/x-opus",
     "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,encoding-params=(string)2"},
};

bool have_decoder(const char *caps_str) {
  GList *decoders = gst_element_factory_list_get_elements(GST_ELEMENT_FACTORY_TYPE_DECODER, GST_RANK_MARGINAL);
  GstCaps *caps = gst_caps_from_string(caps_str);
  GList *usable = gst_element_factory_list_filter(decoders, caps, GST_PAD_SINK, FALSE);
  bool found = usable != nullptr;
  gst_plugin_feature_list_free(usable);
  gst_plugin_feature_list_free(decoders);
  gst_caps_unref(caps);
  return found;
}

std::vector<std::string> split_list(const std::string &s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t end = s.find(',', i);
    if (end == std::string::npos) end = s.size();
    std::string item(trim(std::string_view(s).substr(i, end - i)));
    for (auto &c : item) c = static_cast<char>(g_ascii_tolower(c));
    if (!item.empty()) out.push_back(item);
    i = end + 1;
  }
  return out;
}

// Offered RTP caps for one kind: the listed codecs in order, or every codec a decoder exists for.
template <size_t N>
GstCaps *offer_caps(const CodecChoice (&table)[N], const std::string &list, std::string *error) {
  GstCaps *caps = gst_caps_new_empty();
  if (list == "none") return caps;
  std::vector<std::string> wanted = split_list(list);
  if (wanted.empty()) {
    for (const auto &c : table)
      if (have_decoder(c.decoder_caps)) gst_caps_append(caps, gst_caps_from_string(c.rtp_caps));
    return caps;
  }
  for (const auto &w : wanted) {
    bool known = false;
    for (const auto &c : table) {
      if (w == c.name) {
        gst_caps_append(caps, gst_caps_from_string(c.rtp_caps));
        known = true;
      }
    }
    if (!known) *error = "unknown codec '" + w + "'";
  }
  return caps;
}

}  // namespace

class WhepClient {
public:
  explicit WhepClient(GstWhepSrc *element) : element_(element) {}
  ~WhepClient() { stop(); }

  Settings settings;  // guarded by the element's object lock

  bool start();
  void stop();
  void send_eos();
  void request_ice_restart();
  GstStructure *stats();
  std::string session_url();

private:
  enum class Phase { Idle, Offering, Posting, CounterOffer, Connected, Restarting, Waiting, Failed, Stopped };
  static const char *phase_name(Phase p);

  Settings snapshot();
  void start_session();
  bool create_webrtcbin(bool with_transceivers, std::string *error);
  void destroy_webrtcbin();
  void on_offer_created(unsigned gen, std::string sdp);
  void post_offer();
  void on_post_response(unsigned gen, std::string url, Response resp, std::string transport_error);
  void handle_counter_offer(const PostDecision &d, const std::string &sdp);
  void send_counter_answer(unsigned gen, std::string sdp);
  void on_candidate(unsigned gen, guint mline, std::string candidate);
  void on_gathering_done(unsigned gen);
  void flush_trickle();
  void on_ice_state(unsigned gen);
  void check_liveness();
  void restart_ice();
  void reconnect(const std::string &reason);
  void schedule(double seconds, std::function<void()> fn);
  void fail(const std::string &summary, const std::string &detail);
  void post_message(GstStructure *s);
  void delete_session_sync();
  void apply_ice_servers(const std::vector<IceServer> &servers);

  using HttpCallback = std::function<void(Response resp, std::string transport_error)>;
  void http(const char *method, const std::string &url, const std::vector<std::pair<std::string, std::string>> &headers,
            const std::string &content_type, const std::string &body, HttpCallback cb);

  GstWhepSrc *element_;
  std::unique_ptr<LoopThread> worker_;
  std::shared_ptr<Dispatcher> dispatch_;  // how webrtcbin's threads queue work on worker_
  SoupSession *soup_ = nullptr;  // worker thread only
  GCancellable *cancellable_ = nullptr;

  // Worker-thread state.
  Phase phase_ = Phase::Idle;
  unsigned gen_ = 0;  // bumps with every webrtcbin; callbacks of older ones are ignored
  GstElement *webrtc_ = nullptr;
  std::vector<std::string> local_addresses_;
  std::string offer_, local_ufrag_, local_pwd_;
  std::vector<std::string> gathered_;
  bool gathering_done_ = false;
  std::string post_url_, session_url_, etag_;
  int redirects_ = 0;
  bool trickle_ok_ = true;
  TrickleBuffer trickle_;
  Backoff retry_backoff_{1, 30};
  Backoff reconnect_backoff_{0.5, 10};
  int reconnects_ = 0;
  unsigned ice_restarts_ = 0;
  guint timer_ = 0, liveness_timer_ = 0;
  std::shared_ptr<std::atomic<gint64>> last_rx_ = std::make_shared<std::atomic<gint64>>(0);
  bool watching_ = false;
  gint64 disconnected_since_ = 0;

  MediaOutputs outputs_{GST_ELEMENT(element_)};
  std::mutex pads_mutex_;  // guards the copies below, read by property getters
  std::string session_url_copy_;  // for the property, under pads_mutex_
  std::string phase_copy_ = "idle";
  std::string link_ice_servers_;  // what Link headers announced, for stats
  bool patch_in_flight_ = false;
  std::vector<IceServer> link_servers_;  // from the last 201, used by later sessions from the start
};

}  // namespace wish

struct _GstWhepSrc {
  GstBin parent;
  wish::WhepClient *client;
};

static void gst_whep_src_uri_handler_init(gpointer iface, gpointer data);

G_DEFINE_TYPE_WITH_CODE(GstWhepSrc, gst_whep_src, GST_TYPE_BIN,
                        G_IMPLEMENT_INTERFACE(GST_TYPE_URI_HANDLER, gst_whep_src_uri_handler_init));
GST_ELEMENT_REGISTER_DEFINE(whepsrc, "whepsrc", GST_RANK_PRIMARY, GST_TYPE_WHEP_SRC);

static GstStaticPadTemplate video_src_template = GST_STATIC_PAD_TEMPLATE(
    "video_%u", GST_PAD_SRC, GST_PAD_SOMETIMES,
    GST_STATIC_CAPS("video/x-raw(ANY); video/x-h264; video/x-vp8; video/x-vp9; application/x-rtp, media=video"));
static GstStaticPadTemplate audio_src_template = GST_STATIC_PAD_TEMPLATE(
    "audio_%u", GST_PAD_SRC, GST_PAD_SOMETIMES,
    GST_STATIC_CAPS("audio/x-raw(ANY); audio/x-opus; application/x-rtp, media=audio"));

namespace wish {

#define SETTINGS_LOCK() GST_OBJECT_LOCK(element_)
#define SETTINGS_UNLOCK() GST_OBJECT_UNLOCK(element_)

const char *WhepClient::phase_name(Phase p) {
  switch (p) {
    case Phase::Idle: return "idle";
    case Phase::Offering: return "offering";
    case Phase::Posting: return "posting";
    case Phase::CounterOffer: return "counter-offer";
    case Phase::Connected: return "connected";
    case Phase::Restarting: return "restarting";
    case Phase::Waiting: return "waiting";
    case Phase::Failed: return "failed";
    case Phase::Stopped: return "stopped";
  }
  return "unknown";
}

Settings WhepClient::snapshot() {
  SETTINGS_LOCK();
  Settings s = settings;
  SETTINGS_UNLOCK();
  return s;
}

bool WhepClient::start() {
  Settings s = snapshot();
  if (s.endpoint.empty()) {
    GST_ELEMENT_ERROR(element_, RESOURCE, NOT_FOUND, ("No WHEP endpoint set"), ("set whep-endpoint or a whep:// URI"));
    return false;
  }
  std::string error;
  if (!resolve_local_addresses(s.ice_local_addresses, &local_addresses_, &error)) {
    GST_ELEMENT_ERROR(element_, RESOURCE, SETTINGS, ("Invalid ice-local-addresses"), ("%s", error.c_str()));
    return false;
  }
  worker_ = std::make_unique<LoopThread>("whepsrc");
  dispatch_ = std::make_shared<Dispatcher>(worker_.get());
  worker_->invoke_sync([this, s] {
    // Redirects are followed by hand: body and Authorization go along, hops are counted.
    soup_ = soup_session_new_with_options("timeout", s.timeout, "idle-timeout", 30, "user-agent", "wish-whepsrc ",
                                          nullptr);
    cancellable_ = g_cancellable_new();
    phase_ = Phase::Idle;
    reconnects_ = 0;
    post_url_ = s.endpoint;
    start_session();
  });
  return true;
}

void WhepClient::stop() {
  if (!worker_) return;
  worker_->invoke_sync([this] {
    worker_->cancel(timer_);
    worker_->cancel(liveness_timer_);
    timer_ = liveness_timer_ = 0;
    g_cancellable_cancel(cancellable_);
    delete_session_sync();
    destroy_webrtcbin();
    phase_ = Phase::Stopped;
    g_clear_object(&cancellable_);
    g_clear_object(&soup_);
  });
  dispatch_->close();
  worker_.reset();
  // Sometimes pads go with the session.
  outputs_.remove_all();
  std::lock_guard<std::mutex> lock(pads_mutex_);
  session_url_copy_.clear();
}

void WhepClient::schedule(double seconds, std::function<void()> fn) {
  worker_->cancel(timer_);
  timer_ = worker_->add_timeout(static_cast<guint>(seconds * 1000), std::move(fn));
}

void WhepClient::post_message(GstStructure *s) {
  gst_element_post_message(GST_ELEMENT(element_), gst_message_new_element(GST_OBJECT(element_), s));
}

void WhepClient::fail(const std::string &summary, const std::string &detail) {
  phase_ = Phase::Failed;
  {
    std::lock_guard<std::mutex> lock(pads_mutex_);
    phase_copy_ = phase_name(phase_);
  }
  GST_ELEMENT_ERROR(element_, RESOURCE, FAILED, ("%s", summary.c_str()), ("%s", detail.c_str()));
}

// ---------------------------------------------------------------------------------------
// HTTP

void WhepClient::http(const char *method, const std::string &url,
                      const std::vector<std::pair<std::string, std::string>> &headers, const std::string &content_type,
                      const std::string &body, HttpCallback cb) {
  SoupMessage *msg = soup_message_new(method, url.c_str());
  if (!msg) {
    cb(Response::empty(0), "invalid URL " + url);
    return;
  }
  soup_message_add_flags(msg, SOUP_MESSAGE_NO_REDIRECT);
  SoupMessageHeaders *h = soup_message_get_request_headers(msg);
  Settings s = snapshot();
  if (!s.auth_token.empty()) soup_message_headers_replace(h, "Authorization", ("Bearer " + s.auth_token).c_str());
  for (const auto &kv : headers) soup_message_headers_replace(h, kv.first.c_str(), kv.second.c_str());
  if (!content_type.empty()) {
    GBytes *bytes = g_bytes_new(body.data(), body.size());
    soup_message_set_request_body_from_bytes(msg, content_type.c_str(), bytes);
    g_bytes_unref(bytes);
  }
  GST_DEBUG_OBJECT(element_, "%s %s", method, url.c_str());
  auto *heap = new HttpCallback(std::move(cb));
  soup_session_send_and_read_async(
      soup_, msg, G_PRIORITY_DEFAULT, cancellable_,
      [](GObject *source, GAsyncResult *res, gpointer data) {
        std::unique_ptr<HttpCallback> cb(static_cast<HttpCallback *>(data));
        SoupMessage *m = soup_session_get_async_result_message(SOUP_SESSION(source), res);
        GError *err = nullptr;
        GBytes *bytes = soup_session_send_and_read_finish(SOUP_SESSION(source), res, &err);
        if (!bytes) {
          bool cancelled = g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          std::string msg_text = err ? err->message : "request failed";
          g_clear_error(&err);
          if (!cancelled) (*cb)(Response::empty(0), msg_text);
          return;
        }
        Response r;
        r.status = soup_message_get_status(m);
        gsize size = 0;
        const char *d = static_cast<const char *>(g_bytes_get_data(bytes, &size));
        r.body.assign(d ? d : "", size);
        g_bytes_unref(bytes);
        soup_message_headers_foreach(
            soup_message_get_response_headers(m),
            [](const char *name, const char *value, gpointer out) {
              static_cast<Response *>(out)->headers.add(name, value);
            },
            &r);
        (*cb)(std::move(r), "");
      },
      heap);
  g_object_unref(msg);
}

// Best effort, bounded by the timeout property: a server that is gone must not hold up
// shutdown for longer than that.
void WhepClient::delete_session_sync() {
  if (session_url_.empty() || !soup_) return;
  SoupMessage *msg = soup_message_new("DELETE", session_url_.c_str());
  if (msg) {
    Settings s = snapshot();
    if (!s.auth_token.empty())
      soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization",
                                   ("Bearer " + s.auth_token).c_str());
    GError *err = nullptr;
    GBytes *bytes = soup_session_send_and_read(soup_, msg, nullptr, &err);
    GST_INFO_OBJECT(element_, "DELETE %s -> %u%s%s", session_url_.c_str(), soup_message_get_status(msg),
                    err ? " " : "", err ? err->message : "");
    if (bytes) g_bytes_unref(bytes);
    g_clear_error(&err);
    g_object_unref(msg);
  }
  session_url_.clear();
  etag_.clear();
  std::lock_guard<std::mutex> lock(pads_mutex_);
  session_url_copy_.clear();
}

// ---------------------------------------------------------------------------------------
// Session set-up

bool WhepClient::create_webrtcbin(bool with_transceivers, std::string *error) {
  Settings s = snapshot();
  gen_++;
  webrtc_ = gst_element_factory_make("webrtcbin", nullptr);
  if (!webrtc_) {
    *error = "webrtcbin is not available";
    return false;
  }
  g_object_set(webrtc_, "latency", s.latency, "ice-transport-policy", s.ice_transport_policy, nullptr);
  if (!configure_webrtcbin(webrtc_, local_addresses_, s.stun_server, s.turn_servers, error)) {
    gst_object_unref(gst_object_ref_sink(webrtc_));
    webrtc_ = nullptr;
    return false;
  }
  unsigned gen = gen_;
  auto *self = this;
  struct Ctx {
    WhepClient *self;
    unsigned gen;
    std::shared_ptr<Dispatcher> dispatch;
  };
  auto connect = [&](const char *signal, GCallback cb) {
    g_signal_connect_data(webrtc_, signal, cb, new Ctx{self, gen, dispatch_},
                          [](gpointer d, GClosure *) { delete static_cast<Ctx *>(d); }, static_cast<GConnectFlags>(0));
  };
  connect("on-ice-candidate", G_CALLBACK(+[](GstElement *, guint mline, gchar *cand, gpointer d) {
            auto *c = static_cast<Ctx *>(d);
            std::string candidate = cand ? cand : "";
            WhepClient *client = c->self;
            unsigned g = c->gen;
            c->dispatch->post([client, g, mline, candidate] { client->on_candidate(g, mline, candidate); });
          }));
  connect("notify::ice-gathering-state", G_CALLBACK(+[](GstElement *w, GParamSpec *, gpointer d) {
            auto *c = static_cast<Ctx *>(d);
            GstWebRTCICEGatheringState st;
            g_object_get(w, "ice-gathering-state", &st, nullptr);
            if (st != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) return;
            WhepClient *client = c->self;
            unsigned g = c->gen;
            c->dispatch->post([client, g] { client->on_gathering_done(g); });
          }));
  connect("notify::ice-connection-state", G_CALLBACK(+[](GstElement *, GParamSpec *, gpointer d) {
            auto *c = static_cast<Ctx *>(d);
            WhepClient *client = c->self;
            unsigned g = c->gen;
            c->dispatch->post([client, g] { client->on_ice_state(g); });
          }));
  connect("pad-added", G_CALLBACK(+[](GstElement *, GstPad *pad, gpointer d) {
            auto *c = static_cast<Ctx *>(d);
            if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
            GstCaps *caps = gst_pad_get_current_caps(pad);
            if (!caps) caps = gst_pad_query_caps(pad, nullptr);
            const gchar *media = gst_structure_get_string(gst_caps_get_structure(caps, 0), "media");
            std::string kind = media ? media : "video";
            gst_caps_unref(caps);
            c->self->outputs_.attach(pad, kind);
          }));
  gst_bin_add(GST_BIN(element_), webrtc_);

  // One recvonly transceiver per kind, offering the codecs wanted (or decodable) in order.
  std::string codec_error;
  GstCaps *video = offer_caps(kVideoCodecs, s.video_codecs, &codec_error);
  GstCaps *audio = offer_caps(kAudioCodecs, s.audio_codecs, &codec_error);
  if (!codec_error.empty()) {
    gst_caps_unref(video);
    gst_caps_unref(audio);
    *error = codec_error;
    return false;
  }
  for (GstCaps *caps : {video, audio}) {
    if (with_transceivers && !gst_caps_is_empty(caps)) {
      GstWebRTCRTPTransceiver *trans = nullptr;
      g_signal_emit_by_name(webrtc_, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps, &trans);
      if (trans) gst_object_unref(trans);
    }
    gst_caps_unref(caps);
  }
  gst_element_sync_state_with_parent(webrtc_);
  gathered_.clear();
  gathering_done_ = false;
  watching_ = false;
  // A reconnection gathers with the servers the endpoint announced last time.
  if (!link_servers_.empty()) apply_ice_servers(link_servers_);
  return true;
}

void WhepClient::destroy_webrtcbin() {
  gen_++;
  outputs_.detach_all();
  if (webrtc_) {
    gst_element_set_locked_state(webrtc_, TRUE);
    gst_element_set_state(webrtc_, GST_STATE_NULL);
    gst_bin_remove(GST_BIN(element_), webrtc_);
    webrtc_ = nullptr;
  }
}

void WhepClient::start_session() {
  GST_INFO_OBJECT(element_, "starting a session with %s", post_url_.c_str());
  std::string error;
  if (!create_webrtcbin(true, &error)) {
    fail("Cannot set up WebRTC", error);
    return;
  }
  phase_ = Phase::Offering;
  trickle_ = TrickleBuffer();
  patch_in_flight_ = false;
  redirects_ = 0;
  Settings s = snapshot();
  trickle_ok_ = s.trickle;
  unsigned gen = gen_;
  // webrtcbin's threads never wait on the worker: the element is captured here instead.
  GstElement *webrtc = GST_ELEMENT(gst_object_ref(webrtc_));
  auto dispatch = dispatch_;
  GstPromise *promise = promise_with_callback([this, gen, webrtc, dispatch](bool ok, const GstStructure *reply,
                                                                            const std::string &err) {
    GstWebRTCSessionDescription *offer = nullptr;
    if (ok && reply) gst_structure_get(reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, nullptr);
    if (!offer) {
      dispatch->post([this, gen, err] {
        if (gen == gen_) fail("Cannot create an SDP offer", err);
      });
      gst_object_unref(webrtc);
      return;
    }
    gchar *text = gst_sdp_message_as_text(offer->sdp);
    std::string sdp = text;
    g_free(text);
    GstPromise *set = promise_with_callback([this, gen, sdp, dispatch](bool, const GstStructure *, const std::string &) {
      dispatch->post([this, gen, sdp] { on_offer_created(gen, sdp); });
    });
    g_signal_emit_by_name(webrtc, "set-local-description", offer, set);
    gst_promise_unref(set);
    gst_webrtc_session_description_free(offer);
    gst_object_unref(webrtc);
  });
  g_signal_emit_by_name(webrtc_, "create-offer", nullptr, promise);
  gst_promise_unref(promise);
}

void WhepClient::on_offer_created(unsigned gen, std::string sdp) {
  if (gen != gen_ || phase_ != Phase::Offering) return;
  std::string error;
  auto parsed = parse_sdp(sdp, &error);
  if (parsed && !parsed->media.empty()) {
    local_ufrag_ = parsed->media[0].ice_ufrag;
    local_pwd_ = parsed->media[0].ice_pwd;
  }
  offer_ = sdp;
  // Trickle: POST at once, candidates follow by PATCH. Otherwise wait for all of them.
  if (trickle_ok_ || gathering_done_) post_offer();
}

void WhepClient::post_offer() {
  phase_ = Phase::Posting;
  {
    std::lock_guard<std::mutex> lock(pads_mutex_);
    phase_copy_ = phase_name(phase_);
  }
  // Trickle: what was gathered so far goes in the offer, the rest by PATCH.
  std::string body = unbundle_only(finish_local_sdp(offer_, gathered_, !trickle_ok_));
  if (trickle_ok_) gathered_.clear();
  unsigned gen = gen_;
  std::string url = post_url_;
  http("POST", url, {}, "application/sdp", body, [this, gen, url](Response resp, std::string transport_error) {
    on_post_response(gen, url, std::move(resp), std::move(transport_error));
  });
}

void WhepClient::apply_ice_servers(const std::vector<IceServer> &servers) {
  Settings s = snapshot();
  if (!s.use_link_headers || !webrtc_) return;
  if (&servers != &link_servers_) link_servers_ = servers;
  {
    std::lock_guard<std::mutex> lock(pads_mutex_);
    link_ice_servers_.clear();
  }
  for (const auto &srv : servers) {
    if (srv.scheme == "stun" || srv.scheme == "stuns") {
      if (s.stun_server.empty()) g_object_set(webrtc_, "stun-server", srv.gst_url().c_str(), nullptr);
    } else {
      gboolean ok = FALSE;
      g_signal_emit_by_name(webrtc_, "add-turn-server", srv.gst_url().c_str(), &ok);
    }
    GST_INFO_OBJECT(element_, "ICE server from Link header: %s", srv.uri().c_str());
    std::lock_guard<std::mutex> lock(pads_mutex_);
    if (!link_ice_servers_.empty()) link_ice_servers_ += ",";
    link_ice_servers_ += srv.uri();
  }
}

void WhepClient::on_post_response(unsigned gen, std::string url, Response resp, std::string transport_error) {
  if (gen != gen_ || phase_ != Phase::Posting) return;
  if (resp.status == 0) {
    if (reconnects_ > 0) {
      reconnect("server unreachable: " + transport_error);
      return;
    }
    fail("Cannot reach the WHEP endpoint", url + ": " + transport_error);
    return;
  }
  PostDecision d = decide_post(url, resp, unix_now());
  GST_INFO_OBJECT(element_, "POST %s -> %u", url.c_str(), resp.status);
  switch (d.outcome) {
    case PostOutcome::Answer: {
      session_url_ = d.location;
      etag_ = d.etag;
      {
        std::lock_guard<std::mutex> lock(pads_mutex_);
        session_url_copy_ = session_url_;
      }
      g_object_notify(G_OBJECT(element_), "session-url");
      apply_ice_servers(d.ice_servers);
      GstSDPMessage *sdp = nullptr;
      if (gst_sdp_message_new_from_text(resp.body.c_str(), &sdp) != GST_SDP_OK) {
        fail("The WHEP server sent an unusable answer", resp.body.substr(0, 200));
        return;
      }
      GstWebRTCSessionDescription *answer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
      auto dispatch = dispatch_;
      GstPromise *promise = promise_with_callback([this, gen, dispatch](bool ok, const GstStructure *, const std::string &err) {
        if (!ok) dispatch->post([this, gen, err] {
          if (gen == gen_) fail("The WHEP server's answer was rejected", err);
        });
      });
      g_signal_emit_by_name(webrtc_, "set-remote-description", answer, promise);
      gst_promise_unref(promise);
      gst_webrtc_session_description_free(answer);
      phase_ = Phase::Connected;
      retry_backoff_.reset();
      if (etag_.empty()) trickle_ok_ = false;  // nothing to put in If-Match
      if (trickle_ok_) {
        trickle_.set_session(etag_, local_ufrag_, local_pwd_);
        for (const auto &c : gathered_) trickle_.add("0", c);
        gathered_.clear();
        if (gathering_done_) trickle_.end_of_candidates();
        flush_trickle();
      }
      post_message(gst_structure_new("wish-session-started", "session-url", G_TYPE_STRING, session_url_.c_str(),
                                     "reconnects", G_TYPE_INT, reconnects_, nullptr));
      break;
    }
    case PostOutcome::CounterOffer:
      handle_counter_offer(d, resp.body);
      break;
    case PostOutcome::Redirect:
      if (++redirects_ > kMaxRedirects) {
        fail("Too many redirects", "more than " + std::to_string(kMaxRedirects) + " redirects from " + post_url_);
        return;
      }
      GST_INFO_OBJECT(element_, "redirected to %s", d.location.c_str());
      post_url_ = d.location;
      post_offer();
      break;
    case PostOutcome::RetryLater: {
      double delay = retry_backoff_.next(d.retry_after);
      phase_ = Phase::Waiting;
      GST_INFO_OBJECT(element_, "server answered %u, retrying in %.1f s", resp.status, delay);
      post_message(gst_structure_new("wish-waiting", "status", G_TYPE_UINT, resp.status, "retry-in-ms", G_TYPE_UINT,
                                     static_cast<guint>(delay * 1000), nullptr));
      schedule(delay, [this, gen] {
        timer_ = 0;
        if (gen != gen_ || phase_ != Phase::Waiting) return;
        post_url_ = snapshot().endpoint;
        phase_ = Phase::Posting;
        post_offer();
      });
      break;
    }
    case PostOutcome::Fail:
      fail("The WHEP server refused the session", d.error);
      break;
  }
}

// The server sent its own offer (406): answer it with a fresh webrtcbin and PATCH the answer.
void WhepClient::handle_counter_offer(const PostDecision &d, const std::string &offer) {
  GST_INFO_OBJECT(element_, "counter-offer from the server, session %s", d.location.c_str());
  destroy_webrtcbin();
  // The answer follows the server's offer: no transceivers of our own.
  std::string error;
  if (!create_webrtcbin(false, &error)) {
    fail("Cannot set up WebRTC", error);
    return;
  }
  phase_ = Phase::CounterOffer;
  session_url_ = d.location;
  etag_ = d.etag;
  {
    std::lock_guard<std::mutex> lock(pads_mutex_);
    session_url_copy_ = session_url_;
  }
  apply_ice_servers(d.ice_servers);
  trickle_ok_ = false;  // the answer carries every candidate
  unsigned gen = gen_;
  auto dispatch = dispatch_;  // replies come on webrtcbin threads: they only queue work
  answer_remote_offer(webrtc_, offer, [this, gen, dispatch](Negotiated n) {
    dispatch->post([this, gen, n] {
      if (gen != gen_) return;
      if (n.ok)
        send_counter_answer(gen, n.sdp);
      else
        fail("Cannot answer the WHEP server's counter-offer", n.error);
    });
  });
}

void WhepClient::send_counter_answer(unsigned gen, std::string sdp) {
  if (gen != gen_ || phase_ != Phase::CounterOffer) return;
  offer_ = sdp;  // our answer, completed when gathering is done
  if (!gathering_done_) return;  // on_gathering_done comes back here
  std::string body = finish_local_sdp(offer_, gathered_, true);
  phase_ = Phase::Posting;
  http("PATCH", session_url_, {}, "application/sdp", body, [this, gen](Response resp, std::string transport_error) {
    if (gen != gen_) return;
    if (resp.status != 204 && resp.status != 200) {
      fail("The WHEP server refused our answer to its counter-offer",
           resp.status ? std::to_string(resp.status) + " " + reason_phrase(resp.status) + " " + resp.body.substr(0, 200)
                       : transport_error);
      return;
    }
    phase_ = Phase::Connected;
    post_message(gst_structure_new("wish-session-started", "session-url", G_TYPE_STRING, session_url_.c_str(),
                                   "reconnects", G_TYPE_INT, reconnects_, nullptr));
  });
}

// ---------------------------------------------------------------------------------------
// Trickle ICE

void WhepClient::on_candidate(unsigned gen, guint, std::string candidate) {
  if (gen != gen_ || candidate.empty()) return;
  if (candidate.rfind("a=", 0) == 0) candidate = candidate.substr(2);
  if (phase_ == Phase::Connected && trickle_ok_) {
    trickle_.add("0", candidate);  // max-bundle: everything goes on the first m-line's transport
    flush_trickle();
  } else {
    gathered_.push_back(candidate);
  }
}

void WhepClient::on_gathering_done(unsigned gen) {
  if (gen != gen_) return;
  gathering_done_ = true;
  if (phase_ == Phase::Offering && !trickle_ok_ && !offer_.empty()) {
    post_offer();
  } else if (phase_ == Phase::CounterOffer && !offer_.empty()) {
    send_counter_answer(gen, offer_);
  } else if (phase_ == Phase::Connected && trickle_ok_) {
    trickle_.end_of_candidates();
    flush_trickle();
  }
}

// One PATCH at a time: candidates found meanwhile go in the next one, and a server that
// refuses PATCH sees it once.
void WhepClient::flush_trickle() {
  if (patch_in_flight_ || !trickle_ok_ || session_url_.empty()) return;
  std::string if_match;
  auto body = trickle_.take(&if_match);
  if (!body) return;
  unsigned gen = gen_, ice_gen = trickle_.generation();
  patch_in_flight_ = true;
  http("PATCH", session_url_, {{"If-Match", if_match}}, "application/trickle-ice-sdpfrag", *body,
       [this, gen, ice_gen](Response resp, std::string transport_error) {
         if (gen != gen_) return;  // an older session's reply
         patch_in_flight_ = false;
         if (ice_gen != trickle_.generation()) {
           flush_trickle();  // the reply of an earlier ICE generation: nothing to learn from it
           return;
         }
         if (patch_unsupported(resp.status)) {
           GST_INFO_OBJECT(element_, "server refuses trickle PATCH (%u): carrying on without it", resp.status);
           trickle_ok_ = false;
           return;
         }
         if (resp.status != 204 && resp.status != 200)
           GST_WARNING_OBJECT(element_, "trickle PATCH failed: %u %s", resp.status, transport_error.c_str());
         flush_trickle();
       });
}

// ---------------------------------------------------------------------------------------
// Keeping the session alive

void WhepClient::on_ice_state(unsigned gen) {
  if (gen != gen_ || !webrtc_) return;
  GstWebRTCICEConnectionState st;
  g_object_get(webrtc_, "ice-connection-state", &st, nullptr);
  GST_DEBUG_OBJECT(element_, "ICE connection state %d", st);
  if (st == GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED || st == GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED) {
    disconnected_since_ = 0;
    if (!watching_) {
      watching_ = true;
      watch_incoming(webrtc_, last_rx_);
      if (!liveness_timer_) liveness_timer_ = worker_->add_interval(500, [this] { check_liveness(); });
    }
    reconnect_backoff_.reset();
  } else if (st == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED && phase_ == Phase::Connected) {
    restart_ice();
  } else if (st == GST_WEBRTC_ICE_CONNECTION_STATE_DISCONNECTED && !disconnected_since_) {
    disconnected_since_ = g_get_monotonic_time();
  }
}

// Media stopped (the server or the network went away): ICE restart first, then a new session.
void WhepClient::check_liveness() {
  if (phase_ != Phase::Connected || !watching_) return;
  gint64 now = g_get_monotonic_time();
  bool silent = now - last_rx_->load() > kSilenceUs;
  bool disconnected = disconnected_since_ && now - disconnected_since_ > 2 * G_USEC_PER_SEC;
  if (silent || disconnected) {
    GST_INFO_OBJECT(element_, "nothing received for a while: restarting ICE");
    restart_ice();
  }
}

void WhepClient::restart_ice() {
  if (session_url_.empty() || etag_.empty() || !trickle_ok_) {
    reconnect("connection lost");
    return;
  }
  LocalIce local;
  std::string error;
  // The server's new credentials arrive in the 200; placeholders until then.
  if (!wish::restart_ice(webrtc_, "placeholder", "placeholderplaceholder00", {}, &local, &error)) {
    reconnect("ICE restart impossible: " + error);
    return;
  }
  phase_ = Phase::Restarting;
  trickle_.restart(local.ufrag, local.pwd);
  SdpFrag frag;
  frag.ice_ufrag = local.ufrag;
  frag.ice_pwd = local.pwd;
  frag.media.push_back({"0", local.candidates, true});
  unsigned gen = gen_;
  last_rx_->store(g_get_monotonic_time());
  http("PATCH", session_url_, {{"If-Match", "*"}}, "application/trickle-ice-sdpfrag", build_sdpfrag(frag),
       [this, gen, local](Response resp, std::string transport_error) {
         if (gen != gen_ || phase_ != Phase::Restarting) return;
         std::string err;
         auto answer = resp.status == 200 ? parse_sdpfrag(resp.body, &err) : std::nullopt;
         if (!answer || answer->ice_ufrag.empty()) {
           reconnect(resp.status ? "ICE restart refused with " + std::to_string(resp.status)
                                 : "ICE restart failed: " + transport_error);
           return;
         }
         std::vector<std::string> cands;
         for (const auto &m : answer->media) cands.insert(cands.end(), m.candidates.begin(), m.candidates.end());
         set_remote_ice(webrtc_, answer->ice_ufrag, answer->ice_pwd, cands);
         if (auto etag = resp.headers.get("ETag")) etag_ = std::string(trim(*etag));
         trickle_.set_session(etag_, local.ufrag, local.pwd);
         phase_ = Phase::Connected;
         ice_restarts_++;
         disconnected_since_ = 0;
         last_rx_->store(g_get_monotonic_time());
         GST_INFO_OBJECT(element_, "ICE restarted");
         post_message(gst_structure_new("wish-ice-restarted", "session-url", G_TYPE_STRING, session_url_.c_str(),
                                        nullptr));
       });
}

void WhepClient::reconnect(const std::string &reason) {
  Settings s = snapshot();
  if (s.max_reconnects >= 0 && reconnects_ >= s.max_reconnects) {
    fail("Lost the WHEP session", reason + " (after " + std::to_string(reconnects_) + " reconnection attempts)");
    return;
  }
  reconnects_++;
  double delay = reconnect_backoff_.next();
  GST_INFO_OBJECT(element_, "reconnecting (%s), attempt %d in %.1f s", reason.c_str(), reconnects_, delay);
  post_message(gst_structure_new("wish-reconnecting", "attempt", G_TYPE_INT, reconnects_, "reason", G_TYPE_STRING,
                                 reason.c_str(), "retry-in-ms", G_TYPE_UINT, static_cast<guint>(delay * 1000), nullptr));
  // The old session goes; a server that is still there frees it at once.
  if (!session_url_.empty()) {
    http("DELETE", session_url_, {}, "", "", [](Response, std::string) {});
    session_url_.clear();
    etag_.clear();
  }
  destroy_webrtcbin();
  watching_ = false;
  phase_ = Phase::Waiting;
  unsigned gen = gen_;
  schedule(delay, [this, gen] {
    timer_ = 0;
    if (gen != gen_ || phase_ != Phase::Waiting) return;
    post_url_ = snapshot().endpoint;
    start_session();
  });
}

void WhepClient::request_ice_restart() {
  if (!dispatch_) return;
  dispatch_->post([this] {
    if (phase_ == Phase::Connected) restart_ice();
  });
}

void WhepClient::send_eos() {
  outputs_.push_eos();
  if (worker_)
    worker_->invoke_sync([this] {
      g_cancellable_cancel(cancellable_);
      delete_session_sync();
      phase_ = Phase::Stopped;
    });
}

std::string WhepClient::session_url() {
  std::lock_guard<std::mutex> lock(pads_mutex_);
  return session_url_copy_;
}

GstStructure *WhepClient::stats() {
  std::lock_guard<std::mutex> lock(pads_mutex_);
  return gst_structure_new("application/x-whepsrc-stats", "session-url", G_TYPE_STRING, session_url_copy_.c_str(),
                           "state", G_TYPE_STRING, phase_copy_.c_str(), "reconnects", G_TYPE_INT, reconnects_,
                           "ice-restarts", G_TYPE_UINT, ice_restarts_, "buffers-out", G_TYPE_UINT64,
                           outputs_.buffers(), "link-ice-servers", G_TYPE_STRING,
                           link_ice_servers_.c_str(), nullptr);
}

}  // namespace wish

// ---------------------------------------------------------------------------------------
// GObject glue

enum {
  PROP_0,
  PROP_WHEP_ENDPOINT,
  PROP_AUTH_TOKEN,
  PROP_STUN_SERVER,
  PROP_TURN_SERVERS,
  PROP_USE_LINK_HEADERS,
  PROP_ICE_TRANSPORT_POLICY,
  PROP_LATENCY,
  PROP_TIMEOUT,
  PROP_VIDEO_CODECS,
  PROP_AUDIO_CODECS,
  PROP_MAX_RECONNECTS,
  PROP_RETRY_MAX_DELAY,
  PROP_TRICKLE,
  PROP_ICE_LOCAL_ADDRESSES,
  PROP_SESSION_URL,
  PROP_STATS,
};

static void gst_whep_src_init(GstWhepSrc *self) {
  self->client = new wish::WhepClient(self);
  wish::mark_live_source(GST_BIN(self));
}

static void gst_whep_src_finalize(GObject *object) {
  auto *self = GST_WHEP_SRC(object);
  delete self->client;
  G_OBJECT_CLASS(gst_whep_src_parent_class)->finalize(object);
}

static void gst_whep_src_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec) {
  auto *self = GST_WHEP_SRC(object);
  wish::Settings &s = self->client->settings;
  auto str = [&]() -> std::string {
    const gchar *v = g_value_get_string(value);
    return v ? v : "";
  };
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
    case PROP_WHEP_ENDPOINT: s.endpoint = str(); break;
    case PROP_AUTH_TOKEN: s.auth_token = str(); break;
    case PROP_STUN_SERVER: s.stun_server = str(); break;
    case PROP_TURN_SERVERS: s.turn_servers = wish::strings_from_value_array(value); break;
    case PROP_USE_LINK_HEADERS: s.use_link_headers = g_value_get_boolean(value); break;
    case PROP_ICE_TRANSPORT_POLICY:
      s.ice_transport_policy = static_cast<GstWebRTCICETransportPolicy>(g_value_get_enum(value));
      break;
    case PROP_LATENCY: s.latency = g_value_get_uint(value); break;
    case PROP_TIMEOUT: s.timeout = g_value_get_uint(value); break;
    case PROP_VIDEO_CODECS: s.video_codecs = str(); break;
    case PROP_AUDIO_CODECS: s.audio_codecs = str(); break;
    case PROP_MAX_RECONNECTS: s.max_reconnects = g_value_get_int(value); break;
    case PROP_RETRY_MAX_DELAY: s.retry_max_delay = g_value_get_uint(value); break;
    case PROP_TRICKLE: s.trickle = g_value_get_boolean(value); break;
    case PROP_ICE_LOCAL_ADDRESSES: s.ice_local_addresses = str(); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_whep_src_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  auto *self = GST_WHEP_SRC(object);
  if (prop_id == PROP_SESSION_URL) {
    std::string url = self->client->session_url();
    g_value_set_string(value, url.empty() ? nullptr : url.c_str());
    return;
  }
  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, self->client->stats());
    return;
  }
  const wish::Settings &s = self->client->settings;
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
    case PROP_WHEP_ENDPOINT: g_value_set_string(value, s.endpoint.empty() ? nullptr : s.endpoint.c_str()); break;
    case PROP_AUTH_TOKEN: g_value_set_string(value, s.auth_token.c_str()); break;
    case PROP_STUN_SERVER: g_value_set_string(value, s.stun_server.empty() ? nullptr : s.stun_server.c_str()); break;
    case PROP_TURN_SERVERS: wish::strings_to_value_array(s.turn_servers, value); break;
    case PROP_USE_LINK_HEADERS: g_value_set_boolean(value, s.use_link_headers); break;
    case PROP_ICE_TRANSPORT_POLICY: g_value_set_enum(value, s.ice_transport_policy); break;
    case PROP_LATENCY: g_value_set_uint(value, s.latency); break;
    case PROP_TIMEOUT: g_value_set_uint(value, s.timeout); break;
    case PROP_VIDEO_CODECS: g_value_set_string(value, s.video_codecs.c_str()); break;
    case PROP_AUDIO_CODECS: g_value_set_string(value, s.audio_codecs.c_str()); break;
    case PROP_MAX_RECONNECTS: g_value_set_int(value, s.max_reconnects); break;
    case PROP_RETRY_MAX_DELAY: g_value_set_uint(value, s.retry_max_delay); break;
    case PROP_TRICKLE: g_value_set_boolean(value, s.trickle); break;
    case PROP_ICE_LOCAL_ADDRESSES: g_value_set_string(value, s.ice_local_addresses.c_str()); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static GstStateChangeReturn gst_whep_src_change_state(GstElement *element, GstStateChange transition) {
  auto *self = GST_WHEP_SRC(element);
  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
    if (!self->client->start()) return GST_STATE_CHANGE_FAILURE;
  }
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) self->client->stop();
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(gst_whep_src_parent_class)->change_state(element, transition);
  return wish::live_source_result(transition, ret);
}

static gboolean gst_whep_src_send_event(GstElement *element, GstEvent *event) {
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
    GST_WHEP_SRC(element)->client->send_eos();
    gst_event_unref(event);
    return TRUE;
  }
  return GST_ELEMENT_CLASS(gst_whep_src_parent_class)->send_event(element, event);
}

static void gst_whep_src_restart_ice(GstWhepSrc *self) { self->client->request_ice_restart(); }

static void gst_whep_src_class_init(GstWhepSrcClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GST_DEBUG_CATEGORY_INIT(whepsrc_debug, "whepsrc", 0, "WHEP player source");
  gobject_class->finalize = gst_whep_src_finalize;
  gobject_class->set_property = gst_whep_src_set_property;
  gobject_class->get_property = gst_whep_src_get_property;
  element_class->change_state = gst_whep_src_change_state;
  element_class->send_event = gst_whep_src_send_event;

  auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  auto ro = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_property(gobject_class, PROP_WHEP_ENDPOINT,
      g_param_spec_string("whep-endpoint", "WHEP endpoint", "URL of the WHEP endpoint (http:// or https://)", nullptr,
                          flags));
  g_object_class_install_property(gobject_class, PROP_AUTH_TOKEN,
      g_param_spec_string("auth-token", "Authorization token",
                          "Bearer token sent as Authorization on every request (empty: none)", "", flags));
  g_object_class_install_property(gobject_class, PROP_STUN_SERVER,
      g_param_spec_string("stun-server", "STUN server", "STUN server as stun://host:port", nullptr, flags));
  g_object_class_install_property(gobject_class, PROP_TURN_SERVERS, wish::turn_servers_param_spec("TURN servers as turn(s)://user:password@host:port?transport=udp|tcp", flags));
  g_object_class_install_property(gobject_class, PROP_USE_LINK_HEADERS,
      g_param_spec_boolean("use-link-headers", "Use Link headers",
                           "Use the STUN/TURN servers the endpoint announces in Link rel=\"ice-server\" headers", TRUE,
                           flags));
  g_object_class_install_property(gobject_class, PROP_ICE_TRANSPORT_POLICY,
      g_param_spec_enum("ice-transport-policy", "ICE transport policy", "all, or relay (TURN only)",
                        GST_TYPE_WEBRTC_ICE_TRANSPORT_POLICY, GST_WEBRTC_ICE_TRANSPORT_POLICY_ALL, flags));
  g_object_class_install_property(gobject_class, PROP_LATENCY,
      g_param_spec_uint("latency", "Latency",
                        "Jitterbuffer size in ms: low by default for live playback; raise it on lossy networks", 0,
                        10000, 50, flags));
  g_object_class_install_property(gobject_class, PROP_TIMEOUT,
      g_param_spec_uint("timeout", "Timeout",
                        "Seconds an HTTP request may take, DELETE at shutdown included", 1, 3600, 10, flags));
  g_object_class_install_property(gobject_class, PROP_VIDEO_CODECS,
      g_param_spec_string("video-codecs", "Video codecs",
                          "Video codecs to offer in order, comma-separated from h264, vp8, vp9; empty: every one a "
                          "decoder is installed for; none: no video",
                          "", flags));
  g_object_class_install_property(gobject_class, PROP_AUDIO_CODECS,
      g_param_spec_string("audio-codecs", "Audio codecs",
                          "Audio codecs to offer, comma-separated from opus; empty: every one a decoder is installed "
                          "for; none: no audio",
                          "", flags));
  g_object_class_install_property(gobject_class, PROP_MAX_RECONNECTS,
      g_param_spec_int("max-reconnects", "Maximum reconnects",
                       "New sessions tried after the connection is lost and ICE restart fails (-1: unlimited)", -1,
                       G_MAXINT, 10, flags));
  g_object_class_install_property(gobject_class, PROP_RETRY_MAX_DELAY,
      g_param_spec_uint("retry-max-delay", "Maximum retry delay",
                        "Longest wait in seconds between POSTs answered 409/503 (backoff doubles from Retry-After)", 1,
                        3600, 30, flags));
  g_object_class_install_property(gobject_class, PROP_TRICKLE,
      g_param_spec_boolean("trickle", "Trickle ICE",
                           "POST the offer at once and send candidates by PATCH; false: POST a fully gathered offer",
                           TRUE, flags));
  g_object_class_install_property(gobject_class, PROP_ICE_LOCAL_ADDRESSES, wish::ice_local_addresses_param_spec(flags));
  g_object_class_install_property(gobject_class, PROP_SESSION_URL,
      g_param_spec_string("session-url", "Session URL", "URL of the current WHEP session (null when none)", nullptr,
                          ro));
  g_object_class_install_property(gobject_class, PROP_STATS,
      g_param_spec_boxed("stats", "Statistics",
                         "session-url, state, reconnects, ice-restarts, buffers-out and link-ice-servers (STUN/TURN URIs "
                         "the endpoint announced)", GST_TYPE_STRUCTURE, ro));

  /**
   * GstWhepSrc::restart-ice:
   *
   * Restarts ICE now (PATCH with If-Match: * and new credentials), e.g. after the
   * application saw the network change. A refused restart starts a new session.
   */
  g_signal_new_class_handler("restart-ice", G_TYPE_FROM_CLASS(klass),
                             static_cast<GSignalFlags>(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
                             G_CALLBACK(gst_whep_src_restart_ice), nullptr, nullptr, nullptr, G_TYPE_NONE, 0);

  gst_element_class_add_static_pad_template(element_class, &video_src_template);
  gst_element_class_add_static_pad_template(element_class, &audio_src_template);
  gst_element_class_set_static_metadata(
      element_class, "WHEP player source", "Source/Network/WebRTC",
      "Plays a WHEP endpoint (draft-ietf-wish-whep-03): decoded by default, encoded or RTP when downstream asks; "
      "posts wish-session-started, wish-waiting, wish-reconnecting and wish-ice-restarted element messages",
      "wish project");
}

// ---------------------------------------------------------------------------------------
// URI handler: whep://host/path is http, wheps:// is https.

static GstURIType gst_whep_src_uri_get_type(GType) { return GST_URI_SRC; }

static const gchar *const *gst_whep_src_uri_get_protocols(GType) {
  static const gchar *protocols[] = {"whep", "wheps", nullptr};
  return protocols;
}

static gchar *gst_whep_src_uri_get_uri(GstURIHandler *handler) {
  auto *self = GST_WHEP_SRC(handler);
  GST_OBJECT_LOCK(self);
  std::string endpoint = self->client->settings.endpoint;
  GST_OBJECT_UNLOCK(self);
  if (endpoint.rfind("https://", 0) == 0) return g_strdup(("wheps://" + endpoint.substr(8)).c_str());
  if (endpoint.rfind("http://", 0) == 0) return g_strdup(("whep://" + endpoint.substr(7)).c_str());
  return endpoint.empty() ? nullptr : g_strdup(endpoint.c_str());
}

static gboolean gst_whep_src_uri_set_uri(GstURIHandler *handler, const gchar *uri, GError **error) {
  auto *self = GST_WHEP_SRC(handler);
  std::string u = uri ? uri : "";
  std::string endpoint;
  if (u.rfind("wheps://", 0) == 0)
    endpoint = "https://" + u.substr(8);
  else if (u.rfind("whep://", 0) == 0)
    endpoint = "http://" + u.substr(7);
  else {
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_UNSUPPORTED_PROTOCOL, "not a whep:// or wheps:// URI: %s", uri);
    return FALSE;
  }
  GST_OBJECT_LOCK(self);
  self->client->settings.endpoint = endpoint;
  GST_OBJECT_UNLOCK(self);
  return TRUE;
}

static void gst_whep_src_uri_handler_init(gpointer g_iface, gpointer) {
  auto *iface = static_cast<GstURIHandlerInterface *>(g_iface);
  iface->get_type = gst_whep_src_uri_get_type;
  iface->get_protocols = gst_whep_src_uri_get_protocols;
  iface->get_uri = gst_whep_src_uri_get_uri;
  iface->set_uri = gst_whep_src_uri_set_uri;
}
