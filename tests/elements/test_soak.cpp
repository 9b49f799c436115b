// The short soak (bench/soak is the long one): a whepserversink in a process of its own takes
// 1,000 POST/DELETE cycles and 100 viewers that POST and vanish without DELETE; afterwards its
// file descriptors and threads are back where they were, and every vanished session was
// removed within viewer-timeout + 5 s. Also the defects the soak found, each with its test.
#include <gst/gst.h>

#include <regex>
#include <set>
#include <string>
#include <vector>

#include "soak.h"
#include "fixtures.h"

using wish_soak::ProcStats;
using wish_soak::ServerProcess;
using wish_test::HttpClient;
using wish_test::HttpResult;


static unsigned env_count(const char *name, unsigned fallback) {
  const char *v = g_getenv(name);
  return v ? static_cast<unsigned>(atoi(v)) : fallback;
}

// What the server may keep above its baseline once idle: GLib's thread pools keep up to two
// unused threads for good (and others for 15 s), and an fd or two come and go with the HTTP
// connections and libnice's sockets being closed.
static constexpr long kFdSlack = 2, kThreadSlack = 2;

static void expect_baseline(ServerProcess &server, const ProcStats &baseline, const char *after) {
  HttpClient http;
  fail_unless(wait_until(15000, [&] { return ServerProcess::open_sessions(server.metrics(http)) == 0; }),
              "%s: %.0f sessions left", after, ServerProcess::open_sessions(server.metrics(http)));
  // Idle pool threads leave after 15 s.
  ProcStats now = wish_soak::settle_to(server, baseline, kFdSlack, kThreadSlack, 25);
  g_print("after %s: %s (baseline %s)\n", after, wish_soak::describe(now).c_str(),
          wish_soak::describe(baseline).c_str());
  fail_unless(now.fds <= baseline.fds + kFdSlack, "after %s: %ld fds, %ld before (%s)", after, now.fds, baseline.fds,
              wish_soak::fd_kinds(server.pid).c_str());
  fail_unless(now.threads <= baseline.threads + kThreadSlack, "after %s: %ld threads, %ld before", after, now.threads,
              baseline.threads);
}

GST_START_TEST(test_soak_cycles_and_vanished_viewers) {
  const unsigned cycles = env_count("WISH_SOAK_CYCLES", 1000), vanish = env_count("WISH_SOAK_VANISH", 100);
  const unsigned timeout_s = 3;  // viewer-timeout
  const std::string offer = chromium_offer();
  ServerProcess server;
  std::string error;
  // Every client here is 127.0.0.1: the per-client limits would refuse the soak.
  fail_unless(server.start("viewer-timeout=" + std::to_string(timeout_s) +
                               " max-pending-sessions-per-client=0 http-max-requests-per-client=0"
                               " http-max-connections-per-client=0",
                           offer, &error),
              "%s", error.c_str());
  const pid_t pid = server.pid;
  wish_test::kill_at_teardown(pid);
  // Warm-up: the first sessions make pools, the DTLS certificate and caches for good.
  auto warm = wish_soak::run_cycles(server.base, server.endpoint(), offer, 50, 4, 0);
  fail_unless_equals_int(warm.failed, 0);
  g_usleep(16 * G_USEC_PER_SEC);  // idle pool threads leave after 15 s
  ProcStats baseline = server.stats();

  auto a = wish_soak::run_cycles(server.base, server.endpoint(), offer, cycles, 4, 0);
  g_print("%u POST/DELETE cycles in %.1f s; POST %s\n", a.done, a.seconds, wish_soak::spread(a.post_ms, "ms").c_str());
  fail_unless(a.failed == 0 && a.done == cycles, "%u of %u cycles failed, first: %s", a.failed, cycles,
              a.first_failure.c_str());
  fail_unless(server.alive(), "the server died during the cycles, see %s", server.log_path.c_str());
  expect_baseline(server, baseline, "the cycles");

  auto b = wish_soak::run_vanishing(server.base, server.endpoint(), offer, vanish, 25, timeout_s, 5);
  g_print("%u vanished viewers, removed after %s\n", b.posted, wish_soak::spread(b.removed_after_s, "s").c_str());
  fail_unless(b.refused == 0, "%u POSTs refused, first: %s", b.refused, b.first_refusal.c_str());
  fail_unless(b.late == 0 && b.never_removed == 0 && b.removed_after_s.size() == vanish,
              "vanished sessions: %u removed later than viewer-timeout + 5 s, %u never (of %u)", b.late,
              b.never_removed, vanish);
  fail_unless(server.alive(), "the server died with the vanished viewers, see %s", server.log_path.c_str());
  expect_baseline(server, baseline, "the vanished viewers");

  std::string how = server.stop();
  fail_unless(how == "exit 0", "the server ended with %s, see %s", how.c_str(), server.log_path.c_str());
  wish_test::forget_process(pid);
}
GST_END_TEST;

static std::set<std::string> answer_ssrcs(const std::string &answer) {
  std::set<std::string> out;
  static const std::regex line("a=ssrc:([0-9]+) ");
  for (std::sregex_iterator it(answer.begin(), answer.end(), line), end; it != end; ++it) out.insert((*it)[1]);
  return out;
}

// Quarks are numbered in order and never freed: a new one's number says how many the
// process has made so far.
static guint quarks_made() {
  static guint probes = 0;
  probes++;
  GQuark probe = g_quark_from_string(("wish-test-quark-count-" + std::to_string(probes)).c_str());
  return probe - probes;  // less the probes themselves
}

// Found by bench/soak: the server grew by a few hundred bytes for every viewer that ever
// came (RSS +8 MiB after 10,000 POST/DELETE cycles, growing on). Each viewer had new random
// SSRCs, and webrtcbin names caps fields after the SSRCs of its local description
// ("ssrc-<n>-cname", "ssrc-<n>-msid") and keys its RTX map by them: GLib keeps the quark of
// every field name ever made, 7 a viewer. The SSRCs of gone viewers are taken again now,
// the retransmission SSRC webrtcbin draws itself replaced by one of them; viewers served at
// the same time still get their own.
GST_START_TEST(test_viewer_ssrcs_are_reused) {
  Server server("http-max-requests-per-client=0");
  fail_unless(server.wait_ready());
  HttpClient http;
  const std::string offer = chromium_offer();  // with retransmissions
  auto cycle = [&](std::set<std::string> *ssrcs) {
    HttpResult r = http.request("POST", server.url(), {{"Content-Type", "application/sdp"}}, offer);
    fail_unless_equals_int(r.status, 201);
    std::set<std::string> s = answer_ssrcs(r.body);
    fail_unless_equals_int(s.size(), 3);  // video, its retransmissions and audio
    if (ssrcs) ssrcs->insert(s.begin(), s.end());
    fail_unless_equals_int(http.request("DELETE", server.url(r.header("Location"))).status, 200);
    fail_unless(wait_until(5000, [&] { return server.stat("viewer-count") == 0; }));
  };
  for (int i = 0; i < 3; i++) cycle(nullptr);  // what the first sessions make for good
  const int cycles = 30;
  std::set<std::string> seen;
  guint before = quarks_made();
  for (int i = 0; i < cycles; i++) cycle(&seen);
  guint made = quarks_made() - before;
  g_print("%d viewers one after the other: %zu SSRCs announced, %u quarks made\n", cycles, seen.size(), made);
  // A session's SSRCs come back once it is destroyed, which may be just after the next
  // POST: a few viewers' worth at most. Before the pool: 3 * 30 SSRCs and 7 quarks a viewer.
  fail_unless(seen.size() <= 9, "%d viewers one after the other were sent with %zu SSRCs", cycles, seen.size());
  fail_unless(made <= 12, "%d viewers made %u quarks (GLib never frees them)", cycles, made);

  // Viewers at the same time: SSRCs of their own.
  std::set<std::string> together;
  std::vector<std::string> sessions;
  for (int i = 0; i < 3; i++) {
    HttpResult r = http.request("POST", server.url(), {{"Content-Type", "application/sdp"}}, offer);
    fail_unless_equals_int(r.status, 201);
    std::set<std::string> ssrcs = answer_ssrcs(r.body);
    together.insert(ssrcs.begin(), ssrcs.end());
    sessions.push_back(server.url(r.header("Location")));
  }
  fail_unless_equals_int(together.size(), 9);
  for (const auto &s : sessions) fail_unless_equals_int(http.request("DELETE", s).status, 200);
}
GST_END_TEST;

static Suite *soak_suite(void) {
  Suite *s = suite_create("soak");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 240);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_viewer_ssrcs_are_reused);
  tcase_add_test(tc, test_soak_cycles_and_vanished_viewers);
  return s;
}

WISH_CHECK_MAIN(soak);
