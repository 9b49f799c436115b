// The OMA REST WebRTC signalling API on real server elements: webrtcbin peers in the test
// process play and publish through it (decoded pixels checked), renegotiate ICE through
// /update, and a callback server of the test receives the notifications. 127.0.0.1 only.
#include <gst/gst.h>
#include <libsoup/soup.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "http_client.h"
#include "loop_thread.h"
#include "protocol/oma_body.h"
#include "protocol/sdp.h"
#include "test_player.h"
#include "test_publisher.h"
#include "fixtures.h"

using wish::OmaFormat;
using wish::OmaNode;
using wish_test::HttpClient;
using wish_test::HttpResult;
using wish_test::TestPlayer;
using wish_test::is_blue;
using wish_test::is_green;
using wish_test::is_red;
using wish_test::TestPublisher;


static const std::string kUser = "sip%3Aviewer%40example.com";

// A red stream /cam (whepserversink, also serving OMA) and a whipserversrc /whip on one HTTP
// server; `extra` goes to the whepserversink.
struct OmaServer : ServerPipeline {
  GstElement *cam = nullptr;
  explicit OmaServer(const std::string &extra = "") {
    start("whepserversink name=cam path=/cam oma-path=/webrtcsignaling/v1 video-codec=vp8" + props + " " + extra +
          " whipserversrc name=in path=/whip" + props +
          " videotestsrc is-live=true pattern=red ! video/x-raw,width=320,height=240,framerate=30/1 ! cam."
          " audiotestsrc name=asrc is-live=true ! cam.");
    cam = element("cam");
  }
  ~OmaServer() { gst_object_unref(cam); }
  std::string oma(const std::string &rest) const { return url("/webrtcsignaling/v1/" + rest); }
  guint viewers() {
    GstStructure *st = nullptr;
    g_object_get(cam, "stats", &st, nullptr);
    guint n = 0;
    gst_structure_get_uint(st, "viewer-count", &n);
    gst_structure_free(st);
    return n;
  }
};

static OmaNode body_of(const HttpResult &r, OmaFormat format = OmaFormat::Json) {
  OmaNode root;
  std::string error;
  fail_unless(wish::parse_oma_body(r.body, format, &root, &error), "%u %s: %s", r.status, error.c_str(), r.body.c_str());
  return root;
}

static std::string session_request(const std::string &participant, const std::string &sdp) {
  OmaNode root("wrtcsSession");
  root.add("tParticipantAddress", participant);
  root.add("offer").add("sdp", sdp);
  return wish::write_oma_body(root, OmaFormat::Json);
}

static std::string offer_request(const std::string &sdp) {
  OmaNode root("wrtcsOffer");
  root.add("sdp", sdp);
  return wish::write_oma_body(root, OmaFormat::Json);
}

static const std::vector<std::pair<std::string, std::string>> kJson = {{"Content-Type", "application/json"}};

// POSTs a session until the stream takes it (its media may still be starting); the 201.
static HttpResult create_session(HttpClient &http, const OmaServer &s, const std::string &participant,
                                 const std::string &offer) {
  HttpResult r;
  bool ok = wait_until(10000, [&] {
    r = http.request("POST", s.oma(kUser + "/sessions"), kJson, session_request(participant, offer));
    return r.status == 201;
  });
  fail_unless(ok, "POST session: %u %s", r.status, r.body.c_str());
  return r;
}

// The callback server of an OMA application: records what is POSTed to it, answers 204.
class CallbackServer {
public:
  struct Received {
    std::string path, content_type, body;
  };
  CallbackServer() : loop_("callbacks") {
    loop_.invoke_sync([this] {
      server_ = soup_server_new(nullptr, nullptr);
      soup_server_add_handler(server_, nullptr, on_request, this, nullptr);
      GError *error = nullptr;
      fail_unless(soup_server_listen_local(server_, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
      GSList *uris = soup_server_get_uris(server_);
      port_ = g_uri_get_port(static_cast<GUri *>(uris->data));
      g_slist_free_full(uris, reinterpret_cast<GDestroyNotify>(g_uri_unref));
    });
  }
  ~CallbackServer() {
    loop_.invoke_sync([this] { g_clear_object(&server_); });
  }
  std::string url(const std::string &path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::vector<Received> received() {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
  }
  // The first notification with this root POSTed to `path`, waiting up to ms.
  bool wait_for(const std::string &path, const std::string &root, int ms, Received *out = nullptr) {
    return wait_until(ms, [&] {
      for (const auto &r : received())
        if (r.path == path && r.body.find(root) != std::string::npos) {
          if (out) *out = r;
          return true;
        }
      return false;
    });
  }

private:
  static void on_request(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *, gpointer data) {
    auto *self = static_cast<CallbackServer *>(data);
    SoupMessageBody *body = soup_server_message_get_request_body(msg);
    g_autoptr(GBytes) bytes = soup_message_body_flatten(body);
    gsize size = 0;
    const char *d = static_cast<const char *>(g_bytes_get_data(bytes, &size));
    const char *type = soup_message_headers_get_content_type(soup_server_message_get_request_headers(msg), nullptr);
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      self->received_.push_back({path, type ? type : "", std::string(d ? d : "", size)});
    }
    soup_server_message_set_status(msg, 204, nullptr);
  }
  wish::LoopThread loop_;
  SoupServer *server_ = nullptr;  // loop_'s thread only
  unsigned port_ = 0;
  std::mutex mutex_;
  std::vector<Received> received_;
};

static std::string subscription_request(const std::string &notify_url, const std::string &data, OmaFormat format,
                                        const std::string &duration = "") {
  OmaNode root("wrtcsNotificationSubscription");
  OmaNode &cb = root.add("callbackReference");
  cb.add("notifyURL", notify_url);
  cb.add("callbackData", data);
  if (!duration.empty()) root.add("duration", duration);
  return wish::write_oma_body(root, format);
}

// An ICE restart of the player as a new full offer: the first offer with the new credentials,
// and the new candidates in place of the old ones (in the first m-section: BUNDLE).
static std::string restarted_offer(const std::string &offer, const std::string &ufrag, const std::string &pwd,
                                   const std::vector<std::string> &candidates) {
  std::string out;
  bool placed = false;
  for (size_t start = 0; start < offer.size();) {
    size_t end = offer.find("\r\n", start);
    if (end == std::string::npos) end = offer.size();
    std::string line = offer.substr(start, end - start);
    start = end + 2;
    if (line.rfind("a=candidate:", 0) == 0 || line == "a=end-of-candidates") continue;
    if (line.rfind("a=ice-ufrag:", 0) == 0) line = "a=ice-ufrag:" + ufrag;
    if (line.rfind("a=ice-pwd:", 0) == 0) line = "a=ice-pwd:" + pwd;
    out += line + "\r\n";
    if (line.rfind("a=ice-pwd:", 0) == 0 && !placed) {
      for (const auto &c : candidates) out += "a=" + c + "\r\n";
      placed = true;
    }
  }
  return out;
}

// The same offer as a new version of the session (o= line): a renegotiation that changes
// nothing else.
static std::string next_version(const std::string &offer) {
  size_t o = offer.find("\r\no=");
  fail_unless(o != std::string::npos);
  size_t id_end = offer.find(' ', offer.find(' ', o) + 1);
  size_t version_end = offer.find(' ', id_end + 1);
  unsigned long long version = std::stoull(offer.substr(id_end + 1, version_end - id_end - 1));
  return offer.substr(0, id_end + 1) + std::to_string(version + 1) + offer.substr(version_end);
}

static bool ice_up(HttpClient &http, const std::string &session) {
  return wait_until(5000, [&] {
    HttpResult r = http.request("GET", session + "/ice/status");
    std::string st = r.status == 200 ? body_of(r).value("status").value_or("") : "";
    return st == "Connected" || st == "Completed";
  });
}

// With shared=true the viewer is served by the shared transport (no webrtcbin of its own).
static void play_restart_and_delete(bool shared) {
  OmaServer s(shared ? "shared-transport=true" : "shared-transport=false");
  CallbackServer callbacks;
  HttpClient http;
  // Two subscriptions of the user, one in each format.
  HttpResult sub = http.request("POST", s.oma(kUser + "/subscriptions"), kJson,
                                subscription_request(callbacks.url("/json"), "j1", OmaFormat::Json));
  fail_unless_equals_int(sub.status, 201);
  HttpResult xml_sub = http.request("POST", s.oma(kUser + "/subscriptions"), {{"Content-Type", "application/xml"}},
                                    subscription_request(callbacks.url("/xml"), "x1", OmaFormat::Xml));
  fail_unless_equals_int(xml_sub.status, 201);
  assert_str(xml_sub.header("Content-Type"), "application/xml");

  TestPlayer player;
  std::string offer = player.create_offer();
  gint64 t0 = g_get_monotonic_time();
  HttpResult created = create_session(http, s, "sip:cam@127.0.0.1", offer);
  g_print("oma: 201 in %" G_GINT64_FORMAT " ms\n", (g_get_monotonic_time() - t0) / 1000);
  std::string location = created.header("Location");
  fail_unless(location.rfind(s.oma(kUser + "/sessions/"), 0) == 0, "%s", location.c_str());
  OmaNode session = body_of(created);
  assert_str(*session.value("status"), "Connected");
  std::string answer = *session.child("answer")->value("sdp");
  assert_contains(answer, "a=candidate:");  // no trickle: every candidate in the answer
  assert_contains(answer, "a=end-of-candidates");
  fail_unless(player.set_remote_answer(answer));
  fail_unless(player.wait_color(10000, is_red), "no red picture through the OMA session");
  fail_unless(player.wait_audio_buffers(10, 5000));
  fail_unless_equals_int(count_elements(s.cam, "webrtcbin"), shared ? 0 : 1);
  fail_unless_equals_int(s.viewers(), 1);
  g_print("oma: red %" G_GINT64_FORMAT " ms after the POST\n", (g_get_monotonic_time() - t0) / 1000);
  // The answer again, and the status.
  assert_str(*body_of(http.request("GET", location + "/answer")).value("sdp"), answer);
  assert_str(*body_of(http.request("GET", location + "/status")).value("status"), "Connected");
  // ICE status: the server's own, and the application's report kept.
  fail_unless(wait_until(5000, [&] {
    std::string st = *body_of(http.request("GET", location + "/ice/status")).value("status");
    return st == "Connected" || st == "Completed";
  }));
  HttpResult ice = http.request("PUT", location + "/ice/status", kJson, R"({"wrtcsIceStatus":{"status":"Completed"}})");
  fail_unless_equals_int(ice.status, 200);
  // Answer and acceptance notifications, in each subscription's format.
  CallbackServer::Received note;
  fail_unless(callbacks.wait_for("/json", "wrtcsAnswerNotification", 3000, &note));
  assert_str(note.content_type, "application/json");
  assert_str(*body_of({0, note.body}).value("callbackData"), "j1");
  fail_unless(callbacks.wait_for("/json", "wrtcsAcceptanceNotification", 3000));
  fail_unless(callbacks.wait_for("/xml", "wrtcsAnswerNotification", 3000, &note));
  assert_str(note.content_type, "application/xml");
  OmaNode xml_note = body_of({0, note.body}, OmaFormat::Xml);
  assert_str(*xml_note.value("callbackData"), "x1");
  assert_str(*xml_note.child("link")->value("href"), location);
  assert_contains(note.body, "<![CDATA[v=0");

  // An ICE restart through /update; the media goes on over the new ICE session.
  std::string ufrag, pwd;
  std::vector<std::string> candidates;
  fail_unless(player.restart_ice(&ufrag, &pwd, &candidates));
  std::string restarted = restarted_offer(offer, ufrag, pwd, candidates);
  HttpResult update = http.request("PUT", location + "/update", kJson, offer_request(restarted));
  fail_unless_equals_int(update.status, 200);
  assert_str(body_of(update).name, "wrtcsOffer");
  std::string new_answer = *body_of(http.request("GET", location + "/answer")).value("sdp");
  std::string error;
  auto parsed = wish::parse_sdp(new_answer, &error);
  auto old_parsed = wish::parse_sdp(answer, &error);
  fail_unless(parsed && old_parsed);
  fail_if(parsed->media[0].ice_ufrag == old_parsed->media[0].ice_ufrag, "the answer kept its ICE credentials");
  fail_unless(!parsed->media[0].candidates.empty());
  fail_unless(player.apply_remote_ice(parsed->media[0].ice_ufrag, parsed->media[0].ice_pwd, parsed->media[0].candidates));
  guint64 frames = player.video_frames();
  fail_unless(player.wait_video_frames(frames + 30, 5000), "no frames after the ICE restart");
  assert_contains(*body_of(http.request("GET", location + "/offer")).value("sdp"), "a=ice-ufrag:" + ufrag);
  fail_unless(wait_until(3000, [&] {
    int acceptances = 0;
    for (const auto &r : callbacks.received())
      if (r.path == "/json" && r.body.find("wrtcsAcceptanceNotification") != std::string::npos) acceptances++;
    return acceptances == 2;
  }), "no acceptance notification after the update");

  // A renegotiation without an ICE restart (a new version of the same offer): answered at once
  // with the answer in force, the update becomes the offer, and the media goes on.
  std::string renegotiated = next_version(restarted);
  HttpResult again = http.request("PUT", location + "/update", kJson, offer_request(renegotiated));
  fail_unless_equals_int(again.status, 200);
  assert_str(*body_of(http.request("GET", location + "/answer")).value("sdp"), new_answer);
  assert_str(*body_of(http.request("GET", location + "/offer")).value("sdp"), renegotiated);
  fail_unless_equals_int(http.request("GET", location + "/update").status, 404);
  frames = player.video_frames();
  fail_unless(player.wait_video_frames(frames + 30, 5000), "no frames after the renegotiation");
  fail_unless(player.wait_color(3000, is_red));
  fail_unless(ice_up(http, location));

  // DELETE ends the session on the server.
  fail_unless_equals_int(http.request("DELETE", location).status, 204);
  fail_unless(wait_until(5000, [&] { return s.viewers() == 0; }));
  fail_unless_equals_int(http.request("GET", location).status, 404);
}

GST_START_TEST(test_oma_play_restart_and_delete) { play_restart_and_delete(false); }
GST_END_TEST;

// The same through the shared viewer transport.
GST_START_TEST(test_oma_on_shared_transport) { play_restart_and_delete(true); }
GST_END_TEST;

GST_START_TEST(test_oma_publish_then_whep_plays) {
  OmaServer s;
  HttpClient http;
  wish_test::PublisherOptions po;
  po.pattern = "green";
  TestPublisher publisher(po);
  HttpResult created = create_session(http, s, "sip:studio@127.0.0.1", publisher.create_offer());
  OmaNode session = body_of(created);
  std::string answer = *session.child("answer")->value("sdp");
  assert_contains(answer, "a=recvonly");
  fail_unless(publisher.set_remote_answer(answer));
  std::string location = created.header("Location");
  assert_str(*body_of(http.request("GET", location + "/answer")).value("sdp"), answer);
  fail_unless(ice_up(http, location), "the publishing session's ICE did not come up");
  HttpResult ice = http.request("PUT", location + "/ice/status", kJson, R"({"wrtcsIceStatus":{"status":"Completed"}})");
  fail_unless_equals_int(ice.status, 200);
  assert_str(*body_of(ice).value("status"), "Completed");
  // A WHEP viewer of the relay plays what came in through OMA.
  TestPlayer viewer;
  negotiate(http, viewer, s.url("/cam/studio"));
  fail_unless(viewer.wait_color(10000, is_green), "the stream published over OMA did not play over WHEP");
  fail_unless_equals_int(http.request("DELETE", location).status, 204);
  fail_unless_equals_int(http.request("GET", location).status, 404);
}
GST_END_TEST;

GST_START_TEST(test_oma_session_ended_and_subscriptions) {
  OmaServer s("viewer-timeout=2");
  CallbackServer callbacks;
  HttpClient http;
  HttpResult sub = http.request("POST", s.oma(kUser + "/subscriptions"), kJson,
                                subscription_request(callbacks.url("/cb"), "d", OmaFormat::Json));
  fail_unless_equals_int(sub.status, 201);
  // A player that never connects: the server removes the session, and says so.
  HttpResult created = create_session(http, s, "sip:cam@127.0.0.1", kStaticOffer);
  std::string location = created.header("Location");
  CallbackServer::Received ended;
  fail_unless(callbacks.wait_for("/cb", "SessionEnded", 8000, &ended), "no SessionEnded");
  OmaNode note = body_of({0, ended.body});
  assert_str(note.name, "wrtcsEventNotification");
  assert_contains(*note.value("eventDescription"), "not-connected");
  assert_str(*body_of(http.request("GET", location)).value("status"), "Closed");
  assert_str(*body_of(http.request("GET", location + "/ice/status")).value("status"), "Closed");

  // An unknown stream; a wrong method.
  HttpResult unknown = http.request("POST", s.oma(kUser + "/sessions"), kJson, session_request("sip:nope@h", kStaticOffer));
  fail_unless_equals_int(unknown.status, 404);
  assert_contains(unknown.body, "SVC0004");
  HttpResult wrong = http.request("GET", s.oma(kUser + "/sessions"));
  fail_unless_equals_int(wrong.status, 405);
  assert_str(wrong.header("Allow"), "POST");

  // Expiry: a one-second subscription is cancelled with a notification.
  HttpResult short_sub = http.request("POST", s.oma(kUser + "/subscriptions"), kJson,
                                      subscription_request(callbacks.url("/short"), "s", OmaFormat::Json, "1"));
  fail_unless_equals_int(short_sub.status, 201);
  fail_unless(callbacks.wait_for("/short", "wrtcsSubscriptionCancellationNotification", 4000));
  fail_unless_equals_int(http.request("GET", short_sub.header("Location")).status, 404);

  // A dead callback: after three failed notifications the subscription is cancelled.
  HttpResult dead = http.request("POST", s.oma(kUser + "/subscriptions"), kJson,
                                 subscription_request("http://127.0.0.1:" + std::to_string(free_port()) + "/gone", "x",
                                                      OmaFormat::Json));
  fail_unless_equals_int(dead.status, 201);
  std::string dead_url = dead.header("Location");
  create_session(http, s, "sip:cam@127.0.0.1", kStaticOffer);  // answer + acceptance: two failures
  create_session(http, s, "sip:cam@127.0.0.1", kStaticOffer);  // the third
  fail_unless(wait_until(5000, [&] { return http.request("GET", dead_url).status == 404; }),
              "a subscription whose callback fails was kept");
  fail_unless_equals_int(http.request("GET", sub.header("Location")).status, 200);  // the live one stays
}
GST_END_TEST;

// Sessions the server ends: their stream loses an input (released request pad), ICE fails
// (the offer's one candidate is a port nobody answers on; the connect timeout, viewer-timeout,
// is longer than ICE takes to fail). Subscribers hear SessionEnded, with the reason and the
// session's link; the sessions read Closed. (A session that never connects:
// test_oma_session_ended_and_subscriptions.)
GST_START_TEST(test_oma_sessions_the_server_ends) {
  OmaServer s("viewer-timeout=40");
  CallbackServer callbacks;
  HttpClient http;
  fail_unless_equals_int(http.request("POST", s.oma(kUser + "/subscriptions"), kJson,
                                      subscription_request(callbacks.url("/cb"), "d2", OmaFormat::Json))
                             .status,
                         201);
  auto play = [&](TestPlayer &player) {
    HttpResult created = create_session(http, s, "sip:cam@127.0.0.1", player.create_offer());
    fail_unless(player.set_remote_answer(*body_of(created).child("answer")->value("sdp")));
    fail_unless(player.wait_color(10000, is_red));
    fail_unless(ice_up(http, created.header("Location")));
    return created.header("Location");
  };
  auto ended_event = [&](const std::string &location, int ms) -> std::string {
    std::string description;
    bool ok = wait_until(ms, [&] {
      for (const auto &r : callbacks.received()) {
        if (r.body.find("SessionEnded") == std::string::npos) continue;
        OmaNode note = body_of({0, r.body});
        for (const OmaNode *l : note.all("link"))
          if (l->value("rel") == std::string("WrtcsSession") && l->value("href") == location) {
            fail_unless(note.value("callbackData") == std::string("d2"));
            description = note.value("eventDescription").value_or("");
            return true;
          }
      }
      return false;
    });
    fail_unless(ok, "no SessionEnded for %s", location.c_str());
    assert_str(*body_of(http.request("GET", location + "/status")).value("status"), "Closed");
    return description;
  };

  // The stream loses its audio input.
  TestPlayer player;
  std::string location = play(player);
  release_input(s.cam, s.element("asrc"));
  assert_contains(ended_event(location, 5000), "input-removed");

  // ICE fails: every check to the offer's candidate goes unanswered.
  std::string dead = kStaticOffer;
  std::string candidate =
      "a=candidate:1 1 udp 2130706431 127.0.0.1 " + std::to_string(free_port()) + " typ host\r\na=end-of-candidates\r\n";
  dead.insert(dead.find("m=audio"), candidate);
  dead += candidate;
  std::string failing = create_session(http, s, "sip:cam@127.0.0.1", dead).header("Location");
  gint64 t0 = g_get_monotonic_time();
  assert_contains(ended_event(failing, 30000), "connection-lost");
  g_print("oma: ICE failed, SessionEnded %" G_GINT64_FORMAT " ms after the 201\n", (g_get_monotonic_time() - t0) / 1000);
  assert_str(*body_of(http.request("GET", failing + "/ice/status")).value("status"), "Closed");
}
GST_END_TEST;

static Suite *oma_elements_suite(void) {
  Suite *s = suite_create("oma-elements");
  TCase *tc = tcase_create("oma");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_oma_play_restart_and_delete);
  tcase_add_test(tc, test_oma_on_shared_transport);
  tcase_add_test(tc, test_oma_publish_then_whep_plays);
  tcase_add_test(tc, test_oma_session_ended_and_subscriptions);
  tcase_add_test(tc, test_oma_sessions_the_server_ends);
  return s;
}

WISH_CHECK_MAIN(oma_elements);
