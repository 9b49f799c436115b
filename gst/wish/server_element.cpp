#include "server_element.h"

#include "protocol/sdpfrag.h"
#include "webrtc_utils.h"

GST_DEBUG_CATEGORY_EXTERN(wish_server_debug);
#define GST_CAT_DEFAULT wish_server_debug

namespace wish {

namespace {
constexpr guint kGatherTimeoutMs = 3000;
constexpr guint kTickMs = 250;
// How long a stop waits for the reconnect events to be written out.
constexpr int64_t kEventDrainMs = 500;
}  // namespace

static std::string without_trailing_slashes(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string HttpSettings::endpoint_path() const { return without_trailing_slashes(path); }

std::vector<IceServer> HttpSettings::ice_servers() const {
  std::vector<std::string> urls = turn_servers;
  if (!stun_server.empty()) urls.insert(urls.begin(), stun_server);
  std::vector<IceServer> out;
  for (const auto &u : urls)
    if (auto s = parse_ice_server_url(u)) out.push_back(*s);
  return out;
}

// What the endpoint keeps for a session. Everything it asks goes to the worker; dropping
// it releases the session there. After the element stopped, the dispatcher drops the work.
class ServerElement::Handle : public MediaSession {
public:
  Handle(ServerElement *owner, std::string id) : owner_(owner), dispatch_(owner->dispatch_), id_(std::move(id)) {}
  ~Handle() override {
    ServerElement *owner = owner_;
    std::string id = id_, reason = end_reason;
    dispatch_->post([owner, id, reason] { owner->release(id, reason); });
  }
  void add_candidates(const SdpFrag &frag) override {
    std::vector<std::string> candidates;
    for (const auto &m : frag.media) candidates.insert(candidates.end(), m.candidates.begin(), m.candidates.end());
    ServerElement *owner = owner_;
    std::string id = id_;
    dispatch_->post([owner, id, candidates] {
      if (auto s = owner->find_session(id)) s->peer->add_remote_candidates(candidates);
    });
  }
  void restart_ice(const SdpFrag &frag, MediaCallback done) override {
    with_session(done, [frag](ServerElement *owner, ServerSession &s, const MediaCallback &done) {
      std::vector<std::string> remote;
      for (const auto &m : frag.media) remote.insert(remote.end(), m.candidates.begin(), m.candidates.end());
      LocalIce local;
      std::string error;
      if (!s.peer->restart_ice(frag.ice_ufrag, frag.ice_pwd, remote, &local, &error)) {
        done(MediaResult::failure(422, "ICE restart failed: " + error));
        return;
      }
      SdpFrag answer;
      answer.ice_ufrag = local.ufrag;
      answer.ice_pwd = local.pwd;
      answer.media.push_back({s.peer->first_mid(), local.candidates, true});
      GST_INFO_OBJECT(owner->element_, "ICE restarted for session %s", s.id.c_str());
      done(MediaResult::success(build_sdpfrag(answer)));
    });
  }
  std::string ice_connection_state() const override { return owner_->ice_state_of(id_); }
  std::vector<VideoLayer> layers() const override { return owner_->session_layers(id_); }
  void select_layer(int layer, MediaCallback done) override {
    with_session(done, [layer](ServerElement *owner, ServerSession &s, const MediaCallback &done) {
      done(owner->select_layer(s, layer));
    });
  }
  void apply_answer(const std::string &answer, MediaCallback done) override {
    with_session(done, [answer](ServerElement *, ServerSession &s, const MediaCallback &done) {
      s.peer->apply_answer(answer, [done](Negotiated n) {
        done(n.ok ? MediaResult::success("") : MediaResult::failure(n.status, n.error));
      });
    });
  }

private:
  // Runs fn on the worker with the session; done fails with 404 when the session is gone
  // by then, 503 when the element is stopping.
  void with_session(MediaCallback done,
                    std::function<void(ServerElement *, ServerSession &, const MediaCallback &)> fn) {
    ServerElement *owner = owner_;
    std::string id = id_;
    if (!dispatch_->post([owner, id, done, fn] {
          if (auto s = owner->find_session(id))
            fn(owner, *s, done);
          else
            done(MediaResult::failure(404, "no such session"));
        }))
      done(MediaResult::failure(503, "the element is stopping"));
  }

  ServerElement *owner_;
  std::shared_ptr<Dispatcher> dispatch_;
  std::string id_;
};

// The endpoint's handle of an adopted session: the session's own media does the work; the
// session is released on the worker once that media is dropped.
class ServerElement::Adopted : public MediaSession {
public:
  Adopted(ServerElement *owner, std::string id, std::unique_ptr<MediaSession> media)
      : owner_(owner), dispatch_(owner->dispatch_), id_(std::move(id)), media_(std::move(media)) {}
  ~Adopted() override {
    media_->end_reason = end_reason;
    media_.reset();
    ServerElement *owner = owner_;
    std::string id = id_, reason = end_reason;
    dispatch_->post([owner, id, reason] { owner->release(id, reason); });
  }
  void add_candidates(const SdpFrag &frag) override { media_->add_candidates(frag); }
  void restart_ice(const SdpFrag &frag, MediaCallback done) override { media_->restart_ice(frag, std::move(done)); }
  void apply_answer(const std::string &answer, MediaCallback done) override {
    media_->apply_answer(answer, std::move(done));
  }
  std::string ice_connection_state() const override { return media_->ice_connection_state(); }
  std::vector<VideoLayer> layers() const override { return media_->layers(); }
  void select_layer(int layer, MediaCallback done) override { media_->select_layer(layer, std::move(done)); }

private:
  ServerElement *owner_;
  std::shared_ptr<Dispatcher> dispatch_;
  std::string id_;
  std::unique_ptr<MediaSession> media_;
};

std::unique_ptr<MediaSession> ServerElement::adopt_session(std::shared_ptr<ServerSession> session,
                                                           std::unique_ptr<MediaSession> media) {
  std::string id = session->id;
  session->answered = true;
  {
    std::lock_guard<std::mutex> lock(sessions_mutex_);
    sessions_[id] = std::move(session);
  }
  return std::make_unique<Adopted>(this, id, std::move(media));
}

ServerElement::ServerElement(GstElement *element, const char *default_path) : element_(element) {
  http.path = default_path;
}

ServerElement::~ServerElement() { stop(); }

bool ServerElement::start() {
  warm_up_webrtc();  // the first viewer's answer then does not pay for it
  GST_OBJECT_LOCK(element_);
  HttpSettings s = http;
  GST_OBJECT_UNLOCK(element_);
  std::string error;
  if (!resolve_local_addresses(s.ice_local_addresses, &local_addresses_, &error)) {
    GST_ELEMENT_ERROR(element_, RESOURCE, SETTINGS, ("Invalid ice-local-addresses"), ("%s", error.c_str()));
    return false;
  }
  if (!parse_port_range(s.ice_port_range, &ice_ports_, &error)) {
    GST_ELEMENT_ERROR(element_, RESOURCE, SETTINGS, ("Invalid ice-port-range"), ("%s", error.c_str()));
    return false;
  }
  worker_ = std::make_unique<LoopThread>("wish-server");
  dispatch_ = std::make_shared<Dispatcher>(worker_.get());
  if (!on_start(&error)) {
    GST_ELEMENT_ERROR(element_, RESOURCE, SETTINGS, ("Cannot start"), ("%s", error.c_str()));
    return false;
  }
  EndpointConfig config;
  config.path = s.endpoint_path();
  config.auth_token = s.auth_token;
  config.cors_allowed_origins = s.cors_allowed_origins;
  config.ice_servers = s.ice_servers();
  config.max_pending_per_client = s.max_pending_sessions_per_client;
  configure_endpoint(&config);
  if (!serve(s, config)) return false;
  transcoder_ = std::make_unique<TranscodeHost>(GST_BIN(element_), dispatch_);
  registry_->set_transcoder(transcoder_.get(), s.transcode);
  if (!serve_whisp(s) || !serve_oma(s) || !serve_metrics(s)) return false;
  on_serving();
  tick_source_ = worker_->add_interval(kTickMs, [this] {
    if (endpoint_)
      for (const auto &id : endpoint_->expire_stale()) GST_INFO_OBJECT(element_, "session %s expired", id.c_str());
    check_liveness();
    registry_->settle();
    transcoder_->tick();
    if (auto whisp = std::atomic_load(&whisp_)) whisp->tick();
    if (oma_) oma_->tick();
    tick();
  });
  return true;
}

// WHISP on whisp-path of the same HTTP server, with the endpoint's token and CORS rules.
bool ServerElement::serve_whisp(const HttpSettings &s) {
  if (s.whisp_path.empty()) return true;
  WhispHost::Settings ws;
  ws.pull_allow = split_list(s.whisp_pull_allow);
  ws.pull_timeout_s = s.whisp_pull_timeout;
  ws.ice_local_addresses = s.ice_local_addresses;
  ws.ice_port_range = s.ice_port_range;
  ws.encoder = encoder_settings();
  auto whisp = std::make_shared<WhispHost>(element_, dispatch_, registry_, ws);
  WhispConfig wc;
  wc.path = without_trailing_slashes(s.whisp_path);
  wc.auth_token = s.auth_token;
  wc.cors_allowed_origins = s.cors_allowed_origins;
  whisp_endpoint_ = std::make_shared<WhispEndpoint>(wc, whisp.get());
  std::weak_ptr<WhispEndpoint> weak = whisp_endpoint_;
  if (!mount("WHISP", "whisp-path", wc.path, [weak](const Request &req, Reply reply) {
        if (auto ep = weak.lock()) ep->handle(req, std::move(reply));
      })) {
    whisp_endpoint_.reset();
    return false;
  }
  std::atomic_store(&whisp_, whisp);
  return true;
}

// The OMA REST WebRTC signalling API on oma-path of the same HTTP server, in front of every
// WHEP and WHIP endpoint of that server, with this element's token and CORS rules.
bool ServerElement::serve_oma(const HttpSettings &s) {
  if (s.oma_path.empty()) return true;
  OmaConfig oc;
  oc.path = without_trailing_slashes(s.oma_path);
  oc.auth_token = s.auth_token;
  oc.cors_allowed_origins = s.cors_allowed_origins;
  oc.scheme = http_server_ && http_server_->is_tls() ? "https" : "http";
  constexpr guint kNotifyTimeoutS = 5;
  oma_host_ = std::make_unique<OmaHost>(registry_, kNotifyTimeoutS);
  oma_ = std::make_shared<OmaFront>(oc, oma_host_.get());
  std::weak_ptr<OmaFront> weak = oma_;
  if (!mount("OMA signalling", "oma-path", oc.path, [weak](const Request &req, Reply reply) {
        if (auto front = weak.lock()) front->handle(req, std::move(reply));
      })) {
    oma_.reset();
    oma_host_.reset();
    return false;
  }
  return true;
}

// Every element adds its sessions and what its subclass counts to the server's metrics; the
// element with metrics-path serves them all (Prometheus text) with its token.
bool ServerElement::serve_metrics(const HttpSettings &s) {
  std::weak_ptr<Endpoint> weak_ep = endpoint_;
  std::string path = endpoint_->config().path;
  metrics_hook_ = std::make_shared<MetricsHook>();
  auto hook = metrics_hook_;
  metrics_source_ = registry_->add_metrics_source([this, hook, weak_ep, path](MetricsText &out) {
    std::lock_guard<std::mutex> lock(hook->mutex);
    auto ep = weak_ep.lock();
    if (!hook->alive || !ep) return;
    Endpoint::Counters c = ep->counters();
    out.counter("wish_sessions_created_total", "Sessions answered (201) by the endpoint", {{"endpoint", path}},
                static_cast<double>(c.created));
    for (const auto &kv : c.ended)
      out.counter("wish_sessions_ended_total", "Sessions ended, by reason", {{"endpoint", path}, {"reason", kv.first}},
                  static_cast<double>(kv.second));
    collect_metrics(out);
  });
  if (s.metrics_path.empty()) return true;
  std::string mpath = without_trailing_slashes(s.metrics_path);
  std::weak_ptr<StreamRegistry> registry = registry_;
  std::weak_ptr<HttpServer> server = http_server_;
  std::string token = s.auth_token, origins = s.cors_allowed_origins;
  return mount("The metrics endpoint", "metrics-path", mpath, [registry, server, token, origins, mpath](const Request &req, Reply reply) {
        Response r = Response::empty(200);
        if (req.path != mpath) {
          r = Response::problem(404, "no such resource");
        } else if (auto refusal = refuse_unauthorized(req, token)) {
          r = std::move(*refusal);
        } else if (req.method != "GET" && req.method != "HEAD") {
          r = Response::problem(405, "metrics are read with GET");
          r.headers.set("Allow", "GET, HEAD");
        } else {
          MetricsText out;
          if (auto reg = registry.lock()) reg->collect_metrics(out);
          if (auto srv = server.lock())
            for (const auto &kv : srv->response_counts())
              out.counter("wish_http_responses_total", "HTTP answers of the server, by status",
                          {{"code", std::to_string(kv.first)}}, static_cast<double>(kv.second));
          r.headers.set("Content-Type", kMetricsContentType);
          if (req.method == "GET") r.body = out.text();
        }
        apply_cors(req, origins, "Content-Type", &r);
        reply.send(std::move(r));
      });
}

bool ServerElement::mount(const char *what, const char *property, const std::string &path, HttpServer::Handler handler) {
  if (!http_server_) {
    GST_ELEMENT_ERROR(element_, RESOURCE, SETTINGS, ("%s needs the built-in HTTP server", what),
                      ("%s is set but serve-http is false", property));
    return false;
  }
  std::string p = without_trailing_slashes(path);
  if (!http_server_->add_handler(p, std::move(handler))) {
    GST_ELEMENT_ERROR(element_, RESOURCE, OPEN_READ_WRITE, ("Cannot serve %s on %s", what, p.c_str()),
                      ("another element already serves %s", p.c_str()));
    return false;
  }
  mounted_.push_back(p);
  GST_INFO_OBJECT(element_, "serving %s on %s", what, p.c_str());
  return true;
}

bool ServerElement::handle_child_message(GstMessage *message) {
  auto whisp = std::atomic_load(&whisp_);
  return whisp && whisp->handle_message(message);
}

bool ServerElement::serve(const HttpSettings &s, const EndpointConfig &config) {
  endpoint_ = std::make_shared<Endpoint>(config, this);
  if (!s.serve_http) {
    registry_ = StreamRegistry::acquire("");
    registry_->add_endpoint_path(config.path, config.kind == EndpointKind::Whep, endpoint_);
    return true;
  }
  HttpServer::Options opts;
  opts.address = s.address;
  opts.port = s.port;
  opts.tls_certificate_file = s.tls_certificate_file;
  opts.tls_key_file = s.tls_key_file;
  opts.limits = s.limits;
  std::string error;
  http_server_ = HttpServer::acquire(opts, &error);
  if (!http_server_) {
    GST_ELEMENT_ERROR(element_, RESOURCE, OPEN_READ_WRITE, ("Cannot start the HTTP server"), ("%s", error.c_str()));
    return false;
  }
  std::weak_ptr<Endpoint> weak = endpoint_;
  if (!http_server_->add_handler(config.path, [weak](const Request &req, Reply reply) {
        if (auto ep = weak.lock()) ep->handle(req, std::move(reply));
      })) {
    GST_ELEMENT_ERROR(element_, RESOURCE, OPEN_READ_WRITE, ("Cannot serve %s", config.path.c_str()),
                      ("another element already serves %s on %s:%u", config.path.c_str(), opts.address.c_str(),
                       opts.port));
    http_server_.reset();
    return false;
  }
  served_path_ = config.path;
  registry_ = StreamRegistry::acquire(s.address + ":" + std::to_string(http_server_->port()));
  registry_->add_endpoint_path(config.path, config.kind == EndpointKind::Whep, endpoint_);
  GST_INFO_OBJECT(element_, "serving %s://%s:%u%s", http_server_->is_tls() ? "https" : "http", opts.address.c_str(),
                  http_server_->port(), config.path.c_str());
  g_object_notify(G_OBJECT(element_), "current-port");
  return true;
}

void ServerElement::close_sessions() {
  if (endpoint_) {
    // Players that asked for reconnect events hear where to go before their sessions end
    // (briefly waited for: the events must leave before the connections close).
    if (size_t told = endpoint_->announce_reconnect("")) {
      bool written = endpoint_->close_event_streams(kEventDrainMs);
      GST_INFO_OBJECT(element_, "told %zu players to reconnect%s", told, written ? "" : " (not all written in time)");
    }
    endpoint_->close_all("stopped");
  }
  if (worker_) worker_->invoke_sync([this] { release_all("stopped"); });
}

void ServerElement::stop() {
  // No new request reaches the endpoint, and none is still inside it, from here on.
  if (http_server_ && !served_path_.empty()) http_server_->remove_handler(served_path_);
  for (const auto &path : mounted_)
    if (http_server_) http_server_->remove_handler(path);
  mounted_.clear();
  if (registry_ && metrics_source_) registry_->remove_metrics_source(metrics_source_);
  if (metrics_hook_) {
    std::lock_guard<std::mutex> lock(metrics_hook_->mutex);
    metrics_hook_->alive = false;
  }
  metrics_hook_.reset();
  metrics_source_ = 0;
  served_path_.clear();
  close_sessions();
  if (worker_) {
    worker_->invoke_sync([this] {
      worker_->cancel(tick_source_);
      tick_source_ = 0;
      if (auto whisp = std::atomic_load(&whisp_)) whisp->stop();
      if (transcoder_) transcoder_->stop();
    });
  }
  std::atomic_store(&whisp_, std::shared_ptr<WhispHost>());
  whisp_endpoint_.reset();
  oma_.reset();  // endpoint replies and notifications still under way find it gone
  oma_host_.reset();
  if (registry_ && transcoder_) registry_->release_transcoder(transcoder_.get());
  on_stop();
  if (dispatch_) dispatch_->close();
  worker_.reset();
  if (registry_ && endpoint_) registry_->remove_endpoint_path(endpoint_->config().path);
  endpoint_.reset();
  http_server_.reset();
  registry_.reset();
  transcoder_.reset();
}

guint ServerElement::current_port() const { return http_server_ ? http_server_->port() : 0; }

bool ServerElement::switch_stream(const std::string &from, const std::string &to, std::string *error) {
  if (!registry_) {
    *error = "the element is not started";
    return false;
  }
  return registry_->switch_stream(from, to, error);
}

void ServerElement::handle_signal(const char *method, const GstStructure *request, GstPromise *promise) {
  Request req;
  req.method = method;
  const gchar *path = request ? gst_structure_get_string(request, "path") : nullptr;
  std::shared_ptr<Endpoint> ep = endpoint_;
  if (ep) req.path = path ? path : ep->config().path;
  if (request) {
    const std::pair<const char *, const char *> fields[] = {{"content-type", "Content-Type"},
                                                            {"if-match", "If-Match"},
                                                            {"authorization", "Authorization"},
                                                            {"origin", "Origin"},
                                                            {"accept", "Accept"}};
    for (const auto &f : fields) {
      const gchar *v = gst_structure_get_string(request, f.first);
      if (v) req.headers.add(f.second, v);
    }
    const gchar *body = gst_structure_get_string(request, "body");
    if (body) req.body = body;
  }
  GPtr<GstPromise> p = GPtr<GstPromise>::ref(promise);
  Reply reply([p](Response resp) {
    if (!p) return;
    GstStructure *headers = gst_structure_new_empty("headers");
    for (const auto &kv : resp.headers.items()) {
      std::string name = kv.first;
      for (auto &c : name) c = static_cast<char>(g_ascii_tolower(c));
      const gchar *prev = gst_structure_get_string(headers, name.c_str());
      std::string value = prev ? std::string(prev) + ", " + kv.second : kv.second;
      gst_structure_set(headers, name.c_str(), G_TYPE_STRING, value.c_str(), nullptr);
    }
    GstStructure *s = gst_structure_new("wish-response", "status", G_TYPE_UINT, resp.status, "body", G_TYPE_STRING,
                                        resp.body.c_str(), "headers", GST_TYPE_STRUCTURE, headers, nullptr);
    gst_structure_free(headers);
    gst_promise_reply(p.get(), s);
  });
  if (!ep) {
    reply.send(Response::problem(503, "element is not started"));
    return;
  }
  ep->handle(req, std::move(reply));
}

// ---------------------------------------------------------------------------------------
// Sessions

std::shared_ptr<ServerSession> ServerElement::find_session(const std::string &id) const {
  std::lock_guard<std::mutex> lock(sessions_mutex_);
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<ServerSession>> ServerElement::sessions() const {
  std::lock_guard<std::mutex> lock(sessions_mutex_);
  std::vector<std::shared_ptr<ServerSession>> out;
  for (const auto &kv : sessions_) out.push_back(kv.second);
  return out;
}

void ServerElement::create_session(const SessionRequest &request, std::shared_ptr<SessionEvents> events,
                                   SessionCallback done) {
  bool queued = dispatch_ && dispatch_->post([this, request, events, done]() mutable {
    auto session = new_session();
    session->id = request.id;
    session->stream = request.stream;
    session->events = events;
    session->created_us = g_get_real_time();
    session->peer = std::make_unique<Peer>(GST_BIN(element_), worker_.get(), dispatch_);
    GST_OBJECT_LOCK(element_);
    Peer::Settings ps;
    ps.stun_server = http.stun_server;
    ps.turn_servers = http.turn_servers;
    ps.retransmission = http.do_retransmission;
    GST_OBJECT_UNLOCK(element_);
    ps.local_addresses = local_addresses_;
    ps.ports = ice_ports_;
    ps.latency_ms = jitterbuffer_latency_ms();
    std::string id = request.id;
    Peer::Callbacks cb;
    cb.on_state = [this, id] { on_peer_state(id); };
    std::weak_ptr<ServerSession> weak = session;
    cb.on_stream = [this, weak](GstPad *pad, const std::string &kind) {
      if (auto s = weak.lock()) on_stream(s, pad, kind);
    };
    std::string error;
    if (!session->peer->create("session_" + id.substr(0, 8), ps, cb, &error)) {
      done(MediaResult::failure(500, error), nullptr);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(sessions_mutex_);
      sessions_[id] = session;
    }
    session->pending = std::move(done);
    MediaResult refusal;
    if (!attach_media(*session, request, &refusal)) {
      SessionCallback pending = std::move(session->pending);
      release(id, "failed");
      pending(refusal, nullptr);
      return;
    }
    session->peer->start(sessions_run_independently());
    auto completed = [this, id](Negotiated n) {
      auto s = find_session(id);
      if (!s || !s->pending) return;
      SessionCallback pending = std::move(s->pending);
      s->pending = nullptr;
      if (!n.ok) {
        GST_INFO_OBJECT(element_, "session %s failed: %s", id.c_str(), n.error.c_str());
        release(id, "failed");
        pending(MediaResult::failure(n.status, n.error), nullptr);
        return;
      }
      GST_DEBUG_OBJECT(element_, "session %s local description:\n%s", id.c_str(), n.sdp.c_str());
      s->answered = true;
      pending(MediaResult::success(finish_answer(*s, n.sdp)), std::make_unique<Handle>(this, id));
      on_answered(*s);
    };
    if (request.counter_offer)
      session->peer->offer_with_candidates(kGatherTimeoutMs, completed);
    else
      session->peer->answer_with_candidates(request.offer, kGatherTimeoutMs, completed, answer_edit(*session));
  });
  if (!queued) done(MediaResult::failure(503, "the element is not running"), nullptr);
}

std::string ServerElement::ice_state_of(const std::string &id) const {
  std::lock_guard<std::mutex> lock(sessions_mutex_);
  auto it = sessions_.find(id);
  return it == sessions_.end() ? "" : it->second->ice_state;
}

void ServerElement::on_peer_state(const std::string &id) {
  auto s = find_session(id);
  if (!s) return;
  GstWebRTCPeerConnectionState pc = s->peer->connection_state();
  GstWebRTCICEConnectionState ice = s->peer->ice_state();
  std::string state = Peer::state_name(pc);
  bool changed;
  {
    std::lock_guard<std::mutex> lock(sessions_mutex_);
    changed = state != s->state;
    s->state = state;
    s->ice_state = Peer::state_name(ice);
  }
  if (changed) GST_INFO_OBJECT(element_, "session %s: connection %s", id.c_str(), state.c_str());
  if (pc == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED && !s->connected) {
    s->connected = true;
    s->peer->watch_incoming();
    s->events->connected();
    on_connected(*s);
  }
  if (pc == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED || pc == GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED ||
      ice == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED || ice == GST_WEBRTC_ICE_CONNECTION_STATE_CLOSED)
    end_session(*s, "connection-lost");
}

void ServerElement::end_session(ServerSession &session, const std::string &reason, bool release_now) {
  if (session.ending) return;
  session.ending = true;
  GST_INFO_OBJECT(element_, "session %s ends: %s", session.id.c_str(), reason.c_str());
  std::string id = session.id;
  // The endpoint drops the handle, which releases the session here later (nothing when it
  // is released already); a session still being set up has no handle yet.
  if (session.answered) session.events->ended(reason);
  if (release_now || !session.answered) release(id, reason);
}

gint64 ServerSession::last_heard_us() const { return peer && peer->watching() ? peer->last_rx() : -1; }

// Peers send RTCP every second or so: one that vanished without DELETE goes silent.
void ServerElement::check_liveness() {
  gint64 timeout_us = static_cast<gint64>(silence_timeout_s()) * G_USEC_PER_SEC;
  gint64 now = g_get_monotonic_time();
  for (const auto &s : sessions()) {
    gint64 heard = s->ending ? -1 : s->last_heard_us();
    if (heard < 0 || now - heard <= timeout_us) continue;
    GST_INFO_OBJECT(element_, "nothing heard from session %s for %u s", s->id.c_str(), silence_timeout_s());
    end_session(*s, "timeout");
  }
}

void ServerElement::release(const std::string &id, const std::string &reason) {
  std::shared_ptr<ServerSession> s;
  {
    std::lock_guard<std::mutex> lock(sessions_mutex_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    s = it->second;
    sessions_.erase(it);
  }
  stop_feeding(*s);
  if (s->peer) s->peer->close([this, s](GstElement *webrtc) { detach_media(*s, webrtc); });
  GST_INFO_OBJECT(element_, "session %s ended (%s)", id.c_str(), reason.c_str());
  if (s->pending) {
    SessionCallback pending = std::move(s->pending);
    s->pending = nullptr;
    pending(MediaResult::failure(503, "session closed while being set up"), nullptr);
  }
  on_released(*s, reason);
}

void ServerElement::release_all(const std::string &reason) {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(sessions_mutex_);
    for (const auto &kv : sessions_) ids.push_back(kv.first);
  }
  for (const auto &id : ids) release(id, reason);
}

}  // namespace wish
