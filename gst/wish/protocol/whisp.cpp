#include "whisp.h"

#include <json-glib/json-glib.h>

#include <cstdlib>

namespace wish {

namespace {

constexpr const char *kJson = "application/json";
constexpr const char *kExposed = "Location, Content-Type";

const char *message_name(WhispMessage m) {
  switch (m) {
    case WhispMessage::Pulling: return "pulling";
    case WhispMessage::Switching: return "switching";
    case WhispMessage::Merging: return "merging";
    case WhispMessage::Grabbing: return "grabbing";
  }
  return "";
}

// A string, or the string of a one-element array (some figures wrap single values).
bool read_string(JsonNode *node, std::string *out) {
  if (!node) return false;
  if (JSON_NODE_HOLDS_ARRAY(node)) {
    JsonArray *a = json_node_get_array(node);
    if (json_array_get_length(a) != 1) return false;
    node = json_array_get_element(a, 0);
  }
  if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) return false;
  *out = json_node_get_string(node);
  return true;
}

bool read_msids(JsonNode *node, std::vector<std::string> *out, std::string *error) {
  if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING) {
    out->push_back(json_node_get_string(node));
    return true;
  }
  if (!JSON_NODE_HOLDS_ARRAY(node)) {
    *error = "amsid and vmsid are strings or arrays of strings";
    return false;
  }
  JsonArray *a = json_node_get_array(node);
  for (guint i = 0; i < json_array_get_length(a); i++) {
    JsonNode *e = json_array_get_element(a, i);
    if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING) {
      *error = "amsid and vmsid are strings or arrays of strings";
      return false;
    }
    out->push_back(json_node_get_string(e));
  }
  return true;
}

bool read_media_id_member(const char *name, JsonNode *value, WhispMedia *m, std::string *error) {
  if (g_str_equal(name, "amsid")) return read_msids(value, &m->amsid, error);
  if (g_str_equal(name, "vmsid")) return read_msids(value, &m->vmsid, error);
  return true;  // other ids are not ours to read
}

bool read_media(JsonObject *parent, const char *name, WhispMedia *m, std::string *error) {
  JsonNode *node = json_object_get_member(parent, name);
  if (!node || !JSON_NODE_HOLDS_OBJECT(node)) {
    *error = std::string("\"") + name + "\" must be an object with \"URL\"";
    return false;
  }
  JsonObject *o = json_node_get_object(node);
  JsonNode *url = json_object_get_member(o, "URL");
  if (!url || !JSON_NODE_HOLDS_VALUE(url) || json_node_get_value_type(url) != G_TYPE_STRING ||
      !*json_node_get_string(url)) {
    *error = std::string("\"") + name + "\" needs \"URL\", a string";
    return false;
  }
  m->url = json_node_get_string(url);
  JsonNode *ids = json_object_get_member(o, "media ID");
  if (!ids || JSON_NODE_HOLDS_NULL(ids)) return true;
  m->has_media_id = true;
  if (JSON_NODE_HOLDS_OBJECT(ids)) {
    JsonObject *io = json_node_get_object(ids);
    g_autoptr(GList) members = json_object_get_members(io);
    for (GList *l = members; l; l = l->next) {
      const char *key = static_cast<const char *>(l->data);
      if (!read_media_id_member(key, json_object_get_member(io, key), m, error)) return false;
    }
    return true;
  }
  if (JSON_NODE_HOLDS_ARRAY(ids)) {  // [{"amsid":[...]}, {"vmsid":[...]}]
    JsonArray *a = json_node_get_array(ids);
    for (guint i = 0; i < json_array_get_length(a); i++) {
      JsonNode *e = json_array_get_element(a, i);
      if (!JSON_NODE_HOLDS_OBJECT(e)) {
        *error = "\"media ID\" is an object, or an array of one-key objects";
        return false;
      }
      JsonObject *eo = json_node_get_object(e);
      g_autoptr(GList) members = json_object_get_members(eo);
      for (GList *l = members; l; l = l->next) {
        const char *key = static_cast<const char *>(l->data);
        if (!read_media_id_member(key, json_object_get_member(eo, key), m, error)) return false;
      }
    }
    return true;
  }
  *error = "\"media ID\" is an object, or an array of one-key objects";
  return false;
}

// "01", 1, ["01"], [1] -> "01"
bool read_template(JsonNode *node, std::string *out) {
  if (node && JSON_NODE_HOLDS_ARRAY(node)) {
    JsonArray *a = json_node_get_array(node);
    if (json_array_get_length(a) != 1) return false;
    node = json_array_get_element(a, 0);
  }
  if (!node || !JSON_NODE_HOLDS_VALUE(node)) return false;
  GType t = json_node_get_value_type(node);
  if (t == G_TYPE_STRING) {
    *out = json_node_get_string(node);
    return !out->empty();
  }
  if (t == G_TYPE_INT64) {
    gint64 v = json_node_get_int(node);
    if (v < 0 || v > 99) {
      *out = std::to_string(v);
      return true;
    }
    char buf[8];
    g_snprintf(buf, sizeof buf, "%02d", static_cast<int>(v));
    *out = buf;
    return true;
  }
  return false;
}

// 0..2 or "0x0".."0x2" (any integer is read; the endpoint refuses what is out of range).
bool read_error_code(JsonNode *node, int *out) {
  if (!node || !JSON_NODE_HOLDS_VALUE(node)) return false;
  GType t = json_node_get_value_type(node);
  if (t == G_TYPE_INT64) {
    gint64 v = json_node_get_int(node);
    *out = v < -1 || v > 1000 ? 1000 : static_cast<int>(v);
    return true;
  }
  if (t != G_TYPE_STRING) return false;
  std::string s = json_node_get_string(node);
  bool hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  const char *digits = s.c_str() + (hex ? 2 : 0);
  if (!*digits || *digits == '-' || *digits == '+') return false;
  char *end = nullptr;
  long v = strtol(digits, &end, hex ? 16 : 10);
  if (*end) return false;
  *out = v > 1000 ? 1000 : static_cast<int>(v);
  return true;
}

std::string json_string(const std::string &s) {
  g_autoptr(JsonNode) node = json_node_init_string(json_node_alloc(), s.c_str());
  g_autofree gchar *text = json_to_string(node, FALSE);
  return text;
}

}  // namespace

bool parse_whisp_request(WhispMessage message, const std::string &body, WhispRequest *out, std::string *error) {
  g_autoptr(JsonParser) parser = json_parser_new();
  g_autoptr(GError) err = nullptr;
  if (!json_parser_load_from_data(parser, body.data(), static_cast<gssize>(body.size()), &err)) {
    *error = std::string("not JSON: ") + (err ? err->message : "?");
    return false;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    *error = "the body must be a JSON object";
    return false;
  }
  JsonObject *o = json_node_get_object(root);
  out->message = message;
  switch (message) {
    case WhispMessage::Pulling:
      return read_media(o, "media", &out->media, error);
    case WhispMessage::Switching:
      return read_media(o, "source media", &out->media, error) &&
             read_media(o, "destination media", &out->other, error);
    case WhispMessage::Merging: {
      if (!read_media(o, "main media", &out->media, error) || !read_media(o, "secondary media", &out->other, error))
        return false;
      JsonNode *tn = json_object_get_member(o, "merge template");
      JsonNode *id = tn && JSON_NODE_HOLDS_OBJECT(tn) ? json_object_get_member(json_node_get_object(tn), "merge template id")
                                                     : nullptr;
      if (!read_template(id, &out->template_id)) {
        *error = "\"merge template\" needs \"merge template id\": a string, a number or a one-element array";
        return false;
      }
      return true;
    }
    case WhispMessage::Grabbing:
      if (!read_media(o, "new media", &out->media, error)) return false;
      if (!read_error_code(json_object_get_member(o, "error_code"), &out->error_code)) {
        *error = "\"error_code\" must be 0, 1, 2 or \"0x0\", \"0x1\", \"0x2\"";
        return false;
      }
      return true;
  }
  return false;
}

std::string whisp_media_json(const WhispMedia &m) {
  auto list = [](const std::vector<std::string> &v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); i++) s += (i ? "," : "") + json_string(v[i]);
    return s + "]";
  };
  std::string out = "{";
  if (m.has_media_id || !m.amsid.empty() || !m.vmsid.empty())
    out += "\"media ID\":{\"amsid\":" + list(m.amsid) + ",\"vmsid\":" + list(m.vmsid) + "},";
  out += "\"URL\":" + json_string(m.url) + "}";
  return out;
}

static std::string made_stream_json(const std::string &url, const std::string &name) {
  WhispMedia m;
  m.url = url;
  m.amsid = {name + "-audio"};
  m.vmsid = {name + "-video"};
  return "{\"media\":" + whisp_media_json(m) + "}";
}

std::string whisp_pulling_response(const std::string &url, const std::string &name) { return made_stream_json(url, name); }
std::string whisp_merging_response(const std::string &url, const std::string &name) { return made_stream_json(url, name); }

const std::vector<WhispTemplate> &whisp_templates() {
  static const std::vector<WhispTemplate> templates = {
      {"01", "picture-in-picture", "main media full size; secondary media 320x180 at the bottom right"},
      {"02", "side by side", "main media on the left half, secondary media on the right half"},
      {"03", "top and bottom", "main media on the top half, secondary media on the bottom half"},
  };
  return templates;
}

std::string whisp_templates_json() {
  std::string out = "{\"merge templates\":[";
  bool first = true;
  for (const auto &t : whisp_templates()) {
    out += std::string(first ? "" : ",") + "{\"merge template id\":" + json_string(t.id) +
           ",\"name\":" + json_string(t.name) + ",\"description\":" + json_string(t.description) + "}";
    first = false;
  }
  return out + "]}";
}

Response WhispEndpoint::decorate(const Request &req, Response r) const {
  apply_cors(req, config_.cors_allowed_origins, kExposed, &r);
  return r;
}

static Response json_response(unsigned status, std::string body) {
  Response r = Response::empty(status);
  r.headers.set("Content-Type", kJson);
  r.body = std::move(body);
  return r;
}

void WhispEndpoint::handle(const Request &req, Reply reply) {
  std::weak_ptr<WhispEndpoint> weak = weak_from_this();
  Reply decorated([weak, req, reply](Response r) {
    auto self = weak.lock();
    reply.send(self ? self->decorate(req, std::move(r)) : std::move(r));
  });
  const std::string &base = config_.path;
  if (req.path.size() <= base.size() + 1 || req.path.compare(0, base.size(), base) != 0 || req.path[base.size()] != '/') {
    decorated.send(Response::problem(404, "no such resource"));
    return;
  }
  std::string rest = req.path.substr(base.size() + 1);
  size_t slash = rest.find('/');
  std::string kind = rest.substr(0, slash), leaf = slash == std::string::npos ? "" : rest.substr(slash + 1);
  std::optional<WhispMessage> message;
  for (WhispMessage m : {WhispMessage::Pulling, WhispMessage::Switching, WhispMessage::Merging, WhispMessage::Grabbing})
    if (kind == message_name(m)) message = m;
  if (!message || leaf.empty() || leaf.find('/') != std::string::npos ||
      (*message == WhispMessage::Grabbing && leaf != "endpoint")) {
    decorated.send(Response::problem(404, "no such resource"));
    return;
  }
  bool endpoint = leaf == "endpoint", templates = *message == WhispMessage::Merging && leaf == "templates";
  const char *methods = endpoint ? "OPTIONS, POST" : templates ? "OPTIONS, GET" : "OPTIONS, DELETE";
  if (req.method == "OPTIONS" && req.headers.has("Access-Control-Request-Method")) {
    decorated.send(preflight_response(req, methods));
    return;
  }
  if (auto refusal = refuse_unauthorized(req, config_.auth_token)) {
    decorated.send(std::move(*refusal));
    return;
  }
  bool allowed = req.method == "OPTIONS" || (endpoint && req.method == "POST") ||
                 (templates && (req.method == "GET" || req.method == "HEAD")) ||
                 (!endpoint && !templates && req.method == "DELETE");
  if (!allowed) {
    Response r = Response::problem(405, std::string("method not allowed on ") + req.path);
    r.headers.set("Allow", methods);
    decorated.send(std::move(r));
    return;
  }
  if (req.method == "OPTIONS") {
    Response r = Response::empty(200);
    r.headers.set("Allow", methods);
    if (endpoint) r.headers.set("Accept-Post", kJson);
    decorated.send(std::move(r));
    return;
  }
  if (templates) {
    decorated.send(json_response(200, whisp_templates_json()));
    return;
  }
  if (req.method == "DELETE") {
    unsigned status = backend_->end(*message, leaf);
    decorated.send(status == 200 ? Response::empty(200) : Response::problem(status, "no such " + kind));
    return;
  }
  post(req, *message, std::move(decorated));
}

void WhispEndpoint::post(const Request &req, WhispMessage message, Reply reply) {
  auto ct = req.headers.get("Content-Type");
  if (!ct || media_type(*ct) != kJson) {
    Response r = Response::problem(415, "WHISP requests are application/json");
    r.headers.set("Accept-Post", kJson);
    reply.send(std::move(r));
    return;
  }
  if (req.body.size() > config_.max_body_size) {
    reply.send(Response::problem(413, "body larger than " + std::to_string(config_.max_body_size) + " bytes"));
    return;
  }
  WhispRequest request;
  std::string error;
  if (!parse_whisp_request(message, req.body, &request, &error)) {
    reply.send(Response::problem(400, error));
    return;
  }
  if (message == WhispMessage::Merging) {
    bool known = false;
    for (const auto &t : whisp_templates()) known = known || t.id == request.template_id;
    if (!known) {
      reply.send(Response::problem(422, "no merge template \"" + request.template_id + "\" (see " + config_.path +
                                            "/merging/templates)"));
      return;
    }
  }
  if (message == WhispMessage::Grabbing && (request.error_code < 0 || request.error_code > 2)) {
    reply.send(Response::problem(422, "error_code is 0x0, 0x1 or 0x2"));
    return;
  }
  std::string base = config_.path, kind = message_name(message);
  auto done = [reply, request, base, kind](WhispResult result) {
    if (result.status >= 300) {
      reply.send(Response::problem(result.status, result.error));
      return;
    }
    std::string body;
    switch (request.message) {
      case WhispMessage::Pulling: body = whisp_pulling_response(result.url, result.stream); break;
      case WhispMessage::Merging: body = whisp_merging_response(result.url, result.stream); break;
      case WhispMessage::Switching:
        body = "{\"source media\":" + whisp_media_json(request.media) +
               ",\"destination media\":" + whisp_media_json(request.other) + "}";
        break;
      case WhispMessage::Grabbing:
        body = "{\"new media\":" + whisp_media_json(request.media) +
               ",\"error_code\":" + std::to_string(request.error_code) + "}";
        break;
    }
    Response r = json_response(result.status, body);
    if (!result.resource.empty()) r.headers.set("Location", base + "/" + kind + "/" + result.resource);
    reply.send(std::move(r));
  };
  switch (message) {
    case WhispMessage::Pulling: backend_->pull(request, done); break;
    case WhispMessage::Switching: backend_->switch_streams(request, done); break;
    case WhispMessage::Merging: backend_->merge(request, done); break;
    case WhispMessage::Grabbing: backend_->grab(request, done); break;
  }
}

}  // namespace wish
