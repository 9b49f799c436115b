#include "session_client.h"

#include <gst/sdp/sdp.h>

#include <chrono>

#include "protocol/sdp.h"
#include "protocol/sdpfrag.h"
#include "webrtc_utils.h"

GST_DEBUG_CATEGORY_EXTERN(wish_client_debug);
#define GST_CAT_DEFAULT wish_client_debug

namespace wish {

namespace {

constexpr int kMaxRedirects = 10;
constexpr gint64 kSilenceUs = 5 * G_USEC_PER_SEC;  // connected but nothing arrives: ICE restart

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

#define SETTINGS_LOCK() GST_OBJECT_LOCK(element_)
#define SETTINGS_UNLOCK() GST_OBJECT_UNLOCK(element_)

const char *SessionClient::phase_name(Phase p) {
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

ClientSettings SessionClient::snapshot() {
  SETTINGS_LOCK();
  ClientSettings s = settings;
  SETTINGS_UNLOCK();
  return s;
}

bool SessionClient::prepare() {
  ClientSettings s = snapshot();
  if (s.endpoint.empty()) {
    GST_ELEMENT_ERROR(element_, RESOURCE, NOT_FOUND, ("No %s endpoint set", name()), ("set the endpoint property"));
    return false;
  }
  std::string error;
  if (!resolve_local_addresses(s.ice_local_addresses, &local_addresses_, &error)) {
    GST_ELEMENT_ERROR(element_, RESOURCE, SETTINGS, ("Invalid ice-local-addresses"), ("%s", error.c_str()));
    return false;
  }
  worker_ = std::make_unique<LoopThread>(protocol_ == ClientProtocol::Whep ? "whep-client" : "whip-client");
  dispatch_ = std::make_shared<Dispatcher>(worker_.get());
  worker_->invoke_sync([this, s] {
    // Redirects are followed by hand: body and Authorization go along, hops are counted.
    soup_ = soup_session_new_with_options("timeout", s.timeout, "idle-timeout", 30, "user-agent", "wish ", nullptr);
    cancellable_ = g_cancellable_new();
    phase_ = Phase::Idle;
    reconnects_ = 0;
    post_url_ = s.endpoint;
  });
  return true;
}

void SessionClient::begin() {
  if (!dispatch_) return;
  dispatch_->post([this] {
    if (phase_ == Phase::Idle) start_session();
  });
}

void SessionClient::stop() {
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
  media_->stop();
  std::lock_guard<std::mutex> lock(pads_mutex_);
  session_url_copy_.clear();
}

void SessionClient::schedule(double seconds, std::function<void()> fn) {
  worker_->cancel(timer_);
  timer_ = worker_->add_timeout(static_cast<guint>(seconds * 1000), std::move(fn));
}

void SessionClient::post_message(GstStructure *s) {
  gst_element_post_message(GST_ELEMENT(element_), gst_message_new_element(GST_OBJECT(element_), s));
}

void SessionClient::fail(const std::string &summary, const std::string &detail) {
  phase_ = Phase::Failed;
  {
    std::lock_guard<std::mutex> lock(pads_mutex_);
    phase_copy_ = phase_name(phase_);
  }
  GST_ELEMENT_ERROR(element_, RESOURCE, FAILED, ("%s", summary.c_str()), ("%s", detail.c_str()));
}

// ---------------------------------------------------------------------------------------
// HTTP

void SessionClient::http(const char *method, const std::string &url,
                      const std::vector<std::pair<std::string, std::string>> &headers, const std::string &content_type,
                      const std::string &body, HttpCallback cb) {
  SoupMessage *msg = soup_message_new(method, url.c_str());
  if (!msg) {
    cb(Response::empty(0), "invalid URL " + url);
    return;
  }
  soup_message_add_flags(msg, SOUP_MESSAGE_NO_REDIRECT);
  SoupMessageHeaders *h = soup_message_get_request_headers(msg);
  ClientSettings s = snapshot();
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
void SessionClient::delete_session_sync() {
  if (session_url_.empty() || !soup_) return;
  SoupMessage *msg = soup_message_new("DELETE", session_url_.c_str());
  if (msg) {
    ClientSettings s = snapshot();
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

bool SessionClient::create_webrtcbin(bool with_media, std::string *error) {
  ClientSettings s = snapshot();
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
    SessionClient *self;
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
            SessionClient *client = c->self;
            unsigned g = c->gen;
            c->dispatch->post([client, g, mline, candidate] { client->on_candidate(g, mline, candidate); });
          }));
  connect("notify::ice-gathering-state", G_CALLBACK(+[](GstElement *w, GParamSpec *, gpointer d) {
            auto *c = static_cast<Ctx *>(d);
            GstWebRTCICEGatheringState st;
            g_object_get(w, "ice-gathering-state", &st, nullptr);
            if (st != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) return;
            SessionClient *client = c->self;
            unsigned g = c->gen;
            c->dispatch->post([client, g] { client->on_gathering_done(g); });
          }));
  connect("notify::ice-connection-state", G_CALLBACK(+[](GstElement *, GParamSpec *, gpointer d) {
            auto *c = static_cast<Ctx *>(d);
            SessionClient *client = c->self;
            unsigned g = c->gen;
            c->dispatch->post([client, g] { client->on_ice_state(g); });
          }));
  connect("pad-added", G_CALLBACK(+[](GstElement *, GstPad *pad, gpointer d) {
            auto *c = static_cast<Ctx *>(d);
            if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
            c->self->media_->on_stream(pad, stream_kind(pad));
          }));
  gst_bin_add(GST_BIN(element_), webrtc_);

  if (with_media && !media_->attach(webrtc_, error)) return false;
  gst_element_sync_state_with_parent(webrtc_);
  gathered_.clear();
  gathering_done_ = false;
  watching_ = false;
  // A reconnection gathers with the servers the endpoint announced last time.
  if (!link_servers_.empty()) apply_ice_servers(link_servers_);
  return true;
}

void SessionClient::destroy_webrtcbin() {
  gen_++;
  if (!webrtc_) return;
  // Stopped first: that releases any streaming thread blocked in its pads before the media
  // side detaches from them.
  gst_element_set_locked_state(webrtc_, TRUE);
  gst_element_set_state(webrtc_, GST_STATE_NULL);
  media_->detach(webrtc_);
  gst_bin_remove(GST_BIN(element_), webrtc_);
  webrtc_ = nullptr;
}

void SessionClient::start_session() {
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
  ClientSettings s = snapshot();
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

void SessionClient::on_offer_created(unsigned gen, std::string sdp) {
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

void SessionClient::post_offer() {
  phase_ = Phase::Posting;
  {
    std::lock_guard<std::mutex> lock(pads_mutex_);
    phase_copy_ = phase_name(phase_);
  }
  // Trickle: what was gathered so far goes in the offer, the rest by PATCH.
  std::string body = unbundle_only(finish_local_sdp(offer_, gathered_, !trickle_ok_));
  if (trickle_ok_) gathered_.clear();
  GST_LOG_OBJECT(element_, "offer:\n%s", body.c_str());
  unsigned gen = gen_;
  std::string url = post_url_;
  http("POST", url, {}, "application/sdp", body, [this, gen, url](Response resp, std::string transport_error) {
    on_post_response(gen, url, std::move(resp), std::move(transport_error));
  });
}

void SessionClient::apply_ice_servers(const std::vector<IceServer> &servers) {
  ClientSettings s = snapshot();
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

void SessionClient::on_post_response(unsigned gen, std::string url, Response resp, std::string transport_error) {
  if (gen != gen_ || phase_ != Phase::Posting) return;
  if (resp.status == 0) {
    if (reconnects_ > 0) {
      reconnect("server unreachable: " + transport_error);
      return;
    }
    fail((std::string("Cannot reach the ") + name() + " endpoint"), url + ": " + transport_error);
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
        fail((std::string("The ") + name() + " server sent an unusable answer"), resp.body.substr(0, 200));
        return;
      }
      GstWebRTCSessionDescription *answer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
      auto dispatch = dispatch_;
      GstPromise *promise = promise_with_callback([this, gen, dispatch](bool ok, const GstStructure *, const std::string &err) {
        if (!ok) dispatch->post([this, gen, err] {
          if (gen == gen_) fail((std::string("The ") + name() + " server's answer was rejected"), err);
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
      if (protocol_ != ClientProtocol::Whep) {
        fail(std::string("The ") + name() + " server refused the session", "406 Not Acceptable");
        return;
      }
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
      fail((std::string("The ") + name() + " server refused the session"), d.error);
      break;
  }
}

// The server sent its own offer (406): answer it with a fresh webrtcbin and PATCH the answer.
void SessionClient::handle_counter_offer(const PostDecision &d, const std::string &offer) {
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
        fail((std::string("Cannot answer the ") + name() + " server's counter-offer"), n.error);
    });
  });
}

void SessionClient::send_counter_answer(unsigned gen, std::string sdp) {
  if (gen != gen_ || phase_ != Phase::CounterOffer) return;
  offer_ = sdp;  // our answer, completed when gathering is done
  if (!gathering_done_) return;  // on_gathering_done comes back here
  std::string body = finish_local_sdp(offer_, gathered_, true);
  phase_ = Phase::Posting;
  http("PATCH", session_url_, {}, "application/sdp", body, [this, gen](Response resp, std::string transport_error) {
    if (gen != gen_) return;
    if (resp.status != 204 && resp.status != 200) {
      fail((std::string("The ") + name() + " server refused our answer to its counter-offer"),
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

void SessionClient::on_candidate(unsigned gen, guint, std::string candidate) {
  if (gen != gen_ || candidate.empty()) return;
  if (candidate.rfind("a=", 0) == 0) candidate = candidate.substr(2);
  if (phase_ == Phase::Connected && trickle_ok_) {
    trickle_.add("0", candidate);  // max-bundle: everything goes on the first m-line's transport
    flush_trickle();
  } else {
    gathered_.push_back(candidate);
  }
}

void SessionClient::on_gathering_done(unsigned gen) {
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
void SessionClient::flush_trickle() {
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

void SessionClient::on_ice_state(unsigned gen) {
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
void SessionClient::check_liveness() {
  if (phase_ != Phase::Connected || !watching_) return;
  gint64 now = g_get_monotonic_time();
  bool silent = now - last_rx_->load() > kSilenceUs;
  bool disconnected = disconnected_since_ && now - disconnected_since_ > 2 * G_USEC_PER_SEC;
  if (silent || disconnected) {
    GST_INFO_OBJECT(element_, "nothing received for a while: restarting ICE");
    restart_ice();
  }
}

void SessionClient::restart_ice() {
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

void SessionClient::reconnect(const std::string &reason) {
  ClientSettings s = snapshot();
  if (s.max_reconnects >= 0 && reconnects_ >= s.max_reconnects) {
    fail((std::string("Lost the ") + name() + " session"), reason + " (after " + std::to_string(reconnects_) + " reconnection attempts)");
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

void SessionClient::request_ice_restart() {
  if (!dispatch_) return;
  dispatch_->post([this] {
    if (phase_ == Phase::Connected) restart_ice();
  });
}

void SessionClient::send_eos() {
  media_->eos();
  if (worker_)
    worker_->invoke_sync([this] {
      g_cancellable_cancel(cancellable_);
      delete_session_sync();
      phase_ = Phase::Stopped;
    });
}

void SessionClient::finish_async(std::function<void()> done) {
  if (!dispatch_ || !dispatch_->post([this, done] {
        worker_->cancel(timer_);
        timer_ = 0;
        g_cancellable_cancel(cancellable_);
        delete_session_sync();
        phase_ = Phase::Stopped;
        done();
      }))
    done();
}

std::string SessionClient::session_url() {
  std::lock_guard<std::mutex> lock(pads_mutex_);
  return session_url_copy_;
}

GstStructure *SessionClient::stats() {
  std::lock_guard<std::mutex> lock(pads_mutex_);
  return gst_structure_new(protocol_ == ClientProtocol::Whep ? "application/x-whepsrc-stats" : "application/x-whipsink-stats", "session-url", G_TYPE_STRING, session_url_copy_.c_str(),
                           "state", G_TYPE_STRING, phase_copy_.c_str(), "reconnects", G_TYPE_INT, reconnects_,
                           "ice-restarts", G_TYPE_UINT, ice_restarts_, "buffers-out", G_TYPE_UINT64,
                           media_->buffers(), "link-ice-servers", G_TYPE_STRING,
                           link_ice_servers_.c_str(), nullptr);
}

}  // namespace wish
