#include "http.h"

#include <algorithm>
#include <cctype>
#include <ctime>

namespace wish {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

std::vector<std::string> split_list(std::string_view list) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= list.size()) {
    size_t end = list.find(',', i);
    if (end == std::string_view::npos) end = list.size();
    std::string_view item = trim(list.substr(i, end - i));
    if (!item.empty()) out.emplace_back(item);
    i = end + 1;
  }
  return out;
}

void Headers::add(std::string name, std::string value) {
  items_.emplace_back(std::move(name), std::move(value));
}

void Headers::set(std::string name, std::string value) {
  items_.erase(std::remove_if(items_.begin(), items_.end(),
                              [&](const auto &kv) { return iequals(kv.first, name); }),
               items_.end());
  add(std::move(name), std::move(value));
}

std::optional<std::string> Headers::get(std::string_view name) const {
  for (const auto &kv : items_)
    if (iequals(kv.first, name)) return kv.second;
  return std::nullopt;
}

std::vector<std::string> Headers::get_all(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto &kv : items_)
    if (iequals(kv.first, name)) out.push_back(kv.second);
  return out;
}

void Reply::send(Response response) const {
  if (state_ && state_->sender && !state_->done.exchange(true)) state_->sender(std::move(response));
}

Reply::State::~State() {
  if (sender && !done.exchange(true)) sender(Response::problem(503, "the server ended before answering"));
}

void BodyStream::write(std::string chunk) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_ || detached_) return;
  if (sink_)
    sink_(&chunk);
  else
    queued_.push_back(std::move(chunk));
}

void BodyStream::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return;
  closed_ = true;
  if (sink_ && !detached_) sink_(nullptr);
}

bool BodyStream::open() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !closed_ && !detached_;
}

void BodyStream::attach(Sink sink) {
  std::lock_guard<std::mutex> lock(mutex_);
  sink_ = std::move(sink);
  if (detached_) return;
  for (const auto &chunk : queued_) sink_(&chunk);
  queued_.clear();
  if (closed_) sink_(nullptr);
}

void BodyStream::detach() {
  std::lock_guard<std::mutex> lock(mutex_);
  detached_ = true;
  sink_ = nullptr;
  queued_.clear();
}

bool BodyStream::detached() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return detached_;
}

Response Response::empty(unsigned status) {
  Response r;
  r.status = status;
  return r;
}

static std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

Response Response::problem(unsigned status, std::string_view detail) {
  Response r;
  r.status = status;
  r.headers.set("Content-Type", "application/problem+json");
  r.body = "{\"type\":\"about:blank\",\"title\":\"" + json_escape(reason_phrase(status)) +
           "\",\"status\":" + std::to_string(status) + ",\"detail\":\"" + json_escape(detail) + "\"}";
  return r;
}

const char *reason_phrase(unsigned status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

std::string media_type(std::string_view content_type) {
  auto semi = content_type.find(';');
  std::string_view mt = trim(content_type.substr(0, semi));
  std::string out(mt);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

IfMatchValue parse_if_match(const std::optional<std::string> &header) {
  IfMatchValue v;
  if (!header) return v;
  std::string_view s = trim(*header);
  // "*" is the wildcard; some clients send it quoted.
  if (s == "*" || s == "\"*\"") {
    v.kind = IfMatch::Any;
    return v;
  }
  v.kind = IfMatch::Tags;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) i++;
    if (i >= s.size()) break;
    size_t start = i;
    if (s.compare(i, 2, "W/") == 0) i += 2;
    if (i < s.size() && s[i] == '"') {
      size_t end = s.find('"', i + 1);
      if (end == std::string_view::npos) end = s.size() - 1;
      i = end + 1;
    } else {
      while (i < s.size() && s[i] != ',') i++;
    }
    v.tags.emplace_back(trim(s.substr(start, i - start)));
  }
  return v;
}

bool if_match_accepts(const IfMatchValue &v, std::string_view current_etag) {
  if (v.kind == IfMatch::Any) return true;
  if (v.kind == IfMatch::Missing) return false;
  for (const auto &t : v.tags)
    if (t == current_etag) return true;
  return false;
}

bool bearer_token_matches(const std::optional<std::string> &authorization,
                          std::string_view expected_token) {
  if (!authorization) return false;
  std::string_view a = trim(*authorization);
  if (a.size() < 7 || !iequals(a.substr(0, 7), "Bearer ")) return false;
  std::string_view token = trim(a.substr(7));
  // Compare in time independent of where the first difference is.
  unsigned diff = token.size() ^ expected_token.size();
  for (size_t i = 0; i < token.size(); i++)
    diff |= static_cast<unsigned char>(token[i]) ^
            static_cast<unsigned char>(expected_token.empty() ? 0 : expected_token[i % expected_token.size()]);
  return diff == 0 && !expected_token.empty();
}

std::string http_date(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64];
  snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
           months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

static bool origin_allowed(const std::string &list, const std::string &origin) {
  if (list == "*") return true;
  for (const auto &item : split_list(list))
    if (item == origin) return true;
  return false;
}

void apply_cors(const Request &req, const std::string &allowed_origins, const char *exposed, Response *resp) {
  if (allowed_origins == "*") {
    resp->headers.set("Access-Control-Allow-Origin", "*");
  } else {
    auto origin = req.headers.get("Origin");
    if (origin && origin_allowed(allowed_origins, *origin)) resp->headers.set("Access-Control-Allow-Origin", *origin);
    resp->headers.set("Vary", "Origin");
  }
  resp->headers.set("Access-Control-Expose-Headers", exposed);
}

Response preflight_response(const Request &req, const char *methods) {
  Response r = Response::empty(200);
  r.headers.set("Access-Control-Allow-Methods", methods);
  auto asked = req.headers.get("Access-Control-Request-Headers");
  r.headers.set("Access-Control-Allow-Headers",
                asked && !asked->empty() ? *asked : "Authorization, Content-Type, If-Match");
  r.headers.set("Access-Control-Max-Age", "86400");
  return r;
}

std::optional<Response> refuse_unauthorized(const Request &req, const std::string &token) {
  if (token.empty() || bearer_token_matches(req.headers.get("Authorization"), token)) return std::nullopt;
  Response r = Response::problem(401, "missing or wrong bearer token");
  r.headers.set("WWW-Authenticate", "Bearer");
  return r;
}

}  // namespace wish
