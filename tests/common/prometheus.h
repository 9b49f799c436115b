// Prometheus text as the element tests read it: through Python's prometheus_client parser
// (Debian python3-prometheus-client), so that what the server writes is what Prometheus reads.
// Include after fixtures.h (Check's macros).
#pragma once

#include <glib.h>
#include <unistd.h>

#include <map>
#include <sstream>
#include <string>

// The samples of a Prometheus text as Python's prometheus_client parser reads them:
// "name{k="v",...}" (labels sorted) -> value. Empty when the parser is not installed.
inline std::map<std::string, double> parse_prometheus(const std::string &text, bool *parsed) {
  std::map<std::string, double> out;
  gchar *path = nullptr;
  gint fd = g_file_open_tmp("metrics-XXXXXX", &path, nullptr);
  fail_unless(fd >= 0);
  fail_unless(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  close(fd);
  const char *script =
      "import sys\n"
      "from prometheus_client.parser import text_string_to_metric_families\n"
      "for f in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
      "    for s in f.samples:\n"
      "        l = ','.join('%s=\"%s\"' % kv for kv in sorted(s.labels.items()))\n"
      "        print('%s{%s} %r' % (s.name, l, s.value))\n";
  gchar *argv[] = {const_cast<gchar *>("/usr/bin/python3"), const_cast<gchar *>("-c"), const_cast<gchar *>(script),
                   path, nullptr};
  gchar *stdout_text = nullptr, *stderr_text = nullptr;
  gint status = 0;
  *parsed = g_spawn_sync(nullptr, argv, nullptr, G_SPAWN_DEFAULT, nullptr, nullptr, &stdout_text, &stderr_text,
                         &status, nullptr) &&
            g_spawn_check_wait_status(status, nullptr);
  if (*parsed) {
    std::istringstream lines(stdout_text);
    std::string line;
    while (std::getline(lines, line)) {
      size_t space = line.rfind(' ');
      out[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
  } else {
    g_printerr("prometheus parser: %s\n", stderr_text ? stderr_text : "");
  }
  g_free(stdout_text);
  g_free(stderr_text);
  unlink(path);
  g_free(path);
  return out;
}
