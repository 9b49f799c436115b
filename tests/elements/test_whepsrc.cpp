// whepsrc against this project's whepserversink and against an HTTP server in the test that
// bends the protocol the ways deployed servers do (relative Locations, redirects, comma-joined
// Link headers, refused PATCH, slow or silent answers).
#include <gst/app/gstappsrc.h>
#include <signal.h>
#include <sys/wait.h>
#include <libsoup/soup.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <thread>

#include "http_client.h"
#include "loop_thread.h"
#include "fixtures.h"
#include "whepsrc_player.h"

GST_START_TEST(test_plays_with_trickle) {
  Server server;
  fail_unless(server.wait_ready());
  Player player(server.url());
  fail_unless(player.wait_video(30, 15000), "video frames: %" G_GUINT64_FORMAT, player.video.load());
  fail_unless(player.wait_audio(20, 10000));
  {
    std::lock_guard<std::mutex> lock(player.mutex);
    assert_str(player.video_caps, "video/x-raw");  // decoded by default
  }
  assert_contains(player.session_url(), server.url() + "/sessions/");
  fail_unless_equals_int(server.stat("viewer-count"), 1);
}
GST_END_TEST;

GST_START_TEST(test_plays_without_trickle) {
  Server server;
  fail_unless(server.wait_ready());
  Player player(server.url(), "trickle=false");
  fail_unless(player.wait_video(30, 15000));
  fail_unless(player.wait_audio(20, 10000));
}
GST_END_TEST;

GST_START_TEST(test_counter_offer) {
  Server server("counter-offer=always");
  fail_unless(server.wait_ready());
  Player player(server.url());
  fail_unless(player.wait_video(30, 15000));
  fail_unless(player.wait_audio(20, 10000));
}
GST_END_TEST;

GST_START_TEST(test_waits_for_publisher) {
  // No media yet: the server answers 409 and the player waits, still PLAYING.
  Server server("", "appsrc name=src is-live=true do-timestamp=true format=time "
                    "caps=video/x-raw,format=I420,width=64,height=64,framerate=30/1 ! s.");
  Player player(server.url(), "audio-codecs=none");
  assert_contains(player.wait_message("wish-waiting", 5000), "status=(uint)409");
  GstState state;
  gst_element_get_state(player.pipeline, &state, nullptr, 0);
  fail_unless_equals_int(state, GST_STATE_PLAYING);
  // The publisher starts: the same player plays.
  GstElement *src = gst_bin_get_by_name(GST_BIN(server.pipeline), "src");
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    while (!stop) {
      GstBuffer *buf = gst_buffer_new_allocate(nullptr, 64 * 64 * 3 / 2, nullptr);
      gst_buffer_memset(buf, 0, 0x60, 64 * 64 * 3 / 2);
      gst_app_src_push_buffer(GST_APP_SRC(src), buf);
      g_usleep(33 * 1000);
    }
  });
  bool played = player.wait_video(10, 20000);
  stop = true;
  publisher.join();
  gst_object_unref(src);
  fail_unless(played, "no video once the publisher started");
}
GST_END_TEST;

GST_START_TEST(test_busy_then_free) {
  Server server("max-viewers=1");
  fail_unless(server.wait_ready());
  wish_test::HttpClient http;
  auto occupant = http.request("POST", server.url(), {{"Content-Type", "application/sdp"}}, kStaticOffer);
  fail_unless_equals_int(occupant.status, 201);
  Player player(server.url());
  assert_contains(player.wait_message("wish-waiting", 5000), "status=(uint)503");
  fail_unless_equals_int(http.request("DELETE", server.url(occupant.header("Location"))).status, 200);
  fail_unless(player.wait_video(10, 20000), "no video after the server had room again");
}
GST_END_TEST;

// The first error the pipeline posts within ms: its code, and the http-status of its details
// (-1 when it has none).
static bool wait_resource_error(GstElement *pipeline, int ms, gint *code, gint *http_status, std::string *text) {
  GstBus *bus = gst_element_get_bus(pipeline);
  GstMessage *m = gst_bus_timed_pop_filtered(bus, ms * GST_MSECOND, GST_MESSAGE_ERROR);
  gst_object_unref(bus);
  if (!m) return false;
  GError *err = nullptr;
  gchar *dbg = nullptr;
  gst_message_parse_error(m, &err, &dbg);
  *code = err->domain == GST_RESOURCE_ERROR ? err->code : -1;
  *text = std::string(err->message) + " | " + (dbg ? dbg : "");
  const GstStructure *details = nullptr;
  gst_message_parse_error_details(m, &details);
  guint status = 0;
  *http_status = details && gst_structure_get_uint(details, "http-status", &status) ? static_cast<gint>(status) : -1;
  g_clear_error(&err);
  g_free(dbg);
  gst_message_unref(m);
  return true;
}

GST_START_TEST(test_auth) {
  Server server("auth-token=s3cret");
  fail_unless(server.wait_ready());
  {
    Player good(server.url(), "auth-token=s3cret");
    fail_unless(good.wait_video(10, 15000));
  }
  Player bad(server.url(), "auth-token=wrong");
  gint code = 0, status = 0;
  std::string text;
  fail_unless(wait_resource_error(bad.pipeline, 5000, &code, &status, &text), "no error");
  assert_contains(text, "401");
  assert_contains(text, "bearer token");
  fail_unless_equals_int(code, GST_RESOURCE_ERROR_NOT_AUTHORIZED);
  fail_unless_equals_int(status, 401);
}
GST_END_TEST;

// Client errors carry the GStreamer code matching the HTTP status, and the status itself.
GST_START_TEST(test_error_codes) {
  Server server;
  fail_unless(server.wait_ready());
  gint code = 0, status = 0;
  std::string text;
  {
    Player missing(server.url("/whep/nothing"));
    fail_unless(wait_resource_error(missing.pipeline, 5000, &code, &status, &text), "no error for a 404");
    fail_unless_equals_int(code, GST_RESOURCE_ERROR_NOT_FOUND);
    fail_unless_equals_int(status, 404);
    assert_contains(text, "no stream named");
  }
  {
    Player nobody("http://127.0.0.1:" + std::to_string(free_port()) + "/whep");
    fail_unless(wait_resource_error(nobody.pipeline, 5000, &code, &status, &text), "no error without a server");
    fail_unless_equals_int(code, GST_RESOURCE_ERROR_OPEN_READ_WRITE);
    fail_unless_equals_int(status, 0);
  }
}
GST_END_TEST;

GST_START_TEST(test_ice_restart) {
  Server server;
  fail_unless(server.wait_ready());
  Player player(server.url());
  fail_unless(player.wait_video(30, 15000));
  std::string url = player.session_url();
  g_signal_emit_by_name(player.src, "restart-ice");
  fail_if(player.wait_message("wish-ice-restarted", 5000).empty());
  assert_str(player.session_url(), url);  // same session
  guint64 before = player.video;
  fail_unless(player.wait_video(before + 60, 15000), "media stopped after the ICE restart");
  fail_unless_equals_int(server.stat("viewer-count"), 1);
}
GST_END_TEST;

GST_START_TEST(test_server_restart) {
  unsigned port = free_port();
  std::string props = "port=" + std::to_string(port);
  auto server = std::make_unique<Server>(props);
  fail_unless(server->wait_ready());
  Player player(server->url(), "max-reconnects=-1");
  fail_unless(player.wait_video(30, 15000));
  server.reset();  // the server goes away while the player plays
  g_usleep(1000 * 1000);
  server = std::make_unique<Server>(props);
  fail_unless(server->wait_ready());
  fail_if(player.wait_message("wish-reconnecting", 15000).empty());
  guint64 before = player.video;
  fail_unless(player.wait_video(before + 30, 30000), "no video after the server came back");
  GstState state;
  gst_element_get_state(player.pipeline, &state, nullptr, 0);
  fail_unless_equals_int(state, GST_STATE_PLAYING);
}
GST_END_TEST;

// While whepsrc reconnects, an endpoint answering 404 is one more server not back yet: the
// port's HTTP server is up (another element keeps it, or the server is stopping or starting)
// without the endpoint. whepsrc goes on trying and plays once the endpoint is back.
GST_START_TEST(test_reconnect_through_404) {
  unsigned port = free_port();
  std::string props = "port=" + std::to_string(port);
  Server other(props + " path=/other");  // keeps the HTTP server of the port up
  auto server = std::make_unique<Server>(props);
  fail_unless(server->wait_ready());
  Player player(server->url(), "max-reconnects=-1");
  fail_unless(player.wait_video(30, 15000));
  server.reset();
  fail_if(player.wait_message("wish-reconnecting", 15000).empty());
  wish_test::HttpClient http;
  fail_unless_equals_int(http.request("POST", other.url("/whep"), {{"Content-Type", "application/sdp"}}, kStaticOffer).status,
                         404);
  g_usleep(2 * G_USEC_PER_SEC);  // attempts meet the 404
  std::string error;
  fail_unless(player.wait_message("error", 1000, &error).empty(), "whepsrc gave up: %s", error.c_str());
  server = std::make_unique<Server>(props);
  fail_unless(server->wait_ready());
  guint64 before = player.video;
  fail_unless(player.wait_video(before + 30, 30000), "no video after the endpoint came back");
}
GST_END_TEST;

// A server process of its own on `port`; returns its pid once it answers HTTP.
static GPid start_server_process(unsigned port, gint64 *answering_us) {
  std::string port_prop = "port=" + std::to_string(port);
  const gchar *argv[] = {"gst-launch-1.0", "-q", "whepserversink", "name=s", "address=127.0.0.1", port_prop.c_str(),
                         "ice-local-addresses=127.0.0.1", "videotestsrc", "is-live=true", "!",
                         "video/x-raw,width=320,height=240,framerate=30/1", "!", "s.", "audiotestsrc", "is-live=true",
                         "!", "s.", nullptr};
  GPid pid = 0;
  GError *err = nullptr;
  fail_unless(g_spawn_async(nullptr, const_cast<gchar **>(argv), nullptr,
                            static_cast<GSpawnFlags>(G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                                     G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL),
                            nullptr, nullptr, &pid, &err),
              "%s", err ? err->message : "");
  wish_test::kill_at_teardown(pid);
  wish_test::HttpClient http;
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/whep";
  fail_unless(wait_until(10000, [&] { return http.request("OPTIONS", url).status == 200; }), "the server never answered");
  *answering_us = g_get_monotonic_time();
  return pid;
}

static void kill_server_process(GPid pid) {
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  g_spawn_close_pid(pid);
  wish_test::forget_process(pid);
}

// The server process is killed (SIGKILL: no DELETE, no goodbye) under a playing whepsrc and
// started again: the player tells the application (wish-reconnecting, then wish-reconnected),
// never posts an error, and plays again within 3 s of the server answering. The server stays
// away 4 s, so the player is in its backoff (an attempt every 2 s at most) when it returns.
GST_START_TEST(test_server_killed) {
  unsigned port = free_port();
  gint64 up = 0;
  GPid pid = start_server_process(port, &up);
  Player player("http://127.0.0.1:" + std::to_string(port) + "/whep");
  fail_unless(player.wait_video(30, 15000));
  kill_server_process(pid);
  gint64 killed = g_get_monotonic_time();
  g_usleep(4 * G_USEC_PER_SEC);
  guint64 frozen = player.video;  // nothing arrives while there is no server
  pid = start_server_process(port, &up);
  fail_unless(wait_until(10000, [&] { return player.video > frozen; }), "no video after the server came back");
  double resumed_ms = (g_get_monotonic_time() - up) / 1000.0;
  std::string error;
  std::string reconnecting = player.wait_message("wish-reconnecting", 1000, &error);
  std::string reconnected = player.wait_message("wish-reconnected", 3000, &error);
  g_print("whepsrc: server killed, restarted and answering %.0f ms later; first decoded frame %.0f ms after it "
          "answered\n  %s\n  %s\n",
          (up - killed) / 1000.0, resumed_ms, reconnecting.c_str(), reconnected.c_str());
  fail_if(reconnecting.empty(), "no wish-reconnecting: %s", error.c_str());
  fail_if(reconnected.empty(), "no wish-reconnected: %s", error.c_str());
  fail_unless(error.empty(), "error posted: %s", error.c_str());
  fail_unless(player.wait_video(frozen + 30, 10000), "video stopped again after the server came back");
  fail_unless(player.wait_message("error", 200).empty());
  fail_unless(resumed_ms < 3000, "video again only %.0f ms after the server answered", resumed_ms);
  GstState state;
  gst_element_get_state(player.pipeline, &state, nullptr, 0);
  fail_unless_equals_int(state, GST_STATE_PLAYING);
  kill_server_process(pid);
}
GST_END_TEST;

GST_START_TEST(test_delete_on_stop) {
  Server server;
  fail_unless(server.wait_ready());
  {
    Player player(server.url());
    fail_unless(player.wait_video(5, 15000));
    fail_unless_equals_int(server.stat("viewer-count"), 1);
  }
  // Gone at once by DELETE, not by the viewer timeout.
  fail_unless(wait_until(2000, [&] { return server.stat("viewer-count") == 0; }));
}
GST_END_TEST;

static guint64 count_buffers(const std::string &desc, int ms, std::vector<std::string> *decoders = nullptr) {
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(desc.c_str(), &err);
  fail_unless(pipeline != nullptr, "%s", err ? err->message : "");
  watch_test_pipeline(pipeline);
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "out");
  auto *count = new std::atomic<guint64>(0);
  GstPad *pad = gst_element_get_static_pad(sink, "sink");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER,
                    [](GstPad *, GstPadProbeInfo *, gpointer d) {
                      (*static_cast<std::atomic<guint64> *>(d))++;
                      return GST_PAD_PROBE_OK;
                    },
                    count, nullptr);
  gst_object_unref(pad);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  wait_until(ms, [&] { return count->load() >= 30; });
  if (decoders) {
    GstIterator *it = gst_bin_iterate_recurse(GST_BIN(pipeline));
    GValue item = G_VALUE_INIT;
    while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
      GstElementFactory *f = gst_element_get_factory(GST_ELEMENT(g_value_get_object(&item)));
      const char *klass = f ? gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS) : "";
      if (strstr(klass, "Decoder/Video") || strstr(klass, "Decoder/Audio"))  // media decoders only
        decoders->push_back(GST_OBJECT_NAME(f));
      g_value_reset(&item);
    }
    g_value_unset(&item);
    gst_iterator_free(it);
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  guint64 n = count->load();
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  delete count;
  return n;
}

GST_START_TEST(test_encoded_output) {
  Server server;
  fail_unless(server.wait_ready());
  std::vector<std::string> decoders;
  guint64 n = count_buffers("whepsrc whep-endpoint=" + server.url() +
                                " ice-local-addresses=127.0.0.1 audio-codecs=none ! video/x-h264 ! fakesink name=out",
                            15000, &decoders);
  fail_unless(n >= 30, "only %" G_GUINT64_FORMAT " H.264 buffers", n);
  fail_unless(decoders.empty(), "a decoder was plugged: %s", decoders.empty() ? "" : decoders[0].c_str());
  guint64 rtp = count_buffers("whepsrc whep-endpoint=" + server.url() +
                                  " ice-local-addresses=127.0.0.1 audio-codecs=none ! application/x-rtp ! fakesink name=out",
                              15000);
  fail_unless(rtp >= 30);
}
GST_END_TEST;

// Several players whose video and audio pads both end in encoded caps, started at once: each
// pad's mode follows what downstream linked in pad-added, also when the two pads of a player
// are announced from two streaming threads at the same time.
GST_START_TEST(test_encoded_outputs_announced_together) {
  Server server;
  fail_unless(server.wait_ready());
  const int players = 8;
  std::vector<GstElement *> pipelines;
  std::vector<std::atomic<guint64> *> counts;
  for (int i = 0; i < players; i++) {
    GError *err = nullptr;
    GstElement *p = gst_parse_launch(("whepsrc whep-endpoint=" + server.url() +
                                      " ice-local-addresses=127.0.0.1 name=w w. ! video/x-h264 ! fakesink name=v "
                                      "w. ! audio/x-opus ! fakesink name=a")
                                         .c_str(),
                                     &err);
    fail_unless(p != nullptr, "%s", err ? err->message : "");
    watch_test_pipeline(p);
    for (const char *name : {"v", "a"}) {
      auto *n = new std::atomic<guint64>(0);
      counts.push_back(n);
      GstElement *sink = gst_bin_get_by_name(GST_BIN(p), name);
      GstPad *pad = gst_element_get_static_pad(sink, "sink");
      gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER,
                        [](GstPad *, GstPadProbeInfo *, gpointer d) {
                          (*static_cast<std::atomic<guint64> *>(d))++;
                          return GST_PAD_PROBE_OK;
                        },
                        n, nullptr);
      gst_object_unref(pad);
      gst_object_unref(sink);
    }
    pipelines.push_back(p);
  }
  for (GstElement *p : pipelines) gst_element_set_state(p, GST_STATE_PLAYING);
  bool all = wait_until(20000, [&] {
    for (auto *n : counts)
      if (n->load() < 10) return false;
    return true;
  });
  std::string errors;
  for (GstElement *p : pipelines) {
    std::string error = wait_bus_message(p, "error", 1);
    if (!error.empty()) errors += error + "\n";
  }
  for (GstElement *p : pipelines) {
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
  }
  for (auto *n : counts) delete n;
  fail_unless(errors.empty(), "%s", errors.c_str());
  fail_unless(all, "a player's encoded output got nothing");
}
GST_END_TEST;

GST_START_TEST(test_playbin3_uri) {
  Server server;
  fail_unless(server.wait_ready());
  std::string uri = "whep://127.0.0.1:" + std::to_string(server.port) + "/whep";
  GstElement *playbin = gst_element_factory_make("playbin3", nullptr);
  fail_unless(playbin != nullptr);
  GstElement *vsink = gst_element_factory_make("fakesink", "out");
  GstElement *asink = gst_element_factory_make("fakesink", nullptr);
  g_object_set(vsink, "sync", FALSE, nullptr);
  g_object_set(asink, "sync", FALSE, nullptr);
  g_object_set(playbin, "uri", uri.c_str(), "video-sink", vsink, "audio-sink", asink, nullptr);
  g_signal_connect(playbin, "source-setup", G_CALLBACK(+[](GstElement *, GstElement *source, gpointer) {
                     g_object_set(source, "ice-local-addresses", "127.0.0.1", nullptr);
                   }),
                   nullptr);
  auto *frames = new std::atomic<guint64>(0);
  GstPad *pad = gst_element_get_static_pad(vsink, "sink");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER,
                    [](GstPad *, GstPadProbeInfo *, gpointer d) {
                      (*static_cast<std::atomic<guint64> *>(d))++;
                      return GST_PAD_PROBE_OK;
                    },
                    frames, nullptr);
  gst_object_unref(pad);
  watch_test_pipeline(playbin);
  gst_element_set_state(playbin, GST_STATE_PLAYING);
  fail_unless(wait_until(20000, [&] { return frames->load() >= 30; }), "playbin3 showed %" G_GUINT64_FORMAT " frames",
              frames->load());
  gst_element_set_state(playbin, GST_STATE_NULL);
  gst_object_unref(playbin);
  delete frames;
}
GST_END_TEST;

// ---------------------------------------------------------------------------------------
// A WHEP server that forwards to whepserversink's action signals and bends the responses.

struct EdgeServer {
  struct Options {
    std::string location = "absolute";  // absolute, relative, path
    std::string redirect_to;            // non-empty: answer every POST with 307 to this URL
    std::string extra_link;             // one Link header with comma-joined values
    bool refuse_patch = false;          // 405 to every PATCH
    int delete_delay_ms = 0;            // hold the DELETE answer
    int delay_ms = 0;                   // hold the POST answer
    bool never_answer = false;
  } options;
  GstElement *sink;
  std::unique_ptr<wish::LoopThread> loop;
  SoupServer *soup = nullptr;
  unsigned port = 0;
  std::atomic<int> posts{0}, patches{0}, deletes{0};
  std::mutex mutex;
  std::vector<SoupServerMessage *> held;

  EdgeServer(GstElement *target, Options o) : options(std::move(o)), sink(target) {
    loop = std::make_unique<wish::LoopThread>("edge");
    loop->invoke_sync([this] {
      soup = soup_server_new(nullptr, nullptr);
      soup_server_add_handler(soup, nullptr, &EdgeServer::handle, this, nullptr);
      GError *err = nullptr;
      fail_unless(soup_server_listen_local(soup, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &err));
      GSList *uris = soup_server_get_uris(soup);
      port = g_uri_get_port(static_cast<GUri *>(uris->data));
      g_slist_free_full(uris, reinterpret_cast<GDestroyNotify>(g_uri_unref));
    });
  }
  ~EdgeServer() {
    loop->invoke_sync([this] {
      for (auto *m : held) g_object_unref(m);
      soup_server_disconnect(soup);
      g_object_unref(soup);
    });
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/whep"; }

  GstStructure *forward(const char *signal, const std::string &path, SoupServerMessage *msg) {
    SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
    SoupMessageBody *body = soup_server_message_get_request_body(msg);
    GBytes *bytes = soup_message_body_flatten(body);
    std::string b(static_cast<const char *>(g_bytes_get_data(bytes, nullptr)) ?: "", g_bytes_get_size(bytes));
    g_bytes_unref(bytes);
    GstStructure *req = gst_structure_new("request", "path", G_TYPE_STRING, path.c_str(), "body", G_TYPE_STRING,
                                          b.c_str(), nullptr);
    for (const char *name : {"Content-Type", "If-Match", "Authorization"}) {
      const char *v = soup_message_headers_get_one(h, name);
      std::string key = name;
      for (auto &c : key) c = static_cast<char>(g_ascii_tolower(c));
      if (v) gst_structure_set(req, key.c_str(), G_TYPE_STRING, v, nullptr);
    }
    GstPromise *promise = gst_promise_new();
    g_signal_emit_by_name(sink, signal, req, promise);
    gst_structure_free(req);
    gst_promise_wait(promise);
    GstStructure *reply = gst_structure_copy(gst_promise_get_reply(promise));
    gst_promise_unref(promise);
    return reply;
  }

  static void respond(SoupServerMessage *msg, GstStructure *reply, const std::function<void(SoupMessageHeaders *)> &tweak) {
    guint status = 500;
    gst_structure_get_uint(reply, "status", &status);
    soup_server_message_set_status(msg, status, nullptr);
    SoupMessageHeaders *rh = soup_server_message_get_response_headers(msg);
    GstStructure *headers = nullptr;
    gst_structure_get(reply, "headers", GST_TYPE_STRUCTURE, &headers, nullptr);
    std::string content_type;
    if (headers) {
      gst_structure_foreach(
          headers,
          [](GQuark field, const GValue *v, gpointer d) -> gboolean {
            const char *name = g_quark_to_string(field);
            if (g_strcmp0(name, "content-type") != 0)
              soup_message_headers_append(static_cast<SoupMessageHeaders *>(d), name, g_value_get_string(v));
            return TRUE;
          },
          rh);
      if (const char *ct = gst_structure_get_string(headers, "content-type")) content_type = ct;
      gst_structure_free(headers);
    }
    soup_message_headers_replace(rh, "Connection", "close");
    tweak(rh);
    const char *body = gst_structure_get_string(reply, "body");
    if (body && *body)
      soup_server_message_set_response(msg, content_type.empty() ? "text/plain" : content_type.c_str(),
                                       SOUP_MEMORY_COPY, body, strlen(body));
    gst_structure_free(reply);
  }

  static void handle(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *, gpointer data) {
    auto *self = static_cast<EdgeServer *>(data);
    std::string method = soup_server_message_get_method(msg);
    std::string p = path;
    if (method == "POST") {
      self->posts++;
      if (self->options.never_answer) {
        soup_server_message_pause(msg);
        std::lock_guard<std::mutex> lock(self->mutex);
        self->held.push_back(SOUP_SERVER_MESSAGE(g_object_ref(msg)));
        return;
      }
      if (!self->options.redirect_to.empty()) {
        soup_server_message_set_status(msg, 307, nullptr);
        soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Location",
                                     self->options.redirect_to.c_str());
        return;
      }
      GstStructure *reply = self->forward("post", "/whep", msg);
      auto tweak = [self](SoupMessageHeaders *rh) {
        const char *loc = soup_message_headers_get_one(rh, "location");
        if (loc) {
          std::string id = std::string(loc).substr(std::string(loc).rfind('/') + 1);
          std::string out = self->options.location == "relative" ? "whep/sessions/" + id
                            : self->options.location == "path"   ? "/whep/sessions/" + id
                                                                 : "http://127.0.0.1:" + std::to_string(self->port) +
                                                                       "/whep/sessions/" + id;
          soup_message_headers_replace(rh, "Location", out.c_str());
        }
        if (!self->options.extra_link.empty()) soup_message_headers_append(rh, "Link", self->options.extra_link.c_str());
      };
      if (self->options.delay_ms > 0) {
        soup_server_message_pause(msg);
        g_object_ref(msg);
        auto *ctx = new std::tuple<SoupServerMessage *, GstStructure *, std::function<void(SoupMessageHeaders *)>>(
            msg, reply, tweak);
        GSource *t = g_timeout_source_new(self->options.delay_ms);
        g_source_set_callback(
            t,
            [](gpointer d) -> gboolean {
              auto *c = static_cast<std::tuple<SoupServerMessage *, GstStructure *, std::function<void(SoupMessageHeaders *)>> *>(d);
              respond(std::get<0>(*c), std::get<1>(*c), std::get<2>(*c));
              soup_server_message_unpause(std::get<0>(*c));
              g_object_unref(std::get<0>(*c));
              delete c;
              return G_SOURCE_REMOVE;
            },
            ctx, nullptr);
        g_source_attach(t, self->loop->context());
        g_source_unref(t);
        return;
      }
      respond(msg, reply, tweak);
      return;
    }
    // Session requests: whatever path the Location became, the last segment is the id.
    std::string id = p.substr(p.rfind('/') + 1);
    std::string session_path = "/whep/sessions/" + id;
    if (method == "PATCH") {
      self->patches++;
      if (self->options.refuse_patch) {
        soup_server_message_set_status(msg, 405, nullptr);
        return;
      }
      respond(msg, self->forward("patch", session_path, msg), [](SoupMessageHeaders *) {});
    } else if (method == "DELETE") {
      if (self->options.delete_delay_ms > 0) g_usleep(self->options.delete_delay_ms * 1000);  // this server is slow
      self->deletes++;
      respond(msg, self->forward("delete", session_path, msg), [](SoupMessageHeaders *) {});
    } else {
      soup_server_message_set_status(msg, 405, nullptr);
    }
  }
};

static void edge_plays(EdgeServer::Options options, const std::string &player_props = "",
                       const std::function<void(EdgeServer &, Player &)> &check = {}) {
  Server server("serve-http=false");
  fail_unless(server.wait_ready());
  EdgeServer edge(server.sink, options);
  {
    Player player(edge.url(), player_props);
    fail_unless(player.wait_video(30, 20000), "video frames: %" G_GUINT64_FORMAT, player.video.load());
    assert_contains(player.session_url(), "http://127.0.0.1:" + std::to_string(edge.port) + "/whep/sessions/");
    if (check) check(edge, player);
  }
  fail_unless(wait_until(3000, [&] { return edge.deletes.load() == 1; }), "no DELETE reached the session URL");
  fail_unless(wait_until(3000, [&] { return server.stat("viewer-count") == 0; }));
}

// EOS from the application: the call returns at once although the server takes 1.5 s to
// answer the DELETE; EOS reaches the bus once the DELETE is done.
GST_START_TEST(test_eos_does_not_block) {
  Server server("serve-http=false");
  fail_unless(server.wait_ready());
  EdgeServer::Options o;
  o.delete_delay_ms = 1500;
  EdgeServer edge(server.sink, o);
  Player player(edge.url());
  fail_unless(player.wait_video(10, 20000));
  gint64 t0 = g_get_monotonic_time();
  fail_unless(gst_element_send_event(player.pipeline, gst_event_new_eos()));
  gint64 call_us = g_get_monotonic_time() - t0;
  GstBus *bus = gst_element_get_bus(player.pipeline);
  GstMessage *eos = gst_bus_timed_pop_filtered(bus, 10 * GST_SECOND, GST_MESSAGE_EOS);
  gint64 eos_us = g_get_monotonic_time() - t0;
  gst_object_unref(bus);
  fail_unless(eos != nullptr, "no EOS");
  gst_message_unref(eos);
  g_print("EOS: send_event returned after %" G_GINT64_FORMAT " ms, EOS on the bus after %" G_GINT64_FORMAT " ms\n",
          call_us / 1000, eos_us / 1000);
  fail_unless(call_us < 200 * 1000, "send_event(EOS) blocked for %" G_GINT64_FORMAT " ms", call_us / 1000);
  fail_unless_equals_int(edge.deletes.load(), 1);
  fail_unless(eos_us >= 1400 * 1000, "EOS came before the DELETE was answered");
}
GST_END_TEST;

GST_START_TEST(test_relative_location) {
  EdgeServer::Options o;
  o.location = "relative";
  edge_plays(o);
  o.location = "path";
  edge_plays(o);
}
GST_END_TEST;

GST_START_TEST(test_absolute_location) {
  EdgeServer::Options o;
  o.location = "absolute";
  edge_plays(o);
}
GST_END_TEST;

GST_START_TEST(test_redirect_to_other_port) {
  Server server("auth-token=tok");
  fail_unless(server.wait_ready());
  EdgeServer::Options o;
  o.redirect_to = server.url();
  EdgeServer edge(server.sink, o);
  Player player(edge.url(), "auth-token=tok");
  fail_unless(player.wait_video(30, 15000));  // the re-POST kept the body and the bearer token
  fail_unless_equals_int(edge.posts.load(), 1);
  assert_contains(player.session_url(), server.url() + "/sessions/");
}
GST_END_TEST;

GST_START_TEST(test_link_headers_comma_joined) {
  EdgeServer::Options o;
  o.extra_link = "<stun:127.0.0.1:3478>; rel=\"ice-server\", <turn:127.0.0.1:3478?transport=udp>; rel=ice-server; "
                 "username=u; credential=\"p,w\"; credential-type=password";
  edge_plays(o, "", [](EdgeServer &, Player &player) {
    GstStructure *stats = nullptr;
    g_object_get(player.src, "stats", &stats, nullptr);
    const char *servers = gst_structure_get_string(stats, "link-ice-servers");
    std::string s = servers ? servers : "";
    gst_structure_free(stats);
    assert_contains(s, "stun:127.0.0.1:3478");
    assert_contains(s, "turn:127.0.0.1:3478?transport=udp");
  });
}
GST_END_TEST;

GST_START_TEST(test_patch_refused) {
  EdgeServer::Options o;
  o.refuse_patch = true;
  edge_plays(o, "", [](EdgeServer &edge, Player &) {
    // After the first 405 the player stops trickling.
    fail_unless_equals_int(edge.patches.load(), 1);
  });
}
GST_END_TEST;

GST_START_TEST(test_slow_answer) {
  EdgeServer::Options o;
  o.delay_ms = 2000;
  edge_plays(o, "timeout=10");
}
GST_END_TEST;

GST_START_TEST(test_server_never_answers) {
  Server server("serve-http=false");
  EdgeServer::Options o;
  o.never_answer = true;
  EdgeServer edge(server.sink, o);
  gint64 start = g_get_monotonic_time();
  Player player(edge.url(), "timeout=2");
  std::string error = player.wait_message("error", 10000);
  fail_if(error.empty(), "no error from a server that never answers");
  gint64 took = (g_get_monotonic_time() - start) / 1000;
  fail_unless(took < 6000, "the error took %" G_GINT64_FORMAT " ms", took);
  assert_contains(error, edge.url());
}
GST_END_TEST;

static Suite *whepsrc_suite(void) {
  Suite *s = suite_create("whepsrc");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, nullptr, wish_test::stop_leftovers);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_plays_with_trickle);
  tcase_add_test(tc, test_plays_without_trickle);
  tcase_add_test(tc, test_counter_offer);
  tcase_add_test(tc, test_waits_for_publisher);
  tcase_add_test(tc, test_busy_then_free);
  tcase_add_test(tc, test_auth);
  tcase_add_test(tc, test_error_codes);
  tcase_add_test(tc, test_eos_does_not_block);
  tcase_add_test(tc, test_ice_restart);
  tcase_add_test(tc, test_server_restart);
  tcase_add_test(tc, test_reconnect_through_404);
  tcase_add_test(tc, test_server_killed);
  tcase_add_test(tc, test_delete_on_stop);
  tcase_add_test(tc, test_encoded_output);
  tcase_add_test(tc, test_encoded_outputs_announced_together);
  tcase_add_test(tc, test_playbin3_uri);
  tcase_add_test(tc, test_relative_location);
  tcase_add_test(tc, test_absolute_location);
  tcase_add_test(tc, test_redirect_to_other_port);
  tcase_add_test(tc, test_link_headers_comma_joined);
  tcase_add_test(tc, test_patch_refused);
  tcase_add_test(tc, test_slow_answer);
  tcase_add_test(tc, test_server_never_answers);
  return s;
}

WISH_CHECK_MAIN(whepsrc);
