// Glass-to-glass latency through whipsink -> whipserversrc ! whepserversink (the relay) ->
// whepsrc, all on 127.0.0.1: each raw frame gets the capture time written into its picture
// (32 bits of milliseconds as 32 black/white blocks), the player reads it back after
// decoding. Prints median and p95 over the frames seen.
//
//   bench/latency [seconds] [h264|vp8]      (default 10 s, h264)
#include <gst/gst.h>
#include <gst/video/video.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

namespace {

constexpr int kBits = 32, kBlock = 16;

guint32 now_ms() { return static_cast<guint32>(g_get_monotonic_time() / 1000); }

GstBusSyncReply drop(GstBus *, GstMessage *m, gpointer) {
  if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
    GError *err = nullptr;
    gst_message_parse_error(m, &err, nullptr);
    fprintf(stderr, "error from %s: %s\n", GST_MESSAGE_SRC_NAME(m), err->message);
    g_clear_error(&err);
  }
  gst_message_unref(m);
  return GST_BUS_DROP;
}

GstElement *launch(const std::string &desc) {
  GError *err = nullptr;
  GstElement *p = gst_parse_launch(desc.c_str(), &err);
  if (!p) {
    fprintf(stderr, "%s\n", err->message);
    exit(1);
  }
  GstBus *bus = gst_element_get_bus(p);
  gst_bus_set_sync_handler(bus, drop, nullptr, nullptr);
  gst_object_unref(bus);
  gst_element_set_state(p, GST_STATE_PLAYING);
  return p;
}

// Writes or reads the stamp in the luma plane of an I420 frame.
bool with_luma(GstPad *pad, GstBuffer *buf, GstMapFlags flags, const std::function<void(guint8 *, int)> &fn) {
  GstCaps *caps = gst_pad_get_current_caps(pad);
  if (!caps) return false;
  GstVideoInfo info;
  bool ok = gst_video_info_from_caps(&info, caps);
  gst_caps_unref(caps);
  GstVideoFrame frame;
  if (!ok || !gst_video_frame_map(&frame, &info, buf, flags)) return false;
  fn(static_cast<guint8 *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)), GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0));
  gst_video_frame_unmap(&frame);
  return true;
}

std::mutex samples_mutex;
std::vector<guint32> samples;

GstPadProbeReturn stamp(GstPad *pad, GstPadProbeInfo *info, gpointer) {
  GstBuffer *buf = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
  GST_PAD_PROBE_INFO_DATA(info) = buf;
  guint32 t = now_ms();
  with_luma(pad, buf, GST_MAP_WRITE, [t](guint8 *y, int stride) {
    for (int bit = 0; bit < kBits; bit++) {
      guint8 v = (t >> bit) & 1 ? 235 : 16;
      for (int row = 0; row < kBlock; row++) memset(y + row * stride + bit * kBlock, v, kBlock);
    }
  });
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn read_stamp(GstPad *pad, GstPadProbeInfo *info, gpointer) {
  guint32 arrived = now_ms();
  with_luma(pad, GST_PAD_PROBE_INFO_BUFFER(info), GST_MAP_READ, [arrived](guint8 *y, int stride) {
    guint32 t = 0;
    for (int bit = 0; bit < kBits; bit++)
      if (y[(kBlock / 2) * stride + bit * kBlock + kBlock / 2] > 128) t |= 1u << bit;
    guint32 latency = arrived - t;
    if (latency < 10000) {
      std::lock_guard<std::mutex> lock(samples_mutex);
      samples.push_back(latency);
    }
  });
  return GST_PAD_PROBE_OK;
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  int seconds = argc > 1 ? atoi(argv[1]) : 10;
  std::string codec = argc > 2 ? argv[2] : "h264";

  GstElement *relay = launch(
      "whipserversrc name=in address=127.0.0.1 port=0 ice-local-addresses=127.0.0.1 "
      "whepserversink name=out address=127.0.0.1 port=0 ice-local-addresses=127.0.0.1 "
      "in.video_0 ! queue ! out.video_0");
  GstElement *in = gst_bin_get_by_name(GST_BIN(relay), "in"), *out = gst_bin_get_by_name(GST_BIN(relay), "out");
  guint in_port = 0, out_port = 0;
  g_object_get(in, "current-port", &in_port, nullptr);
  g_object_get(out, "current-port", &out_port, nullptr);

  GstElement *publisher = launch(
      "videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 ! "
      "identity name=stamp ! whipsink ice-local-addresses=127.0.0.1 video-codec=" + codec +
      " whip-endpoint=http://127.0.0.1:" + std::to_string(in_port) + "/whip");
  GstElement *stamper = gst_bin_get_by_name(GST_BIN(publisher), "stamp");
  GstPad *src = gst_element_get_static_pad(stamper, "src");
  gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, stamp, nullptr, nullptr);

  GstElement *player = launch("whepsrc ice-local-addresses=127.0.0.1 audio-codecs=none whep-endpoint=http://127.0.0.1:" +
                              std::to_string(out_port) +
                              "/whep ! videoconvert ! video/x-raw,format=I420 ! fakesink name=sink sync=false");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(player), "sink");
  GstPad *sinkpad = gst_element_get_static_pad(sink, "sink");
  gst_pad_add_probe(sinkpad, GST_PAD_PROBE_TYPE_BUFFER, read_stamp, nullptr, nullptr);

  g_usleep(3 * G_USEC_PER_SEC);  // connections up, first keyframes through
  {
    std::lock_guard<std::mutex> lock(samples_mutex);
    samples.clear();
  }
  g_usleep(static_cast<gulong>(seconds) * G_USEC_PER_SEC);

  for (GstElement *p : {player, publisher, relay}) gst_element_set_state(p, GST_STATE_NULL);
  std::vector<guint32> s;
  {
    std::lock_guard<std::mutex> lock(samples_mutex);
    s = samples;
  }
  if (s.empty()) {
    fprintf(stderr, "no frame came through\n");
    return 1;
  }
  std::sort(s.begin(), s.end());
  printf("glass-to-glass latency, whipsink -> whipserversrc ! whepserversink -> whepsrc, %s 640x360@30, "
         "127.0.0.1, %zu frames: median %u ms, p95 %u ms, min %u ms, max %u ms\n",
         codec.c_str(), s.size(), s[s.size() / 2], s[std::min(s.size() - 1, s.size() * 95 / 100)], s.front(),
         s.back());
  gst_object_unref(sinkpad);
  gst_object_unref(src);
  for (GstElement *e : {sink, stamper, in, out, player, publisher, relay}) gst_object_unref(e);
  return 0;
}
