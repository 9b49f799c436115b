#include "client_bin.h"

#include <string>

#include "gst_utils.h"
#include "webrtc_utils.h"

struct GstWishClientBinPrivate {
  wish::ClientElement *impl;
};

namespace {

enum {
  PROP_AUTH_TOKEN = 1,
  PROP_STUN_SERVER,
  PROP_TURN_SERVERS,
  PROP_USE_LINK_HEADERS,
  PROP_ICE_TRANSPORT_POLICY,
  PROP_TIMEOUT,
  PROP_MAX_RECONNECTS,
  PROP_RETRY_MAX_DELAY,
  PROP_TRICKLE,
  PROP_ICE_LOCAL_ADDRESSES,
  PROP_SESSION_URL,
  PROP_STATS,
  PROP_ICE_PORT_RANGE,
  PROP_DO_RETRANSMISSION,
};

}  // namespace

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE(GstWishClientBin, gst_wish_client_bin, GST_TYPE_BIN)

namespace wish {

ClientElement *client_impl(gpointer client_bin) {
  return static_cast<GstWishClientBinPrivate *>(gst_wish_client_bin_get_instance_private(GST_WISH_CLIENT_BIN(client_bin)))->impl;
}

void install_endpoint_property(GObjectClass *klass, guint prop_id, const char *protocol) {
  std::string lower = protocol;
  for (auto &c : lower) c = g_ascii_tolower(c);
  // Param specs keep their strings: interned ones live as long as the process.
  const gchar *name = g_intern_string((lower + "-endpoint").c_str());
  const gchar *nick = g_intern_string((std::string(protocol) + " endpoint").c_str());
  const gchar *blurb = g_intern_string(("URL of the " + std::string(protocol) + " endpoint (http:// or https://)").c_str());
  g_object_class_install_property(klass, prop_id,
      g_param_spec_string(name, nick, blurb, nullptr,
                          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)));
}

void set_endpoint(gpointer client_bin, const GValue *value) {
  ClientSettings &s = client_impl(client_bin)->client().settings;
  GST_OBJECT_LOCK(client_bin);
  s.endpoint = string_from_value(value);
  GST_OBJECT_UNLOCK(client_bin);
}

void get_endpoint(gpointer client_bin, GValue *value) {
  const ClientSettings &s = client_impl(client_bin)->client().settings;
  GST_OBJECT_LOCK(client_bin);
  g_value_set_string(value, s.endpoint.empty() ? nullptr : s.endpoint.c_str());
  GST_OBJECT_UNLOCK(client_bin);
}

}  // namespace wish

static void gst_wish_client_bin_init(GstWishClientBin *) {}

// The C++ side is made once every instance_init ran: only then is the class the instance's
// own (the subclass's create_impl), and before any property is set.
static void gst_wish_client_bin_constructed(GObject *object) {
  auto *klass = GST_WISH_CLIENT_BIN_GET_CLASS(object);
  auto *priv = static_cast<GstWishClientBinPrivate *>(gst_wish_client_bin_get_instance_private(GST_WISH_CLIENT_BIN(object)));
  priv->impl = klass->create_impl ? klass->create_impl(GST_WISH_CLIENT_BIN(object)) : nullptr;
  G_OBJECT_CLASS(gst_wish_client_bin_parent_class)->constructed(object);
}

static void gst_wish_client_bin_finalize(GObject *object) {
  auto *priv = static_cast<GstWishClientBinPrivate *>(gst_wish_client_bin_get_instance_private(GST_WISH_CLIENT_BIN(object)));
  delete priv->impl;
  priv->impl = nullptr;
  G_OBJECT_CLASS(gst_wish_client_bin_parent_class)->finalize(object);
}

static void gst_wish_client_bin_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec) {
  wish::ClientSettings &s = wish::client_impl(object)->client().settings;
  GST_OBJECT_LOCK(object);
  switch (prop_id) {
    case PROP_AUTH_TOKEN: s.auth_token = wish::string_from_value(value); break;
    case PROP_STUN_SERVER: s.stun_server = wish::string_from_value(value); break;
    case PROP_TURN_SERVERS: s.turn_servers = wish::strings_from_value_array(value); break;
    case PROP_USE_LINK_HEADERS: s.use_link_headers = g_value_get_boolean(value); break;
    case PROP_ICE_TRANSPORT_POLICY:
      s.ice_transport_policy = static_cast<GstWebRTCICETransportPolicy>(g_value_get_enum(value));
      break;
    case PROP_TIMEOUT: s.timeout = g_value_get_uint(value); break;
    case PROP_MAX_RECONNECTS: s.max_reconnects = g_value_get_int(value); break;
    case PROP_RETRY_MAX_DELAY: s.retry_max_delay = g_value_get_uint(value); break;
    case PROP_TRICKLE: s.trickle = g_value_get_boolean(value); break;
    case PROP_ICE_LOCAL_ADDRESSES: s.ice_local_addresses = wish::string_from_value(value); break;
    case PROP_ICE_PORT_RANGE: s.ice_port_range = wish::string_from_value(value); break;
    case PROP_DO_RETRANSMISSION: s.do_retransmission = g_value_get_boolean(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(object);
}

static void gst_wish_client_bin_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  wish::SessionClient &client = wish::client_impl(object)->client();
  // The session's own fields come from the client, which takes its own lock.
  if (prop_id == PROP_SESSION_URL) {
    std::string url = client.session_url();
    g_value_set_string(value, url.empty() ? nullptr : url.c_str());
    return;
  }
  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, client.stats());
    return;
  }
  const wish::ClientSettings &s = client.settings;
  auto nullable = [](const std::string &v) { return v.empty() ? nullptr : v.c_str(); };
  GST_OBJECT_LOCK(object);
  switch (prop_id) {
    case PROP_AUTH_TOKEN: g_value_set_string(value, s.auth_token.c_str()); break;
    case PROP_STUN_SERVER: g_value_set_string(value, nullable(s.stun_server)); break;
    case PROP_TURN_SERVERS: wish::strings_to_value_array(s.turn_servers, value); break;
    case PROP_USE_LINK_HEADERS: g_value_set_boolean(value, s.use_link_headers); break;
    case PROP_ICE_TRANSPORT_POLICY: g_value_set_enum(value, s.ice_transport_policy); break;
    case PROP_TIMEOUT: g_value_set_uint(value, s.timeout); break;
    case PROP_MAX_RECONNECTS: g_value_set_int(value, s.max_reconnects); break;
    case PROP_RETRY_MAX_DELAY: g_value_set_uint(value, s.retry_max_delay); break;
    case PROP_TRICKLE: g_value_set_boolean(value, s.trickle); break;
    case PROP_ICE_LOCAL_ADDRESSES: g_value_set_string(value, s.ice_local_addresses.c_str()); break;
    case PROP_ICE_PORT_RANGE: g_value_set_string(value, s.ice_port_range.c_str()); break;
    case PROP_DO_RETRANSMISSION: g_value_set_boolean(value, s.do_retransmission); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(object);
}

static GstStateChangeReturn gst_wish_client_bin_change_state(GstElement *element, GstStateChange transition) {
  wish::ClientElement *impl = wish::client_impl(element);
  // A fresh process (gst-play-1.0 whep://...) otherwise loads webrtcbin's elements, makes the
  // DTLS certificate, sets up the proxy resolver for its POST and loads the decoders on the
  // way to its first frame, one after another.
  if (transition == GST_STATE_CHANGE_NULL_TO_READY) {
    GST_OBJECT_LOCK(element);
    std::string endpoint = impl->client().settings.endpoint;
    GST_OBJECT_UNLOCK(element);
    wish::warm_up_webrtc();
    wish::warm_up_http(endpoint);
    wish::warm_up_decoders();
  }
  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED && !impl->activate()) return GST_STATE_CHANGE_FAILURE;
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) impl->deactivate();
  return GST_ELEMENT_CLASS(gst_wish_client_bin_parent_class)->change_state(element, transition);
}

static void gst_wish_client_bin_restart_ice(GstWishClientBin *self) { wish::client_impl(self)->client().request_ice_restart(); }

static void gst_wish_client_bin_class_init(GstWishClientBinClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  gobject_class->constructed = gst_wish_client_bin_constructed;
  gobject_class->finalize = gst_wish_client_bin_finalize;
  gobject_class->set_property = gst_wish_client_bin_set_property;
  gobject_class->get_property = gst_wish_client_bin_get_property;
  GST_ELEMENT_CLASS(klass)->change_state = gst_wish_client_bin_change_state;

  auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(gobject_class, PROP_AUTH_TOKEN,
      g_param_spec_string("auth-token", "Authorization token",
                          "Bearer token sent as Authorization on every request (empty: none)", "", flags));
  g_object_class_install_property(gobject_class, PROP_STUN_SERVER,
      g_param_spec_string("stun-server", "STUN server", "STUN server as stun://host:port", nullptr, flags));
  g_object_class_install_property(gobject_class, PROP_TURN_SERVERS,
      wish::turn_servers_param_spec("TURN servers as turn(s)://user:password@host:port?transport=udp|tcp", flags));
  g_object_class_install_property(gobject_class, PROP_USE_LINK_HEADERS,
      g_param_spec_boolean("use-link-headers", "Use Link headers",
                           "Use the STUN/TURN servers the endpoint announces in Link rel=\"ice-server\" headers", TRUE,
                           flags));
  g_object_class_install_property(gobject_class, PROP_ICE_TRANSPORT_POLICY,
      g_param_spec_enum("ice-transport-policy", "ICE transport policy", "all, or relay (TURN only)",
                        GST_TYPE_WEBRTC_ICE_TRANSPORT_POLICY, GST_WEBRTC_ICE_TRANSPORT_POLICY_ALL, flags));
  g_object_class_install_property(gobject_class, PROP_TIMEOUT,
      g_param_spec_uint("timeout", "Timeout",
                        "Seconds an HTTP request may take, DELETE at shutdown included", 1, 3600, 10, flags));
  g_object_class_install_property(gobject_class, PROP_MAX_RECONNECTS,
      g_param_spec_int("max-reconnects", "Maximum reconnects",
                       "New sessions tried in a row after the connection is lost and ICE restart fails, before an "
                       "error (-1: unlimited); media flowing again starts the count anew", -1,
                       G_MAXINT, 10, flags));
  g_object_class_install_property(gobject_class, PROP_RETRY_MAX_DELAY,
      g_param_spec_uint("retry-max-delay", "Maximum retry delay",
                        "Longest wait in seconds between POSTs answered 409/503 (backoff doubles from Retry-After)", 1,
                        3600, 30, flags));
  g_object_class_install_property(gobject_class, PROP_TRICKLE,
      g_param_spec_boolean("trickle", "Trickle ICE",
                           "POST the offer at once and send candidates by PATCH; false: POST a fully gathered offer",
                           TRUE, flags));
  g_object_class_install_property(gobject_class, PROP_ICE_LOCAL_ADDRESSES, wish::ice_local_addresses_param_spec(flags));
  g_object_class_install_property(gobject_class, PROP_ICE_PORT_RANGE, wish::ice_port_range_param_spec(flags));
  g_object_class_install_property(gobject_class, PROP_DO_RETRANSMISSION, wish::do_retransmission_param_spec(flags));
  auto ro = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_property(gobject_class, PROP_SESSION_URL,
      g_param_spec_string("session-url", "Session URL", "URL of the current session (null when none)", nullptr, ro));
  g_object_class_install_property(gobject_class, PROP_STATS,
      g_param_spec_boxed("stats", "Statistics",
                         "session-url, state, reconnects, ice-restarts, buffers-out (what the output pads passed "
                         "on, for receiving elements) and link-ice-servers (STUN/TURN URIs the endpoint announced)",
                         GST_TYPE_STRUCTURE, ro));
  /**
   * GstWishClientBin::restart-ice:
   *
   * Restarts ICE now (PATCH with If-Match: * and new credentials), e.g. after the
   * application saw the network change. A refused restart starts a new session.
   */
  g_signal_new_class_handler("restart-ice", G_TYPE_FROM_CLASS(klass),
                             static_cast<GSignalFlags>(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
                             G_CALLBACK(gst_wish_client_bin_restart_ice), nullptr, nullptr, nullptr, G_TYPE_NONE, 0);
  gst_type_mark_as_plugin_api(GST_TYPE_WISH_CLIENT_BIN, static_cast<GstPluginAPIFlags>(0));
}
