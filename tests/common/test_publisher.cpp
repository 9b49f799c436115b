#include "test_publisher.h"

#include <gst/video/video.h>
#include <gst/webrtc/webrtc.h>

#include <chrono>
#include <condition_variable>
#include <functional>

#include "protocol/sdp.h"
#include "teardown.h"
#include "webrtc_utils.h"

namespace wish_test {

TestPublisher::TestPublisher(const PublisherOptions &opts) {
  std::string desc = "webrtcbin name=w ";
  for (int i = 0; i < opts.video_tracks && !opts.video.empty(); i++) {
    std::string k = std::to_string(opts.keyframe_interval);
    desc += "videotestsrc is-live=true pattern=" + opts.pattern + " ! video/x-raw,width=320,height=240,framerate=30/1 ! ";
    if (opts.video == "h264")
      desc += "x264enc name=enc" + std::to_string(i) + " tune=zerolatency speed-preset=ultrafast key-int-max=" + k +
              " ! video/x-h264,profile=constrained-baseline ! rtph264pay config-interval=-1 pt=102 ! "
              "application/x-rtp,media=video,encoding-name=H264,payload=102 ! w. ";
    else
      desc += "vp8enc name=enc" + std::to_string(i) + " deadline=1 keyframe-max-dist=" + k +
              " ! rtpvp8pay pt=96 ! application/x-rtp,media=video,encoding-name=VP8,payload=96 ! w. ";
  }
  if (opts.audio)
    desc += "audiotestsrc is-live=true ! opusenc ! rtpopuspay pt=111 ! "
            "application/x-rtp,media=audio,encoding-name=OPUS,payload=111 ! w. ";
  GError *err = nullptr;
  pipeline_ = gst_parse_launch(desc.c_str(), &err);
  if (!pipeline_) {
    g_printerr("publisher pipeline: %s\n", err ? err->message : "?");
    return;
  }
  stop_at_teardown(pipeline_);
  webrtc_ = gst_bin_get_by_name(GST_BIN(pipeline_), "w");
  std::string error;
  wish::configure_webrtcbin(webrtc_, {"127.0.0.1"}, "", {}, &error);
  if (!opts.msid.empty()) {
    GstIterator *it = gst_element_iterate_sink_pads(webrtc_);
    GValue item = G_VALUE_INIT;
    while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
      g_object_set(g_value_get_object(&item), "msid", opts.msid.c_str(), nullptr);
      g_value_reset(&item);
    }
    g_value_unset(&item);
    gst_iterator_free(it);
  }
  // Publishing only.
  GArray *transceivers = nullptr;
  g_signal_emit_by_name(webrtc_, "get-transceivers", &transceivers);
  for (guint i = 0; transceivers && i < transceivers->len; i++)
    g_object_set(g_array_index(transceivers, GstWebRTCRTPTransceiver *, i), "direction",
                 GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, nullptr);
  if (transceivers) g_array_unref(transceivers);
  g_signal_connect(webrtc_, "on-ice-candidate", G_CALLBACK(+[](GstElement *, guint, gchar *c, TestPublisher *self) {
                     std::lock_guard<std::mutex> lock(self->mutex_);
                     std::string s = c;
                     if (s.rfind("a=", 0) == 0) s = s.substr(2);
                     self->candidates_.push_back(s);
                   }),
                   this);
  // Count key unit requests reaching the encoders (PLI/FIR from the far end).
  for (int i = 0; i < opts.video_tracks && !opts.video.empty(); i++) {
    GstElement *enc = gst_bin_get_by_name(GST_BIN(pipeline_), ("enc" + std::to_string(i)).c_str());
    GstPad *src = gst_element_get_static_pad(enc, "src");
    gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM,
                      [](GstPad *, GstPadProbeInfo *info, gpointer d) {
                        if (gst_video_event_is_force_key_unit(GST_PAD_PROBE_INFO_EVENT(info))) {
                          auto *self = static_cast<TestPublisher *>(d);
                          std::lock_guard<std::mutex> lock(self->mutex_);
                          self->keyframe_requests_++;
                        }
                        return GST_PAD_PROBE_OK;
                      },
                      this, nullptr);
    gst_object_unref(src);
    gst_object_unref(enc);
  }
  GstBus *bus = gst_element_get_bus(pipeline_);
  gst_bus_set_sync_handler(
      bus,
      [](GstBus *, GstMessage *m, gpointer) {
        gst_message_unref(m);
        return GST_BUS_DROP;
      },
      nullptr, nullptr);
  gst_object_unref(bus);
  gst_element_set_state(pipeline_, GST_STATE_PLAYING);
}

TestPublisher::~TestPublisher() {
  if (!pipeline_) return;
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  gst_object_unref(webrtc_);
  gst_object_unref(pipeline_);
}

wish::Negotiated offer_once_media_flows(GstElement *webrtc, int pads, gint64 caps_wait_us) {
  gint64 end = g_get_monotonic_time() + caps_wait_us;
  auto all_have_caps = [&] {
    bool all = true;
    int count = 0;
    GstIterator *it = gst_element_iterate_sink_pads(webrtc);
    GValue item = G_VALUE_INIT;
    while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
      all = all && gst_pad_has_current_caps(GST_PAD(g_value_get_object(&item)));
      count++;
      g_value_reset(&item);
    }
    g_value_unset(&item);
    gst_iterator_free(it);
    return all && (pads == 0 || count == pads);
  };
  while (!all_have_caps() && g_get_monotonic_time() < end) g_usleep(10 * 1000);
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  wish::Negotiated result;
  wish::create_local_offer(webrtc, [&](wish::Negotiated n) {
    std::lock_guard<std::mutex> lock(m);
    result = n;
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(m);
  cv.wait_for(lock, std::chrono::seconds(10), [&] { return done; });
  return result;
}

std::string TestPublisher::create_offer() {
  if (!webrtc_) return "";
  // Bounded: after 5 s the offer goes without what the caps add.
  wish::Negotiated result = offer_once_media_flows(webrtc_, 0, 5 * G_USEC_PER_SEC);
  if (!result.ok) return "";
  gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
  while (g_get_monotonic_time() < end) {
    GstWebRTCICEGatheringState st;
    g_object_get(webrtc_, "ice-gathering-state", &st, nullptr);
    if (st == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) break;
    g_usleep(10 * 1000);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  return wish::unbundle_only(wish::finish_local_sdp(result.sdp, candidates_));
}

bool TestPublisher::set_remote_answer(const std::string &sdp) {
  std::mutex m;
  std::condition_variable cv;
  bool done = false, ok = false;
  wish::apply_remote_answer(webrtc_, sdp, [&](wish::Negotiated n) {
    std::lock_guard<std::mutex> lock(m);
    ok = n.ok;
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(m);
  cv.wait_for(lock, std::chrono::seconds(10), [&] { return done; });
  return ok;
}

bool TestPublisher::restart_ice(std::string *ufrag, std::string *pwd, std::vector<std::string> *candidates) {
  wish::LocalIce local;
  std::string error;
  if (!wish::restart_ice(webrtc_, "placeholder", "placeholderplaceholder00", {}, &local, &error)) return false;
  *ufrag = local.ufrag;
  *pwd = local.pwd;
  *candidates = local.candidates;
  return true;
}

bool TestPublisher::apply_remote_ice(const std::string &ufrag, const std::string &pwd,
                                     const std::vector<std::string> &candidates) {
  return wish::set_remote_ice(webrtc_, ufrag, pwd, candidates);
}

guint TestPublisher::keyframe_requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return keyframe_requests_;
}

}  // namespace wish_test
