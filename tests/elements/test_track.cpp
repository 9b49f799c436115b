// Track (gst/wish/track.h) hands what its payloader pushes to its sinks: a buffer list goes
// packet by packet to every sink in turn, so that a sink sharing one copy of a packet among
// its viewers (shared_viewers.cpp) sees each packet for all of them in a row.
#include <gst/check/gstcheck.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "track.h"

GST_DEBUG_CATEGORY(wish_streams_debug);  // track.cpp's, defined by the plugin otherwise

using namespace wish;

namespace {

struct Delivery {
  int sink;
  GstBuffer *buffer;  // identity only
};

class RecordingSink : public TrackSink {
public:
  RecordingSink(int id, std::vector<Delivery> *log) : id_(id), log_(log) {}
  void deliver(const std::shared_ptr<Track> &, GstBuffer *buffer) override {
    log_->push_back({id_, buffer});
    gst_buffer_unref(buffer);
  }

private:
  int id_;
  std::vector<Delivery> *log_;
};

}  // namespace

GST_START_TEST(test_buffer_list_packet_by_packet) {
  GstPad *pad = gst_pad_new("src", GST_PAD_SRC);
  gst_pad_set_active(pad, TRUE);
  auto track = std::make_shared<Track>("video");
  track->set_source(pad);
  std::vector<Delivery> log;
  for (int i = 0; i < 3; i++) track->add_sink(std::make_shared<RecordingSink>(i, &log));

  fail_unless(gst_pad_push_event(pad, gst_event_new_stream_start("track-test")));
  GstCaps *caps = gst_caps_from_string("application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,payload=96");
  fail_unless(gst_pad_push_event(pad, gst_event_new_caps(caps)));
  gst_caps_unref(caps);
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  fail_unless(gst_pad_push_event(pad, gst_event_new_segment(&segment)));

  GstBufferList *list = gst_buffer_list_new();
  std::vector<GstBuffer *> buffers;
  for (int i = 0; i < 4; i++) {
    GstBuffer *b = gst_buffer_new_allocate(nullptr, 100, nullptr);
    buffers.push_back(b);
    gst_buffer_list_add(list, b);
  }
  fail_unless_equals_int(gst_pad_push_list(pad, list), GST_FLOW_OK);  // the track's probe took it

  fail_unless_equals_int(log.size(), 12);
  for (size_t i = 0; i < log.size(); i++) {
    fail_unless_equals_int(log[i].sink, static_cast<int>(i % 3));
    fail_unless(log[i].buffer == buffers[i / 3], "delivery %zu: not packet %zu of the list", i, i / 3);
  }

  // A lone buffer goes to every sink too.
  log.clear();
  GstBuffer *one = gst_buffer_new_allocate(nullptr, 100, nullptr);
  fail_unless_equals_int(gst_pad_push(pad, one), GST_FLOW_OK);
  fail_unless_equals_int(log.size(), 3);
  for (const Delivery &d : log) fail_unless(d.buffer == one);

  track->clear_source();
  gst_pad_set_active(pad, FALSE);
  gst_object_unref(pad);
}
GST_END_TEST;

static Suite *track_suite(void) {
  Suite *s = suite_create("track");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_buffer_list_packet_by_packet);
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  GST_DEBUG_CATEGORY_INIT(wish_streams_debug, "wishstreams", 0, "wish streams (track test)");
  return gst_check_run_suite(track_suite(), "track", __FILE__);
}
