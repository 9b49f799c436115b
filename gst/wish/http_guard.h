// The front door of the HTTP server. libsoup 3.2 listens with a backlog of 10, has no
// header or body timeouts, reads request bodies in full before anyone can look at their
// size, resets connections with oversized headers and limits nothing per client. So the
// guard accepts the connections itself and hands them to libsoup
// (soup_server_accept_iostream) only once they pass:
//  - per-client limits on open connections (503) and on new requests a second (429);
//  - for plain HTTP, a look at the request head (MSG_PEEK, nothing consumed): malformed
//    request lines, dot segments and encoded slashes or NULs in the path, bad
//    Content-Length (400), too large or too many headers (431), too large a declared body
//    (413) are answered here;
//  - a deadline for the head (TLS handshake included), and while libsoup reads the body a
//    limit on its size (chunked too: 413 as soon as it is passed) and on pauses in it.
// Refusals are answered and the connection closed; a timed out connection is just closed.
// Every call, callback and member is on the server's loop thread: no locks.
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "gstptr.h"

namespace wish {

struct HttpLimits {
  unsigned header_timeout_s = 10;  // from accepting a connection to the end of its request head
  unsigned idle_timeout_s = 10;    // longest pause while a request body arrives
  size_t max_header_size = 16 * 1024;
  unsigned max_headers = 100;
  size_t max_body_size = 64 * 1024;
  unsigned max_connections_per_client = 64;  // open connections per client address; 0: no limit
  unsigned max_requests_per_client = 100;    // new requests a second per client address; 0: no limit
};

class HttpGuard {
public:
  // Gives libsoup a connection that passed; it must call watch_message() for the message it
  // starts on it before returning (SoupServer's request-started does, synchronously).
  using HandOver = std::function<void(GIOStream *stream, GSocketAddress *local, GSocketAddress *remote)>;

  HttpGuard(GMainContext *context, const HttpLimits &limits, GTlsCertificate *certificate, HandOver hand_over);
  ~HttpGuard();  // closes the listening socket and every connection still in the guard's hands
  HttpGuard(const HttpGuard &) = delete;
  HttpGuard &operator=(const HttpGuard &) = delete;

  bool listen(const std::string &address, unsigned port, std::string *error);
  unsigned port() const { return port_; }
  // From SoupServer's request-started: ties the message to the connection being handed over.
  void watch_message(SoupServerMessage *msg);

private:
  struct Conn;
  struct Client {
    unsigned connections = 0;
    double tokens = 0;  // requests it may still start now (token bucket)
    gint64 refilled_us = 0;
  };

  static gboolean on_accept(GSocket *, GIOCondition, gpointer self);
  void accept_one(GSocket *socket);
  bool admit(Client &client, unsigned *status);
  void peek_head(Conn *c);
  void hand_over(Conn *c, GIOStream *stream);
  void start_tls(Conn *c);
  void set_timer(Conn *c, unsigned seconds);
  void on_timeout(Conn *c);
  // Answers with a problem response and closes (after reading what the client still sends
  // for a moment, so that it reads the answer instead of a reset).
  void refuse(Conn *c, unsigned status, const char *detail);
  void linger(Conn *c);
  void refuse_message(Conn *c, SoupServerMessage *msg, unsigned status, const char *detail);
  void check_headers(Conn *c, SoupServerMessage *msg);
  void close(Conn *c);
  void release_client(const std::string &address);

  GMainContext *context_;
  HttpLimits limits_;
  GPtr<GTlsCertificate> certificate_;
  HandOver hand_over_;
  GPtr<GSocket> listener_;
  GSource *accept_source_ = nullptr;
  unsigned port_ = 0;
  std::map<Conn *, std::unique_ptr<Conn>> conns_;
  std::map<std::string, Client> clients_;
  Conn *handing_ = nullptr;  // during hand_over_()
  guint64 serial_ = 0;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // expires with the guard, for late callbacks
};

}  // namespace wish
