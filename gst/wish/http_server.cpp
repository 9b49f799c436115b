#include "http_server.h"

#include <gst/gst.h>

#include <atomic>

GST_DEBUG_CATEGORY_EXTERN(wish_http_debug);
#define GST_CAT_DEFAULT wish_http_debug

namespace wish {

namespace {
std::mutex registry_mutex;
std::map<std::string, std::weak_ptr<HttpServer>> registry;

// A request waiting for its handler's reply. The reply may come from any thread and after
// the client went away, so the message is only touched on the server thread while alive.
struct PendingReply {
  SoupServerMessage *msg;
  bool finished = false;
  gulong finished_id = 0;
};
}  // namespace

std::shared_ptr<HttpServer> HttpServer::acquire(const Options &options, std::string *error) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  std::string key = options.address + ":" + std::to_string(options.port);
  if (options.port != 0) {
    auto it = registry.find(key);
    if (it != registry.end()) {
      if (auto existing = it->second.lock()) return existing;
    }
  }
  std::shared_ptr<HttpServer> server(new HttpServer());
  if (!server->start(options, error)) return nullptr;
  if (options.port != 0) {
    server->key_ = key;
    registry[key] = server;
  }
  return server;
}

bool HttpServer::start(const Options &options, std::string *error) {
  max_body_size_ = options.max_body_size;
  loop_ = std::make_unique<LoopThread>("wish-http");
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
    server_ = soup_server_new("server-header", "wish ", cert ? "tls-certificate" : nullptr, cert,
                              nullptr);
    if (cert) g_object_unref(cert);
    soup_server_add_handler(server_, nullptr, &HttpServer::on_request, this, nullptr);
    g_signal_connect(server_, "request-started", G_CALLBACK(&HttpServer::on_request_started), this);

    GInetAddress *inet = g_inet_address_new_from_string(options.address.c_str());
    if (!inet) {
      *error = "address '" + options.address + "' is not an IP address";
      return;
    }
    GSocketAddress *addr = g_inet_socket_address_new(inet, static_cast<guint16>(options.port));
    g_object_unref(inet);
    gboolean listening = soup_server_listen(server_, addr, tls_ ? SOUP_SERVER_LISTEN_HTTPS
                                                                 : static_cast<SoupServerListenOptions>(0),
                                            &err);
    g_object_unref(addr);
    if (!listening) {
      *error = "cannot listen on " + options.address + ":" + std::to_string(options.port) + ": " +
               err->message;
      g_error_free(err);
      return;
    }
    GSList *uris = soup_server_get_uris(server_);
    if (uris) bound_port_ = static_cast<unsigned>(g_uri_get_port(static_cast<GUri *>(uris->data)));
    g_slist_free_full(uris, reinterpret_cast<GDestroyNotify>(g_uri_unref));
    GST_INFO("HTTP%s server listening on %s:%u", tls_ ? "S" : "", options.address.c_str(), bound_port_);
    ok = true;
  });
  if (!ok && server_) {
    loop_->invoke_sync([&] {
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
  if (loop_ && server_) {
    loop_->invoke_sync([this] {
      soup_server_disconnect(server_);
      g_object_unref(server_);
      server_ = nullptr;
    });
  }
  loop_.reset();
}

bool HttpServer::add_handler(const std::string &path, Handler handler) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (handlers_.count(path)) return false;
  handlers_[path] = std::move(handler);
  return true;
}

void HttpServer::remove_handler(const std::string &path) {
  std::lock_guard<std::mutex> lock(mutex_);
  handlers_.erase(path);
}

// Longest registered path that is the request path or a parent of it.
bool HttpServer::lookup(const std::string &path, Handler *out) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t best = 0;
  bool found = false;
  for (const auto &kv : handlers_) {
    const std::string &p = kv.first;
    bool match = path == p || (path.compare(0, p.size(), p) == 0 &&
                               (p.back() == '/' || path[p.size()] == '/'));
    if (match && p.size() >= best) {
      best = p.size();
      *out = kv.second;
      found = true;
    }
  }
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

// Refuses oversized bodies from the headers alone, before libsoup reads them.
void HttpServer::on_request_started(SoupServer *, SoupServerMessage *msg, gpointer data) {
  auto *self = static_cast<HttpServer *>(data);
  g_signal_connect(msg, "got-headers", G_CALLBACK(+[](SoupServerMessage *m, gpointer d) {
                     auto *s = static_cast<HttpServer *>(d);
                     SoupMessageHeaders *h = soup_server_message_get_request_headers(m);
                     goffset len = soup_message_headers_get_content_length(h);
                     if (len > 0 && static_cast<size_t>(len) > s->max_body_size_)
                       set_problem(m, 413, "request body too large");
                   }),
                   self);
}

void HttpServer::on_request(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *,
                            gpointer data) {
  auto *self = static_cast<HttpServer *>(data);
  if (soup_server_message_get_status(msg) != 0) return;  // already refused in got-headers

  Request req;
  req.method = soup_server_message_get_method(msg);
  req.path = path;
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

  Handler handler;
  if (!self->lookup(req.path, &handler)) {
    set_problem(msg, 404, "no such resource");
    return;
  }
  GST_DEBUG("%s %s", req.method.c_str(), req.path.c_str());

  auto *pending = new PendingReply{static_cast<SoupServerMessage *>(g_object_ref(msg))};
  pending->finished_id = g_signal_connect(msg, "finished", G_CALLBACK(+[](SoupServerMessage *, gpointer p) {
                                            static_cast<PendingReply *>(p)->finished = true;
                                          }),
                                          pending);
  soup_server_message_pause(msg);

  LoopThread *loop = self->loop_.get();
  auto once = std::make_shared<std::atomic<bool>>(false);
  handler(req, [loop, pending, once](Response resp) {
    if (once->exchange(true)) return;
    // The loop outlives every handler: elements unregister and finish replies before the
    // last reference to the server goes. Always deferred: libsoup wants the message paused
    // when its handler returns and unpaused later, never both inside the handler.
    loop->post([pending, resp = std::move(resp)]() {
      SoupServerMessage *m = pending->msg;
      g_signal_handler_disconnect(m, pending->finished_id);
      if (!pending->finished) {
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
        if (!resp.body.empty()) {
          soup_server_message_set_response(m, content_type.empty() ? "text/plain" : content_type.c_str(),
                                           SOUP_MEMORY_COPY, resp.body.data(), resp.body.size());
        } else if (!content_type.empty()) {
          soup_message_headers_replace(rh, "Content-Type", content_type.c_str());
        }
        soup_server_message_unpause(m);
      }
      g_object_unref(m);
      delete pending;
    });
  });
}

}  // namespace wish
