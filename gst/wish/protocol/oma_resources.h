// The resources of the OMA RESTful Network API for WebRTC Signaling 1.0 as body trees
// (oma_body.h): what requests carry, read and checked; what responses and notifications
// carry, built in the canonical shape. No state: OmaFront keeps that.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "oma_body.h"

namespace wish {

// An error answer: HTTP status and the requestError body (serviceException SVCxxxx or
// policyException POLxxxx with the spec's text and the detail as its variable).
struct OmaError {
  unsigned status = 400;
  std::string message_id;  // "SVC0002", "POL0001", ...
  std::vector<std::string> variables;
};
OmaError oma_error(unsigned status, std::string message_id, std::string detail = {});
// {"requestError":{"serviceException":{...}}} (or policyException for POL ids).
OmaNode oma_request_error(const OmaError &error);
// A ServiceError as `reason` of a notification.
OmaNode oma_reason(const std::string &message_id, const std::string &detail = {});
// The spec's text of a message id ("Offer rejected due to conflict", ...).
const char *oma_message_text(const std::string &message_id);

// POST .../sessions.
struct OmaSessionRequest {
  std::string participant;  // tParticipantAddress
  std::string offer;        // SDP, CRLF line ends
  std::string correlator;   // clientCorrelator, may be empty
};
bool read_session_request(const OmaNode &root, OmaSessionRequest *out, OmaError *error);

// PUT .../offer, .../update (a wrtcsOffer) and PUT .../answer (a wrtcsAnswer).
bool read_offer(const OmaNode &root, std::string *sdp, OmaError *error);
bool read_answer(const OmaNode &root, std::string *sdp, OmaError *error);

// PUT .../status (wrtcsSessionStatus) and .../ice/status (wrtcsIceStatus): one of the
// enumeration's values, case-sensitive.
bool read_session_status(const OmaNode &root, std::string *status, OmaError *error);
bool read_ice_status(const OmaNode &root, std::string *status, OmaError *error);
// webrtcbin's / W3C's ICE connection state ("checking") as an IceStatus ("Checking").
std::string oma_ice_status(const std::string &w3c_state);

// POST .../subscriptions.
struct OmaSubscriptionRequest {
  std::string notify_url, callback_data, correlator;
  std::optional<OmaFormat> format;      // notificationFormat
  std::optional<long long> duration_s;  // absent: the longest the server allows
};
bool read_subscription_request(const OmaNode &root, OmaSubscriptionRequest *out, OmaError *error);

// The bodies the server writes.
struct OmaSessionView {
  std::string originator, participant, status, correlator, resource_url;
  std::string offer, answer, update;  // SDPs; "" when there is none
};
OmaNode oma_session_node(const OmaSessionView &view);
// wrtcsOffer / wrtcsAnswer roots, or their `offer`/`answer`/`update` elements inside another
// body (pass that name as root). `type` is from the application's view: its own SDP is
// "Local", the server's "Remote". mediaIndicator elements describe each m-line.
OmaNode oma_offer_node(const std::string &root, const std::string &sdp, const char *type);
OmaNode oma_answer_node(const std::string &root, const std::string &sdp, const char *type);

struct OmaSubscriptionView {
  std::string notify_url, callback_data, correlator, resource_url;
  std::optional<OmaFormat> format;
  long long remaining_s = 0;
};
OmaNode oma_subscription_node(const OmaSubscriptionView &view);

// A notification root with callbackData first and the links last, as the spec orders them.
// links: (rel, href) pairs.
OmaNode oma_notification(const std::string &root, const std::string &callback_data,
                         std::vector<OmaNode> body, const std::vector<std::pair<std::string, std::string>> &links);

// Which stream a tParticipantAddress names: the user part of sip:/sips: URIs
// (sip:cam1@host -> "cam1"), the path of an http(s) URL or of a path ("/whep/cam1"), else
// the text itself. Empty when nothing usable.
struct OmaAddress {
  std::string name;  // a stream name, when the address is a name
  std::string path;  // a path, when the address is a URL or a path
};
OmaAddress parse_participant_address(const std::string &address);

}  // namespace wish
