#include "track.h"

#include <gst/video/video.h>

#include <algorithm>

GST_DEBUG_CATEGORY_EXTERN(wish_streams_debug);
#define GST_CAT_DEFAULT wish_streams_debug

namespace wish {

namespace {
constexpr gint64 kKeyframeThrottleUs = 200 * 1000;
}  // namespace

Track::~Track() { clear_source(); }

void Track::set_source(GstPad *payloader_src) {
  clear_source();
  auto *weak = new std::weak_ptr<Track>(shared_from_this());
  gulong id = gst_pad_add_probe(
      payloader_src,
      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST |
                                   GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
      &Track::on_source, weak, [](gpointer d) { delete static_cast<std::weak_ptr<Track> *>(d); });
  std::lock_guard<std::mutex> lock(mutex_);
  source_ = GPtr<GstPad>::ref(payloader_src);
  probe_ = id;
}

void Track::set_raw_source(GstElement *tee) {
  std::lock_guard<std::mutex> lock(mutex_);
  raw_source_ = tee ? GPtr<GstElement>::ref(tee) : GPtr<GstElement>();
}

GPtr<GstElement> Track::raw_source() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return raw_source_;
}

void Track::clear_source() {
  GPtr<GstPad> pad;
  gulong probe;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pad = std::move(source_);
    raw_source_ = GPtr<GstElement>();
    probe = probe_;
    probe_ = 0;
  }
  if (pad && probe) gst_pad_remove_probe(pad.get(), probe);
}

bool Track::has_caps() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<bool>(caps_);
}

GPtr<GstCaps> Track::caps() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return caps_;
}

SendCodec Track::codec() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return codec_;
}

GstSegment Track::segment() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (have_segment_) return segment_;
  GstSegment s;
  gst_segment_init(&s, GST_FORMAT_TIME);
  return s;
}

void Track::add_sink(const std::shared_ptr<TrackSink> &sink) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto next = std::make_shared<std::vector<std::shared_ptr<TrackSink>>>(*sinks_);
  next->push_back(sink);
  sinks_ = std::move(next);
}

void Track::remove_sink(const TrackSink *sink) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto next = std::make_shared<std::vector<std::shared_ptr<TrackSink>>>(*sinks_);
  next->erase(std::remove_if(next->begin(), next->end(), [&](const auto &s) { return s.get() == sink; }),
              next->end());
  sinks_ = std::move(next);
}

void Track::move_sink(const std::shared_ptr<Track> &from, const std::shared_ptr<Track> &to,
                      const std::shared_ptr<TrackSink> &sink) {
  if (from) from->remove_sink(sink.get());
  if (to) {
    to->add_sink(sink);
    to->request_keyframe(true);
  }
}

size_t Track::sink_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return sinks_->size();
}

void Track::on_caps(GstCaps *caps) {
  const GstStructure *s = gst_caps_get_structure(caps, 0);
  SendCodec codec;
  codec.kind = kind_;
  const gchar *enc = gst_structure_get_string(s, "encoding-name");
  codec.encoding = enc ? enc : "";
  for (auto &c : codec.encoding) c = static_cast<char>(g_ascii_toupper(c));
  gint rate = 0;
  gst_structure_get_int(s, "clock-rate", &rate);
  codec.clock_rate = static_cast<unsigned>(rate);
  const gchar *plid = gst_structure_get_string(s, "profile-level-id");
  codec.h264_profile_level_id = plid ? plid : "";
  GST_DEBUG("%s track sends %s/%u %s", kind_.c_str(), codec.encoding.c_str(), codec.clock_rate,
            codec.h264_profile_level_id.c_str());
  std::lock_guard<std::mutex> lock(mutex_);
  caps_ = GPtr<GstCaps>::ref(caps);
  encoding_hash_ = std::hash<std::string>()(codec.encoding);
  codec_ = codec;
  if (!first_caps_us_) first_caps_us_ = g_get_monotonic_time();
}

GstPadProbeReturn Track::on_source(GstPad *, GstPadProbeInfo *info, gpointer data) {
  std::shared_ptr<Track> self = static_cast<std::weak_ptr<Track> *>(data)->lock();
  if (!self) return GST_PAD_PROBE_DROP;
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
      GstCaps *caps;
      gst_event_parse_caps(event, &caps);
      self->on_caps(caps);
    } else if (GST_EVENT_TYPE(event) == GST_EVENT_SEGMENT) {
      const GstSegment *segment;
      gst_event_parse_segment(event, &segment);
      std::lock_guard<std::mutex> lock(self->mutex_);
      gst_segment_copy_into(segment, &self->segment_);
      self->have_segment_ = true;
    }
    return GST_PAD_PROBE_OK;  // stored on the unlinked pad
  }
  std::shared_ptr<const std::vector<std::shared_ptr<TrackSink>>> sinks;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    sinks = self->sinks_;
  }
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER(info);
    for (const auto &sink : *sinks) sink->deliver(self, gst_buffer_ref(buffer));
  } else {
    GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
    guint n = gst_buffer_list_length(list);
    for (const auto &sink : *sinks)
      for (guint i = 0; i < n; i++) sink->deliver(self, gst_buffer_ref(gst_buffer_list_get(list, i)));
  }
  gst_mini_object_unref(GST_MINI_OBJECT_CAST(info->data));
  info->data = nullptr;
  return GST_PAD_PROBE_HANDLED;
}

void Track::request_keyframe(bool force) {
  if (kind_ != "video") return;
  gint64 now = g_get_monotonic_time();
  if (!force && now - last_keyframe_request_.load() < kKeyframeThrottleUs) return;
  last_keyframe_request_ = now;
  GPtr<GstPad> pad;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pad = source_;
  }
  if (!pad) return;
  GstElement *payloader = gst_pad_get_parent_element(pad.get());
  if (!payloader) return;
  // Each request counts up: with all-headers rtpsession asks a remote sender by FIR, whose
  // sequence number moves only when the count does, and senders take a FIR with the number
  // of the last one as a repeat of it (RFC 5104 4.3.1): only the first request got a key frame.
  struct Request {
    GstPad *src;
    guint count;
  };
  // Never from the caller's thread: it may be a streaming thread of this very track.
  gst_element_call_async(
      payloader,
      [](GstElement *, gpointer d) {
        auto *r = static_cast<Request *>(d);
        gst_pad_send_event(r->src, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, r->count));
      },
      new Request{pad.release(), ++keyframe_count_}, [](gpointer d) {
        auto *r = static_cast<Request *>(d);
        gst_object_unref(r->src);
        delete r;
      });
  gst_object_unref(payloader);
}

}  // namespace wish
