// A whipserversrc pipeline for tests: publishers' streams end in counting fakesinks.
#pragma once

#include <string>

#include "fixtures.h"

// whipserversrc whose pads each end in a counting fakesink.
struct Ingest : CountingSinks {
  GstElement *pipeline = nullptr;
  GstElement *src = nullptr;
  unsigned port = 0;

  explicit Ingest(const std::string &props = "") {
    GError *err = nullptr;
    pipeline = gst_pipeline_new(nullptr);
    src = gst_parse_launch(("whipserversrc address=127.0.0.1 port=0 ice-local-addresses=127.0.0.1 " + props).c_str(),
                           &err);
    fail_unless(src != nullptr, "%s", err ? err->message : "");
    gst_bin_add(GST_BIN(pipeline), src);
    count_pads_of(pipeline, src);
    watch_test_pipeline(pipeline);
    fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    g_object_get(src, "current-port", &port, nullptr);
  }
  ~Ingest() {
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
  }
  std::string url(const std::string &path = "/whip") const { return "http://127.0.0.1:" + std::to_string(port) + path; }
  std::string wait_message(const char *name, int ms) { return wait_bus_message(pipeline, name, ms); }
};

