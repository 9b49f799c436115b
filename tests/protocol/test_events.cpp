// The WHEP server-sent events extension without media: the subscription resources of a real
// endpoint over a fake media side, the streams' contents, and the event-stream reader.
#include <gst/check/gstcheck.h>

#include <map>
#include <thread>
#include <string>

#include "fake_media.h"
#include "protocol/events.h"
#include "protocol/ice_servers.h"
#include "string_checks.h"

using namespace wish;

namespace {

const char *const kOffer = kVideoOnlyOffer;
const std::map<std::string, std::string> &kSdp = kSdpType;
const std::map<std::string, std::string> kJsonType = {{"Content-Type", "application/json"}};

// What a stream has carried so far: attached like the HTTP server does.
struct Collected {
  std::string text;
  bool ended = false;
  std::shared_ptr<BodyStream> stream;
  ~Collected() {
    if (stream) stream->detach();  // the endpoint may outlive this
  }
  void attach(const std::shared_ptr<BodyStream> &s) {
    stream = s;
    s->attach([this](const std::string *chunk) {
      if (chunk)
        text += *chunk;
      else
        ended = true;
    });
  }
  std::vector<ServerEvent> events() const {
    EventStreamParser p;
    return p.feed(text);
  }
};

// The URL of the SSE extension in a 201's Link headers, and its events parameter.
std::string events_link(const Response &r, std::string *names) {
  for (const auto &v : r.headers.get_all("Link"))
    for (const auto &link : parse_link_header(v)) {
      if (link.param("rel") != kEventsRel) continue;
      if (names) *names = link.param("events");
      return link.target;
    }
  return "";
}

}  // namespace

GST_START_TEST(test_event_stream_parser) {
  EventStreamParser p;
  // Cut anywhere, every kind of line end, comments, several data lines, unnamed events.
  std::string text = ": hello\r\nevent: active\r\ndata: {}\r\n\r\nevent: viewercount\ndata: {\"viewercount\"\ndata: :3}\n\n"
                     "data: plain\r\rid: 7\nevent: x\n\n";
  std::vector<ServerEvent> all;
  for (size_t i = 0; i < text.size(); i += 3)
    for (auto &e : p.feed(text.substr(i, 3))) all.push_back(e);
  fail_unless_equals_int(all.size(), 2 + 1);
  assert_str(all[0].type, "active");
  assert_str(all[0].data, "{}");
  assert_str(all[1].type, "viewercount");
  assert_str(all[1].data, "{\"viewercount\"\n:3}");
  assert_str(all[2].type, "message");
  assert_str(all[2].data, "plain");
  // An event with no data is not one; one too long is dropped, the next one read.
  EventStreamParser q;
  fail_unless_equals_int(q.feed("event: a\n\n").size(), 0);
  std::string huge = "data: " + std::string(EventStreamParser::kMaxEventSize + 10, 'x') + "\n\nevent: b\ndata: 1\n\n";
  auto after = q.feed(huge);
  fail_unless_equals_int(after.size(), 1);
  assert_str(after[0].type, "b");
}
GST_END_TEST;

GST_START_TEST(test_event_subscription_bodies) {
  std::vector<std::string> names;
  std::string error;
  fail_unless(parse_event_subscription("[\"active\",\"viewercount\",\"active\"]", server_event_names(), &names, &error));
  fail_unless_equals_int(names.size(), 2);
  for (const char *bad : {"", "{}", "[]", "[1]", "[\"active\",\"scte35\"]", "[\"layers\"]", "[\"active\"", "\"active\""}) {
    fail_if(parse_event_subscription(bad, server_event_names(), &names, &error), "accepted %s", bad);
    fail_if(error.empty());
  }
  assert_str(event_subscription_body({"active", "reconnect"}), "[\"active\",\"reconnect\"]");
  assert_str(format_event("viewercount", "{\"viewercount\":\n2}"), "event: viewercount\ndata: {\"viewercount\": 2}\n\n");
  assert_str(reconnect_url("{\"url\":\"http://b/whep\"}"), "http://b/whep");
  for (const char *none : {"{}", "", "[1]", "{\"url\":3}", "nonsense"}) assert_str(reconnect_url(none), "");
  fail_unless_equals_int(viewer_count("{\"viewercount\":12}"), 12);
  fail_unless_equals_int(viewer_count("{\"viewercount\":\"12\"}"), -1);
}
GST_END_TEST;

// A viewer subscribes through the Link of its 201, reads its stream, unsubscribes; the stream
// ends with the session.
GST_START_TEST(test_event_resources) {
  FakeBackend be;
  EndpointConfig cfg;
  cfg.auth_token = "secret";
  auto ep = std::make_shared<Endpoint>(cfg, &be);
  std::map<std::string, std::string> auth = {{"Authorization", "Bearer secret"}};
  std::map<std::string, std::string> sdp = kSdp, json = kJsonType;
  sdp.insert(auth.begin(), auth.end());
  json.insert(auth.begin(), auth.end());
  Response created = call(ep, "POST", "/whep", sdp, kOffer);
  fail_unless_equals_int(created.status, 201);
  std::string names;
  std::string sse = events_link(created, &names);
  assert_str(sse, *created.headers.get("Location") + "/sse");
  assert_str(names, "active,inactive,reconnect,viewercount");

  // Auth as for the session; CORS preflight without it; JSON only; known names only.
  fail_unless_equals_int(call(ep, "POST", sse, kJsonType, "[\"active\"]").status, 401);
  Response pre = call(ep, "OPTIONS", sse, {{"Access-Control-Request-Method", "POST"}, {"Origin", "http://a.example"}});
  fail_unless_equals_int(pre.status, 200);
  assert_contains(pre.headers.get("Access-Control-Allow-Methods").value_or(""), "POST");
  std::map<std::string, std::string> form = auth;
  form["Content-Type"] = "application/x-www-form-urlencoded";
  fail_unless_equals_int(call(ep, "POST", sse, form, "[\"active\"]").status, 415);
  Response unknown = call(ep, "POST", sse, json, "[\"active\",\"scte35\"]");
  fail_unless_equals_int(unknown.status, 400);
  assert_contains(unknown.body, "scte35");
  fail_unless_equals_int(call(ep, "PUT", sse, json, "[]").status, 405);
  fail_unless_equals_int(call(ep, "POST", "/whep/sessions/nope/sse", json, "[\"active\"]").status, 404);

  Response sub = call(ep, "POST", sse, json, "[\"active\",\"inactive\",\"viewercount\",\"reconnect\"]");
  fail_unless_equals_int(sub.status, 201);
  std::string where = sub.headers.get("Location").value_or("");
  fail_unless(where.compare(0, sse.size() + 1, sse + "/") == 0, "%s", where.c_str());
  assert_contains(sub.headers.get("Access-Control-Expose-Headers").value_or(""), "Location");
  Response got = call(ep, "GET", where, auth);
  fail_unless_equals_int(got.status, 200);
  assert_str(got.headers.get("Content-Type").value_or(""), "text/event-stream");
  fail_unless(got.stream != nullptr);
  Collected c;
  c.attach(got.stream);
  auto events = c.events();
  fail_unless_equals_int(events.size(), 2);  // the state now: active, one viewer
  assert_str(events[0].type, "active");
  assert_str(events[1].type, "viewercount");
  assert_str(events[1].data, "{\"viewercount\":1}");

  // Inactive when the stream loses its source (the tick asks the backend), active again.
  be.admission = {409, "nothing"};
  ep->expire_stale();
  be.admission = {};
  ep->expire_stale();
  events = c.events();
  fail_unless_equals_int(events.size(), 4);
  assert_str(events[2].type, "inactive");
  assert_str(events[3].type, "active");

  // Reconnect with and without a URL.
  fail_unless_equals_int(ep->announce_reconnect("http://b.example/whep"), 1);
  fail_unless_equals_int(ep->announce_reconnect(""), 1);
  events = c.events();
  assert_str(events[4].type, "reconnect");
  assert_str(events[4].data, "{\"url\":\"http://b.example/whep\"}");
  assert_str(events[5].data, "{\"url\":\"/whep\"}");  // this endpoint again
  // Without a URL, to the other endpoints in turn when there are some.
  cfg.redirect_to = {"http://c.example/whep"};
  ep->set_config(cfg);
  fail_unless_equals_int(ep->announce_reconnect(""), 1);
  assert_str(c.events().at(6).data, "{\"url\":\"http://c.example/whep\"}");

  // DELETE ends it: the stream closes and later GETs are 404.
  fail_unless_equals_int(call(ep, "DELETE", where, auth).status, 200);
  fail_unless(c.ended);
  fail_unless_equals_int(call(ep, "GET", where, auth).status, 404);
  fail_unless_equals_int(call(ep, "DELETE", where, auth).status, 404);

  // A stream dies with its session; so does the Link URL's own stream (older players GET it).
  Response sub2 = call(ep, "POST", sse, json, "[\"viewercount\"]");
  Collected c2, c3;
  c2.attach(call(ep, "GET", *sub2.headers.get("Location"), auth).stream);
  Response direct = call(ep, "GET", sse, auth);
  fail_unless_equals_int(direct.status, 200);
  c3.attach(direct.stream);
  fail_unless_equals_int(c3.events().size(), 2);  // every event: active and the count
  fail_unless_equals_int(call(ep, "DELETE", *created.headers.get("Location"), auth).status, 200);
  fail_unless(c2.ended && c3.ended);
  fail_unless_equals_int(call(ep, "GET", *sub2.headers.get("Location"), auth).status, 404);
}
GST_END_TEST;

// viewercount follows the viewers of the stream, only on changes, at most once a second.
GST_START_TEST(test_event_viewercount) {
  FakeBackend be;
  int64_t now = 1000000;
  auto ep = std::make_shared<Endpoint>(EndpointConfig{}, &be, [&now] { return now; });
  Response first = call(ep, "POST", "/whep/cam", kSdp, kOffer);
  std::string sse = events_link(first, nullptr);
  now += 300;
  ep->expire_stale();  // a tick between the 201 and the subscription forgets nothing
  Response sub = call(ep, "POST", sse, kJsonType, "[\"viewercount\"]");
  Collected c;
  c.attach(call(ep, "GET", *sub.headers.get("Location"), {}).stream);
  fail_unless_equals_int(c.events().size(), 1);
  assert_str(c.events()[0].data, "{\"viewercount\":1}");
  now += 2000;
  Response second = call(ep, "POST", "/whep/cam", kSdp, kOffer);  // sent at once
  Response third = call(ep, "POST", "/whep/cam", kSdp, kOffer);   // held back: within a second
  call(ep, "POST", "/whep/other", kSdp, kOffer);                  // another stream: not counted
  auto events = c.events();
  fail_unless_equals_int(events.size(), 2);
  assert_str(events[1].data, "{\"viewercount\":2}");
  now += 500;
  ep->expire_stale();
  fail_unless_equals_int(c.events().size(), 2);
  now += 600;
  ep->expire_stale();
  events = c.events();
  fail_unless_equals_int(events.size(), 3);
  assert_str(events[2].data, "{\"viewercount\":3}");
  // Back and forth within a second: nothing new to say.
  now += 5000;
  call(ep, "DELETE", *third.headers.get("Location"));
  events = c.events();
  assert_str(events.back().data, "{\"viewercount\":2}");
  call(ep, "DELETE", *second.headers.get("Location"));
  Response again = call(ep, "POST", "/whep/cam", kSdp, kOffer);
  now += 1500;
  ep->expire_stale();
  fail_unless_equals_int(c.events().size(), 4);
  (void)again;
}
GST_END_TEST;

// A subscriber coming after the server's tick went by (the session's viewer counted before
// anyone watched the stream) is greeted with the viewers there are.
GST_START_TEST(test_event_viewercount_of_a_late_subscriber) {
  FakeBackend be;
  auto ep = std::make_shared<Endpoint>(EndpointConfig{}, &be);
  Response created = call(ep, "POST", "/whep", kSdp, kOffer);
  fail_unless_equals_int(created.status, 201);
  ep->expire_stale();
  Response sub = call(ep, "POST", events_link(created, nullptr), kJsonType, "[\"viewercount\"]");
  fail_unless_equals_int(sub.status, 201);
  Collected c;
  c.attach(call(ep, "GET", *sub.headers.get("Location"), {}).stream);
  auto events = c.events();
  fail_unless_equals_int(events.size(), 1);
  assert_str(events[0].data, "{\"viewercount\":1}");
}
GST_END_TEST;

// A WHIP endpoint has no events; a graceful close ends every stream and reports them written.
GST_START_TEST(test_event_whip_and_close) {
  FakeBackend be;
  EndpointConfig whip;
  whip.kind = EndpointKind::Whip;
  whip.path = "/whip";
  auto ep = std::make_shared<Endpoint>(whip, &be);
  Response r = call(ep, "POST", "/whip", kSdp, std::string(kOffer).replace(std::string(kOffer).find("recvonly"), 8, "sendonly"));
  fail_unless_equals_int(r.status, 201);
  fail_unless(events_link(r, nullptr).empty());
  fail_unless_equals_int(call(ep, "POST", *r.headers.get("Location") + "/sse", kJsonType, "[\"active\"]").status, 404);

  auto whep = std::make_shared<Endpoint>(EndpointConfig{}, &be);
  Response v = call(whep, "POST", "/whep", kSdp, kOffer);
  std::string sse = events_link(v, nullptr);
  Response sub = call(whep, "POST", sse, kJsonType, "[\"reconnect\"]");
  auto stream = call(whep, "GET", *sub.headers.get("Location"), {}).stream;
  Collected c;
  c.attach(stream);
  fail_unless_equals_int(whep->announce_reconnect(""), 1);
  // The server detaches a stream once its end is written: here at once.
  std::thread writer([stream] {
    while (stream->open()) g_usleep(1000);
    stream->detach();
  });
  fail_unless(whep->close_event_streams(2000));
  writer.join();
  fail_unless(c.ended);
  assert_str(c.events().at(0).type, "reconnect");
  // Limits: a session has at most so many subscriptions.
  Response v2 = call(whep, "POST", "/whep", kSdp, kOffer);
  std::string sse2 = events_link(v2, nullptr);
  for (size_t i = 0; i < EventHub::kMaxPerSession; i++)
    fail_unless_equals_int(call(whep, "POST", sse2, kJsonType, "[\"active\"]").status, 201);
  fail_unless_equals_int(call(whep, "POST", sse2, kJsonType, "[\"active\"]").status, 429);
}
GST_END_TEST;

static Suite *events_suite(void) {
  Suite *s = suite_create("events");
  TCase *tc = tcase_create("sse");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_event_stream_parser);
  tcase_add_test(tc, test_event_subscription_bodies);
  tcase_add_test(tc, test_event_resources);
  tcase_add_test(tc, test_event_viewercount);
  tcase_add_test(tc, test_event_viewercount_of_a_late_subscriber);
  tcase_add_test(tc, test_event_whip_and_close);
  return s;
}

GST_CHECK_MAIN(events);
