// A whepsrc pipeline for tests: every pad it exposes ends in a counting fakesink, and the
// bus can be searched for the element's messages and errors.
#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include "fixtures.h"

// A whepsrc pipeline whose pads each end in a counting fakesink.
struct Player {
  GstElement *pipeline = nullptr;
  GstElement *src = nullptr;
  std::atomic<guint64> video{0}, audio{0};
  std::mutex mutex;
  std::string video_caps;

  explicit Player(const std::string &endpoint, const std::string &props = "") {
    std::string desc = "whepsrc name=w ice-local-addresses=127.0.0.1 whep-endpoint=" + endpoint + " " + props;
    GError *err = nullptr;
    GstElement *bin = gst_parse_launch(desc.c_str(), &err);
    fail_unless(bin != nullptr, "%s", err ? err->message : "");
    pipeline = gst_pipeline_new("player");
    src = bin;
    gst_bin_add(GST_BIN(pipeline), src);
    g_signal_connect(src, "pad-added", G_CALLBACK(+[](GstElement *, GstPad *pad, Player *self) {
                       GstElement *sink = gst_element_factory_make("fakesink", nullptr);
                       g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
                       gst_bin_add(GST_BIN(self->pipeline), sink);
                       gst_element_sync_state_with_parent(sink);
                       GstPad *sinkpad = gst_element_get_static_pad(sink, "sink");
                       gst_pad_link(pad, sinkpad);
                       bool video = g_str_has_prefix(GST_PAD_NAME(pad), "video");
                       gst_pad_add_probe(sinkpad, GST_PAD_PROBE_TYPE_BUFFER,
                                         video ? +[](GstPad *p, GstPadProbeInfo *, gpointer d) {
                                           auto *s = static_cast<Player *>(d);
                                           if (s->video++ == 0) {
                                             GstCaps *caps = gst_pad_get_current_caps(p);
                                             std::lock_guard<std::mutex> lock(s->mutex);
                                             if (caps) s->video_caps = gst_structure_get_name(gst_caps_get_structure(caps, 0));
                                             if (caps) gst_caps_unref(caps);
                                           }
                                           return GST_PAD_PROBE_OK;
                                         }
                                               : +[](GstPad *, GstPadProbeInfo *, gpointer d) {
                                                   static_cast<Player *>(d)->audio++;
                                                   return GST_PAD_PROBE_OK;
                                                 },
                                         self, nullptr);
                       gst_object_unref(sinkpad);
                     }),
                     this);
    drop_routine_messages(pipeline);
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
  }
  ~Player() {
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
  }
  bool wait_video(guint64 n, int ms) { return wait_until(ms, [&] { return video >= n; }); }
  bool wait_audio(guint64 n, int ms) { return wait_until(ms, [&] { return audio >= n; }); }
  // Waits for an element message of that name (or an error); returns its structure as text.
  std::string wait_message(const char *name, int ms, std::string *error = nullptr) {
    GstBus *bus = gst_element_get_bus(pipeline);
    gint64 end = g_get_monotonic_time() + ms * 1000;
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
  std::string session_url() {
    gchar *url = nullptr;
    g_object_get(src, "session-url", &url, nullptr);
    std::string s = url ? url : "";
    g_free(url);
    return s;
  }
};

