// The pacing of a relay's key frame requests to a publisher: one request at once, those that
// follow within the minimum interval coalesced into one when it ends, none when a key frame
// came meanwhile, again when unanswered, and encodings of one sender paced together.
#include <gst/check/gstcheck.h>

#include <vector>

#include "protocol/keyframe_pacer.h"

using namespace wish;

namespace {
constexpr int64_t kMs = 1000;
KeyframePacer::Config config() {
  KeyframePacer::Config c;
  c.min_interval_us = 400 * kMs;
  c.answer_timeout_us = 800 * kMs;
  c.max_attempts = 3;
  return c;
}
using V = std::vector<int>;
}  // namespace

GST_START_TEST(test_first_request_goes_at_once) {
  KeyframePacer p(config());
  int v = p.add_encoding();
  fail_unless(p.next_poll_us() == -1);
  fail_unless(p.want(v, 1000 * kMs) == V{v});
  fail_unless(p.wanted(v));
  p.keyframe(v);
  fail_unless(!p.wanted(v));
  fail_unless(p.next_poll_us() == -1);
}
GST_END_TEST;

GST_START_TEST(test_requests_within_the_interval_coalesce) {
  KeyframePacer p(config());
  int v = p.add_encoding();
  fail_unless(p.want(v, 1000 * kMs) == V{v});
  p.keyframe(v);  // the first viewer's key frame
  // Three more viewers within the interval: nothing now, one request when it ends.
  fail_unless(p.want(v, 1100 * kMs).empty());
  fail_unless(p.want(v, 1200 * kMs).empty());
  fail_unless(p.want(v, 1350 * kMs).empty());
  fail_unless_equals_int64(p.next_poll_us(), 1400 * kMs);
  fail_unless(p.poll(1399 * kMs).empty());
  fail_unless(p.poll(1400 * kMs) == V{v});
  p.keyframe(v);
  fail_unless(p.poll(3000 * kMs).empty());
}
GST_END_TEST;

// An encoder of our own honours every request: its pacing is shorter, and a request made
// 300 ms after the last goes at once where a publisher's waits for the 500 ms.
GST_START_TEST(test_shorter_interval_for_own_encoder) {
  KeyframePacer p;
  int e = p.add_encoding();
  fail_unless_equals_int(p.want(e, 0).size(), 1);
  p.keyframe(e);
  fail_unless(p.want(e, 300 * 1000).empty(), "a publisher's request went within 500 ms");
  p.keyframe(e);
  KeyframePacer own;
  own.set_min_interval_us(200 * 1000);
  e = own.add_encoding();
  fail_unless_equals_int(own.want(e, 0).size(), 1);
  own.keyframe(e);
  fail_unless(own.want(e, 100 * 1000).empty(), "a request went within 200 ms");
  fail_unless_equals_int(own.poll(200 * 1000).size(), 1);
  own.keyframe(e);
  fail_unless_equals_int(own.want(e, 500 * 1000).size(), 1);
}
GST_END_TEST;

GST_START_TEST(test_keyframe_meanwhile_answers_waiting_request) {
  KeyframePacer p(config());
  int v = p.add_encoding();
  fail_unless(p.want(v, 1000 * kMs) == V{v});
  // Asked again while the key frame is under way: that key frame reaches both.
  fail_unless(p.want(v, 1020 * kMs).empty());
  p.keyframe(v);
  fail_unless(p.next_poll_us() == -1);
  fail_unless(p.poll(1400 * kMs).empty());
}
GST_END_TEST;

GST_START_TEST(test_unanswered_request_goes_again) {
  KeyframePacer p(config());
  int v = p.add_encoding();
  fail_unless(p.want(v, 1000 * kMs) == V{v});
  fail_unless_equals_int64(p.next_poll_us(), 1800 * kMs);
  fail_unless(p.poll(1500 * kMs).empty());
  fail_unless(p.poll(1800 * kMs) == V{v});
  fail_unless(p.poll(2600 * kMs) == V{v});
  // max_attempts (3) unanswered: given up, until someone asks again.
  fail_unless(p.poll(3400 * kMs).empty());
  fail_unless(!p.wanted(v));
  fail_unless_equals_int(p.given_up(), 1);
  fail_unless(p.want(v, 5000 * kMs) == V{v});
}
GST_END_TEST;

GST_START_TEST(test_encodings_of_a_sender_paced_together) {
  // Simulcast: a request for one encoding at 1000 ms, one for another 50 ms later. The sender
  // would drop the second; it waits, and goes only if its own key frame does not come.
  KeyframePacer p(config());
  int q = p.add_encoding(), f = p.add_encoding(), h = p.add_encoding();
  fail_unless(p.want(f, 1000 * kMs) == V{f});
  fail_unless(p.want(h, 1050 * kMs).empty());
  fail_unless(p.want(q, 1060 * kMs).empty());
  p.keyframe(f);
  p.keyframe(q);  // the sender made key frames of every encoding, q's after its request
  fail_unless(p.poll(1400 * kMs) == V{h});
  p.keyframe(h);
  fail_unless(p.next_poll_us() == -1);
  // Both wanted when the interval ends: one request names both.
  fail_unless(p.want(q, 1500 * kMs).empty());
  fail_unless(p.want(f, 1600 * kMs).empty());
  fail_unless(p.poll(1800 * kMs) == V({q, f}));
}
GST_END_TEST;

static Suite *keyframe_pacer_suite(void) {
  Suite *s = suite_create("keyframe-pacer");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_first_request_goes_at_once);
  tcase_add_test(tc, test_requests_within_the_interval_coalesce);
  tcase_add_test(tc, test_shorter_interval_for_own_encoder);
  tcase_add_test(tc, test_keyframe_meanwhile_answers_waiting_request);
  tcase_add_test(tc, test_unanswered_request_goes_again);
  tcase_add_test(tc, test_encodings_of_a_sender_paced_together);
  return s;
}

GST_CHECK_MAIN(keyframe_pacer);
