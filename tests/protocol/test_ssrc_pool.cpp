// The SSRC pool of server outputs: SSRCs held at the same time differ, given-back ones are
// taken again before any new one is drawn, and 0 is never handed out. And the SDP edits
// that put pooled SSRCs in place of the retransmission SSRCs webrtcbin draws.
#include <gst/check/gstcheck.h>

#include <set>
#include <vector>

#include "protocol/sdp.h"
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

// As webrtcbin 1.22 answers Chromium: video with its retransmission SSRC, audio without.
static const char *kAnswer =
    "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 102 103\r\na=mid:0\r\na=rtpmap:102 H264/90000\r\na=rtpmap:103 rtx/90000\r\n"
    "a=fmtp:103 apt=102\r\na=ssrc-group:FID 3967349411 3960610376\r\n"
    "a=ssrc:3967349411 msid:user1@host-1 webrtctransceiver0\r\na=ssrc:3967349411 cname:user1@host-1\r\n"
    "a=ssrc:3960610376 msid:user1@host-1 webrtctransceiver0\r\na=ssrc:3960610376 cname:user1@host-1\r\n"
    "a=sendonly\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=rtpmap:111 opus/48000/2\r\n"
    "a=ssrc:408986116 msid:user1@host-1 webrtctransceiver1\r\na=ssrc:408986116 cname:user1@host-1\r\n"
    "a=sendonly\r\n";

GST_START_TEST(test_rtx_ssrcs_replaced) {
  auto groups = rtx_ssrcs(kAnswer);
  fail_unless_equals_int(groups.size(), 1);
  fail_unless(groups[3967349411u] == 3960610376u);
  std::string edited = replace_ssrcs(kAnswer, {{3960610376u, 42u}});
  fail_unless(edited.find("a=ssrc-group:FID 3967349411 42\r\n") != std::string::npos, "%s", edited.c_str());
  fail_unless(edited.find("a=ssrc:42 msid:user1@host-1 webrtctransceiver0\r\n") != std::string::npos);
  fail_unless(edited.find("a=ssrc:42 cname:user1@host-1\r\n") != std::string::npos);
  fail_unless(edited.find("3960610376") == std::string::npos, "%s", edited.c_str());
  // Everything else as it was.
  fail_unless(replace_ssrcs(edited, {{42u, 3960610376u}}) == kAnswer);
  fail_unless(replace_ssrcs(kAnswer, {}) == kAnswer);
  fail_unless(rtx_ssrcs("v=0\r\na=ssrc-group:FID 1\r\na=ssrc-group:FID x 2\r\n").empty());
}
GST_END_TEST;

static Suite *ssrc_pool_suite(void) {
  Suite *s = suite_create("ssrc-pool");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_held_ssrcs_differ);
  tcase_add_test(tc, test_given_back_ssrcs_come_again);
  tcase_add_test(tc, test_lease_gives_back);
  tcase_add_test(tc, test_rtx_ssrcs_replaced);
  return s;
}

GST_CHECK_MAIN(ssrc_pool);
