// HeldPackets: what whipserversrc's pads hold of each simulcast encoding while they choose
// one, so the chosen one starts on the key frame its publisher already sent.
#include <gst/check/gstcheck.h>

#include <string>
#include <vector>

#include "held_packets.h"

using namespace wish;

namespace {

// An H.264 RTP packet (RFC 6184) with `payload` at RTP timestamp `ts`.
GstBuffer *h264(uint32_t ts, std::vector<uint8_t> payload) {
  std::vector<uint8_t> p = {0x80, 0x66, 0, 1, uint8_t(ts >> 24), uint8_t(ts >> 16), uint8_t(ts >> 8), uint8_t(ts),
                            0, 0, 0, 7};
  for (uint8_t b : payload) p.push_back(b);
  return gst_buffer_new_memdup(p.data(), p.size());
}

// The packet goes to the hold as the pad probe hands it (which keeps its own reference).
void add(HeldPackets &held, GstBuffer *buffer, int *width = nullptr, int *height = nullptr) {
  int w = 0, h = 0;
  GstMapInfo map;
  fail_unless(gst_buffer_map(buffer, &map, GST_MAP_READ));
  held.add(buffer, "H264", map.data, map.size, &w, &h);
  gst_buffer_unmap(buffer, &map);
  if (width) *width = w;
  if (height) *height = h;
  gst_buffer_unref(buffer);
}

// An SPS of 640x360 (baseline, cropped) and a PPS in a STAP-A, the start and end of an IDR
// slice in FU-A, a P slice.
const std::vector<uint8_t> kSps = {0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x2f, 0xf9, 0x70, 0x16, 0xa0, 0xc0, 0xc0,
                                   0xd4, 0xa0, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x07, 0x91, 0xe2, 0xc5, 0xc9};
std::vector<uint8_t> stap_sps_pps() {
  std::vector<uint8_t> p;
  p.reserve(64);
  for (uint8_t b : {uint8_t(0x78), uint8_t(0x00), uint8_t(kSps.size())}) p.push_back(b);
  for (uint8_t b : kSps) p.push_back(b);
  for (uint8_t b : {0x00, 0x04, 0x68, 0xcb, 0x8c, 0xb2}) p.push_back(b);
  return p;
}
const std::vector<uint8_t> kIdrStart = {0x7c, 0x85, 0xaa}, kIdrEnd = {0x7c, 0x45, 0xbb}, kP = {0x41, 0x9a, 0xcc};

}  // namespace

GST_START_TEST(test_hold_from_key_frame) {
  HeldPackets held(100);
  add(held, h264(1000, kP));
  fail_if(held.holds_keyframe(), "nothing is held before a key frame");
  // The key frame's SPS/PPS and its IDR slice are one picture: the hold starts at the first.
  int w = 0, h = 0;
  add(held, h264(4000, stap_sps_pps()), &w, &h);
  fail_unless_equals_int(w, 640);
  fail_unless_equals_int(h, 360);
  add(held, h264(4000, kIdrStart));
  add(held, h264(4000, kIdrEnd));
  add(held, h264(7000, kP));
  held.mark();
  add(held, h264(10000, kP));  // the packet being looked at: it passes on its own
  fail_unless(held.holds_keyframe());
  std::vector<GstBuffer *> out = held.take_marked();
  fail_unless_equals_int(out.size(), 4);
  GstMapInfo map;
  fail_unless(gst_buffer_map(out[0], &map, GST_MAP_READ));
  fail_unless_equals_int(map.data[12], 0x78);  // the STAP-A first
  gst_buffer_unmap(out[0], &map);
  for (GstBuffer *b : out) {
    fail_unless_equals_int(GST_MINI_OBJECT_REFCOUNT_VALUE(b), 1);
    gst_buffer_unref(b);
  }
  fail_if(held.holds_keyframe(), "taken");
}
GST_END_TEST;

GST_START_TEST(test_new_key_frame_starts_again) {
  HeldPackets held(100);
  add(held, h264(1000, stap_sps_pps()));
  add(held, h264(1000, kIdrStart));
  add(held, h264(4000, kP));
  held.mark();
  add(held, h264(7000, stap_sps_pps()));  // a later key frame, in the packet being looked at
  fail_unless(held.holds_keyframe());
  fail_unless(held.take_marked().empty(), "the key frame passes with the packet being looked at");
}
GST_END_TEST;

GST_START_TEST(test_too_many_packets) {
  HeldPackets held(3);
  add(held, h264(1000, stap_sps_pps()));
  for (uint32_t ts = 4000; ts < 16000; ts += 3000) add(held, h264(ts, kP));
  fail_if(held.holds_keyframe(), "a hold over its bound is let go");
  add(held, h264(16000, kP));
  fail_if(held.holds_keyframe(), "and starts again only with a key frame");
  add(held, h264(19000, stap_sps_pps()));
  fail_unless(held.holds_keyframe());
}
GST_END_TEST;

static Suite *held_packets_suite(void) {
  Suite *s = suite_create("held_packets");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_hold_from_key_frame);
  tcase_add_test(tc, test_new_key_frame_starts_again);
  tcase_add_test(tc, test_too_many_packets);
  return s;
}

GST_CHECK_MAIN(held_packets);
