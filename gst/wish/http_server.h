// One libsoup server per address:port, shared by every server element of the process that
// uses it; each element registers its own path. It runs on its own thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <libsoup/soup.h>

#include "loop_thread.h"
#include "protocol/http.h"

namespace wish {

class HttpServer {
public:
  using Reply = std::function<void(Response)>;
  using Handler = std::function<void(const Request &, Reply)>;

  struct Options {
    std::string address = "0.0.0.0";
    unsigned port = 8889;  // 0: pick a free port (never shared)
    std::string tls_certificate_file, tls_key_file;
    size_t max_body_size = 64 * 1024;
  };

  // The running server for this address:port, started if needed. On failure returns null
  // and sets *error to a message naming the cause.
  static std::shared_ptr<HttpServer> acquire(const Options &options, std::string *error);
  ~HttpServer();

  // Routes requests for `path` and everything below it to handler. False if taken.
  bool add_handler(const std::string &path, Handler handler);
  void remove_handler(const std::string &path);

  unsigned port() const { return bound_port_; }
  bool is_tls() const { return tls_; }

private:
  HttpServer() = default;
  bool start(const Options &options, std::string *error);
  static void on_request(SoupServer *server, SoupServerMessage *msg, const char *path,
                         GHashTable *query, gpointer self);
  static void on_request_started(SoupServer *server, SoupServerMessage *msg, gpointer self);
  bool lookup(const std::string &path, Handler *out);

  std::unique_ptr<LoopThread> loop_;
  SoupServer *server_ = nullptr;  // used only on loop_'s thread
  unsigned bound_port_ = 0;
  bool tls_ = false;
  size_t max_body_size_ = 64 * 1024;
  std::string key_;
  std::mutex mutex_;  // guards handlers_
  std::map<std::string, Handler> handlers_;
};

}  // namespace wish
