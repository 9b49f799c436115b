// The OMA RESTful Network API for WebRTC Signaling 1.0 in front of a server's WHEP and WHIP
// endpoints (docs/oma.md). The server is an auto-accepting Terminating Participant: a session
// POSTed with a recvonly offer plays the stream its tParticipantAddress names, a sendonly one
// publishes into it. The session itself is a session of the WHEP or WHIP endpoint, which owns
// it: the front sends that endpoint the request a WHEP/WHIP client would, and keeps only the
// signalling view (offer, answer, status, the endpoint session it stands for). No trickle:
// the offer and the answer carry every candidate. Subscriptions get notifications POSTed to
// their callback URL in their format.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "endpoint.h"
#include "http.h"
#include "oma_body.h"
#include "oma_resources.h"

namespace wish {

struct OmaConfig {
  std::string path = "/webrtcsignaling/v1";  // resources live under path + "/{userId}/"
  std::string auth_token;                     // empty: no authentication
  std::string cors_allowed_origins = "*";
  std::string scheme = "http";                // of the resourceURLs
  unsigned subscription_default_s = 3600;     // duration 0
  unsigned subscription_max_s = 86400;        // no duration, and the most one may ask for
  unsigned max_subscriptions = 1000;
  unsigned failures_to_cancel = 3;            // notifications in a row that fail
  unsigned closed_kept_s = 60;                // a Closed session stays readable so long
  size_t max_body_size = 64 * 1024;
};

// A WHEP or WHIP endpoint of the same HTTP server.
struct OmaEndpoint {
  std::string path;
  bool whep = true;
  bool named_streams = true;
  std::weak_ptr<Endpoint> endpoint;
};

class OmaBackend {
public:
  virtual ~OmaBackend() = default;
  virtual std::vector<OmaEndpoint> endpoints() = 0;
  // POSTs a notification; done(true) when the callback answered 2xx. done is called once,
  // from any thread.
  virtual void notify(const std::string &url, const std::string &content_type, const std::string &body,
                      std::function<void(bool)> done) = 0;
};

class OmaFront : public std::enable_shared_from_this<OmaFront> {
public:
  using Clock = std::function<int64_t()>;  // monotonic milliseconds
  OmaFront(OmaConfig config, OmaBackend *backend, Clock clock = {});

  // Answers one request under config.path, now or later from another thread.
  void handle(const Request &req, Reply reply);
  // Sessions whose endpoint session ended become Closed (SessionEnded to subscribers),
  // Closed ones are forgotten after closed_kept_s, subscriptions expire. Call it often.
  void tick();

  size_t session_count() const;
  size_t subscription_count() const;

private:
  enum class Resource { None, Subscriptions, Subscription, Sessions, Session, Status, Offer, Answer, Update, IceStatus };
  struct Route {
    Resource resource = Resource::None;
    std::string user, id;
  };
  // One request being answered: its formats, its body, its reply, its base URL.
  struct Call {
    Request req;
    Reply reply;
    OmaFormat out = OmaFormat::Json;
    OmaFormat in = OmaFormat::Json;
    OmaNode body;
    std::string base;  // scheme://host/path, the start of every resourceURL
    void send(unsigned status, const OmaNode *root, Headers extra = {}) const;
    void refuse(const OmaError &e, Headers extra = {}) const;
  };
  struct Session {
    std::string id, user, participant, correlator, base;
    std::string offer, answer, update;  // update: the offer being answered
    bool playback = true;
    bool closed = false;
    int64_t closed_at = 0;
    std::weak_ptr<Endpoint> endpoint;
    std::string endpoint_path;   // where the endpoint session is (its Location)
    std::string endpoint_id;
    std::string authorization;   // sent on with requests to the endpoint session
    std::string reported_ice;    // PUT ice/status; what GET gives while the media side has no state
  };
  struct Subscription {
    std::string id, user, notify_url, callback_data, correlator, base;
    std::optional<OmaFormat> asked_format;
    OmaFormat format = OmaFormat::Json;
    int64_t expires = 0;
    unsigned failures = 0;
    bool sending = false;
    std::deque<std::string> queue;  // bodies waiting their turn: one notification at a time
  };

  Route route(const std::string &path) const;
  static const char *allowed(Resource r);
  void dispatch(const Route &where, const std::shared_ptr<Call> &call);
  // Resources.
  void create_session(const Route &where, const std::shared_ptr<Call> &call);
  void session_created(const std::shared_ptr<Call> &call, Session session, const Response &resp);
  void delete_session(const Route &where, const std::shared_ptr<Call> &call);
  void update_session(const Route &where, const std::shared_ptr<Call> &call);
  void update_done(const std::string &id, const std::shared_ptr<Call> &call, const std::string &offer,
                   std::optional<std::string> answer, const OmaError &error);
  void session_part(const Route &where, const std::shared_ptr<Call> &call);
  void create_subscription(const Route &where, const std::shared_ptr<Call> &call);
  void subscription_part(const Route &where, const std::shared_ptr<Call> &call);
  // Notifications to every subscription of `user`.
  void notify_user(const std::string &user, const std::string &root, const std::vector<OmaNode> &body,
                   const std::string &session_url, const std::string &offer_url = {});
  void enqueue_locked(Subscription &sub, const OmaNode &notification);
  void send_next(const std::string &sub_id);
  void cancel_locked(const std::string &sub_id, const char *reason_id);

  OmaSessionView view_locked(const Session &s) const;
  OmaSubscriptionView view_locked(const Subscription &s) const;
  std::string session_url(const Session &s) const;
  std::string subscription_url(const Subscription &s) const;
  int64_t now() const;

  const OmaConfig config_;
  OmaBackend *backend_;
  Clock clock_;
  // Guards sessions_ and subscriptions_. Never held while calling an endpoint or the
  // backend, nor while answering.
  mutable std::mutex mutex_;
  std::map<std::string, Session> sessions_;
  std::map<std::string, Subscription> subscriptions_;
};

}  // namespace wish
