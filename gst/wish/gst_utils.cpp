#include "gst_utils.h"

namespace wish {

std::string string_from_value(const GValue *value) {
  const gchar *s = g_value_get_string(value);
  return s ? s : "";
}

std::vector<std::string> strings_from_value_array(const GValue *array) {
  std::vector<std::string> out;
  for (guint i = 0; i < gst_value_array_get_size(array); i++) {
    const GValue *v = gst_value_array_get_value(array, i);
    if (G_VALUE_HOLDS_STRING(v) && g_value_get_string(v)) out.push_back(g_value_get_string(v));
  }
  return out;
}

void strings_to_value_array(const std::vector<std::string> &strings, GValue *array) {
  for (const auto &s : strings) {
    GValue v = G_VALUE_INIT;
    g_value_init(&v, G_TYPE_STRING);
    g_value_set_string(&v, s.c_str());
    gst_value_array_append_and_take_value(array, &v);
  }
}

GParamSpec *turn_servers_param_spec(const char *blurb, GParamFlags flags) {
  return gst_param_spec_array(
      "turn-servers", "TURN servers", blurb,
      g_param_spec_string("turn-server", "TURN server", "One TURN server URL", nullptr,
                          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)),
      flags);
}

GParamSpec *ice_local_addresses_param_spec(GParamFlags flags) {
  return g_param_spec_string("ice-local-addresses", "ICE local addresses",
                             "Comma-separated IP addresses or interface names ICE may gather on (empty = all)", "",
                             flags);
}

GParamSpec *ice_port_range_param_spec(GParamFlags flags) {
  return g_param_spec_string("ice-port-range", "ICE port range",
                             "UDP ports ICE candidates are gathered on, as min-max (e.g. 40000-40999), for firewall "
                             "rules; empty = any port. Each session takes one port per local address",
                             "", flags);
}

GParamSpec *do_retransmission_param_spec(GParamFlags flags) {
  return g_param_spec_boolean(
      "do-retransmission", "Do retransmission",
      "Negotiate NACK and RTX (RFC 4585, RFC 4588) with every peer: a receiver asks for lost packets and the "
      "sender sends them again, which needs a jitterbuffer latency above the round-trip time to help. "
      "false: no a=rtcp-fb nack and no rtx payload types are offered or answered",
      TRUE, flags);
}

void mark_live_source(GstBin *bin) {
  GST_OBJECT_FLAG_SET(bin, GST_ELEMENT_FLAG_SOURCE);
  // webrtcbin holds sinks (nicesink): the bin must not look like one and be waited for.
  gst_bin_set_suppressed_flags(bin, static_cast<GstElementFlags>(GST_ELEMENT_FLAG_SOURCE | GST_ELEMENT_FLAG_SINK));
}

GstStateChangeReturn live_source_result(GstStateChange transition, GstStateChangeReturn ret) {
  if (ret == GST_STATE_CHANGE_FAILURE) return ret;
  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED || transition == GST_STATE_CHANGE_PLAYING_TO_PAUSED)
    return GST_STATE_CHANGE_NO_PREROLL;
  return ret;
}

}  // namespace wish
