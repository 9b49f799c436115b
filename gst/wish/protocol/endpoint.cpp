#include "endpoint.h"

#include <chrono>
#include <optional>

#include "stream_names.h"

namespace wish {

namespace {
constexpr const char *kSdp = "application/sdp";
constexpr const char *kSdpFrag = "application/trickle-ice-sdpfrag";
constexpr const char *kExposed = "Location, ETag, Link, Accept-Post, Accept-Patch, Retry-After, Content-Type";
constexpr const char *kEndpointMethods = "OPTIONS, POST, GET, HEAD";
constexpr const char *kSessionMethods = "OPTIONS, PATCH, DELETE, GET";
}  // namespace

const char *session_state_name(SessionState s) {
  switch (s) {
    case SessionState::Negotiating: return "negotiating";
    case SessionState::CounterOffered: return "counter-offered";
    case SessionState::Active: return "active";
  }
  return "unknown";
}

void SessionEvents::connected() {
  if (auto ep = endpoint_.lock()) ep->on_connected(id_);
}

void SessionEvents::ended(const std::string &reason) {
  if (auto ep = endpoint_.lock()) ep->on_ended(id_, reason);
}

Endpoint::Endpoint(EndpointConfig config, MediaBackend *backend, Clock clock)
    : config_(std::move(config)), backend_(backend), clock_(std::move(clock)) {}

Endpoint::~Endpoint() { close_all(); }

int64_t Endpoint::now() const {
  if (clock_) return clock_();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Endpoint::set_config(EndpointConfig config) {
  std::lock_guard<std::mutex> lock(mutex_);
  config_ = std::move(config);
}

EndpointConfig Endpoint::config() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return config_;
}

std::string Endpoint::session_url(const std::string &id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return config_.path + "/sessions/" + id;
}

Endpoint::Counters Endpoint::counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

bool Endpoint::has_session(const std::string &id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return sessions_.count(id) > 0;
}

std::string Endpoint::ended_reason(const std::string &id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = ended_.find(id);
  return it == ended_.end() ? "" : it->second;
}

std::string Endpoint::ice_connection_state(const std::string &id) const {
  auto media = media_of(id);
  return media ? media->ice_connection_state() : "";
}

Response Endpoint::decorate(const Request &req, Response resp) const {
  std::lock_guard<std::mutex> lock(mutex_);
  apply_cors(req, config_.cors_allowed_origins, kExposed, &resp);
  return resp;
}

Endpoint::Route Endpoint::route(const std::string &path) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string &base = config_.path;
  Route r;
  if (path == base || path == base + "/") {
    r.is_endpoint = true;
    return r;
  }
  if (path.size() <= base.size() + 1 || path.compare(0, base.size(), base) != 0 || path[base.size()] != '/') return r;
  std::string rest = path.substr(base.size() + 1);
  const std::string sessions = "sessions/";
  if (rest.compare(0, sessions.size(), sessions) == 0 && rest.size() > sessions.size()) {
    r.is_session = true;
    r.session = rest.substr(sessions.size());
    size_t slash = r.session.find('/');
    if (slash != std::string::npos) {  // a resource of the session: only its event streams (WHEP)
      std::string below = r.session.substr(slash + 1);
      r.session.resize(slash);
      if (config_.kind == EndpointKind::Whep && (below == "sse" || below.compare(0, 4, "sse/") == 0)) {
        r.is_events = true;
        r.subscription = below.size() > 4 ? below.substr(4) : "";
        if (r.subscription.find('/') != std::string::npos) r.is_session = r.is_events = false;
      } else if (config_.kind == EndpointKind::Whep && below == "layer") {
        r.is_layer = true;
      } else {
        r.is_session = false;
      }
    }
  } else if (config_.named_streams && valid_stream_name(rest)) {
    r.is_endpoint = true;
    r.stream = rest;
  }
  return r;
}

void Endpoint::handle(const Request &req, Reply reply) {
  // Every answer leaves with the CORS headers, whoever sends it.
  std::weak_ptr<Endpoint> weak = weak_from_this();
  Reply decorated([weak, req, reply](Response r) {
    auto self = weak.lock();
    reply.send(self ? self->decorate(req, std::move(r)) : std::move(r));
  });

  bool preflight = req.method == "OPTIONS" && req.headers.has("Access-Control-Request-Method");
  std::string token, page;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    token = config_.auth_token;
    page = config_.player_page;
  }
  Route where = route(req.path);
  if (!where.is_endpoint && !where.is_session) {
    decorated.send(Response::problem(404, "no such resource"));
    return;
  }

  if (preflight) {
    const char *methods = where.is_endpoint                      ? kEndpointMethods
                          : !where.is_events && !where.is_layer ? kSessionMethods
                                                                : extension_methods(where);
    Response r = preflight_response(req, methods);
    if (where.is_endpoint) r.headers.set("Accept-Post", kSdp);
    decorated.send(std::move(r));
    return;
  }

  // The player page is public so a browser can open it; it sends the token itself.
  if (where.is_endpoint && req.method == "GET" && !page.empty()) {
    auto accept = req.headers.get("Accept");
    if (accept && accept->find("text/html") != std::string::npos) {
      Response r = Response::empty(200);
      r.headers.set("Content-Type", "text/html; charset=utf-8");
      r.body = page;
      decorated.send(std::move(r));
      return;
    }
  }

  if (auto refusal = refuse_unauthorized(req, token)) {
    decorated.send(std::move(*refusal));
    return;
  }

  if (where.is_endpoint)
    handle_endpoint(req, where.stream, std::move(decorated));
  else if (where.is_events)
    handle_events(req, where, std::move(decorated));
  else if (where.is_layer)
    handle_layer(req, where.session, std::move(decorated));
  else
    handle_session(req, where.session, std::move(decorated));
}

void Endpoint::handle_endpoint(const Request &req, const std::string &stream, Reply reply) {
  if (req.method == "POST") {
    handle_post(req, stream, std::move(reply));
  } else if (req.method == "OPTIONS") {
    Response r = Response::empty(200);
    r.headers.set("Accept-Post", kSdp);
    r.headers.set("Allow", kEndpointMethods);
    reply.send(std::move(r));
  } else if (req.method == "HEAD") {
    Response r = Response::empty(200);
    r.headers.set("Content-Type", kSdp);
    reply.send(std::move(r));
  } else if (req.method == "GET") {
    reply.send(Response::empty(200));
  } else {
    Response r = Response::problem(405, "method not allowed on the endpoint");
    r.headers.set("Allow", kEndpointMethods);
    reply.send(std::move(r));
  }
}

static bool usable_for(EndpointKind kind, const MediaSection &m) {
  if (m.rejected() || (m.kind != "audio" && m.kind != "video") || m.formats.empty()) return false;
  if (kind == EndpointKind::Whep)
    return m.direction == Direction::RecvOnly || m.direction == Direction::SendRecv;
  return m.direction == Direction::SendOnly || m.direction == Direction::SendRecv;
}

void Endpoint::handle_post(const Request &req, const std::string &stream, Reply reply) {
  EndpointConfig cfg = config();
  auto ct = req.headers.get("Content-Type");
  if (!ct || media_type(*ct) != kSdp) {
    Response r = Response::problem(415, "POST needs Content-Type: application/sdp");
    r.headers.set("Accept-Post", kSdp);
    reply.send(std::move(r));
    return;
  }
  if (req.body.size() > cfg.max_body_size) {
    reply.send(Response::problem(413, "offer larger than " + std::to_string(cfg.max_body_size) + " bytes"));
    return;
  }
  std::string error;
  auto offer = parse_sdp(req.body, &error);
  if (!offer) {
    reply.send(Response::problem(400, "malformed SDP offer: " + error));
    return;
  }
  // Every m-line becomes a transceiver and every candidate a check: a huge offer is refused
  // before it costs anything.
  size_t candidates = 0;
  for (const auto &m : offer->media) candidates += m.candidates.size();
  if (offer->media.size() > cfg.max_media_sections || candidates > cfg.max_candidates) {
    reply.send(Response::problem(400, "offer has more than " + std::to_string(cfg.max_media_sections) +
                                          " m-lines or " + std::to_string(cfg.max_candidates) + " candidates"));
    return;
  }
  bool any_usable = false;
  for (const auto &m : offer->media) any_usable = any_usable || usable_for(cfg.kind, m);
  if (!any_usable) {
    reply.send(Response::problem(400, cfg.kind == EndpointKind::Whep
                                          ? "offer has no audio or video m-line that can receive"
                                          : "offer has no audio or video m-line that sends"));
    return;
  }

  Admission admission = backend_->admit(stream);
  if (admission.status != 0) {
    Response r = Response::problem(admission.status, admission.reason);
    if (admission.status == 409 || admission.status == 503)
      r.headers.set("Retry-After", std::to_string(cfg.retry_after_s));
    reply.send(std::move(r));
    return;
  }

  bool counter_offer = false;
  std::string why;
  if (cfg.kind == EndpointKind::Whep) {
    if (cfg.counter_offer == CounterOfferMode::Always) {
      counter_offer = true;
    } else if (!backend_->can_answer(stream, *offer, &why)) {
      if (cfg.counter_offer == CounterOfferMode::Never) {
        reply.send(Response::problem(422, why.empty() ? "no codec in common with the offer" : why));
        return;
      }
      counter_offer = true;
    }
  } else if (!backend_->can_answer(stream, *offer, &why)) {
    reply.send(Response::problem(422, why.empty() ? "offer carries no stream this endpoint can take" : why));
    return;
  }

  SessionRequest request;
  request.id = random_hex(16);  // 128 bits from the kernel CSPRNG
  request.stream = stream;
  request.counter_offer = counter_offer;
  int video_mline = -1;  // the layer extension names the video by its m-line
  for (size_t i = 0; i < offer->media.size() && video_mline < 0; i++)
    if (offer->media[i].kind == "video" && !offer->media[i].rejected()) video_mline = static_cast<int>(i);
  if (!counter_offer) {
    request.offer = req.body;
    request.parsed = std::move(*offer);
  }
  bool full = false, client_busy = false;
  const bool overloaded = backend_->overloaded();
  std::string redirect;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    full = overloaded || (config_.max_sessions && sessions_.size() >= config_.max_sessions);
    if (full && !config_.redirect_to.empty()) {
      size_t turn = next_redirect_++;
      size_t i = config_.redirect_loads ? config_.redirect_loads->choose(turn) : turn % config_.redirect_to.size();
      redirect = config_.redirect_to[i % config_.redirect_to.size()] + (stream.empty() ? "" : "/" + stream);
    }
    if (!full && config_.max_pending_per_client && !req.client.empty()) {
      unsigned pending = 0;
      for (const auto &kv : sessions_) pending += kv.second.client == req.client && !kv.second.connected;
      client_busy = pending >= config_.max_pending_per_client;
    }
    if (!full && !client_busy) {
      Session s;
      s.client = req.client;
      s.etag = "\"" + random_hex(12) + "\"";
      s.stream = stream;
      s.created = now();
      s.video_mline = video_mline;
      sessions_[request.id] = std::move(s);
    }
  }
  if (!redirect.empty()) {
    Response r = Response::empty(307);
    r.headers.set("Location", redirect);
    reply.send(std::move(r));
    return;
  }
  if (full || client_busy) {
    Response r = Response::problem(503, overloaded ? "the server is over its load limit"
                                        : full     ? "too many sessions"
                                                   : "too many sessions of this client still connecting");
    r.headers.set("Retry-After", std::to_string(cfg.retry_after_s));
    reply.send(std::move(r));
    return;
  }

  std::weak_ptr<Endpoint> weak = weak_from_this();
  std::string id = request.id;
  auto events = std::make_shared<SessionEvents>(weak, id);
  backend_->create_session(request, events,
                           [weak, id, counter_offer, reply](MediaResult result, std::unique_ptr<MediaSession> media) {
                             // An endpoint that is gone drops the media and the reply (503).
                             if (auto self = weak.lock())
                               self->finish_creation(id, counter_offer, std::move(result), std::move(media), reply);
                           });
}

void Endpoint::finish_creation(const std::string &id, bool counter_offer, MediaResult result,
                               std::unique_ptr<MediaSession> media, Reply reply) {
  std::string etag, location;
  std::vector<IceServer> ice_servers;
  int64_t deadline_ms = 0;
  bool gone = false, created = false, events = false, layered = false;
  std::shared_ptr<MediaSession> failed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) {
      gone = true;
    } else if (!result.ok || !media) {
      failed = take_locked(id, "failed");
    } else {
      Session &s = it->second;
      s.media = std::move(media);
      etag = s.etag;
      location = config_.path + "/sessions/" + id;
      ice_servers = config_.ice_servers;
      if (counter_offer) {
        s.state = SessionState::CounterOffered;
        deadline_ms = now() + static_cast<int64_t>(config_.counter_offer_validity_s) * 1000;
        s.deadline = deadline_ms;
      } else {
        s.state = SessionState::Active;
        s.connect_deadline = now() + config_.connect_timeout_ms;
        count_viewers_locked(s.stream);
      }
      events = config_.kind == EndpointKind::Whep;
      layered = events && !counter_offer && !s.media->layers().empty();
      if (events) events_.set_active(s.stream, true);  // it was admitted: something feeds it
      created = true;
      if (!counter_offer) counters_.created++;
    }
  }
  if (gone) {
    // DELETEd, or the element stopped, while it was being set up: the media goes too, and the
    // client may try again.
    media.reset();
    Response r = Response::problem(503, "the session ended while it was being set up");
    r.headers.set("Retry-After", std::to_string(config().retry_after_s));
    reply.send(std::move(r));
    return;
  }
  if (!created) {
    failed.reset();
    media.reset();
    reply.send(result.ok ? Response::problem(500, "the media side returned no session")
                         : Response::problem(result.status, result.error));
    return;
  }
  Response r = Response::empty(counter_offer ? 406 : 201);
  if (counter_offer)
    r.headers.set("Content-Type", std::string(kSdp) + "; valid-until=\"" + http_date(deadline_ms / 1000) + "\"");
  else
    r.headers.set("Content-Type", kSdp);
  r.headers.set("Location", location);
  r.headers.set("ETag", etag);
  r.headers.set("Accept-Patch", kSdpFrag);
  for (const auto &s : ice_servers) r.headers.add("Link", s.link_value());
  if (events) {
    std::string names;
    for (const auto &n : server_event_names(layered)) names += (names.empty() ? "" : ",") + n;
    r.headers.add("Link", "<" + location + "/sse>; rel=\"" + kEventsRel + "\"; events=\"" + names + "\"");
    if (layered) r.headers.add("Link", "<" + location + "/layer>; rel=\"" + kLayerRel + "\"");
  }
  r.body = std::move(result.body);
  reply.send(std::move(r));
}

void Endpoint::remember_end_locked(const std::string &id, const std::string &reason) {
  constexpr size_t kEndedKept = 512;
  if (ended_order_.size() >= kEndedKept) {
    ended_.erase(ended_order_.front());
    ended_order_.pop_front();
  }
  ended_[id] = reason;
  ended_order_.push_back(id);
  counters_.ended[reason]++;
}

std::shared_ptr<MediaSession> Endpoint::take_locked(const std::string &id, const std::string &reason) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return nullptr;
  remember_end_locked(id, reason);
  std::shared_ptr<MediaSession> media = std::move(it->second.media);
  std::string stream = it->second.stream;
  bool counted = it->second.state == SessionState::Active;
  sessions_.erase(it);
  if (media) media->end_reason = reason;
  events_.drop_session(id);
  if (counted) count_viewers_locked(stream);
  return media;
}

std::shared_ptr<MediaSession> Endpoint::media_of(const std::string &id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second.media;
}

void Endpoint::handle_session(const Request &req, const std::string &id, Reply reply) {
  bool known;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    known = sessions_.count(id) > 0;
  }
  if (!known) {
    reply.send(Response::problem(404, "no such session"));
    return;
  }
  if (req.method == "PATCH") {
    handle_patch(req, id, std::move(reply));
  } else if (req.method == "DELETE") {
    std::shared_ptr<MediaSession> media;
    bool existed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      existed = sessions_.count(id) > 0;
      media = take_locked(id, "closed");
    }
    media.reset();  // frees the media (the media side tears down on its own thread)
    reply.send(existed ? Response::empty(200) : Response::problem(404, "no such session"));
  } else if (req.method == "GET") {
    reply.send(Response::empty(200));
  } else if (req.method == "OPTIONS") {
    Response r = Response::empty(200);
    r.headers.set("Accept-Patch", kSdpFrag);
    r.headers.set("Allow", kSessionMethods);
    reply.send(std::move(r));
  } else {
    Response r = Response::problem(405, "method not allowed on a session");
    r.headers.set("Allow", kSessionMethods);
    reply.send(std::move(r));
  }
}

void Endpoint::handle_patch(const Request &req, const std::string &id, Reply reply) {
  EndpointConfig cfg = config();
  auto ct = req.headers.get("Content-Type");
  std::string type = ct ? media_type(*ct) : "";
  if (req.body.size() > cfg.max_body_size) {
    reply.send(Response::problem(413, "body larger than " + std::to_string(cfg.max_body_size) + " bytes"));
    return;
  }
  std::weak_ptr<Endpoint> weak = weak_from_this();

  if (type == kSdp) {
    // The player's answer to our counter-offer.
    std::shared_ptr<MediaSession> media;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = sessions_.find(id);
      if (it != sessions_.end() && it->second.state == SessionState::CounterOffered) {
        it->second.state = SessionState::Negotiating;
        media = it->second.media;
      }
    }
    if (!media) {
      reply.send(Response::problem(422, "an SDP PATCH is only accepted as the answer to a counter-offer"));
      return;
    }
    std::string error;
    if (!parse_sdp(req.body, &error)) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = sessions_.find(id);
        if (it != sessions_.end()) it->second.state = SessionState::CounterOffered;
      }
      reply.send(Response::problem(400, "malformed SDP answer: " + error));
      return;
    }
    media->apply_answer(req.body, [weak, id, reply](MediaResult result) {
      auto self = weak.lock();
      if (!self) return;  // the reply answers 503
      std::shared_ptr<MediaSession> failed;
      {
        std::lock_guard<std::mutex> lock(self->mutex_);
        auto it = self->sessions_.find(id);
        if (it != self->sessions_.end() && result.ok) {
          it->second.state = SessionState::Active;
          it->second.connect_deadline = self->now() + self->config_.connect_timeout_ms;
          self->count_viewers_locked(it->second.stream);
        } else if (it != self->sessions_.end()) {
          failed = self->take_locked(id, "failed");
        }
      }
      failed.reset();
      reply.send(result.ok ? Response::empty(204) : Response::problem(result.status, result.error));
    });
    return;
  }

  if (type != kSdpFrag) {
    Response r = Response::problem(415, "PATCH needs Content-Type: application/trickle-ice-sdpfrag");
    r.headers.set("Accept-Patch", kSdpFrag);
    reply.send(std::move(r));
    return;
  }

  IfMatchValue if_match = parse_if_match(req.headers.get("If-Match"));
  if (if_match.kind == IfMatch::Missing) {
    reply.send(Response::problem(428, "PATCH needs If-Match"));
    return;
  }
  std::string error;
  auto frag = parse_sdpfrag(req.body, &error);
  if (!frag) {
    reply.send(Response::problem(400, "malformed sdpfrag: " + error));
    return;
  }

  std::optional<Response> refusal;
  std::shared_ptr<MediaSession> media;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) {
      refusal = Response::problem(404, "no such session");
    } else if (it->second.state != SessionState::Active || !it->second.media) {
      refusal = Response::problem(409, "session is not negotiated yet");
    } else if (if_match.kind == IfMatch::Tags && !if_match_accepts(if_match, it->second.etag)) {
      refusal = Response::problem(412, "If-Match does not name the current ICE session");
    } else if (if_match.kind == IfMatch::Any) {
      if (it->second.restarting)
        refusal = Response::problem(409, "an ICE restart is already under way");
      else if (frag->ice_ufrag.empty() || frag->ice_pwd.empty())
        refusal = Response::problem(400, "an ICE restart needs a=ice-ufrag and a=ice-pwd");
      else
        it->second.restarting = true;
    }
    if (!refusal) media = it->second.media;
  }
  if (refusal) {
    reply.send(std::move(*refusal));
    return;
  }

  if (if_match.kind == IfMatch::Tags) {
    size_t candidates = 0;
    for (const auto &m : frag->media) candidates += m.candidates.size();
    if (candidates > cfg.max_candidates) {
      reply.send(Response::problem(400, "more than " + std::to_string(cfg.max_candidates) + " candidates"));
      return;
    }
    media->add_candidates(*frag);
    reply.send(Response::empty(204));
    return;
  }

  media->restart_ice(*frag, [weak, id, reply](MediaResult result) {
    auto self = weak.lock();
    if (!self) return;
    std::string etag;
    bool known;
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      auto it = self->sessions_.find(id);
      known = it != self->sessions_.end();
      if (known) {
        it->second.restarting = false;
        if (result.ok) {
          it->second.etag = "\"" + random_hex(12) + "\"";
          etag = it->second.etag;
        }
      }
    }
    if (!known) {
      reply.send(Response::problem(404, "session ended during the ICE restart"));
      return;
    }
    if (!result.ok) {
      reply.send(Response::problem(result.status, result.error));  // the old ICE session stays
      return;
    }
    Response r = Response::empty(200);
    r.headers.set("Content-Type", kSdpFrag);
    r.headers.set("ETag", etag);
    r.body = std::move(result.body);
    reply.send(std::move(r));
  });
}

void Endpoint::on_connected(const std::string &id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sessions_.find(id);
  if (it != sessions_.end()) it->second.connected = true;
}

void Endpoint::on_ended(const std::string &id, const std::string &reason) {
  std::shared_ptr<MediaSession> media;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    media = take_locked(id, reason);
  }
}

std::vector<std::string> Endpoint::expire_stale() {
  std::vector<std::string> expired;
  std::vector<std::shared_ptr<MediaSession>> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    int64_t t = now();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      const Session &s = it->second;
      const char *reason = nullptr;
      if (s.state == SessionState::CounterOffered && t >= s.deadline)
        reason = "expired";
      else if (!s.connected && s.connect_deadline && t >= s.connect_deadline)
        reason = "not-connected";
      if (!reason) {
        ++it;
        continue;
      }
      expired.push_back(it->first);
      ++it;
    }
    for (const auto &id : expired) {
      const Session &s = sessions_.at(id);
      dropped.push_back(take_locked(id, s.state == SessionState::CounterOffered ? "expired" : "not-connected"));
    }
  }
  dropped.clear();
  refresh_events();
  return expired;
}

void Endpoint::close_all(const std::string &reason) {
  std::vector<std::shared_ptr<MediaSession>> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> ids;
    for (const auto &kv : sessions_) ids.push_back(kv.first);
    for (const auto &id : ids) dropped.push_back(take_locked(id, reason));
  }
}

std::vector<SessionInfo> Endpoint::sessions() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<SessionInfo> out;
  for (const auto &kv : sessions_)
    out.push_back({kv.first, config_.path + "/sessions/" + kv.first, kv.second.etag, kv.second.stream,
                   kv.second.state, kv.second.connected, kv.second.created});
  return out;
}

size_t Endpoint::session_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return sessions_.size();
}

}  // namespace wish
