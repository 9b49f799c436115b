// A viewer behind a rate limit: whepserversink (a ladder of three layers) in one network
// namespace, a whepsrc in another, joined by a veth pair whose server end gets a tc token
// bucket (tbf, 500 kbit/s) under the top layer's 1500 kbit/s. The server takes the viewer down
// a layer within a few seconds, and back up once the limit is lifted; the picture never stops for a second
// after the first step down. Needs root (network namespaces); skipped otherwise.
#include <memory>
#include <string>
#include <vector>

#include "child_pipeline.h"
#include "fixtures.h"
#include "netns.h"

namespace {

using namespace wish_test;

void teardown() {
  stop_leftovers();
  delete_namespaces();
}

bool tc(const std::vector<std::string> &args, std::string *err) {
  std::vector<std::string> all = {"netns", "exec", server_ns, "tc"};
  all.insert(all.end(), args.begin(), args.end());
  return ip(all, err);
}

guint64 count_of(const std::string &line) {
  size_t sp = line.rfind(' ');
  return sp == std::string::npos ? 0 : g_ascii_strtoull(line.c_str() + sp + 1, nullptr, 10);
}

}  // namespace

GST_START_TEST(test_down_under_a_rate_limit_and_back) {
  std::string url = "http://" + std::string(kServerAddress) + ":" + std::to_string(kPort) + "/whep";
  // Snow does not compress: the top layer takes its whole 1500 kbit/s.
  auto server_owner = std::make_unique<ChildPipeline>(
      "whepserversink name=out address=" + std::string(kServerAddress) + " port=" + std::to_string(kPort) +
          " ice-local-addresses=" + kServerAddress +
          " video-bitrate=1500 video-layers=m:320x240:300,l:160x120:120"
          " videotestsrc is-live=true pattern=snow ! video/x-raw,width=640,height=480,framerate=30/1 ! out.",
      std::vector<std::string>{"ip", "netns", "exec", server_ns});
  ChildPipeline &server = *server_owner;
  fail_unless(server.started(), "%s", server.spawn_error().c_str());
  fail_if(server.wait_prefix("playing ", 10000).empty(), "the server did not start:\n%s", server.grep("error").c_str());
  auto player_owner = std::make_unique<ChildPipeline>(
      "whepsrc name=player whep-endpoint=" + url + " ice-local-addresses=" + kClientAddress +
          " audio-codecs=none latency=200 ! video/x-raw ! fakesink name=frames_played",
      std::vector<std::string>{"ip", "netns", "exec", client_ns});
  ChildPipeline &player = *player_owner;
  fail_unless(player.started(), "%s", player.spawn_error().c_str());
  fail_if(player.wait_prefix("frame ", 15000).empty(), "the player got no frame:\n%s", player.grep("error").c_str());
  g_usleep(3 * G_USEC_PER_SEC);
  fail_unless(server.grep("message ").find("wish-viewer-layer") == std::string::npos,
              "the layer changed without a limit:\n%s", server.grep("message ").c_str());

  std::string err;
  fail_unless(tc({"qdisc", "add", "dev", server_if, "root", "tbf", "rate", "500kbit", "burst", "16kb", "latency", "80ms"},
                 &err),
              "tc: %s", err.c_str());
  gint64 limited = g_get_monotonic_time();
  auto layer_change = [&](const std::string &what, gint64 after, int ms) {
    return server.wait_line(
        [&](const std::string &l) {
          return l.rfind("message ", 0) == 0 && l.find("wish-viewer-layer") != std::string::npos &&
                 l.find(what) != std::string::npos && ChildPipeline::time_of(l) >= after;
        },
        ms);
  };
  std::string down = layer_change("reason=(string)congestion", limited, 20000);
  fail_if(down.empty(), "no step down under a 500 kbit/s limit:\n%s", server.grep("message ").c_str());
  double down_s = (ChildPipeline::time_of(down) - limited) / 1e6;
  g_usleep(6 * G_USEC_PER_SEC);

  fail_unless(tc({"qdisc", "del", "dev", server_if, "root"}, &err), "tc: %s", err.c_str());
  gint64 lifted = g_get_monotonic_time();
  std::string back = layer_change("rid=(string)h", lifted, 45000);
  fail_if(back.empty(), "never back to the top layer after the limit went:\n%s", server.grep("message ").c_str());
  double up_s = (ChildPipeline::time_of(back) - lifted) / 1e6;
  g_usleep(2 * G_USEC_PER_SEC);

  // The picture went on from the first step down to the end: frames every second.
  guint64 previous = 0;
  int seconds = 0, stalled = 0;
  for (const auto &l : player.lines()) {
    if (l.rfind("count ", 0) != 0 || ChildPipeline::time_of(l) < ChildPipeline::time_of(down)) continue;
    guint64 n = count_of(l);
    if (seconds++ > 0 && n == previous) stalled++;
    previous = n;
  }
  std::string changes;
  for (const auto &l : server.lines())
    if (l.find("wish-viewer-layer") != std::string::npos) changes += "  " + l.substr(0, 160) + "\n";
  g_print("500 kbit/s limit: down %.1f s after it began; lifted: back to h %.1f s after; %d s of playback checked, "
          "%d without a new frame\n%s",
          down_s, up_s, seconds, stalled, changes.c_str());
  fail_unless(down_s < 10, "down only %.1f s after the limit began", down_s);
  fail_unless(seconds > 5);
  fail_unless_equals_int(stalled, 0);
  std::string errors = player.grep("error ") + server.grep("error ");
  fail_unless(errors.empty(), "errors posted:\n%s", errors.c_str());
}
GST_END_TEST;

static Suite *layer_congestion_suite(void) {
  Suite *s = suite_create("layer-congestion");
  TCase *tc_case = tcase_create("general");
  tcase_set_timeout(tc_case, 120);
  tcase_add_checked_fixture(tc_case, nullptr, teardown);
  suite_add_tcase(s, tc_case);
  tcase_add_test(tc_case, test_down_under_a_rate_limit_and_back);
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  if (int skip = prepare_namespaces_or_skip()) return skip;
  int failed = gst_check_run_suite(layer_congestion_suite(), "layer_congestion", __FILE__);
  delete_namespaces();
  fflush(stdout);
  fflush(stderr);
  _exit(failed == 0 ? 0 : 1);
}
