// A plain TCP client for tests of what libsoup clients cannot send: malformed, slow,
// oversized or endless requests. Blocking calls with deadlines, on 127.0.0.1 only.
#pragma once

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace wish_test {

class RawConn {
public:
  // Connects (blocking) to 127.0.0.1:port, from another loopback address when `from` is set
  // (the server then sees another client); ok() tells whether it worked.
  explicit RawConn(unsigned port, const char *from = nullptr) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (from) {
      sockaddr_in src{};
      src.sin_family = AF_INET;
      inet_pton(AF_INET, from, &src.sin_addr);
      bind(fd_, reinterpret_cast<sockaddr *>(&src), sizeof src);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
      close(fd_);
      fd_ = -1;
      return;
    }
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  ~RawConn() {
    if (fd_ >= 0) close(fd_);
  }
  RawConn(const RawConn &) = delete;
  RawConn &operator=(const RawConn &) = delete;

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  bool reset() const { return reset_; }

  // Sends everything within timeout_ms; false when the server closed or reset meanwhile.
  bool send_all(const std::string &data, int timeout_ms = 5000) {
    size_t off = 0;
    gint64 end = g_get_monotonic_time() + timeout_ms * 1000LL;
    while (off < data.size()) {
      ssize_t n = send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        if (errno == ECONNRESET) reset_ = true;
        return false;
      }
      int left = static_cast<int>((end - g_get_monotonic_time()) / 1000);
      if (left <= 0) return false;
      pollfd p{fd_, POLLOUT, 0};
      poll(&p, 1, left);
    }
    return true;
  }

  // Reads what is there within timeout_ms, appending to `received`; true when the server
  // closed the connection (EOF or reset).
  bool read_some(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char buf[65536];
    for (;;) {
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        received.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) return true;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      if (errno == ECONNRESET) reset_ = true;
      return true;
    }
  }

  // Reads until the server closes the connection or timeout_ms pass; true when it closed.
  bool wait_closed(int timeout_ms) {
    gint64 end = g_get_monotonic_time() + timeout_ms * 1000LL;
    for (;;) {
      int left = static_cast<int>((end - g_get_monotonic_time()) / 1000);
      if (left <= 0) return false;
      if (read_some(left)) return true;
    }
  }

  // The status of the response read so far (0 when none).
  unsigned status() const {
    if (received.rfind("HTTP/1.", 0) != 0 || received.size() < 12) return 0;
    return static_cast<unsigned>(std::atoi(received.c_str() + 9));
  }
  // A header of the response read so far ("" when absent); names compare case-insensitively.
  std::string header(const std::string &name) const {
    size_t end = received.find("\r\n\r\n");
    std::string head = received.substr(0, end);
    size_t pos = 0;
    while ((pos = head.find("\r\n", pos)) != std::string::npos) {
      pos += 2;
      if (g_ascii_strncasecmp(head.c_str() + pos, name.c_str(), name.size()) == 0 &&
          head.compare(pos + name.size(), 1, ":") == 0) {
        size_t v = pos + name.size() + 1, e = head.find("\r\n", v);
        std::string value = head.substr(v, e == std::string::npos ? std::string::npos : e - v);
        return std::string(g_strstrip(&value[0]));
      }
    }
    return "";
  }

  std::string received;

private:
  int fd_ = -1;
  bool reset_ = false;
};

// One request on a connection of its own: the status the server answered (0: none, the
// connection was closed or reset without one, or nothing came within timeout_ms).
inline unsigned raw_request(unsigned port, const std::string &request, int timeout_ms = 5000,
                            std::string *response = nullptr, const char *from = nullptr) {
  RawConn c(port, from);
  if (!c.ok()) return 0;
  c.send_all(request, timeout_ms);
  c.wait_closed(timeout_ms);
  if (response) *response = c.received;
  return c.status();
}

// Sockets of this process's TCP connections whose local port is `port`, in a given state
// of /proc/net/tcp ("08": CLOSE_WAIT, "01": ESTABLISHED).
inline int tcp_sockets_in_state(unsigned port, const char *state) {
  gchar *contents = nullptr;
  if (!g_file_get_contents("/proc/net/tcp", &contents, nullptr, nullptr)) return -1;
  char local[16];
  snprintf(local, sizeof local, ":%04X", port);
  int n = 0;
  gchar **lines = g_strsplit(contents, "\n", -1);
  for (gchar **l = lines; *l; l++) {
    gchar **f = g_strsplit_set(g_strstrip(*l), " ", -1);
    // fields: sl local_address rem_address st ... (empty fields from repeated spaces skipped)
    int i = 0;
    const char *cols[4] = {nullptr, nullptr, nullptr, nullptr};
    for (gchar **x = f; *x && i < 4; x++)
      if (**x) cols[i++] = *x;
    if (i == 4 && g_str_has_suffix(cols[1], local) && g_str_equal(cols[3], state)) n++;
    g_strfreev(f);
  }
  g_strfreev(lines);
  g_free(contents);
  return n;
}

inline int open_fds() {
  int n = 0;
  if (GDir *d = g_dir_open("/proc/self/fd", 0, nullptr)) {
    while (g_dir_read_name(d)) n++;
    g_dir_close(d);
  }
  return n;
}

// Resident memory of this process in KiB.
inline long rss_kib() {
  gchar *contents = nullptr;
  if (!g_file_get_contents("/proc/self/status", &contents, nullptr, nullptr)) return -1;
  const char *p = strstr(contents, "VmRSS:");
  long v = p ? std::atol(p + 6) : -1;
  g_free(contents);
  return v;
}

}  // namespace wish_test
