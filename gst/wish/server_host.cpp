#include "server_host.h"

#include "gst_utils.h"

namespace wish {

std::string HttpSettings::endpoint_path() const {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::vector<IceServer> HttpSettings::ice_servers() const {
  std::vector<std::string> urls = turn_servers;
  if (!stun_server.empty()) urls.insert(urls.begin(), stun_server);
  std::vector<IceServer> out;
  for (const auto &u : urls)
    if (auto s = parse_ice_server_url(u)) out.push_back(*s);
  return out;
}

void install_server_properties(GObjectClass *klass, const char *protocol, const char *default_path) {
  auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  auto ro = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_property(klass, SERVER_PROP_ADDRESS,
      g_param_spec_string("address", "Address", "IP address the HTTP server listens on", "0.0.0.0", flags));
  g_object_class_install_property(klass, SERVER_PROP_PORT,
      g_param_spec_uint("port", "Port",
                        "TCP port of the HTTP server (0 = pick a free one, see current-port). Server elements of "
                        "the process on the same address:port share one server, each on its own path",
                        0, 65535, 8889, flags));
  g_object_class_install_property(klass, SERVER_PROP_CURRENT_PORT,
      g_param_spec_uint("current-port", "Current port", "The port the HTTP server listens on (0 when not started)",
                        0, 65535, 0, ro));
  std::string path_blurb = std::string("HTTP path of the ") + protocol + " endpoint; sessions live under <path>/sessions/";
  g_object_class_install_property(klass, SERVER_PROP_PATH,
      g_param_spec_string("path", "Path", g_intern_string(path_blurb.c_str()), default_path, flags));
  g_object_class_install_property(klass, SERVER_PROP_AUTH_TOKEN,
      g_param_spec_string("auth-token", "Authorization token",
                          "Bearer token every request but the CORS preflight must carry (empty = no authentication)",
                          "", flags));
  g_object_class_install_property(klass, SERVER_PROP_STUN_SERVER,
      g_param_spec_string("stun-server", "STUN server",
                          "STUN server as stun://host:port, used for gathering and advertised in Link headers",
                          nullptr, flags));
  g_object_class_install_property(klass, SERVER_PROP_TURN_SERVERS,
      turn_servers_param_spec("TURN servers as turn(s)://user:password@host:port?transport=udp|tcp, used for "
                              "gathering and advertised in Link headers",
                              flags));
  g_object_class_install_property(klass, SERVER_PROP_TLS_CERTIFICATE_FILE,
      g_param_spec_string("tls-certificate-file", "TLS certificate file",
                          "PEM certificate (chain) for HTTPS; empty = plain HTTP", "", flags));
  g_object_class_install_property(klass, SERVER_PROP_TLS_KEY_FILE,
      g_param_spec_string("tls-key-file", "TLS key file",
                          "PEM private key for HTTPS (empty = taken from tls-certificate-file)", "", flags));
  g_object_class_install_property(klass, SERVER_PROP_CORS_ALLOWED_ORIGINS,
      g_param_spec_string("cors-allowed-origins", "CORS allowed origins",
                          "Origins browsers may call the endpoint from: * or a comma-separated list", "*", flags));
  g_object_class_install_property(klass, SERVER_PROP_ICE_LOCAL_ADDRESSES, ice_local_addresses_param_spec(flags));
  g_object_class_install_property(klass, SERVER_PROP_SERVE_HTTP,
      g_param_spec_boolean("serve-http", "Serve HTTP",
                           "Run the built-in HTTP server; when false, requests come only through the post, patch "
                           "and delete action signals",
                           TRUE, flags));
}

bool set_server_property(HttpSettings &s, guint prop_id, const GValue *value) {
  switch (prop_id) {
    case SERVER_PROP_ADDRESS: s.address = string_from_value(value); return true;
    case SERVER_PROP_PORT: s.port = g_value_get_uint(value); return true;
    case SERVER_PROP_PATH: s.path = string_from_value(value); return true;
    case SERVER_PROP_AUTH_TOKEN: s.auth_token = string_from_value(value); return true;
    case SERVER_PROP_STUN_SERVER: s.stun_server = string_from_value(value); return true;
    case SERVER_PROP_TURN_SERVERS: s.turn_servers = strings_from_value_array(value); return true;
    case SERVER_PROP_TLS_CERTIFICATE_FILE: s.tls_certificate_file = string_from_value(value); return true;
    case SERVER_PROP_TLS_KEY_FILE: s.tls_key_file = string_from_value(value); return true;
    case SERVER_PROP_CORS_ALLOWED_ORIGINS: s.cors_allowed_origins = string_from_value(value); return true;
    case SERVER_PROP_ICE_LOCAL_ADDRESSES: s.ice_local_addresses = string_from_value(value); return true;
    case SERVER_PROP_SERVE_HTTP: s.serve_http = g_value_get_boolean(value); return true;
    default: return false;
  }
}

bool get_server_property(const HttpSettings &s, guint prop_id, GValue *value) {
  switch (prop_id) {
    case SERVER_PROP_ADDRESS: g_value_set_string(value, s.address.c_str()); return true;
    case SERVER_PROP_PORT: g_value_set_uint(value, s.port); return true;
    case SERVER_PROP_PATH: g_value_set_string(value, s.path.c_str()); return true;
    case SERVER_PROP_AUTH_TOKEN: g_value_set_string(value, s.auth_token.c_str()); return true;
    case SERVER_PROP_STUN_SERVER:
      g_value_set_string(value, s.stun_server.empty() ? nullptr : s.stun_server.c_str());
      return true;
    case SERVER_PROP_TURN_SERVERS: strings_to_value_array(s.turn_servers, value); return true;
    case SERVER_PROP_TLS_CERTIFICATE_FILE: g_value_set_string(value, s.tls_certificate_file.c_str()); return true;
    case SERVER_PROP_TLS_KEY_FILE: g_value_set_string(value, s.tls_key_file.c_str()); return true;
    case SERVER_PROP_CORS_ALLOWED_ORIGINS: g_value_set_string(value, s.cors_allowed_origins.c_str()); return true;
    case SERVER_PROP_ICE_LOCAL_ADDRESSES: g_value_set_string(value, s.ice_local_addresses.c_str()); return true;
    case SERVER_PROP_SERVE_HTTP: g_value_set_boolean(value, s.serve_http); return true;
    default: return false;
  }
}

void install_server_signals(GObjectClass *klass, const char *protocol, ServerSignalHandler post,
                            ServerSignalHandler patch, ServerSignalHandler del) {
  (void)protocol;
  auto flags = static_cast<GSignalFlags>(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION);
  /* post: (request GstStructure with optional string fields path, content-type,
   * authorization, origin, accept, body; promise replied with "wish-response": status,
   * body, headers (lower-case names)). patch and delete take the session URL path in path. */
  g_signal_new_class_handler("post", G_TYPE_FROM_CLASS(klass), flags, G_CALLBACK(post), nullptr, nullptr, nullptr,
                             G_TYPE_NONE, 2, GST_TYPE_STRUCTURE, GST_TYPE_PROMISE);
  g_signal_new_class_handler("patch", G_TYPE_FROM_CLASS(klass), flags, G_CALLBACK(patch), nullptr, nullptr, nullptr,
                             G_TYPE_NONE, 2, GST_TYPE_STRUCTURE, GST_TYPE_PROMISE);
  g_signal_new_class_handler("delete", G_TYPE_FROM_CLASS(klass), flags, G_CALLBACK(del), nullptr, nullptr, nullptr,
                             G_TYPE_NONE, 2, GST_TYPE_STRUCTURE, GST_TYPE_PROMISE);
}

bool ServerHost::start(GstElement *element, const HttpSettings &s, const EndpointConfig &config,
                       MediaBackend *backend) {
  endpoint_ = std::make_unique<Endpoint>(config, backend);
  if (!s.serve_http) return true;
  HttpServer::Options opts;
  opts.address = s.address;
  opts.port = s.port;
  opts.tls_certificate_file = s.tls_certificate_file;
  opts.tls_key_file = s.tls_key_file;
  std::string error;
  http_ = HttpServer::acquire(opts, &error);
  if (!http_) {
    GST_ELEMENT_ERROR(element, RESOURCE, OPEN_READ_WRITE, ("Cannot start the HTTP server"), ("%s", error.c_str()));
    return false;
  }
  Endpoint *ep = endpoint_.get();
  if (!http_->add_handler(config.path, [ep](const Request &req, HttpServer::Reply reply) {
        ep->handle(req, std::move(reply));
      })) {
    GST_ELEMENT_ERROR(element, RESOURCE, OPEN_READ_WRITE, ("Cannot serve %s", config.path.c_str()),
                      ("another element already serves %s on %s:%u", config.path.c_str(), opts.address.c_str(),
                       opts.port));
    http_.reset();
    return false;
  }
  registered_path_ = config.path;
  GST_INFO_OBJECT(element, "serving %s://%s:%u%s", http_->is_tls() ? "https" : "http", opts.address.c_str(),
                  http_->port(), config.path.c_str());
  g_object_notify(G_OBJECT(element), "current-port");
  return true;
}

void ServerHost::stop() {
  if (http_ && !registered_path_.empty()) http_->remove_handler(registered_path_);
  registered_path_.clear();
  if (endpoint_) endpoint_->close_all();
  http_.reset();
}

void ServerHost::handle_signal(const char *method, const GstStructure *request, GstPromise *promise) {
  Request req;
  req.method = method;
  const gchar *path = request ? gst_structure_get_string(request, "path") : nullptr;
  if (endpoint_) req.path = path ? path : endpoint_->config().path;
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
  GstPromise *p = promise ? gst_promise_ref(promise) : nullptr;
  auto reply = [p](Response resp) {
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
    gst_promise_reply(p, s);
    gst_promise_unref(p);
  };
  if (!endpoint_) {
    reply(Response::problem(503, "element is not started"));
    return;
  }
  endpoint_->handle(req, reply);
}

}  // namespace wish
