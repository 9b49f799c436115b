// The WHEP extensions of an endpoint's sessions: server-sent events (subscriptions, event
// streams, the state they report) and video layer selection.
#include "endpoint.h"

namespace wish {

namespace {
constexpr const char *kEventsMethods = "OPTIONS, POST, GET";
constexpr const char *kEventStreamMethods = "OPTIONS, GET, DELETE";
constexpr const char *kLayerMethods = "OPTIONS, POST";
constexpr const char *kJson = "application/json";
}  // namespace

const char *Endpoint::extension_methods(const Route &where) {
  if (where.is_layer) return kLayerMethods;
  return where.subscription.empty() ? kEventsMethods : kEventStreamMethods;
}

size_t Endpoint::announce_reconnect(const std::string &url) {
  EndpointConfig cfg = config();
  size_t next = 0;
  // Called under the hub's lock: touches nothing of the endpoint's. Always a URL: a player
  // told to reconnect "somewhere" would go back to wherever it was configured with.
  return events_.announce_reconnect([&](const std::string &stream) {
    if (!url.empty()) return url;
    std::string suffix = stream.empty() ? "" : "/" + stream;
    if (cfg.redirect_to.empty()) return cfg.path + suffix;  // relative: this server again
    return cfg.redirect_to[next++ % cfg.redirect_to.size()] + suffix;
  });
}

bool Endpoint::close_event_streams(int64_t wait_ms) {
  return events_.close_all(wait_ms);
}

void Endpoint::count_viewers_locked(const std::string &stream) {
  if (config_.kind != EndpointKind::Whep) return;
  size_t n = 0;
  for (const auto &kv : sessions_) n += kv.second.stream == stream && kv.second.state == SessionState::Active;
  events_.set_viewers(stream, n, now());
}

void Endpoint::refresh_events() {
  for (const auto &stream : events_.watched_streams()) events_.set_active(stream, backend_->admit(stream).status == 0);
  events_.flush(now());
}

void Endpoint::handle_events(const Request &req, const Route &where, Reply reply) {
  std::string stream;
  bool known = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(where.session);
    if (it != sessions_.end() && it->second.state == SessionState::Active) {
      known = true;
      stream = it->second.stream;
    }
  }
  if (!known) {
    reply.send(Response::problem(404, "no such session"));
    return;
  }
  const std::string layers = layers_event(where.session);
  const bool list = where.subscription.empty();
  const char *allowed = list ? kEventsMethods : kEventStreamMethods;
  auto event_stream = [](std::shared_ptr<BodyStream> out) {
    Response r = Response::empty(200);
    r.headers.set("Content-Type", "text/event-stream");
    r.headers.set("Cache-Control", "no-cache");
    r.stream = std::move(out);
    return r;
  };
  if (req.method == "OPTIONS") {
    Response r = Response::empty(200);
    r.headers.set("Allow", allowed);
    if (list) r.headers.set("Accept-Post", kJson);
    reply.send(std::move(r));
  } else if (list && req.method == "POST") {
    if (media_type(req.headers.get("Content-Type").value_or("")) != kJson) {
      reply.send(Response::problem(415, "a subscription is a JSON array of event names (application/json)"));
      return;
    }
    std::vector<std::string> names;
    std::string error;
    if (!parse_event_subscription(req.body, server_event_names(!layers.empty()), &names, &error)) {
      reply.send(Response::problem(400, error));
      return;
    }
    std::string id = events_.subscribe(where.session, stream, names);
    if (id.empty()) {
      reply.send(Response::problem(429, "too many event subscriptions for this session"));
      return;
    }
    refresh_events();
    Response r = Response::empty(201);
    r.headers.set("Location", req.path + "/" + id);
    reply.send(std::move(r));
  } else if (list && req.method == "GET") {
    // Older players GET the advertised URL itself: every event.
    auto out = events_.open_all(where.session, stream);
    if (out && !layers.empty()) out->write(format_event("layers", layers));
    reply.send(out ? event_stream(std::move(out)) : Response::problem(429, "too many event streams for this session"));
  } else if (!list && req.method == "GET") {
    auto out = events_.open(where.session, where.subscription);
    if (out && !layers.empty() && events_.wants(where.session, where.subscription, "layers"))
      out->write(format_event("layers", layers));
    reply.send(out ? event_stream(std::move(out)) : Response::problem(404, "no such event subscription"));
  } else if (!list && req.method == "DELETE") {
    reply.send(events_.unsubscribe(where.session, where.subscription) ? Response::empty(200)
                                                                      : Response::problem(404, "no such event subscription"));
  } else {
    Response r = Response::problem(405, "method not allowed on event subscriptions");
    r.headers.set("Allow", allowed);
    reply.send(std::move(r));
  }
}

std::string Endpoint::layers_event(const std::string &id) const {
  int mline = -1;
  std::shared_ptr<MediaSession> media;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return "";
    mline = it->second.video_mline;
    media = it->second.media;
  }
  std::vector<VideoLayer> layers = media ? media->layers() : std::vector<VideoLayer>();
  return layers.empty() || mline < 0 ? "" : layers_event_data(mline, layers);
}

void Endpoint::handle_layer(const Request &req, const std::string &id, Reply reply) {
  int mline = -1;
  std::shared_ptr<MediaSession> media;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(id);
    if (it != sessions_.end() && it->second.state == SessionState::Active) {
      mline = it->second.video_mline;
      media = it->second.media;
    }
  }
  std::vector<VideoLayer> layers = media ? media->layers() : std::vector<VideoLayer>();
  if (!media || layers.empty()) {
    reply.send(Response::problem(404, media ? "this session has no layers to choose from" : "no such session"));
    return;
  }
  if (req.method == "OPTIONS") {
    Response r = Response::empty(200);
    r.headers.set("Allow", kLayerMethods);
    r.headers.set("Accept-Post", kJson);
    reply.send(std::move(r));
    return;
  }
  if (req.method != "POST") {
    Response r = Response::problem(405, "method not allowed on the layer resource");
    r.headers.set("Allow", kLayerMethods);
    reply.send(std::move(r));
    return;
  }
  if (media_type(req.headers.get("Content-Type").value_or("")) != kJson) {
    reply.send(Response::problem(415, "a layer request is a JSON object (application/json)"));
    return;
  }
  LayerRequest request;
  std::string error;
  if (!parse_layer_request(req.body, &request, &error)) {
    reply.send(Response::problem(400, error));
    return;
  }
  if (!request.media_id.empty() && request.media_id != std::to_string(mline)) {
    reply.send(Response::problem(422, "m-line " + request.media_id.substr(0, 16) + " has no layers"));
    return;
  }
  int layer = -1;
  if (!request.automatic()) {
    layer = choose_layer(layers, request, &error);
    if (layer < 0) {
      reply.send(Response::problem(422, error));
      return;
    }
  }
  media->select_layer(layer, [reply](MediaResult result) {
    reply.send(result.ok ? Response::empty(200) : Response::problem(result.status, result.error));
  });
}

}  // namespace wish
