#include "http_guard.h"

#include <gst/gst.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>
#include <vector>

#include "protocol/http.h"

GST_DEBUG_CATEGORY_EXTERN(wish_http_debug);
#define GST_CAT_DEFAULT wish_http_debug

namespace wish {

namespace {
// Deep enough for a burst of a thousand connections (the kernel caps it at somaxconn).
constexpr int kListenBacklog = 1024;
// How long a refused connection is read from (and discarded) before it is closed.
constexpr guint kLingerS = 2;
constexpr size_t kLingerMaxBytes = 1 << 20;
// Connections the guard keeps open at most, whoever they are from: past it new ones are
// closed at once, so that a flood from many addresses cannot take every descriptor.
constexpr size_t kMaxConnections = 1000;

bool is_tchar(char c) {
  return g_ascii_isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// Status for a request head (request line and headers, without the final empty line) that
// must not reach libsoup, 0 when it may. *content_length is what it declares (-1: none).
unsigned check_head(const std::string &head, const HttpLimits &limits, long long *content_length) {
  *content_length = -1;
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos <= head.size()) {
    size_t eol = head.find('\n', pos);
    std::string line = head.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
    if (eol == std::string::npos) break;
    pos = eol + 1;
  }
  // Request line: method SP target SP HTTP/1.x
  const std::string &rl = lines[0];
  size_t sp1 = rl.find(' '), sp2 = rl.rfind(' ');
  if (sp1 == std::string::npos || sp1 == 0 || sp2 == sp1 || sp1 > 20) return 400;
  for (size_t i = 0; i < sp1; i++)
    if (!is_tchar(rl[i])) return 400;
  std::string version = rl.substr(sp2 + 1), target = rl.substr(sp1 + 1, sp2 - sp1 - 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return 400;
  if (target.empty()) return 400;
  for (unsigned char ch : target)
    if (ch <= 0x20 || ch >= 0x7f) return 400;
  if (target != "*") {
    if (target[0] != '/') {  // absolute form: the path starts after the authority
      size_t scheme = target.find("://");
      if (scheme == std::string::npos) return 400;
      size_t slash = target.find('/', scheme + 3);
      target = slash == std::string::npos ? "/" : target.substr(slash);
    }
    std::string path = target.substr(0, target.find_first_of("?#"));
    // Segments that step out of where they are, once decoded, and encoded separators:
    // nothing legitimate here needs them, and they would reach libsoup's own 400.
    std::string decoded;
    for (size_t i = 0; i < path.size(); i++) {
      if (path[i] == '%') {
        if (i + 2 >= path.size() || !g_ascii_isxdigit(path[i + 1]) || !g_ascii_isxdigit(path[i + 2])) return 400;
        char ch = static_cast<char>(g_ascii_xdigit_value(path[i + 1]) * 16 + g_ascii_xdigit_value(path[i + 2]));
        if (ch == '\0' || ch == '/' || ch == '\\') return 400;
        decoded += ch;
        i += 2;
      } else {
        decoded += path[i];
      }
    }
    gchar **segments = g_strsplit(decoded.c_str(), "/", -1);
    bool dots = false;
    for (gchar **s = segments; *s; s++) dots = dots || g_str_equal(*s, ".") || g_str_equal(*s, "..");
    g_strfreev(segments);
    if (dots) return 400;
  }
  if (lines.size() - 1 > limits.max_headers) return 431;
  bool chunked = false;
  std::string length;
  for (size_t i = 1; i < lines.size(); i++) {
    const std::string &l = lines[i];
    if (l.empty()) continue;
    if (l[0] == ' ' || l[0] == '\t') return 400;  // obsolete line folding
    size_t colon = l.find(':');
    if (colon == std::string::npos || colon == 0) return 400;
    for (size_t k = 0; k < colon; k++)
      if (!is_tchar(l[k])) return 400;
    std::string name = l.substr(0, colon);
    std::string value(trim(std::string_view(l).substr(colon + 1)));
    if (iequals(name, "Transfer-Encoding")) chunked = true;
    if (iequals(name, "Content-Length")) {
      // Digits only, one value (repeated headers must agree), and small enough for a number.
      if (value.empty() || value.size() > 18 || value.find_first_not_of("0123456789") != std::string::npos ||
          (!length.empty() && length != value))
        return 400;
      length = value;
    }
  }
  if (!length.empty()) {
    if (chunked) return 400;  // both: a request smuggling attempt
    *content_length = std::stoll(length);
    if (static_cast<unsigned long long>(*content_length) > limits.max_body_size) return 413;
  }
  return 0;
}

void drop_source(GSource *&source) {
  if (!source) return;
  g_source_destroy(source);
  g_source_unref(source);
  source = nullptr;
}

// GSocket sources call back with the socket and condition first.
using SocketSourceFunc = gboolean (*)(GSocket *, GIOCondition, gpointer);
GSourceFunc socket_callback(SocketSourceFunc fn) {
  return reinterpret_cast<GSourceFunc>(reinterpret_cast<void (*)()>(fn));
}

std::string client_address(GSocketAddress *addr) {
  if (!addr || !G_IS_INET_SOCKET_ADDRESS(addr)) return "";
  g_autofree gchar *s = g_inet_address_to_string(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(addr)));
  return s;
}

}  // namespace

// One accepted connection, from accept until libsoup or the guard closes it.
struct HttpGuard::Conn {
  HttpGuard *guard = nullptr;
  GPtr<GSocket> socket;
  std::string client;
  bool counted = false;   // holds one of its client's connections
  bool handed = false;    // libsoup has it
  bool closing = false;   // refused: draining until closed
  GPtr<GIOStream> stream;  // the TLS connection being set up, or the stream taken back from libsoup
  GPtr<GCancellable> handshake;  // cancelled when the connection goes first
  GPtr<SoupServerMessage> msg;  // libsoup's message on it (one: every response closes)
  GSource *watch = nullptr;  // peeking at the head, or draining
  GSource *timer = nullptr;  // head deadline, body pause or linger
  size_t peeked = 0, body = 0, drained = 0;
  guint64 serial = 0;      // tells a connection from a later one at the same address

  ~Conn() {
    if (handshake) g_cancellable_cancel(handshake.get());
    drop_source(watch);
    drop_source(timer);
    if (msg) g_signal_handlers_disconnect_by_data(msg.get(), this);
  }
};

HttpGuard::HttpGuard(GMainContext *context, const HttpLimits &limits, GTlsCertificate *certificate, HandOver hand_over)
    : context_(context), limits_(limits), certificate_(GPtr<GTlsCertificate>::ref(certificate)),
      hand_over_(std::move(hand_over)) {}

HttpGuard::~HttpGuard() {
  drop_source(accept_source_);
  if (listener_) g_socket_close(listener_.get(), nullptr);
  conns_.clear();
}

bool HttpGuard::listen(const std::string &address, unsigned port, std::string *error) {
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string(address.c_str());
  if (!inet) {
    *error = "address '" + address + "' is not an IP address";
    return false;
  }
  g_autoptr(GSocketAddress) addr = g_inet_socket_address_new(inet, static_cast<guint16>(port));
  GError *err = nullptr;
  GSocket *sock = g_socket_new(g_inet_address_get_family(inet), G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &err);
  if (sock) {
    listener_ = GPtr<GSocket>::adopt(sock);
    g_socket_set_blocking(sock, FALSE);
    g_socket_set_listen_backlog(sock, kListenBacklog);
    if (g_socket_bind(sock, addr, TRUE, &err) && g_socket_listen(sock, &err)) {
      g_autoptr(GSocketAddress) bound = g_socket_get_local_address(sock, nullptr);
      if (bound) port_ = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
      accept_source_ = g_socket_create_source(sock, G_IO_IN, nullptr);
      g_source_set_callback(accept_source_, socket_callback(+[](GSocket *s, GIOCondition c, gpointer d) -> gboolean {
                              return on_accept(s, c, d);
                            }),
                            this, nullptr);
      g_source_attach(accept_source_, context_);
      return true;
    }
  }
  *error = "cannot listen on " + address + ":" + std::to_string(port) + ": " + (err ? err->message : "?");
  g_clear_error(&err);
  listener_.reset();
  return false;
}

gboolean HttpGuard::on_accept(GSocket *socket, GIOCondition, gpointer data) {
  auto *self = static_cast<HttpGuard *>(data);
  // Everything waiting: a burst must not wait for one loop iteration per connection.
  for (int i = 0; i < 256; i++) {
    GSocket *conn = g_socket_accept(socket, nullptr, nullptr);
    if (!conn) break;
    self->accept_one(conn);
  }
  return G_SOURCE_CONTINUE;
}

// Whether a client may start one more request now: under its connection limit, and a
// token left in its bucket (max_requests_per_client a second, bursts of twice that).
bool HttpGuard::admit(Client &client, unsigned *status) {
  if (limits_.max_connections_per_client && client.connections >= limits_.max_connections_per_client) {
    *status = 503;
    return false;
  }
  if (limits_.max_requests_per_client) {
    gint64 now = g_get_monotonic_time();
    double burst = 2.0 * limits_.max_requests_per_client;
    if (client.refilled_us == 0) client.tokens = burst;
    client.tokens = std::min(burst, client.tokens + (now - client.refilled_us) / 1e6 * limits_.max_requests_per_client);
    client.refilled_us = now;
    if (client.tokens < 1) {
      *status = 429;
      return false;
    }
    client.tokens -= 1;
  }
  return true;
}

void HttpGuard::accept_one(GSocket *socket) {
  auto owned = std::make_unique<Conn>();
  Conn *c = owned.get();
  c->guard = this;
  c->serial = ++serial_;
  c->socket = GPtr<GSocket>::adopt(socket);
  g_socket_set_blocking(socket, FALSE);
  g_socket_set_option(socket, IPPROTO_TCP, TCP_NODELAY, TRUE, nullptr);
  g_autoptr(GSocketAddress) remote = g_socket_get_remote_address(socket, nullptr);
  c->client = client_address(remote);
  conns_[c] = std::move(owned);
  if (conns_.size() > kMaxConnections) {
    GST_WARNING("%zu connections open: closing a new one from %s", conns_.size() - 1, c->client.c_str());
    close(c);
    return;
  }

  if (clients_.size() > 4096) {  // forget clients that went, now and then
    for (auto it = clients_.begin(); it != clients_.end();)
      it = it->second.connections == 0 ? clients_.erase(it) : std::next(it);
  }
  Client &client = clients_[c->client];
  unsigned status = 0;
  if (!admit(client, &status)) {
    GST_INFO("refusing a connection from %s: %u", c->client.c_str(), status);
    if (certificate_) {
      close(c);  // no plain-text answer on a TLS port
    } else {
      refuse(c, status, status == 429 ? "too many requests from this address" : "too many connections from this address");
    }
    return;
  }
  client.connections++;
  c->counted = true;
  set_timer(c, limits_.header_timeout_s);
  if (certificate_) {
    start_tls(c);
    return;
  }
  c->watch = g_socket_create_source(socket, static_cast<GIOCondition>(G_IO_IN | G_IO_HUP | G_IO_ERR), nullptr);
  // Sources die with their connection, connections with the guard: the pointers hold.
  g_source_set_callback(c->watch, socket_callback(+[](GSocket *, GIOCondition, gpointer d) -> gboolean {
                          auto *conn = static_cast<Conn *>(d);
                          conn->guard->peek_head(conn);
                          return G_SOURCE_CONTINUE;
                        }),
                        c, nullptr);
  g_source_attach(c->watch, context_);
}

// Looks at the request head without taking it from the socket; once it is complete and
// acceptable the untouched connection goes to libsoup. Until then the socket only wakes us
// when more arrived than was seen (SO_RCVLOWAT), so a slow head costs no busy loop.
void HttpGuard::peek_head(Conn *c) {
  std::vector<char> buf(limits_.max_header_size + 1);
  GError *err = nullptr;
  GInputVector v = {buf.data(), buf.size()};
  gint flags = G_SOCKET_MSG_PEEK;
  gssize n = g_socket_receive_message(c->socket.get(), nullptr, &v, 1, nullptr, nullptr, &flags, nullptr, &err);
  if (n < 0 && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
    g_clear_error(&err);
    return;
  }
  g_clear_error(&err);
  if (n <= 0 || static_cast<size_t>(n) == c->peeked) {  // gone, or nothing new: end of stream
    close(c);
    return;
  }
  c->peeked = static_cast<size_t>(n);
  std::string data(buf.data(), c->peeked);
  size_t end = data.find("\r\n\r\n");
  if (end == std::string::npos) {
    if (c->peeked > limits_.max_header_size) {
      refuse(c, 431, "request header fields too large");
      return;
    }
    int lowat = static_cast<int>(c->peeked + 1);
    setsockopt(g_socket_get_fd(c->socket.get()), SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
    return;
  }
  if (end > limits_.max_header_size) {
    refuse(c, 431, "request header fields too large");
    return;
  }
  long long length = -1;
  unsigned status = check_head(data.substr(0, end), limits_, &length);
  if (status) {
    GST_INFO("refusing a request from %s: %u", c->client.c_str(), status);
    refuse(c, status, status == 431 ? "request header fields too large"
                      : status == 413 ? "request body too large"
                                      : "malformed request");
    return;
  }
  int lowat = 1;
  setsockopt(g_socket_get_fd(c->socket.get()), SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
  drop_source(c->watch);
  GIOStream *stream = G_IO_STREAM(g_socket_connection_factory_create_connection(c->socket.get()));
  hand_over(c, stream);
  g_object_unref(stream);
}

void HttpGuard::start_tls(Conn *c) {
  g_autoptr(GSocketConnection) plain = g_socket_connection_factory_create_connection(c->socket.get());
  GError *err = nullptr;
  GIOStream *tls = g_tls_server_connection_new(G_IO_STREAM(plain), certificate_.get(), &err);
  if (!tls) {
    GST_WARNING("TLS: %s", err ? err->message : "?");
    g_clear_error(&err);
    close(c);
    return;
  }
  g_object_set(tls, "require-close-notify", FALSE, nullptr);
  c->stream = GPtr<GIOStream>::adopt(tls);
  struct Ctx {
    std::weak_ptr<int> alive;  // the guard's
    HttpGuard *self;
    Conn *conn;
  };
  // The handshake is cancelled when the connection (or the guard) goes first; the callback
  // still comes, and finds out through alive_ and conns_.
  c->handshake = GPtr<GCancellable>::adopt(g_cancellable_new());
  g_tls_connection_handshake_async(G_TLS_CONNECTION(tls), G_PRIORITY_DEFAULT, c->handshake.get(),
                                   +[](GObject *src, GAsyncResult *res, gpointer d) {
                                     std::unique_ptr<Ctx> ctx(static_cast<Ctx *>(d));
                                     GError *e = nullptr;
                                     gboolean ok = g_tls_connection_handshake_finish(G_TLS_CONNECTION(src), res, &e);
                                     g_clear_error(&e);
                                     if (ctx->alive.expired()) return;
                                     auto it = ctx->self->conns_.find(ctx->conn);
                                     if (it == ctx->self->conns_.end() || it->second->stream.get() != G_IO_STREAM(src))
                                       return;
                                     if (!ok) {
                                       ctx->self->close(ctx->conn);
                                       return;
                                     }
                                     GPtr<GIOStream> stream = std::move(ctx->conn->stream);
                                     ctx->self->hand_over(ctx->conn, stream.get());
                                   },
                                   new Ctx{alive_, this, c});
}

void HttpGuard::hand_over(Conn *c, GIOStream *stream) {
  g_autoptr(GSocketAddress) local = g_socket_get_local_address(c->socket.get(), nullptr);
  g_autoptr(GSocketAddress) remote = g_socket_get_remote_address(c->socket.get(), nullptr);
  if (!local || !remote) {
    close(c);
    return;
  }
  c->handed = true;
  handing_ = c;
  hand_over_(stream, local, remote);
  handing_ = nullptr;
  // libsoup may have read, answered and dropped the whole request inside that call (a
  // client that sent it all and hung up): "disconnected" then freed c already.
  if (!conns_.count(c)) return;
  // It may also have read a head the guard refused there: the refusal owns the connection now.
  if (c->closing) return;
  if (!c->msg) {  // not expected: libsoup always starts a message at once
    GST_WARNING("libsoup started no request on a new connection");
    close(c);  // forgets it; libsoup keeps the socket
  }
}

void HttpGuard::watch_message(SoupServerMessage *msg) {
  Conn *c = handing_;
  if (!c) return;  // a later request on the same connection: never, responses close it
  c->msg = GPtr<SoupServerMessage>::ref(msg);
  g_signal_connect(msg, "got-headers", G_CALLBACK(+[](SoupServerMessage *m, gpointer d) {
                     auto *conn = static_cast<Conn *>(d);
                     HttpGuard *self = conn->guard;
                     self->check_headers(conn, m);
                   }),
                   c);
  g_signal_connect(msg, "got-chunk", G_CALLBACK(+[](SoupServerMessage *m, GBytes *chunk, gpointer d) {
                     auto *conn = static_cast<Conn *>(d);
                     HttpGuard *self = conn->guard;
                     conn->body += g_bytes_get_size(chunk);
                     if (conn->body > self->limits_.max_body_size)
                       self->refuse_message(conn, m, 413, "request body too large");
                     else
                       self->set_timer(conn, self->limits_.idle_timeout_s);
                   }),
                   c);
  g_signal_connect(msg, "got-body", G_CALLBACK(+[](SoupServerMessage *, gpointer d) {
                     auto *conn = static_cast<Conn *>(d);
                     drop_source(conn->timer);
                   }),
                   c);
  // The connection is gone (answered and closed, timed out, taken back): forget it.
  g_signal_connect(msg, "disconnected", G_CALLBACK(+[](SoupServerMessage *, gpointer d) {
                     auto *conn = static_cast<Conn *>(d);
                     HttpGuard *self = conn->guard;
                     if (!conn->closing) self->close(conn);
                   }),
                   c);
}

// libsoup parsed the head (of a TLS request, not looked at before): what the guard checks
// for plain requests is checked here.
void HttpGuard::check_headers(Conn *c, SoupServerMessage *msg) {
  drop_source(c->timer);
  SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
  std::string head = std::string(soup_server_message_get_method(msg)) + " / HTTP/1.1";
  soup_message_headers_foreach(
      h, [](const char *name, const char *value, gpointer out) {
        *static_cast<std::string *>(out) += std::string("\r\n") + name + ": " + value;
      },
      &head);
  long long length = -1;
  unsigned status = check_head(head, limits_, &length);
  if (status) {
    refuse_message(c, msg, status, status == 413 ? "request body too large" : "malformed request");
    return;
  }
  if (soup_message_headers_get_encoding(h) == SOUP_ENCODING_CHUNKED || length > 0)
    set_timer(c, limits_.idle_timeout_s);
}

void HttpGuard::set_timer(Conn *c, unsigned seconds) {
  drop_source(c->timer);
  c->timer = g_timeout_source_new_seconds(seconds);
  struct Ctx {
    HttpGuard *self;
    Conn *conn;
  };
  g_source_set_callback(c->timer, +[](gpointer d) {
                          auto *ctx = static_cast<Ctx *>(d);
                          ctx->self->on_timeout(ctx->conn);
                          return G_SOURCE_REMOVE;
                        },
                        new Ctx{this, c}, +[](gpointer d) { delete static_cast<Ctx *>(d); });
  g_source_attach(c->timer, context_);
}

void HttpGuard::on_timeout(Conn *c) {
  g_source_unref(c->timer);  // firing once: already done with
  c->timer = nullptr;
  if (c->closing || !c->handed) {  // lingering over, or the head never came
    if (!c->closing) GST_INFO("closing a connection from %s: no complete request head in time", c->client.c_str());
    close(c);
    return;
  }
  // libsoup has it: shutting the socket down makes libsoup see the end and close it.
  GST_INFO("closing a connection from %s: request stalled", c->client.c_str());
  g_socket_shutdown(c->socket.get(), TRUE, TRUE, nullptr);
}

void HttpGuard::refuse(Conn *c, unsigned status, const char *detail) {
  Response r = Response::problem(status, detail);
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
                    "\r\nServer: wish\r\nConnection: close\r\nAccess-Control-Allow-Origin: *\r\n"
                    "Content-Type: application/problem+json\r\nContent-Length: " +
                    std::to_string(r.body.size()) + "\r\n";
  if (status == 429 || status == 503) out += "Retry-After: 1\r\n";
  out += "\r\n" + r.body;
  c->closing = true;
  drop_source(c->watch);
  set_timer(c, kLingerS);  // the whole refusal, answer and lingering, is bounded
  if (!certificate_) {
    // Small enough for the send buffer of a fresh connection: written without waiting.
    g_socket_send_with_blocking(c->socket.get(), out.data(), out.size(), FALSE, nullptr, nullptr);
    linger(c);
    return;
  }
  // Through TLS, on the stream taken back from libsoup (none yet: nothing to answer in).
  GOutputStream *os = c->stream ? g_io_stream_get_output_stream(c->stream.get()) : nullptr;
  if (!os) {
    close(c);
    return;
  }
  struct Ctx {
    std::weak_ptr<int> alive;
    HttpGuard *self;
    Conn *conn;
    guint64 serial;
    std::string answer;  // written from until the callback
  };
  auto *ctx = new Ctx{alive_, this, c, c->serial, std::move(out)};
  g_output_stream_write_all_async(os, ctx->answer.data(), ctx->answer.size(), G_PRIORITY_DEFAULT, nullptr,
                                  +[](GObject *src, GAsyncResult *res, gpointer d) {
                                    std::unique_ptr<Ctx> ctx(static_cast<Ctx *>(d));
                                    g_output_stream_write_all_finish(G_OUTPUT_STREAM(src), res, nullptr, nullptr);
                                    if (ctx->alive.expired()) return;
                                    auto it = ctx->self->conns_.find(ctx->conn);
                                    if (it != ctx->self->conns_.end() && it->second->serial == ctx->serial)
                                      ctx->self->linger(ctx->conn);
                                  },
                                  ctx);
}

// After the answer: no more writing, and what the client still sends is read and dropped.
void HttpGuard::linger(Conn *c) {
  g_socket_shutdown(c->socket.get(), FALSE, TRUE, nullptr);
  // Read what the client still sends (TLS records too: only discarded) until it closes too
  // or kLingerS pass: closing with unread data would reset the connection, and the client
  // could lose the answer.
  c->watch = g_socket_create_source(c->socket.get(), static_cast<GIOCondition>(G_IO_IN | G_IO_HUP | G_IO_ERR), nullptr);
  g_source_set_callback(c->watch, socket_callback(+[](GSocket *s, GIOCondition, gpointer d) -> gboolean {
                          auto *conn = static_cast<Conn *>(d);
                          char buf[16384];
                          GError *e = nullptr;
                          gssize n = g_socket_receive_with_blocking(s, buf, sizeof buf, FALSE, nullptr, &e);
                          bool would_block = n < 0 && g_error_matches(e, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
                          g_clear_error(&e);
                          if (would_block) return G_SOURCE_CONTINUE;
                          if (n > 0) conn->drained += static_cast<size_t>(n);
                          if (n > 0 && conn->drained <= kLingerMaxBytes) return G_SOURCE_CONTINUE;
                          conn->guard->close(conn);  // destroys this source too
                          return G_SOURCE_REMOVE;
                        }),
                        c, nullptr);
  g_source_attach(c->watch, context_);
}

// A request libsoup is reading must not go on (too large a body): the connection is taken
// back from libsoup, which then reads no more of it, answered and closed here.
void HttpGuard::refuse_message(Conn *c, SoupServerMessage *msg, unsigned status, const char *detail) {
  GST_INFO("refusing a request from %s: %u %s", c->client.c_str(), status, detail);
  c->closing = true;  // the steal below reports a disconnection that is not one
  GIOStream *stolen = soup_server_message_steal_connection(msg);
  g_signal_handlers_disconnect_by_data(msg, c);
  c->msg.reset();
  c->stream = GPtr<GIOStream>::adopt(stolen);
  if (!stolen) {
    close(c);
    return;
  }
  refuse(c, status, detail);
}

void HttpGuard::close(Conn *c) {
  auto it = conns_.find(c);
  if (it == conns_.end()) return;
  std::unique_ptr<Conn> owned = std::move(it->second);
  conns_.erase(it);
  if (!c->handed || c->closing) {
    // Shut down first: a TLS handshake thread polling the socket would keep it open.
    g_socket_shutdown(c->socket.get(), TRUE, TRUE, nullptr);
    g_socket_close(c->socket.get(), nullptr);
  }
  if (c->counted) release_client(c->client);
}

void HttpGuard::release_client(const std::string &address) {
  auto it = clients_.find(address);
  if (it != clients_.end() && it->second.connections > 0) it->second.connections--;
}

}  // namespace wish
