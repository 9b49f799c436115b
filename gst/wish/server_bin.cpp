#include "server_bin.h"

#include "gst_utils.h"
#include "server_element.h"

struct GstWishServerBinPrivate {
  wish::ServerElement *impl;
};

namespace {

enum {
  PROP_ADDRESS = 1,
  PROP_PORT,
  PROP_CURRENT_PORT,
  PROP_AUTH_TOKEN,
  PROP_STUN_SERVER,
  PROP_TURN_SERVERS,
  PROP_TLS_CERTIFICATE_FILE,
  PROP_TLS_KEY_FILE,
  PROP_CORS_ALLOWED_ORIGINS,
  PROP_ICE_LOCAL_ADDRESSES,
  PROP_SERVE_HTTP,
  PROP_WHISP_PATH,
  PROP_WHISP_PULL_ALLOW,
  PROP_WHISP_PULL_TIMEOUT,
  PROP_TRANSCODE,
  PROP_OMA_PATH,
  PROP_METRICS_PATH,
  PROP_HTTP_HEADER_TIMEOUT,
  PROP_HTTP_IDLE_TIMEOUT,
  PROP_HTTP_MAX_CONNECTIONS_PER_CLIENT,
  PROP_HTTP_MAX_REQUESTS_PER_CLIENT,
  PROP_MAX_PENDING_SESSIONS_PER_CLIENT,
  PROP_ICE_PORT_RANGE,
  PROP_DO_RETRANSMISSION,
};

}  // namespace

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE(GstWishServerBin, gst_wish_server_bin, GST_TYPE_BIN)

namespace wish {

ServerElement *server_impl(gpointer server_bin) {
  auto *priv = static_cast<GstWishServerBinPrivate *>(gst_wish_server_bin_get_instance_private(GST_WISH_SERVER_BIN(server_bin)));
  return priv->impl;
}

void install_path_property(GObjectClass *klass, guint prop_id, const char *protocol, const char *default_path) {
  const gchar *blurb =
      g_intern_string((std::string("HTTP path of the ") + protocol +
                       " endpoint; sessions live under <path>/sessions/, and <path>/<name> is the endpoint of the "
                       "stream called <name>")
                          .c_str());
  g_object_class_install_property(
      klass, prop_id,
      g_param_spec_string("path", "Path", blurb, default_path,
                          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
}

}  // namespace wish

static void gst_wish_server_bin_init(GstWishServerBin *) {}

// The C++ side is made once every instance_init ran: only then is the class the instance's
// own (the subclass's create_impl), and before any property is set.
static void gst_wish_server_bin_constructed(GObject *object) {
  auto *klass = GST_WISH_SERVER_BIN_GET_CLASS(object);
  auto *priv = static_cast<GstWishServerBinPrivate *>(gst_wish_server_bin_get_instance_private(GST_WISH_SERVER_BIN(object)));
  priv->impl = klass->create_impl ? klass->create_impl(GST_WISH_SERVER_BIN(object)) : nullptr;
  G_OBJECT_CLASS(gst_wish_server_bin_parent_class)->constructed(object);
}

static void gst_wish_server_bin_finalize(GObject *object) {
  auto *priv = static_cast<GstWishServerBinPrivate *>(gst_wish_server_bin_get_instance_private(GST_WISH_SERVER_BIN(object)));
  delete priv->impl;
  priv->impl = nullptr;
  G_OBJECT_CLASS(gst_wish_server_bin_parent_class)->finalize(object);
}

static void gst_wish_server_bin_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec) {
  wish::HttpSettings &s = wish::server_impl(object)->http;
  GST_OBJECT_LOCK(object);
  switch (prop_id) {
    case PROP_ADDRESS: s.address = wish::string_from_value(value); break;
    case PROP_PORT: s.port = g_value_get_uint(value); break;
    case PROP_AUTH_TOKEN: s.auth_token = wish::string_from_value(value); break;
    case PROP_STUN_SERVER: s.stun_server = wish::string_from_value(value); break;
    case PROP_TURN_SERVERS: s.turn_servers = wish::strings_from_value_array(value); break;
    case PROP_TLS_CERTIFICATE_FILE: s.tls_certificate_file = wish::string_from_value(value); break;
    case PROP_TLS_KEY_FILE: s.tls_key_file = wish::string_from_value(value); break;
    case PROP_CORS_ALLOWED_ORIGINS: s.cors_allowed_origins = wish::string_from_value(value); break;
    case PROP_ICE_LOCAL_ADDRESSES: s.ice_local_addresses = wish::string_from_value(value); break;
    case PROP_SERVE_HTTP: s.serve_http = g_value_get_boolean(value); break;
    case PROP_WHISP_PATH: s.whisp_path = wish::string_from_value(value); break;
    case PROP_WHISP_PULL_ALLOW: s.whisp_pull_allow = wish::string_from_value(value); break;
    case PROP_WHISP_PULL_TIMEOUT: s.whisp_pull_timeout = g_value_get_uint(value); break;
    case PROP_TRANSCODE: s.transcode = g_value_get_boolean(value); break;
    case PROP_OMA_PATH: s.oma_path = wish::string_from_value(value); break;
    case PROP_METRICS_PATH: s.metrics_path = wish::string_from_value(value); break;
    case PROP_HTTP_HEADER_TIMEOUT: s.limits.header_timeout_s = g_value_get_uint(value); break;
    case PROP_HTTP_IDLE_TIMEOUT: s.limits.idle_timeout_s = g_value_get_uint(value); break;
    case PROP_HTTP_MAX_CONNECTIONS_PER_CLIENT: s.limits.max_connections_per_client = g_value_get_uint(value); break;
    case PROP_HTTP_MAX_REQUESTS_PER_CLIENT: s.limits.max_requests_per_client = g_value_get_uint(value); break;
    case PROP_MAX_PENDING_SESSIONS_PER_CLIENT: s.max_pending_sessions_per_client = g_value_get_uint(value); break;
    case PROP_ICE_PORT_RANGE: s.ice_port_range = wish::string_from_value(value); break;
    case PROP_DO_RETRANSMISSION: s.do_retransmission = g_value_get_boolean(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(object);
}

static void gst_wish_server_bin_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  wish::ServerElement *impl = wish::server_impl(object);
  if (prop_id == PROP_CURRENT_PORT) {
    g_value_set_uint(value, impl->current_port());
    return;
  }
  const wish::HttpSettings &s = impl->http;
  GST_OBJECT_LOCK(object);
  switch (prop_id) {
    case PROP_ADDRESS: g_value_set_string(value, s.address.c_str()); break;
    case PROP_PORT: g_value_set_uint(value, s.port); break;
    case PROP_AUTH_TOKEN: g_value_set_string(value, s.auth_token.c_str()); break;
    case PROP_STUN_SERVER: g_value_set_string(value, s.stun_server.empty() ? nullptr : s.stun_server.c_str()); break;
    case PROP_TURN_SERVERS: wish::strings_to_value_array(s.turn_servers, value); break;
    case PROP_TLS_CERTIFICATE_FILE: g_value_set_string(value, s.tls_certificate_file.c_str()); break;
    case PROP_TLS_KEY_FILE: g_value_set_string(value, s.tls_key_file.c_str()); break;
    case PROP_CORS_ALLOWED_ORIGINS: g_value_set_string(value, s.cors_allowed_origins.c_str()); break;
    case PROP_ICE_LOCAL_ADDRESSES: g_value_set_string(value, s.ice_local_addresses.c_str()); break;
    case PROP_SERVE_HTTP: g_value_set_boolean(value, s.serve_http); break;
    case PROP_WHISP_PATH: g_value_set_string(value, s.whisp_path.c_str()); break;
    case PROP_WHISP_PULL_ALLOW: g_value_set_string(value, s.whisp_pull_allow.c_str()); break;
    case PROP_WHISP_PULL_TIMEOUT: g_value_set_uint(value, s.whisp_pull_timeout); break;
    case PROP_TRANSCODE: g_value_set_boolean(value, s.transcode); break;
    case PROP_OMA_PATH: g_value_set_string(value, s.oma_path.c_str()); break;
    case PROP_METRICS_PATH: g_value_set_string(value, s.metrics_path.c_str()); break;
    case PROP_HTTP_HEADER_TIMEOUT: g_value_set_uint(value, s.limits.header_timeout_s); break;
    case PROP_HTTP_IDLE_TIMEOUT: g_value_set_uint(value, s.limits.idle_timeout_s); break;
    case PROP_HTTP_MAX_CONNECTIONS_PER_CLIENT: g_value_set_uint(value, s.limits.max_connections_per_client); break;
    case PROP_HTTP_MAX_REQUESTS_PER_CLIENT: g_value_set_uint(value, s.limits.max_requests_per_client); break;
    case PROP_MAX_PENDING_SESSIONS_PER_CLIENT: g_value_set_uint(value, s.max_pending_sessions_per_client); break;
    case PROP_ICE_PORT_RANGE: g_value_set_string(value, s.ice_port_range.c_str()); break;
    case PROP_DO_RETRANSMISSION: g_value_set_boolean(value, s.do_retransmission); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(object);
}

static GstStateChangeReturn gst_wish_server_bin_change_state(GstElement *element, GstStateChange transition) {
  wish::ServerElement *impl = wish::server_impl(element);
  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (!impl->start()) {
        impl->stop();
        return GST_STATE_CHANGE_FAILURE;
      }
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      impl->set_running(true);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      impl->set_running(false);
      impl->close_sessions();
      break;
    default:
      break;
  }
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(gst_wish_server_bin_parent_class)->change_state(element, transition);
  if (transition == GST_STATE_CHANGE_READY_TO_NULL) impl->stop();
  return ret;
}

static void gst_wish_server_bin_handle_message(GstBin *bin, GstMessage *message) {
  wish::ServerElement *impl = wish::server_impl(bin);
  if (GST_MESSAGE_SRC(message) != GST_OBJECT(bin) && impl && impl->handle_child_message(message)) {
    gst_message_unref(message);
    return;
  }
  GST_BIN_CLASS(gst_wish_server_bin_parent_class)->handle_message(bin, message);
}

static void request_signal(GstElement *self, const char *method, GstStructure *request, GstPromise *promise) {
  wish::server_impl(self)->handle_signal(method, request, promise);
}
static void gst_wish_server_bin_post(GstElement *self, GstStructure *request, GstPromise *promise) {
  request_signal(self, "POST", request, promise);
}
static void gst_wish_server_bin_patch(GstElement *self, GstStructure *request, GstPromise *promise) {
  request_signal(self, "PATCH", request, promise);
}
static void gst_wish_server_bin_delete(GstElement *self, GstStructure *request, GstPromise *promise) {
  request_signal(self, "DELETE", request, promise);
}
static gboolean gst_wish_server_bin_switch_stream(GstElement *self, const gchar *from, const gchar *to) {
  std::string error;
  if (wish::server_impl(self)->switch_stream(from ? from : "", to ? to : "", &error)) return TRUE;
  GST_WARNING_OBJECT(self, "switch-stream %s -> %s: %s", from, to, error.c_str());
  return FALSE;
}

static void gst_wish_server_bin_class_init(GstWishServerBinClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  gobject_class->constructed = gst_wish_server_bin_constructed;
  gobject_class->finalize = gst_wish_server_bin_finalize;
  gobject_class->set_property = gst_wish_server_bin_set_property;
  gobject_class->get_property = gst_wish_server_bin_get_property;
  element_class->change_state = gst_wish_server_bin_change_state;
  GST_BIN_CLASS(klass)->handle_message = gst_wish_server_bin_handle_message;

  auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  auto ro = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_property(gobject_class, PROP_ADDRESS,
      g_param_spec_string("address", "Address", "IP address the HTTP server listens on", "0.0.0.0", flags));
  g_object_class_install_property(gobject_class, PROP_PORT,
      g_param_spec_uint("port", "Port",
                        "TCP port of the HTTP server (0 = pick a free one, see current-port). Server elements of "
                        "the process on the same address:port share one server, each on its own path, and share "
                        "its streams",
                        0, 65535, 8889, flags));
  g_object_class_install_property(gobject_class, PROP_CURRENT_PORT,
      g_param_spec_uint("current-port", "Current port", "The port the HTTP server listens on (0 when not started)",
                        0, 65535, 0, ro));
  g_object_class_install_property(gobject_class, PROP_AUTH_TOKEN,
      g_param_spec_string("auth-token", "Authorization token",
                          "Bearer token every request but the CORS preflight must carry (empty = no authentication)",
                          "", flags));
  g_object_class_install_property(gobject_class, PROP_STUN_SERVER,
      g_param_spec_string("stun-server", "STUN server",
                          "STUN server as stun://host:port, used for gathering and advertised in Link headers",
                          nullptr, flags));
  g_object_class_install_property(gobject_class, PROP_TURN_SERVERS,
      wish::turn_servers_param_spec("TURN servers as turn(s)://user:password@host:port?transport=udp|tcp, used for "
                                    "gathering and advertised in Link headers",
                                    flags));
  g_object_class_install_property(gobject_class, PROP_TLS_CERTIFICATE_FILE,
      g_param_spec_string("tls-certificate-file", "TLS certificate file",
                          "PEM certificate (chain) for HTTPS; empty = plain HTTP", "", flags));
  g_object_class_install_property(gobject_class, PROP_TLS_KEY_FILE,
      g_param_spec_string("tls-key-file", "TLS key file",
                          "PEM private key for HTTPS (empty = taken from tls-certificate-file)", "", flags));
  g_object_class_install_property(gobject_class, PROP_CORS_ALLOWED_ORIGINS,
      g_param_spec_string("cors-allowed-origins", "CORS allowed origins",
                          "Origins browsers may call the endpoint from: * or a comma-separated list", "*", flags));
  g_object_class_install_property(gobject_class, PROP_ICE_LOCAL_ADDRESSES, wish::ice_local_addresses_param_spec(flags));
  g_object_class_install_property(gobject_class, PROP_SERVE_HTTP,
      g_param_spec_boolean("serve-http", "Serve HTTP",
                           "Run the built-in HTTP server; when false, requests come only through the post, patch "
                           "and delete action signals",
                           TRUE, flags));

  g_object_class_install_property(gobject_class, PROP_WHISP_PATH,
      g_param_spec_string("whisp-path", "WHISP path",
                          "HTTP path of the WHISP control plane on the element's HTTP server (pulling, switching, "
                          "merging, grabbing the server's streams; e.g. /whisp); empty = off. Set it on one element "
                          "of the server",
                          "", flags));
  g_object_class_install_property(gobject_class, PROP_METRICS_PATH,
      g_param_spec_string("metrics-path", "Metrics path",
                          "HTTP path of Prometheus metrics for every element of the HTTP server (e.g. /metrics): "
                          "viewers, publishers, packets and bytes, NACKs and retransmissions, keyframe requests, "
                          "layer switches, the viewers' loss and round trip per stream, sessions created and ended "
                          "by reason, HTTP answers by status; same auth-token as the endpoints; empty = off",
                          "", flags));
  g_object_class_install_property(gobject_class, PROP_OMA_PATH,
      g_param_spec_string("oma-path", "OMA signalling path",
                          "HTTP path of the OMA RESTful Network API for WebRTC Signaling on the element's HTTP server "
                          "(e.g. /webrtcsignaling/v1): sessions with a recvonly offer play a stream of the server, "
                          "sendonly ones publish into it; empty = off. Set it on one element of the server",
                          "", flags));
  g_object_class_install_property(gobject_class, PROP_WHISP_PULL_ALLOW,
      g_param_spec_string("whisp-pull-allow", "WHISP pull allow-list",
                          "Comma-separated URL prefixes WHISP may pull from (e.g. http://127.0.0.1,rtsp://cam.local); "
                          "empty = pulling refused with 403",
                          "", flags));
  g_object_class_install_property(gobject_class, PROP_WHISP_PULL_TIMEOUT,
      g_param_spec_uint("whisp-pull-timeout", "WHISP pull timeout",
                        "Seconds a WHISP pull may take to bring media before it fails with 504", 1, 600, 10, flags));
  g_object_class_install_property(gobject_class, PROP_TRANSCODE,
      g_param_spec_boolean("transcode", "Transcode",
                           "Decode and encode again (once per codec) for viewers shown a stream in a codec they did "
                           "not negotiate (switch-stream, WHISP); false (on any element of the HTTP server): such "
                           "switches are refused (409)",
                           TRUE, flags));

  // Limits of the HTTP server: like the TLS settings, those of the element that starts a
  // shared server apply to it.
  g_object_class_install_property(gobject_class, PROP_HTTP_HEADER_TIMEOUT,
      g_param_spec_uint("http-header-timeout", "HTTP header timeout",
                        "Seconds a connection may take from being accepted (TLS handshake included) to the end of "
                        "its request headers before it is closed",
                        1, 3600, 10, flags));
  g_object_class_install_property(gobject_class, PROP_HTTP_IDLE_TIMEOUT,
      g_param_spec_uint("http-idle-timeout", "HTTP idle timeout",
                        "Seconds a request body may pause (nothing received) before the connection is closed",
                        1, 3600, 10, flags));
  g_object_class_install_property(gobject_class, PROP_HTTP_MAX_CONNECTIONS_PER_CLIENT,
      g_param_spec_uint("http-max-connections-per-client", "HTTP connections per client",
                        "Open HTTP connections one client IP address may have; more are answered 503 with "
                        "Retry-After (0 = no limit)",
                        0, G_MAXUINT, 64, flags));
  g_object_class_install_property(gobject_class, PROP_HTTP_MAX_REQUESTS_PER_CLIENT,
      g_param_spec_uint("http-max-requests-per-client", "HTTP requests per second per client",
                        "Requests a second one client IP address may make on average (bursts of twice as many); "
                        "more are answered 429 with Retry-After (0 = no limit)",
                        0, G_MAXUINT, 100, flags));
  g_object_class_install_property(gobject_class, PROP_MAX_PENDING_SESSIONS_PER_CLIENT,
      g_param_spec_uint("max-pending-sessions-per-client", "Pending sessions per client",
                        "Sessions one client IP address may have that are not connected yet; more POSTs are "
                        "answered 503 with Retry-After (0 = no limit)",
                        0, G_MAXUINT, 8, flags));
  g_object_class_install_property(gobject_class, PROP_ICE_PORT_RANGE, wish::ice_port_range_param_spec(flags));
  g_object_class_install_property(gobject_class, PROP_DO_RETRANSMISSION, wish::do_retransmission_param_spec(flags));

  auto action = static_cast<GSignalFlags>(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION);
  /**
   * GstWishServerBin::post:
   * @request: a GstStructure with optional string fields path, content-type, authorization,
   *   origin, accept and body
   * @promise: replied with a "wish-response" structure: status (guint), body (string) and
   *   headers (a structure with lower-case names)
   *
   * Handles a POST to the endpoint as if it came over HTTP, for applications that route
   * requests from their own HTTP server (serve-http=false).
   */
  g_signal_new_class_handler("post", G_TYPE_FROM_CLASS(klass), action, G_CALLBACK(gst_wish_server_bin_post), nullptr,
                             nullptr, nullptr, G_TYPE_NONE, 2, GST_TYPE_STRUCTURE, GST_TYPE_PROMISE);
  /**
   * GstWishServerBin::patch:
   * @request: as for post, with the session URL path in path and if-match
   * @promise: replied with a "wish-response" structure
   */
  g_signal_new_class_handler("patch", G_TYPE_FROM_CLASS(klass), action, G_CALLBACK(gst_wish_server_bin_patch), nullptr,
                             nullptr, nullptr, G_TYPE_NONE, 2, GST_TYPE_STRUCTURE, GST_TYPE_PROMISE);
  /**
   * GstWishServerBin::delete:
   * @request: as for post, with the session URL path in path
   * @promise: replied with a "wish-response" structure
   */
  g_signal_new_class_handler("delete", G_TYPE_FROM_CLASS(klass), action, G_CALLBACK(gst_wish_server_bin_delete),
                             nullptr, nullptr, nullptr, G_TYPE_NONE, 2, GST_TYPE_STRUCTURE, GST_TYPE_PROMISE);
  /**
   * GstWishServerBin::switch-stream:
   * @from: the stream whose viewers are switched: a name, a WHEP or WHIP path or URL
   * @to: the stream they see from now on; NULL, "" or @from switches them back
   *
   * Every viewer of @from on this HTTP server (and every later one) sees @to, without a new
   * offer/answer: the viewers keep their SSRCs and continuous sequence numbers and
   * timestamps, and video resumes on a keyframe requested at once. When @to ends, they see
   * @from again.
   *
   * Returns: FALSE when a stream is unknown.
   */
  g_signal_new_class_handler("switch-stream", G_TYPE_FROM_CLASS(klass), action,
                             G_CALLBACK(gst_wish_server_bin_switch_stream), nullptr, nullptr, nullptr, G_TYPE_BOOLEAN,
                             2, G_TYPE_STRING, G_TYPE_STRING);
  gst_type_mark_as_plugin_api(GST_TYPE_WISH_SERVER_BIN, static_cast<GstPluginAPIFlags>(0));
}
