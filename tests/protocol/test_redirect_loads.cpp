// Least-loaded redirects: reading other servers' viewer counts from their Prometheus text,
// their metrics URLs, and which endpoint a full server sends the next viewer to.
#include <gst/check/gstcheck.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>

#include "fake_media.h"
#include "protocol/endpoint.h"
#include "protocol/metrics.h"
#include "protocol/redirect_loads.h"
#include "string_checks.h"

using namespace wish;

namespace {

const char *const kOffer = kVideoOnlyOffer;
const std::map<std::string, std::string> &kSdp = kSdpType;

double sum_or(const std::string &text, const std::string &name, double otherwise) {
  auto v = prometheus_sum(text, name);
  return v ? *v : otherwise;
}

}  // namespace

// What our own metrics writer produces reads back, summed over streams; other families,
// comments, timestamps and escaped labels are read past.
GST_START_TEST(test_prometheus_sum) {
  MetricsText m;
  m.gauge("wish_viewers", "WHEP viewers", {{"stream", "a"}}, 3);
  m.counter("wish_sent_packets_total", "sent", {{"stream", "a"}}, 1000);
  m.gauge("wish_viewers", "WHEP viewers", {{"stream", "b \"quoted\" \\ x\ny"}}, 4);
  fail_unless_equals_int(static_cast<int>(sum_or(m.text(), "wish_viewers", -1)), 7);
  fail_unless_equals_int(static_cast<int>(sum_or(m.text(), "wish_publishers", -1)), 0);  // none: 0
  fail_unless_equals_int(static_cast<int>(sum_or(m.text(), "wish_sent_packets_total", -1)), 1000);

  const std::string other =
      "# a comment\n\n# HELP wish_viewers x\n# TYPE wish_viewers gauge\r\n"
      "wish_viewers{stream=\"a\",} 2 1700000000000\r\n"
      "wish_viewers 1.5e1\n  wish_viewers_total 100\nwish_viewers{a=\"}\"} +Inf\n";
  fail_unless(std::isinf(sum_or(other, "wish_viewers", 0)));
  fail_unless_equals_int(static_cast<int>(sum_or("x 1\nwish_viewers -3\n", "wish_viewers", 0)), -3);
  fail_unless(std::isnan(sum_or("wish_viewers NaN\n", "wish_viewers", 0)));
  fail_unless(*prometheus_sum("", "wish_viewers") == 0);

  // Not the format (an HTML page, JSON, cut-off lines): no figure at all.
  for (const char *bad : {"<html><body>hello</body></html>", "{\"viewers\": 3}", "wish_viewers",
                          "wish_viewers{stream=\"a\" 3", "wish_viewers{stream=\"a} 3", "wish_viewers 3 4 5",
                          "wish_viewers 0x10", "wish_viewers inf", "wish_viewers 3 12.5", "9lives 3",
                          "wish_viewers{1a=\"x\"} 3", "wish_viewers 1e999"})
    fail_if(prometheus_sum(bad, "wish_viewers").has_value(), "read a figure from: %s", bad);
}
GST_END_TEST;

GST_START_TEST(test_metrics_url_for) {
  assert_str(metrics_url_for("http://b.example:8889/whep", "/metrics"), "http://b.example:8889/metrics");
  assert_str(metrics_url_for("https://b.example/live/whep?x=1", "stats/m"), "https://b.example/stats/m");
  assert_str(metrics_url_for("HTTP://[::1]:80", "/metrics"), "HTTP://[::1]:80/metrics");
  assert_str(metrics_url_for("ftp://b.example/whep", "/metrics"), "");
  assert_str(metrics_url_for("/whep", "/metrics"), "");
  assert_str(metrics_url_for("http:///whep", "/metrics"), "");
}
GST_END_TEST;

// Least loaded first, counting viewers sent since the last report; ties and unknown servers
// in turn; a report replaces what was counted.
GST_START_TEST(test_redirect_loads_choice) {
  RedirectLoads loads(3);
  fail_unless_equals_int(loads.choose(0), 0);  // nothing known: in turn
  fail_unless_equals_int(loads.choose(1), 1);
  fail_unless_equals_int(loads.choose(5), 2);
  loads.report(0, 5.0);
  loads.report(1, 2.0);
  loads.report(2, std::nullopt);  // did not answer
  fail_unless_equals_int(loads.choose(0), 1);  // 2 < 5
  fail_unless_equals_int(loads.choose(0), 1);  // 3 < 5
  fail_unless_equals_int(loads.choose(0), 1);  // 4 < 5
  fail_unless_equals_int(loads.choose(1), 1);  // 5 = 5: turn 1 looks at 1 first
  fail_unless_equals_int(loads.choose(0), 0);  // 5 < 6
  loads.report(1, 0.0);
  fail_unless_equals_int(loads.choose(0), 1);
  loads.report(2, 0.0);
  loads.report(1, 0.0);
  fail_unless_equals_int(loads.choose(0), 1);  // equal 0s: from the turn on
  fail_unless_equals_int(loads.choose(2), 2);
  loads.report(0, NAN);  // not a figure: unknown
  loads.report(1, 9.0);
  loads.report(2, 9.0);
  fail_unless_equals_int(loads.choose(0), 1);
  RedirectLoads none(0);
  fail_unless_equals_int(none.choose(3), 0);
  none.report(4, 1.0);  // out of range: ignored
}
GST_END_TEST;

// A full endpoint with loads sends the next viewer to the least loaded endpoint, the
// stream's name appended; without loads, in turn as before.
GST_START_TEST(test_endpoint_redirects_least_loaded) {
  FakeBackend be;
  EndpointConfig cfg;
  cfg.max_sessions = 1;
  cfg.redirect_to = {"http://b.example/whep", "http://c.example/whep"};
  cfg.redirect_loads = std::make_shared<RedirectLoads>(2);
  cfg.redirect_loads->report(0, 10.0);
  cfg.redirect_loads->report(1, 1.0);
  auto ep = std::make_shared<Endpoint>(cfg, &be);
  fail_unless_equals_int(call(ep, "POST", "/whep", kSdp, kOffer).status, 201);
  for (int i = 0; i < 3; i++) {
    Response r = call(ep, "POST", "/whep/cam1", kSdp, kOffer);
    fail_unless_equals_int(r.status, 307);
    assert_str(r.headers.get("Location").value_or(""), "http://c.example/whep/cam1");
  }
  fail_unless_equals_int(be.streams.size(), 1);  // nothing made for the redirected ones
}
GST_END_TEST;

static Suite *redirect_loads_suite() {
  Suite *s = suite_create("redirect_loads");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_prometheus_sum);
  tcase_add_test(tc, test_metrics_url_for);
  tcase_add_test(tc, test_redirect_loads_choice);
  tcase_add_test(tc, test_endpoint_redirects_least_loaded);
  return s;
}

GST_CHECK_MAIN(redirect_loads);
