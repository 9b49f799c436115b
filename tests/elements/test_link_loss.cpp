// The network path between clients and server goes away for 10 s and comes back: a playing
// whepsrc and a publishing whipsink ride through it (each recovery a message, no error) and
// decoded frames flow again within 3 s of the link coming back. And the network loses the
// first packets of a WHIP session (its connectivity checks): the publisher still gets through
// to the relay within seconds, and the relay's viewer plays.
//
// Two network namespaces made by the test, joined by a veth pair: the server (whepserversink
// and whipserversrc on one HTTP server) in one, the clients in the other, each a
// report_pipeline process started with `ip netns exec`. The veth end of the server's
// namespace is set down for 10 s, so the clients' packets vanish without an answer (the
// clients' own interface stays up: no error tells them anything; set WISH_LINK_DOWN_SIDE=client
// to take the clients' end down instead). The first packets are dropped by nftables on each
// side's veth. Needs root (network namespaces); skipped otherwise, and the lost-packets test
// without nft. The namespaces are deleted afterwards, also when the test fails or is killed.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "child_pipeline.h"
#include "netns.h"
#include "fixtures.h"

namespace {

using namespace wish_test;

// Every test gets namespaces of its own: fresh interfaces, no rules, nothing left in them.
void setup() {
  std::string why = make_namespaces();
  fail_unless(why.empty(), "%s", why.c_str());
}

void teardown() {
  wish_test::stop_leftovers();
  delete_namespaces();
}

// The first line of `who` at or after time t that starts with prefix and contains `what`.
std::string first_after(ChildPipeline &who, const std::string &prefix, const std::string &what, gint64 t, int ms) {
  return who.wait_line(
      [&](const std::string &l) {
        return l.rfind(prefix, 0) == 0 && l.find(what) != std::string::npos && ChildPipeline::time_of(l) >= t;
      },
      ms);
}

// Runs `nft -f -` on `script` inside a namespace; false with the error in *err.
bool nft(const std::string &ns, const std::string &script, std::string *err = nullptr) {
  const gchar *argv[] = {"ip", "netns", "exec", ns.c_str(), "nft", "-f", "-", nullptr};
  GPid pid = 0;
  gint in = -1, errfd = -1;
  GError *e = nullptr;
  if (!g_spawn_async_with_pipes(nullptr, const_cast<gchar **>(argv), nullptr,
                                static_cast<GSpawnFlags>(G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD), nullptr,
                                nullptr, &pid, &in, nullptr, &errfd, &e)) {
    if (err) *err = e ? e->message : "cannot run nft";
    g_clear_error(&e);
    return false;
  }
  ssize_t n = write(in, script.data(), script.size());
  close(in);
  std::string errout;
  char buf[512];
  ssize_t r;
  while ((r = read(errfd, buf, sizeof buf)) > 0) errout.append(buf, static_cast<size_t>(r));
  close(errfd);
  int status = 0;
  waitpid(pid, &status, 0);
  g_spawn_close_pid(pid);
  bool ok = n == static_cast<ssize_t>(script.size()) && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok && err) *err = errout.empty() ? "nft failed" : errout;
  return ok;
}

bool have_nft() {
  gchar *path = g_find_program_in_path("nft");
  g_free(path);
  return path != nullptr;
}

guint64 count_of(const std::string &line) {
  size_t sp = line.rfind(' ');
  return sp == std::string::npos ? 0 : g_ascii_strtoull(line.c_str() + sp + 1, nullptr, 10);
}

}  // namespace

GST_START_TEST(test_link_down_10s) {
  const char *side = g_getenv("WISH_LINK_DOWN_SIDE");
  bool client_side = side && g_str_equal(side, "client");
  std::string url = "http://" + std::string(kServerAddress) + ":" + std::to_string(kPort);
  std::string src = "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1";
  // On the heap: a failed assertion leaves by longjmp, and the teardown kills the processes.
  auto server_owner = std::make_unique<ChildPipeline>("whepserversink name=out address=" + std::string(kServerAddress) +
                           " port=" + std::to_string(kPort) + " ice-local-addresses=" + kServerAddress + " " + src +
                           " ! out.  whipserversrc name=in address=" + kServerAddress + " port=" +
                           std::to_string(kPort) + " ice-local-addresses=" + kServerAddress +
                           " in.video_0 ! video/x-raw ! fakesink name=frames_published",
                       std::vector<std::string>{"ip", "netns", "exec", server_ns});
  ChildPipeline &server = *server_owner;
  fail_unless(server.started(), "%s", server.spawn_error().c_str());
  fail_if(server.wait_prefix("playing ", 10000).empty(), "the server did not start:\n%s", server.grep("error").c_str());
  // Both clients in one process, with the defaults a user has (max-reconnects=10 among them).
  auto clients_owner = std::make_unique<ChildPipeline>("whepsrc name=player whep-endpoint=" + url + "/whep ice-local-addresses=" + kClientAddress +
                            " audio-codecs=none ! video/x-raw ! fakesink name=frames_played  whipsink name=publisher "
                            "whip-endpoint=" + url + "/whip ice-local-addresses=" + kClientAddress + " " + src +
                            " ! publisher.",
                        std::vector<std::string>{"ip", "netns", "exec", client_ns});
  ChildPipeline &clients = *clients_owner;
  fail_unless(clients.started(), "%s", clients.spawn_error().c_str());
  fail_if(clients.wait_prefix("frame ", 15000).empty(), "the player got no frame:\n%s", clients.grep("error").c_str());
  fail_if(server.wait_prefix("frame ", 15000).empty(), "the server decoded nothing from the publisher:\n%s",
          clients.grep("error").c_str());
  g_usleep(G_USEC_PER_SEC);

  std::vector<std::string> where = client_side ? std::vector<std::string>{"-n", client_ns, "link", "set", client_if}
                                               : std::vector<std::string>{"-n", server_ns, "link", "set", server_if};
  gint64 down = g_get_monotonic_time();
  std::string err;
  auto set = [&](const char *state) {
    std::vector<std::string> args = where;
    args.push_back(state);
    fail_unless(ip(args, &err), "ip link set %s: %s", state, err.c_str());
  };
  set("down");
  g_usleep(10 * G_USEC_PER_SEC);
  gint64 up = g_get_monotonic_time();
  set("up");

  std::string played = first_after(clients, "frame ", "frames_played", up, 10000);
  std::string published = first_after(server, "frame ", "frames_published", up, 10000);
  // Frames keep flowing afterwards.
  g_usleep(2 * G_USEC_PER_SEC);
  gint64 later = g_get_monotonic_time();
  std::string played_count = first_after(clients, "count ", "frames_played", later, 3000);
  std::string published_count = first_after(server, "count ", "frames_published", later, 3000);
  std::string played_count2 = first_after(clients, "count ", "frames_played", later + 1500 * 1000, 3000);
  std::string published_count2 = first_after(server, "count ", "frames_published", later + 1500 * 1000, 3000);

  auto ms_after_up = [&](const std::string &line) { return line.empty() ? -1.0 : (ChildPipeline::time_of(line) - up) / 1000.0; };
  std::string messages = clients.grep("message ");
  std::string log;
  for (const auto &l : clients.lines())
    if (l.rfind("message", 0) == 0 && l.find("wish-") != std::string::npos && ChildPipeline::time_of(l) >= down)
      log += "  " + l.substr(0, 200) + "\n";
  g_print("link %s down for %.1f s: player video again %.0f ms after the link came back, publisher's video decoded "
          "by the server %.0f ms after\n%s",
          client_side ? "(clients' end)" : "(server's end)", (up - down) / 1e6, ms_after_up(played),
          ms_after_up(published), log.c_str());

  std::string errors = clients.grep("error ") + server.grep("error ");
  fail_unless(errors.empty(), "errors posted:\n%s", errors.c_str());
  for (const char *who : {"player", "publisher"}) {
    for (const char *msg : {"wish-reconnecting", "wish-reconnected"}) {
      std::string m = first_after(clients, "message ", std::string(who) + " " + msg, down, 100);
      fail_if(m.empty(), "%s posted no %s", who, msg);
    }
  }
  fail_if(played.empty(), "the player got no frame after the link came back");
  fail_if(published.empty(), "the server decoded nothing from the publisher after the link came back");
  fail_unless(count_of(played_count2) > count_of(played_count), "the player's frames stopped again");
  fail_unless(count_of(published_count2) > count_of(published_count), "the publisher's frames stopped again");
  fail_unless(ms_after_up(played) < 3000, "player: video %.0f ms after the link came back", ms_after_up(played));
  fail_unless(ms_after_up(published) < 3000, "publisher: video %.0f ms after the link came back",
              ms_after_up(published));
}
GST_END_TEST;

// nftables on the veth end of each namespace: drops the first `dropped` UDP packets that
// arrive there (ICE connectivity checks and their answers, then DTLS), and TCP other than the
// HTTP signalling, so that ICE-TCP cannot carry the session past the loss.
std::string first_packets_rules(const std::string &dev, unsigned dropped) {
  std::string port = std::to_string(kPort);
  return "table inet wishstart\n"
         "delete table inet wishstart\n"
         "table inet wishstart {\n"
         "  chain in { type filter hook input priority 0; policy accept;\n"
         "    iifname \"" + dev + "\" tcp dport " + port + " accept\n"
         "    iifname \"" + dev + "\" tcp sport " + port + " accept\n"
         "    iifname \"" + dev + "\" meta l4proto tcp drop\n"
         "    iifname \"" + dev + "\" meta l4proto udp numgen inc mod 1000000 < " + std::to_string(dropped) +
         " counter drop\n"
         "  }\n"
         "}\n";
}

// The network loses the first 6 UDP packets each way, which is every connectivity check
// each side sends for a whole session and more: whipsink's next session gets through within
// about 7 s of its start, and a viewer of the relay plays.
GST_START_TEST(test_first_packets_lost) {
  const unsigned kDropped = 6;
  std::string err;
  fail_unless(nft(server_ns, first_packets_rules(server_if, kDropped), &err), "nft: %s", err.c_str());
  fail_unless(nft(client_ns, first_packets_rules(client_if, kDropped), &err), "nft: %s", err.c_str());
  std::string url = "http://" + std::string(kServerAddress) + ":" + std::to_string(kPort);
  std::string at = " address=" + std::string(kServerAddress) + " port=" + std::to_string(kPort) +
                   " ice-local-addresses=" + kServerAddress;
  auto relay_owner = std::make_unique<ChildPipeline>(
      "whipserversrc name=in" + at + " whepserversink name=out" + at + " in.video_0 ! queue ! out.video_0",
      std::vector<std::string>{"ip", "netns", "exec", server_ns});
  ChildPipeline &relay = *relay_owner;
  fail_unless(relay.started(), "%s", relay.spawn_error().c_str());
  fail_if(relay.wait_prefix("playing ", 10000).empty(), "the relay did not start:\n%s", relay.grep("error").c_str());
  auto publisher_owner = std::make_unique<ChildPipeline>(
      "whipsink name=publisher whip-endpoint=" + url + "/whip ice-local-addresses=" + kClientAddress +
          " videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! publisher.",
      std::vector<std::string>{"ip", "netns", "exec", client_ns});
  ChildPipeline &publisher = *publisher_owner;
  fail_unless(publisher.started(), "%s", publisher.spawn_error().c_str());
  std::string started = publisher.wait_prefix("playing ", 10000);
  fail_if(started.empty(), "the publisher did not start:\n%s", publisher.grep("error").c_str());
  gint64 t0 = ChildPipeline::time_of(started);

  std::string joined = first_after(relay, "message ", "wish-publisher-joined", t0, 30000);
  double joined_s = joined.empty() ? -1 : (ChildPipeline::time_of(joined) - t0) / 1e6;
  // The viewer beside the relay (no loss on that path) from the moment the publisher is in.
  std::unique_ptr<ChildPipeline> player_owner;
  std::string played;
  if (!joined.empty()) {
    player_owner = std::make_unique<ChildPipeline>(
        "whepsrc name=player whep-endpoint=" + url + "/whep ice-local-addresses=" + kServerAddress +
            " audio-codecs=none ! video/x-raw ! fakesink name=frames_played",
        std::vector<std::string>{"ip", "netns", "exec", server_ns});
    played = first_after(*player_owner, "frame ", "frames_played", t0, 10000);
  }
  double played_s = played.empty() ? -1 : (ChildPipeline::time_of(played) - t0) / 1e6;
  std::string log;
  for (const auto &l : publisher.lines())
    if (l.rfind("message", 0) == 0 && l.find("wish-") != std::string::npos) log += "  " + l.substr(0, 160) + "\n";
  g_print("first %u UDP packets lost each way: publisher in %.1f s after it started, relay's viewer played %.1f s "
          "after\n%s",
          kDropped, joined_s, played_s, log.c_str());
  std::string errors = publisher.grep("error ") + relay.grep("error ");
  fail_unless(errors.empty(), "errors posted:\n%s", errors.c_str());
  fail_if(joined.empty(), "the publisher never got through to the relay");
  fail_unless(joined_s < 12, "the publisher got through %.1f s after it started", joined_s);
  fail_if(played.empty(), "the relay's viewer got no frame");
}
GST_END_TEST;

static Suite *link_loss_suite(void) {
  Suite *s = suite_create("link-loss");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 90);
  tcase_add_checked_fixture(tc, setup, teardown);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_link_down_10s);
  if (have_nft())
    tcase_add_test(tc, test_first_packets_lost);
  else
    g_print("nft is not installed: test_first_packets_lost skipped\n");
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  if (geteuid() != 0) {
    g_print("SKIP: network namespaces need root (this runs as uid %u)\n", geteuid());
    return 77;
  }
  delete_stale_namespaces();
  std::string why = make_namespaces();  // can they be made here at all
  delete_namespaces();
  if (!why.empty()) {
    g_print("SKIP: %s\n", why.c_str());
    return 77;
  }
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) signal(sig, on_signal);
  int failed = gst_check_run_suite(link_loss_suite(), "link_loss", __FILE__);
  delete_namespaces();
  fflush(stdout);
  fflush(stderr);
  _exit(failed == 0 ? 0 : 1);
}
