// A player's subscription to its session's server-sent events (the WHEP extension): POST the
// wanted names to the URL the 201 linked, GET the event stream and hand each event over as it
// comes. Lives on the client's thread; dropping it cancels everything (the server ends the
// subscription with the session).
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

#include <functional>
#include <string>
#include <vector>

#include "gstptr.h"
#include "protocol/events.h"

namespace wish {

class EventSubscriber {
public:
  using OnEvent = std::function<void(const ServerEvent &event)>;
  using OnEnd = std::function<void(const std::string &why)>;
  // link: the linked URL (absolute); advertised: the Link's events parameter ("" when absent);
  // wanted: the names the element asks for. Nothing happens until start(). The callbacks run
  // on the client's thread and must not drop the subscriber (defer that).
  EventSubscriber(std::string link, const std::string &advertised, const std::vector<std::string> &wanted,
                  std::string auth_token, OnEvent on_event, OnEnd on_end);
  ~EventSubscriber();
  // The names that will be asked for (wanted and advertised); empty: no subscription.
  const std::vector<std::string> &names() const { return names_; }
  void start();

private:
  void on_subscribed(Response resp, std::string error);
  void on_stream(GInputStream *stream, GError *error);
  void read_more();
  void end(const std::string &why);

  std::string link_, token_, stream_url_;
  std::vector<std::string> names_;
  OnEvent on_event_;
  OnEnd on_end_;
  SoupSession *soup_ = nullptr;  // its own: no I/O timeout, the stream may be quiet for long
  GCancellable *cancellable_ = nullptr;
  GInputStream *body_ = nullptr;
  EventStreamParser parser_;
  bool ended_ = false;
};

}  // namespace wish
