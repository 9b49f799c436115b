// A test host for drivers that cannot emit action signals (the Node interop drivers): two
// whepserversinks on one HTTP server of 127.0.0.1, /red and /blue (test patterns of those
// colours and a tone), and switch-stream on a line of standard input.
//
//   two_streams_server <h264|vp8>
//   prints "port <n>" once both serve; then reads "switch <from> <to>" (to "-" switches
//   back) and answers "ok" or "failed"; ends on "quit" or end of input.
#include <gst/gst.h>

#include <cstdio>
#include <iostream>
#include <string>

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  std::string codec = argc > 1 ? argv[1] : "h264";
  std::string props = " address=127.0.0.1 ice-local-addresses=127.0.0.1 port=0 video-codec=" + codec;
  std::string src = " ! video/x-raw,width=320,height=240,framerate=30/1 ! ";
  std::string desc = "whepserversink name=red path=/red" + props + " videotestsrc is-live=true pattern=red" + src +
                     "red. audiotestsrc is-live=true ! red.";
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(desc.c_str(), &err);
  if (!pipeline) {
    std::fprintf(stderr, "cannot build the pipeline: %s\n", err ? err->message : "?");
    return 1;
  }
  GstElement *red = gst_bin_get_by_name(GST_BIN(pipeline), "red");
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) return 1;
  guint port = 0;
  g_object_get(red, "current-port", &port, nullptr);
  // The second one joins the first one's HTTP server (same address and port).
  std::string blue_desc = "whepserversink name=blue path=/blue address=127.0.0.1 ice-local-addresses=127.0.0.1 "
                          "video-codec=" + codec + " port=" + std::to_string(port) +
                          " videotestsrc is-live=true pattern=blue" + src + "blue. audiotestsrc is-live=true freq=880 ! blue.";
  GstElement *second = gst_parse_bin_from_description(blue_desc.c_str(), FALSE, &err);
  if (!second) return 1;
  gst_bin_add(GST_BIN(pipeline), second);  // one pipeline, one clock for both streams
  if (!gst_element_sync_state_with_parent(second)) return 1;
  std::printf("port %u\n", port);
  std::fflush(stdout);

  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "quit") break;
    char from[256] = "", to[256] = "";
    if (std::sscanf(line.c_str(), "switch %255s %255s", from, to) == 2) {
      gboolean ok = FALSE;
      g_signal_emit_by_name(red, "switch-stream", from, std::string(to) == "-" ? nullptr : to, &ok);
      std::printf("%s\n", ok ? "ok" : "failed");
      std::fflush(stdout);
    }
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(red);
  gst_object_unref(pipeline);
  return 0;
}
