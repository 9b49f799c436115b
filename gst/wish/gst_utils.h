// Small GObject/GStreamer helpers shared by the elements.
#pragma once

#include <gst/gst.h>

#include <string>
#include <vector>

namespace wish {

// Strings of a GstValueArray property value, and back.
// A string GValue as std::string; NULL becomes "".
std::string string_from_value(const GValue *value);
std::vector<std::string> strings_from_value_array(const GValue *array);
void strings_to_value_array(const std::vector<std::string> &strings, GValue *array);

// Property specs every WebRTC element of the plugin shares, with the same names and blurbs.
GParamSpec *turn_servers_param_spec(const char *blurb, GParamFlags flags);
GParamSpec *ice_local_addresses_param_spec(GParamFlags flags);
GParamSpec *ice_port_range_param_spec(GParamFlags flags);
// do-retransmission, the same for every element: NACK/RTX negotiated on every session.
GParamSpec *do_retransmission_param_spec(GParamFlags flags);

// Live source bins (whepsrc, whipserversrc): flagged as a source whatever their children are,
// and no preroll when going to PAUSED.
void mark_live_source(GstBin *bin);
GstStateChangeReturn live_source_result(GstStateChange transition, GstStateChangeReturn ret);

}  // namespace wish
