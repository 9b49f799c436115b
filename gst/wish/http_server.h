// One libsoup server per address:port, shared by every server element of the process that
// uses it; each element registers its own path. It runs on its own thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <libsoup/soup.h>

#include "http_guard.h"
#include "loop_thread.h"
#include "protocol/http.h"

namespace wish {

class HttpServer {
public:
  // Answers through reply, at once or later from any thread.
  using Handler = std::function<void(const Request &, Reply reply)>;

  struct Options {
    std::string address = "0.0.0.0";
    unsigned port = 8889;  // 0: a free port (a new server, later shared under the port it got)
    std::string tls_certificate_file, tls_key_file;
    HttpLimits limits;  // header/body timeouts, sizes and per-client limits
  };

  // The running server for this address:port, started if needed. On failure returns null
  // and sets *error to a message naming the cause.
  static std::shared_ptr<HttpServer> acquire(const Options &options, std::string *error);
  ~HttpServer();

  // Routes requests for `path` and everything below it to handler. False if taken.
  bool add_handler(const std::string &path, Handler handler);
  // Stops routing to the handler and waits until no call of it is running (a call from the
  // handler itself does not wait for itself). Replies it still owes are answered later, or
  // 503 when dropped.
  void remove_handler(const std::string &path);

  unsigned port() const { return bound_port_; }
  // Answers the handlers sent so far, by HTTP status.
  std::map<unsigned, uint64_t> response_counts() const;
  bool is_tls() const { return tls_; }

private:
  struct Registration {
    Handler handler;
    int running = 0;  // calls of handler under way; under mutex_
  };
  struct Pending;
  struct Replies;

  HttpServer() = default;
  bool start(const Options &options, std::string *error);
  static void on_request(SoupServer *server, SoupServerMessage *msg, const char *path,
                         GHashTable *query, gpointer self);
  static void on_request_started(SoupServer *server, SoupServerMessage *msg, gpointer self);
  std::shared_ptr<Registration> lookup(const std::string &path);

  std::unique_ptr<LoopThread> loop_;
  SoupServer *server_ = nullptr;  // used only on loop_'s thread
  std::unique_ptr<HttpGuard> guard_;  // accepts the connections; used only on loop_'s thread
  unsigned bound_port_ = 0;
  bool tls_ = false;
  size_t max_body_size_ = 64 * 1024;
  std::string key_;
  // Where replies go; outlives the server for replies still held by media callbacks.
  std::shared_ptr<Replies> replies_;
  // Guards handlers_ and each Registration's running count; idle_ signals a count at zero.
  // Never held while a handler runs.
  std::mutex mutex_;
  std::condition_variable idle_;
  std::map<std::string, std::shared_ptr<Registration>> handlers_;
};

}  // namespace wish
