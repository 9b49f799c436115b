#include "oma_front.h"

#include <json-glib/json-glib.h>

#include <algorithm>
#include <chrono>
#include <sstream>

#include "ice_servers.h"
#include "sdp.h"
#include "sdpfrag.h"
#include "stream_names.h"

namespace wish {

namespace {
constexpr const char *kExposed = "Location, Content-Type, Allow, Retry-After, WWW-Authenticate";


// The detail of an endpoint's problem body ({"detail":"..."}), for the OMA error variable.
std::string problem_detail(const std::string &body) {
  g_autoptr(JsonParser) parser = json_parser_new();
  if (json_parser_load_from_data(parser, body.data(), static_cast<gssize>(body.size()), nullptr)) {
    JsonNode *root = json_parser_get_root(parser);
    if (root && JSON_NODE_HOLDS_OBJECT(root)) {
      const char *detail = json_object_get_string_member_with_default(json_node_get_object(root), "detail", nullptr);
      if (detail) return detail;
    }
  }
  return body.substr(0, 200);
}

// The same SDP with other ICE credentials and candidates: what an ICE restart changes in
// the server's answer.
std::string with_new_ice(const std::string &sdp, const SdpFrag &frag) {
  std::istringstream in(sdp);
  std::string line, out;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.compare(0, 12, "a=ice-ufrag:") == 0) line = "a=ice-ufrag:" + frag.ice_ufrag;
    if (line.compare(0, 10, "a=ice-pwd:") == 0) line = "a=ice-pwd:" + frag.ice_pwd;
    out += line + "\r\n";
  }
  std::vector<std::string> candidates;
  for (const auto &m : frag.media) candidates.insert(candidates.end(), m.candidates.begin(), m.candidates.end());
  return finish_local_sdp(out, candidates, true);
}

// The restart fragment of an offer: its credentials and every candidate it carries.
std::string restart_fragment(const SessionDescription &offer) {
  SdpFrag frag;
  for (const auto &m : offer.media) {
    if (frag.ice_ufrag.empty()) {
      frag.ice_ufrag = m.ice_ufrag;
      frag.ice_pwd = m.ice_pwd;
    }
    frag.media.push_back({m.mid, m.candidates, true});
  }
  return build_sdpfrag(frag);
}

// Whether the answer still fits a new offer: every payload type it uses offered again, with
// the same encoding. An answer that does not parse has nothing to compare.
bool keeps_codecs(const SessionDescription &offer, const std::string &answer_sdp) {
  std::string why;
  auto answer = parse_sdp(answer_sdp, &why);
  if (!answer) return true;
  for (size_t i = 0; i < answer->media.size() && i < offer.media.size(); i++) {
    const MediaSection &a = answer->media[i], &o = offer.media[i];
    if (a.rejected()) continue;
    for (int pt : a.formats) {
      if (std::find(o.formats.begin(), o.formats.end(), pt) == o.formats.end()) return false;
      auto used = a.rtpmap.find(pt), offered = o.rtpmap.find(pt);
      if (used != a.rtpmap.end() && (offered == o.rtpmap.end() || offered->second.encoding != used->second.encoding))
        return false;
    }
  }
  return true;
}

bool sends(const MediaSection &m) { return m.direction == Direction::SendOnly || m.direction == Direction::SendRecv; }
bool usable(const MediaSection &m) { return !m.rejected() && (m.kind == "audio" || m.kind == "video"); }
}  // namespace

void OmaFront::Call::send(unsigned status, const OmaNode *root, Headers extra) const {
  Response r = Response::empty(status);
  r.headers = std::move(extra);
  if (root) {
    r.headers.set("Content-Type", oma_content_type(out));
    r.body = write_oma_body(*root, out);
  }
  reply.send(std::move(r));
}

void OmaFront::Call::refuse(const OmaError &e, Headers extra) const {
  OmaNode root = oma_request_error(e);
  send(e.status, &root, std::move(extra));
}

OmaFront::OmaFront(OmaConfig config, OmaBackend *backend, Clock clock)
    : config_(std::move(config)), backend_(backend), clock_(std::move(clock)) {}

int64_t OmaFront::now() const {
  if (clock_) return clock_();
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

size_t OmaFront::session_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return sessions_.size();
}

size_t OmaFront::subscription_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return subscriptions_.size();
}

const char *OmaFront::allowed(Resource r) {
  switch (r) {
    case Resource::Subscriptions: return "GET, POST";
    case Resource::Subscription: return "GET, DELETE";
    case Resource::Sessions: return "POST";
    case Resource::Session: return "GET, DELETE";
    case Resource::Status:
    case Resource::Offer:
    case Resource::Answer:
    case Resource::IceStatus: return "GET, PUT";
    case Resource::Update: return "GET, PUT, DELETE";
    case Resource::None: break;
  }
  return "";
}

OmaFront::Route OmaFront::route(const std::string &path) const {
  Route r;
  const std::string &base = config_.path;
  if (path.size() <= base.size() + 1 || path.compare(0, base.size(), base) != 0 || path[base.size()] != '/') return r;
  std::vector<std::string> seg;
  std::string rest = path.substr(base.size() + 1);
  size_t start = 0;
  while (true) {
    size_t slash = rest.find('/', start);
    seg.push_back(rest.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  for (const auto &s : seg)
    if (s.empty()) return r;
  if (seg.size() < 2 || !oma_percent_decode(seg[0], &r.user) || r.user.empty()) return r;
  if (seg.size() > 2) r.id = seg[2];
  if (seg[1] == "subscriptions") {
    if (seg.size() == 2) r.resource = Resource::Subscriptions;
    if (seg.size() == 3) r.resource = Resource::Subscription;
    return r;
  }
  if (seg[1] != "sessions") return r;
  if (seg.size() == 2) r.resource = Resource::Sessions;
  if (seg.size() == 3) r.resource = Resource::Session;
  if (seg.size() == 4) {
    if (seg[3] == "status") r.resource = Resource::Status;
    if (seg[3] == "offer") r.resource = Resource::Offer;
    if (seg[3] == "answer") r.resource = Resource::Answer;
    if (seg[3] == "update") r.resource = Resource::Update;
  }
  if (seg.size() == 5 && seg[3] == "ice" && seg[4] == "status") r.resource = Resource::IceStatus;
  return r;
}

void OmaFront::handle(const Request &req, Reply reply) {
  // Every answer leaves with the CORS headers.
  std::string origins = config_.cors_allowed_origins;
  Reply decorated([req, reply, origins](Response r) {
    apply_cors(req, origins, kExposed, &r);
    reply.send(std::move(r));
  });
  auto call = std::make_shared<Call>();
  call->req = req;
  call->reply = decorated;
  auto content_type = req.headers.get("Content-Type");
  std::optional<OmaFormat> in = content_type ? oma_format_of(*content_type) : std::nullopt;
  call->out = oma_reply_format(req.headers.get("Accept"), in).value_or(OmaFormat::Json);

  Route where = route(req.path);
  if (where.resource == Resource::None) {
    call->refuse(oma_error(404, "SVC0002", "no such resource: " + req.path));
    return;
  }
  std::string methods = allowed(where.resource);
  if (req.method == "OPTIONS") {
    Response r = req.headers.has("Access-Control-Request-Method") ? preflight_response(req, (methods + ", OPTIONS").c_str())
                                                                   : Response::empty(204);
    r.headers.set("Allow", methods);
    decorated.send(std::move(r));
    return;
  }
  if (auto refusal = refuse_unauthorized(req, config_.auth_token)) {
    Headers h;
    h.set("WWW-Authenticate", "Bearer");
    call->refuse(oma_error(401, "POL0001", "a valid bearer token is needed"), std::move(h));
    return;
  }
  bool method_allowed = false;
  for (const auto &m : split_list(methods)) method_allowed = method_allowed || m == req.method;
  if (!method_allowed) {
    Headers h;
    h.set("Allow", methods);
    call->refuse(oma_error(405, "SVC0002", "method " + req.method + " (allowed: " + methods + ")"), std::move(h));
    return;
  }
  if (!oma_reply_format(req.headers.get("Accept"), in)) {
    call->refuse(oma_error(406, "SVC0002", "Accept: the answers are application/json or application/xml"));
    return;
  }
  if (req.method == "POST" || req.method == "PUT") {
    if (req.body.size() > config_.max_body_size) {
      call->refuse(oma_error(413, "SVC0002", "body larger than " + std::to_string(config_.max_body_size) + " bytes"));
      return;
    }
    if (!in) {
      Headers h;
      h.set("Accept", "application/json, application/xml");
      call->refuse(oma_error(415, "SVC0002", "Content-Type: bodies are application/json or application/xml"),
                 std::move(h));
      return;
    }
    call->in = *in;
    std::string error;
    if (!parse_oma_body(req.body, *in, &call->body, &error)) {
      call->refuse(oma_error(400, "SVC0002", "body: " + error));
      return;
    }
  }
  std::string host = req.headers.get("Host").value_or("localhost");
  call->base = config_.scheme + "://" + host + config_.path;
  dispatch(where, call);
}

void OmaFront::dispatch(const Route &where, const std::shared_ptr<Call> &call) {
  const std::string &method = call->req.method;
  switch (where.resource) {
    case Resource::Sessions: create_session(where, call); return;
    case Resource::Session:
      if (method == "DELETE") {
        delete_session(where, call);
        return;
      }
      break;
    case Resource::Update:
      if (method == "PUT") {
        update_session(where, call);
        return;
      }
      break;
    case Resource::Subscriptions:
      if (method == "POST") {
        create_subscription(where, call);
        return;
      }
      subscription_part(where, call);
      return;
    case Resource::Subscription: subscription_part(where, call); return;
    default: break;
  }
  session_part(where, call);
}

std::string OmaFront::session_url(const Session &s) const {
  return s.base + "/" + oma_percent_encode(s.user) + "/sessions/" + s.id;
}

std::string OmaFront::subscription_url(const Subscription &s) const {
  return s.base + "/" + oma_percent_encode(s.user) + "/subscriptions/" + s.id;
}

OmaSessionView OmaFront::view_locked(const Session &s) const {
  OmaSessionView v;
  v.originator = s.user;
  v.participant = s.participant;
  v.status = s.closed ? "Closed" : "Connected";
  v.correlator = s.correlator;
  v.resource_url = session_url(s);
  v.offer = s.offer;
  v.answer = s.answer;
  v.update = s.update;
  return v;
}

OmaSubscriptionView OmaFront::view_locked(const Subscription &s) const {
  OmaSubscriptionView v;
  v.notify_url = s.notify_url;
  v.callback_data = s.callback_data;
  v.correlator = s.correlator;
  v.resource_url = subscription_url(s);
  v.format = s.asked_format;
  v.remaining_s = std::max<int64_t>(0, (s.expires - now() + 999) / 1000);
  return v;
}

// Sessions ------------------------------------------------------------------------------

void OmaFront::create_session(const Route &where, const std::shared_ptr<Call> &call) {
  OmaSessionRequest request;
  OmaError error;
  if (!read_session_request(call->body, &request, &error)) return call->refuse(error);
  std::string why;
  auto offer = parse_sdp(request.offer, &why);
  if (!offer) return call->refuse(oma_error(400, "SVC0002", "offer: malformed SDP: " + why));
  bool any_sending = false, any_receiving = false;
  for (const auto &m : offer->media) {
    if (!usable(m) || m.direction == Direction::Inactive) continue;
    (sends(m) ? any_sending : any_receiving) = true;
  }
  if (any_sending == any_receiving)
    return call->refuse(oma_error(400, "SVC0002",
                                any_sending ? "offer: an offer either receives (recvonly: plays a stream) or sends "
                                              "(sendonly: publishes one), not both"
                                            : "offer: no audio or video m-line"));
  bool playback = any_receiving;

  if (!request.correlator.empty()) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto &kv : sessions_) {
      const Session &s = kv.second;
      if (s.user == where.user && s.correlator == request.correlator && !s.closed) {
        OmaNode root = oma_session_node(view_locked(s));
        call->send(200, &root);
        return;
      }
    }
  }

  // Which endpoint takes the offer, and at which path.
  OmaAddress address = parse_participant_address(request.participant);
  std::shared_ptr<Endpoint> endpoint;
  std::string path;
  for (const auto &e : backend_->endpoints()) {
    auto ep = e.endpoint.lock();
    if (!ep) continue;
    if (!address.path.empty()) {
      bool own = address.path == e.path;
      bool named = e.named_streams && address.path.size() > e.path.size() + 1 &&
                   address.path.compare(0, e.path.size() + 1, e.path + "/") == 0 &&
                   valid_stream_name(address.path.substr(e.path.size() + 1));
      if (!own && !named) continue;
      if (e.whep != playback)
        return call->refuse(oma_error(400, "SVC0002",
                                    e.whep ? "offer: " + address.path + " plays a stream: the offer must be recvonly"
                                           : "offer: " + address.path + " takes a published stream: the offer must be sendonly"));
      endpoint = ep;
      path = address.path;
      break;
    }
    if (e.whep != playback || address.name.empty()) continue;
    if (e.path.size() > 1 && e.path.substr(1) == address.name) {
      endpoint = ep;  // the element's own stream: the best match
      path = e.path;
      break;
    }
    if (!endpoint && e.named_streams && valid_stream_name(address.name)) {
      endpoint = ep;
      path = e.path + "/" + address.name;
    }
  }
  if (!endpoint)
    return call->refuse(oma_error(404, "SVC0004",
                                "tParticipantAddress: no stream " + request.participant +
                                    (playback ? " to play on this server" : " to publish on this server")));

  Session session;
  session.user = where.user;
  session.participant = request.participant;
  session.correlator = request.correlator;
  session.base = call->base;
  session.offer = request.offer;
  session.playback = playback;
  session.endpoint = endpoint;
  session.authorization = call->req.headers.get("Authorization").value_or("");

  Request forward;
  forward.method = "POST";
  forward.path = path;
  forward.headers.set("Content-Type", "application/sdp");
  if (!session.authorization.empty()) forward.headers.set("Authorization", session.authorization);
  forward.body = request.offer;
  forward.client = call->req.client;  // the endpoint's per-client limits apply to the application
  std::weak_ptr<OmaFront> weak = weak_from_this();
  endpoint->handle(forward, Reply([weak, call, session](Response resp) {
                     if (auto self = weak.lock()) self->session_created(call, session, resp);
                   }));
}

void OmaFront::session_created(const std::shared_ptr<Call> &call, Session session, const Response &resp) {
  std::string detail = problem_detail(resp.body);
  auto location = resp.headers.get("Location");
  if (resp.status == 406 && location) {
    // A WHEP counter-offer: the stream is in no codec the offer takes. Not for this API.
    if (auto ep = session.endpoint.lock()) {
      Request del;
      del.method = "DELETE";
      del.path = *location;
      if (!session.authorization.empty()) del.headers.set("Authorization", session.authorization);
      ep->handle(del, Reply([](Response) {}));
    }
    return call->refuse(oma_error(400, "SVC0002", "offer: the stream is sent in no codec the offer takes"));
  }
  if (resp.status != 201 || !location) {
    Headers h;
    if (auto retry = resp.headers.get("Retry-After")) h.set("Retry-After", *retry);
    switch (resp.status) {
      case 400:
      case 415:
      case 422: return call->refuse(oma_error(400, "SVC0002", "offer: " + detail));
      case 401: return call->refuse(oma_error(401, "POL0001", detail), std::move(h));
      case 404: return call->refuse(oma_error(404, "SVC0004", "tParticipantAddress: " + detail));
      case 409: return call->refuse(oma_error(409, "SVC0001", detail), std::move(h));
      case 503: return call->refuse(oma_error(503, "SVC2001", detail), std::move(h));
      default: return call->refuse(oma_error(500, "SVC0001", detail));
    }
  }
  session.endpoint_path = *location;
  session.endpoint_id = location->substr(location->rfind('/') + 1);
  session.answer = resp.body;
  session.id = random_hex(8);
  OmaNode root;
  std::string url, user = session.user, answer = session.answer;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    url = session_url(session);
    std::string id = session.id;
    sessions_[id] = std::move(session);
    root = oma_session_node(view_locked(sessions_[id]));
  }
  Headers h;
  h.set("Location", url);
  call->send(201, &root, std::move(h));
  // Applications written to the letter wait for the answer, then the acceptance.
  notify_user(user, "wrtcsAnswerNotification", {oma_answer_node("answer", answer, "Remote")}, url);
  notify_user(user, "wrtcsAcceptanceNotification", {}, url);
}

void OmaFront::delete_session(const Route &where, const std::shared_ptr<Call> &call) {
  Session gone;
  bool found = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(where.id);
    if (it != sessions_.end() && it->second.user == where.user) {
      gone = std::move(it->second);
      sessions_.erase(it);
      found = true;
    }
  }
  if (!found) return call->refuse(oma_error(404, "SVC0002", "sessionId: no such session"));
  auto ep = gone.endpoint.lock();
  if (ep && !gone.closed) {
    Request del;
    del.method = "DELETE";
    del.path = gone.endpoint_path;
    if (!gone.authorization.empty()) del.headers.set("Authorization", gone.authorization);
    ep->handle(del, Reply([](Response) {}));
  }
  call->send(204, nullptr);
}

void OmaFront::session_part(const Route &where, const std::shared_ptr<Call> &call) {
  const std::string &method = call->req.method;
  OmaError error;
  std::string value;
  // Bodies are checked before the refusals, so a malformed one is still a 400.
  if (method == "PUT") {
    bool ok = true;
    switch (where.resource) {
      case Resource::Status: ok = read_session_status(call->body, &value, &error); break;
      case Resource::Offer: ok = read_offer(call->body, &value, &error); break;
      case Resource::Answer: ok = read_answer(call->body, &value, &error); break;
      case Resource::IceStatus: ok = read_ice_status(call->body, &value, &error); break;
      default: break;
    }
    if (!ok) return call->refuse(error);
  }
  std::weak_ptr<Endpoint> endpoint;
  std::string endpoint_id, url, reported_ice;
  bool closed = false, conflict = false;
  std::optional<OmaNode> root;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(where.id);
    if (it == sessions_.end() || it->second.user != where.user) {
      error = oma_error(404, "SVC0002", "sessionId: no such session");
    } else {
      Session &s = it->second;
      endpoint = s.endpoint;
      endpoint_id = s.endpoint_id;
      closed = s.closed;
      reported_ice = s.reported_ice;
      url = session_url(s);
      switch (where.resource) {
        case Resource::Session: root = oma_session_node(view_locked(s)); break;
        case Resource::Status:
          if (method == "GET") {
            root = OmaNode("wrtcsSessionStatus");
            root->add("status", closed ? "Closed" : "Connected");
          } else {
            error = oma_error(403, "POL0001", std::string("status: the server accepts sessions itself; this one is ") +
                                                  (closed ? "Closed" : "Connected"));
          }
          break;
        case Resource::Offer:
          if (method == "GET") {
            root = oma_offer_node("wrtcsOffer", s.offer, "Local");
          } else if (!s.update.empty()) {
            conflict = true;
            error = oma_error(403, "SVC1007", "an update of this session is being answered");
          } else {
            error = oma_error(403, "POL0001", "offer: the session has its offer; a new offer goes to .../update");
          }
          break;
        case Resource::Answer:
          if (method == "PUT")
            error = oma_error(403, "POL0001", "answer: the server made no offer to answer");
          else if (s.answer.empty())
            error = oma_error(404, "SVC0002", "answer: none yet");
          else
            root = oma_answer_node("wrtcsAnswer", s.answer, "Remote");
          break;
        case Resource::Update:
          if (s.update.empty())
            error = oma_error(404, "SVC0002", "update: no update is pending");
          else if (method == "GET")
            root = oma_offer_node("wrtcsOffer", s.update, "Local");
          else
            error = oma_error(403, "POL0001", "update: the update is being answered and cannot be withdrawn");
          break;
        case Resource::IceStatus:
          if (method == "PUT") {
            s.reported_ice = value;
            root = OmaNode("wrtcsIceStatus");
            root->add("status", value);
          }
          break;
        default: break;
      }
    }
  }
  if (where.resource == Resource::IceStatus && method == "GET" && error.message_id.empty()) {
    auto ep = endpoint.lock();
    std::string state = closed || !ep ? "closed" : ep->ice_connection_state(endpoint_id);
    root = OmaNode("wrtcsIceStatus");
    // The server's own state; the application's report while the server has none.
    root->add("status", state.empty() && !reported_ice.empty() ? reported_ice : oma_ice_status(state));
  }
  if (conflict) notify_user(where.user, "wrtcsConflictNotification", {oma_reason("SVC1007")}, url, url + "/offer");
  if (!error.message_id.empty()) return call->refuse(error);
  call->send(200, root ? &*root : nullptr);
}

void OmaFront::update_session(const Route &where, const std::shared_ptr<Call> &call) {
  std::string sdp;
  OmaError error;
  if (!read_offer(call->body, &sdp, &error)) return call->refuse(error);
  std::string why;
  auto offer = parse_sdp(sdp, &why);
  if (!offer) return call->refuse(oma_error(400, "SVC0002", "wrtcsOffer: malformed SDP: " + why));

  enum { Refused, Conflict, Declined, Same, Restart } outcome = Refused;
  std::string url, user = where.user, endpoint_path, authorization, answer;
  std::weak_ptr<Endpoint> endpoint;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(where.id);
    if (it == sessions_.end() || it->second.user != where.user) {
      error = oma_error(404, "SVC0002", "sessionId: no such session");
    } else if (it->second.closed) {
      error = oma_error(403, "POL0001", "update: the session is closed");
    } else {
      Session &s = it->second;
      url = session_url(s);
      auto current = parse_sdp(s.offer, &why);
      bool same_media = current && current->media.size() == offer->media.size();
      for (size_t i = 0; same_media && i < offer->media.size(); i++) {
        const MediaSection &a = current->media[i], &b = offer->media[i];
        same_media = a.kind == b.kind && a.mid == b.mid && a.direction == b.direction && a.rejected() == b.rejected();
      }
      same_media = same_media && keeps_codecs(*offer, it->second.answer);
      if (!s.update.empty()) {
        outcome = Conflict;
        error = oma_error(403, "SVC1007", "another offer of this session is being answered");
      } else if (!same_media) {
        outcome = Declined;
        error = oma_error(403, "POL0001",
                          "update: only an ICE restart or the same media and codecs can be renegotiated; "
                          "other media need a new session");
      } else {
        bool restart = !offer->media.empty() && !current->media.empty() &&
                       (offer->media[0].ice_ufrag != current->media[0].ice_ufrag ||
                        offer->media[0].ice_pwd != current->media[0].ice_pwd);
        outcome = restart ? Restart : Same;
        s.update = sdp;
        endpoint = s.endpoint;
        endpoint_path = s.endpoint_path;
        authorization = s.authorization;
        answer = s.answer;
      }
    }
  }
  if (outcome == Conflict)
    notify_user(user, "wrtcsConflictNotification", {oma_reason("SVC1007")}, url, url + "/update");
  if (outcome == Declined) {
    OmaNode type("eventType", "Declined");
    OmaNode description("eventDescription", "only ICE restarts are renegotiated");
    notify_user(user, "wrtcsEventNotification", {type, description}, url, url + "/update");
  }
  if (outcome == Refused || outcome == Conflict || outcome == Declined) return call->refuse(error);
  if (outcome == Same) return update_done(where.id, call, sdp, answer, {});

  auto ep = endpoint.lock();
  if (!ep) return update_done(where.id, call, sdp, std::nullopt, oma_error(404, "SVC0002", "the session ended"));
  Request patch;
  patch.method = "PATCH";
  patch.path = endpoint_path;
  patch.headers.set("Content-Type", "application/trickle-ice-sdpfrag");
  patch.headers.set("If-Match", "*");
  if (!authorization.empty()) patch.headers.set("Authorization", authorization);
  patch.body = restart_fragment(*offer);
  patch.client = call->req.client;
  std::weak_ptr<OmaFront> weak = weak_from_this();
  std::string id = where.id;
  ep->handle(patch, Reply([weak, id, call, sdp, answer](Response resp) {
               auto self = weak.lock();
               if (!self) return;
               std::string why;
               auto frag = resp.status == 200 ? parse_sdpfrag(resp.body, &why) : std::nullopt;
               if (!frag) {
                 unsigned status = resp.status == 404 ? 404 : resp.status == 200 ? 500 : 400;
                 self->update_done(id, call, sdp, std::nullopt,
                                   oma_error(status, status == 400 ? "SVC0002" : "SVC0001",
                                             "update: ICE restart: " + problem_detail(resp.body)));
                 return;
               }
               self->update_done(id, call, sdp, with_new_ice(answer, *frag), {});
             }));
}

void OmaFront::update_done(const std::string &id, const std::shared_ptr<Call> &call, const std::string &offer,
                           std::optional<std::string> answer, const OmaError &error) {
  std::string url, user;
  bool known = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    if (it != sessions_.end()) {
      known = true;
      Session &s = it->second;
      s.update.clear();
      if (answer) {
        s.offer = offer;  // the answered update becomes the session's offer
        s.answer = *answer;
      }
      url = session_url(s);
      user = s.user;
    }
  }
  if (!known) return call->refuse(oma_error(404, "SVC0002", "sessionId: the session ended during the update"));
  if (!answer) {
    OmaNode type("eventType", "Declined");
    OmaNode description("eventDescription", error.variables.empty() ? "" : error.variables[0]);
    notify_user(user, "wrtcsEventNotification", {type, description}, url, url + "/update");
    return call->refuse(error);
  }
  OmaNode root = oma_offer_node("wrtcsOffer", offer, "Local");
  call->send(200, &root);
  notify_user(user, "wrtcsAcceptanceNotification", {oma_answer_node("answer", *answer, "Remote")}, url);
}

void OmaFront::tick() {
  struct Watched {
    std::string id, endpoint_id;
    std::weak_ptr<Endpoint> endpoint;
  };
  std::vector<Watched> watched;
  int64_t t = now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (it->second.closed && t - it->second.closed_at > static_cast<int64_t>(config_.closed_kept_s) * 1000) {
        it = sessions_.erase(it);
        continue;
      }
      if (!it->second.closed) watched.push_back({it->first, it->second.endpoint_id, it->second.endpoint});
      ++it;
    }
    std::vector<std::string> expired;
    for (const auto &kv : subscriptions_)
      if (kv.second.expires <= t) expired.push_back(kv.first);
    for (const auto &id : expired) cancel_locked(id, nullptr);  // a plain expiry: no reason
  }
  // Endpoint calls outside the lock.
  std::vector<std::pair<std::string, std::string>> ended;  // id, reason
  for (const auto &w : watched) {
    auto ep = w.endpoint.lock();
    if (ep && ep->has_session(w.endpoint_id)) continue;
    std::string reason = ep ? ep->ended_reason(w.endpoint_id) : "stopped";
    ended.emplace_back(w.id, reason.empty() ? "ended" : reason);
  }
  for (const auto &e : ended) {
    std::string user, url;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = sessions_.find(e.first);
      if (it == sessions_.end() || it->second.closed) continue;
      it->second.closed = true;
      it->second.closed_at = t;
      user = it->second.user;
      url = session_url(it->second);
    }
    OmaNode type("eventType", "SessionEnded");
    OmaNode description("eventDescription", "the session ended: " + e.second);
    notify_user(user, "wrtcsEventNotification", {type, description}, url);
  }
}

}  // namespace wish
