// The OMA REST WebRTC signalling front without media: real WHEP and WHIP endpoints over a
// fake media side, notifications recorded instead of POSTed.
#include <gst/check/gstcheck.h>

#include <map>
#include <string>

#include "fake_media.h"
#include "protocol/oma_front.h"
#include "string_checks.h"

using namespace wish;

namespace {

const char *kRecvOffer =
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=ice-ufrag:u1\r\n"
    "a=ice-pwd:p1p1p1p1p1p1p1p1p1p1p1p1\r\na=rtpmap:96 VP8/90000\r\n"
    "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\na=ice-ufrag:u1\r\n"
    "a=ice-pwd:p1p1p1p1p1p1p1p1p1p1p1p1\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n";

std::string replace_all(std::string s, const std::string &from, const std::string &to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

// A JSON string literal of an SDP.
std::string json_sdp(const std::string &sdp) { return replace_all(replace_all(sdp, "\r", "\\r"), "\n", "\\n"); }

std::string session_json(const std::string &participant, const std::string &sdp, const std::string &extra = "") {
  return R"({"wrtcsSession":{"tParticipantAddress":")" + participant + R"(","offer":{"sdp":")" + json_sdp(sdp) +
         "\"}" + extra + "}}";
}

struct Notification {
  std::string url, content_type, body;
};

class FakeOmaBackend : public OmaBackend {
public:
  std::vector<OmaEndpoint> list;
  std::vector<Notification> sent;
  bool callbacks_ok = true;
  std::vector<OmaEndpoint> endpoints() override { return list; }
  void notify(const std::string &url, const std::string &content_type, const std::string &body,
              std::function<void(bool)> done) override {
    sent.push_back({url, content_type, body});
    done(callbacks_ok);
  }
};

// One server: a WHEP endpoint on /whep and a WHIP endpoint on /whip, both with named
// streams and the token "tok", and the OMA front on /webrtcsignaling/v1.
struct Server {
  FakeBackend whep_media, whip_media;
  std::shared_ptr<Endpoint> whep, whip;
  FakeOmaBackend oma_backend;
  int64_t clock_ms = 1000;
  std::shared_ptr<OmaFront> front;

  explicit Server(bool with_whip = true) {
    EndpointConfig wc;
    wc.path = "/whep";
    wc.auth_token = "tok";
    whep = std::make_shared<Endpoint>(wc, &whep_media, [this] { return clock_ms; });
    oma_backend.list.push_back({"/whep", true, true, whep});
    if (with_whip) {
      EndpointConfig ic = wc;
      ic.kind = EndpointKind::Whip;
      ic.path = "/whip";
      whip = std::make_shared<Endpoint>(ic, &whip_media, [this] { return clock_ms; });
      oma_backend.list.push_back({"/whip", false, true, whip});
    }
    OmaConfig oc;
    oc.auth_token = "tok";
    oc.subscription_max_s = 600;
    oc.subscription_default_s = 60;
    front = std::make_shared<OmaFront>(oc, &oma_backend, [this] { return clock_ms; });
  }
  Response request(const std::string &method, const std::string &path, const std::string &body = "",
                   std::map<std::string, std::string> headers = {}) {
    headers.emplace("Authorization", "Bearer tok");
    headers.emplace("Host", "media.example:8889");
    if (!body.empty()) headers.emplace("Content-Type", "application/json");
    return call(front, method, "/webrtcsignaling/v1/" + path, headers, body);
  }
};

OmaNode parsed(const Response &r, OmaFormat format = OmaFormat::Json) {
  OmaNode root;
  std::string error;
  fail_unless(parse_oma_body(r.body, format, &root, &error), "unparsable body (%s): %s", error.c_str(), r.body.c_str());
  return root;
}

std::string error_id(const Response &r) {
  OmaNode root = parsed(r, r.headers.get("Content-Type").value_or("").find("xml") != std::string::npos
                               ? OmaFormat::Xml
                               : OmaFormat::Json);
  const OmaNode *ex = root.child("serviceException");
  if (!ex) ex = root.child("policyException");
  fail_unless(root.name == "requestError" && ex, "not a requestError: %s", r.body.c_str());
  return ex->value("messageId").value_or("");
}

const std::string kUser = "sip%3Aviewer%40example.com";

}  // namespace

GST_START_TEST(test_oma_every_resource_and_method) {
  Server server;
  Response created = server.request("POST", kUser + "/sessions", session_json("sip:cam1@media.example", kRecvOffer));
  fail_unless_equals_int(created.status, 201);
  std::string sid = parsed(created).value("resourceURL")->substr(std::string("http://media.example:8889/webrtcsignaling/v1/" + kUser + "/sessions/").size());
  Response sub = server.request("POST", kUser + "/subscriptions",
                                R"({"wrtcsNotificationSubscription":{"callbackReference":{"notifyURL":"http://app/cb"}}})");
  fail_unless_equals_int(sub.status, 201);
  std::string subid = sub.headers.get("Location")->substr(sub.headers.get("Location")->rfind('/') + 1);

  struct Case {
    std::string path, allow;
  } cases[] = {{kUser + "/subscriptions", "GET, POST"},
               {kUser + "/subscriptions/" + subid, "GET, DELETE"},
               {kUser + "/sessions", "POST"},
               {kUser + "/sessions/" + sid, "GET, DELETE"},
               {kUser + "/sessions/" + sid + "/status", "GET, PUT"},
               {kUser + "/sessions/" + sid + "/offer", "GET, PUT"},
               {kUser + "/sessions/" + sid + "/answer", "GET, PUT"},
               {kUser + "/sessions/" + sid + "/update", "GET, PUT, DELETE"},
               {kUser + "/sessions/" + sid + "/ice/status", "GET, PUT"}};
  for (const auto &c : cases) {
    for (const char *method : {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"}) {
      bool allowed = false;
      for (const auto &m : split_list(c.allow)) allowed = allowed || m == method;
      if (allowed) continue;
      Response r = server.request(method, c.path);
      fail_unless_equals_int(r.status, 405);
      assert_str(r.headers.get("Allow").value_or(""), c.allow);
    }
    Response pre = server.request("OPTIONS", c.path, "", {{"Access-Control-Request-Method", "PUT"}, {"Origin", "http://app"}});
    fail_unless_equals_int(pre.status, 200);
    assert_contains(pre.headers.get("Access-Control-Allow-Methods").value_or(""), c.allow);
  }
  for (const std::string &path : {kUser, kUser + "/", kUser + "/sessions/" + sid + "/ice", kUser + "/other",
                                  kUser + "/sessions/" + sid + "/ice/status/x", std::string("%zz/sessions")}) {
    Response r = server.request("GET", path);
    fail_unless_equals_int(r.status, 404);
  }
}
GST_END_TEST;

GST_START_TEST(test_oma_playback_session) {
  Server server;
  // Percent-decoding keeps '+': the originator is tel:+19585550100.
  Response created = server.request("POST", "tel%3A%2B19585550100/sessions",
                                    session_json("sip:cam1@media.example", kRecvOffer, R"(,"clientCorrelator":"c-42")"),
                                    {{"Accept", "application/json"}});
  fail_unless_equals_int(created.status, 201);
  fail_unless_equals_int(server.whep_media.streams.size(), 1);
  assert_str(server.whep_media.streams[0], "cam1");  // played through /whep/cam1
  std::string url = *created.headers.get("Location");
  assert_contains(url, "http://media.example:8889/webrtcsignaling/v1/tel%3A%2B19585550100/sessions/");
  OmaNode session = parsed(created);
  assert_str(session.name, "wrtcsSession");
  assert_str(*session.value("originatorAddress"), "tel:+19585550100");
  assert_str(*session.value("status"), "Connected");
  assert_str(*session.value("resourceURL"), url);
  assert_str(*session.value("clientCorrelator"), "c-42");
  assert_str(*session.child("offer")->value("type"), "Local");
  assert_str(*session.child("answer")->value("type"), "Remote");
  assert_str(*session.child("answer")->value("isProvisional"), "false");
  assert_str(*session.child("answer")->value("sdp"), "v=0\r\nanswer\r\n");
  // The offer's m-lines as media indicators.
  auto indicators = session.child("offer")->all("mediaIndicator");
  fail_unless_equals_int(indicators.size(), 2);
  assert_str(*indicators[1]->value("type"), "Audio");
  assert_str(*indicators[1]->value("entryIdx"), "1");
  assert_str(*indicators[1]->value("direction"), "RecvOnly");
  assert_str(*indicators[1]->child("payload")->value("encoding"), "opus/48000/2");
  assert_str(*indicators[1]->child("payload")->value("formatParams"), "minptime=10;useinbandfec=1");

  std::string path = url.substr(url.find("/v1/") + 4);
  // The same correlator again: the same session, not a second one.
  Response again = server.request("POST", "tel%3A%2B19585550100/sessions",
                                  session_json("sip:cam1@media.example", kRecvOffer, R"(,"clientCorrelator":"c-42")"));
  fail_unless_equals_int(again.status, 200);
  assert_str(*parsed(again).value("resourceURL"), url);
  fail_unless_equals_int(server.whep_media.streams.size(), 1);

  assert_str(*parsed(server.request("GET", path)).value("status"), "Connected");
  assert_str(*parsed(server.request("GET", path + "/answer")).value("sdp"), "v=0\r\nanswer\r\n");
  assert_str(parsed(server.request("GET", path + "/offer")).name, "wrtcsOffer");
  assert_str(*parsed(server.request("GET", path + "/status")).value("status"), "Connected");
  fail_unless_equals_int(server.request("GET", path + "/update").status, 404);
  // The degenerate person-to-person operations.
  Response status = server.request("PUT", path + "/status", R"({"wrtcsSessionStatus":{"status":"Ringing"}})");
  fail_unless_equals_int(status.status, 403);
  assert_str(error_id(status), "POL0001");
  Response answer = server.request("PUT", path + "/answer",
                                   R"({"wrtcsAnswer":{"isProvisional":"false","sdp":"v=0\r\n"}})");
  fail_unless_equals_int(answer.status, 403);
  assert_str(error_id(answer), "POL0001");
  Response offer = server.request("PUT", path + "/offer", R"({"wrtcsOffer":{"sdp":"v=0\r\n"}})");
  fail_unless_equals_int(offer.status, 403);
  assert_str(error_id(offer), "POL0001");
  fail_unless_equals_int(server.request("PUT", path + "/status", R"({"wrtcsSessionStatus":{"status":"Dancing"}})").status, 400);
  fail_unless_equals_int(server.request("DELETE", path + "/update").status, 404);
  // ICE status: GET mirrors the media side, PUT keeps the application's report.
  assert_str(*parsed(server.request("GET", path + "/ice/status")).value("status"), "New");
  server.whep_media.ice_state = "checking";
  assert_str(*parsed(server.request("GET", path + "/ice/status")).value("status"), "Checking");
  Response ice = server.request("PUT", path + "/ice/status", R"({"wrtcsIceStatus":{"status":"Completed"}})");
  fail_unless_equals_int(ice.status, 200);
  assert_str(*parsed(ice).value("status"), "Completed");
  fail_unless_equals_int(server.request("PUT", path + "/ice/status", R"({"wrtcsIceStatus":{"status":"done"}})").status, 400);
  // The server's own state first; the report while the media side has none.
  assert_str(*parsed(server.request("GET", path + "/ice/status")).value("status"), "Checking");
  server.whep_media.ice_state = "";
  assert_str(*parsed(server.request("GET", path + "/ice/status")).value("status"), "Completed");
  // Another user does not see it.
  fail_unless_equals_int(server.request("GET", "sip%3Aother/sessions/" + path.substr(path.rfind('/') + 1)).status, 404);

  // Every resource read in XML too, every PUT body taken in XML.
  struct Read {
    std::string suffix, root;
  } reads[] = {{"", "wrtcsSession"}, {"/status", "wrtcsSessionStatus"}, {"/offer", "wrtcsOffer"},
               {"/answer", "wrtcsAnswer"}, {"/ice/status", "wrtcsIceStatus"}};
  for (const auto &r : reads) {
    Response x = server.request("GET", path + r.suffix, "", {{"Accept", "application/xml"}});
    fail_unless_equals_int(x.status, 200);
    assert_str(parsed(x, OmaFormat::Xml).name, r.root);
  }
  Response list = server.request("GET", "tel%3A%2B19585550100/subscriptions", "", {{"Accept", "application/xml"}});
  assert_str(parsed(list, OmaFormat::Xml).name, "wrtcsSubscriptionList");
  const std::map<std::string, std::string> xml = {{"Content-Type", "application/xml"}, {"Accept", "application/xml"}};
  Response ice_xml = server.request("PUT", path + "/ice/status", "<wrtcsIceStatus><status>Checking</status></wrtcsIceStatus>", xml);
  fail_unless_equals_int(ice_xml.status, 200);
  assert_str(*parsed(ice_xml, OmaFormat::Xml).value("status"), "Checking");
  Response status_xml = server.request("PUT", path + "/status", "<wrtcsSessionStatus><status>Connected</status></wrtcsSessionStatus>", xml);
  fail_unless_equals_int(status_xml.status, 403);
  assert_str(error_id(status_xml), "POL0001");
  Response answer_xml = server.request(
      "PUT", path + "/answer", "<wrtcsAnswer><isProvisional>false</isProvisional><sdpBase64>dj0wDQo=</sdpBase64></wrtcsAnswer>", xml);
  fail_unless_equals_int(answer_xml.status, 403);
  Response update_xml = server.request("PUT", path + "/update",
                                       std::string("<wrtcsOffer><sdp><![CDATA[") + kRecvOffer + "]]></sdp></wrtcsOffer>", xml);
  fail_unless_equals_int(update_xml.status, 200);
  assert_str(parsed(update_xml, OmaFormat::Xml).name, "wrtcsOffer");

  Response del = server.request("DELETE", path);
  fail_unless_equals_int(del.status, 204);
  fail_unless_equals_int(server.whep_media.closed.size(), 1);
  assert_contains(server.whep_media.closed[0], " closed");
  fail_unless_equals_int(server.request("GET", path).status, 404);
  fail_unless_equals_int(server.request("DELETE", path).status, 404);
}
GST_END_TEST;

GST_START_TEST(test_oma_publish_and_addresses) {
  Server server;
  std::string send_offer = replace_all(kRecvOffer, "a=recvonly", "a=sendonly");
  Response pub = server.request("POST", kUser + "/sessions", session_json("sip:studio@media.example", send_offer));
  fail_unless_equals_int(pub.status, 201);
  fail_unless_equals_int(server.whip_media.streams.size(), 1);
  assert_str(server.whip_media.streams[0], "studio");
  // sendrecv publishes too (a browser's addTrack).
  std::string sendrecv = replace_all(kRecvOffer, "a=recvonly", "a=sendrecv");
  fail_unless_equals_int(server.request("POST", kUser + "/sessions", session_json("studio2", sendrecv)).status, 201);
  // Person-to-person details of a request are ignored.
  std::string details = replace_all(session_json("cam1", kRecvOffer, R"(,"originatorName":"Alice","tParticipantName":"Cam",)"
                                                                     R"("status":"Initiated","originatorAddress":"sip:x@y")"),
                                    "\"offer\":{", R"("offer":{"holdAlerting":"true","serviceType":"x","allowVideoUpgrade":false,)");
  Response p2p = server.request("POST", kUser + "/sessions", details);
  fail_unless_equals_int(p2p.status, 201);
  assert_str(*parsed(p2p).value("originatorAddress"), "sip:viewer@example.com");
  // A path or URL of an endpoint names the stream too.
  fail_unless_equals_int(
      server.request("POST", kUser + "/sessions", session_json("http://media.example:8889/whep/cam2", kRecvOffer)).status,
      201);
  assert_str(server.whep_media.streams.back(), "cam2");
  fail_unless_equals_int(server.request("POST", kUser + "/sessions", session_json("/whep", kRecvOffer)).status, 201);
  assert_str(server.whep_media.streams.back(), "");
  // A WHEP path with a sendonly offer: the direction does not fit.
  Response wrong = server.request("POST", kUser + "/sessions", session_json("/whep/cam2", send_offer));
  fail_unless_equals_int(wrong.status, 400);
  assert_str(error_id(wrong), "SVC0002");
  // Mixed directions.
  std::string mixed = std::string(kRecvOffer);
  mixed.replace(mixed.rfind("a=recvonly"), 10, "a=sendonly");
  fail_unless_equals_int(server.request("POST", kUser + "/sessions", session_json("cam1", mixed)).status, 400);
  // No endpoint that could take it.
  Server whep_only(false);
  Response none = whep_only.request("POST", kUser + "/sessions", session_json("sip:studio@h", send_offer));
  fail_unless_equals_int(none.status, 404);
  assert_str(error_id(none), "SVC0004");
}
GST_END_TEST;

GST_START_TEST(test_oma_errors) {
  Server server;
  const std::string sessions = kUser + "/sessions";
  auto expect = [&](Response r, unsigned status, const char *id) {
    fail_unless_equals_int(r.status, status);
    assert_str(error_id(r), id);
  };
  // Admission answers of the endpoint, as OMA errors.
  server.whep_media.admission = {404, "no stream named 'x'"};
  expect(server.request("POST", sessions, session_json("sip:x@h", kRecvOffer)), 404, "SVC0004");
  server.whep_media.admission = {503, "too many"};
  Response busy = server.request("POST", sessions, session_json("sip:x@h", kRecvOffer));
  expect(busy, 503, "SVC2001");
  fail_unless(busy.headers.has("Retry-After"));
  server.whep_media.admission = {};
  // Bad input.
  expect(server.request("POST", sessions, session_json("sip:x@h", "not sdp")), 400, "SVC0002");
  expect(server.request("POST", sessions, R"({"wrtcsSession":{"tParticipantAddress":"x"}})"), 400, "SVC0002");
  expect(server.request("POST", sessions,
                        R"({"wrtcsSession":{"tParticipantAddress":"x","offer":{"sdp":"v=0\r\n","sdpBase64":"dj0w"}}})"),
         400, "SVC0002");
  expect(server.request("POST", sessions, R"({"wrtcsSession":{"tParticipantAddress":"x","offer":{"type":"Local"}}})"), 400,
         "SVC0002");  // neither sdp nor sdpBase64
  expect(server.request("POST", sessions, R"({"wrtcsSession":{"offer":{"sdp":"v=0\r\n"}}})"), 400, "SVC0002");
  expect(server.request("POST", sessions, session_json("x", kRecvOffer, R"(,"answer":{"sdp":"v=0"})")), 400, "SVC0002");
  expect(server.request("POST", sessions, R"({"wrtcsSubscriptionList":{}})"), 400, "SVC0002");
  expect(server.request("POST", sessions, "{not json"), 400, "SVC0002");
  // Form bodies and unknown types: 415. An Accept we cannot meet: 406.
  expect(server.request("POST", sessions, "a=b", {{"Content-Type", "application/x-www-form-urlencoded"}}), 415, "SVC0002");
  expect(server.request("POST", sessions, "x", {{"Content-Type", "text/plain"}}), 415, "SVC0002");
  expect(server.request("GET", kUser + "/subscriptions", "", {{"Accept", "text/html"}}), 406, "SVC0002");
  // No token.
  Response unauth = call(server.front, "POST", "/webrtcsignaling/v1/" + sessions,
                         {{"Content-Type", "application/json"}}, session_json("x", kRecvOffer));
  fail_unless_equals_int(unauth.status, 401);
  assert_str(unauth.headers.get("WWW-Authenticate").value_or(""), "Bearer");
  fail_unless(server.whep_media.streams.empty());
  // XML in, XML out; the error in the format asked for.
  std::string xml = std::string("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                "<wrtcs:wrtcsSession xmlns:wrtcs=\"urn:oma:xml:rest:netapi:webrtcsignaling:1\">"
                                "<tParticipantAddress>sip:cam1@h</tParticipantAddress><offer><sdp><![CDATA[") +
                    kRecvOffer + "]]></sdp></offer></wrtcs:wrtcsSession>";
  Response created = server.request("POST", sessions, xml, {{"Content-Type", "application/xml"}});
  fail_unless_equals_int(created.status, 201);
  assert_str(created.headers.get("Content-Type").value_or(""), "application/xml");
  assert_contains(created.body, "<wrtcs:wrtcsSession xmlns:wrtcs=\"urn:oma:xml:rest:netapi:webrtcsignaling:1\">");
  assert_contains(created.body, "<![CDATA[v=0\r\nanswer\r\n]]>");
  OmaNode session = parsed(created, OmaFormat::Xml);
  assert_str(*session.value("status"), "Connected");
  Response xml_error = server.request("POST", sessions, "<wrtcs:wrtcsSession>", {{"Content-Type", "application/xml"}});
  fail_unless_equals_int(xml_error.status, 400);
  assert_contains(xml_error.body, "<common:requestError xmlns:common=\"urn:oma:xml:rest:netapi:common:1\">");
  assert_str(error_id(xml_error), "SVC0002");
  // The offer as sdpBase64.
  gchar *b64 = g_base64_encode(reinterpret_cast<const guchar *>(kRecvOffer), strlen(kRecvOffer));
  Response base64 = server.request("POST", sessions,
                                   std::string(R"({"wrtcsSession":{"tParticipantAddress":"cam1","offer":{"sdpBase64":")") + b64 +
                                       "\"}}}");
  g_free(b64);
  fail_unless_equals_int(base64.status, 201);
  assert_str(*parsed(base64).child("offer")->value("sdp"), kRecvOffer);
  // JSON in, XML out when asked.
  Response json_in = server.request("POST", sessions, session_json("cam1", kRecvOffer), {{"Accept", "application/xml"}});
  fail_unless_equals_int(json_in.status, 201);
  assert_str(*parsed(json_in, OmaFormat::Xml).value("status"), "Connected");
}
GST_END_TEST;

GST_START_TEST(test_oma_update) {
  Server server;
  server.whep_media.answer_body =
      "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
      "a=ice-ufrag:srv1\r\na=ice-pwd:serverpassword1111111111\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n"
      "a=candidate:8 1 udp 1 127.0.0.1 5999 typ host\r\n";
  Response created = server.request("POST", kUser + "/sessions", session_json("cam1", kRecvOffer));
  std::string path = created.headers.get("Location")->substr(created.headers.get("Location")->find("/v1/") + 4);
  server.request("POST", kUser + "/subscriptions",
                 R"({"wrtcsNotificationSubscription":{"callbackReference":{"notifyURL":"http://app/cb","callbackData":"d1"}}})");
  server.oma_backend.sent.clear();

  // The same media again: answered at once with the answer it has.
  Response same = server.request("PUT", path + "/update", R"({"wrtcsOffer":{"sdp":")" + json_sdp(kRecvOffer) + "\"}}");
  fail_unless_equals_int(same.status, 200);
  assert_str(parsed(same).name, "wrtcsOffer");
  fail_unless_equals_int(server.oma_backend.sent.size(), 1);
  assert_contains(server.oma_backend.sent[0].body, "wrtcsAcceptanceNotification");

  // An ICE restart: the endpoint restarts ICE, the answer gets the new credentials and
  // candidates, and the update becomes the offer.
  server.whep_media.restart_body =
      "a=ice-ufrag:srv2\r\na=ice-pwd:serverpassword2222222222\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
      "a=candidate:9 1 udp 1 127.0.0.1 6000 typ host\r\na=end-of-candidates\r\n";
  server.whep_media.hold_restarts = true;
  std::string restart = replace_all(replace_all(kRecvOffer, "ice-ufrag:u1", "ice-ufrag:u2"), "ice-pwd:p1", "ice-pwd:p2");
  std::string body = R"({"wrtcsOffer":{"sdp":")" + json_sdp(restart) + "\"}}";
  Response pending;
  int answered = 0;
  Request put;
  put.method = "PUT";
  put.path = "/webrtcsignaling/v1/" + path + "/update";
  put.headers.add("Authorization", "Bearer tok");
  put.headers.add("Content-Type", "application/json");
  put.body = body;
  server.front->handle(put, Reply([&](Response r) {
                         pending = std::move(r);
                         answered++;
                       }));
  fail_unless_equals_int(answered, 0);
  fail_unless_equals_int(server.whep_media.held_restarts.size(), 1);
  assert_contains(*parsed(server.request("GET", path + "/update")).value("sdp"), "ice-ufrag:u2");
  // A second offer while the first is unanswered: 403 SVC1007 and a conflict notification.
  server.oma_backend.sent.clear();
  Response conflict = server.request("PUT", path + "/update", body);
  fail_unless_equals_int(conflict.status, 403);
  assert_str(error_id(conflict), "SVC1007");
  fail_unless_equals_int(server.request("PUT", path + "/offer", body).status, 403);
  Response withdraw = server.request("DELETE", path + "/update");
  fail_unless_equals_int(withdraw.status, 403);
  assert_str(error_id(withdraw), "POL0001");
  fail_unless(server.oma_backend.sent.size() >= 1);
  OmaNode note;
  std::string error;
  fail_unless(parse_oma_body(server.oma_backend.sent[0].body, OmaFormat::Json, &note, &error));
  assert_str(note.name, "wrtcsConflictNotification");
  assert_str(*note.value("callbackData"), "d1");
  assert_str(*note.child("reason")->value("messageId"), "SVC1007");
  bool offer_link = false;
  for (const OmaNode *l : note.all("link")) offer_link = offer_link || *l->value("rel") == "WrtcsOffer";
  fail_unless(offer_link);

  server.oma_backend.sent.clear();
  server.whep_media.held_restarts[0]();
  fail_unless_equals_int(answered, 1);
  fail_unless_equals_int(pending.status, 200);
  std::string answer = *parsed(server.request("GET", path + "/answer")).value("sdp");
  assert_contains(answer, "a=ice-ufrag:srv2\r\n");
  assert_contains(answer, "a=ice-pwd:serverpassword2222222222\r\n");
  assert_contains(answer, "a=candidate:9 1 udp 1 127.0.0.1 6000 typ host\r\n");
  fail_if(answer.find("srv1") != std::string::npos || answer.find("5999") != std::string::npos);
  assert_contains(*parsed(server.request("GET", path + "/offer")).value("sdp"), "ice-ufrag:u2");
  fail_unless_equals_int(server.request("GET", path + "/update").status, 404);
  fail_unless_equals_int(server.oma_backend.sent.size(), 1);
  assert_contains(server.oma_backend.sent[0].body, "wrtcsAcceptanceNotification");
  assert_contains(server.oma_backend.sent[0].body, "srv2");

  // A renegotiation of the same media and codecs (a new session version): answered at once
  // with the answer it has, and it becomes the offer.
  std::string renegotiated = replace_all(restart, "o=- 1 2 ", "o=- 1 3 ");
  Response again = server.request("PUT", path + "/update", R"({"wrtcsOffer":{"sdp":")" + json_sdp(renegotiated) + "\"}}");
  fail_unless_equals_int(again.status, 200);
  assert_contains(*parsed(server.request("GET", path + "/offer")).value("sdp"), "o=- 1 3 IN IP4");
  assert_str(*parsed(server.request("GET", path + "/answer")).value("sdp"), answer);
  // The same m-lines without the codec of the answer: the answer would not fit, declined.
  server.oma_backend.sent.clear();
  std::string other_codec = replace_all(restart, "a=rtpmap:96 VP8/90000", "a=rtpmap:96 H264/90000");
  Response codec = server.request("PUT", path + "/update", R"({"wrtcsOffer":{"sdp":")" + json_sdp(other_codec) + "\"}}");
  fail_unless_equals_int(codec.status, 403);
  assert_str(error_id(codec), "POL0001");
  assert_contains(server.oma_backend.sent.at(0).body, "\"eventType\":\"Declined\"");
  assert_contains(*parsed(server.request("GET", path + "/offer")).value("sdp"), "o=- 1 3 IN IP4");

  // Other media: declined, with the Declined event.
  server.oma_backend.sent.clear();
  std::string more = std::string(kRecvOffer) + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n";
  Response declined = server.request("PUT", path + "/update", R"({"wrtcsOffer":{"sdp":")" + json_sdp(more) + "\"}}");
  fail_unless_equals_int(declined.status, 403);
  assert_str(error_id(declined), "POL0001");
  fail_unless_equals_int(server.oma_backend.sent.size(), 1);
  assert_contains(server.oma_backend.sent[0].body, "\"eventType\":\"Declined\"");
}
GST_END_TEST;

GST_START_TEST(test_oma_subscriptions) {
  Server server;
  const std::string subs = kUser + "/subscriptions";
  Response json_sub = server.request(
      "POST", subs,
      R"({"wrtcsNotificationSubscription":{"callbackReference":{"notifyURL":"http://app/json","callbackData":"abcd"},)"
      R"("duration":30,"clientCorrelator":"s-1"}})");
  fail_unless_equals_int(json_sub.status, 201);
  OmaNode sub = parsed(json_sub);
  assert_str(*sub.value("duration"), "30");
  assert_str(*sub.value("resourceURL"), *json_sub.headers.get("Location"));
  // duration 0: the default; none: the longest allowed.
  std::string xml_body =
      "<wrtcs:wrtcsNotificationSubscription xmlns:wrtcs=\"urn:oma:xml:rest:netapi:webrtcsignaling:1\">"
      "<callbackReference><notifyURL>http://app/xml</notifyURL><callbackData>x1</callbackData></callbackReference>"
      "</wrtcs:wrtcsNotificationSubscription>";
  Response xml_sub = server.request("POST", subs, xml_body, {{"Content-Type", "application/xml"}});
  fail_unless_equals_int(xml_sub.status, 201);
  assert_str(*parsed(xml_sub, OmaFormat::Xml).value("duration"), "600");
  Response zero = server.request(
      "POST", subs, R"({"wrtcsNotificationSubscription":{"callbackReference":{"notifyURL":"http://app/z"},"duration":"0"}})");
  assert_str(*parsed(zero).value("duration"), "60");
  fail_unless_equals_int(
      server.request("POST", subs, R"({"wrtcsNotificationSubscription":{"callbackReference":{"notifyURL":"ftp://x"}}})").status,
      400);
  fail_unless_equals_int(server.request("POST", subs, R"({"wrtcsNotificationSubscription":{"duration":"5"}})").status, 400);
  Response list = server.request("GET", subs);
  fail_unless_equals_int(parsed(list).all("wrtcsNotificationSubscription").size(), 3);
  fail_unless_equals_int(parsed(server.request("GET", "sip%3Asomeone/subscriptions")).all("wrtcsNotificationSubscription").size(), 0);
  std::string zero_path = zero.headers.get("Location")->substr(zero.headers.get("Location")->find("/v1/") + 4);
  // What is left of the duration, as time goes by.
  server.clock_ms += 10 * 1000;
  assert_str(*parsed(server.request("GET", zero_path)).value("duration"), "50");
  server.clock_ms -= 10 * 1000;
  fail_unless_equals_int(server.request("DELETE", zero_path).status, 204);
  fail_unless_equals_int(server.request("GET", zero_path).status, 404);

  // A session: answer then acceptance, each to both callbacks in their formats.
  server.oma_backend.sent.clear();
  Response created = server.request("POST", kUser + "/sessions", session_json("cam1", kRecvOffer));
  fail_unless_equals_int(server.oma_backend.sent.size(), 4);
  for (const auto &n : server.oma_backend.sent) {
    bool xml = n.url == "http://app/xml";
    assert_str(n.content_type, xml ? "application/xml" : "application/json");
    OmaNode root;
    std::string error;
    fail_unless(parse_oma_body(n.body, xml ? OmaFormat::Xml : OmaFormat::Json, &root, &error), "%s", n.body.c_str());
    assert_str(*root.value("callbackData"), xml ? "x1" : "abcd");
    fail_unless(root.name == "wrtcsAnswerNotification" || root.name == "wrtcsAcceptanceNotification");
    auto links = root.all("link");
    fail_unless_equals_int(links.size(), 2);
    assert_str(*links[0]->value("rel"), "WrtcsSession");
    assert_str(*links[0]->value("href"), *created.headers.get("Location"));
    assert_str(*links[1]->value("rel"), "WrtcsNotificationSubscription");
    if (root.name == "wrtcsAnswerNotification") assert_contains(*root.child("answer")->value("sdp"), "v=0\r\nanswer");
  }
  assert_contains(server.oma_backend.sent[0].body, "wrtcsAnswerNotification");

  // The stream ends: the session is Closed and subscribers hear SessionEnded.
  server.oma_backend.sent.clear();
  server.whep_media.events.begin()->second->ended("input-removed");
  server.front->tick();
  std::string path = created.headers.get("Location")->substr(created.headers.get("Location")->find("/v1/") + 4);
  assert_str(*parsed(server.request("GET", path)).value("status"), "Closed");
  assert_str(*parsed(server.request("GET", path + "/ice/status")).value("status"), "Closed");
  fail_unless_equals_int(server.oma_backend.sent.size(), 2);
  assert_contains(server.oma_backend.sent[0].body, "SessionEnded");
  assert_contains(server.oma_backend.sent[0].body, "input-removed");
  // Kept readable for a while, then forgotten; meanwhile the JSON subscription (30 s) expired,
  // with a cancellation that gives no reason.
  server.oma_backend.sent.clear();
  server.clock_ms += 61 * 1000;
  server.front->tick();
  fail_unless_equals_int(server.request("GET", path).status, 404);
  fail_unless_equals_int(server.front->subscription_count(), 1);
  fail_unless_equals_int(server.oma_backend.sent.size(), 1);
  assert_str(server.oma_backend.sent[0].url, "http://app/json");
  assert_contains(server.oma_backend.sent[0].body, "wrtcsSubscriptionCancellationNotification");
  fail_if(server.oma_backend.sent[0].body.find("reason") != std::string::npos);

  // A player that never connects: the endpoint drops its session, the front says why.
  server.oma_backend.sent.clear();
  Response lonely = server.request("POST", kUser + "/sessions", session_json("cam1", kRecvOffer));
  server.clock_ms += 11 * 1000;
  fail_unless_equals_int(server.whep->expire_stale().size(), 1);
  server.front->tick();
  std::string lonely_path = lonely.headers.get("Location")->substr(lonely.headers.get("Location")->find("/v1/") + 4);
  assert_str(*parsed(server.request("GET", lonely_path)).value("status"), "Closed");
  assert_contains(server.oma_backend.sent.back().body, "the session ended: not-connected");

  // ICE fails on a session that played: the media side ends it (connection-lost).
  auto known = server.whep_media.events;
  Response failing = server.request("POST", kUser + "/sessions", session_json("cam1", kRecvOffer));
  std::shared_ptr<SessionEvents> events;
  for (const auto &kv : server.whep_media.events)
    if (!known.count(kv.first)) events = kv.second;
  fail_unless(events != nullptr);
  events->connected();
  server.front->tick();
  server.oma_backend.sent.clear();
  events->ended("connection-lost");
  server.front->tick();
  std::string failing_path = failing.headers.get("Location")->substr(failing.headers.get("Location")->find("/v1/") + 4);
  assert_str(*parsed(server.request("GET", failing_path)).value("status"), "Closed");
  fail_unless_equals_int(server.oma_backend.sent.size(), 1);
  assert_contains(server.oma_backend.sent[0].body, "SessionEnded");
  assert_contains(server.oma_backend.sent[0].body, "the session ended: connection-lost");

  // At capacity (max_subscriptions, 1000 here): 503 SVC2001.
  Server full;
  const std::string sub_body = R"({"wrtcsNotificationSubscription":{"callbackReference":{"notifyURL":"http://app/n"}}})";
  for (int i = 0; i < 1000; i++) fail_unless_equals_int(full.request("POST", subs, sub_body).status, 201);
  Response refused = full.request("POST", subs, sub_body);
  fail_unless_equals_int(refused.status, 503);
  assert_str(error_id(refused), "SVC2001");

  // A callback that keeps failing: cancelled with SVC2001 after three failures.
  server.oma_backend.sent.clear();
  server.oma_backend.callbacks_ok = false;
  server.request("POST", kUser + "/sessions", session_json("cam1", kRecvOffer));  // answer + acceptance
  fail_unless_equals_int(server.front->subscription_count(), 1);
  server.request("POST", kUser + "/sessions", session_json("cam1", kRecvOffer));  // the third failure
  fail_unless_equals_int(server.front->subscription_count(), 0);
  assert_contains(server.oma_backend.sent.back().body, "wrtcsSubscriptionCancellationNotification");
  assert_contains(server.oma_backend.sent.back().body, "SVC2001");
}
GST_END_TEST;

// Random mutations of every kind of request body, in both formats, through the whole front:
// never a crash or a 5xx, always an answer in the format asked for.
GST_START_TEST(test_oma_requests_fuzz) {
  Server server;
  Response created = server.request("POST", kUser + "/sessions", session_json("cam1", kRecvOffer));
  std::string session = created.headers.get("Location")->substr(created.headers.get("Location")->find("/v1/") + 4);
  struct Seed {
    std::string path, method, type, body;
  };
  const std::string xml_session = std::string("<wrtcs:wrtcsSession xmlns:wrtcs=\"urn:oma:xml:rest:netapi:webrtcsignaling:1\">"
                                               "<tParticipantAddress>sip:cam1@h</tParticipantAddress><offer><sdp><![CDATA[") +
                                  kRecvOffer + "]]></sdp></offer><clientCorrelator>x</clientCorrelator></wrtcs:wrtcsSession>";
  const Seed seeds[] = {
      {kUser + "/sessions", "POST", "application/json", session_json("sip:cam1@h", kRecvOffer)},
      {kUser + "/sessions", "POST", "application/xml", xml_session},
      {kUser + "/subscriptions", "POST", "application/json",
       R"({"wrtcsNotificationSubscription":{"callbackReference":{"notifyURL":"http://a/b","callbackData":"c"},"duration":"5"}})"},
      {kUser + "/subscriptions", "POST", "application/xml",
       "<wrtcsNotificationSubscription><callbackReference><notifyURL>http://a</notifyURL></callbackReference>"
       "<duration>0</duration></wrtcsNotificationSubscription>"},
      {session + "/update", "PUT", "application/json", R"({"wrtcsOffer":{"sdp":")" + json_sdp(kRecvOffer) + "\"}}"},
      {session + "/ice/status", "PUT", "application/xml", "<wrtcsIceStatus><status>Completed</status></wrtcsIceStatus>"},
      {session + "/answer", "PUT", "application/json", R"({"wrtcsAnswer":{"isProvisional":false,"sdpBase64":"dj0wDQo="}})"},
  };
  GRand *rand = g_rand_new_with_seed(4321);
  int answered_ok = 0;
  for (int i = 0; i < 6000; i++) {
    const Seed &seed = seeds[i % G_N_ELEMENTS(seeds)];
    std::string b = seed.body;
    int edits = g_rand_int_range(rand, 1, 8);
    for (int e = 0; e < edits && !b.empty(); e++) {
      size_t pos = g_rand_int_range(rand, 0, static_cast<gint32>(b.size()));
      switch (g_rand_int_range(rand, 0, 3)) {
        case 0: b[pos] = static_cast<char>(g_rand_int_range(rand, 0, 256)); break;
        case 1: b.erase(pos, g_rand_int_range(rand, 1, 20)); break;
        default: b.insert(pos, b.substr(0, g_rand_int_range(rand, 0, 40))); break;
      }
    }
    bool xml_reply = g_rand_boolean(rand);
    Response r = server.request(seed.method, seed.path, b,
                                {{"Content-Type", seed.type}, {"Accept", xml_reply ? "application/xml" : "application/json"}});
    fail_unless(r.status < 500 || r.status == 503, "%u for %s", r.status, b.c_str());
    if (r.status < 300) answered_ok++;
    if (!r.body.empty()) {
      OmaNode root;
      std::string error;
      fail_unless(parse_oma_body(r.body, xml_reply ? OmaFormat::Xml : OmaFormat::Json, &root, &error), "%s", r.body.c_str());
    }
    if (i % 500 == 0) server.front->tick();
  }
  g_rand_free(rand);
  fail_unless(answered_ok > 100, "only %d mutated requests were taken: the seeds are not valid", answered_ok);
}
GST_END_TEST;

static Suite *oma_suite(void) {
  Suite *s = suite_create("oma");
  TCase *tc = tcase_create("front");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_oma_every_resource_and_method);
  tcase_add_test(tc, test_oma_playback_session);
  tcase_add_test(tc, test_oma_publish_and_addresses);
  tcase_add_test(tc, test_oma_errors);
  tcase_add_test(tc, test_oma_update);
  tcase_add_test(tc, test_oma_subscriptions);
  tcase_add_test(tc, test_oma_requests_fuzz);
  return s;
}

GST_CHECK_MAIN(oma);
