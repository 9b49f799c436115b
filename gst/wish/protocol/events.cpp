#include "events.h"

#include <json-glib/json-glib.h>

#include <chrono>
#include <thread>

#include "ice_servers.h"

namespace wish {

const std::vector<std::string> &server_event_names(bool with_layers) {
  static const std::vector<std::string> names = {"active", "inactive", "reconnect", "viewercount"};
  static const std::vector<std::string> layered = {"active", "inactive", "layers", "reconnect", "viewercount"};
  return with_layers ? layered : names;
}

bool parse_event_subscription(const std::string &body, const std::vector<std::string> &supported,
                              std::vector<std::string> *names, std::string *error) {
  names->clear();
  g_autoptr(JsonParser) parser = json_parser_new();
  if (!json_parser_load_from_data(parser, body.data(), static_cast<gssize>(body.size()), nullptr)) {
    *error = "the body is not JSON";
    return false;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (!root || !JSON_NODE_HOLDS_ARRAY(root)) {
    *error = "the body must be a JSON array of event names";
    return false;
  }
  JsonArray *array = json_node_get_array(root);
  guint n = json_array_get_length(array);
  if (n == 0) {
    *error = "no event named";
    return false;
  }
  for (guint i = 0; i < n; i++) {
    JsonNode *item = json_array_get_element(array, i);
    if (!JSON_NODE_HOLDS_VALUE(item) || json_node_get_value_type(item) != G_TYPE_STRING) {
      *error = "event names must be strings";
      return false;
    }
    std::string name = json_node_get_string(item);
    bool known = false;
    for (const auto &s : supported) known = known || s == name;
    if (!known) {
      *error = "unsupported event '" + name.substr(0, 64) + "'";
      return false;
    }
    bool repeated = false;
    for (const auto &have : *names) repeated = repeated || have == name;
    if (!repeated) names->push_back(name);
  }
  return true;
}

std::string event_subscription_body(const std::vector<std::string> &names) {
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_array(b);
  for (const auto &n : names) json_builder_add_string_value(b, n.c_str());
  json_builder_end_array(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree gchar *text = json_to_string(root, FALSE);
  return text;
}

std::string format_event(const std::string &type, const std::string &json) {
  std::string data = json;
  for (char &c : data)
    if (c == '\n' || c == '\r') c = ' ';  // one data line
  return "event: " + type + "\ndata: " + data + "\n\n";
}

namespace {
// The member `name` of a JSON object text, null when there is none.
JsonNode *member_of(JsonParser *parser, const std::string &text, const char *name) {
  if (!json_parser_load_from_data(parser, text.data(), static_cast<gssize>(text.size()), nullptr)) return nullptr;
  JsonNode *root = json_parser_get_root(parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) return nullptr;
  return json_object_get_member(json_node_get_object(root), name);
}
}  // namespace

std::string reconnect_url(const std::string &data) {
  g_autoptr(JsonParser) parser = json_parser_new();
  JsonNode *url = member_of(parser, data, "url");
  if (!url || !JSON_NODE_HOLDS_VALUE(url) || json_node_get_value_type(url) != G_TYPE_STRING) return "";
  return json_node_get_string(url);
}

int64_t viewer_count(const std::string &data) {
  g_autoptr(JsonParser) parser = json_parser_new();
  JsonNode *n = member_of(parser, data, "viewercount");
  if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64) return -1;
  return json_node_get_int(n);
}

std::vector<ServerEvent> EventStreamParser::feed(std::string_view bytes) {
  std::vector<ServerEvent> out;
  for (char c : bytes) {
    if (c == '\n' && after_cr_) {  // the LF of a CRLF
      after_cr_ = false;
      continue;
    }
    after_cr_ = c == '\r';
    if (c == '\n' || c == '\r') {
      line(&out);
      continue;
    }
    if (line_.size() + data_.size() < kMaxEventSize)
      line_ += c;
    else
      too_long_ = true;
  }
  return out;
}

void EventStreamParser::line(std::vector<ServerEvent> *out) {
  std::string l;
  l.swap(line_);
  if (l.empty()) {  // dispatch
    if (has_data_ && !too_long_) out->push_back({type_.empty() ? "message" : type_, data_});
    type_.clear();
    data_.clear();
    has_data_ = too_long_ = false;
    return;
  }
  if (l[0] == ':') return;  // comment
  size_t colon = l.find(':');
  std::string field = l.substr(0, colon), value = colon == std::string::npos ? "" : l.substr(colon + 1);
  if (!value.empty() && value[0] == ' ') value.erase(0, 1);
  if (field == "event") {
    type_ = value;
  } else if (field == "data") {
    if (has_data_) data_ += '\n';
    data_ += value;
    has_data_ = true;
  }
}

namespace {
std::string json_object(const char *member, const std::string *string_value, const size_t *number) {
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  if (member) {
    json_builder_set_member_name(b, member);
    if (string_value)
      json_builder_add_string_value(b, string_value->c_str());
    else
      json_builder_add_int_value(b, static_cast<gint64>(*number));
  }
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree gchar *text = json_to_string(root, FALSE);
  return text;
}
}  // namespace

std::string EventHub::subscribe(const std::string &session, const std::string &stream, std::vector<std::string> names) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t have = 0;
  for (const auto &kv : subs_) have += kv.second.session == session;
  if (have >= kMaxPerSession) return "";
  std::string id = random_hex(16);
  Subscription &s = subs_[session + "/" + id];
  s.session = session;
  s.stream = stream;
  s.names = std::set<std::string>(names.begin(), names.end());
  streams_[stream];
  return id;
}

bool EventHub::has(const std::string &session, const std::string &sub) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return subs_.count(session + "/" + sub) > 0;
}

void EventHub::greet_locked(Subscription &s) {
  const StreamState &st = streams_[s.stream];
  if (st.active == 1 && s.wants("active")) s.out->write(format_event("active", "{}"));
  if (st.active == 0 && st.was_active && s.wants("inactive")) s.out->write(format_event("inactive", "{}"));
  if (s.wants("viewercount")) s.out->write(format_event("viewercount", json_object("viewercount", nullptr, &st.viewers)));
}

bool EventHub::wants(const std::string &session, const std::string &sub, const std::string &type) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = subs_.find(session + "/" + sub);
  return it != subs_.end() && it->second.wants(type);
}

std::shared_ptr<BodyStream> EventHub::open(const std::string &session, const std::string &sub) {
  std::shared_ptr<BodyStream> previous, out = std::make_shared<BodyStream>();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = subs_.find(session + "/" + sub);
    if (it == subs_.end()) return nullptr;
    previous = std::move(it->second.out);
    it->second.out = out;
    greet_locked(it->second);
  }
  if (previous) previous->close();
  return out;
}

std::shared_ptr<BodyStream> EventHub::open_all(const std::string &session, const std::string &stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t have = 0;
  for (const auto &kv : subs_) have += kv.second.session == session;
  if (have >= kMaxPerSession) return nullptr;
  Subscription &s = subs_[session + "/" + random_hex(16)];
  s.session = session;
  s.stream = stream;
  s.out = std::make_shared<BodyStream>();
  greet_locked(s);
  return s.out;
}

bool EventHub::unsubscribe(const std::string &session, const std::string &sub) {
  std::shared_ptr<BodyStream> out;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = subs_.find(session + "/" + sub);
    if (it == subs_.end()) return false;
    out = std::move(it->second.out);
    subs_.erase(it);
  }
  if (out) out->close();
  return true;
}

void EventHub::drop_session(const std::string &session) {
  std::vector<std::shared_ptr<BodyStream>> ended;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = subs_.begin(); it != subs_.end();) {
      if (it->second.session != session) {
        ++it;
        continue;
      }
      if (it->second.out) ended.push_back(std::move(it->second.out));
      it = subs_.erase(it);
    }
  }
  for (auto &out : ended) out->close();
}

void EventHub::send_locked(const std::string &stream, const std::string &type, const std::string &json) {
  std::string text;
  for (auto &kv : subs_) {
    Subscription &s = kv.second;
    if (s.stream != stream || !s.out || !s.wants(type)) continue;
    if (text.empty()) text = format_event(type, json);
    s.out->write(text);
  }
}

void EventHub::set_active(const std::string &stream, bool active) {
  std::lock_guard<std::mutex> lock(mutex_);
  StreamState &st = streams_[stream];
  int now = active ? 1 : 0;
  if (st.active == now) return;
  bool first = st.active == -1;
  st.active = now;
  if (active) {
    st.was_active = true;
    send_locked(stream, "active", "{}");
  } else if (!first || st.was_active) {
    send_locked(stream, "inactive", "{}");
  }
}

void EventHub::send_viewers_locked(const std::string &stream, StreamState &st, int64_t now_ms) {
  st.sent_viewers = st.viewers;
  st.sent_at = now_ms;
  send_locked(stream, "viewercount", json_object("viewercount", nullptr, &st.viewers));
}

void EventHub::set_viewers(const std::string &stream, size_t viewers, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  StreamState &st = streams_[stream];
  st.viewers = viewers;
  if (st.viewers != st.sent_viewers && now_ms - st.sent_at >= kViewerCountIntervalMs)
    send_viewers_locked(stream, st, now_ms);
}

void EventHub::flush(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto &kv : streams_) {
    StreamState &st = kv.second;
    if (st.viewers != st.sent_viewers && now_ms - st.sent_at >= kViewerCountIntervalMs)
      send_viewers_locked(kv.first, st, now_ms);
  }
  // Streams nobody watches any more are forgotten, but not while they have viewers: the
  // endpoint counts them only when one comes or goes, and a subscriber coming later would be
  // greeted with none.
  for (auto it = streams_.begin(); it != streams_.end();) {
    bool watched = it->second.viewers > 0;
    for (const auto &s : subs_) watched = watched || s.second.stream == it->first;
    it = watched ? std::next(it) : streams_.erase(it);
  }
}

std::vector<std::string> EventHub::watched_streams() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::set<std::string> names;
  for (const auto &kv : subs_) names.insert(kv.second.stream);
  return {names.begin(), names.end()};
}

size_t EventHub::announce_reconnect(const std::function<std::string(const std::string &stream)> &url_for) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t told = 0;
  for (auto &kv : subs_) {
    Subscription &s = kv.second;
    if (!s.out || !s.wants("reconnect") || !s.out->open()) continue;
    std::string url = url_for(s.stream);
    s.out->write(format_event("reconnect", url.empty() ? "{}" : json_object("url", &url, nullptr)));
    told++;
  }
  return told;
}

bool EventHub::close_all(int64_t wait_ms) {
  std::vector<std::shared_ptr<BodyStream>> ended;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto &kv : subs_)
      if (kv.second.out) ended.push_back(std::move(kv.second.out));
    subs_.clear();
    streams_.clear();
  }
  for (auto &out : ended) out->close();
  // The server marks a stream detached once its end is written (or its client left).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (auto &out : ended)
    while (!out->detached()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  return true;
}

}  // namespace wish
