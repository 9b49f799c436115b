#include "oma_resources.h"

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <map>

#include "sdp.h"

namespace wish {

namespace {

bool fail(OmaError *error, unsigned status, const char *id, std::string detail) {
  *error = oma_error(status, id, std::move(detail));
  return false;
}

// The root must have the expected name (a prefix was already dropped by the reader).
bool check_root(const OmaNode &root, const char *expected, OmaError *error) {
  if (root.name == expected) return true;
  return fail(error, 400, "SVC0002", std::string("body must be a ") + expected + ", not " + root.name);
}

const char *direction_value(Direction d) {
  switch (d) {
    case Direction::SendOnly: return "SendOnly";
    case Direction::RecvOnly: return "RecvOnly";
    case Direction::Inactive: return "Inactive";
    case Direction::SendRecv: break;
  }
  return "SendRecv";
}

const char *media_type_value(const std::string &kind) {
  if (kind == "audio") return "Audio";
  if (kind == "video") return "Video";
  return "Data";
}

// The a=rtpmap values of each m-section as written, by payload type: an indicator's encoding
// is that value ("opus/48000/2"), which the parsed SDP has upper-cased.
std::vector<std::map<int, std::string>> written_rtpmaps(const std::string &sdp) {
  std::vector<std::map<int, std::string>> out;
  for (size_t at = 0; at < sdp.size();) {
    size_t end = sdp.find('\n', at);
    if (end == std::string::npos) end = sdp.size();
    std::string line = sdp.substr(at, end - at);
    at = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.compare(0, 2, "m=") == 0) out.emplace_back();
    size_t space = line.find(' ');
    if (out.empty() || line.compare(0, 9, "a=rtpmap:") != 0 || space == std::string::npos) continue;
    out.back()[atoi(line.c_str() + 9)] = line.substr(space + 1);
  }
  return out;
}

void add_media_indicators(OmaNode *parent, const std::string &sdp) {
  std::string error;
  auto parsed = parse_sdp(sdp, &error);
  if (!parsed) return;
  auto written = written_rtpmaps(sdp);
  for (size_t i = 0; i < parsed->media.size(); i++) {
    const MediaSection &m = parsed->media[i];
    OmaNode &mi = parent->add("mediaIndicator");
    mi.list = true;
    mi.add("type", media_type_value(m.kind));
    mi.add("entryIdx", std::to_string(i));
    if (!m.mid.empty()) mi.add("entryId", m.mid);
    if (!m.msid_stream.empty() && !m.msid_track.empty()) {
      mi.add("streamId", m.msid_stream);
      mi.add("trackId", m.msid_track);
    }
    if (m.kind != "audio" && m.kind != "video") continue;
    for (int pt : m.formats) {
      OmaNode &p = mi.add("payload");
      p.list = true;
      p.add("payloadType", std::to_string(pt));
      auto it = m.rtpmap.find(pt);
      if (it == m.rtpmap.end()) continue;
      std::string encoding = it->second.encoding + "/" + std::to_string(it->second.clock_rate);
      if (it->second.channels) encoding += "/" + std::to_string(it->second.channels);
      if (i < written.size() && written[i].count(pt)) encoding = written[i][pt];
      p.add("encoding", encoding);
      if (!it->second.fmtp.empty()) p.add("formatParams", it->second.fmtp);
    }
    mi.add("direction", direction_value(m.direction));
  }
}

bool read_enum(const OmaNode &root, const char *root_name, const std::vector<const char *> &values, std::string *out,
               OmaError *error) {
  if (!check_root(root, root_name, error)) return false;
  auto v = root.value("status");
  if (!v) return fail(error, 400, "SVC0002", std::string(root_name) + ".status is missing");
  for (const char *allowed : values)
    if (*v == allowed) {
      *out = *v;
      return true;
    }
  std::string list;
  for (const char *allowed : values) list += std::string(list.empty() ? "" : ", ") + allowed;
  return fail(error, 400, "SVC0002", std::string(root_name) + ".status must be one of " + list);
}

}  // namespace

const char *oma_message_text(const std::string &id) {
  if (id == "SVC0001") return "A service error occurred. Error code is %1";
  if (id == "SVC0002") return "Invalid input value for message part %1";
  if (id == "SVC0004") return "No valid addresses provided in message part %1";
  if (id == "SVC1007") return "Offer rejected due to conflict";
  if (id == "SVC2001") return "No server resources available to process the request";
  if (id == "SVC2003") return "Invalid access token";
  if (id == "POL0001") return "A policy error occurred. Error code is %1";
  return "A service error occurred. Error code is %1";
}

OmaError oma_error(unsigned status, std::string message_id, std::string detail) {
  OmaError e;
  e.status = status;
  e.message_id = std::move(message_id);
  if (!detail.empty()) e.variables.push_back(std::move(detail));
  return e;
}

OmaNode oma_reason(const std::string &message_id, const std::string &detail) {
  OmaNode reason("reason");
  reason.add("messageId", message_id);
  reason.add("text", oma_message_text(message_id));
  if (!detail.empty()) reason.add("variables", detail).list = true;
  return reason;
}

OmaNode oma_request_error(const OmaError &error) {
  OmaNode root("requestError");
  bool policy = error.message_id.compare(0, 3, "POL") == 0;
  OmaNode &ex = root.add(policy ? "policyException" : "serviceException");
  ex.add("messageId", error.message_id);
  ex.add("text", oma_message_text(error.message_id));
  for (const auto &v : error.variables) ex.add("variables", v).list = true;
  return root;
}

bool read_session_request(const OmaNode &root, OmaSessionRequest *out, OmaError *error) {
  if (!check_root(root, "wrtcsSession", error)) return false;
  auto participant = root.value("tParticipantAddress");
  if (!participant || participant->empty())
    return fail(error, 400, "SVC0002", "wrtcsSession.tParticipantAddress is missing");
  for (const char *forbidden : {"answer", "update"})
    if (root.child(forbidden))
      return fail(error, 400, "SVC0002", std::string("wrtcsSession.") + forbidden + " must not be in a request");
  const OmaNode *offer = root.child("offer");
  if (!offer) return fail(error, 400, "SVC0002", "wrtcsSession.offer is missing");
  std::string why;
  if (!oma_read_sdp(*offer, &out->offer, &why)) return fail(error, 400, "SVC0002", "wrtcsSession.offer: " + why);
  out->participant = *participant;
  out->correlator = root.value("clientCorrelator").value_or("");
  return true;
}

bool read_offer(const OmaNode &root, std::string *sdp, OmaError *error) {
  if (!check_root(root, "wrtcsOffer", error)) return false;
  std::string why;
  if (!oma_read_sdp(root, sdp, &why)) return fail(error, 400, "SVC0002", "wrtcsOffer: " + why);
  return true;
}

bool read_answer(const OmaNode &root, std::string *sdp, OmaError *error) {
  if (!check_root(root, "wrtcsAnswer", error)) return false;
  auto provisional = oma_bool(root, "isProvisional");
  if (!provisional) return fail(error, 400, "SVC0002", "wrtcsAnswer.isProvisional is missing or not a boolean");
  if (*provisional) return fail(error, 400, "SVC0002", "wrtcsAnswer.isProvisional: applications send final answers");
  std::string why;
  if (!oma_read_sdp(root, sdp, &why)) return fail(error, 400, "SVC0002", "wrtcsAnswer: " + why);
  return true;
}

bool read_session_status(const OmaNode &root, std::string *status, OmaError *error) {
  return read_enum(root, "wrtcsSessionStatus", {"Initiated", "Ringing", "Connected", "Closed"}, status, error);
}

bool read_ice_status(const OmaNode &root, std::string *status, OmaError *error) {
  return read_enum(root, "wrtcsIceStatus",
                   {"New", "Checking", "Connected", "Completed", "Failed", "Disconnected", "Closed"}, status, error);
}

std::string oma_ice_status(const std::string &w3c) {
  if (w3c.empty()) return "New";
  std::string s = w3c;
  s[0] = static_cast<char>(toupper(static_cast<unsigned char>(s[0])));
  for (const char *known : {"New", "Checking", "Connected", "Completed", "Failed", "Disconnected", "Closed"})
    if (s == known) return s;
  return "New";
}

bool read_subscription_request(const OmaNode &root, OmaSubscriptionRequest *out, OmaError *error) {
  if (!check_root(root, "wrtcsNotificationSubscription", error)) return false;
  const OmaNode *callback = root.child("callbackReference");
  if (!callback) return fail(error, 400, "SVC0002", "callbackReference is missing");
  auto url = callback->value("notifyURL");
  if (!url || (url->compare(0, 7, "http://") != 0 && url->compare(0, 8, "https://") != 0) || url->size() > 2048)
    return fail(error, 400, "SVC0002", "callbackReference.notifyURL must be an http or https URL");
  out->notify_url = *url;
  out->callback_data = callback->value("callbackData").value_or("");
  if (auto f = callback->value("notificationFormat")) {
    if (*f == "JSON" || *f == "json")
      out->format = OmaFormat::Json;
    else if (*f == "XML" || *f == "xml")
      out->format = OmaFormat::Xml;
    else
      return fail(error, 400, "SVC0002", "callbackReference.notificationFormat must be XML or JSON");
  }
  if (auto d = root.value("duration")) {
    char *end = nullptr;
    long long v = strtoll(d->c_str(), &end, 10);
    if (d->empty() || *end || v < 0 || v > 100LL * 365 * 86400)
      return fail(error, 400, "SVC0002", "duration must be a number of seconds");
    out->duration_s = v;
  }
  if (root.child("resourceURL")) return fail(error, 400, "SVC0002", "resourceURL must not be in a request");
  out->correlator = root.value("clientCorrelator").value_or("");
  return true;
}

OmaNode oma_offer_node(const std::string &root, const std::string &sdp, const char *type) {
  OmaNode n(root);
  n.add("type", type);
  n.add("sdp", sdp).cdata = true;
  add_media_indicators(&n, sdp);
  return n;
}

OmaNode oma_answer_node(const std::string &root, const std::string &sdp, const char *type) {
  OmaNode n(root);
  n.add("type", type);
  n.add("isProvisional", "false");
  n.add("sdp", sdp).cdata = true;
  add_media_indicators(&n, sdp);
  return n;
}

OmaNode oma_session_node(const OmaSessionView &v) {
  OmaNode n("wrtcsSession");
  n.add("originatorAddress", v.originator);
  n.add("tParticipantAddress", v.participant);
  n.add("status", v.status);
  if (!v.offer.empty()) n.children.push_back(oma_offer_node("offer", v.offer, "Local"));
  if (!v.answer.empty()) n.children.push_back(oma_answer_node("answer", v.answer, "Remote"));
  if (!v.update.empty()) n.children.push_back(oma_offer_node("update", v.update, "Local"));
  if (!v.correlator.empty()) n.add("clientCorrelator", v.correlator);
  n.add("resourceURL", v.resource_url);
  return n;
}

OmaNode oma_subscription_node(const OmaSubscriptionView &v) {
  OmaNode n("wrtcsNotificationSubscription");
  OmaNode &cb = n.add("callbackReference");
  cb.add("notifyURL", v.notify_url);
  if (!v.callback_data.empty()) cb.add("callbackData", v.callback_data);
  if (v.format) cb.add("notificationFormat", *v.format == OmaFormat::Xml ? "XML" : "JSON");
  n.add("duration", std::to_string(v.remaining_s));
  if (!v.correlator.empty()) n.add("clientCorrelator", v.correlator);
  n.add("resourceURL", v.resource_url);
  return n;
}

OmaNode oma_notification(const std::string &root, const std::string &callback_data, std::vector<OmaNode> body,
                         const std::vector<std::pair<std::string, std::string>> &links) {
  OmaNode n(root);
  if (!callback_data.empty()) n.add("callbackData", callback_data);
  for (auto &b : body) n.children.push_back(std::move(b));
  for (const auto &l : links) {
    OmaNode &link = n.add("link");
    link.list = true;
    link.add("rel", l.first).attribute = true;
    link.add("href", l.second).attribute = true;
  }
  return n;
}

OmaAddress parse_participant_address(const std::string &address) {
  OmaAddress a;
  std::string s = address;
  auto starts = [&s](const char *p) { return s.compare(0, strlen(p), p) == 0; };
  if (starts("sip:") || starts("sips:")) {
    std::string user = s.substr(s.find(':') + 1);
    size_t at = user.find('@');
    if (at != std::string::npos) user = user.substr(0, at);
    size_t params = user.find(';');  // sip:cam1;transport=...@ is not usual, but cut params off
    if (params != std::string::npos) user = user.substr(0, params);
    std::string decoded;
    if (oma_percent_decode(user, &decoded)) a.name = decoded;
    return a;
  }
  if (starts("http://") || starts("https://")) {
    size_t path = s.find('/', s.find("://") + 3);
    a.path = path == std::string::npos ? "/" : s.substr(path);
  } else if (starts("/")) {
    a.path = s;
  } else {
    a.name = s;
    return a;
  }
  size_t query = a.path.find_first_of("?#");
  if (query != std::string::npos) a.path.resize(query);
  while (a.path.size() > 1 && a.path.back() == '/') a.path.pop_back();
  return a;
}

}  // namespace wish
