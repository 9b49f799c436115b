// Time to first frame: from the state change to PLAYING of a whepsrc pipeline until the first
// decoded video frame reaches its sink, against whepserversink on 127.0.0.1 with a 2-second
// GOP at the source. Prints median and p95 over the runs.
//
//   bench/ttff [runs]          warm: players in this process, after one warm-up run (default 20)
//   bench/ttff --cold [runs]   cold: every player a fresh process, as gst-play-1.0 whep://...
//                              users start one each time (plugins, certificate, decoders
//                              loaded anew); also the time from the process's start
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

// One player; returns the ms from PLAYING to the first decoded frame, -1 when none came
// within 10 s.
static double play_once(const std::string &endpoint) {
  GError *err = nullptr;
  std::string desc = "whepsrc whep-endpoint=" + endpoint +
                     " ice-local-addresses=127.0.0.1 audio-codecs=none ! video/x-raw ! fakesink name=out sync=false";
  GstElement *player = gst_parse_launch(desc.c_str(), &err);
  if (!player) {
    fprintf(stderr, "%s\n", err->message);
    return -1;
  }
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
  gint64 start = g_get_monotonic_time();
  gst_element_set_state(player, GST_STATE_PLAYING);
  gint64 deadline = start + 10 * G_USEC_PER_SEC;
  while (!first.load() && g_get_monotonic_time() < deadline) g_usleep(1000);
  gst_element_set_state(player, GST_STATE_NULL);
  gst_object_unref(player);
  return first.load() ? (first.load() - start) / 1000.0 : -1.0;
}

static void print_stats(const char *what, std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  double median = ms[ms.size() / 2];
  double p95 = ms[std::min(ms.size() - 1, static_cast<size_t>(ms.size() * 0.95))];
  for (double v : ms) fprintf(stderr, "%.0f ", v);
  fprintf(stderr, "\n");
  printf("%s over %zu runs (2 s GOP, 640x360@30, 127.0.0.1): median %.1f ms, p95 %.1f ms, min %.1f ms, max %.1f ms\n",
         what, ms.size(), median, p95, ms.front(), ms.back());
}

int main(int argc, char **argv) {
  gint64 process_start = g_get_monotonic_time();
  // A cold player: this process plays once and prints "<ms from PLAYING> <ms from start>".
  if (argc > 2 && std::string(argv[1]) == "--player") {
    gst_init(&argc, &argv);
    gint64 ready = g_get_monotonic_time();
    double ms = play_once(argv[2]);
    if (ms < 0) return 1;
    printf("%.1f %.1f\n", ms, ms + (ready - process_start) / 1000.0);
    return 0;
  }
  bool cold = argc > 1 && std::string(argv[1]) == "--cold";
  if (cold) {
    argv++;
    argc--;
  }
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

  std::vector<double> ms, from_start;
  if (cold) {
    for (int i = 0; i < runs; i++) {
      g_usleep(g_random_int_range(0, 2000) * 1000);  // join at a random point of the GOP
      gchar *out = nullptr;
      gint status = 0;
      gchar *child_argv[] = {const_cast<gchar *>("/proc/self/exe"), const_cast<gchar *>("--player"),
                             const_cast<gchar *>(endpoint.c_str()), nullptr};
      // Process start is counted from just before the spawn.
      gint64 spawn = g_get_monotonic_time();
      if (!g_spawn_sync(nullptr, child_argv, nullptr, G_SPAWN_DEFAULT, nullptr, nullptr, &out, nullptr, &status,
                        &err)) {
        fprintf(stderr, "spawn: %s\n", err->message);
        return 1;
      }
      (void)spawn;
      double a = 0, b = 0;
      if (status == 0 && out && sscanf(out, "%lf %lf", &a, &b) == 2) {
        ms.push_back(a);
        from_start.push_back(b);
      } else {
        fprintf(stderr, "run %d: no frame within 10 s\n", i);
      }
      g_free(out);
    }
  } else {
    // Run 0 warms up (plugin loading, first decoder instance) and is not counted.
    for (int i = 0; i <= runs; i++) {
      g_usleep(g_random_int_range(0, 2000) * 1000);  // join at a random point of the GOP
      double v = play_once(endpoint);
      if (v < 0)
        fprintf(stderr, "run %d: no frame within 10 s\n", i);
      else if (i > 0)
        ms.push_back(v);
    }
  }
  gst_element_set_state(server, GST_STATE_NULL);
  gst_object_unref(server);
  if (ms.empty()) return 1;
  print_stats(cold ? "cold time to first frame (fresh process, from PLAYING)" : "time to first frame", ms);
  if (cold) print_stats("cold time to first frame (fresh process, from its start)", from_start);
  return 0;
}
