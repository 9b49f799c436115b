// Time to first frame: from the state change to PLAYING of a whepsrc pipeline until the first
// decoded video frame reaches its sink, against whepserversink on 127.0.0.1 with a 2-second
// GOP at the source. Prints median and p95 over the runs.
//
//   bench/ttff [runs]          warm: players in this process, after one warm-up run (default 20)
//   bench/ttff --cold [runs]   cold: every player a fresh process, as gst-play-1.0 whep://...
//                              users start one each time (plugins, certificate, decoders
//                              loaded anew); also the time from the process's start
//   bench/ttff --cold --trace [runs]
//                              the same, and where the time goes: each milestone of the way
//                              (offer, POST, the server's answer, ICE, DTLS, keyframe, first
//                              RTP, jitterbuffer, decoder), median over the runs
//   bench/ttff --first-viewer [runs]
//                              the first viewer of a server: every run a fresh server process
//                              whose stream just became ready (its first webrtcbin, its DTLS
//                              certificate) and a cold player; traced as above
//   --webrtcbin (with any of the above): the server gives every viewer a webrtcbin
//                              (shared-transport=false) instead of its shared transport
#include <gst/gst.h>
#include <unistd.h>
#include <poll.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "ttff_trace.h"

static bool tracing = false;

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
  if (tracing) ttff_trace::watch_player(player);
  gint64 start = g_get_monotonic_time();
  if (tracing) ttff_trace::mark("PLAYING", start);
  gst_element_set_state(player, GST_STATE_PLAYING);
  gint64 deadline = start + 10 * G_USEC_PER_SEC;
  while (!first.load() && g_get_monotonic_time() < deadline) g_usleep(1000);
  if (tracing && first.load()) ttff_trace::mark("first frame at the sink", first.load());
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

static const char *kServer =
    "whepserversink name=s address=127.0.0.1 port=0 ice-local-addresses=127.0.0.1 key-int-max=60 "
    "videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 ! s. "
    "audiotestsrc is-live=true ! s.";
// --webrtcbin; the fresh server processes of --first-viewer learn it from the environment.
static const char *kWebrtcbinEnv = "WISH_TTFF_WEBRTCBIN";
static bool webrtcbin_viewers = false;

// 30 fps, keyframe every 60 frames: a player joining at a random time would wait up to 2 s
// for a keyframe without the element's key unit request.
static GstElement *start_server(guint *port) {
  GError *err = nullptr;
  std::string desc = kServer;
  if (webrtcbin_viewers) desc.insert(desc.find("key-int-max"), "shared-transport=false ");
  GstElement *server = gst_parse_launch(desc.c_str(), &err);
  if (!server) {
    fprintf(stderr, "%s\n", err->message);
    g_clear_error(&err);
    return nullptr;
  }
  GstBus *bus = gst_element_get_bus(server);
  gst_bus_set_sync_handler(bus, drop, nullptr, nullptr);
  gst_object_unref(bus);
  if (tracing) ttff_trace::watch_server(server);
  gst_element_set_state(server, GST_STATE_PLAYING);
  GstElement *sink = gst_bin_get_by_name(GST_BIN(server), "s");
  g_object_get(sink, "current-port", port, nullptr);
  gst_object_unref(sink);
  return server;
}

// Until every input of the server has media (a viewer is answered from then on), at most 10 s.
static bool wait_for_inputs(GstElement *server) {
  GstElement *sink = gst_bin_get_by_name(GST_BIN(server), "s");
  guint ready = 0;
  for (int i = 0; i < 10000 && ready < 2; i++) {
    GstStructure *stats = nullptr;
    g_object_get(sink, "stats", &stats, nullptr);
    if (stats) gst_structure_get_uint(stats, "inputs-ready", &ready);
    if (stats) gst_structure_free(stats);
    if (ready < 2) g_usleep(1000);
  }
  gst_object_unref(sink);
  return ready >= 2;
}

static void print_events(FILE *out) {
  for (const auto &e : ttff_trace::take()) fprintf(out, "EV %" G_GINT64_FORMAT " %s\n", e.us, e.name.c_str());
}

static void parse_events(const char *text, std::vector<ttff_trace::Event> *events) {
  gchar **lines = g_strsplit(text ? text : "", "\n", -1);
  for (gchar **l = lines; *l; l++) {
    gint64 us = 0;
    int at = 0;
    if (sscanf(*l, "EV %" G_GINT64_FORMAT " %n", &us, &at) == 1 && at > 0) events->push_back({*l + at, us});
  }
  g_strfreev(lines);
}

// One cold player in a process of its own: ms from PLAYING and from the process's start.
static bool spawn_player(const std::string &endpoint, double *ms, double *from_start,
                         std::vector<ttff_trace::Event> *events) {
  gchar *out = nullptr;
  gint status = 0;
  GError *err = nullptr;
  gchar *child_argv[] = {const_cast<gchar *>("/proc/self/exe"), const_cast<gchar *>("--player"),
                         const_cast<gchar *>(endpoint.c_str()), const_cast<gchar *>(tracing ? "--trace" : nullptr),
                         nullptr};
  if (!g_spawn_sync(nullptr, child_argv, nullptr, G_SPAWN_DEFAULT, nullptr, nullptr, &out, nullptr, &status, &err)) {
    fprintf(stderr, "spawn: %s\n", err->message);
    g_clear_error(&err);
    return false;
  }
  bool ok = status == 0 && out && sscanf(out, "%lf %lf", ms, from_start) == 2;
  if (ok) parse_events(out, events);
  g_free(out);
  return ok;
}

// Reads fd until `stop` is in what was read or EOF, at most `ms`.
static std::string read_until(int fd, const char *stop, int ms) {
  std::string text;
  gint64 deadline = g_get_monotonic_time() + ms * 1000;
  char buf[4096];
  while ((!stop || text.find(stop) == std::string::npos) && g_get_monotonic_time() < deadline) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, n);
  }
  return text;
}

// A fresh server process whose stream just became ready, then a cold player: the first
// viewer's answer with the server's first webrtcbin.
static bool first_viewer_run(std::vector<ttff_trace::Event> *events, double *ms) {
  gchar *child_argv[] = {const_cast<gchar *>("/proc/self/exe"), const_cast<gchar *>("--serve-once"), nullptr};
  GPid pid = 0;
  gint in = -1, out = -1;
  GError *err = nullptr;
  if (!g_spawn_async_with_pipes(nullptr, child_argv, nullptr, G_SPAWN_DO_NOT_REAP_CHILD, nullptr, nullptr, &pid, &in,
                                &out, nullptr, &err)) {
    fprintf(stderr, "spawn: %s\n", err->message);
    g_clear_error(&err);
    return false;
  }
  std::string head = read_until(out, "\n", 15000);
  guint port = 0;
  double from_start = 0;
  bool ok = sscanf(head.c_str(), "PORT %u", &port) == 1 &&
            spawn_player("http://127.0.0.1:" + std::to_string(port) + "/whep", ms, &from_start, events);
  close(in);  // the server stops and prints its milestones
  std::string rest = read_until(out, nullptr, 15000);
  close(out);
  int status = 0;
  waitpid(pid, &status, 0);
  g_spawn_close_pid(pid);
  parse_events(rest.c_str(), events);
  return ok;
}

static double between(const std::vector<ttff_trace::Event> &run, const char *from, const char *to) {
  gint64 a = -1, b = -1;
  for (const auto &e : run) {
    if (e.name == from) a = e.us;
    if (e.name == to) b = e.us;
  }
  return a >= 0 && b >= 0 ? (b - a) / 1000.0 : -1;
}

static void print_answer_times(const std::vector<std::vector<ttff_trace::Event>> &runs) {
  std::vector<double> client, server;
  for (const auto &run : runs) {
    double c = between(run, "POST sent", "201 received"), s = between(run, "server: POST received", "server: 201 sent");
    if (c >= 0) client.push_back(c);
    if (s >= 0) server.push_back(s);
  }
  if (!client.empty()) print_stats("POST sent to 201 received (player)", client);
  if (!server.empty()) print_stats("POST received to 201 sent (server)", server);
}

int main(int argc, char **argv) {
  gint64 process_start = g_get_monotonic_time();
  webrtcbin_viewers = g_getenv(kWebrtcbinEnv) != nullptr;
  // A cold player: this process plays once and prints "<ms from PLAYING> <ms from start>",
  // then its milestones when traced.
  if (argc > 2 && std::string(argv[1]) == "--player") {
    tracing = argc > 3 && std::string(argv[3]) == "--trace";
    gst_init(nullptr, nullptr);
    if (tracing) ttff_trace::enable_logs();
    gint64 ready = g_get_monotonic_time();
    double ms = play_once(argv[2]);
    if (ms < 0) return 1;
    printf("%.1f %.1f\n", ms, ms + (ready - process_start) / 1000.0);
    if (tracing) print_events(stdout);
    return 0;
  }
  // A fresh traced server: "PORT <port>" once its inputs have media, its milestones once
  // stdin closes.
  if (argc > 1 && std::string(argv[1]) == "--serve-once") {
    tracing = true;
    gst_init(nullptr, nullptr);
    ttff_trace::enable_logs();
    guint port = 0;
    GstElement *server = start_server(&port);
    if (!server || !wait_for_inputs(server)) return 1;
    ttff_trace::take();  // what came before the viewer
    printf("PORT %u\n", port);
    fflush(stdout);
    read_until(0, nullptr, 30000);
    print_events(stdout);
    gst_element_set_state(server, GST_STATE_NULL);
    gst_object_unref(server);
    return 0;
  }
  bool cold = false, first_viewer = false;
  int runs = 20;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--cold") cold = true;
    else if (a == "--trace") tracing = true;
    else if (a == "--first-viewer") first_viewer = tracing = true;
    else if (a == "--webrtcbin") {
      webrtcbin_viewers = true;
      g_setenv(kWebrtcbinEnv, "1", TRUE);
    }
    else runs = atoi(argv[i]);
  }
  gst_init(nullptr, nullptr);
  std::vector<std::vector<ttff_trace::Event>> traces;
  std::vector<double> ms, from_start;
  if (first_viewer) {
    for (int i = 0; i < runs; i++) {
      std::vector<ttff_trace::Event> events;
      double v = 0;
      if (first_viewer_run(&events, &v)) ms.push_back(v);
      else fprintf(stderr, "run %d: no frame\n", i);
      traces.push_back(std::move(events));
    }
    if (ms.empty()) return 1;
    print_stats("first viewer of a fresh server, time to first frame (fresh process, from PLAYING)", ms);
    print_answer_times(traces);
    ttff_trace::print_summary(traces);
    return 0;
  }
  if (tracing) ttff_trace::enable_logs();
  guint port = 0;
  GstElement *server = start_server(&port);
  if (!server) return 1;
  g_usleep(G_USEC_PER_SEC);
  std::string endpoint = "http://127.0.0.1:" + std::to_string(port) + "/whep";

  if (cold) {
    for (int i = 0; i < runs; i++) {
      g_usleep(g_random_int_range(0, 2000) * 1000);  // join at a random point of the GOP
      ttff_trace::take();
      double a = 0, b = 0;
      std::vector<ttff_trace::Event> events;
      if (spawn_player(endpoint, &a, &b, &events)) {
        ms.push_back(a);
        from_start.push_back(b);
      } else {
        fprintf(stderr, "run %d: no frame within 10 s\n", i);
      }
      if (tracing) {
        for (auto &e : ttff_trace::take()) events.push_back(e);
        traces.push_back(std::move(events));
      }
    }
  } else {
    // Run 0 warms up (plugin loading, first decoder instance) and is not counted.
    for (int i = 0; i <= runs; i++) {
      g_usleep(g_random_int_range(0, 2000) * 1000);  // join at a random point of the GOP
      ttff_trace::take();
      double v = play_once(endpoint);
      if (v < 0)
        fprintf(stderr, "run %d: no frame within 10 s\n", i);
      else if (i > 0)
        ms.push_back(v);
      if (tracing && i > 0) traces.push_back(ttff_trace::take());
    }
  }
  gst_element_set_state(server, GST_STATE_NULL);
  gst_object_unref(server);
  if (ms.empty()) return 1;
  print_stats(cold ? "cold time to first frame (fresh process, from PLAYING)" : "time to first frame", ms);
  if (cold) print_stats("cold time to first frame (fresh process, from its start)", from_start);
  if (tracing) {
    print_answer_times(traces);
    ttff_trace::print_summary(traces);
  }
  return 0;
}
