// Time to first frame: from the state change to PLAYING of a whepsrc pipeline until the first
// decoded video frame reaches its sink, against whepserversink on 127.0.0.1 with a 2-second
// GOP at the source. Prints median and p95 over the runs (after one warm-up run).
//
//   bench/ttff [runs]      (default 20)
#include <gst/gst.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

static GstBusSyncReply drop(GstBus *, GstMessage *m, gpointer) {
  if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
    GError *err = nullptr;
    gst_message_parse_error(m, &err, nullptr);
    fprintf(stderr, "error: %s\n", err->message);
    g_clear_error(&err);
  }
  gst_message_unref(m);
  return GST_BUS_DROP;
}

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  int runs = argc > 1 ? atoi(argv[1]) : 20;
  GError *err = nullptr;
  // 30 fps, keyframe every 60 frames: a player joining at a random time would wait up to 2 s
  // for a keyframe without the element's key unit request.
  GstElement *server = gst_parse_launch(
      "whepserversink name=s address=127.0.0.1 port=0 ice-local-addresses=127.0.0.1 key-int-max=60 "
      "videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 ! s. "
      "audiotestsrc is-live=true ! s.",
      &err);
  if (!server) {
    fprintf(stderr, "%s\n", err->message);
    return 1;
  }
  GstBus *bus = gst_element_get_bus(server);
  gst_bus_set_sync_handler(bus, drop, nullptr, nullptr);
  gst_object_unref(bus);
  gst_element_set_state(server, GST_STATE_PLAYING);
  GstElement *sink = gst_bin_get_by_name(GST_BIN(server), "s");
  guint port = 0;
  g_object_get(sink, "current-port", &port, nullptr);
  gst_object_unref(sink);
  g_usleep(G_USEC_PER_SEC);
  std::string endpoint = "http://127.0.0.1:" + std::to_string(port) + "/whep";

  std::vector<double> ms;
  // Run 0 warms up (plugin loading, first decoder instance) and is not counted.
  for (int i = 0; i <= runs; i++) {
    std::string desc = "whepsrc whep-endpoint=" + endpoint +
                       " ice-local-addresses=127.0.0.1 audio-codecs=none ! video/x-raw ! fakesink name=out sync=false";
    GstElement *player = gst_parse_launch(desc.c_str(), &err);
    GstBus *pbus = gst_element_get_bus(player);
    gst_bus_set_sync_handler(pbus, drop, nullptr, nullptr);
    gst_object_unref(pbus);
    GstElement *out = gst_bin_get_by_name(GST_BIN(player), "out");
    GstPad *pad = gst_element_get_static_pad(out, "sink");
    std::atomic<gint64> first{0};
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER,
                      [](GstPad *, GstPadProbeInfo *, gpointer d) {
                        auto *f = static_cast<std::atomic<gint64> *>(d);
                        gint64 zero = 0;
                        f->compare_exchange_strong(zero, g_get_monotonic_time());
                        return GST_PAD_PROBE_OK;
                      },
                      &first, nullptr);
    gst_object_unref(pad);
    gst_object_unref(out);
    // Join at a random point of the GOP.
    g_usleep(g_random_int_range(0, 2000) * 1000);
    gint64 start = g_get_monotonic_time();
    gst_element_set_state(player, GST_STATE_PLAYING);
    gint64 deadline = start + 10 * G_USEC_PER_SEC;
    while (!first.load() && g_get_monotonic_time() < deadline) g_usleep(1000);
    GST_INFO("run %d: %.1f ms", i, first.load() ? (first.load() - start) / 1000.0 : -1.0);
    if (first.load() && i > 0)
      ms.push_back((first.load() - start) / 1000.0);
    else if (!first.load())
      fprintf(stderr, "run %d: no frame within 10 s\n", i);
    gst_element_set_state(player, GST_STATE_NULL);
    gst_object_unref(player);
  }
  gst_element_set_state(server, GST_STATE_NULL);
  gst_object_unref(server);
  if (ms.empty()) return 1;
  std::sort(ms.begin(), ms.end());
  double median = ms[ms.size() / 2];
  double p95 = ms[std::min(ms.size() - 1, static_cast<size_t>(ms.size() * 0.95))];
  for (double v : ms) fprintf(stderr, "%.0f ", v);
  fprintf(stderr, "\n");
  printf("time to first frame over %zu runs (2 s GOP, 640x360@30, 127.0.0.1): median %.1f ms, p95 %.1f ms, "
         "min %.1f ms, max %.1f ms\n",
         ms.size(), median, p95, ms.front(), ms.back());
  return 0;
}
