#include "ttff_trace.h"

#include <gst/webrtc/webrtc.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

namespace ttff_trace {

namespace {

std::mutex mutex;
std::vector<Event> events;
std::vector<gint64> keyframes;  // the server's encoder

bool starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

void on_log(GstDebugCategory *category, GstDebugLevel level, const gchar *, const gchar *, gint, GObject *,
            GstDebugMessage *message, gpointer) {
  const char *cat = gst_debug_category_get_name(category);
  const char *m = gst_debug_message_get(message);
  if (!m) return;
  if (g_str_equal(cat, "wishclient")) {
    if (starts(m, "starting a session")) mark("session starts");
    else if (starts(m, "offer created")) mark("offer created");
    else if (starts(m, "POST ") && level == GST_LEVEL_DEBUG) mark("POST sent");
    else if (starts(m, "POST ") && strstr(m, "-> 201")) mark("201 received");
  } else if (g_str_equal(cat, "wishhttp")) {
    if (starts(m, "POST ")) mark("server: POST received");
    else if (starts(m, "answered 201")) mark("server: 201 sent");
  } else if (g_str_equal(cat, "wishserver")) {
    if (strstr(m, "local description")) mark("server: answer ready");
    else if (strstr(m, ": connection connected")) mark("server: connected (DTLS)");
  } else if (g_str_equal(cat, "wishwarmup")) {
    if (starts(m, "warm-up: ")) mark(m);
  } else if (g_str_equal(cat, "wishstreams")) {
    if (starts(m, "video output enabled")) mark("server: video sent");
  }
}

void first_buffer(GstElement *e, const char *pad_name, const char *name, bool keyframe_only = false) {
  GstPad *pad = gst_element_get_static_pad(e, pad_name);
  if (!pad) return;
  auto probe = keyframe_only ? +[](GstPad *, GstPadProbeInfo *info, gpointer d) {
    GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info);
    if (!b || GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT)) return GST_PAD_PROBE_OK;
    mark(static_cast<const char *>(d));
    return GST_PAD_PROBE_REMOVE;
  }
                             : +[](GstPad *, GstPadProbeInfo *, gpointer d) {
                                 mark(static_cast<const char *>(d));
                                 return GST_PAD_PROBE_REMOVE;
                               };
  gst_pad_add_probe(pad,
                    keyframe_only ? GST_PAD_PROBE_TYPE_BUFFER
                                  : static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                    probe, const_cast<char *>(name), nullptr);
  gst_object_unref(pad);
}

void on_webrtc_state(GstElement *webrtc, GParamSpec *, gpointer) {
  GstWebRTCICEConnectionState ice;
  GstWebRTCPeerConnectionState pc;
  g_object_get(webrtc, "ice-connection-state", &ice, "connection-state", &pc, nullptr);
  if (ice == GST_WEBRTC_ICE_CONNECTION_STATE_CHECKING) mark("ICE checking");
  if (ice == GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED || ice == GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED)
    mark("ICE connected");
  if (pc == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED) mark("connected (DTLS)");
}

bool is_video_decoder(GstElementFactory *f) {
  const gchar *klass = gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS);
  return klass && strstr(klass, "Decoder") && strstr(klass, "Video");
}

void on_player_element(GstBin *, GstBin *, GstElement *e, gpointer) {
  GstElementFactory *f = gst_element_get_factory(e);
  if (!f) return;
  const char *name = GST_OBJECT_NAME(f);
  if (g_str_equal(name, "webrtcbin")) {
    mark("webrtcbin created");
    g_signal_connect(e, "notify::ice-connection-state", G_CALLBACK(on_webrtc_state), nullptr);
    g_signal_connect(e, "notify::connection-state", G_CALLBACK(on_webrtc_state), nullptr);
  } else if (g_str_equal(name, "nicesrc")) {
    first_buffer(e, "src", "first packet (nicesrc)");
  } else if (g_str_equal(name, "srtpdec")) {
    first_buffer(e, "rtp_src", "first RTP decrypted");
  } else if (g_str_equal(name, "rtpjitterbuffer")) {
    first_buffer(e, "sink", "jitterbuffer in");
    first_buffer(e, "src", "jitterbuffer out");
  } else if (g_str_equal(name, "decodebin")) {
    mark("decodebin created");
  } else if (is_video_decoder(f)) {
    first_buffer(e, "sink", "decoder in");
    first_buffer(e, "sink", "decoder in: keyframe", true);
    first_buffer(e, "src", "decoded");
  }
}

void on_server_element(GstBin *, GstBin *, GstElement *e, gpointer) {
  GstElementFactory *f = gst_element_get_factory(e);
  const gchar *klass = f ? gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS) : nullptr;
  if (!klass || !strstr(klass, "Encoder") || !strstr(klass, "Video")) return;
  GstPad *pad = gst_element_get_static_pad(e, "src");
  if (!pad) return;
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER,
                    [](GstPad *, GstPadProbeInfo *info, gpointer) {
                      GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info);
                      if (b && !GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT)) {
                        std::lock_guard<std::mutex> lock(mutex);
                        keyframes.push_back(g_get_monotonic_time());
                      }
                      return GST_PAD_PROBE_OK;
                    },
                    nullptr, nullptr);
  gst_object_unref(pad);
}

}  // namespace

void enable_logs() {
  gst_debug_remove_log_function(gst_debug_log_default);
  gst_debug_add_log_function(on_log, nullptr, nullptr);
  gst_debug_set_threshold_from_string("wishclient:5,wishhttp:5,wishserver:5,wishstreams:5,wishwarmup:5", TRUE);
}

void mark(const std::string &name, gint64 us) {
  std::lock_guard<std::mutex> lock(mutex);
  for (const auto &e : events)
    if (e.name == name) return;
  events.push_back({name, us});
}

std::vector<Event> take() {
  std::lock_guard<std::mutex> lock(mutex);
  std::vector<Event> out;
  out.swap(events);
  auto post = std::find_if(out.begin(), out.end(), [](const Event &e) { return e.name == "server: POST received"; });
  if (post != out.end()) {
    auto k = std::find_if(keyframes.begin(), keyframes.end(), [&](gint64 t) { return t >= post->us; });
    if (k != keyframes.end()) out.push_back({"server: keyframe encoded", *k});
  }
  keyframes.clear();
  return out;
}

void watch_player(GstElement *pipeline) {
  g_signal_connect(pipeline, "deep-element-added", G_CALLBACK(on_player_element), nullptr);
}

void watch_server(GstElement *pipeline) {
  g_signal_connect(pipeline, "deep-element-added", G_CALLBACK(on_server_element), nullptr);
}

void print_summary(const std::vector<std::vector<Event>> &runs) {
  std::map<std::string, std::vector<double>> at;  // ms after PLAYING, per milestone
  for (const auto &run : runs) {
    auto start = std::find_if(run.begin(), run.end(), [](const Event &e) { return e.name == "PLAYING"; });
    if (start == run.end()) continue;
    for (const auto &e : run) at[e.name].push_back((e.us - start->us) / 1000.0);
  }
  std::vector<std::pair<double, std::string>> order;
  for (auto &kv : at) {
    std::sort(kv.second.begin(), kv.second.end());
    order.emplace_back(kv.second[kv.second.size() / 2], kv.first);
  }
  std::sort(order.begin(), order.end());
  printf("milestones, ms after PLAYING over %zu runs: median (min-max) [runs that had it]\n", runs.size());
  for (const auto &o : order) {
    const auto &v = at[o.second];
    printf("  %7.1f (%6.1f-%6.1f) [%2zu]  %s\n", o.first, v.front(), v.back(), v.size(), o.second.c_str());
  }
}

}  // namespace ttff_trace
