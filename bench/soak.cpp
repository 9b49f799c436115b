// Soak of whepserversink: one server in a process of its own (gst-launch-1.0) on 127.0.0.1,
// its RSS, file descriptors and threads read from /proc before, during and after.
//
//   A  N POST/DELETE cycles of Chromium's recvonly offer (tests/fixtures), K at a time;
//      prints the server every N/10 cycles, the POST and DELETE latencies, and the server
//      after a settle time against its baseline.
//   B  M viewers that POST the same offer and vanish without DELETE (no candidate, nothing
//      sent), R a second, on the same server; each session URL is polled (GET: 200, then 404)
//      to time its removal, which must come within viewer-timeout + 5 s; then the server
//      against its baseline again.
//   C  P whepsrc viewers (processes of this program, taking H.264 and Opus without
//      decoding) playing from a second server for T minutes with churn: every few seconds the
//      oldest leaves (with DELETE, or every 4th one killed: vanished) and a new one joins.
//      The server is sampled each minute (when it holds exactly P sessions) and the growth of
//      RSS, fds and threads after a warm-up is printed as a slope per minute.
//
// Every request comes from 127.0.0.1: the per-client limits (max-pending-sessions-per-client,
// http-max-requests-per-client, http-max-connections-per-client) are off on both servers.
//
//   bench/soak [--cycles N] [--in-flight K] [--vanish M] [--vanish-rate R] [--viewer-timeout S]
//              [--settle S] [--playing P] [--minutes T] [--churn S]
//   defaults: --cycles 10000 --in-flight 4 --vanish 1000 --vanish-rate 25 --viewer-timeout 5
//             --settle 20 --playing 20 --minutes 0 (phase C runs when --minutes is above 0)
//             --churn 5; phase C's server keeps the default viewer-timeout (10 s): whepsrc
//             sends RTCP only every 2.5 to 7.5 s.
// Exits 1 when a check fails (a failed cycle, a session removed late or never, fds or threads
// not back to baseline, a stalled or failed viewer, growth of fds or threads in phase C, the
// server's exit other than 0).
#include <gst/gst.h>
#include <glib-unix.h>
#include <poll.h>

#include <atomic>
#include <cmath>
#include <deque>
#include <memory>

#include "soak.h"

using wish_soak::describe;
using wish_soak::ProcStats;
using wish_soak::ServerProcess;
using wish_test::HttpClient;

namespace {

struct Options {
  unsigned cycles = 10000, in_flight = 4, vanish = 1000;
  double vanish_rate = 25;
  unsigned viewer_timeout = 5, settle = 20, rounds = 1;
  unsigned playing = 20;
  double minutes = 0, churn = 5;
};

// What may stay in the server after its first sessions: libnice's and GLib's pools keep a
// few idle threads (GLib's for up to 15 s), and fds come and go with the HTTP connections.
constexpr long kFdSlack = 2, kThreadSlack = 2;
int failures = 0;

void check(bool ok, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
void check(bool ok, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  gchar *text = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  printf("  %s %s\n", ok ? "ok:  " : "FAIL:", text);
  fflush(stdout);
  g_free(text);
  failures += !ok;
}

std::string fixture_offer() {
  gchar *text = nullptr;
  if (!g_file_get_contents(FIXTURES_DIR "/chromium-recvonly-offer.sdp", &text, nullptr, nullptr)) {
    fprintf(stderr, "cannot read %s\n", FIXTURES_DIR "/chromium-recvonly-offer.sdp");
    exit(2);
  }
  std::string s = text;
  g_free(text);
  return s;
}

double elapsed_s(gint64 since) { return (g_get_monotonic_time() - since) / 1e6; }

// The machine's load average over the last minute: the runs share their cores with it.
double loadavg() {
  double l = 0;
  if (FILE *f = fopen("/proc/loadavg", "r")) {
    if (fscanf(f, "%lf", &l) != 1) l = 0;
    fclose(f);
  }
  return l;
}

// CPU time a process spent so far, in seconds.
double cpu_seconds(pid_t pid) {
  gchar *stat = nullptr;
  double s = 0;
  if (g_file_get_contents(("/proc/" + std::to_string(pid) + "/stat").c_str(), &stat, nullptr, nullptr)) {
    const char *p = strrchr(stat, ')');  // the fields after the command name
    unsigned long utime = 0, stime = 0;
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) == 2)
      s = static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
    g_free(stat);
  }
  return s;
}

void print_sample(const char *when, const ProcStats &s, const ProcStats *baseline = nullptr) {
  printf("  %-28s %s", when, describe(s).c_str());
  if (baseline)
    printf("  (%+.1f MiB, %+ld fds, %+ld threads)", (s.rss_kib - baseline->rss_kib) / 1024.0, s.fds - baseline->fds,
           s.threads - baseline->threads);
  printf("\n");
  fflush(stdout);
}

// Waits until the endpoint holds no session, lets the server settle and compares it with
// its baseline.
void back_to_baseline(ServerProcess &server, const ProcStats &baseline, unsigned settle_s) {
  HttpClient http;
  gint64 start = g_get_monotonic_time();
  while (ServerProcess::open_sessions(server.metrics(http)) > 0 && elapsed_s(start) < 30) g_usleep(100 * 1000);
  double open = ServerProcess::open_sessions(server.metrics(http));
  check(open == 0, "sessions left on the endpoint: %.0f", open);
  g_usleep(static_cast<gulong>(settle_s) * G_USEC_PER_SEC);
  ProcStats after = wish_soak::settle_to(server, baseline, kFdSlack, kThreadSlack, 15);
  print_sample("after, settled:", after, &baseline);
  check(after.fds <= baseline.fds + kFdSlack && after.threads <= baseline.threads + kThreadSlack,
        "fds and threads back to baseline (slack %ld fds, %ld threads)", kFdSlack, kThreadSlack);
  if (after.fds > baseline.fds + kFdSlack) printf("  fds now: %s\n", wish_soak::fd_kinds(server.pid).c_str());
}

void phases_ab(const Options &o, const std::string &offer) {
  ServerProcess server;
  std::string error;
  std::string props = "viewer-timeout=" + std::to_string(o.viewer_timeout) +
                      " max-pending-sessions-per-client=0 http-max-requests-per-client=0"
                      " http-max-connections-per-client=0";
  printf("server A+B: whepserversink %s, 320x240@30 H.264 + Opus\n", props.c_str());
  if (!server.start(props, offer, &error)) {
    check(false, "server: %s", error.c_str());
    return;
  }
  // Warm-up: the first sessions create pools, certificates and caches for good.
  wish_soak::run_cycles(server.base, server.endpoint(), offer, 100, o.in_flight, 0);
  g_usleep(static_cast<gulong>(o.settle) * G_USEC_PER_SEC);
  ProcStats baseline = server.stats();

  if (o.cycles) {
    printf("\nphase A: %u POST/DELETE cycles, %u in flight\n", o.cycles, o.in_flight);
    print_sample("baseline (after 100 cycles):", baseline);
    gint64 start = g_get_monotonic_time();
    unsigned every = std::max(1u, o.cycles / 10);
    long half_rss = 0, end_rss = 0;
    auto stats = wish_soak::run_cycles(server.base, server.endpoint(), offer, o.cycles, o.in_flight, every,
                                       [&](unsigned done) {
                                         char when[64];
                                         snprintf(when, sizeof when, "%u cycles, %.0f s:", done, elapsed_s(start));
                                         ProcStats s = server.stats();
                                         print_sample(when, s, &baseline);
                                         if (done == every * 5) half_rss = s.rss_kib;
                                         end_rss = s.rss_kib;
                                       });
    printf("  %u cycles in %.1f s (%.1f cycles/s); POST %s; DELETE %s\n", stats.done, stats.seconds,
           stats.done / stats.seconds, wish_soak::spread(stats.post_ms, "ms").c_str(),
           wish_soak::spread(stats.delete_ms, "ms").c_str());
    check(stats.failed == 0 && stats.done == o.cycles, "%u of %u cycles failed%s%s", stats.failed, o.cycles,
          stats.first_failure.empty() ? "" : ", first: ", stats.first_failure.c_str());
    // A leak grows with the cycles; what the first ones take (pools, arenas) does not.
    double per_cycle = (end_rss - half_rss) * 1024.0 / (o.cycles - every * 5);
    printf("  RSS growth over the second half of the cycles: %+.1f MiB, %+.0f bytes per cycle\n",
           (end_rss - half_rss) / 1024.0, per_cycle);
    // Printed, not checked: glibc keeps freed memory in its per-thread arenas, and RSS rose
    // by 300 to 550 bytes a cycle here while the heap in use stayed flat (bench/README.md).
    // A viewer's objects left behind would be hundreds of kilobytes a cycle.
    std::string how;
    check(server.alive(&how), "server alive (%s)", how.empty() ? "running" : how.c_str());
    if (!server.alive()) return;
    back_to_baseline(server, baseline, o.settle);
  }

  for (unsigned round = 1; o.vanish && round <= o.rounds; round++) {
    printf("\nphase B%s: %u viewers POST and vanish without DELETE, %.0f a second, viewer-timeout %u s\n",
           o.rounds > 1 ? (" round " + std::to_string(round)).c_str() : "", o.vanish, o.vanish_rate, o.viewer_timeout);
    print_sample("baseline:", baseline);
    std::atomic<bool> done{false};
    ProcStats peak;
    double peak_sessions = 0;
    std::thread sampler([&] {
      HttpClient http;
      gint64 start = g_get_monotonic_time(), next = start;
      while (!done) {
        ProcStats s = server.stats();
        peak.rss_kib = std::max(peak.rss_kib, s.rss_kib);
        peak.fds = std::max(peak.fds, s.fds);
        peak.threads = std::max(peak.threads, s.threads);
        double open = ServerProcess::open_sessions(server.metrics(http));
        peak_sessions = std::max(peak_sessions, open);
        if (g_get_monotonic_time() >= next) {
          char when[64];
          snprintf(when, sizeof when, "%.0f s, %.0f sessions:", elapsed_s(start), open);
          print_sample(when, s, &baseline);
          next += 10 * G_USEC_PER_SEC;
        }
        g_usleep(250 * 1000);
      }
    });
    auto v = wish_soak::run_vanishing(server.base, server.endpoint(), offer, o.vanish, o.vanish_rate, o.viewer_timeout,
                                      5);
    done = true;
    sampler.join();
    printf("  %u sessions in %.1f s, at most %.0f at once; peak %s\n", v.posted, v.seconds, peak_sessions,
           describe(peak).c_str());
    printf("  removed after (from the 201): %s; polled every %.0f ms at most\n",
           wish_soak::spread(v.removed_after_s, "s").c_str(), v.poll_interval_ms);
    check(v.refused == 0, "%u POSTs refused%s%s", v.refused, v.first_refusal.empty() ? "" : ", first: ",
          v.first_refusal.c_str());
    check(v.late == 0 && v.never_removed == 0 && v.removed_after_s.size() == v.posted,
          "every vanished session removed within viewer-timeout + 5 s = %u s (%u late, %u never)",
          o.viewer_timeout + 5, v.late, v.never_removed);
    std::string how;
    check(server.alive(&how), "server alive (%s)", how.empty() ? "running" : how.c_str());
    if (!server.alive()) return;
    back_to_baseline(server, baseline, o.settle);
  }
  std::string how = server.stop();
  check(how == "exit 0", "server stopped: %s", how.c_str());
}

// ---- phase C ------------------------------------------------------------------------------

// One viewer process: `soak --viewer URL` plays with whepsrc into fakesinks and prints
// "stats <video buffers> <audio buffers> <reconnects> <session url>" every 500 ms; SIGTERM
// stops it (whepsrc sends DELETE), SIGKILL makes it vanish.
int viewer_main(const std::string &url) {
  std::string desc = "whepsrc name=w whep-endpoint=" + url +
                     " ice-local-addresses=127.0.0.1 video-codecs=h264 audio-codecs=opus "
                     "w. ! video/x-h264 ! fakesink name=v sync=false async=false "
                     "w. ! audio/x-opus ! fakesink name=a sync=false async=false";
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(desc.c_str(), &err);
  if (!pipeline) {
    printf("error %s\n", err ? err->message : "?");
    return 1;
  }
  static std::atomic<guint64> counts[2];
  const char *sinks[2] = {"v", "a"};
  for (int i = 0; i < 2; i++) {
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), sinks[i]);
    GstPad *pad = gst_element_get_static_pad(sink, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER,
                      [](GstPad *, GstPadProbeInfo *, gpointer d) {
                        ++*static_cast<std::atomic<guint64> *>(d);
                        return GST_PAD_PROBE_OK;
                      },
                      &counts[i], nullptr);
    gst_object_unref(pad);
    gst_object_unref(sink);
  }
  GMainLoop *loop = g_main_loop_new(nullptr, FALSE);
  static int status = 0;
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_bus_add_watch(bus,
                    [](GstBus *, GstMessage *m, gpointer l) -> gboolean {
                      if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
                        GError *e = nullptr;
                        gst_message_parse_error(m, &e, nullptr);
                        printf("error %s\n", e->message);
                        fflush(stdout);
                        g_clear_error(&e);
                        status = 1;
                        g_main_loop_quit(static_cast<GMainLoop *>(l));
                      }
                      return G_SOURCE_CONTINUE;
                    },
                    loop);
  gst_object_unref(bus);
  g_unix_signal_add(SIGTERM, [](gpointer l) -> gboolean {
    g_main_loop_quit(static_cast<GMainLoop *>(l));
    return G_SOURCE_REMOVE;
  }, loop);
  g_timeout_add(500, [](gpointer p) -> gboolean {
    GstElement *w = gst_bin_get_by_name(GST_BIN(p), "w");
    gchar *session = nullptr;
    GstStructure *stats = nullptr;
    g_object_get(w, "session-url", &session, "stats", &stats, nullptr);
    int reconnects = 0;
    if (stats) gst_structure_get_int(stats, "reconnects", &reconnects);
    printf("stats %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %d %s\n", counts[0].load(), counts[1].load(), reconnects,
           session ? session : "-");
    fflush(stdout);
    if (stats) gst_structure_free(stats);
    g_free(session);
    gst_object_unref(w);
    return G_SOURCE_CONTINUE;
  }, pipeline);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  g_main_loop_run(loop);
  gst_element_set_state(pipeline, GST_STATE_NULL);  // whepsrc DELETEs its session
  gst_object_unref(pipeline);
  g_main_loop_unref(loop);
  printf("bye\n");
  fflush(stdout);
  return status;
}

struct Viewer {
  int id = 0;
  pid_t pid = -1;
  int fd = -1;  // its stdout
  std::string buffered;
  std::string session;  // URL, once known
  guint64 video = 0, audio = 0;
  int reconnects = 0;
  gint64 started = 0, joined = 0, progressed = 0;
  bool leaving = false, stalled = false, join_failed = false, said_bye = false;
  bool exited = false;
  int status = 0;
};

struct Watch {  // a session whose player left: when does the server drop it
  std::string url;
  gint64 since;
  bool vanished;  // killed; otherwise stopped (DELETE sent)
};

class PhaseC {
public:
  PhaseC(const Options &o, std::string self) : o_(o), self_(std::move(self)) {}
  void run();

private:
  void spawn();
  void read_viewers();
  void reap();
  void leave(bool vanish);
  void watch_sessions();
  void sample(double minute);

  const Options &o_;
  std::string self_;
  ServerProcess server_;
  HttpClient http_;
  std::deque<std::unique_ptr<Viewer>> viewers_;  // oldest first
  std::vector<std::unique_ptr<Viewer>> gone_;    // left, not reaped yet
  std::vector<Watch> watches_;
  int next_id_ = 0;
  // Figures.
  unsigned joined_ = 0, join_failures_ = 0, stalls_ = 0, died_ = 0, reconnects_ = 0;
  unsigned left_ = 0, vanished_ = 0, late_ = 0, never_ = 0, not_deleted_ = 0;
  std::vector<double> join_ms_, vanish_removed_s_, left_removed_s_;
  struct Sample {
    double minute;
    ProcStats stats;
    double sessions;
    double cpu;  // the server's CPU seconds so far
  };
  std::vector<Sample> samples_;
};

void PhaseC::spawn() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  auto v = std::make_unique<Viewer>();
  v->id = next_id_++;
  pid_t parent = getpid();
  std::string url = server_.endpoint();
  v->pid = fork();
  if (v->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(fds[1], 1);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    execl(self_.c_str(), self_.c_str(), "--viewer", url.c_str(), static_cast<char *>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  v->fd = fds[0];
  fcntl(v->fd, F_SETFL, O_NONBLOCK);
  v->started = v->progressed = g_get_monotonic_time();
  viewers_.push_back(std::move(v));
}

void PhaseC::read_viewers() {
  std::vector<pollfd> p;
  std::vector<Viewer *> who;
  auto add = [&](Viewer *v) {
    if (v->fd < 0) return;
    p.push_back({v->fd, POLLIN, 0});
    who.push_back(v);
  };
  for (auto &v : viewers_) add(v.get());
  for (auto &v : gone_) add(v.get());
  if (poll(p.data(), p.size(), 100) <= 0) return;
  gint64 now = g_get_monotonic_time();
  for (size_t i = 0; i < p.size(); i++) {
    if (!p[i].revents) continue;
    Viewer *v = who[i];
    char buf[4096];
    ssize_t n = read(v->fd, buf, sizeof buf);
    if (n <= 0) {
      if (n == 0 || errno != EAGAIN) {
        close(v->fd);
        v->fd = -1;
      }
      continue;
    }
    v->buffered.append(buf, n);
    size_t eol;
    while ((eol = v->buffered.find('\n')) != std::string::npos) {
      std::string line = v->buffered.substr(0, eol);
      v->buffered.erase(0, eol + 1);
      guint64 video = 0, audio = 0;
      int reconnects = 0;
      char session[512] = "";
      if (sscanf(line.c_str(), "stats %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %d %511s", &video, &audio,
                 &reconnects, session) == 4) {
        if (video > v->video && audio > v->audio) {
          v->progressed = now;
          if (v->stalled) printf("  viewer %d plays again\n", v->id);
          v->stalled = false;
        }
        if (!v->joined && video > 0 && audio > 0 && !v->leaving) {
          v->joined = now;
          joined_++;
          join_ms_.push_back((now - v->started) / 1000.0);
        }
        v->video = video;
        v->audio = audio;
        if (reconnects > v->reconnects) reconnects_ += reconnects - v->reconnects;
        v->reconnects = reconnects;
        if (strcmp(session, "-") != 0) v->session = session;  // the full URL
      } else if (line == "bye") {
        v->said_bye = true;
      } else if (line.rfind("error", 0) == 0) {
        printf("  viewer %d: %s\n", v->id, line.c_str());
      }
    }
  }
}

// Viewers that ended: those that left are done with, those that did not died.
void PhaseC::reap() {
  gint64 now = g_get_monotonic_time();
  unsigned replace = 0;
  for (auto it = viewers_.begin(); it != viewers_.end();) {
    Viewer &v = **it;
    int status = 0;
    if (waitpid(v.pid, &status, WNOHANG) == v.pid) {
      died_++;
      printf("  viewer %d ended by itself (status %d) after %.0f s\n", v.id, status, (now - v.started) / 1e6);
      if (v.fd >= 0) close(v.fd);
      it = viewers_.erase(it);
      replace++;
      continue;
    }
    if (!v.joined && !v.join_failed && now - v.started > 15 * G_USEC_PER_SEC) {
      v.join_failed = true;
      join_failures_++;
      printf("  viewer %d has not played within 15 s\n", v.id);
    }
    if (v.joined && !v.stalled && now - v.progressed > 5 * G_USEC_PER_SEC) {
      v.stalled = true;
      stalls_++;
      printf("  viewer %d received nothing for 5 s (video %" G_GUINT64_FORMAT ", audio %" G_GUINT64_FORMAT
             "; load average %.1f)\n",
             v.id, v.video, v.audio, loadavg());
    }
    ++it;
  }
  while (replace--) spawn();
  for (auto it = gone_.begin(); it != gone_.end();) {
    Viewer &v = **it;
    int status = 0;
    if (waitpid(v.pid, &status, WNOHANG) != v.pid) {
      ++it;
      continue;
    }
    if (v.fd >= 0) {
      read_viewers();  // its last lines
      if (v.fd >= 0) close(v.fd);
    }
    // A viewer that stopped has sent its DELETE: the session is gone now.
    if (!v.session.empty() && WIFEXITED(status)) watches_.push_back({v.session, now, false});
    if (WIFEXITED(status) && !v.said_bye) printf("  viewer %d exited without stopping its pipeline\n", v.id);
    it = gone_.erase(it);
  }
}

void PhaseC::leave(bool vanish) {
  for (auto it = viewers_.begin(); it != viewers_.end(); ++it) {
    if (!(*it)->joined) continue;  // the oldest one that plays
    std::unique_ptr<Viewer> v = std::move(*it);
    viewers_.erase(it);
    v->leaving = true;
    if (vanish) {
      kill(v->pid, SIGKILL);
      vanished_++;
      if (!v->session.empty()) watches_.push_back({v->session, g_get_monotonic_time(), true});
    } else {
      kill(v->pid, SIGTERM);
      left_++;
    }
    gone_.push_back(std::move(v));
    return;
  }
}

void PhaseC::watch_sessions() {
  gint64 now = g_get_monotonic_time();
  double limit_s = 10 + 5;  // the server's viewer-timeout (default) + 5 s
  for (auto it = watches_.begin(); it != watches_.end();) {
    unsigned status = http_.request("GET", it->url).status;
    double after = (g_get_monotonic_time() - it->since) / 1e6;
    if (status == 404) {
      if (it->vanished) {
        vanish_removed_s_.push_back(after);
        if (after > limit_s) late_++;
      } else {
        left_removed_s_.push_back(after);
      }
      it = watches_.erase(it);
    } else if (!it->vanished && after > 2) {
      // Stopped, yet still there: its DELETE did not take; it must go as a vanished one.
      not_deleted_++;
      printf("  a stopped viewer's session is still there 2 s after it exited: %s\n", it->url.c_str());
      it->vanished = true;
      ++it;
    } else if (after > limit_s + 60) {
      never_++;
      it = watches_.erase(it);
    } else {
      ++it;
    }
  }
  (void)now;
}

void PhaseC::sample(double minute) {
  std::string m = server_.metrics(http_);
  ProcStats s = server_.stats();
  double sessions = ServerProcess::open_sessions(m);
  double cpu = cpu_seconds(server_.pid);
  double cpu_share = samples_.empty() ? 0 : (cpu - samples_.back().cpu) / ((minute - samples_.back().minute) * 60);
  samples_.push_back({minute, s, sessions, cpu});
  char when[96];
  snprintf(when, sizeof when, "minute %4.1f, %.0f sessions:", minute, sessions);
  printf("  %-28s %s", when, describe(s).c_str());
  if (samples_.size() > 1)
    printf("  (%+.1f MiB, %+ld fds, %+ld threads; server %.0f%% of a core, load average %.1f)",
           (s.rss_kib - samples_.front().stats.rss_kib) / 1024.0, s.fds - samples_.front().stats.fds,
           s.threads - samples_.front().stats.threads, cpu_share * 100, loadavg());
  printf("\n");
  fflush(stdout);
}

// Least-squares slope of y over x.
double slope(const std::vector<double> &x, const std::vector<double> &y) {
  double n = x.size(), sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < x.size(); i++) {
    sx += x[i];
    sy += y[i];
    sxx += x[i] * x[i];
    sxy += x[i] * y[i];
  }
  double d = n * sxx - sx * sx;
  return d == 0 ? 0 : (n * sxy - sx * sy) / d;
}

void PhaseC::run() {
  std::string offer = fixture_offer(), error;
  std::string props =
      "max-pending-sessions-per-client=0 http-max-requests-per-client=0 http-max-connections-per-client=0";
  printf("\nphase C: %u playing viewers for %.0f min, churn every %.0f s (every 4th leaver vanishes)\n", o_.playing,
         o_.minutes, o_.churn);
  printf("server C: whepserversink %s, viewer-timeout 10 s, 640x360@30 H.264 + Opus\n", props.c_str());
  if (!server_.start(props, offer, &error, "video/x-raw,width=640,height=360,framerate=30/1")) {
    check(false, "server: %s", error.c_str());
    return;
  }
  g_usleep(static_cast<gulong>(o_.settle) * G_USEC_PER_SEC);
  ProcStats idle = server_.stats();
  print_sample("no viewer:", idle);
  for (unsigned i = 0; i < o_.playing; i++) {
    spawn();
    gint64 until = g_get_monotonic_time() + 300 * 1000;
    while (g_get_monotonic_time() < until) read_viewers();
  }
  gint64 warm = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
  while (joined_ < o_.playing && g_get_monotonic_time() < warm) read_viewers();
  printf("  %u of %u viewers play after %.1f s; join %s\n", joined_, o_.playing, 0.3 * o_.playing,
         wish_soak::spread(join_ms_, "ms").c_str());

  gint64 start = g_get_monotonic_time();
  gint64 end = start + static_cast<gint64>(o_.minutes * 60 * G_USEC_PER_SEC);
  gint64 next_churn = start + static_cast<gint64>(o_.churn * G_USEC_PER_SEC);
  gint64 next_sample = start, next_watch = start, next_probe = start;
  unsigned churns = 0;
  std::string how;
  while (g_get_monotonic_time() < end) {
    read_viewers();
    reap();
    gint64 now = g_get_monotonic_time();
    if (!server_.alive(&how)) break;
    if (now >= next_churn) {
      leave(++churns % 4 == 0);
      spawn();
      next_churn += static_cast<gint64>(o_.churn * G_USEC_PER_SEC);
    }
    if (now >= next_watch) {
      watch_sessions();
      next_watch = now + 250 * 1000;
    }
    // Each minute, once the server holds the P sessions only (no vanished one pending), or
    // 20 s late at most.
    if (now >= next_sample && now >= next_probe) {
      bool quiet = watches_.empty() && ServerProcess::open_sessions(server_.metrics(http_)) == o_.playing;
      if (quiet || now - next_sample > 20 * G_USEC_PER_SEC) {
        sample((now - start) / 60e6);
        next_sample += 60 * G_USEC_PER_SEC;
      }
      next_probe = now + 500 * 1000;
    }
  }
  bool alive = server_.alive(&how);
  check(alive, "server alive through the run (%s)", alive ? "running" : how.c_str());
  double ran = elapsed_s(start) / 60;
  if (alive) sample(ran);

  // Everyone leaves; the server must go back to where it was without viewers.
  for (auto &v : viewers_) {
    v->leaving = true;
    kill(v->pid, SIGTERM);
    left_++;
    gone_.push_back(std::move(v));
  }
  viewers_.clear();
  gint64 until = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
  while ((!gone_.empty() || !watches_.empty()) && g_get_monotonic_time() < until) {
    read_viewers();
    reap();
    watch_sessions();
  }
  for (auto &v : gone_) kill(v->pid, SIGKILL), waitpid(v->pid, nullptr, 0);
  gone_.clear();

  printf("  %.1f min: %u joins (join %s), %u left with DELETE, %u vanished, %u viewers ended by themselves\n", ran,
         joined_, wish_soak::spread(join_ms_, "ms").c_str(), left_, vanished_, died_);
  printf("  session gone after its viewer stopped: %s; after its viewer vanished: %s\n",
         wish_soak::spread(left_removed_s_, "s").c_str(), wish_soak::spread(vanish_removed_s_, "s").c_str());
  check(join_failures_ == 0 && died_ == 0, "%u viewers did not play within 15 s, %u ended by themselves",
        join_failures_, died_);
  check(stalls_ == 0, "%u stalls (a playing viewer received nothing for 5 s), %u reconnects", stalls_, reconnects_);
  check(late_ == 0 && never_ == 0 && not_deleted_ == 0,
        "vanished sessions removed within viewer-timeout + 5 s = 15 s (%u late, %u never, %u DELETE not taken)", late_,
        never_, not_deleted_);

  // Growth after the warm-up (the first tenth of the run, at least 2 minutes).
  double warmup = std::max(2.0, o_.minutes / 10);
  std::vector<double> x, rss, fds, threads;
  for (const auto &s : samples_) {
    if (s.minute < warmup) continue;
    x.push_back(s.minute);
    rss.push_back(s.stats.rss_kib / 1024.0);
    fds.push_back(s.stats.fds);
    threads.push_back(s.stats.threads);
  }
  if (x.size() >= 2) {
    printf("  growth from minute %.1f to %.1f (%zu samples): RSS %+.3f MiB/min (%.1f -> %.1f MiB), fds %+.3f/min "
           "(%.0f -> %.0f), threads %+.3f/min (%.0f -> %.0f)\n",
           x.front(), x.back(), x.size(), slope(x, rss), rss.front(), rss.back(), slope(x, fds), fds.front(),
           fds.back(), slope(x, threads), threads.front(), threads.back());
    // Single samples move by a few fds and threads with the churn (a viewer coming or going,
    // HTTP connections): the trend over the run is what must stay flat.
    double span = x.back() - x.front();
    check(slope(x, fds) * span <= kFdSlack && slope(x, threads) * span <= kThreadSlack,
          "no growth of fds or threads with %u viewers (trend over the run under %ld)", o_.playing, kFdSlack);
  }
  if (alive) {
    HttpClient http;
    gint64 wait = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    while (ServerProcess::open_sessions(server_.metrics(http)) > 0 && g_get_monotonic_time() < wait) g_usleep(100000);
    g_usleep(static_cast<gulong>(o_.settle) * G_USEC_PER_SEC);
    ProcStats after = wish_soak::settle_to(server_, idle, kFdSlack, kThreadSlack, 15);
    print_sample("no viewer again, settled:", after, &idle);
    check(after.fds <= idle.fds + kFdSlack && after.threads <= idle.threads + kThreadSlack,
          "fds and threads back to the server's without viewers");
    if (after.fds > idle.fds + kFdSlack) printf("  fds now: %s\n", wish_soak::fd_kinds(server_.pid).c_str());
    how = server_.stop();
    check(how == "exit 0", "server stopped: %s", how.c_str());
  }
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  if (argc == 3 && std::string(argv[1]) == "--viewer") return viewer_main(argv[2]);
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    double v = g_ascii_strtod(argv[i + 1], nullptr);
    if (k == "--cycles") o.cycles = static_cast<unsigned>(v);
    else if (k == "--in-flight") o.in_flight = static_cast<unsigned>(v);
    else if (k == "--vanish") o.vanish = static_cast<unsigned>(v);
    else if (k == "--vanish-rate") o.vanish_rate = v;
    else if (k == "--rounds") o.rounds = static_cast<unsigned>(v);
    else if (k == "--viewer-timeout") o.viewer_timeout = static_cast<unsigned>(v);
    else if (k == "--settle") o.settle = static_cast<unsigned>(v);
    else if (k == "--playing") o.playing = static_cast<unsigned>(v);
    else if (k == "--minutes") o.minutes = v;
    else if (k == "--churn") o.churn = v;
    else {
      fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  std::string offer = fixture_offer();
  if (o.cycles || o.vanish) phases_ab(o, offer);
  if (o.minutes > 0 && o.playing > 0) {
    gchar *self = g_file_read_link("/proc/self/exe", nullptr);
    PhaseC c(o, self);
    g_free(self);
    c.run();
  }
  printf("\n%s\n", failures ? "soak: FAILED" : "soak: every check passed");
  return failures ? 1 : 0;
}
