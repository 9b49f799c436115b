#include "http_server.h"

#include <gst/gst.h>

#include <atomic>
#include <optional>

GST_DEBUG_CATEGORY_EXTERN(wish_http_debug);
#define GST_CAT_DEFAULT wish_http_debug

namespace wish {

namespace {
std::mutex registry_mutex;
std::map<std::string, std::weak_ptr<HttpServer>> registry;

}  // namespace

// A request waiting for its handler's reply. The reply may come from any thread and after
// the client went away, so the message is only touched on the server thread.
struct HttpServer::Pending {
  SoupServerMessage *msg = nullptr;  // a reference of ours until answered
  gulong finished_id = 0;
  bool finished = false;  // the connection went: nothing to answer
  bool answered = false;
  std::shared_ptr<BodyStream> stream;  // an answer whose body goes on (server thread only)
};

// Queues answers on the server's thread; after shutdown they are dropped, the messages they
// were for having been answered 503 then.
struct HttpServer::Replies {
  std::mutex mutex;  // guards loop
  LoopThread *loop = nullptr;
  std::vector<std::shared_ptr<Pending>> pending;  // server thread only
  std::mutex counts_mutex;  // guards responses
  std::map<unsigned, uint64_t> responses;  // answers sent by status, for the metrics

  void post(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mutex);
    if (loop) loop->post(std::move(fn));
  }
  // Server thread: sends the response (unless the client went) and forgets the message.
  void answer(const std::shared_ptr<Pending> &p, const Response &resp);
  // Server thread: the head of a streamed answer is out; its chunks follow as they come.
  void start_stream(const std::shared_ptr<Pending> &p, const std::shared_ptr<BodyStream> &stream);
  void write_chunk(const std::shared_ptr<Pending> &p, const std::string *chunk);
  void end_stream(const std::shared_ptr<Pending> &p);  // written to the end, or the client left
  std::vector<std::shared_ptr<Pending>> streaming;  // server thread only
};

void HttpServer::Replies::answer(const std::shared_ptr<Pending> &p, const Response &resp) {
  if (p->answered) return;
  p->answered = true;
  GST_DEBUG("answered %u", resp.status);
  {
    std::lock_guard<std::mutex> lock(counts_mutex);
    responses[resp.status]++;
  }
  SoupServerMessage *m = p->msg;
  g_signal_handler_disconnect(m, p->finished_id);
  if (!p->finished) {
    soup_server_message_set_status(m, resp.status, reason_phrase(resp.status));
    SoupMessageHeaders *rh = soup_server_message_get_response_headers(m);
    // libsoup 3.2 never notices a client closing an idle keep-alive connection, which
    // would leave one socket in CLOSE_WAIT per connection; WHIP/WHEP clients make few
    // requests, so close after each response.
    soup_message_headers_replace(rh, "Connection", "close");
    std::string content_type;
    for (const auto &kv : resp.headers.items()) {
      if (iequals(kv.first, "Content-Type"))
        content_type = kv.second;
      else
        soup_message_headers_append(rh, kv.first.c_str(), kv.second.c_str());
    }
    if (resp.stream) {
      soup_message_headers_set_encoding(rh, SOUP_ENCODING_CHUNKED);
      soup_message_headers_replace(rh, "Content-Type", content_type.empty() ? "text/plain" : content_type.c_str());
      soup_message_body_set_accumulate(soup_server_message_get_response_body(m), FALSE);
    } else if (!resp.body.empty()) {
      soup_server_message_set_response(m, content_type.empty() ? "text/plain" : content_type.c_str(),
                                       SOUP_MEMORY_COPY, resp.body.data(), resp.body.size());
    } else if (!content_type.empty()) {
      soup_message_headers_replace(rh, "Content-Type", content_type.c_str());
    }
    soup_server_message_unpause(m);
  }
  for (auto it = pending.begin(); it != pending.end(); ++it)
    if (*it == p) {
      pending.erase(it);
      break;
    }
  if (resp.stream && !p->finished) {
    start_stream(p, resp.stream);
    return;
  }
  if (resp.stream) resp.stream->detach();
  g_object_unref(m);
  p->msg = nullptr;
}

void HttpServer::Replies::start_stream(const std::shared_ptr<Pending> &p, const std::shared_ptr<BodyStream> &stream) {
  p->stream = stream;
  streaming.push_back(p);
  struct Ctx {
    Replies *replies;
    std::shared_ptr<Pending> pending;
  };
  p->finished_id = g_signal_connect_data(p->msg, "finished", G_CALLBACK(+[](SoupServerMessage *, gpointer d) {
                                           auto *ctx = static_cast<Ctx *>(d);
                                           std::shared_ptr<Pending> pending = ctx->pending;  // ctx goes in end_stream
                                           pending->finished = true;
                                           ctx->replies->end_stream(pending);
                                         }),
                                         new Ctx{this, p}, +[](gpointer d, GClosure *) { delete static_cast<Ctx *>(d); },
                                         GConnectFlags(0));
  std::weak_ptr<Pending> weak = p;
  // Runs under the stream's lock: only queues the chunk for this thread.
  stream->attach([this, weak](const std::string *chunk) {
    std::optional<std::string> data;
    if (chunk) data = *chunk;
    post([this, weak, data = std::move(data)] {
      if (auto p = weak.lock()) write_chunk(p, data ? &*data : nullptr);
    });
  });
}

void HttpServer::Replies::write_chunk(const std::shared_ptr<Pending> &p, const std::string *chunk) {
  if (p->finished || !p->msg) return;
  SoupMessageBody *body = soup_server_message_get_response_body(p->msg);
  if (chunk)
    soup_message_body_append(body, SOUP_MEMORY_COPY, chunk->data(), chunk->size());
  else
    soup_message_body_complete(body);
  soup_server_message_unpause(p->msg);
}

void HttpServer::Replies::end_stream(const std::shared_ptr<Pending> &p) {
  if (!p->msg) return;
  if (p->stream) p->stream->detach();
  SoupServerMessage *m = p->msg;
  p->msg = nullptr;
  g_signal_handler_disconnect(m, p->finished_id);  // frees the handler's hold on p: keep it here
  for (auto it = streaming.begin(); it != streaming.end(); ++it)
    if (*it == p) {
      streaming.erase(it);
      break;
    }
  g_object_unref(m);
}

std::map<unsigned, uint64_t> HttpServer::response_counts() const {
  std::lock_guard<std::mutex> lock(replies_->counts_mutex);
  return replies_->responses;
}

std::shared_ptr<HttpServer> HttpServer::acquire(const Options &options, std::string *error) {
  std::shared_ptr<HttpServer> server;
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    if (options.port != 0) {
      auto it = registry.find(options.address + ":" + std::to_string(options.port));
      if (it != registry.end())
        if (auto existing = it->second.lock()) return existing;
    }
    server.reset(new HttpServer());
    if (server->start(options, error)) {
      // Registered under the port it got, so that an element given that port (one told the
      // current-port of a port=0 element) shares it.
      server->key_ = options.address + ":" + std::to_string(server->bound_port_);
      registry[server->key_] = server;
      return server;
    }
  }
  server.reset();  // outside the lock: the destructor takes it
  return nullptr;
}

bool HttpServer::start(const Options &options, std::string *error) {
  max_body_size_ = options.limits.max_body_size;
  loop_ = std::make_unique<LoopThread>("wish-http");
  replies_ = std::make_shared<Replies>();
  replies_->loop = loop_.get();
  bool ok = false;
  loop_->invoke_sync([&] {
    GError *err = nullptr;
    GTlsCertificate *cert = nullptr;
    if (!options.tls_certificate_file.empty()) {
      const std::string &key_file =
          options.tls_key_file.empty() ? options.tls_certificate_file : options.tls_key_file;
      cert = g_tls_certificate_new_from_files(options.tls_certificate_file.c_str(),
                                              key_file.c_str(), &err);
      if (!cert) {
        *error = std::string("cannot load TLS certificate: ") + err->message;
        g_error_free(err);
        return;
      }
      tls_ = true;
    }
    // No trailing space: libsoup would append its name and version.
    server_ = soup_server_new("server-header", "wish", nullptr);
    soup_server_add_handler(server_, nullptr, &HttpServer::on_request, this, nullptr);
    g_signal_connect(server_, "request-started", G_CALLBACK(&HttpServer::on_request_started), this);
    // The guard listens and hands libsoup the connections that pass (TLS set up already).
    SoupServer *soup = server_;
    guard_ = std::make_unique<HttpGuard>(loop_->context(), options.limits, cert,
                                         [soup](GIOStream *stream, GSocketAddress *local, GSocketAddress *remote) {
                                           soup_server_accept_iostream(soup, stream, local, remote, nullptr);
                                         });
    if (cert) g_object_unref(cert);
    if (!guard_->listen(options.address, options.port, error)) return;
    bound_port_ = guard_->port();
    GST_INFO("HTTP%s server listening on %s:%u", tls_ ? "S" : "", options.address.c_str(), bound_port_);
    ok = true;
  });
  if (!ok && server_) {
    loop_->invoke_sync([&] {
      guard_.reset();
      g_object_unref(server_);
      server_ = nullptr;
    });
  }
  return ok;
}

HttpServer::~HttpServer() {
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    if (!key_.empty()) {
      auto it = registry.find(key_);
      if (it != registry.end() && it->second.expired()) registry.erase(it);
    }
  }
  if (replies_) {
    std::lock_guard<std::mutex> lock(replies_->mutex);
    replies_->loop = nullptr;  // replies sent from now on are dropped
  }
  if (loop_ && server_) {
    loop_->invoke_sync([this] {
      // Requests still waiting for their handlers get an answer before the server goes.
      auto pending = replies_->pending;
      for (auto &p : pending) replies_->answer(p, Response::problem(503, "the server is shutting down"));
      auto streaming = replies_->streaming;
      for (auto &p : streaming) replies_->end_stream(p);
      soup_server_disconnect(server_);
      guard_.reset();
      g_object_unref(server_);
      server_ = nullptr;
    });
  }
  loop_.reset();
}

bool HttpServer::add_handler(const std::string &path, Handler handler) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (handlers_.count(path)) return false;
  auto reg = std::make_shared<Registration>();
  reg->handler = std::move(handler);
  handlers_[path] = std::move(reg);
  return true;
}

void HttpServer::remove_handler(const std::string &path) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = handlers_.find(path);
  if (it == handlers_.end()) return;
  std::shared_ptr<Registration> reg = it->second;
  handlers_.erase(it);
  if (loop_->is_current()) return;  // called by a handler: the only call running is that one
  idle_.wait(lock, [&] { return reg->running == 0; });
}

// Longest registered path that is the request path or a parent of it, counted as running.
std::shared_ptr<HttpServer::Registration> HttpServer::lookup(const std::string &path) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t best = 0;
  std::shared_ptr<Registration> found;
  for (const auto &kv : handlers_) {
    const std::string &p = kv.first;
    bool match = path == p || (path.compare(0, p.size(), p) == 0 &&
                               (p.back() == '/' || path[p.size()] == '/'));
    if (match && p.size() >= best) {
      best = p.size();
      found = kv.second;
    }
  }
  if (found) found->running++;
  return found;
}

static void set_problem(SoupServerMessage *msg, unsigned status, const char *detail) {
  Response r = Response::problem(status, detail);
  soup_server_message_set_status(msg, status, nullptr);
  SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(h, "Access-Control-Allow-Origin", "*");
  soup_message_headers_replace(h, "Connection", "close");
  soup_server_message_set_response(msg, "application/problem+json", SOUP_MEMORY_COPY,
                                   r.body.data(), r.body.size());
}

// Every connection's first (and only) message, from the moment it is accepted.
void HttpServer::on_request_started(SoupServer *, SoupServerMessage *msg, gpointer data) {
  auto *self = static_cast<HttpServer *>(data);
  // One request per connection, also for the answers libsoup makes by itself (400 for an
  // encoded slash): libsoup 3.2 never notices a client closing a kept-alive connection, and
  // each would stay in CLOSE_WAIT for good.
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection", "close");
  if (self->guard_) self->guard_->watch_message(msg);
}

void HttpServer::on_request(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *,
                            gpointer data) {
  auto *self = static_cast<HttpServer *>(data);
  if (soup_server_message_get_status(msg) != 0) return;  // libsoup answers it (400) by itself

  Request req;
  req.method = soup_server_message_get_method(msg);
  req.path = path;
  if (GSocketAddress *remote = soup_server_message_get_remote_address(msg))
    if (G_IS_INET_SOCKET_ADDRESS(remote)) {
      g_autofree gchar *ip = g_inet_address_to_string(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(remote)));
      req.client = ip;
    }
  SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
  soup_message_headers_foreach(
      h,
      [](const char *name, const char *value, gpointer r) {
        static_cast<Request *>(r)->headers.add(name, value);
      },
      &req);
  SoupMessageBody *body = soup_server_message_get_request_body(msg);
  if (body) {
    GBytes *bytes = soup_message_body_flatten(body);
    gsize size = 0;
    const char *data_ptr = static_cast<const char *>(g_bytes_get_data(bytes, &size));
    if (size > self->max_body_size_) {
      g_bytes_unref(bytes);
      set_problem(msg, 413, "request body too large");
      return;
    }
    req.body.assign(data_ptr ? data_ptr : "", size);
    g_bytes_unref(bytes);
  }

  std::shared_ptr<Registration> reg = self->lookup(req.path);
  if (!reg) {
    set_problem(msg, 404, "no such resource");
    return;
  }
  GST_DEBUG("%s %s", req.method.c_str(), req.path.c_str());

  auto pending = std::make_shared<Pending>();
  pending->msg = static_cast<SoupServerMessage *>(g_object_ref(msg));
  pending->finished_id = g_signal_connect(msg, "finished", G_CALLBACK(+[](SoupServerMessage *, gpointer p) {
                                            static_cast<Pending *>(p)->finished = true;
                                          }),
                                          pending.get());
  self->replies_->pending.push_back(pending);
  soup_server_message_pause(msg);

  // Always deferred: libsoup wants the message paused when its handler returns and
  // unpaused later, never both inside the handler.
  std::shared_ptr<Replies> replies = self->replies_;
  Reply reply([replies, pending](Response resp) {
    replies->post([replies, pending, resp = std::move(resp)] { replies->answer(pending, resp); });
  });
  reg->handler(req, std::move(reply));
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    reg->running--;
  }
  self->idle_.notify_all();
}

}  // namespace wish
