// loss-peer: one end of bench/loss (and of the netns test). Each mode is one process, meant
// to run in its own network namespace:
//
//   loss-peer serve   --address IP [--port 8889]          whepserversink with a live test pattern
//   loss-peer relay   --address IP [--port 8889]          whipserversrc ! whepserversink (/whip -> /whep)
//   loss-peer publish --address IP --url URL              whipsink with a live test pattern
//   loss-peer play    --address IP --url URL --seconds N  whepsrc, decoded frames counted
//
// Common options: --no-rtx (do-retransmission=false), --latency MS (receivers' jitterbuffer),
// --width/--height (test pattern size). ICE is held to --address (ice-local-addresses).
// serve, relay and publish run until SIGINT/SIGTERM; play stops after --seconds of video from
// 1 s after its first frame. Each prints one "RESULT key=value ..." line at the end: frames decoded and
// expected, freezes (gaps between decoded frames longer than 1 s), the longest gap, the first
// frame (ms after the player started), and the NACK/RTX counters of its webrtcbins (see
// tests/common/rtx_counters.h).
#include <glib-unix.h>
#include <gst/gst.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "rtx_counters.h"

namespace {

struct Options {
  std::string mode, address = "127.0.0.1", url;
  unsigned port = 8889;
  unsigned seconds = 20;
  int latency = 300;
  bool rtx = true;
  int width = 640, height = 360;
};

[[noreturn]] void usage() {
  fprintf(stderr,
          "usage: loss-peer serve|relay|publish|play --address IP [--port P] [--url URL] [--seconds N]\n"
          "                 [--latency MS] [--no-rtx] [--width W --height H]\n");
  exit(2);
}

constexpr int kFps = 30;

std::string pattern(const Options &o) {
  // A moving pattern: every frame has something to send.
  return "videotestsrc is-live=true pattern=smpte horizontal-speed=4 ! video/x-raw,width=" + std::to_string(o.width) +
         ",height=" + std::to_string(o.height) + ",framerate=" + std::to_string(kFps) + "/1";
}

std::string rtx_prop(const Options &o) { return std::string(" do-retransmission=") + (o.rtx ? "true" : "false"); }

struct Frames {
  std::mutex mutex;
  std::vector<gint64> times;  // monotonic µs of every decoded frame
};

GstPadProbeReturn count_frame(GstPad *, GstPadProbeInfo *, gpointer data) {
  auto *f = static_cast<Frames *>(data);
  std::lock_guard<std::mutex> lock(f->mutex);
  f->times.push_back(g_get_monotonic_time());
  return GST_PAD_PROBE_OK;
}

// The largest value each counter reached: sessions end (and their webrtcbins go) before the
// process does.
struct Peak {
  std::mutex mutex;
  wish_test::RtxCounters max;
  void update(const wish_test::RtxCounters &c) {
    std::lock_guard<std::mutex> lock(mutex);
    max.nacks_sent = std::max(max.nacks_sent, c.nacks_sent);
    max.nacks_received = std::max(max.nacks_received, c.nacks_received);
    max.rtx_sent = std::max(max.rtx_sent, c.rtx_sent);
    max.rtx_received = std::max(max.rtx_received, c.rtx_received);
    max.lost = std::max(max.lost, c.lost);
    max.pushed = std::max(max.pushed, c.pushed);
    max.rtx_requested = std::max(max.rtx_requested, c.rtx_requested);
    max.rtx_recovered = std::max(max.rtx_recovered, c.rtx_recovered);
    max.duplicates = std::max(max.duplicates, c.duplicates);
    max.late = std::max(max.late, c.late);
    max.rtx_rtt_ms = std::max(max.rtx_rtt_ms, c.rtx_rtt_ms);
  }
};

std::string counters_kv(const wish_test::RtxCounters &c) {
  return "nacks-sent=" + std::to_string(c.nacks_sent) + " nacks-received=" + std::to_string(c.nacks_received) +
         " rtx-sent=" + std::to_string(c.rtx_sent) + " rtx-received=" + std::to_string(c.rtx_received) +
         " packets=" + std::to_string(c.pushed) + " lost=" + std::to_string(c.lost) +
         " rtx-recovered=" + std::to_string(c.rtx_recovered) + " duplicates=" + std::to_string(c.duplicates) +
         " late=" + std::to_string(c.late) + " rtx-rtt-ms=" + std::to_string(c.rtx_rtt_ms);
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  if (argc < 2) usage();
  Options o;
  o.mode = argv[1];
  for (int i = 2; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--address") o.address = value();
    else if (a == "--port") o.port = static_cast<unsigned>(std::stoul(value()));
    else if (a == "--url") o.url = value();
    else if (a == "--seconds") o.seconds = static_cast<unsigned>(std::stoul(value()));
    else if (a == "--latency") o.latency = std::stoi(value());
    else if (a == "--no-rtx") o.rtx = false;
    else if (a == "--width") o.width = std::stoi(value());
    else if (a == "--height") o.height = std::stoi(value());
    else usage();
  }
  std::string ice = " ice-local-addresses=" + o.address;
  std::string port = " port=" + std::to_string(o.port);
  std::string desc;
  if (o.mode == "serve") {
    desc = "whepserversink name=s address=" + o.address + port + ice + rtx_prop(o) + " " + pattern(o) + " ! s.";
  } else if (o.mode == "relay") {
    // The publisher comes over the lossy link; whepserversink's viewers are local.
    desc = "whipserversrc name=in address=" + o.address + port + ice + rtx_prop(o) + " latency=" +
           std::to_string(o.latency) + " whepserversink name=out address=" + o.address + port + ice + rtx_prop(o) +
           " in.video_0 ! queue ! out.video_0";
  } else if (o.mode == "publish") {
    if (o.url.empty()) usage();
    desc = "whipsink name=w whip-endpoint=" + o.url + ice + rtx_prop(o) + " " + pattern(o) + " ! w.";
  } else if (o.mode == "play") {
    if (o.url.empty()) usage();
    desc = "whepsrc name=w whep-endpoint=" + o.url + ice + rtx_prop(o) + " latency=" + std::to_string(o.latency) +
           " video-codecs=h264 audio-codecs=none";
  } else {
    usage();
  }
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(("( " + desc + " )").c_str(), &err);
  if (!pipeline) {
    fprintf(stderr, "loss-peer: %s\n", err ? err->message : "cannot make the pipeline");
    return 1;
  }
  GstElement *top = gst_pipeline_new("loss-peer");
  gst_bin_add(GST_BIN(top), pipeline);
  pipeline = top;

  GMainLoop *loop = g_main_loop_new(nullptr, FALSE);
  Frames frames;
  Peak peak;
  std::atomic<gint64> first_frame{0};
  if (o.mode == "play") {
    GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "w");
    struct Ctx {
      GstElement *pipeline;
      Frames *frames;
    };
    // The sinks go beside whepsrc (inside the parsed bin): pads link within one bin.
    auto *ctx = new Ctx{GST_ELEMENT(GST_OBJECT_PARENT(src)), &frames};
    g_signal_connect_data(src, "pad-added", G_CALLBACK(+[](GstElement *, GstPad *pad, Ctx *c) {
                            GstElement *sink = gst_element_factory_make("fakesink", nullptr);
                            g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
                            gst_bin_add(GST_BIN(c->pipeline), sink);
                            gst_element_sync_state_with_parent(sink);
                            GstPad *sinkpad = gst_element_get_static_pad(sink, "sink");
                            gst_pad_link(pad, sinkpad);
                            if (g_str_has_prefix(GST_PAD_NAME(pad), "video"))
                              gst_pad_add_probe(sinkpad, GST_PAD_PROBE_TYPE_BUFFER, count_frame, c->frames, nullptr);
                            gst_object_unref(sinkpad);
                          }),
                          ctx, [](gpointer d, GClosure *) { delete static_cast<Ctx *>(d); },
                          static_cast<GConnectFlags>(0));
    gst_object_unref(src);
  }

  GstBus *bus = gst_element_get_bus(pipeline);
  gst_bus_add_watch(bus, [](GstBus *, GstMessage *m, gpointer d) -> gboolean {
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      GError *e = nullptr;
      gchar *dbg = nullptr;
      gst_message_parse_error(m, &e, &dbg);
      fprintf(stderr, "loss-peer: error: %s (%s)\n", e->message, dbg ? dbg : "");
      g_clear_error(&e);
      g_free(dbg);
      g_main_loop_quit(static_cast<GMainLoop *>(d));
    }
    return TRUE;
  }, loop);
  gst_object_unref(bus);

  auto on_signal = +[](gpointer d) -> gboolean {
    g_main_loop_quit(static_cast<GMainLoop *>(d));
    return G_SOURCE_REMOVE;
  };
  g_unix_signal_add(SIGINT, on_signal, loop);
  g_unix_signal_add(SIGTERM, on_signal, loop);

  struct Tick {
    GstElement *pipeline;
    Peak *peak;
    Frames *frames;
    std::atomic<gint64> *first;
    GMainLoop *loop;
    const Options *o;
    gint64 started;
  };
  Tick tick{pipeline, &peak, &frames, &first_frame, loop, &o, g_get_monotonic_time()};
  g_timeout_add(200, [](gpointer d) -> gboolean {
    auto *t = static_cast<Tick *>(d);
    t->peak->update(wish_test::rtx_counters(GST_BIN(t->pipeline)));
    if (t->o->mode != "play") return G_SOURCE_CONTINUE;
    gint64 now = g_get_monotonic_time();
    {
      std::lock_guard<std::mutex> lock(t->frames->mutex);
      if (!t->first->load() && !t->frames->times.empty()) t->first->store(t->frames->times.front());
    }
    gint64 first = t->first->load();
    // The window is --seconds of video from the first frame; give up 30 s after starting
    // without any.
    if ((first && now - first >= static_cast<gint64>(t->o->seconds + 1) * G_USEC_PER_SEC) ||
        (!first && now - t->started > 30 * G_USEC_PER_SEC)) {
      g_main_loop_quit(t->loop);
      return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
  }, &tick);

  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    fprintf(stderr, "loss-peer: cannot start\n");
    return 1;
  }
  g_main_loop_run(loop);
  peak.update(wish_test::rtx_counters(GST_BIN(pipeline)));

  std::string result = "RESULT mode=" + o.mode + " rtx=" + (o.rtx ? "on" : "off");
  if (o.mode == "play") {
    std::vector<gint64> times;
    {
      std::lock_guard<std::mutex> lock(frames.mutex);
      times = frames.times;
    }
    // The window starts 1 s after the first frame: what the jitterbuffer held back at the
    // start comes in a burst and would count twice.
    gint64 first = times.empty() ? 0 : times.front() + G_USEC_PER_SEC;
    gint64 end = first + static_cast<gint64>(o.seconds) * G_USEC_PER_SEC;
    guint64 decoded = 0;
    gint64 longest = 0, prev = first;
    unsigned freezes = 0;
    for (gint64 t : times) {
      if (t < first) continue;
      if (t > end) break;
      decoded++;
      longest = std::max(longest, t - prev);
      if (t - prev > G_USEC_PER_SEC) freezes++;
      prev = t;
    }
    if (first) {
      longest = std::max(longest, end - prev);  // a freeze at the end counts too
      if (end - prev > G_USEC_PER_SEC) freezes++;
    }
    guint64 expected = static_cast<guint64>(o.seconds) * kFps;
    char pct[32];
    snprintf(pct, sizeof pct, "%.1f", expected ? 100.0 * static_cast<double>(decoded) / static_cast<double>(expected) : 0.0);
    result += " frames=" + std::to_string(decoded) + " expected=" + std::to_string(expected) + " decoded-pct=" + pct +
              " freezes=" + std::to_string(freezes) + " longest-gap-ms=" + std::to_string(longest / 1000) +
              " latency=" + std::to_string(o.latency);
    if (!times.empty()) result += " first-frame-ms=" + std::to_string((times.front() - tick.started) / 1000);
  }
  {
    std::lock_guard<std::mutex> lock(peak.mutex);
    result += " " + counters_kv(peak.max);
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  printf("%s\n", result.c_str());
  fflush(stdout);
  gst_object_unref(pipeline);
  g_main_loop_unref(loop);
  // As the tests do: skip atexit cleanup racing webrtcbin's thread-pool threads.
  _exit(0);
}
