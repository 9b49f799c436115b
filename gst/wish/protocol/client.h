// Client-side WHIP/WHEP rules: what to do with each response, URL resolution, Retry-After,
// backoff and trickle candidate buffering. Plain C++ so the rules are unit tested directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http.h"
#include "ice_servers.h"
#include "sdpfrag.h"

namespace wish {

// RFC 3986 §5.2 reference resolution (enough of it for Location headers).
std::string resolve_url(std::string_view base, std::string_view reference);

// Retry-After as seconds from now: delta-seconds or an HTTP-date. nullopt when absent/invalid.
std::optional<int64_t> parse_retry_after(const std::optional<std::string> &value, int64_t now_unix);
// Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT").
std::optional<int64_t> parse_http_date(std::string_view date);

// Exponential backoff: first delay, doubling up to a maximum; a server's Retry-After replaces
// the computed delay (kept between kMinRetryAfter and the maximum).
class Backoff {
public:
  static constexpr double kMinRetryAfter = 0.2;  // "Retry-After: 0" must not make a busy loop
  Backoff(double initial_s, double max_s) : initial_(initial_s), max_(max_s) {}
  double next(std::optional<int64_t> retry_after = std::nullopt);
  void reset() { attempt_ = 0; }
  unsigned attempts() const { return attempt_; }

private:
  double initial_, max_;
  unsigned attempt_ = 0;
};

// What a client does with the response to its POST.
enum class PostOutcome {
  Answer,        // 201 with an SDP answer
  CounterOffer,  // 406 with an SDP offer from the server
  Redirect,      // 307/308 with a Location: POST again there
  RetryLater,    // 409/503: wait Retry-After (or backoff) and POST again
  Fail,          // anything else: an element error
};

struct PostDecision {
  PostOutcome outcome = PostOutcome::Fail;
  std::string location;           // resolved against the URL the POST went to
  std::string etag;               // "" when the server sent none
  std::vector<IceServer> ice_servers;
  std::optional<int64_t> retry_after;
  std::string error;              // for Fail: status, reason and the server's detail
};

PostDecision decide_post(const std::string &request_url, const Response &resp, int64_t now_unix);

// What kind of failure a client reports for an HTTP status it cannot go on with (0: no
// answer at all), for the matching GStreamer resource error code.
enum class ClientFailure { NotAuthorized, NotFound, Busy, Unreachable, Refused, Other };
ClientFailure client_failure(unsigned http_status);

// Whether a PATCH status means the server does not do trickle/restart at all (the client
// carries on without it) rather than a transient failure.
bool patch_unsupported(unsigned status);

// Candidates gathered before the session URL and ETag are known are kept and sent in one
// PATCH afterwards; after an ICE restart they are kept again until the new ETag arrives.
class TrickleBuffer {
public:
  void add(const std::string &mid, const std::string &candidate);  // "candidate:..." value
  void end_of_candidates() { ended_ = true; }
  // The ETag and credentials of the ICE session candidates belong to; flushes possible after.
  void set_session(std::string etag, std::string ufrag, std::string pwd);
  // Starts a new ICE generation (restart): later candidates wait for the new ETag.
  void restart(std::string ufrag, std::string pwd);
  bool ready() const { return !etag_.empty(); }
  // A PATCH body with what is pending (nullopt when nothing to send or not ready), and the
  // If-Match it needs.
  std::optional<std::string> take(std::string *if_match);
  unsigned generation() const { return generation_; }

private:
  std::string etag_, ufrag_, pwd_;
  std::vector<std::pair<std::string, std::string>> pending_;  // mid, candidate
  bool ended_ = false, end_sent_ = false;
  unsigned generation_ = 0;
};

}  // namespace wish
