// Two network namespaces made by a test and joined by a veth pair: the server's end
// (192.0.2.1) and the clients' end (192.0.2.2), TEST-NET-1 addresses inside namespaces of the
// test's own. Needs root. The namespaces are deleted afterwards, also when the test fails or
// is killed (a signal handler), and at the next run when a killed run left them.
#pragma once

#include <glib.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace wish_test {

// Test-only addresses (TEST-NET-1), inside namespaces of the test's own.
inline const char *kServerAddress = "192.0.2.1";
inline const char *kClientAddress = "192.0.2.2";
inline const unsigned kPort = 8890;

inline std::string server_ns, client_ns, server_if, client_if;

// Runs `ip args...`; false with its error output in *err when it fails.
inline bool ip(const std::vector<std::string> &args, std::string *err = nullptr) {
  std::vector<gchar *> argv{const_cast<gchar *>("ip")};
  for (auto &a : args) argv.push_back(const_cast<gchar *>(a.c_str()));
  argv.push_back(nullptr);
  gchar *out = nullptr, *errout = nullptr;
  gint status = 0;
  GError *e = nullptr;
  bool ok = g_spawn_sync(nullptr, argv.data(), nullptr, G_SPAWN_SEARCH_PATH, nullptr, nullptr, &out, &errout, &status,
                         &e) &&
            g_spawn_check_wait_status(status, nullptr);
  if (!ok && err) *err = e ? e->message : (errout ? errout : "failed");
  g_clear_error(&e);
  g_free(out);
  g_free(errout);
  return ok;
}

inline void delete_namespaces() {
  for (const auto &ns : {server_ns, client_ns})
    if (!ns.empty()) ip({"netns", "delete", ns});  // the veth pair goes with them
}

inline void on_signal(int sig) {
  delete_namespaces();
  signal(sig, SIG_DFL);
  raise(sig);
}

// Namespaces a killed run of this test left behind (their pid is gone).
inline void delete_stale_namespaces() {
  gchar *out = nullptr;
  const gchar *argv[] = {"ip", "netns", "list", nullptr};
  if (!g_spawn_sync(nullptr, const_cast<gchar **>(argv), nullptr, G_SPAWN_SEARCH_PATH, nullptr, nullptr, &out, nullptr,
                    nullptr, nullptr))
    return;
  gchar **lines = g_strsplit(out ? out : "", "\n", -1);
  for (gchar **l = lines; *l; l++) {
    std::string name = std::string(*l).substr(0, std::string(*l).find(' '));
    for (const char *prefix : {"wishsrv", "wishcli"}) {
      if (name.rfind(prefix, 0) != 0) continue;
      int pid = atoi(name.c_str() + strlen(prefix));
      if (pid > 0 && kill(pid, 0) != 0) ip({"netns", "delete", name});
    }
  }
  g_strfreev(lines);
  g_free(out);
}

// Both namespaces and the veth pair, addressed and up; "" or why they cannot be made.
inline std::string make_namespaces() {
  std::string pid = std::to_string(getpid());
  server_ns = "wishsrv" + pid;
  client_ns = "wishcli" + pid;
  server_if = "wls" + pid;
  client_if = "wlc" + pid;
  std::string err;
  if (!ip({"netns", "add", server_ns}, &err)) {
    server_ns.clear();
    client_ns.clear();
    return "cannot create a network namespace: " + err;
  }
  if (!ip({"netns", "add", client_ns}, &err)) {
    client_ns.clear();
    return "cannot create a network namespace: " + err;
  }
  std::vector<std::vector<std::string>> steps = {
      {"link", "add", server_if, "netns", server_ns, "type", "veth", "peer", "name", client_if, "netns", client_ns},
      {"-n", server_ns, "addr", "add", std::string(kServerAddress) + "/24", "dev", server_if},
      {"-n", client_ns, "addr", "add", std::string(kClientAddress) + "/24", "dev", client_if},
      {"-n", server_ns, "link", "set", "lo", "up"},
      {"-n", client_ns, "link", "set", "lo", "up"},
      {"-n", server_ns, "link", "set", server_if, "up"},
      {"-n", client_ns, "link", "set", client_if, "up"},
  };
  for (const auto &step : steps)
    if (!ip(step, &err)) return "cannot set up the veth pair: " + err;
  return "";
}

// For main(): skips (77) without root or namespaces, else makes them and deletes them when
// the process is signalled; the caller deletes them when done.
inline int prepare_namespaces_or_skip() {
  if (geteuid() != 0) {
    g_print("SKIP: network namespaces need root (this runs as uid %u)\n", geteuid());
    return 77;
  }
  delete_stale_namespaces();
  std::string why = make_namespaces();
  if (!why.empty()) {
    delete_namespaces();
    g_print("SKIP: %s\n", why.c_str());
    return 77;
  }
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) signal(sig, on_signal);
  return 0;
}

}  // namespace wish_test
