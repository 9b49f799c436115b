// The HTTP side of a WHEP (or WHIP) server endpoint: routing, status codes, auth, CORS,
// ETags and the session state machine. The endpoint owns its sessions; the media of each one
// is a MediaSession handle the MediaBackend hands back (webrtcbin in the elements, fakes in
// the tests), and dropping the handle frees the media.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "events.h"
#include "http.h"
#include "ice_servers.h"
#include "layers.h"
#include "redirect_loads.h"
#include "sdp.h"
#include "sdpfrag.h"

namespace wish {

enum class CounterOfferMode { Never, WhenNeeded, Always };
enum class EndpointKind { Whep, Whip };

struct EndpointConfig {
  EndpointKind kind = EndpointKind::Whep;
  std::string path = "/whep";           // sessions live under path + "/sessions/"
  bool named_streams = true;            // path + "/<name>" is the endpoint of stream <name>
  std::string auth_token;               // empty: no authentication
  std::string cors_allowed_origins = "*";  // "*" or comma-separated origins
  std::vector<IceServer> ice_servers;   // advertised as Link rel="ice-server"
  unsigned max_sessions = 0;            // 0: unlimited
  // At max_sessions, new clients are sent (307) to these endpoints in turn instead of 503; a
  // named stream's name is appended ("<url>/<name>"). Sessions are never redirected.
  std::vector<std::string> redirect_to;
  // Set: the least loaded of redirect_to first (by what a poller reports) instead of in turn.
  std::shared_ptr<RedirectLoads> redirect_loads;
  unsigned max_pending_per_client = 0;  // sessions of one client address not connected yet; 0: unlimited
  unsigned max_media_sections = 16;     // m-lines an offer may have
  unsigned max_candidates = 64;         // candidates an offer or a PATCH may carry
  CounterOfferMode counter_offer = CounterOfferMode::WhenNeeded;
  unsigned counter_offer_validity_s = 30;
  unsigned connect_timeout_ms = 10000;  // a session that has not connected by then is removed
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

// The media of one session. Its owner is the endpoint's session; destroying it frees the
// media (without blocking: the media side tears down on its own thread). Callbacks may be
// completed from any thread, at most once.
class MediaSession {
public:
  virtual ~MediaSession() = default;
  virtual void add_candidates(const SdpFrag &frag) = 0;
  virtual void restart_ice(const SdpFrag &frag, MediaCallback done) = 0;
  // The player's answer to a counter-offer.
  virtual void apply_answer(const std::string &answer, MediaCallback done) = 0;
  // The ICE connection state as W3C names it ("new", "checking", "connected", ...); "" when
  // not known.
  virtual std::string ice_connection_state() const { return ""; }
  // The video layers the viewer may choose from, largest first; none: no layer selection.
  virtual std::vector<VideoLayer> layers() const { return {}; }
  // Shows the viewer layers()[layer], or what the server chooses (-1).
  virtual void select_layer(int layer, MediaCallback done) { done(MediaResult::failure(404, "no layers")); }
  // Why the session ends, set by the endpoint just before it drops the handle: "closed"
  // (DELETE), "not-connected", "expired" (counter-offer), "stopped", or what the media
  // side reported through SessionEvents::ended.
  std::string end_reason = "closed";
};

class Endpoint;

// What the media side reports about one session. Safe from any thread, also after the
// session or the endpoint are gone (then it does nothing).
class SessionEvents {
public:
  SessionEvents(std::weak_ptr<Endpoint> endpoint, std::string id) : endpoint_(std::move(endpoint)), id_(std::move(id)) {}
  const std::string &id() const { return id_; }
  // Media flows: the connect deadline no longer applies.
  void connected();
  // The media ended by itself (ICE failed, silence, replaced): the endpoint drops the session.
  void ended(const std::string &reason);

private:
  std::weak_ptr<Endpoint> endpoint_;
  std::string id_;
};

struct SessionRequest {
  std::string id;
  std::string stream;  // "" for the endpoint's own stream, else the name after the path
  std::string offer;   // the client's SDP offer (empty for a counter-offer)
  SessionDescription parsed;
  bool counter_offer = false;  // make our own offer (WHEP 406) instead of answering
};
// The result and, on success, the media handle the endpoint keeps for the session.
using SessionCallback = std::function<void(MediaResult, std::unique_ptr<MediaSession>)>;

// Whether a new session on a stream can be taken now.
struct Admission {
  unsigned status = 0;  // 0: yes; 404 no such stream; 409 nothing published / live already; 503
  std::string reason;
};

// Media side of the sessions.
class MediaBackend {
public:
  virtual ~MediaBackend() = default;
  virtual Admission admit(const std::string &stream) = 0;
  // Whether an answer to this offer could carry the stream (for a player: every kind of media
  // the stream has and the offer receives); false with a short reason in *why.
  virtual bool can_answer(const std::string &stream, const SessionDescription &offer, std::string *why) = 0;
  // Whether the server is over its load limit now: new sessions go elsewhere (307 to
  // redirect_to) or are refused (503) as at max_sessions.
  virtual bool overloaded() { return false; }
  // Creates the session's media; done is called once, from any thread.
  virtual void create_session(const SessionRequest &request, std::shared_ptr<SessionEvents> events,
                              SessionCallback done) = 0;
};

enum class SessionState { Negotiating, CounterOffered, Active };
const char *session_state_name(SessionState s);

struct SessionInfo {
  std::string id;
  std::string url;
  std::string etag;
  std::string stream;
  SessionState state;
  bool connected;
  int64_t created_ms;  // unix milliseconds
};

// Always held by a shared_ptr (make_shared): media callbacks keep only a weak reference.
class Endpoint : public std::enable_shared_from_this<Endpoint> {
public:
  using Clock = std::function<int64_t()>;  // unix milliseconds

  Endpoint(EndpointConfig config, MediaBackend *backend, Clock clock = {});
  ~Endpoint();

  // Handles one request; reply is answered exactly once, possibly later and from another
  // thread (when media work is involved).
  void handle(const Request &req, Reply reply);

  void set_config(EndpointConfig config);
  EndpointConfig config() const;

  // Drops counter-offers nobody answered in time and sessions that never connected; returns
  // the ids it removed.
  std::vector<std::string> expire_stale();
  // Drops every session (element shutting down).
  void close_all(const std::string &reason = "stopped");

  std::vector<SessionInfo> sessions() const;
  size_t session_count() const;
  std::string session_url(const std::string &id) const;
  bool has_session(const std::string &id) const;
  // Why a session that is gone ended ("closed", "not-connected", what the media reported);
  // "" when unknown (the last few hundred ends are remembered).
  std::string ended_reason(const std::string &id) const;
  // The session's ICE connection state (MediaSession::ice_connection_state); "" when unknown.
  std::string ice_connection_state(const std::string &id) const;
  // Server-sent events (WHEP): tells every subscriber of `reconnect` to move to `url`; with ""
  // to the redirect_to endpoints in turn (the stream's name appended), or without those to
  // this endpoint again (its path). How many were told.
  size_t announce_reconnect(const std::string &url);
  // Ends the event streams, waiting up to wait_ms for them to be written out (a graceful stop
  // lets the reconnect events reach the players first).
  bool close_event_streams(int64_t wait_ms);
  // Sessions answered (201) and ended by reason since the endpoint started, for the metrics.
  struct Counters {
    uint64_t created = 0;
    std::map<std::string, uint64_t> ended;
  };
  Counters counters() const;

private:
  friend class SessionEvents;
  struct Session {
    std::string etag;
    std::string client;  // the address that created it
    std::string stream;
    SessionState state = SessionState::Negotiating;
    int64_t created = 0;
    int64_t deadline = 0;          // counter-offer expiry
    int64_t connect_deadline = 0;  // 0 while the answer is not out yet
    bool connected = false;
    bool restarting = false;
    int video_mline = -1;  // the offer's first video m-line (the layer extension's mediaId)
    // Null until created. Shared only so a call into it can run outside the lock while a
    // DELETE drops the session: the media goes when the last of those calls returns.
    std::shared_ptr<MediaSession> media;
  };
  struct Route {
    bool is_endpoint = false, is_session = false;
    std::string stream, session;
    bool is_events = false;  // <session>/sse, or <session>/sse/<subscription> when subscription is set
    std::string subscription;
    bool is_layer = false;  // <session>/layer
  };
  static const char *extension_methods(const Route &where);

  Route route(const std::string &path) const;
  Response decorate(const Request &req, Response resp) const;
  void handle_endpoint(const Request &req, const std::string &stream, Reply reply);
  void handle_session(const Request &req, const std::string &id, Reply reply);
  void handle_post(const Request &req, const std::string &stream, Reply reply);
  void handle_patch(const Request &req, const std::string &id, Reply reply);
  void handle_events(const Request &req, const Route &where, Reply reply);
  void handle_layer(const Request &req, const std::string &id, Reply reply);
  // The layers event of a session ("" when it has no layers).
  std::string layers_event(const std::string &id) const;
  // The sessions of `stream` that have their answer, for the viewercount event.
  void count_viewers_locked(const std::string &stream);
  // Asks the backend whether each watched stream is fed, for the active/inactive events.
  void refresh_events();
  void finish_creation(const std::string &id, bool counter_offer, MediaResult result,
                       std::unique_ptr<MediaSession> media, Reply reply);
  // Removes the session; its media handle is returned for the caller to drop outside the lock.
  std::shared_ptr<MediaSession> take_locked(const std::string &id, const std::string &reason);
  void remember_end_locked(const std::string &id, const std::string &reason);  // for ended_reason()
  void on_connected(const std::string &id);
  void on_ended(const std::string &id, const std::string &reason);
  std::shared_ptr<MediaSession> media_of(const std::string &id) const;
  int64_t now() const;

  // Guards config_, sessions_ and the record of ended sessions. Never held while calling the backend or a media handle,
  // nor while answering a request.
  mutable std::mutex mutex_;
  EndpointConfig config_;
  MediaBackend *backend_;
  Clock clock_;
  std::map<std::string, Session> sessions_;
  size_t next_redirect_ = 0;
  Counters counters_;  // the redirect_to entry the next redirected client gets
  std::map<std::string, std::string> ended_;  // id -> reason, the last kEndedKept ends
  std::deque<std::string> ended_order_;
  // Event subscriptions; its own lock, taken after mutex_ when both are held.
  EventHub events_;
};

}  // namespace wish
