// A burst of viewers: N whepsrc players (H.264 taken encoded, not decoded, so the players'
// side stays cheap) are set to PLAYING at the same moment against one whepserversink in a
// process of its own on 127.0.0.1; prints how many play within 5 s and their join times (from
// PLAYING to the first video buffer), and the server's threads and RSS before and after.
//
//   bench/burst [--webrtcbin] [viewers]      (default 100)
//
// --webrtcbin: the server gives every viewer a webrtcbin (shared-transport=false) instead of
// the shared transport of its default.
#include <gst/gst.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace {

GstBusSyncReply drop(GstBus *, GstMessage *m, gpointer) {
  gst_message_unref(m);
  return GST_BUS_DROP;
}

// Threads and RSS (KiB) of a process, from /proc.
std::pair<long, long> threads_and_rss(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  long threads = 0, rss = 0;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) threads = std::stol(line.substr(8));
    if (line.rfind("VmRSS:", 0) == 0) rss = std::stol(line.substr(6));
  }
  return {threads, rss};
}

struct Viewer {
  GstElement *pipeline = nullptr;
  std::atomic<gint64> first{0};
};

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  bool webrtcbin = argc > 1 && std::string(argv[1]) == "--webrtcbin";
  if (webrtcbin) {
    argv++;
    argc--;
  }
  int n = argc > 1 ? atoi(argv[1]) : 100;
  int port = 20000 + g_random_int_range(0, 20000);
  std::string port_s = std::to_string(port);
  // The server: its own process; per-client limits off, every viewer comes from 127.0.0.1.
  std::string launch = "gst-launch-1.0";
  std::vector<std::string> args = {launch, "-q", "whepserversink", "name=s", "address=127.0.0.1", "port=" + port_s,
                                   "ice-local-addresses=127.0.0.1", "max-pending-sessions-per-client=0",
                                   "http-max-requests-per-client=0", "http-max-connections-per-client=0",
                                   "videotestsrc", "is-live=true", "!", "video/x-raw,width=640,height=360,framerate=30/1",
                                   "!", "s.", "audiotestsrc", "is-live=true", "!", "s."};
  args.insert(args.begin() + 3, webrtcbin ? "shared-transport=false" : "shared-transport=true");
  pid_t server = fork();
  if (server == 0) {
    std::vector<char *> argv_c;
    for (auto &a : args) argv_c.push_back(const_cast<char *>(a.c_str()));
    argv_c.push_back(nullptr);
    execvp(launch.c_str(), argv_c.data());
    _exit(127);
  }
  g_usleep(2 * G_USEC_PER_SEC);
  auto before = threads_and_rss(server);
  std::string endpoint = "http://127.0.0.1:" + port_s + "/whep";

  std::vector<std::unique_ptr<Viewer>> viewers;
  for (int i = 0; i < n; i++) {
    auto v = std::make_unique<Viewer>();
    GError *err = nullptr;
    v->pipeline = gst_parse_launch(("whepsrc whep-endpoint=" + endpoint +
                                    " ice-local-addresses=127.0.0.1 audio-codecs=none video-codecs=h264 ! "
                                    "video/x-h264 ! fakesink name=out sync=false async=false")
                                       .c_str(),
                                   &err);
    if (!v->pipeline) {
      fprintf(stderr, "%s\n", err->message);
      return 1;
    }
    GstBus *bus = gst_element_get_bus(v->pipeline);
    gst_bus_set_sync_handler(bus, drop, nullptr, nullptr);
    gst_object_unref(bus);
    GstElement *out = gst_bin_get_by_name(GST_BIN(v->pipeline), "out");
    GstPad *pad = gst_element_get_static_pad(out, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER,
                      [](GstPad *, GstPadProbeInfo *, gpointer d) {
                        auto *f = static_cast<std::atomic<gint64> *>(d);
                        gint64 zero = 0;
                        f->compare_exchange_strong(zero, g_get_monotonic_time());
                        return GST_PAD_PROBE_OK;
                      },
                      &v->first, nullptr);
    gst_object_unref(pad);
    gst_object_unref(out);
    viewers.push_back(std::move(v));
  }
  gint64 start = g_get_monotonic_time();
  for (auto &v : viewers) gst_element_set_state(v->pipeline, GST_STATE_PLAYING);
  gint64 deadline = start + 10 * G_USEC_PER_SEC;
  auto playing = [&] {
    int k = 0;
    for (auto &v : viewers) k += v->first.load() != 0;
    return k;
  };
  while (playing() < n && g_get_monotonic_time() < deadline) g_usleep(10000);
  auto during = threads_and_rss(server);
  std::vector<double> ms;
  int within5 = 0;
  for (auto &v : viewers) {
    if (!v->first.load()) continue;
    double t = (v->first.load() - start) / 1000.0;
    ms.push_back(t);
    within5 += t <= 5000;
  }
  for (auto &v : viewers) {
    gst_element_set_state(v->pipeline, GST_STATE_NULL);
    gst_object_unref(v->pipeline);
  }
  kill(server, SIGTERM);
  waitpid(server, nullptr, 0);
  std::sort(ms.begin(), ms.end());
  printf("burst of %d viewers POSTing at once: %d play within 5 s, %zu within 10 s", n, within5, ms.size());
  if (!ms.empty())
    printf("; join median %.0f ms, p95 %.0f ms, max %.0f ms", ms[ms.size() / 2],
           ms[std::min(ms.size() - 1, static_cast<size_t>(ms.size() * 0.95))], ms.back());
  printf("\nserver: %ld threads, %.1f MiB RSS before; %ld threads, %.1f MiB with the viewers (%.2f threads, %.2f MiB "
         "per viewer)\n",
         before.first, before.second / 1024.0, during.first, during.second / 1024.0,
         static_cast<double>(during.first - before.first) / n, (during.second - before.second) / 1024.0 / n);
  return within5 == n ? 0 : 1;
}
