// One HTTP request of the elements' own (client sessions, OMA notifications) through a
// SoupSession, redirects not followed: the caller decides what a 3xx means.
#pragma once

#include <libsoup/soup.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "protocol/http.h"

namespace wish {

// Bounds of one request, beside the session's own timeout (0: none).
struct RequestLimits {
  // The whole request: no answer within this is a transport error ("no answer within ...").
  guint answer_ms = 0;
  // Until the request is on the wire (connection made, headers written): a server whose
  // network path is gone is given up quickly, a slow one that has the request is waited for.
  guint connect_ms = 0;
  // A connection of its own, not a kept-alive one that may lead into a path that is gone.
  bool new_connection = false;
};

// The response (status 0 and a reason when the request could not be made or answered) on the
// session's thread; nothing when the request was cancelled. A body goes with a content type.
using RequestCallback = std::function<void(Response resp, std::string transport_error)>;
void send_request(SoupSession *session, GCancellable *cancellable, const char *method, const std::string &url,
                  const std::vector<std::pair<std::string, std::string>> &headers, const std::string &content_type,
                  const std::string &body, RequestCallback done, const RequestLimits &limits = {});

}  // namespace wish
