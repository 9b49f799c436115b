// Cost of what the shared viewer transport does per packet and viewer: copy the payloaded
// packet, rewrite its SSRC and sequence number, SRTP-protect it (libsrtp2) and send it (UDP
// on 127.0.0.1 to a socket nobody reads: the kernel drops what overflows, as a slow viewer's
// would be). Prints CPU nanoseconds per packet for protect only and for protect + send, for both
// SRTP profiles, AES-CM by libsrtp2 and by our own protect (transport/srtp_cm.h). Usage: viewer_send [VIEWERS (50)] [PACKETS PER VIEWER (2000)] [SIZE (1200)]
// With --memory N [cm]: the memory (RSS) that N connected DTLS sessions with their SRTP sessions
// hold, per session (the handshakes run in memory, both sides in this process); AES-GCM, or
// with cm SRTP_AES128_CM_SHA1_80 (outbound by srtp_cm.h).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "dtls_certificate.h"
#include "protocol/rtcp.h"
#include "transport/dtls_srtp.h"

using namespace wish;

static double run(SrtpProfile profile, bool own_cm, int viewers, int packets, size_t size, int fd,
                  const sockaddr_in *to) {
  std::mt19937 rng(1);
  size_t key_len = profile == SrtpProfile::AeadAes128Gcm ? 28 : 30;
  std::vector<std::unique_ptr<SrtpSession>> sessions;
  for (int v = 0; v < viewers; v++) {
    SrtpKeys keys{profile, std::vector<uint8_t>(key_len), std::vector<uint8_t>(key_len)};
    for (auto &b : keys.local) b = static_cast<uint8_t>(rng());
    for (auto &b : keys.remote) b = static_cast<uint8_t>(rng());
    sessions.push_back(std::make_unique<SrtpSession>());
    std::string error;
    if (!sessions.back()->init(keys, &error, own_cm)) {
      fprintf(stderr, "%s\n", error.c_str());
      exit(1);
    }
  }
  std::vector<uint8_t> packet(size, 0x5a);
  packet[0] = 0x80, packet[1] = 96;
  std::vector<uint8_t> scratch(size + SrtpSession::kMaxTrailer);
  // CPU time of this thread, not wall time: the figure stays meaningful on a busy machine.
  auto cpu_ns = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
  };
  double t0 = cpu_ns();
  for (int i = 0; i < packets; i++) {
    rtp::set_seq(packet.data(), static_cast<uint16_t>(i));
    for (int v = 0; v < viewers; v++) {
      std::copy(packet.begin(), packet.end(), scratch.begin());
      rtp::set_ssrc(scratch.data(), 1000 + v);
      size_t len = size;
      if (!sessions[v]->protect_rtp(scratch.data(), &len, scratch.size())) exit(2);
      if (fd >= 0) sendto(fd, scratch.data(), len, MSG_DONTWAIT, reinterpret_cast<const sockaddr *>(to), sizeof *to);
    }
  }
  return (cpu_ns() - t0) / (double(packets) * viewers);
}

static long rss_kb() {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
  }
  return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

struct Peer {
  std::unique_ptr<DtlsSession> dtls;
  SrtpSession srtp;
  std::vector<std::vector<uint8_t>> inbox;
};

static int memory(int n, bool cm_only) {
  std::string error;
  std::vector<SrtpProfile> profiles = {SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmSha1_80};
  if (cm_only) profiles = {SrtpProfile::Aes128CmSha1_80};
  auto ca = DtlsContext::create(make_ecdsa_certificate_pem(), profiles, &error);
  auto cb = DtlsContext::create(make_ecdsa_certificate_pem(), profiles, &error);
  if (!ca || !cb) return fprintf(stderr, "%s\n", error.c_str()), 1;
  std::vector<std::unique_ptr<Peer>> peers;
  auto handshake = [&] {
    auto c = std::make_unique<Peer>(), s = std::make_unique<Peer>();
    Peer *cp = c.get(), *sp = s.get();
    c->dtls = std::make_unique<DtlsSession>(ca, DtlsSession::Role::Client, cb->fingerprint(),
                                            [sp](const uint8_t *d, size_t l) { sp->inbox.emplace_back(d, d + l); });
    s->dtls = std::make_unique<DtlsSession>(cb, DtlsSession::Role::Server, ca->fingerprint(),
                                            [cp](const uint8_t *d, size_t l) { cp->inbox.emplace_back(d, d + l); });
    s->dtls->start();
    c->dtls->start();
    for (int i = 0; i < 50 && !(c->inbox.empty() && s->inbox.empty()); i++) {
      for (Peer *p : {sp, cp}) {
        auto in = std::move(p->inbox);
        p->inbox.clear();
        for (auto &d : in) p->dtls->receive(d.data(), d.size());
      }
    }
    if (c->dtls->state() != DtlsSession::State::Connected || !c->srtp.init(c->dtls->keys(), &error) ||
        !s->srtp.init(s->dtls->keys(), &error))
      return false;
    peers.push_back(std::move(c));
    peers.push_back(std::move(s));
    return true;
  };
  for (int i = 0; i < 20; i++) handshake();  // warm-up: OpenSSL's and libsrtp's one-time tables
  peers.clear();
  long before = rss_kb();
  for (int i = 0; i < n / 2; i++)
    if (!handshake()) return fprintf(stderr, "handshake failed: %s\n", error.c_str()), 1;
  long after = rss_kb();
  printf("%zu connected DTLS+SRTP sessions: RSS +%ld kB, %.1f kB per session\n", peers.size(), after - before,
         double(after - before) / double(peers.size()));
  // The SRTP part alone: as many sessions again, keyed from the ones above.
  std::vector<std::unique_ptr<SrtpSession>> srtp;
  before = rss_kb();
  for (auto &p : peers) {
    srtp.push_back(std::make_unique<SrtpSession>());
    if (!srtp.back()->init(p->dtls->keys(), &error)) return 1;
  }
  after = rss_kb();
  printf("of which SRTP (two libsrtp2 contexts; with AES-CM none until the peer sends RTP): %.1f kB per session\n", double(after - before) / double(srtp.size()));
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 2 && std::string(argv[1]) == "--memory") return memory(atoi(argv[2]), argc > 3 && std::string(argv[3]) == "cm");
  int viewers = argc > 1 ? atoi(argv[1]) : 50, packets = argc > 2 ? atoi(argv[2]) : 2000;
  size_t size = argc > 3 ? static_cast<size_t>(atoi(argv[3])) : 1200;
  int sink = socket(AF_INET, SOCK_DGRAM, 0), out = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof addr;
  if (sink < 0 || out < 0 || bind(sink, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
      getsockname(sink, reinterpret_cast<sockaddr *>(&addr), &alen) != 0) {
    perror("socket");
    return 1;
  }
  run(SrtpProfile::Aes128CmSha1_80, true, viewers, packets / 4 + 1, size, -1, &addr);  // warm-up
  struct Variant {
    SrtpProfile profile;
    bool own_cm;
    const char *by;
  };
  for (Variant v : {Variant{SrtpProfile::Aes128CmSha1_80, false, "libsrtp2"}, Variant{SrtpProfile::Aes128CmSha1_80, true, "srtp_cm.h"},
                    Variant{SrtpProfile::AeadAes128Gcm, false, "libsrtp2"}}) {
    double protect = run(v.profile, v.own_cm, viewers, packets, size, -1, &addr);
    double send = run(v.profile, v.own_cm, viewers, packets, size, out, &addr);
    printf("%s (%s), %zu-byte packets, %d viewers: rewrite+protect %.0f ns, rewrite+protect+sendto %.0f ns per packet\n",
           srtp_profile_name(v.profile), v.by, size, viewers, protect, send);
  }
  close(sink);
  close(out);
  return 0;
}
