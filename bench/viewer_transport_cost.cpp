// Threads, memory and CPU of a process that serves N viewers through the shared viewer
// transport (transport/viewer_transport.h): one SharedIceAgent, a ViewerConnection per
// viewer, one 1200-byte VP8 packet stream (about 1 Mbit/s) payloaded once and sent to all.
// The viewers run in a second process (forked first: a second SharedIceAgent, DTLS client,
// counting what it unprotects), so the figures are the server's alone; compare with
// bench/viewer_threads.sh and bench/viewer_cost.sh for whepserversink.
// Usage: viewer_transport_cost [VIEWERS (50)] [SECONDS OF MEDIA (10)]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include <glib.h>

#include "dtls_certificate.h"
#include "transport/viewer_transport.h"

using namespace wish;

namespace {

long status_kb(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, key, strlen(key)) == 0) v = atol(line + strlen(key));
  if (f) fclose(f);
  return v;
}

int threads() {
  GDir *d = g_dir_open("/proc/self/task", 0, nullptr);
  int n = 0;
  while (d && g_dir_read_name(d)) n++;
  if (d) g_dir_close(d);
  return n;
}

double cpu_s() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// One line per viewer over a pipe: "ufrag pwd candidate...".
std::string describe(ViewerConnection &c) {
  std::string ufrag, pwd;
  c.local_credentials(&ufrag, &pwd);
  std::string s = ufrag + " " + pwd;
  for (const std::string &cand : c.local_candidates()) s += "|" + cand;
  return s + "\n";
}

void apply_peer(ViewerConnection &c, const std::string &line) {
  size_t sp = line.find(' '), bar = line.find('|');
  c.set_remote_credentials(line.substr(0, sp), line.substr(sp + 1, bar - sp - 1));
  while (bar != std::string::npos) {
    size_t next = line.find('|', bar + 1);
    c.add_remote_candidate(line.substr(bar + 1, next == std::string::npos ? std::string::npos : next - bar - 1));
    bar = next;
  }
}

std::string read_line(FILE *f) {
  char buf[4096];
  if (!fgets(buf, sizeof buf, f)) return "";
  std::string s = buf;
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

IceConfig ice(bool controlling) {
  IceConfig c;
  c.local_addresses = {"127.0.0.1"};
  c.controlling = controlling;
  return c;
}

std::shared_ptr<DtlsContext> dtls_context(const std::string &pem) {
  std::string error;
  auto d = DtlsContext::create(pem, {SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmSha1_80}, &error);
  if (!d) {
    fprintf(stderr, "%s\n", error.c_str());
    exit(1);
  }
  return d;
}

}  // namespace

int main(int argc, char **argv) {
  int viewers = argc > 1 ? atoi(argv[1]) : 50, seconds = argc > 2 ? atoi(argv[2]) : 10;
  std::string server_pem = make_ecdsa_certificate_pem(), peer_pem = make_ecdsa_certificate_pem();
  int to_peer[2], to_server[2];
  if (pipe(to_peer) || pipe(to_server)) return 1;
  pid_t child = fork();
  if (child == 0) {  // the viewers
    FILE *in = fdopen(to_peer[0], "r"), *out = fdopen(to_server[1], "w");
    auto dtls = dtls_context(peer_pem);
    std::string error, server_fp = read_line(in);
    std::unique_ptr<SharedIceAgent> agent = SharedIceAgent::create(ice(true), dtls, &error);
    std::vector<std::shared_ptr<ViewerConnection>> conns;
    std::atomic<long> received{0};
    fprintf(out, "%s\n", dtls->fingerprint().c_str());
    fflush(out);
    for (int i = 0; i < viewers; i++) {
      ViewerConfig pc;
      pc.dtls_role = DtlsSession::Role::Client;
      pc.peer_fingerprint = server_fp;
      ViewerCallbacks cb;
      cb.on_rtp = [&received](const uint8_t *, size_t) { received++; };
      conns.push_back(agent->add_viewer(pc, cb, &error));
      apply_peer(*conns.back(), read_line(in));
      fputs(describe(*conns.back()).c_str(), out);
      fflush(out);
    }
    read_line(in);  // the server is done
    fprintf(stderr, "viewers' process: %ld packets unprotected\n", received.load());
    for (auto &c : conns) c->close();
    _exit(0);
  }
  FILE *in = fdopen(to_server[0], "r"), *out = fdopen(to_peer[1], "w");
  auto dtls = dtls_context(server_pem);
  fprintf(out, "sha-256 %s\n", dtls->fingerprint().c_str());
  fflush(out);
  std::string peer_fp = "sha-256 " + read_line(in), error;
  std::unique_ptr<SharedIceAgent> agent = SharedIceAgent::create(ice(false), dtls, &error);
  long rss0 = status_kb("VmRSS:");
  int threads0 = threads();
  std::vector<std::shared_ptr<ViewerConnection>> conns;
  for (int i = 0; i < viewers; i++) {
    ViewerConfig sc;
    sc.peer_fingerprint = peer_fp;
    ViewerTrack t;
    t.encoding = "VP8";
    t.ssrc = 0x1000 + i;
    t.rtx_payload_type = 97;
    t.rtx_ssrc = 0x8000 + i;
    sc.tracks.push_back(t);
    conns.push_back(agent->add_viewer(sc, {}, &error));
    fputs(describe(*conns.back()).c_str(), out);
    fflush(out);
    apply_peer(*conns.back(), read_line(in));
  }
  // Media for the given time: 100 packets a second, each a VP8 key frame start so that a
  // viewer starts at once.
  std::vector<uint8_t> rtp = {0x80, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x10, 0x00};
  rtp.resize(1200, 0x55);
  double cpu0 = cpu_s();
  int64_t start = g_get_monotonic_time();
  long sent = 0;
  for (uint16_t seq = 0; g_get_monotonic_time() - start < seconds * 1000000LL; seq++) {
    rtp[2] = static_cast<uint8_t>(seq >> 8);
    rtp[3] = static_cast<uint8_t>(seq);
    uint32_t ts = seq * 900u;
    for (int i = 0; i < 4; i++) rtp[4 + i] = static_cast<uint8_t>(ts >> (24 - 8 * i));
    auto packet = std::make_shared<const std::vector<uint8_t>>(rtp);
    for (auto &c : conns) sent += c->send(0, packet);
    g_usleep(10000);
  }
  double cpu = cpu_s() - cpu0;
  int connected = 0;
  for (auto &c : conns) connected += c->state() == ViewerConnection::State::DtlsConnected;
  long rss = status_kb("VmRSS:");
  printf("viewers %d (connected %d), threads %d (before viewers %d), RSS %ld kB (before viewers %ld kB, %.1f kB per "
         "viewer), CPU %.2f s over %d s of media (%.1f%% of a core), %ld packets sent\n",
         viewers, connected, threads(), threads0, rss, rss0, double(rss - rss0) / viewers, cpu, seconds,
         100 * cpu / seconds, sent);
  fputs("done\n", out);
  fflush(out);
  for (auto &c : conns) c->close();
  int status = 0;
  waitpid(child, &status, 0);
  return connected == viewers ? 0 : 1;
}
