// SessionClient, continued: keeping a session alive (liveness probes, ICE restart, reconnection)
// and the server-sent events it subscribes to.
#include "session_client.h"

#include <algorithm>

#include "protocol/layers.h"
#include "webrtc_utils.h"

GST_DEBUG_CATEGORY_EXTERN(wish_client_debug);
#define GST_CAT_DEFAULT wish_client_debug

namespace wish {

namespace {

// Connected but nothing arrives for this long: ICE restart. A publisher receives only the
// server's RTCP reports, which GStreamer, browsers and most servers send 2 to 6 s apart.
constexpr gint64 kSilenceUs = 5 * G_USEC_PER_SEC;
constexpr gint64 kPublisherSilenceUs = 8 * G_USEC_PER_SEC;
// Nothing received for this long: ask the server whether the session is still there (a server
// that was killed or restarted has forgotten it; one behind a path that is gone does not
// answer), so a new session starts without waiting for the silence above. A player hears
// media every few ms and probes only when it stops; a publisher probes every 1.5 s between
// the server's reports.
constexpr gint64 kProbeUs = 1500 * 1000;
constexpr guint kProbeAnswerMs = 2000;  // a probe not answered within this: server unreachable
constexpr guint kAbandonDeleteMs = 2000;  // the DELETE of a session given up
// A session not connected (ICE and DTLS) this long after the answer is replaced by a new
// one: libnice has sent its last check on every candidate pair by then (3.5 s, see
// configure_webrtcbin), and servers give up on such a session about then (whipserversrc:
// 5 s). Waiting for libnice to call ICE failed, 5 s later, found the session gone.
constexpr guint kConnectMs = 5000;

}  // namespace

// ---------------------------------------------------------------------------------------
// Keeping the session alive

void SessionClient::on_ice_state(unsigned gen) {
  if (gen != gen_ || !peer_) return;
  GstWebRTCICEConnectionState st = peer_->ice_state();
  GST_DEBUG_OBJECT(element_, "ICE connection state %d", st);
  if (st == GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED || st == GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED) {
    disconnected_since_ = 0;
    if (!peer_->watching()) {
      peer_->watch_incoming();
      if (!liveness_timer_) liveness_timer_ = worker_->add_interval(500, [this] { check_liveness(); });
    }
    reconnect_backoff_.reset();
    if (lost_since_ && phase_ == Phase::Connected) {
      // Media flows again in a new session: the reconnection is over.
      guint down_ms = static_cast<guint>((g_get_monotonic_time() - lost_since_) / 1000);
      GST_INFO_OBJECT(element_, "reconnected after %d attempts, %u ms after the loss was noticed", attempts_, down_ms);
      post_message(gst_structure_new("wish-reconnected", "session-url", G_TYPE_STRING, session_url_.c_str(),
                                     "attempts", G_TYPE_INT, attempts_, "downtime-ms", G_TYPE_UINT, down_ms, nullptr));
      lost_since_ = 0;
      attempts_ = 0;
    }
  } else if (st == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED && phase_ == Phase::Connected) {
    restart_ice();
  } else if (st == GST_WEBRTC_ICE_CONNECTION_STATE_DISCONNECTED && !disconnected_since_) {
    disconnected_since_ = g_get_monotonic_time();
  }
}

void SessionClient::expect_connection() {
  worker_->cancel(connect_timer_);
  unsigned gen = gen_;
  gint64 since = g_get_monotonic_time();
  connect_timer_ = worker_->add_timeout(kConnectMs, [this, gen, since] {
    connect_timer_ = 0;
    if (gen != gen_ || !peer_ || phase_ != Phase::Connected) return;
    if (peer_->connection_state() == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED) return;
    std::string reason = "not connected " + std::to_string(kConnectMs / 1000) + " s after the answer";
    // The server is there (it answered): the next POST waits for the DELETE, or a server
    // that takes one publisher at a time answers it 409 while the old session lasts.
    phase_ = Phase::Waiting;
    std::string url = session_url_;
    session_url_.clear();
    etag_.clear();
    http("DELETE", url, {}, "", "", [this, gen, since, reason](Response, std::string) {
      if (gen == gen_ && phase_ == Phase::Waiting) reconnect(reason, since);
    }, RequestLimits{kAbandonDeleteMs, 0, false});
  });
}

// Media stopped (the server or the network went away): ICE restart first, then a new session.
void SessionClient::check_liveness() {
  if (phase_ != Phase::Connected || !peer_ || !peer_->watching()) return;
  gint64 now = g_get_monotonic_time();
  gint64 quiet = now - peer_->last_rx();
  bool silent = quiet > (protocol_ == ClientProtocol::Whep ? kSilenceUs : kPublisherSilenceUs);
  bool disconnected = disconnected_since_ && now - disconnected_since_ > 2 * G_USEC_PER_SEC;
  if (!silent && !disconnected && quiet > kProbeUs && !probing_ && now - last_probe_ > kProbeUs &&
      !session_url_.empty() && trickle_ok_ && !etag_.empty()) {
    probing_ = true;
    last_probe_ = now;
    unsigned gen = gen_;
    // A trickle PATCH without candidates (RFC 9725 §4.3.1): 404, no server at all, or no
    // answer within kProbeAnswerMs, means the session is gone. Anything else: it may still
    // be there; ICE restart at kSilenceUs.
    std::string frag = "a=ice-ufrag:" + local_ufrag_ + "\r\na=ice-pwd:" + local_pwd_ + "\r\n";
    http("PATCH", session_url_, {{"If-Match", etag_}}, "application/trickle-ice-sdpfrag", frag,
         [this, gen](Response resp, std::string transport_error) {
      probing_ = false;
      if (gen != gen_ || phase_ != Phase::Connected) return;
      if (resp.status == 404 || !transport_error.empty())
        reconnect(resp.status == 404 ? "the server no longer knows the session" : "server unreachable: " + transport_error);
         }, RequestLimits{kProbeAnswerMs, 0, false});
    return;
  }
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
  // The server's new credentials arrive in the 200.
  if (!peer_ || !peer_->restart_ice_locally(&local, &error)) {
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
         peer_->set_remote_ice(answer->ice_ufrag, answer->ice_pwd, cands);
         if (auto etag = resp.headers.get("ETag")) etag_ = std::string(trim(*etag));
         trickle_.set_session(etag_, local.ufrag, local.pwd);
         local_ufrag_ = local.ufrag;  // what probes send from now on
         local_pwd_ = local.pwd;
         phase_ = Phase::Connected;
         ice_restarts_++;
         disconnected_since_ = 0;
         GST_INFO_OBJECT(element_, "ICE restarted");
         post_message(gst_structure_new("wish-ice-restarted", "session-url", G_TYPE_STRING, session_url_.c_str(),
                                        nullptr));
       });
}

void SessionClient::reconnect(const std::string &reason, gint64 since) {
  ClientSettings s = snapshot();
  if (s.max_reconnects >= 0 && attempts_ >= s.max_reconnects) {
    fail((std::string("Lost the ") + name() + " session"), reason + " (after " + std::to_string(attempts_) + " reconnection attempts)");
    return;
  }
  gint64 now = g_get_monotonic_time();
  if (!lost_since_) lost_since_ = now;
  attempts_++;
  reconnects_++;
  // The backoff counts from when the failed attempt began: one that waited for a connection
  // that never came is followed by the next at once.
  double backoff = reconnect_backoff_.next();
  double delay = since ? std::max(0.0, backoff - (now - since) / 1e6) : backoff;
  GST_INFO_OBJECT(element_, "reconnecting (%s), attempt %d in %.1f s", reason.c_str(), attempts_, delay);
  post_message(gst_structure_new("wish-reconnecting", "attempt", G_TYPE_INT, attempts_, "reason", G_TYPE_STRING,
                                 reason.c_str(), "retry-in-ms", G_TYPE_UINT, static_cast<guint>(delay * 1000), nullptr));
  // The old session goes; a server that is still there frees it at once.
  if (!session_url_.empty()) {
    http("DELETE", session_url_, {}, "", "", [](Response, std::string) {}, RequestLimits{kAbandonDeleteMs, 0, false});
    session_url_.clear();
    etag_.clear();
  }
  destroy_webrtcbin();
  phase_ = Phase::Waiting;
  unsigned gen = gen_;
  schedule(delay, [this, gen] {
    timer_ = 0;
    if (gen != gen_ || phase_ != Phase::Waiting) return;
    post_url_ = snapshot().endpoint;
    start_session();
  });
}

void SessionClient::subscribe_events(const Response &resp) {
  std::string wanted = snapshot().events;
  if (protocol_ != ClientProtocol::Whep || wanted.empty()) return;
  for (const auto &value : resp.headers.get_all("Link"))
    for (const auto &link : parse_link_header(value)) {
      if (link.param("rel") != kEventsRel) continue;
      unsigned gen = gen_;
      std::string url = resolve_url(session_url_, link.target);
      std::string token = snapshot().auth_token;
      events_ = std::make_unique<EventSubscriber>(
          url, link.param("events"), split_list(wanted), token,
          [this, gen](const ServerEvent &e) { on_server_event(gen, e); },
          [this](const std::string &why) { GST_INFO_OBJECT(element_, "server-sent events: %s", why.c_str()); });
      if (events_->names().empty()) {
        GST_INFO_OBJECT(element_, "the server offers none of the events asked for");
        events_.reset();
        return;
      }
      events_->start();
      return;
    }
}

void SessionClient::on_server_event(unsigned gen, const ServerEvent &event) {
  if (gen != gen_) return;
  GST_DEBUG_OBJECT(element_, "event %s: %s", event.type.c_str(), event.data.c_str());
  GstStructure *s = gst_structure_new("wish-event", "event", G_TYPE_STRING, event.type.c_str(), "data", G_TYPE_STRING,
                                      event.data.c_str(), nullptr);
  if (event.type == "viewercount") gst_structure_set(s, "viewercount", G_TYPE_INT64, viewer_count(event.data), nullptr);
  std::string url = event.type == "reconnect" ? reconnect_url(event.data) : "";
  if (event.type == "reconnect") gst_structure_set(s, "url", G_TYPE_STRING, url.c_str(), nullptr);
  post_message(s);
  // Not from inside the subscriber's callback: moving drops it.
  if (event.type == "reconnect") dispatch_->post([this, gen, url] { move_to(gen, url); });
}

void SessionClient::request_layer() {
  if (!dispatch_) return;
  dispatch_->post([this] {
    if (phase_ == Phase::Connected) post_layer_request();
  });
}

// The layer extension names the video by its m-line in our offer.
void SessionClient::post_layer_request() {
  std::string rid = snapshot().video_layer;
  if (rid == "auto") rid.clear();
  if (layer_url_.empty()) {
    if (!rid.empty()) GST_WARNING_OBJECT(element_, "video-layer %s: the server offers no layer selection", rid.c_str());
    return;
  }
  int mline = -1, video = -1;
  for (size_t pos = 0; (pos = offer_.find("m=", pos)) != std::string::npos; pos += 2) {
    if (pos != 0 && offer_[pos - 1] != '\n') continue;
    mline++;
    if (video < 0 && offer_.compare(pos, 8, "m=video ") == 0) video = mline;
  }
  unsigned gen = gen_;
  http("POST", layer_url_, {}, "application/json", layer_request_body(std::to_string(std::max(video, 0)), rid),
       [this, gen, rid](Response resp, std::string error) {
         if (gen != gen_) return;
         GST_INFO_OBJECT(element_, "layer %s -> %u %s", rid.empty() ? "(server's choice)" : rid.c_str(), resp.status,
                         error.c_str());
         post_message(gst_structure_new("wish-layer", "rid", G_TYPE_STRING, rid.c_str(), "status", G_TYPE_UINT,
                                        resp.status, "detail", G_TYPE_STRING,
                                        resp.status == 200 ? "" : (error.empty() ? resp.body : error).c_str(), nullptr));
       });
}

void SessionClient::move_to(unsigned gen, const std::string &url) {
  if (gen != gen_ || (phase_ != Phase::Connected && phase_ != Phase::Restarting)) return;
  std::string target = url.empty() ? snapshot().endpoint : resolve_url(session_url_, url);
  GST_INFO_OBJECT(element_, "the server asked to reconnect: moving to %s", target.c_str());
  // Counted as a reconnection: if the new place does not answer, the usual attempts follow
  // (to the endpoint), and media flowing again is reported as wish-reconnected.
  if (!lost_since_) lost_since_ = g_get_monotonic_time();
  attempts_++;
  reconnects_++;
  post_message(gst_structure_new("wish-reconnecting", "attempt", G_TYPE_INT, attempts_, "reason", G_TYPE_STRING,
                                 "the server asked to reconnect", "retry-in-ms", G_TYPE_UINT, 0u, nullptr));
  if (!session_url_.empty()) {
    http("DELETE", session_url_, {}, "", "", [](Response, std::string) {}, RequestLimits{kAbandonDeleteMs, 0, false});
    session_url_.clear();
    etag_.clear();
  }
  destroy_webrtcbin();
  post_url_ = target;
  start_session();
}

void SessionClient::request_ice_restart() {
  if (!dispatch_) return;
  dispatch_->post([this] {
    if (phase_ == Phase::Connected) restart_ice();
  });
}

// EOS from the application: the session is DELETEd on the client's thread, then the outputs
// end; the application's thread never waits for the server.
void SessionClient::send_eos() {
  MediaSide *media = media_;
  finish_async([media] { media->eos(); });
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
