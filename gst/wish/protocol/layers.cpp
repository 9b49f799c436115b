#include "layers.h"

#include <json-glib/json-glib.h>

#include <cstdlib>

#include "http.h"

namespace wish {

namespace {
bool parse_uint(const std::string &s, long max, long *out) {
  if (s.empty() || s.size() > 6 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  *out = std::strtol(s.c_str(), nullptr, 10);
  return *out >= 1 && *out <= max;
}
}  // namespace

bool parse_video_layers(const std::string &spec, std::vector<VideoLayer> *layers, std::string *error) {
  layers->clear();
  for (const auto &item : split_list(spec)) {
    size_t a = item.find(':'), b = a == std::string::npos ? a : item.find(':', a + 1);
    size_t x = b == std::string::npos ? b : item.find('x', a + 1);
    if (b == std::string::npos || x == std::string::npos || x > b) {
      *error = "'" + item + "' is not rid:WIDTHxHEIGHT:KBPS";
      return false;
    }
    VideoLayer l;
    l.rid = item.substr(0, a);
    long w = 0, h = 0, kbps = 0;
    bool ok = !l.rid.empty() && l.rid.size() <= 16 && l.rid.find_first_not_of(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == std::string::npos;
    ok = ok && parse_uint(item.substr(a + 1, x - a - 1), 8192, &w) && parse_uint(item.substr(x + 1, b - x - 1), 8192, &h) &&
         parse_uint(item.substr(b + 1), 100000, &kbps) && w >= 16 && h >= 16 && w % 2 == 0 && h % 2 == 0;
    if (!ok) {
      *error = "'" + item + "' is not rid:WIDTHxHEIGHT:KBPS (even sizes of at least 16, 1..100000 kbit/s)";
      return false;
    }
    for (const auto &other : *layers)
      if (other.rid == l.rid) {
        *error = "two layers are called '" + l.rid + "'";
        return false;
      }
    l.width = static_cast<int>(w);
    l.height = static_cast<int>(h);
    l.kbps = static_cast<unsigned>(kbps);
    layers->push_back(l);
  }
  return true;
}

bool LayerRequest::automatic() const {
  return rid.empty() && spatial < 0 && temporal < 0 && max_spatial < 0 && max_temporal < 0 && max_width < 0 &&
         max_height < 0;
}

bool parse_layer_request(const std::string &body, LayerRequest *request, std::string *error) {
  *request = LayerRequest();
  g_autoptr(JsonParser) parser = json_parser_new();
  if (!json_parser_load_from_data(parser, body.data(), static_cast<gssize>(body.size()), nullptr)) {
    *error = "the body is not JSON";
    return false;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    *error = "the body must be a JSON object";
    return false;
  }
  JsonObject *o = json_node_get_object(root);
  struct IntField {
    const char *name;
    int *out;
  } ints[] = {{"spatialLayerId", &request->spatial},        {"temporalLayerId", &request->temporal},
              {"maxSpatialLayerId", &request->max_spatial}, {"maxTemporalLayerId", &request->max_temporal},
              {"maxWidth", &request->max_width},            {"maxHeight", &request->max_height}};
  for (const auto &f : ints) {
    JsonNode *n = json_object_get_member(o, f.name);
    if (!n || JSON_NODE_HOLDS_NULL(n)) continue;
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64 || json_node_get_int(n) < 0 ||
        json_node_get_int(n) > 100000) {
      *error = std::string(f.name) + " must be a non-negative integer";
      return false;
    }
    *f.out = static_cast<int>(json_node_get_int(n));
  }
  for (const char *name : {"mediaId", "rid", "encodingId"}) {
    JsonNode *n = json_object_get_member(o, name);
    if (!n || JSON_NODE_HOLDS_NULL(n)) continue;
    std::string value;
    if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING)
      value = json_node_get_string(n);
    else if (g_str_equal(name, "mediaId") && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64)
      value = std::to_string(json_node_get_int(n));  // an m-line index sent as a number
    else {
      *error = std::string(name) + " must be a string";
      return false;
    }
    if (g_str_equal(name, "mediaId"))
      request->media_id = value;
    else if (!request->rid.empty() && request->rid != value) {
      *error = "rid and encodingId differ";
      return false;
    } else
      request->rid = value;
  }
  return true;
}

std::string layer_request_body(const std::string &media_id, const std::string &rid) {
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "mediaId");
  json_builder_add_string_value(b, media_id.c_str());
  if (!rid.empty()) {
    json_builder_set_member_name(b, "rid");
    json_builder_add_string_value(b, rid.c_str());
  }
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree gchar *text = json_to_string(root, FALSE);
  return text;
}

int choose_layer(const std::vector<VideoLayer> &layers, const LayerRequest &request, std::string *why) {
  const int n = static_cast<int>(layers.size());
  if (request.temporal > 0) {  // one temporal layer (0) per layer
    *why = "no temporal layer " + std::to_string(request.temporal);
    return -1;
  }
  if (!request.rid.empty()) {
    for (int i = 0; i < n; i++)
      if (layers[i].rid == request.rid) return i;
    *why = "no layer '" + request.rid + "'";
    return -1;
  }
  if (request.spatial >= 0) {
    if (request.spatial >= n) {
      *why = "no spatial layer " + std::to_string(request.spatial);
      return -1;
    }
    return n - 1 - request.spatial;
  }
  // The largest layer within the limits.
  for (int i = 0; i < n; i++) {
    const VideoLayer &l = layers[i];
    if (request.max_spatial >= 0 && n - 1 - i > request.max_spatial) continue;
    if (request.max_width >= 0 && l.width > request.max_width) continue;
    if (request.max_height >= 0 && l.height > request.max_height) continue;
    return i;
  }
  *why = "no layer within the limits asked for";
  return -1;
}

std::string layers_event_data(int mline, const std::vector<VideoLayer> &layers) {
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, std::to_string(mline).c_str());
  json_builder_begin_array(b);
  const int n = static_cast<int>(layers.size());
  for (int i = 0; i < n; i++) {
    const VideoLayer &l = layers[i];
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "rid");
    json_builder_add_string_value(b, l.rid.c_str());
    json_builder_set_member_name(b, "spatialLayerId");
    json_builder_add_int_value(b, n - 1 - i);
    json_builder_set_member_name(b, "temporalLayerId");
    json_builder_add_int_value(b, 0);
    json_builder_set_member_name(b, "bitrate");
    json_builder_add_int_value(b, l.bitrate ? static_cast<gint64>(l.bitrate) : static_cast<gint64>(l.kbps) * 1000);
    json_builder_set_member_name(b, "targetBitrate");
    json_builder_add_int_value(b, static_cast<gint64>(l.kbps) * 1000);
    if (l.width > 0) {
      json_builder_set_member_name(b, "width");
      json_builder_add_int_value(b, l.width);
      json_builder_set_member_name(b, "height");
      json_builder_add_int_value(b, l.height);
    }
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree gchar *text = json_to_string(root, FALSE);
  return text;
}

}  // namespace wish
