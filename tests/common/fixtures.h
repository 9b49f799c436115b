// Shared by the element tests: a whepserversink pipeline on 127.0.0.1, waiting helpers and
// string assertions. Include after every standard header: Check's macros (fail, ...) clash
// with <regex>/<ios>.
#pragma once

#include <gst/gst.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>

#include <gst/check/gstcheck.h>

#include "free_port.h"
#include "http_client.h"
#include "string_checks.h"
#include "teardown.h"

// GST_CHECK_MAIN, except that the process ends with _exit once the suite has run and its
// results are printed. exit() would run the atexit handlers (OpenSSL's cleanup among them)
// while thread-pool threads that served webrtcbin are still alive, and now and then a
// thread exiting at that moment crashed with a double free after every test had passed.
#define WISH_CHECK_MAIN(name)                              \
  int main(int argc, char **argv) {                        \
    gst_check_init(&argc, &argv);                          \
    int failed = gst_check_run_suite(name##_suite(), #name, __FILE__); \
    fflush(stdout);                                        \
    fflush(stderr);                                        \
    _exit(failed == 0 ? 0 : 1);                            \
  }


// A Chromium-like recvonly offer for tests that exercise HTTP only.
inline const char *kStaticOffer =
    "v=0\r\n"
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0 1\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 102 108\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:abcd\r\n"
    "a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n"
    "a=setup:actpass\r\n"
    "a=mid:0\r\n"
    "a=recvonly\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
    "a=rtcp-fb:96 nack pli\r\n"
    "a=rtpmap:102 H264/90000\r\n"
    "a=rtcp-fb:102 nack pli\r\n"
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n"
    "a=rtpmap:108 H264/90000\r\n"
    "a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:abcd\r\n"
    "a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n"
    "a=setup:actpass\r\n"
    "a=mid:1\r\n"
    "a=recvonly\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\n";

inline bool wait_until(int timeout_ms, const std::function<bool()> &cond) {
  gint64 end = g_get_monotonic_time() + static_cast<gint64>(timeout_ms) * 1000;
  while (g_get_monotonic_time() < end) {
    if (cond()) return true;
    g_usleep(20 * 1000);
  }
  return cond();
}

// Negotiates `peer` (a TestPlayer or TestPublisher) with the WHEP or WHIP endpoint at `url`:
// POSTs its offer until it is answered 201 (the stream may not take viewers yet), within
// timeout_ms, and applies the answer. Returns the answer (its Location names the session).
template <class Peer>
wish_test::HttpResult negotiate(wish_test::HttpClient &http, Peer &peer, const std::string &url,
                                int timeout_ms = 10000) {
  wish_test::HttpResult r;
  bool ok = wait_until(timeout_ms, [&] {
    r = http.request("POST", url, {{"Content-Type", "application/sdp"}}, peer.create_offer());
    return r.status == 201;
  });
  fail_unless(ok, "POST %s: %u %s", url.c_str(), r.status, r.body.c_str());
  fail_unless(peer.set_remote_answer(r.body));
  return r;
}

// Every pipeline a test makes: stopped at teardown if the test fails before stopping it, and
// routine messages dropped at once (applications consume their bus; these tests only pop what
// they look for, and the references piled up messages carry would otherwise accumulate).
inline void watch_test_pipeline(GstElement *pipeline) {
  wish_test::stop_at_teardown(pipeline);
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_bus_set_sync_handler(
      bus,
      [](GstBus *, GstMessage *m, gpointer) -> GstBusSyncReply {
        switch (GST_MESSAGE_TYPE(m)) {
          case GST_MESSAGE_ELEMENT:
          case GST_MESSAGE_ERROR:
          case GST_MESSAGE_WARNING:
          case GST_MESSAGE_EOS:
            return GST_BUS_PASS;
          default:
            gst_message_unref(m);  // a sync handler that drops owns the message
            return GST_BUS_DROP;
        }
      },
      nullptr, nullptr);
  gst_object_unref(bus);
}

// A pipeline with a whepserversink on a free port of 127.0.0.1.
struct Server {
  GstElement *pipeline = nullptr;
  GstElement *sink = nullptr;
  unsigned port = 0;
  std::string base;  // http://127.0.0.1:port

  explicit Server(const std::string &props = "", const std::string &sources = "") {
    std::string desc =
        "whepserversink name=s address=127.0.0.1 port=0 ice-local-addresses=127.0.0.1 " + props + " " +
        (sources.empty() ? "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! s. "
                           "audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! s."
                         : sources);
    GError *err = nullptr;
    pipeline = gst_parse_launch(desc.c_str(), &err);
    fail_unless(pipeline != nullptr, "%s", err ? err->message : "");
    sink = gst_bin_get_by_name(GST_BIN(pipeline), "s");
    watch_test_pipeline(pipeline);
    fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    g_object_get(sink, "current-port", &port, nullptr);
    fail_unless(port != 0 || props.find("serve-http=false") != std::string::npos);
    base = "http://127.0.0.1:" + std::to_string(port);
  }
  ~Server() {
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(pipeline);
  }
  guint stat(const char *field) const {
    GstStructure *s = nullptr;
    g_object_get(sink, "stats", &s, nullptr);
    guint v = 0;
    gst_structure_get_uint(s, field, &v);
    gst_structure_free(s);
    return v;
  }
  bool wait_ready(guint inputs = 2) {
    return wait_until(10000, [&] { return stat("inputs-ready") >= inputs; });
  }
  std::string url(const std::string &path = "/whep") const { return base + path; }
};

// A playing pipeline of server elements that share one HTTP server on a free port of
// 127.0.0.1: `props` is what each of them is given for that.
struct ServerPipeline {
  unsigned port = free_port();
  std::string props = " address=127.0.0.1 ice-local-addresses=127.0.0.1 port=" + std::to_string(port);
  GstElement *pipeline = nullptr;
  void start(const std::string &desc) {
    GError *err = nullptr;
    pipeline = gst_parse_launch(desc.c_str(), &err);
    fail_unless(pipeline != nullptr, "%s", err ? err->message : "");
    watch_test_pipeline(pipeline);
    fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  }
  ~ServerPipeline() {
    if (!pipeline) return;
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
  }
  std::string url(const std::string &path) const { return "http://127.0.0.1:" + std::to_string(port) + path; }
  GstElement *element(const char *name) const {  // a reference the caller drops
    return gst_bin_get_by_name(GST_BIN(pipeline), name);
  }
};

// Every pad a receiving element adds ends in a fakesink that counts buffers: video_* pads in
// `video` (and the first buffer's media type in video_caps), audio_* pads in `audio`.
struct CountingSinks {
  std::atomic<guint64> video{0}, audio{0};
  std::atomic<int> video_pads{0};
  std::atomic<int> video_width{0}, video_height{0};  // of the last video caps
  std::mutex mutex;
  std::string video_caps;
  GstElement *sinks_pipeline = nullptr;

  void count_pads_of(GstElement *pipeline, GstElement *src) {
    sinks_pipeline = pipeline;
    g_signal_connect(src, "pad-added", G_CALLBACK(+[](GstElement *, GstPad *pad, CountingSinks *self) {
                       GstElement *sink = gst_element_factory_make("fakesink", nullptr);
                       g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
                       gst_bin_add(GST_BIN(self->sinks_pipeline), sink);
                       gst_element_sync_state_with_parent(sink);
                       GstPad *sinkpad = gst_element_get_static_pad(sink, "sink");
                       gst_pad_link(pad, sinkpad);
                       bool video = g_str_has_prefix(GST_PAD_NAME(pad), "video");
                       if (video) self->video_pads++;
                       if (video)
                         gst_pad_add_probe(sinkpad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
                                           +[](GstPad *, GstPadProbeInfo *info, gpointer d) {
                                             GstEvent *e = GST_PAD_PROBE_INFO_EVENT(info);
                                             if (GST_EVENT_TYPE(e) != GST_EVENT_CAPS) return GST_PAD_PROBE_OK;
                                             GstCaps *caps;
                                             gst_event_parse_caps(e, &caps);
                                             auto *s = static_cast<CountingSinks *>(d);
                                             int w = 0, h = 0;
                                             gst_structure_get_int(gst_caps_get_structure(caps, 0), "width", &w);
                                             gst_structure_get_int(gst_caps_get_structure(caps, 0), "height", &h);
                                             s->video_width = w;
                                             s->video_height = h;
                                             return GST_PAD_PROBE_OK;
                                           },
                                           self, nullptr);
                       gst_pad_add_probe(sinkpad, GST_PAD_PROBE_TYPE_BUFFER,
                                         video ? +[](GstPad *p, GstPadProbeInfo *, gpointer d) {
                                           auto *s = static_cast<CountingSinks *>(d);
                                           if (s->video++ == 0) {
                                             GstCaps *caps = gst_pad_get_current_caps(p);
                                             std::lock_guard<std::mutex> lock(s->mutex);
                                             if (caps) s->video_caps = gst_structure_get_name(gst_caps_get_structure(caps, 0));
                                             if (caps) gst_caps_unref(caps);
                                           }
                                           return GST_PAD_PROBE_OK;
                                         }
                                               : +[](GstPad *, GstPadProbeInfo *, gpointer d) {
                                                   static_cast<CountingSinks *>(d)->audio++;
                                                   return GST_PAD_PROBE_OK;
                                                 },
                                         self, nullptr);
                       gst_object_unref(sinkpad);
                     }),
                     this);
  }
  bool wait_video(guint64 n, int ms) { return wait_until(ms, [&] { return video >= n; }); }
  bool wait_audio(guint64 n, int ms) { return wait_until(ms, [&] { return audio >= n; }); }
};

// Elements of a bin, at any depth, made by this factory (webrtcbins, encoders per codec...).
inline int count_elements(GstElement *bin, const char *factory) {
  int n = 0;
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(bin));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElementFactory *f = gst_element_get_factory(GST_ELEMENT(g_value_get_object(&item)));
    if (f && g_str_equal(GST_OBJECT_NAME(f), factory)) n++;
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return n;
}

// Takes an input away from a server element as an application would: `source` (linked to one
// of `sink`'s request pads) stopped and unlinked, and that pad released. Unrefs `source`.
inline void release_input(GstElement *sink, GstElement *source) {
  gst_element_set_locked_state(source, TRUE);
  gst_element_set_state(source, GST_STATE_NULL);
  GstPad *src = gst_element_get_static_pad(source, "src");
  GstPad *input = gst_pad_get_peer(src);
  gst_pad_unlink(src, input);
  gst_element_release_request_pad(sink, input);
  gst_object_unref(input);
  gst_object_unref(src);
  gst_object_unref(source);
}

// Waits for an element message of that name on the pipeline's bus and returns its structure
// as text; errors seen meanwhile go to *error, and name "error" waits for one.
inline std::string wait_bus_message(GstElement *pipeline, const char *name, int ms, std::string *error = nullptr) {
  GstBus *bus = gst_element_get_bus(pipeline);
  gint64 end = g_get_monotonic_time() + static_cast<gint64>(ms) * 1000;
  std::string found;
  while (found.empty() && g_get_monotonic_time() < end) {
    GstMessage *m = gst_bus_timed_pop_filtered(bus, 50 * GST_MSECOND,
                                               static_cast<GstMessageType>(GST_MESSAGE_ELEMENT | GST_MESSAGE_ERROR));
    if (!m) continue;
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      GError *err = nullptr;
      gchar *dbg = nullptr;
      gst_message_parse_error(m, &err, &dbg);
      std::string text = std::string(err->message) + " | " + (dbg ? dbg : "");
      g_clear_error(&err);
      g_free(dbg);
      if (error) *error = text;
      if (g_str_equal(name, "error")) found = text;
    } else if (gst_structure_has_name(gst_message_get_structure(m), name)) {
      gchar *s = gst_structure_to_string(gst_message_get_structure(m));
      found = s;
      g_free(s);
    }
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  return found;
}

#ifdef FIXTURES_DIR
// What Chromium 156 offers for a recvonly video + audio transceiver: every codec it has,
// RTX, RED, FEC and header extensions.
inline std::string chromium_offer() {
  gchar *text = nullptr;
  fail_unless(g_file_get_contents(FIXTURES_DIR "/chromium-recvonly-offer.sdp", &text, nullptr, nullptr));
  std::string s = text;
  g_free(text);
  return s;
}
#endif
