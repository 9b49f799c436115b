// The WHEP server-sent events extension (urn:ietf:params:whep:ext:core:server-sent-events):
// what a player subscribes to, the event streams of an endpoint's sessions with the state they
// report, and the text/event-stream format both ways. Plain C++ (json-glib for the bodies).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "http.h"

namespace wish {

inline constexpr char kEventsRel[] = "urn:ietf:params:whep:ext:core:server-sent-events";

// The events the server sends, in the order its Link header names them; layers only to
// viewers that may choose layers.
const std::vector<std::string> &server_event_names(bool with_layers = false);

// A subscription body: a JSON array of event names, each of them in `supported`. False with a
// short reason in *error (the answer is a 400 then, and nothing is created).
bool parse_event_subscription(const std::string &body, const std::vector<std::string> &supported,
                              std::vector<std::string> *names, std::string *error);
// The body a player POSTs: the JSON array of names.
std::string event_subscription_body(const std::vector<std::string> &names);
// One event as text/event-stream: "event: <type>\ndata: <json on one line>\n\n".
std::string format_event(const std::string &type, const std::string &json);

struct ServerEvent {
  std::string type = "message";
  std::string data;
};
// The url member of a reconnect event's data, "" when there is none.
std::string reconnect_url(const std::string &data);
// The viewercount member of a viewercount event's data, -1 when there is none.
int64_t viewer_count(const std::string &data);

// Reads a text/event-stream as it arrives, in chunks cut anywhere: LF, CRLF or CR line ends,
// comments, several data lines joined by "\n". An event longer than kMaxEventSize is dropped
// (a hostile server cannot make the player keep it).
class EventStreamParser {
public:
  static constexpr size_t kMaxEventSize = 64 * 1024;
  std::vector<ServerEvent> feed(std::string_view bytes);

private:
  void line(std::vector<ServerEvent> *out);
  std::string line_, type_, data_;
  bool has_data_ = false, after_cr_ = false, too_long_ = false;
};

// The event subscriptions of one endpoint's sessions, their open streams and the state of the
// streams they watch. Safe from any thread. Lock order: its mutex, then each BodyStream's.
class EventHub {
public:
  static constexpr size_t kMaxPerSession = 8;
  static constexpr int64_t kViewerCountIntervalMs = 1000;

  // A new subscription of `session` (a viewer of `stream`) to `names`; its id, "" when the
  // session has kMaxPerSession already.
  std::string subscribe(const std::string &session, const std::string &stream, std::vector<std::string> names);
  bool has(const std::string &session, const std::string &sub) const;
  // Whether the subscription asked for `type` (false when unknown).
  bool wants(const std::string &session, const std::string &sub, const std::string &type) const;
  // The event stream of a subscription; a later call replaces the stream before (the client
  // reconnected). It opens with the current state: active (or inactive after a publication
  // ended) and the viewer count. Null when the subscription is unknown.
  std::shared_ptr<BodyStream> open(const std::string &session, const std::string &sub);
  // A stream of every event the server sends, for players that GET the Link URL itself.
  std::shared_ptr<BodyStream> open_all(const std::string &session, const std::string &stream);
  bool unsubscribe(const std::string &session, const std::string &sub);
  // The session ended: its streams end, its subscriptions go.
  void drop_session(const std::string &session);

  // Whether something feeds `stream` now: active / inactive go out on changes.
  void set_active(const std::string &stream, bool active);
  // How many viewers `stream` has: viewercount goes out on changes, at most once per interval.
  void set_viewers(const std::string &stream, size_t viewers, int64_t now_ms);
  // Sends viewer counts the interval held back.
  void flush(int64_t now_ms);
  // The streams someone is subscribed about.
  std::vector<std::string> watched_streams() const;
  // Tells every subscriber of `reconnect` to move to url_for(its stream) ("": the endpoint
  // again); how many were told.
  size_t announce_reconnect(const std::function<std::string(const std::string &stream)> &url_for);
  // Ends every stream and forgets every subscription; true when every stream was written to
  // its end (or its client left) within `wait_ms`.
  bool close_all(int64_t wait_ms);

private:
  struct Subscription {
    std::string session, stream;
    std::set<std::string> names;  // empty: every event
    std::shared_ptr<BodyStream> out;
    bool wants(const std::string &type) const { return names.empty() || names.count(type); }
  };
  struct StreamState {
    int active = -1;  // -1: not known yet
    bool was_active = false;
    size_t viewers = 0;
    size_t sent_viewers = static_cast<size_t>(-1);
    int64_t sent_at = 0;
  };
  void send_locked(const std::string &stream, const std::string &type, const std::string &json);
  void greet_locked(Subscription &s);
  void send_viewers_locked(const std::string &stream, StreamState &st, int64_t now_ms);

  mutable std::mutex mutex_;
  std::map<std::string, Subscription> subs_;  // by session + "/" + subscription id
  std::map<std::string, StreamState> streams_;
};

}  // namespace wish
