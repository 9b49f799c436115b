// Soak loads shared by bench/soak and the `soak` test: a whepserversink in a process of its
// own (gst-launch-1.0), its RSS, file descriptors and threads read from /proc, its Prometheus
// metrics, and two loads on its endpoint: POST/DELETE cycles, and viewers that POST and
// vanish without DELETE (timed until the server has removed each of them).
// Needs only GLib and the test HTTP client (no gst-check): the benchmark uses it too.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <glib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "free_port.h"
#include "http_client.h"

namespace wish_soak {

struct ProcStats {
  long rss_kib = 0;
  long fds = 0;
  long threads = 0;
};

inline long count_entries(const std::string &dir) {
  DIR *d = opendir(dir.c_str());
  if (!d) return -1;
  long n = 0;
  while (struct dirent *e = readdir(d))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

inline ProcStats proc_stats(pid_t pid) {
  ProcStats s;
  std::string dir = "/proc/" + std::to_string(pid);
  s.fds = count_entries(dir + "/fd");
  s.threads = count_entries(dir + "/task");
  gchar *status = nullptr;
  if (g_file_get_contents((dir + "/status").c_str(), &status, nullptr, nullptr)) {
    if (const char *rss = strstr(status, "VmRSS:")) s.rss_kib = atol(rss + 6);
    g_free(status);
  }
  return s;
}

inline std::string describe(const ProcStats &s) {
  char buf[128];
  snprintf(buf, sizeof buf, "RSS %.1f MiB, %ld fds, %ld threads", s.rss_kib / 1024.0, s.fds, s.threads);
  return buf;
}

// The process's file descriptors by kind ("socket=12 anon_inode:[eventfd]=30 /dev/null=1 ..."),
// to say what a leak is made of.
inline std::string fd_kinds(pid_t pid) {
  std::map<std::string, int> kinds;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR *d = opendir(dir.c_str());
  if (!d) return "";
  while (struct dirent *e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[512];
    ssize_t n = readlink((dir + "/" + e->d_name).c_str(), target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = 0;
    std::string t = target;
    if (t.rfind("socket:", 0) == 0 || t.rfind("pipe:", 0) == 0) t = t.substr(0, t.find(':'));
    kinds[t]++;
  }
  closedir(d);
  std::string out;
  for (const auto &kv : kinds) out += kv.first + "=" + std::to_string(kv.second) + " ";
  return out;
}

// The sum of the samples of metric `name` (Prometheus text) whose labels contain `label`
// (e.g. reason="closed"); 0 when there is none (a gauge at 0 may be left out).
inline double metric(const std::string &text, const std::string &name, const std::string &label = "") {
  double sum = 0;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#' || line.rfind(name, 0) != 0) continue;
    if (line.size() <= name.size() || (line[name.size()] != '{' && line[name.size()] != ' ')) continue;
    if (!label.empty() && line.find(label) == std::string::npos) continue;
    sum += g_ascii_strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
  }
  return sum;
}

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

// "median 12.3, p95 20.1, p99 31.0, max 80.2"
inline std::string spread(const std::vector<double> &v, const char *unit) {
  if (v.empty()) return "none";
  char buf[160];
  snprintf(buf, sizeof buf, "median %.1f %s, p95 %.1f %s, p99 %.1f %s, max %.1f %s", percentile(v, 0.5), unit,
           percentile(v, 0.95), unit, percentile(v, 0.99), unit, *std::max_element(v.begin(), v.end()), unit);
  return buf;
}

// A whepserversink serving a live test pattern and tone on 127.0.0.1, in a gst-launch-1.0
// process of its own (killed if this process dies), with its metrics on /metrics. Its output
// goes to a log file in the temporary directory.
class ServerProcess {
public:
  pid_t pid = -1;
  unsigned port = 0;
  std::string base;  // http://127.0.0.1:port
  std::string log_path;

  ServerProcess() = default;
  ServerProcess(const ServerProcess &) = delete;
  ServerProcess &operator=(const ServerProcess &) = delete;
  ~ServerProcess() { stop(2000); }

  // `props`: more properties of the whepserversink. Returns once a POST of `offer` is
  // answered 201 (the session is deleted again), false with *error otherwise.
  bool start(const std::string &props, const std::string &offer, std::string *error,
             const std::string &video = "video/x-raw,width=320,height=240,framerate=30/1") {
    port = free_port();
    base = "http://127.0.0.1:" + std::to_string(port);
    std::vector<std::string> args;
    for (const std::string &a : std::vector<std::string>{"gst-launch-1.0", "-q", "whepserversink", "name=s",
                                                          "address=127.0.0.1", "port=" + std::to_string(port),
                                                          "ice-local-addresses=127.0.0.1", "metrics-path=/metrics"})
      args.push_back(a);
    std::istringstream extra(props);
    for (std::string p; extra >> p;) args.push_back(p);
    for (const char *a : {"videotestsrc", "is-live=true", "!"}) args.push_back(a);
    args.push_back(video);
    for (const char *a : {"!", "s.", "audiotestsrc", "is-live=true", "!", "s."}) args.push_back(a);
    log_path = std::string(g_get_tmp_dir()) + "/wish-soak-server-" + std::to_string(getpid()) + "-" +
               std::to_string(port) + ".log";
    std::vector<char *> argv;
    for (auto &a : args) argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);
    pid_t parent = getpid();
    pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (log >= 0) {
        dup2(log, 1);
        dup2(log, 2);
        close(log);
      }
      execvp(argv[0], argv.data());
      _exit(127);
    }
    wish_test::HttpClient http;
    gint64 end = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    std::string last;
    while (g_get_monotonic_time() < end) {
      std::string how;
      if (!alive(&how)) {
        *error = "the server process ended (" + how + "), see " + log_path;
        return false;
      }
      if (!listening()) {
        g_usleep(50 * 1000);
        continue;
      }
      wish_test::HttpResult r = http.request("POST", endpoint(), {{"Content-Type", "application/sdp"}}, offer);
      if (r.status == 201) {
        http.request("DELETE", base + r.header("Location"));
        return true;
      }
      last = std::to_string(r.status) + " " + r.body;
      g_usleep(200 * 1000);
    }
    *error = "the server did not answer a POST with 201 within 30 s (last: " + last + ")";
    return false;
  }

  std::string endpoint() const { return base + "/whep"; }

  // Whether something accepts TCP connections on the port yet.
  bool listening() const {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0;
    close(fd);
    return ok;
  }
  ProcStats stats() const { return proc_stats(pid); }

  // Whether the process still runs; otherwise *how says how it ended ("exit 0", "signal 11").
  bool alive(std::string *how = nullptr) {
    if (pid <= 0) {
      if (how) *how = ended_;
      return false;
    }
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == 0) return true;
    ended_ = r < 0                ? "lost"
             : WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                   : "exit " + std::to_string(WEXITSTATUS(status));
    pid = -1;
    if (how) *how = ended_;
    return false;
  }

  std::string metrics(wish_test::HttpClient &http) const { return http.request("GET", base + "/metrics").body; }

  // Sessions the endpoint holds (answered, not ended yet), from the metrics.
  static double open_sessions(const std::string &metrics_text) {
    return metric(metrics_text, "wish_sessions_created_total") - metric(metrics_text, "wish_sessions_ended_total");
  }

  // Stops it as Ctrl-C would (gst-launch-1.0 takes the pipeline to NULL), killing it after
  // timeout_ms; returns how it ended.
  std::string stop(int timeout_ms = 10000) {
    if (pid <= 0) return ended_;
    kill(pid, SIGINT);
    std::string how;
    gint64 end = g_get_monotonic_time() + timeout_ms * 1000LL;
    while (alive(&how) && g_get_monotonic_time() < end) g_usleep(20 * 1000);
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      pid = -1;
      ended_ = "killed after " + std::to_string(timeout_ms) + " ms";
    }
    return ended_;
  }

private:
  std::string ended_ = "not started";
};

// Waits (up to timeout_s) until the server's fds and threads are at most `slack` above
// `baseline`, and returns what it saw last.
inline ProcStats settle_to(ServerProcess &server, const ProcStats &baseline, long fd_slack, long thread_slack,
                           double timeout_s) {
  gint64 end = g_get_monotonic_time() + static_cast<gint64>(timeout_s * G_USEC_PER_SEC);
  ProcStats s = server.stats();
  while (g_get_monotonic_time() < end &&
         (s.fds > baseline.fds + fd_slack || s.threads > baseline.threads + thread_slack)) {
    g_usleep(250 * 1000);
    s = server.stats();
  }
  return s;
}

struct CycleStats {
  unsigned done = 0;
  unsigned failed = 0;
  std::string first_failure;
  std::vector<double> post_ms, delete_ms;
  double seconds = 0;
};

// `total` POST/DELETE cycles of `offer` on `endpoint`, `in_flight` at a time (one client
// thread each). progress(cycles done) is called on the calling thread every `every` cycles
// (0: never). Stops early after 50 failed cycles.
inline CycleStats run_cycles(const std::string &base, const std::string &endpoint, const std::string &offer,
                             unsigned total, unsigned in_flight, unsigned every,
                             const std::function<void(unsigned)> &progress = {}) {
  CycleStats out;
  std::mutex mutex;
  std::atomic<unsigned> next{0}, done{0}, failed{0};
  std::vector<std::thread> threads;
  gint64 start = g_get_monotonic_time();
  for (unsigned w = 0; w < std::max(1u, in_flight); w++) {
    threads.emplace_back([&] {
      wish_test::HttpClient http;
      std::vector<double> posts, deletes;
      while (failed < 50 && next++ < total) {
        gint64 t0 = g_get_monotonic_time();
        wish_test::HttpResult p = http.request("POST", endpoint, {{"Content-Type", "application/sdp"}}, offer);
        gint64 t1 = g_get_monotonic_time();
        wish_test::HttpResult d;
        if (p.status == 201) d = http.request("DELETE", base + p.header("Location"));
        gint64 t2 = g_get_monotonic_time();
        if (p.status == 201) posts.push_back((t1 - t0) / 1000.0);
        if (d.status == 200) deletes.push_back((t2 - t1) / 1000.0);
        if (p.status != 201 || d.status != 200) {
          failed++;
          std::lock_guard<std::mutex> lock(mutex);
          if (out.first_failure.empty())
            out.first_failure = "POST " + std::to_string(p.status) + " " + p.body + ", DELETE " + std::to_string(d.status);
        }
        done++;
      }
      std::lock_guard<std::mutex> lock(mutex);
      out.post_ms.insert(out.post_ms.end(), posts.begin(), posts.end());
      out.delete_ms.insert(out.delete_ms.end(), deletes.begin(), deletes.end());
    });
  }
  unsigned reported = 0;
  while (done + (failed >= 50 ? total : 0) < total) {
    g_usleep(50 * 1000);
    while (every && progress && done >= reported + every) progress(reported += every);
  }
  for (auto &t : threads) t.join();
  while (every && progress && done >= reported + every) progress(reported += every);
  out.seconds = (g_get_monotonic_time() - start) / 1e6;
  out.done = done;
  out.failed = failed;
  return out;
}

struct VanishStats {
  unsigned posted = 0;   // answered 201
  unsigned refused = 0;  // any other answer
  std::string first_refusal;
  std::vector<double> removed_after_s;  // from the 201 to the first 404 seen, per session
  unsigned late = 0;                    // removed after timeout_s + slack_s
  unsigned never_removed = 0;           // still there timeout_s + slack_s + 30 s after its 201
  double poll_interval_ms = 0;          // longest time between two looks at a due session
  double seconds = 0;
};

// `count` viewers POST `offer` on `endpoint`, `rate` a second, and vanish: no DELETE, no
// candidate, nothing sent. From timeout_s - 1 s after its 201 on, each session URL is
// polled with GET (200 while the session exists, 404 once removed) until it is gone.
inline VanishStats run_vanishing(const std::string &base, const std::string &endpoint, const std::string &offer,
                                 unsigned count, double rate, double timeout_s, double slack_s) {
  struct Pending {
    std::string url;
    gint64 answered;
  };
  VanishStats out;
  std::mutex mutex;
  std::vector<Pending> pending;
  std::atomic<unsigned> next{0}, finished{0};
  gint64 start = g_get_monotonic_time();
  std::vector<std::thread> posters;
  for (int w = 0; w < 4; w++) {
    posters.emplace_back([&] {
      wish_test::HttpClient http;
      for (unsigned i; (i = next++) < count;) {
        gint64 at = start + static_cast<gint64>(i / rate * G_USEC_PER_SEC);
        gint64 now = g_get_monotonic_time();
        if (at > now) g_usleep(at - now);
        wish_test::HttpResult r = http.request("POST", endpoint, {{"Content-Type", "application/sdp"}}, offer);
        std::lock_guard<std::mutex> lock(mutex);
        if (r.status == 201) {
          out.posted++;
          pending.push_back({base + r.header("Location"), g_get_monotonic_time()});
        } else {
          out.refused++;
          if (out.first_refusal.empty()) out.first_refusal = std::to_string(r.status) + " " + r.body;
        }
      }
      finished++;
    });
  }
  wish_test::HttpClient http;
  const gint64 due_us = static_cast<gint64>((timeout_s - 1) * G_USEC_PER_SEC);
  const gint64 late_us = static_cast<gint64>((timeout_s + slack_s) * G_USEC_PER_SEC);
  const gint64 give_up_us = late_us + 30 * G_USEC_PER_SEC;
  gint64 last_round = g_get_monotonic_time();
  for (;;) {
    std::vector<Pending> due;
    bool posting;
    {
      std::lock_guard<std::mutex> lock(mutex);
      posting = finished < posters.size();
      if (!posting && pending.empty()) break;
      gint64 now = g_get_monotonic_time();
      for (auto it = pending.begin(); it != pending.end();) {
        if (now - it->answered >= due_us) {
          due.push_back(*it);
          it = pending.erase(it);
        } else {
          ++it;
        }
      }
    }
    std::vector<Pending> still;
    for (const auto &p : due) {
      unsigned status = http.request("GET", p.url).status;
      gint64 now = g_get_monotonic_time();
      if (status == 404) {
        out.removed_after_s.push_back((now - p.answered) / 1e6);
        if (now - p.answered > late_us) out.late++;
      } else if (now - p.answered > give_up_us) {
        out.never_removed++;
      } else {
        still.push_back(p);
      }
    }
    gint64 now = g_get_monotonic_time();
    if (!due.empty()) out.poll_interval_ms = std::max(out.poll_interval_ms, (now - last_round) / 1000.0);
    last_round = now;
    {
      std::lock_guard<std::mutex> lock(mutex);
      pending.insert(pending.end(), still.begin(), still.end());
    }
    g_usleep(100 * 1000);
  }
  for (auto &t : posters) t.join();
  out.seconds = (g_get_monotonic_time() - start) / 1e6;
  return out;
}

}  // namespace wish_soak
