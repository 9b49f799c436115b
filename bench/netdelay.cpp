// netdelay: delay and jitter for the packets an nftables rule queues to NFQUEUE, for kernels
// without tc netem (bench/loss). Every packet is held for delay +/- jitter ms (uniform) and
// then accepted. Without --reorder packets leave in the order they came (a packet never
// leaves before the one queued ahead of it: jitter without reordering); with --reorder each
// one leaves at its own time, as netem does.
//
//   netdelay --queue 0 --delay-ms 50 --jitter-ms 20 [--reorder] [--seed N]
//
// Runs until SIGINT/SIGTERM; prints how many packets it delayed. The nftables rule should use
// `queue num N bypass`, so that packets pass undelayed when this program is not running.
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern "C" {
#include <libnetfilter_queue/libnetfilter_queue.h>
}

#include <algorithm>
#include <deque>
#include <queue>
#include <random>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t stop_requested = 0;

int64_t now_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

struct Held {
  int64_t release_us;
  uint32_t id;
  bool operator>(const Held &o) const { return release_us > o.release_us; }
};

struct State {
  int64_t delay_us = 50000, jitter_us = 20000;
  bool reorder = false;
  std::mt19937_64 rng{1};
  std::deque<Held> fifo;  // without --reorder: release times never decrease
  std::priority_queue<Held, std::vector<Held>, std::greater<Held>> heap;  // with --reorder
  int64_t last_release_us = 0;
  unsigned long long packets = 0;

  void hold(uint32_t id) {
    int64_t jitter = 0;
    if (jitter_us > 0) jitter = std::uniform_int_distribution<int64_t>(-jitter_us, jitter_us)(rng);
    int64_t release = now_us() + std::max<int64_t>(0, delay_us + jitter);
    packets++;
    if (reorder) {
      heap.push({release, id});
    } else {
      release = std::max(release, last_release_us);
      last_release_us = release;
      fifo.push_back({release, id});
    }
  }
  bool empty() const { return reorder ? heap.empty() : fifo.empty(); }
  const Held &next() const { return reorder ? heap.top() : fifo.front(); }
  void pop() {
    if (reorder)
      heap.pop();
    else
      fifo.pop_front();
  }
};

int on_packet(nfq_q_handle *, nfgenmsg *, nfq_data *nfa, void *data) {
  auto *st = static_cast<State *>(data);
  nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (ph) st->hold(ntohl(ph->packet_id));
  return 0;
}

void usage() {
  fprintf(stderr, "usage: netdelay --queue N [--delay-ms 50] [--jitter-ms 20] [--reorder] [--seed N]\n");
  exit(2);
}

}  // namespace

int main(int argc, char **argv) {
  State st;
  int queue = -1;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> long {
      if (i + 1 >= argc) usage();
      return strtol(argv[++i], nullptr, 10);
    };
    if (a == "--queue")
      queue = static_cast<int>(value());
    else if (a == "--delay-ms")
      st.delay_us = value() * 1000;
    else if (a == "--jitter-ms")
      st.jitter_us = value() * 1000;
    else if (a == "--reorder")
      st.reorder = true;
    else if (a == "--seed")
      st.rng.seed(static_cast<uint64_t>(value()));
    else
      usage();
  }
  if (queue < 0 || queue > 65535) usage();

  struct sigaction sa {};
  sa.sa_handler = [](int) { stop_requested = 1; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  nfq_handle *h = nfq_open();
  if (!h) {
    perror("nfq_open");
    return 1;
  }
  nfq_q_handle *qh = nfq_create_queue(h, static_cast<uint16_t>(queue), &on_packet, &st);
  if (!qh) {
    fprintf(stderr, "netdelay: cannot bind queue %d (another program on it, or no nfnetlink_queue)\n", queue);
    nfq_close(h);
    return 1;
  }
  // Only the verdict matters: copy no payload. Enough room for the packets held meanwhile.
  nfq_set_mode(qh, NFQNL_COPY_META, 0);
  nfq_set_queue_maxlen(qh, 8192);
  int fd = nfq_fd(h);
  int rcvbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  fprintf(stderr, "netdelay: queue %d, %lld ms +/- %lld ms%s\n", queue, static_cast<long long>(st.delay_us / 1000),
          static_cast<long long>(st.jitter_us / 1000), st.reorder ? ", reordering" : ", in order");

  std::vector<char> buf(1 << 16);
  while (!stop_requested) {
    int timeout_ms = 100;
    if (!st.empty()) {
      int64_t wait = st.next().release_us - now_us();
      timeout_ms = wait <= 0 ? 0 : static_cast<int>((wait + 999) / 1000);
    }
    pollfd pfd{fd, POLLIN, 0};
    int n = poll(&pfd, 1, timeout_ms);
    if (n < 0 && errno != EINTR) {
      perror("poll");
      break;
    }
    if (n > 0 && (pfd.revents & POLLIN)) {
      // Everything that is there, without blocking.
      for (;;) {
        ssize_t len = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (len < 0) {
          if (errno == ENOBUFS) fprintf(stderr, "netdelay: queue overrun, packets lost\n");
          break;
        }
        nfq_handle_packet(h, buf.data(), static_cast<int>(len));
      }
    }
    int64_t t = now_us();
    while (!st.empty() && st.next().release_us <= t) {
      nfq_set_verdict(qh, st.next().id, NF_ACCEPT, 0, nullptr);
      st.pop();
    }
  }
  // What is still held goes at once.
  while (!st.empty()) {
    nfq_set_verdict(qh, st.next().id, NF_ACCEPT, 0, nullptr);
    st.pop();
  }
  printf("netdelay: %llu packets delayed\n", st.packets);
  nfq_destroy_queue(qh);
  nfq_close(h);
  return 0;
}
