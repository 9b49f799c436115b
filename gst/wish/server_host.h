// What the server elements (whepserversink, whipserversrc) share: the HTTP settings and their
// properties, serving one Endpoint on the shared HTTP server, and the post/patch/delete
// action signals that let an application route requests from its own HTTP server.
#pragma once

#include <gst/gst.h>

#include <memory>
#include <string>
#include <vector>

#include "http_server.h"
#include "protocol/endpoint.h"

namespace wish {

struct HttpSettings {
  std::string address = "0.0.0.0";
  guint port = 8889;
  std::string path;
  std::string auth_token;
  std::string stun_server;
  std::vector<std::string> turn_servers;
  std::string tls_certificate_file, tls_key_file;
  std::string cors_allowed_origins = "*";
  std::string ice_local_addresses;
  gboolean serve_http = TRUE;

  // The endpoint path without trailing slashes, and the STUN/TURN servers to advertise.
  std::string endpoint_path() const;
  std::vector<IceServer> ice_servers() const;
};

// Property ids 1 .. SERVER_PROP_LAST-1 are the shared ones; elements number theirs after.
enum ServerProperty {
  SERVER_PROP_ADDRESS = 1,
  SERVER_PROP_PORT,
  SERVER_PROP_CURRENT_PORT,
  SERVER_PROP_PATH,
  SERVER_PROP_AUTH_TOKEN,
  SERVER_PROP_STUN_SERVER,
  SERVER_PROP_TURN_SERVERS,
  SERVER_PROP_TLS_CERTIFICATE_FILE,
  SERVER_PROP_TLS_KEY_FILE,
  SERVER_PROP_CORS_ALLOWED_ORIGINS,
  SERVER_PROP_ICE_LOCAL_ADDRESSES,
  SERVER_PROP_SERVE_HTTP,
  SERVER_PROP_LAST
};

void install_server_properties(GObjectClass *klass, const char *protocol, const char *default_path);
// Both return false for ids that are not shared ones (and leave current-port to the element).
bool set_server_property(HttpSettings &s, guint prop_id, const GValue *value);
bool get_server_property(const HttpSettings &s, guint prop_id, GValue *value);

// Installs the post, patch and delete action signals; each handler receives the element,
// the request structure and the promise.
using ServerSignalHandler = void (*)(GstElement *element, GstStructure *request, GstPromise *promise);
void install_server_signals(GObjectClass *klass, const char *protocol, ServerSignalHandler post,
                            ServerSignalHandler patch, ServerSignalHandler del);

// Serves one Endpoint: on the shared HTTP server unless serve-http is false, and through the
// action signals always.
class ServerHost {
public:
  // Posts an element error and returns false when the server cannot start.
  bool start(GstElement *element, const HttpSettings &settings, const EndpointConfig &config,
             MediaBackend *backend);
  void stop();
  Endpoint *endpoint() const { return endpoint_.get(); }
  guint port() const { return http_ ? http_->port() : 0; }
  // A request from an action signal; the promise gets a "wish-response" structure.
  void handle_signal(const char *method, const GstStructure *request, GstPromise *promise);

private:
  std::unique_ptr<Endpoint> endpoint_;
  std::shared_ptr<HttpServer> http_;
  std::string registered_path_;
};

}  // namespace wish
