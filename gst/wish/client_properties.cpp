#include "client_properties.h"

#include <string>

#include "gst_utils.h"

namespace wish {

void install_client_properties(GObjectClass *klass, const char *protocol, const char *stats_fields) {
  auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  std::string lower = protocol;
  for (auto &c : lower) c = g_ascii_tolower(c);
  // Param specs keep their strings: interned ones live as long as the process.
  const gchar *endpoint_name = g_intern_string((lower + "-endpoint").c_str());
  const gchar *endpoint_nick = g_intern_string((std::string(protocol) + " endpoint").c_str());
  const gchar *endpoint_blurb =
      g_intern_string(("URL of the " + std::string(protocol) + " endpoint (http:// or https://)").c_str());
  g_object_class_install_property(klass, CLIENT_PROP_ENDPOINT,
      g_param_spec_string(endpoint_name, endpoint_nick, endpoint_blurb, nullptr, flags));
  g_object_class_install_property(klass, CLIENT_PROP_AUTH_TOKEN,
      g_param_spec_string("auth-token", "Authorization token",
                          "Bearer token sent as Authorization on every request (empty: none)", "", flags));
  g_object_class_install_property(klass, CLIENT_PROP_STUN_SERVER,
      g_param_spec_string("stun-server", "STUN server", "STUN server as stun://host:port", nullptr, flags));
  g_object_class_install_property(klass, CLIENT_PROP_TURN_SERVERS,
      turn_servers_param_spec("TURN servers as turn(s)://user:password@host:port?transport=udp|tcp", flags));
  g_object_class_install_property(klass, CLIENT_PROP_USE_LINK_HEADERS,
      g_param_spec_boolean("use-link-headers", "Use Link headers",
                           "Use the STUN/TURN servers the endpoint announces in Link rel=\"ice-server\" headers", TRUE,
                           flags));
  g_object_class_install_property(klass, CLIENT_PROP_ICE_TRANSPORT_POLICY,
      g_param_spec_enum("ice-transport-policy", "ICE transport policy", "all, or relay (TURN only)",
                        GST_TYPE_WEBRTC_ICE_TRANSPORT_POLICY, GST_WEBRTC_ICE_TRANSPORT_POLICY_ALL, flags));
  g_object_class_install_property(klass, CLIENT_PROP_TIMEOUT,
      g_param_spec_uint("timeout", "Timeout",
                        "Seconds an HTTP request may take, DELETE at shutdown included", 1, 3600, 10, flags));
  g_object_class_install_property(klass, CLIENT_PROP_MAX_RECONNECTS,
      g_param_spec_int("max-reconnects", "Maximum reconnects",
                       "New sessions tried after the connection is lost and ICE restart fails (-1: unlimited)", -1,
                       G_MAXINT, 10, flags));
  g_object_class_install_property(klass, CLIENT_PROP_RETRY_MAX_DELAY,
      g_param_spec_uint("retry-max-delay", "Maximum retry delay",
                        "Longest wait in seconds between POSTs answered 409/503 (backoff doubles from Retry-After)", 1,
                        3600, 30, flags));
  g_object_class_install_property(klass, CLIENT_PROP_TRICKLE,
      g_param_spec_boolean("trickle", "Trickle ICE",
                           "POST the offer at once and send candidates by PATCH; false: POST a fully gathered offer",
                           TRUE, flags));
  g_object_class_install_property(klass, CLIENT_PROP_ICE_LOCAL_ADDRESSES, ice_local_addresses_param_spec(flags));
  auto ro = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_property(klass, CLIENT_PROP_SESSION_URL,
      g_param_spec_string("session-url", "Session URL",
                          g_intern_string(("URL of the current " + std::string(protocol) + " session (null when none)").c_str()),
                          nullptr, ro));
  g_object_class_install_property(klass, CLIENT_PROP_STATS,
      g_param_spec_boxed("stats", "Statistics", stats_fields, GST_TYPE_STRUCTURE, ro));
}

bool set_client_property(ClientSettings &s, guint prop_id, const GValue *value) {
  switch (prop_id) {
    case CLIENT_PROP_ENDPOINT: s.endpoint = string_from_value(value); return true;
    case CLIENT_PROP_AUTH_TOKEN: s.auth_token = string_from_value(value); return true;
    case CLIENT_PROP_STUN_SERVER: s.stun_server = string_from_value(value); return true;
    case CLIENT_PROP_TURN_SERVERS: s.turn_servers = strings_from_value_array(value); return true;
    case CLIENT_PROP_USE_LINK_HEADERS: s.use_link_headers = g_value_get_boolean(value); return true;
    case CLIENT_PROP_ICE_TRANSPORT_POLICY:
      s.ice_transport_policy = static_cast<GstWebRTCICETransportPolicy>(g_value_get_enum(value));
      return true;
    case CLIENT_PROP_TIMEOUT: s.timeout = g_value_get_uint(value); return true;
    case CLIENT_PROP_MAX_RECONNECTS: s.max_reconnects = g_value_get_int(value); return true;
    case CLIENT_PROP_RETRY_MAX_DELAY: s.retry_max_delay = g_value_get_uint(value); return true;
    case CLIENT_PROP_TRICKLE: s.trickle = g_value_get_boolean(value); return true;
    case CLIENT_PROP_ICE_LOCAL_ADDRESSES: s.ice_local_addresses = string_from_value(value); return true;
    default: return false;
  }
}

bool get_client_property(const ClientSettings &s, guint prop_id, GValue *value) {
  auto nullable = [](const std::string &v) { return v.empty() ? nullptr : v.c_str(); };
  switch (prop_id) {
    case CLIENT_PROP_ENDPOINT: g_value_set_string(value, nullable(s.endpoint)); return true;
    case CLIENT_PROP_AUTH_TOKEN: g_value_set_string(value, s.auth_token.c_str()); return true;
    case CLIENT_PROP_STUN_SERVER: g_value_set_string(value, nullable(s.stun_server)); return true;
    case CLIENT_PROP_TURN_SERVERS: strings_to_value_array(s.turn_servers, value); return true;
    case CLIENT_PROP_USE_LINK_HEADERS: g_value_set_boolean(value, s.use_link_headers); return true;
    case CLIENT_PROP_ICE_TRANSPORT_POLICY: g_value_set_enum(value, s.ice_transport_policy); return true;
    case CLIENT_PROP_TIMEOUT: g_value_set_uint(value, s.timeout); return true;
    case CLIENT_PROP_MAX_RECONNECTS: g_value_set_int(value, s.max_reconnects); return true;
    case CLIENT_PROP_RETRY_MAX_DELAY: g_value_set_uint(value, s.retry_max_delay); return true;
    case CLIENT_PROP_TRICKLE: g_value_set_boolean(value, s.trickle); return true;
    case CLIENT_PROP_ICE_LOCAL_ADDRESSES: g_value_set_string(value, s.ice_local_addresses.c_str()); return true;
    default: return false;
  }
}

bool get_client_status(SessionClient &client, guint prop_id, GValue *value) {
  switch (prop_id) {
    case CLIENT_PROP_SESSION_URL: {
      std::string url = client.session_url();
      g_value_set_string(value, url.empty() ? nullptr : url.c_str());
      return true;
    }
    case CLIENT_PROP_STATS: g_value_take_boxed(value, client.stats()); return true;
    default: return false;
  }
}

}  // namespace wish
