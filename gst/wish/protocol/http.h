// HTTP message model shared by the built-in server, the action signals and the tests.
// Plain C++: no GLib, no libsoup, so protocol rules can be unit tested directly.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wish {

// Ordered header list; names compare case-insensitively, repeated names are kept
// (several Link headers are the norm).
class Headers {
public:
  void add(std::string name, std::string value);
  void set(std::string name, std::string value);  // replaces every header of that name
  std::optional<std::string> get(std::string_view name) const;  // first one
  std::vector<std::string> get_all(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  const std::vector<std::pair<std::string, std::string>> &items() const { return items_; }

private:
  std::vector<std::pair<std::string, std::string>> items_;
};

struct Request {
  std::string method;  // upper case: "POST", "PATCH", ...
  std::string path;    // path only, no query
  std::string client;  // the client's IP address ("" when not known: action signals)
  Headers headers;
  std::string body;
};

// A response body that goes on after the head (an event stream): the server writes each
// chunk as it comes until close(). Safe from any thread. Its mutex guards the fields below and
// is held while the sink runs; the sink only queues work for the server's thread.
class BodyStream {
public:
  // What the server does with a chunk; nullptr ends the body.
  using Sink = std::function<void(const std::string *chunk)>;
  void write(std::string chunk);  // kept until the server attaches; dropped once closed or left
  void close();
  // Open: neither closed nor left by the client.
  bool open() const;
  // Server side: where chunks go (those written before are flushed), and that the client left
  // or the end was written.
  void attach(Sink sink);
  void detach();
  bool detached() const;

private:
  mutable std::mutex mutex_;
  Sink sink_;
  std::vector<std::string> queued_;
  bool closed_ = false, detached_ = false;
};

struct Response {
  unsigned status = 500;
  Headers headers;
  std::string body;
  std::shared_ptr<BodyStream> stream;  // set: the body is this stream (chunked), not `body`

  static Response empty(unsigned status);
  // RFC 9457 problem details with a short human readable detail.
  static Response problem(unsigned status, std::string_view detail);
};

// The one answer to a request. Copies share it: the first send() answers, later ones are
// ignored, and a request whose last copy is dropped unanswered (a request that raced a
// shutdown, a media step that never completed) is answered 503. send() may be called from
// any thread.
class Reply {
public:
  using Sender = std::function<void(Response)>;
  Reply() = default;  // answers nowhere
  explicit Reply(Sender sender) : state_(std::make_shared<State>(std::move(sender))) {}
  void send(Response response) const;
  bool answered() const { return state_ && state_->done.load(); }

private:
  struct State {
    explicit State(Sender s) : sender(std::move(s)) {}
    ~State();
    Sender sender;
    std::atomic<bool> done{false};
  };
  std::shared_ptr<State> state_;
};

const char *reason_phrase(unsigned status);

bool iequals(std::string_view a, std::string_view b);
std::string_view trim(std::string_view s);
// The items of a comma-separated list (a property value, a header), trimmed; empty ones are
// left out.
std::vector<std::string> split_list(std::string_view list);

// Media type of a Content-Type value, lower-cased, parameters dropped:
// "Application/SDP; charset=utf-8" -> "application/sdp".
std::string media_type(std::string_view content_type);

// What an If-Match header asks for (RFC 9725 §4.3.1 / WHEP §4.4).
enum class IfMatch { Missing, Any, Tags };
struct IfMatchValue {
  IfMatch kind = IfMatch::Missing;
  std::vector<std::string> tags;  // quoted entity tags as sent, e.g. "\"abc\""
};
IfMatchValue parse_if_match(const std::optional<std::string> &header);
// Strong comparison: weak tags (W/"...") never match.
bool if_match_accepts(const IfMatchValue &v, std::string_view current_etag);

// Constant-time check of "Authorization: Bearer <token>".
bool bearer_token_matches(const std::optional<std::string> &authorization,
                          std::string_view expected_token);

// CORS for every answer of an endpoint: Access-Control-Allow-Origin (all, or the request's
// Origin when it is in the comma-separated allowed list, with Vary: Origin) and the headers
// browsers may read.
void apply_cors(const Request &req, const std::string &allowed_origins, const char *exposed, Response *resp);
// The answer to a CORS preflight: no auth asked; methods allowed, headers asked for echoed.
Response preflight_response(const Request &req, const char *methods);
// 401 with WWW-Authenticate: Bearer, when a token is set and the request does not carry it.
std::optional<Response> refuse_unauthorized(const Request &req, const std::string &token);

// RFC 7231 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(int64_t unix_seconds);

}  // namespace wish
