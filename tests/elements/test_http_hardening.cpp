// The built-in HTTP server against hostile clients: requests libsoup refuses, endless and
// slow bodies, oversized headers, bursts and floods. A real whepserversink on 127.0.0.1,
// attacked through plain sockets where a libsoup client could not send the request.
#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http_client.h"
#include "raw_http.h"
#include "test_player.h"
#include "whepsrc_player.h"
#include "fixtures.h"

using wish_test::HttpClient;
using wish_test::HttpResult;
using wish_test::RawConn;
using wish_test::raw_request;
using wish_test::TestPlayer;

static std::string request(const std::string &method, const std::string &target,
                           const std::string &extra_headers = "", const std::string &body = "") {
  std::string r = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers;
  if (!body.empty()) r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

// Requests libsoup answers 400 by itself used to keep their connection: one socket in
// CLOSE_WAIT per request, for good, once the client had gone.
GST_START_TEST(test_refused_requests_leave_no_socket) {
  Server server;
  g_usleep(300 * 1000);
  int fds = wish_test::open_fds();
  const int n = 150;
  unsigned answered = 0;
  for (int i = 0; i < n; i++) {
    std::string target = i % 2 ? "/whep/a%2fb" : "/whep/a%00b";
    RawConn c(server.port);
    fail_unless(c.ok());
    c.send_all(request("GET", target));
    // The client reads the answer and goes, whether or not the server closes.
    gint64 end = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
    while (c.received.find("\r\n\r\n") == std::string::npos && g_get_monotonic_time() < end && !c.read_some(100)) {
    }
    if (c.status() >= 400 && c.status() < 500) answered++;
  }
  fail_unless_equals_int(answered, n);
  g_usleep(500 * 1000);
  int close_wait = wish_test::tcp_sockets_in_state(server.port, "08");
  int leaked = wish_test::open_fds() - fds;
  g_print("after %d refused requests: %d sockets in CLOSE_WAIT, %+d open fds\n", n, close_wait, leaked);
  fail_unless(wait_until(3000, [&] { return wish_test::tcp_sockets_in_state(server.port, "08") == 0; }),
              "%d sockets in CLOSE_WAIT", wish_test::tcp_sockets_in_state(server.port, "08"));
  fail_unless(wait_until(3000, [&] { return wish_test::open_fds() <= fds + 2; }), "fds %d -> %d", fds,
              wish_test::open_fds());
}
GST_END_TEST;

// A chunked body used to be read in full before the size check.
GST_START_TEST(test_endless_chunked_body) {
  Server server;
  g_usleep(300 * 1000);
  long rss = wish_test::rss_kib();
  RawConn c(server.port);
  fail_unless(c.ok());
  fail_unless(c.send_all("POST /whep HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/sdp\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n"));
  std::string chunk = "10000\r\n" + std::string(0x10000, 'a') + "\r\n";
  const size_t total = 200u << 20;
  size_t sent = 0;
  bool closed = false;
  gint64 end = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
  while (sent < total && !closed && g_get_monotonic_time() < end) {
    if (!c.send_all(chunk, 200)) {
      closed = c.read_some(0) || c.status() != 0 || c.reset();
      if (!closed && c.status() == 0) {
        closed = c.read_some(100);
        continue;
      }
      break;
    }
    sent += chunk.size();
    if (c.read_some(0) || c.status() != 0) break;
  }
  if (sent >= total) c.send_all("0\r\n\r\n");
  c.wait_closed(10000);
  long grown = (wish_test::rss_kib() - rss) / 1024;
  g_print("chunked body: %zu MiB sent before the answer (%u), RSS %+ld MiB\n", sent >> 20, c.status(), grown);
  fail_unless_equals_int(c.status(), 413);
  fail_unless(sent < (32u << 20), "%zu MiB sent before the server stopped reading", sent >> 20);
  fail_unless(grown < 40, "RSS grew by %ld MiB", grown);
}
GST_END_TEST;

// Slow or short requests are cut off; a Content-Length that is no number is answered 400.
GST_START_TEST(test_slow_and_short_requests) {
  Server server("http-header-timeout=2 http-idle-timeout=2");
  // Headers at one byte a second.
  RawConn slow(server.port);
  // A body shorter than its Content-Length.
  RawConn short_body(server.port);
  fail_unless(slow.ok() && short_body.ok());
  short_body.send_all(request("POST", "/whep", "Content-Type: application/sdp\r\nContent-Length: 1000\r\n") + "v=0\r\n");
  gint64 start = g_get_monotonic_time();
  std::string head = request("GET", "/whep");
  bool slow_closed = false, short_closed = false;
  for (size_t i = 0; i < head.size() && !(slow_closed && short_closed) && g_get_monotonic_time() - start < 20 * G_USEC_PER_SEC; i++) {
    if (!slow_closed) slow_closed = !slow.send_all(head.substr(i, 1), 100) || slow.read_some(0);
    gint64 next = g_get_monotonic_time() + G_USEC_PER_SEC;
    while (g_get_monotonic_time() < next) {
      if (!slow_closed) slow_closed = slow.read_some(50);
      if (!short_closed) short_closed = short_body.read_some(50);
    }
  }
  double took = (g_get_monotonic_time() - start) / 1e6;
  g_print("slow headers closed: %d, short body closed: %d, after %.1f s\n", slow_closed, short_closed, took);
  fail_unless(slow_closed, "a client sending a byte a second kept its connection");
  fail_unless(short_closed, "a body shorter than its Content-Length kept its connection");
  fail_unless(took < 6, "took %.1f s", took);

  for (const char *len : {"-1", "99999999999999999999999", "12abc", "1, 2"}) {
    std::string resp;
    unsigned status = raw_request(server.port, "POST /whep HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                               "application/sdp\r\nContent-Length: " + std::string(len) + "\r\n\r\nv=0\r\n",
                                  3000, &resp);
    fail_unless(status == 400, "Content-Length %s: %u", len, status);
  }
}
GST_END_TEST;

// A burst of connections used to overflow a listen backlog of 10: resets instead of answers.
GST_START_TEST(test_burst_of_connections) {
  Server server("auth-token=secret");
  g_usleep(300 * 1000);
  const int n = 500;
  std::vector<int> fds(n, -1);
  std::vector<std::string> got(n);
  std::vector<bool> sent(n, false), done(n, false);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server.port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int resets = 0, refused = 0;
  for (int i = 0; i < n; i++) {
    fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (connect(fds[i], reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
      refused++;
      done[i] = true;
    }
  }
  const std::string req = request("POST", "/whep", "Authorization: Bearer wrong\r\nContent-Type: application/sdp\r\n", "v=0\r\n");
  gint64 end = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
  int left = n - refused;
  while (left > 0 && g_get_monotonic_time() < end) {
    std::vector<pollfd> p;
    std::vector<int> idx;
    for (int i = 0; i < n; i++)
      if (!done[i]) {
        p.push_back({fds[i], static_cast<short>(sent[i] ? POLLIN : POLLOUT), 0});
        idx.push_back(i);
      }
    if (poll(p.data(), p.size(), 200) <= 0) continue;
    for (size_t k = 0; k < p.size(); k++) {
      int i = idx[k];
      if (!p[k].revents) continue;
      if (!sent[i]) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0 && send(fds[i], req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
          sent[i] = true;
          continue;
        }
        resets++;
      } else {
        char buf[4096];
        ssize_t r = recv(fds[i], buf, sizeof buf, 0);
        if (r > 0) {
          got[i].append(buf, static_cast<size_t>(r));
          continue;
        }
        if (r < 0 && errno == EAGAIN) continue;
        if (got[i].rfind("HTTP/1.1 ", 0) != 0) resets++;
      }
      done[i] = true;
      left--;
    }
  }
  int answered = 0;
  std::map<int, int> statuses;
  for (int i = 0; i < n; i++) {
    if (got[i].rfind("HTTP/1.1 ", 0) == 0) {
      answered++;
      statuses[std::atoi(got[i].c_str() + 9)]++;
    }
    close(fds[i]);
  }
  std::string summary;
  for (auto &kv : statuses) summary += std::to_string(kv.first) + "x" + std::to_string(kv.second) + " ";
  g_print("burst of %d POSTs: %d answered (%s), %d reset, %d refused, %d unanswered\n", n, answered,
          summary.c_str(), resets, refused, left);
  fail_unless_equals_int(resets + refused + left, 0);
}
GST_END_TEST;

// Oversized headers get 431 instead of a reset.
GST_START_TEST(test_oversized_headers) {
  Server server;
  std::string big = "X-Big: " + std::string(64 * 1024, 'a') + "\r\n";
  std::string many;
  for (int i = 0; i < 1000; i++) many += "X-H" + std::to_string(i) + ": v\r\n";
  for (const std::string *extra : {&big, &many}) {
    std::string resp;
    unsigned status = raw_request(server.port, request("GET", "/whep", *extra), 5000, &resp);
    g_print("%zu bytes of headers: %u\n", extra->size(), status);
    fail_unless_equals_int(status, 431);
    fail_unless(resp.find("Request Header Fields Too Large") != std::string::npos, "%s", resp.c_str());
  }
}
GST_END_TEST;

// Responses do not say which libsoup the server runs.
GST_START_TEST(test_server_header) {
  Server server;
  HttpClient http;
  for (const char *path : {"/whep", "/nothing", "/whep/sessions/x"}) {
    HttpResult r = http.request("OPTIONS", server.url(path));
    fail_unless(r.status != 0);
    fail_if(r.header("Server").find("soup") != std::string::npos, "Server: %s", r.header("Server").c_str());
    fail_if(g_regex_match_simple("[0-9]", r.header("Server").c_str(), GRegexCompileFlags(0), GRegexMatchFlags(0)),
            "Server: %s", r.header("Server").c_str());
  }
  std::string resp;
  raw_request(server.port, request("GET", "/whep/a%2fb"), 3000, &resp);
  fail_if(resp.find("libsoup") != std::string::npos, "%s", resp.c_str());
}
GST_END_TEST;


// Per-client limits: open connections (503), requests a second (429), sessions still
// connecting (503), each with Retry-After; other clients are not affected.
GST_START_TEST(test_per_client_limits) {
  Server server("http-max-connections-per-client=4 http-max-requests-per-client=5 max-pending-sessions-per-client=2");
  fail_unless(server.wait_ready());
  std::vector<std::unique_ptr<RawConn>> idle;
  for (int i = 0; i < 4; i++) idle.push_back(std::make_unique<RawConn>(server.port));
  g_usleep(300 * 1000);
  RawConn fifth(server.port);
  fifth.send_all(request("OPTIONS", "/whep"));
  fifth.wait_closed(3000);
  fail_unless_equals_int(fifth.status(), 503);
  fail_unless(fifth.received.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0, "%s", fifth.received.c_str());
  fail_if(fifth.header("Retry-After").empty());
  // Another address is another client.
  fail_unless_equals_int(raw_request(server.port, request("OPTIONS", "/whep"), 3000, nullptr, "127.0.0.2"), 200);
  idle.clear();
  g_usleep(2500 * 1000);  // the connections are gone and the bucket is full again

  unsigned ok = 0, limited = 0;
  std::string resp;
  for (int i = 0; i < 30; i++) {
    unsigned status = raw_request(server.port, request("OPTIONS", "/whep"), 3000, &resp);
    if (status == 200) ok++;
    if (status == 429) {
      limited++;
      fail_if(resp.find("Retry-After: ") == std::string::npos, "%s", resp.c_str());
      fail_unless(resp.rfind("HTTP/1.1 429 Too Many Requests\r\n", 0) == 0, "%s", resp.c_str());
    }
  }
  g_print("30 requests at once, 5 a second allowed: %u answered, %u refused 429\n", ok, limited);
  fail_unless(ok >= 10 && ok <= 13 && limited == 30 - ok, "%u answered, %u refused", ok, limited);
  g_usleep(2500 * 1000);

  // Sessions that never connect (no candidates): two per client.
  HttpClient http;
  for (int i = 0; i < 2; i++)
    fail_unless_equals_int(http.request("POST", server.url(), {{"Content-Type", "application/sdp"}}, kStaticOffer).status, 201);
  HttpResult r = http.request("POST", server.url(), {{"Content-Type", "application/sdp"}}, kStaticOffer);
  fail_unless_equals_int(r.status, 503);
  fail_if(r.header("Retry-After").empty());
}
GST_END_TEST;

static int count_webrtcbins(GstElement *bin) {
  int n = 0;
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(bin));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElementFactory *f = gst_element_get_factory(GST_ELEMENT(g_value_get_object(&item)));
    if (f && g_str_equal(GST_OBJECT_NAME(f), "webrtcbin")) n++;
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return n;
}

// Without the token nothing is set up: not one webrtcbin, whatever the request carries.
GST_START_TEST(test_unauthenticated_post_creates_nothing) {
  // A webrtcbin per viewer: the count of webrtcbins made tells what a request set up.
  Server server("auth-token=secret http-max-requests-per-client=0 shared-transport=false");
  fail_unless(server.wait_ready());
  std::atomic<int> created{0};
  g_signal_connect(server.pipeline, "deep-element-added", G_CALLBACK(+[](GstBin *, GstBin *, GstElement *e, gpointer d) {
                     GstElementFactory *f = gst_element_get_factory(e);
                     if (f && g_str_equal(GST_OBJECT_NAME(f), "webrtcbin")) (*static_cast<std::atomic<int> *>(d))++;
                   }),
                   &created);
  HttpClient http;
  const char *auths[] = {nullptr, "Bearer wrong", "Bearer secre", "Bearer secret2", "Basic c2VjcmV0", "bearer  secret x"};
  for (int i = 0; i < 60; i++) {
    std::vector<std::pair<std::string, std::string>> h = {{"Content-Type", "application/sdp"}};
    if (const char *a = auths[i % G_N_ELEMENTS(auths)]) h.emplace_back("Authorization", a);
    fail_unless_equals_int(http.request("POST", server.url(), h, kStaticOffer).status, 401);
  }
  fail_unless_equals_int(created.load(), 0);
  fail_unless_equals_int(count_webrtcbins(server.sink), 0);
  fail_unless_equals_int(server.stat("viewer-count"), 0);
  // The count sees a session the token opens.
  HttpResult r = http.request("POST", server.url(), {{"Content-Type", "application/sdp"}, {"Authorization", "Bearer secret"}},
                              kStaticOffer);
  fail_unless_equals_int(r.status, 201);
  fail_unless_equals_int(created.load(), 1);
}
GST_END_TEST;

static std::string huge_offer(int mlines, int candidates) {
  std::string o = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
  for (int i = 0; i < mlines; i++)
    o += "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:" + std::to_string(i) + "\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n";
  for (int i = 0; i < candidates; i++)
    o += "a=candidate:" + std::to_string(i) + " 1 udp 2122260223 127.0.0.1 " + std::to_string(10000 + i) + " typ host\r\n";
  return o;
}

// A flood of hostile requests from one address: answered 4xx/503 fast, while a playing
// viewer keeps playing and a new one (another address) joins within a second.
GST_START_TEST(test_flood_keeps_serving) {
  Server server("auth-token=secret");
  fail_unless(server.wait_ready());
  const std::vector<std::pair<std::string, std::string>> auth = {{"Content-Type", "application/sdp"},
                                                                 {"Authorization", "Bearer secret"}};
  HttpClient http;
  TestPlayer viewer;
  HttpResult vr = http.request("POST", server.url(), auth, viewer.create_offer());
  fail_unless_equals_int(vr.status, 201);
  fail_unless(viewer.set_remote_answer(vr.body));
  fail_unless(viewer.wait_video_frames(10, 15000));
  g_usleep(500 * 1000);
  int fds = wish_test::open_fds();
  long rss = wish_test::rss_kib();

  const char *attacker = "127.0.0.2";
  std::atomic<bool> stop{false};
  std::atomic<unsigned> answered{0}, unanswered{0}, slow{0};
  std::mutex mutex;
  std::map<unsigned, unsigned> statuses;
  auto attack = [&](const std::string &req) {
    gint64 t = g_get_monotonic_time();
    std::string resp;
    unsigned status = raw_request(server.port, req, 5000, &resp, attacker);
    if (g_get_monotonic_time() - t > 2 * G_USEC_PER_SEC) slow++;
    (status ? answered : unanswered)++;
    std::lock_guard<std::mutex> lock(mutex);
    statuses[status]++;
  };
  const std::string offer = kStaticOffer;
  const std::vector<std::string> hostile = {
      "GARBAGE\r\n\r\n",
      "GET /whep/../x HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /whep/%2e%2e/x HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /whep/..%2fx HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET http://a/whep/../../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n",
      std::string("GET /whep\x01 HTTP/1.1\r\n\r\n"),
      "GET /whep HTTP/9.9\r\nHost: a\r\n\r\n",
      "POST /whep HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      request("POST", "/whep", "Authorization: Bearer secret\r\nContent-Type: application/sdp\r\n", huge_offer(600, 0)),
      request("POST", "/whep", "Authorization: Bearer secret\r\nContent-Type: application/sdp\r\n", huge_offer(1, 900)),
      request("POST", "/whep", "Authorization: Bearer secret\r\nContent-Type: application/sdp\r\n", huge_offer(3000, 0)),
  };
  std::vector<std::thread> threads;
  // 1,000 POSTs with the token, 20 at a time: limits, not webrtcbins, absorb them.
  for (int t = 0; t < 20; t++)
    threads.emplace_back([&] {
      for (int i = 0; i < 50 && !stop; i++)
        attack(request("POST", "/whep", "Authorization: Bearer secret\r\nContent-Type: application/sdp\r\n", offer));
    });
  // Bad tokens as fast as they are answered, and malformed requests.
  threads.emplace_back([&] {
    for (int i = 0; i < 300 && !stop; i++)
      attack(request("POST", "/whep", "Authorization: Bearer guess" + std::to_string(i) + "\r\nContent-Type: application/sdp\r\n", offer));
  });
  threads.emplace_back([&] {
    for (int i = 0; i < 200 && !stop; i++) attack(hostile[i % hostile.size()]);
  });

  // Meanwhile a new viewer joins (another address than the attacker's) and the first one plays on.
  g_usleep(300 * 1000);
  guint64 frames = viewer.video_frames();
  auto late_owner = std::make_unique<TestPlayer>();  // goes before the count of what is left
  TestPlayer &late = *late_owner;
  std::string late_offer = late.create_offer();
  gint64 t0 = g_get_monotonic_time();
  HttpResult lr = http.request("POST", server.url(), auth, late_offer);
  double join_s = (g_get_monotonic_time() - t0) / 1e6;
  fail_unless_equals_int(lr.status, 201);
  fail_unless(late.set_remote_answer(lr.body));
  fail_unless(late.wait_video_frames(10, 10000), "the new viewer did not play during the flood");
  fail_unless(viewer.wait_video_frames(frames + 60, 5000), "the viewer got %" G_GUINT64_FORMAT " frames",
              viewer.video_frames() - frames);
  for (auto &t : threads) t.join();
  std::string summary;
  for (auto &kv : statuses) summary += std::to_string(kv.first) + "x" + std::to_string(kv.second) + " ";
  g_print("flood: %u answered (%s), %u unanswered, %u slower than 2 s; new viewer answered in %.3f s\n",
          answered.load(), summary.c_str(), unanswered.load(), slow.load(), join_s);
  fail_unless(join_s < 1.0, "the new viewer waited %.2f s for its answer", join_s);
  fail_unless_equals_int(unanswered.load(), 0);
  fail_unless(statuses.count(200) == 0 && statuses.count(500) == 0, "%s", summary.c_str());
  fail_unless(viewer.wait_video_frames(viewer.video_frames() + 30, 5000));
  // The new viewer leaves; nothing is left of the flood but the few sessions it was allowed,
  // which expire.
  fail_unless_equals_int(http.request("DELETE", server.url(lr.header("Location")), {{"Authorization", "Bearer secret"}}).status, 200);
  late_owner.reset();
  fail_unless(wait_until(20000, [&] { return wish_test::open_fds() <= fds + 4; }), "fds %d -> %d", fds,
              wish_test::open_fds());
  long grown = (wish_test::rss_kib() - rss) / 1024;
  g_print("after the flood: %+d fds, RSS %+ld MiB\n", wish_test::open_fds() - fds, grown);
  fail_unless(grown < 150, "RSS grew by %ld MiB", grown);
  fail_unless_equals_int(wish_test::tcp_sockets_in_state(server.port, "08"), 0);
}
GST_END_TEST;

// Each kind of malformed request on its own gets its 4xx, before anything is set up.
GST_START_TEST(test_malformed_requests) {
  Server server("auth-token=secret http-max-requests-per-client=0");
  const std::string sdp = "Authorization: Bearer secret\r\nContent-Type: application/sdp\r\n";
  const std::vector<std::pair<std::string, unsigned>> cases = {
      {"GARBAGE\r\n\r\n", 400},
      {"GET /whep/../x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET /whep/%2e%2e/x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET /whep/%2E%2e HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET /whep/./sessions HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET /whep/..%2fx HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET /whep/..%5cx HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET /whep/%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET http://a/whep/../../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {std::string("GET /whep\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
      {"GET /whep HTTP/9.9\r\nHost: a\r\n\r\n", 400},
      {"G(T /whep HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET /whep HTTP/1.1\r\nHost: a\r\n folded: header\r\n\r\n", 400},
      {"GET /whep HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n", 400},
      {"POST /whep HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"POST /whep HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nv=0\r\n", 400},
      {"POST /whep HTTP/1.1\r\nHost: a\r\nContent-Length: 999999\r\n\r\n", 413},
      {request("POST", "/whep", sdp, huge_offer(600, 0)), 400},
      {request("POST", "/whep", sdp, huge_offer(1, 900)), 400},
      {request("POST", "/whep", sdp, huge_offer(3000, 0)), 413},
      // And what is fine still is.
      {request("GET", "/whep/sessions/../../whep"), 400},
      {request("GET", "/whep?x=../y"), 401},
  };
  for (const auto &c : cases) {
    gint64 t = g_get_monotonic_time();
    unsigned status = raw_request(server.port, c.first, 5000);
    double took = (g_get_monotonic_time() - t) / 1e6;
    fail_unless(status == c.second, "%u instead of %u for %s", status, c.second, c.first.substr(0, 60).c_str());
    fail_unless(took < 1.0, "%.2f s for %s", took, c.first.substr(0, 60).c_str());
  }
  fail_unless_equals_int(count_webrtcbins(server.sink), 0);
}
GST_END_TEST;

// The UDP ports of the local candidates (stats) of every webrtcbin in `bin`.
static std::vector<unsigned> candidate_ports(GstElement *bin) {
  std::vector<unsigned> ports;
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(bin));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElement *e = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory *f = gst_element_get_factory(e);
    if (f && g_str_equal(GST_OBJECT_NAME(f), "webrtcbin")) {
      GstPromise *p = gst_promise_new();
      g_signal_emit_by_name(e, "get-stats", nullptr, p);
      if (gst_promise_wait(p) == GST_PROMISE_RESULT_REPLIED) {
        gst_structure_foreach(gst_promise_get_reply(p),
                              // By id: webrtcbin 1.22 swaps the types of local and remote candidates.
                              [](GQuark field, const GValue *v, gpointer d) -> gboolean {
                                if (!GST_VALUE_HOLDS_STRUCTURE(v)) return TRUE;
                                const GstStructure *st = gst_value_get_structure(v);
                                guint port = 0;
                                if (g_str_has_prefix(g_quark_to_string(field), "ice-candidate-local_") &&
                                    gst_structure_get_uint(st, "port", &port))
                                  static_cast<std::vector<unsigned> *>(d)->push_back(port);
                                return TRUE;
                              },
                              &ports);
      }
      gst_promise_unref(p);
    }
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return ports;
}

// The UDP candidates' ports of the answer to a POST of kStaticOffer (TCP active ones name none).
static std::vector<unsigned> answer_ports(const std::string &url) {
  HttpClient http;
  HttpResult r = http.request("POST", url, {{"Content-Type", "application/sdp"}}, kStaticOffer);
  fail_unless_equals_int(r.status, 201);
  std::vector<unsigned> ports;
  GRegex *re = g_regex_new("a=candidate:\\S+ \\d+ (?i:udp) \\d+ \\S+ (\\d+) typ", GRegexCompileFlags(0), GRegexMatchFlags(0), nullptr);
  GMatchInfo *m = nullptr;
  for (g_regex_match(re, r.body.c_str(), GRegexMatchFlags(0), &m); g_match_info_matches(m); g_match_info_next(m, nullptr)) {
    gchar *port = g_match_info_fetch(m, 1);
    ports.push_back(static_cast<unsigned>(atoi(port)));
    g_free(port);
  }
  g_match_info_free(m);
  g_regex_unref(re);
  return ports;
}

// ice-port-range keeps the candidates of servers and clients in their range: a webrtcbin
// viewer's and the shared transport's.
GST_START_TEST(test_ice_port_range) {
  Server server("ice-port-range=41000-41009 shared-transport=false");
  fail_unless(server.wait_ready());
  Player player(server.url(), "ice-port-range=41100-41109");
  fail_unless(player.wait_video(10, 15000));
  std::vector<unsigned> server_ports = candidate_ports(server.sink), client_ports = candidate_ports(player.src);
  fail_if(server_ports.empty() || client_ports.empty());
  for (unsigned p : server_ports) fail_unless(p >= 41000 && p <= 41009, "server candidate on port %u", p);
  for (unsigned p : client_ports) fail_unless(p >= 41100 && p <= 41109, "client candidate on port %u", p);
  g_print("candidate ports: server %u, client %u\n", server_ports[0], client_ports[0]);
  // The answer says the same.
  std::vector<unsigned> answered = answer_ports(server.url());
  fail_if(answered.empty());
  for (unsigned p : answered) fail_unless(p >= 41000 && p <= 41009, "answer candidate on port %u", p);
  // The shared transport's one agent gathers in the range too, and its viewer plays.
  Server shared("ice-port-range=41010-41019");
  fail_unless(shared.wait_ready());
  Player shared_player(shared.url(), "ice-port-range=41110-41119");
  fail_unless(shared_player.wait_video(10, 15000));
  fail_unless_equals_int(count_webrtcbins(shared.sink), 0);
  answered = answer_ports(shared.url());
  fail_if(answered.empty());
  for (unsigned p : answered) fail_unless(p >= 41010 && p <= 41019, "shared answer candidate on port %u", p);
  // A range that is none stops the element from starting.
  GstElement *bad = gst_element_factory_make("whepserversink", nullptr);
  g_object_set(bad, "port", 0u, "address", "127.0.0.1", "ice-port-range", "9-3", nullptr);
  fail_unless_equals_int(gst_element_set_state(bad, GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
  gst_element_set_state(bad, GST_STATE_NULL);
  gst_object_unref(bad);
}
GST_END_TEST;

// Over TLS the same limits hold: a handshake that never comes is cut off, a body too large
// is refused.
GST_START_TEST(test_tls_limits) {
  gchar *dir = g_dir_make_tmp("wish-tls-XXXXXX", nullptr);
  std::string cert = std::string(dir) + "/cert.pem", key = std::string(dir) + "/key.pem";
  std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout " + key +
                    " -out " + cert + " 2>/dev/null";
  fail_unless_equals_int(system(cmd.c_str()), 0);
  {
    Server server("tls-certificate-file=" + cert + " tls-key-file=" + key + " http-header-timeout=2");
    RawConn silent(server.port);
    fail_unless(silent.ok());
    gint64 t = g_get_monotonic_time();
    fail_unless(silent.wait_closed(6000), "a connection without a TLS handshake stayed open");
    fail_unless((g_get_monotonic_time() - t) / 1e6 < 4.0);
    HttpClient https(true);
    std::string url = "https://127.0.0.1:" + std::to_string(server.port) + "/whep";
    // Several times: whether libsoup reads the head while the connection is handed to it or
    // later depends on timing, and the refusal must be answered either way.
    for (int i = 0; i < 8; i++) {
      HttpResult refused = https.request("POST", url, {{"Content-Type", "application/sdp"}}, std::string(100 * 1024, 'a'));
      fail_unless_equals_int(refused.status, 413);
    }
    HttpResult r = https.request("OPTIONS", url);
    fail_unless_equals_int(r.status, 200);
    assert_str(r.header("Server"), "wish");
  }
  unlink(cert.c_str());
  unlink(key.c_str());
  rmdir(dir);
  g_free(dir);
}
GST_END_TEST;

static Suite *http_hardening_suite(void) {
  Suite *s = suite_create("http_hardening");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 300);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_server_header);
  tcase_add_test(tc, test_refused_requests_leave_no_socket);
  tcase_add_test(tc, test_oversized_headers);
  tcase_add_test(tc, test_slow_and_short_requests);
  tcase_add_test(tc, test_endless_chunked_body);
  tcase_add_test(tc, test_burst_of_connections);
  tcase_add_test(tc, test_per_client_limits);
  tcase_add_test(tc, test_unauthenticated_post_creates_nothing);
  tcase_add_test(tc, test_malformed_requests);
  tcase_add_test(tc, test_flood_keeps_serving);
  tcase_add_test(tc, test_ice_port_range);
  tcase_add_test(tc, test_tls_limits);
  return s;
}

WISH_CHECK_MAIN(http_hardening);
