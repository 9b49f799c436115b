// The SSRC pool of server outputs: SSRCs held at the same time differ, given-back ones are
// taken again before any new one is drawn, and 0 is never handed out.
#include <gst/check/gstcheck.h>

#include <set>
#include <vector>

#include "protocol/ssrc_pool.h"

using namespace wish;

GST_START_TEST(test_held_ssrcs_differ) {
  // A source that repeats itself and says 0: the pool still hands out distinct SSRCs.
  std::vector<uint32_t> draws = {0, 7, 7, 0, 9, 7, 9, 11};
  size_t next = 0;
  SsrcPool pool([&] { return draws[next++ % draws.size()]; });
  std::set<uint32_t> held;
  for (int i = 0; i < 3; i++) held.insert(pool.take());
  fail_unless(held == std::set<uint32_t>({7, 9, 11}));
  fail_unless_equals_int(pool.held(), 3);
}
GST_END_TEST;

GST_START_TEST(test_given_back_ssrcs_come_again) {
  uint32_t counter = 100;
  SsrcPool pool([&] { return counter++; });
  uint32_t a = pool.take(), b = pool.take();
  pool.give(a);
  pool.give(a);   // twice: still once in the pool
  pool.give(42);  // never taken: ignored
  fail_unless_equals_int(pool.available(), 1);
  fail_unless_equals_int(pool.take(), a);
  fail_unless_equals_int(pool.take(), 102);  // nothing left to reuse: a new one
  pool.give(b);
  fail_unless_equals_int(pool.take(), b);
  fail_unless_equals_int(pool.held(), 3);
  fail_unless_equals_int(pool.available(), 0);
}
GST_END_TEST;

GST_START_TEST(test_lease_gives_back) {
  SsrcPool &pool = SsrcPool::shared();
  size_t held = pool.held();
  uint32_t v, a;
  {
    SsrcLease lease;
    v = lease.take();
    a = lease.take();
    fail_unless(v != a && v != 0 && a != 0);
    fail_unless_equals_int(pool.held(), held + 2);
  }
  fail_unless_equals_int(pool.held(), held);
  SsrcLease next;
  std::set<uint32_t> again = {next.take(), next.take()};
  fail_unless(again == std::set<uint32_t>({v, a}));
}
GST_END_TEST;

static Suite *ssrc_pool_suite(void) {
  Suite *s = suite_create("ssrc-pool");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_held_ssrcs_differ);
  tcase_add_test(tc, test_given_back_ssrcs_come_again);
  tcase_add_test(tc, test_lease_gives_back);
  return s;
}

GST_CHECK_MAIN(ssrc_pool);
