// Runs one pipeline for a test that needs it in a process of its own (a server to SIGKILL, an
// element inside a network namespace) and reports on standard output, one line each, times in
// microseconds of the monotonic clock (one clock for every process and network namespace):
//
//   report_pipeline '<gst-launch description>'
//   playing <t>
//   frame <t> <sink> <caps name>         a buffer reaching a sink named frames*: the first one,
//                                        and the first after 300 ms without any
//   count <t> <sink> <n>                 every second: the buffers that sink had so far
//   message <t> <element> <structure>    element messages (wish-reconnecting, ...)
//   error <t> <element> <text>           and warning <t> ...
//
// Ends on "quit" or the end of standard input, and with the process that started it.
#include <gst/gst.h>
#include <signal.h>
#include <sys/prctl.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

std::mutex out_mutex;

void say(const std::string &line) {
  std::lock_guard<std::mutex> lock(out_mutex);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string now() { return std::to_string(g_get_monotonic_time()); }

struct Watched {
  std::string name;
  gint64 last = 0;  // streaming thread only
  std::atomic<guint64> count{0};
};

std::vector<Watched *> watched;

GstPadProbeReturn on_buffer(GstPad *pad, GstPadProbeInfo *, gpointer data) {
  auto *w = static_cast<Watched *>(data);
  gint64 t = g_get_monotonic_time();
  if (!w->last || t - w->last >= 300 * 1000) {
    GstCaps *caps = gst_pad_get_current_caps(pad);
    std::string kind = caps && !gst_caps_is_empty(caps) ? gst_structure_get_name(gst_caps_get_structure(caps, 0)) : "?";
    if (caps) gst_caps_unref(caps);
    say("frame " + std::to_string(t) + " " + w->name + " " + kind);
  }
  w->last = t;
  w->count++;
  return GST_PAD_PROBE_OK;
}

}  // namespace

int main(int argc, char **argv) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives the test
  gst_init(&argc, &argv);
  if (argc != 2) {
    std::fprintf(stderr, "usage: report_pipeline '<pipeline description>'\n");
    return 2;
  }
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(argv[1], &err);
  if (!pipeline) {
    std::fprintf(stderr, "cannot build the pipeline: %s\n", err ? err->message : "?");
    return 1;
  }
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(pipeline));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElement *e = GST_ELEMENT(g_value_get_object(&item));
    if (g_str_has_prefix(GST_ELEMENT_NAME(e), "frames")) {
      GstPad *pad = gst_element_get_static_pad(e, "sink");
      if (pad) {
        auto *w = new Watched;
        w->name = GST_ELEMENT_NAME(e);
        watched.push_back(w);  // lives as long as the process
        gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, w, nullptr);
        gst_object_unref(pad);
      }
    }
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);

  GMainLoop *loop = g_main_loop_new(nullptr, FALSE);
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_bus_add_watch(
      bus,
      [](GstBus *, GstMessage *m, gpointer) -> gboolean {
        std::string src = GST_MESSAGE_SRC(m) ? GST_OBJECT_NAME(GST_MESSAGE_SRC(m)) : "?";
        if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ELEMENT && gst_message_get_structure(m)) {
          gchar *s = gst_structure_to_string(gst_message_get_structure(m));
          say("message " + now() + " " + src + " " + s);
          g_free(s);
        } else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR || GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING) {
          GError *e = nullptr;
          gchar *dbg = nullptr;
          if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR)
            gst_message_parse_error(m, &e, &dbg);
          else
            gst_message_parse_warning(m, &e, &dbg);
          say(std::string(GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR ? "error " : "warning ") + now() + " " + src + " " +
              (e ? e->message : "?") + " | " + (dbg ? dbg : ""));
          g_clear_error(&e);
          g_free(dbg);
        }
        return G_SOURCE_CONTINUE;
      },
      nullptr);
  gst_object_unref(bus);
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    say("error " + now() + " pipeline cannot go to PLAYING");
    return 1;
  }
  say("playing " + now());
  g_timeout_add(1000, [](gpointer) -> gboolean {
    for (Watched *w : watched) say("count " + now() + " " + w->name + " " + std::to_string(w->count.load()));
    return G_SOURCE_CONTINUE;
  }, nullptr);

  std::thread input([loop] {
    std::string line;
    while (std::getline(std::cin, line) && line != "quit") {
    }
    g_main_loop_quit(loop);
  });
  g_main_loop_run(loop);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  input.join();
  g_main_loop_unref(loop);
  return 0;
}
