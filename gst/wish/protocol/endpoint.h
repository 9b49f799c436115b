// The HTTP side of a WHEP (or WHIP) server endpoint: routing, status codes, auth, CORS,
// ETags and the session state machine. Media work is delegated to a MediaBackend, which the
// elements implement with webrtcbin and the tests with fakes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "http.h"
#include "ice_servers.h"
#include "sdp.h"
#include "sdpfrag.h"

namespace wish {

enum class CounterOfferMode { Never, WhenNeeded, Always };
enum class EndpointKind { Whep, Whip };

struct EndpointConfig {
  EndpointKind kind = EndpointKind::Whep;
  std::string path = "/whep";           // sessions live under path + "/sessions/"
  std::string auth_token;               // empty: no authentication
  std::string cors_allowed_origins = "*";  // "*" or comma-separated origins
  std::vector<IceServer> ice_servers;   // advertised as Link rel="ice-server"
  unsigned max_sessions = 0;            // 0: unlimited
  CounterOfferMode counter_offer = CounterOfferMode::WhenNeeded;
  unsigned counter_offer_validity_s = 30;
  size_t max_body_size = 64 * 1024;
  unsigned retry_after_s = 1;           // for 409 and 503
  std::string player_page;              // HTML for GET with Accept: text/html; "" for none
};

// Outcome of an asynchronous media operation.
struct MediaResult {
  bool ok = false;
  unsigned status = 500;  // on failure: the HTTP status to answer with
  std::string error;      // on failure: a short reason for the problem body
  std::string body;       // SDP answer, SDP offer, or the server's sdpfrag after a restart

  static MediaResult success(std::string body) { return {true, 200, "", std::move(body)}; }
  static MediaResult failure(unsigned status, std::string error) {
    return {false, status, std::move(error), ""};
  }
};
using MediaCallback = std::function<void(MediaResult)>;

// Media side of the sessions. Callbacks may be completed from any thread, at most once.
class MediaBackend {
public:
  virtual ~MediaBackend() = default;
  // 0 to accept a new session now, or 409 / 503 (answered with Retry-After).
  virtual unsigned admission_status() = 0;
  // Whether an answer to this offer could send at least one stream.
  virtual bool can_answer(const SessionDescription &offer) = 0;
  virtual void answer_offer(const std::string &id, const std::string &offer,
                            const SessionDescription &parsed, MediaCallback done) = 0;
  virtual void make_offer(const std::string &id, MediaCallback done) = 0;
  virtual void apply_answer(const std::string &id, const std::string &answer,
                            const SessionDescription &parsed, MediaCallback done) = 0;
  virtual void add_candidates(const std::string &id, const SdpFrag &frag) = 0;
  virtual void restart_ice(const std::string &id, const SdpFrag &frag, MediaCallback done) = 0;
  virtual void close(const std::string &id) = 0;
};

enum class SessionState { Negotiating, CounterOffered, Active };
const char *session_state_name(SessionState s);

struct SessionInfo {
  std::string id;
  std::string url;
  std::string etag;
  SessionState state;
  int64_t created;  // unix seconds
};

class Endpoint {
public:
  using Reply = std::function<void(Response)>;
  using Clock = std::function<int64_t()>;  // unix seconds

  Endpoint(EndpointConfig config, MediaBackend *backend, Clock clock = {});
  ~Endpoint();

  // Handles one request; reply is called exactly once, possibly later and from another
  // thread (when media work is involved).
  void handle(const Request &req, Reply reply);

  void set_config(EndpointConfig config);
  EndpointConfig config() const;

  // The backend saw a session end on its own (ICE failed, DTLS closed).
  void session_gone(const std::string &id);
  // Drops counter-offers nobody answered in time; returns the ids it closed.
  std::vector<std::string> expire_stale();
  // Closes every session (element shutting down).
  void close_all();

  std::vector<SessionInfo> sessions() const;
  size_t session_count() const;
  std::string session_url(const std::string &id) const;

private:
  struct Session {
    std::string etag;
    SessionState state = SessionState::Negotiating;
    int64_t created = 0;
    int64_t deadline = 0;  // counter-offer expiry
    bool restarting = false;
  };

  Response decorate(const Request &req, Response resp) const;
  bool origin_allowed(const std::string &origin) const;
  void handle_endpoint(const Request &req, Reply reply);
  void handle_session(const Request &req, const std::string &id, Reply reply);
  void handle_post(const Request &req, Reply reply);
  void handle_patch(const Request &req, const std::string &id, Reply reply);
  void finish_creation(const std::string &id, bool counter_offer, MediaResult result, Reply reply);
  int64_t now() const;

  mutable std::mutex mutex_;  // guards config_ and sessions_; never held while calling backend_
  EndpointConfig config_;
  MediaBackend *backend_;
  Clock clock_;
  std::map<std::string, Session> sessions_;
};

}  // namespace wish
