#include "session_client.h"

#include "http_request.h"

#include <gst/sdp/sdp.h>

#include <algorithm>
#include <chrono>

#include "protocol/layers.h"
#include "protocol/sdp.h"
#include "protocol/sdpfrag.h"
#include "webrtc_utils.h"

GST_DEBUG_CATEGORY_EXTERN(wish_client_debug);
#define GST_CAT_DEFAULT wish_client_debug

namespace wish {

namespace {

constexpr int kMaxRedirects = 10;
// The POSTs of a reconnection each get a connection of their own, given up when it is not
// made within this: a path that went away gets a fresh try every 2 s instead of a SYN
// retransmitted ever later, and the first one after the path is back gets through.
constexpr guint kReconnectConnectMs = 2000;

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
  if (!parse_port_range(s.ice_port_range, &ice_ports_, &error)) {
    GST_ELEMENT_ERROR(element_, RESOURCE, SETTINGS, ("Invalid ice-port-range"), ("%s", error.c_str()));
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
    attempts_ = 0;
    lost_since_ = 0;
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
    worker_->cancel(connect_timer_);
    timer_ = liveness_timer_ = connect_timer_ = 0;
    g_cancellable_cancel(cancellable_);
    events_.reset();
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

void SessionClient::fail(const std::string &summary, const std::string &detail, unsigned http_status) {
  phase_ = Phase::Failed;
  {
    std::lock_guard<std::mutex> lock(pads_mutex_);
    phase_copy_ = phase_name(phase_);
  }
  // The HTTP status picks the error code (what souphttpsrc does too) and travels in the
  // error's details for applications: http-status (0 when nothing answered).
  GstResourceError code = GST_RESOURCE_ERROR_FAILED;
  switch (http_status == kNoHttp ? ClientFailure::Other : client_failure(http_status)) {
    case ClientFailure::NotAuthorized: code = GST_RESOURCE_ERROR_NOT_AUTHORIZED; break;
    case ClientFailure::NotFound: code = GST_RESOURCE_ERROR_NOT_FOUND; break;
    case ClientFailure::Busy: code = GST_RESOURCE_ERROR_BUSY; break;
    case ClientFailure::Unreachable: code = GST_RESOURCE_ERROR_OPEN_READ_WRITE; break;
    case ClientFailure::Refused: code = GST_RESOURCE_ERROR_SETTINGS; break;
    case ClientFailure::Other: code = GST_RESOURCE_ERROR_FAILED; break;
  }
  GstStructure *details = gst_structure_new("details", "url", G_TYPE_STRING, post_url_.c_str(), nullptr);
  if (http_status != kNoHttp) gst_structure_set(details, "http-status", G_TYPE_UINT, http_status, nullptr);
  gst_element_message_full_with_details(element_, GST_MESSAGE_ERROR, GST_RESOURCE_ERROR, code, g_strdup(summary.c_str()),
                                        g_strdup(detail.c_str()), __FILE__, GST_FUNCTION, __LINE__, details);
}

// ---------------------------------------------------------------------------------------
// HTTP

void SessionClient::http(const char *method, const std::string &url,
                      const std::vector<std::pair<std::string, std::string>> &headers, const std::string &content_type,
                      const std::string &body, HttpCallback cb, const RequestLimits &limits) {
  std::vector<std::pair<std::string, std::string>> all;
  ClientSettings s = snapshot();
  if (!s.auth_token.empty()) all.emplace_back("Authorization", "Bearer " + s.auth_token);
  all.insert(all.end(), headers.begin(), headers.end());  // later ones replace earlier ones
  GST_DEBUG_OBJECT(element_, "%s %s", method, url.c_str());
  send_request(soup_, cancellable_, method, url, all, content_type, body, std::move(cb), limits);
}

// Best effort, bounded by the timeout property: a server that is gone must not hold up
// shutdown for longer than that.
void SessionClient::delete_session_sync() {
  if (session_url_.empty() || !soup_) return;
  g_autoptr(SoupMessage) msg = soup_message_new("DELETE", session_url_.c_str());
  if (msg) {
    ClientSettings s = snapshot();
    if (!s.auth_token.empty())
      soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization",
                                   ("Bearer " + s.auth_token).c_str());
    g_autoptr(GError) err = nullptr;
    g_autoptr(GBytes) bytes = soup_session_send_and_read(soup_, msg, nullptr, &err);
    GST_INFO_OBJECT(element_, "DELETE %s -> %u%s%s", session_url_.c_str(), soup_message_get_status(msg),
                    err ? " " : "", err ? err->message : "");
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
  unsigned gen = gen_;
  Peer::Settings ps;
  ps.local_addresses = local_addresses_;
  ps.ports = ice_ports_;
  ps.stun_server = s.stun_server;
  ps.turn_servers = s.turn_servers;
  ps.latency_ms = static_cast<int>(s.latency);
  ps.ice_transport_policy = s.ice_transport_policy;
  ps.retransmission = s.do_retransmission;
  Peer::Callbacks cb;
  cb.on_candidate = [this, gen](const std::string &candidate) { on_candidate(gen, candidate); };
  cb.on_gathering_done = [this, gen] { on_gathering_done(gen); };
  cb.on_state = [this, gen] { on_ice_state(gen); };
  MediaSide *media = media_;
  cb.on_stream = [media](GstPad *pad, const std::string &kind) { media->on_stream(pad, kind); };
  peer_ = std::make_unique<Peer>(GST_BIN(element_), worker_.get(), dispatch_);
  if (!peer_->create("", ps, cb, error)) {
    peer_.reset();
    return false;
  }
  if (with_media && !media_->attach(peer_->webrtcbin(), error)) return false;
  gathered_.clear();
  gathering_done_ = false;
  // A reconnection gathers with the servers the endpoint announced last time.
  if (!link_servers_.empty()) apply_ice_servers(link_servers_);
  peer_->start();
  return true;
}

void SessionClient::destroy_webrtcbin() {
  gen_++;
  worker_->cancel(connect_timer_);
  connect_timer_ = 0;
  events_.reset();  // the session's events end with it
  if (!peer_) return;
  // Stopped first: that releases any streaming thread blocked in its pads before the media
  // side detaches from them.
  MediaSide *media = media_;
  peer_->close([media](GstElement *webrtc) { media->detach(webrtc); });
  peer_.reset();
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
  probing_ = false;
  redirects_ = 0;
  ClientSettings s = snapshot();
  trickle_ok_ = s.trickle;
  unsigned gen = gen_;
  peer_->offer([this, gen](Negotiated n) {
    if (gen != gen_) return;
    if (!n.ok)
      fail("Cannot create an SDP offer", n.error);
    else
      on_offer_created(gen, n.sdp);
  });
}

void SessionClient::on_offer_created(unsigned gen, std::string sdp) {
  if (gen != gen_ || phase_ != Phase::Offering) return;
  GST_DEBUG_OBJECT(element_, "offer created");
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
  RequestLimits limits;
  if (attempts_ > 0) {
    limits.connect_ms = kReconnectConnectMs;
    limits.new_connection = true;
    attempt_began_ = g_get_monotonic_time();
  }
  http("POST", url, {}, "application/sdp", body, [this, gen, url](Response resp, std::string transport_error) {
    on_post_response(gen, url, std::move(resp), std::move(transport_error));
  }, limits);
}

void SessionClient::apply_ice_servers(const std::vector<IceServer> &servers) {
  ClientSettings s = snapshot();
  if (!s.use_link_headers || !peer_) return;
  GstElement *webrtc = peer_->webrtcbin();
  if (&servers != &link_servers_) link_servers_ = servers;
  {
    std::lock_guard<std::mutex> lock(pads_mutex_);
    link_ice_servers_.clear();
  }
  for (const auto &srv : servers) {
    if (srv.scheme == "stun" || srv.scheme == "stuns") {
      if (s.stun_server.empty()) g_object_set(webrtc, "stun-server", srv.gst_url().c_str(), nullptr);
    } else {
      gboolean ok = FALSE;
      g_signal_emit_by_name(webrtc, "add-turn-server", srv.gst_url().c_str(), &ok);
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
    if (attempts_ > 0) {
      reconnect("server unreachable: " + transport_error, attempt_began_);
      return;
    }
    fail((std::string("Cannot reach the ") + name() + " endpoint"), url + ": " + transport_error, 0);
    return;
  }
  PostDecision d = decide_post(url, resp, unix_now());
  GST_INFO_OBJECT(element_, "POST %s -> %u", url.c_str(), resp.status);
  // A server coming back behind a proxy or load balancer answers 500/502/504 for a while,
  // and one whose HTTP server is up before (or still, while it stops) its endpoint is
  // mounted answers 404: while reconnecting to an endpoint that played, that is one more
  // server that is not there yet.
  if (attempts_ > 0 && d.outcome == PostOutcome::Fail &&
      (resp.status == 404 || resp.status == 500 || resp.status == 502 || resp.status == 504)) {
    reconnect("server answered " + std::to_string(resp.status), attempt_began_);
    return;
  }
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
      peer_->apply_answer(resp.body, [this, gen](Negotiated n) {
        if (gen == gen_ && !n.ok) fail((std::string("The ") + name() + " server's answer was rejected"), n.error);
      });
      phase_ = Phase::Connected;
      expect_connection();
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
      subscribe_events(resp);
      layer_url_.clear();
      for (const auto &value : resp.headers.get_all("Link"))
        for (const auto &link : parse_link_header(value))
          if (link.param("rel") == kLayerRel) layer_url_ = resolve_url(session_url_, link.target);
      if (!snapshot().video_layer.empty()) post_layer_request();
      break;
    }
    case PostOutcome::CounterOffer:
      if (protocol_ != ClientProtocol::Whep) {
        fail(std::string("The ") + name() + " server refused the session", "406 Not Acceptable", resp.status);
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
      fail((std::string("The ") + name() + " server refused the session"), d.error, resp.status);
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
  peer_->answer(offer, [this, gen](Negotiated n) {
    if (gen != gen_) return;
    if (n.ok)
      send_counter_answer(gen, n.sdp);
    else
      fail((std::string("Cannot answer the ") + name() + " server's counter-offer"), n.error);
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
                       : transport_error,
           resp.status);
      return;
    }
    phase_ = Phase::Connected;
    expect_connection();
    post_message(gst_structure_new("wish-session-started", "session-url", G_TYPE_STRING, session_url_.c_str(),
                                   "reconnects", G_TYPE_INT, reconnects_, nullptr));
  });
}

// ---------------------------------------------------------------------------------------
// Trickle ICE

void SessionClient::on_candidate(unsigned gen, const std::string &candidate) {
  if (gen != gen_ || candidate.empty()) return;
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

}  // namespace wish
