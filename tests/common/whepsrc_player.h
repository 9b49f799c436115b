// A whepsrc pipeline for tests: every pad it exposes ends in a counting fakesink, and the
// bus can be searched for the element's messages and errors.
#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include "fixtures.h"

// A whepsrc pipeline whose pads each end in a counting fakesink.
struct Player : CountingSinks {
  GstElement *pipeline = nullptr;
  GstElement *src = nullptr;

  explicit Player(const std::string &endpoint, const std::string &props = "") {
    std::string desc = "whepsrc name=w ice-local-addresses=127.0.0.1 whep-endpoint=" + endpoint + " " + props;
    GError *err = nullptr;
    src = gst_parse_launch(desc.c_str(), &err);
    fail_unless(src != nullptr, "%s", err ? err->message : "");
    pipeline = gst_pipeline_new("player");
    gst_bin_add(GST_BIN(pipeline), src);
    count_pads_of(pipeline, src);
    watch_test_pipeline(pipeline);
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
  }
  ~Player() {
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
  }
  std::string wait_message(const char *name, int ms, std::string *error = nullptr) {
    return wait_bus_message(pipeline, name, ms, error);
  }
  std::string session_url() {
    gchar *url = nullptr;
    g_object_get(src, "session-url", &url, nullptr);
    std::string s = url ? url : "";
    g_free(url);
    return s;
  }
};

