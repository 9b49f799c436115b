#include "endpoint.h"

#include <chrono>
#include <optional>

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

Endpoint::Endpoint(EndpointConfig config, MediaBackend *backend, Clock clock)
    : config_(std::move(config)), backend_(backend), clock_(std::move(clock)) {}

Endpoint::~Endpoint() = default;

int64_t Endpoint::now() const {
  if (clock_) return clock_();
  return std::chrono::duration_cast<std::chrono::seconds>(
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

bool Endpoint::origin_allowed(const std::string &origin) const {
  const std::string &list = config_.cors_allowed_origins;
  if (list == "*") return true;
  size_t i = 0;
  while (i <= list.size()) {
    size_t end = list.find(',', i);
    if (end == std::string::npos) end = list.size();
    if (trim(std::string_view(list).substr(i, end - i)) == origin) return true;
    i = end + 1;
  }
  return false;
}

Response Endpoint::decorate(const Request &req, Response resp) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (config_.cors_allowed_origins == "*") {
    resp.headers.set("Access-Control-Allow-Origin", "*");
  } else {
    auto origin = req.headers.get("Origin");
    if (origin && origin_allowed(*origin)) resp.headers.set("Access-Control-Allow-Origin", *origin);
    resp.headers.set("Vary", "Origin");
  }
  resp.headers.set("Access-Control-Expose-Headers", kExposed);
  return resp;
}

void Endpoint::handle(const Request &req, Reply reply) {
  auto decorated = [this, req, reply = std::move(reply)](Response r) mutable {
    reply(decorate(req, std::move(r)));
  };

  bool preflight = req.method == "OPTIONS" && req.headers.has("Access-Control-Request-Method");
  std::string base, token, page;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    base = config_.path;
    token = config_.auth_token;
    page = config_.player_page;
  }
  std::string sessions_prefix = base + "/sessions/";
  bool is_endpoint = req.path == base || req.path == base + "/";
  bool is_session = req.path.compare(0, sessions_prefix.size(), sessions_prefix) == 0 &&
                    req.path.size() > sessions_prefix.size();
  if (!is_endpoint && !is_session) {
    decorated(Response::problem(404, "no such resource"));
    return;
  }

  if (preflight) {
    Response r = Response::empty(200);
    r.headers.set("Access-Control-Allow-Methods", is_endpoint ? kEndpointMethods : kSessionMethods);
    auto asked = req.headers.get("Access-Control-Request-Headers");
    r.headers.set("Access-Control-Allow-Headers",
                  asked && !asked->empty() ? *asked : "Authorization, Content-Type, If-Match");
    r.headers.set("Access-Control-Max-Age", "86400");
    if (is_endpoint) r.headers.set("Accept-Post", kSdp);
    decorated(std::move(r));
    return;
  }

  // The player page is public so a browser can open it; it sends the token itself.
  if (is_endpoint && req.method == "GET" && !page.empty()) {
    auto accept = req.headers.get("Accept");
    if (accept && accept->find("text/html") != std::string::npos) {
      Response r = Response::empty(200);
      r.headers.set("Content-Type", "text/html; charset=utf-8");
      r.body = page;
      decorated(std::move(r));
      return;
    }
  }

  if (!token.empty() && !bearer_token_matches(req.headers.get("Authorization"), token)) {
    Response r = Response::problem(401, "missing or wrong bearer token");
    r.headers.set("WWW-Authenticate", "Bearer");
    decorated(std::move(r));
    return;
  }

  if (is_endpoint) {
    handle_endpoint(req, std::move(decorated));
  } else {
    handle_session(req, req.path.substr(sessions_prefix.size()), std::move(decorated));
  }
}

void Endpoint::handle_endpoint(const Request &req, Reply reply) {
  if (req.method == "POST") {
    handle_post(req, std::move(reply));
  } else if (req.method == "OPTIONS") {
    Response r = Response::empty(200);
    r.headers.set("Accept-Post", kSdp);
    r.headers.set("Allow", kEndpointMethods);
    reply(std::move(r));
  } else if (req.method == "HEAD") {
    Response r = Response::empty(200);
    r.headers.set("Content-Type", kSdp);
    reply(std::move(r));
  } else if (req.method == "GET") {
    reply(Response::empty(200));
  } else {
    Response r = Response::problem(405, "method not allowed on the endpoint");
    r.headers.set("Allow", kEndpointMethods);
    reply(std::move(r));
  }
}

static bool usable_for(EndpointKind kind, const MediaSection &m) {
  if (m.rejected() || (m.kind != "audio" && m.kind != "video") || m.formats.empty()) return false;
  if (kind == EndpointKind::Whep)
    return m.direction == Direction::RecvOnly || m.direction == Direction::SendRecv;
  return m.direction == Direction::SendOnly || m.direction == Direction::SendRecv;
}

void Endpoint::handle_post(const Request &req, Reply reply) {
  EndpointConfig cfg = config();
  auto ct = req.headers.get("Content-Type");
  if (!ct || media_type(*ct) != kSdp) {
    Response r = Response::problem(415, "POST needs Content-Type: application/sdp");
    r.headers.set("Accept-Post", kSdp);
    reply(std::move(r));
    return;
  }
  if (req.body.size() > cfg.max_body_size) {
    reply(Response::problem(413, "offer larger than " + std::to_string(cfg.max_body_size) + " bytes"));
    return;
  }
  std::string error;
  auto offer = parse_sdp(req.body, &error);
  if (!offer) {
    reply(Response::problem(400, "malformed SDP offer: " + error));
    return;
  }
  bool any_usable = false;
  for (const auto &m : offer->media) any_usable = any_usable || usable_for(cfg.kind, m);
  if (!any_usable) {
    reply(Response::problem(400, cfg.kind == EndpointKind::Whep
                                     ? "offer has no audio or video m-line that can receive"
                                     : "offer has no audio or video m-line that sends"));
    return;
  }

  unsigned admission = backend_->admission_status();
  if (admission != 0) {
    const char *why = admission != 409                ? "server cannot take a session now"
                      : cfg.kind == EndpointKind::Whip ? "another publisher is live on this endpoint"
                                                       : "no media is being published yet";
    Response r = Response::problem(admission, why);
    r.headers.set("Retry-After", std::to_string(cfg.retry_after_s));
    reply(std::move(r));
    return;
  }

  bool counter_offer = false;
  if (cfg.kind == EndpointKind::Whep) {
    if (cfg.counter_offer == CounterOfferMode::Always) {
      counter_offer = true;
    } else if (!backend_->can_answer(*offer)) {
      if (cfg.counter_offer == CounterOfferMode::Never) {
        reply(Response::problem(422, "no codec in common with the offer"));
        return;
      }
      counter_offer = true;
    }
  } else if (!backend_->can_answer(*offer)) {
    reply(Response::problem(422, "offer carries no stream this endpoint can take"));
    return;
  }

  std::string id = random_hex(16);  // 128 bits from the kernel CSPRNG
  bool full = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    full = config_.max_sessions && sessions_.size() >= config_.max_sessions;
    if (!full) {
      Session s;
      s.etag = "\"" + random_hex(12) + "\"";
      s.created = now();
      sessions_[id] = s;
    }
  }
  if (full) {
    Response r = Response::problem(503, "too many sessions");
    r.headers.set("Retry-After", std::to_string(cfg.retry_after_s));
    reply(std::move(r));
    return;
  }

  auto done = [this, id, counter_offer, reply = std::move(reply)](MediaResult result) mutable {
    finish_creation(id, counter_offer, std::move(result), std::move(reply));
  };
  if (counter_offer)
    backend_->make_offer(id, std::move(done));
  else
    backend_->answer_offer(id, req.body, *offer, std::move(done));
}

void Endpoint::finish_creation(const std::string &id, bool counter_offer, MediaResult result,
                               Reply reply) {
  std::string etag, location;
  std::vector<IceServer> ice_servers;
  int64_t deadline = 0;
  bool gone = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) {
      gone = true;
    } else if (!result.ok) {
      sessions_.erase(it);
    } else {
      etag = it->second.etag;
      location = config_.path + "/sessions/" + id;
      ice_servers = config_.ice_servers;
      if (counter_offer) {
        it->second.state = SessionState::CounterOffered;
        deadline = now() + config_.counter_offer_validity_s;
        it->second.deadline = deadline;
      } else {
        it->second.state = SessionState::Active;
      }
    }
  }
  if (gone || !result.ok) {
    backend_->close(id);
    reply(gone ? Response::problem(500, "session was closed while it was being set up")
               : Response::problem(result.status, result.error));
    return;
  }
  Response r = Response::empty(counter_offer ? 406 : 201);
  if (counter_offer)
    r.headers.set("Content-Type", std::string(kSdp) + "; valid-until=\"" + http_date(deadline) + "\"");
  else
    r.headers.set("Content-Type", kSdp);
  r.headers.set("Location", location);
  r.headers.set("ETag", etag);
  r.headers.set("Accept-Patch", kSdpFrag);
  for (const auto &s : ice_servers) r.headers.add("Link", s.link_value());
  r.body = std::move(result.body);
  reply(std::move(r));
}

void Endpoint::handle_session(const Request &req, const std::string &id, Reply reply) {
  bool known;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    known = sessions_.count(id) > 0;
  }
  if (!known) {
    reply(Response::problem(404, "no such session"));
    return;
  }
  if (req.method == "PATCH") {
    handle_patch(req, id, std::move(reply));
  } else if (req.method == "DELETE") {
    bool existed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      existed = sessions_.erase(id) > 0;
    }
    if (!existed) {
      reply(Response::problem(404, "no such session"));
      return;
    }
    backend_->close(id);
    reply(Response::empty(200));
  } else if (req.method == "GET") {
    reply(Response::empty(200));
  } else if (req.method == "OPTIONS") {
    Response r = Response::empty(200);
    r.headers.set("Accept-Patch", kSdpFrag);
    r.headers.set("Allow", kSessionMethods);
    reply(std::move(r));
  } else {
    Response r = Response::problem(405, "method not allowed on a session");
    r.headers.set("Allow", kSessionMethods);
    reply(std::move(r));
  }
}

void Endpoint::handle_patch(const Request &req, const std::string &id, Reply reply) {
  EndpointConfig cfg = config();
  auto ct = req.headers.get("Content-Type");
  std::string type = ct ? media_type(*ct) : "";
  if (req.body.size() > cfg.max_body_size) {
    reply(Response::problem(413, "body larger than " + std::to_string(cfg.max_body_size) + " bytes"));
    return;
  }

  if (type == kSdp) {
    // The player's answer to our counter-offer.
    bool expected;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = sessions_.find(id);
      expected = it != sessions_.end() && it->second.state == SessionState::CounterOffered;
      if (expected) it->second.state = SessionState::Negotiating;
    }
    if (!expected) {
      reply(Response::problem(422, "an SDP PATCH is only accepted as the answer to a counter-offer"));
      return;
    }
    std::string error;
    auto answer = parse_sdp(req.body, &error);
    if (!answer) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = sessions_.find(id);
        if (it != sessions_.end()) it->second.state = SessionState::CounterOffered;
      }
      reply(Response::problem(400, "malformed SDP answer: " + error));
      return;
    }
    backend_->apply_answer(id, req.body, *answer,
                           [this, id, reply = std::move(reply)](MediaResult result) mutable {
                             bool known;
                             {
                               std::lock_guard<std::mutex> lock(mutex_);
                               auto it = sessions_.find(id);
                               known = it != sessions_.end();
                               if (known && result.ok) it->second.state = SessionState::Active;
                               if (known && !result.ok) sessions_.erase(it);
                             }
                             if (!result.ok) {
                               if (known) backend_->close(id);
                               reply(Response::problem(result.status, result.error));
                             } else {
                               reply(Response::empty(204));
                             }
                           });
    return;
  }

  if (type != kSdpFrag) {
    Response r = Response::problem(415, "PATCH needs Content-Type: application/trickle-ice-sdpfrag");
    r.headers.set("Accept-Patch", kSdpFrag);
    reply(std::move(r));
    return;
  }

  IfMatchValue if_match = parse_if_match(req.headers.get("If-Match"));
  if (if_match.kind == IfMatch::Missing) {
    reply(Response::problem(428, "PATCH needs If-Match"));
    return;
  }
  std::string error;
  auto frag = parse_sdpfrag(req.body, &error);
  if (!frag) {
    reply(Response::problem(400, "malformed sdpfrag: " + error));
    return;
  }

  std::optional<Response> refusal;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) {
      refusal = Response::problem(404, "no such session");
    } else if (it->second.state != SessionState::Active) {
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
  }
  if (refusal) {
    reply(std::move(*refusal));
    return;
  }

  if (if_match.kind == IfMatch::Tags) {
    backend_->add_candidates(id, *frag);
    reply(Response::empty(204));
    return;
  }

  backend_->restart_ice(id, *frag, [this, id, reply = std::move(reply)](MediaResult result) mutable {
    std::string etag;
    bool known;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = sessions_.find(id);
      known = it != sessions_.end();
      if (known) {
        it->second.restarting = false;
        if (result.ok) {
          it->second.etag = "\"" + random_hex(12) + "\"";
          etag = it->second.etag;
        }
      }
    }
    if (!known) {
      reply(Response::problem(404, "session ended during the ICE restart"));
      return;
    }
    if (!result.ok) {
      reply(Response::problem(result.status, result.error));  // the old ICE session stays
      return;
    }
    Response r = Response::empty(200);
    r.headers.set("Content-Type", kSdpFrag);
    r.headers.set("ETag", etag);
    r.body = std::move(result.body);
    reply(std::move(r));
  });
}

void Endpoint::session_gone(const std::string &id) {
  std::lock_guard<std::mutex> lock(mutex_);
  sessions_.erase(id);
}

std::vector<std::string> Endpoint::expire_stale() {
  std::vector<std::string> expired;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    int64_t t = now();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (it->second.state == SessionState::CounterOffered && t >= it->second.deadline) {
        expired.push_back(it->first);
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto &id : expired) backend_->close(id);
  return expired;
}

void Endpoint::close_all() {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto &kv : sessions_) ids.push_back(kv.first);
    sessions_.clear();
  }
  for (const auto &id : ids) backend_->close(id);
}

std::vector<SessionInfo> Endpoint::sessions() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<SessionInfo> out;
  for (const auto &kv : sessions_)
    out.push_back({kv.first, config_.path + "/sessions/" + kv.first, kv.second.etag,
                   kv.second.state, kv.second.created});
  return out;
}

size_t Endpoint::session_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return sessions_.size();
}

}  // namespace wish
