#include "track.h"

#include <gst/video/video.h>

#include <algorithm>

#include "protocol/rtp_continuity.h"

GST_DEBUG_CATEGORY_EXTERN(wish_streams_debug);
#define GST_CAT_DEFAULT wish_streams_debug

namespace wish {

// ---------------------------------------------------------------------------------------
// KeyframeRequests

KeyframeRequests::KeyframeRequests() : clock_(gst_system_clock_obtain()) {}

KeyframeRequests::~KeyframeRequests() {
  if (timer_) {
    gst_clock_id_unschedule(timer_);
    gst_clock_id_unref(timer_);
  }
  gst_object_unref(clock_);
}

int KeyframeRequests::join(const std::shared_ptr<Track> &track) {
  std::lock_guard<std::mutex> lock(mutex_);
  tracks_.push_back(track);
  return pacer_.add_encoding();
}

std::vector<std::shared_ptr<Track>> KeyframeRequests::tracks_locked(const std::vector<int> &indexes) const {
  std::vector<std::shared_ptr<Track>> out;
  for (int i : indexes)
    if (auto t = tracks_[i].lock()) out.push_back(std::move(t));
  return out;
}

void KeyframeRequests::want(int index, bool own_encoder) {
  constexpr gint64 kOwnEncoderIntervalUs = 200 * 1000;
  std::vector<std::shared_ptr<Track>> send;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    gint64 now = g_get_monotonic_time();
    pacer_.set_min_interval_us(own_encoder ? kOwnEncoderIntervalUs : KeyframePacer::Config().min_interval_us);
    send = tracks_locked(pacer_.want(index, now));
    if (send.empty()) GST_DEBUG("key frame of encoding %d: asked for, waits", index);
    schedule_locked(now);
  }
  for (const auto &t : send) t->send_keyframe_request();
}

bool KeyframeRequests::wanted(int index) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pacer_.wanted(index);
}

void KeyframeRequests::keyframe(int index) {
  std::lock_guard<std::mutex> lock(mutex_);
  GST_DEBUG("key frame of encoding %d: came", index);
  pacer_.keyframe(index);
}

// One timer at a time, for the earliest request that waits; it is set again after it fired.
void KeyframeRequests::schedule_locked(gint64 now_us) {
  gint64 due = pacer_.next_poll_us();
  if (due < 0 || (timer_ && timer_due_us_ <= due)) return;
  if (timer_) {
    gst_clock_id_unschedule(timer_);
    gst_clock_id_unref(timer_);
  }
  GstClockTime at = gst_clock_get_time(clock_) + GST_USECOND * static_cast<GstClockTime>(std::max<gint64>(due - now_us, 0));
  timer_ = gst_clock_new_single_shot_id(clock_, at);
  timer_due_us_ = due;
  gst_clock_id_wait_async(timer_, &KeyframeRequests::on_timer, new std::weak_ptr<KeyframeRequests>(shared_from_this()),
                          [](gpointer d) { delete static_cast<std::weak_ptr<KeyframeRequests> *>(d); });
}

gboolean KeyframeRequests::on_timer(GstClock *, GstClockTime, GstClockID id, gpointer data) {
  auto self = static_cast<std::weak_ptr<KeyframeRequests> *>(data)->lock();
  if (!self) return TRUE;
  std::vector<std::shared_ptr<Track>> send;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    if (id != self->timer_) return TRUE;  // replaced meanwhile
    gst_clock_id_unref(self->timer_);
    self->timer_ = nullptr;
    gint64 now = g_get_monotonic_time();
    send = self->tracks_locked(self->pacer_.poll(now));
    self->schedule_locked(now);
  }
  for (const auto &t : send) t->send_keyframe_request();
  return TRUE;
}

// ---------------------------------------------------------------------------------------
// Track

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
  if (to) to->add_sink(sink);
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
    self->watch_keyframe(buffer);
    for (const auto &sink : *sinks) sink->deliver(self, gst_buffer_ref(buffer));
  } else {
    GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
    guint n = gst_buffer_list_length(list);
    for (guint i = 0; i < n; i++) self->watch_keyframe(gst_buffer_list_get(list, i));
    // Packet by packet to every sink, not sink by sink: a sink that shares one copy of a
    // packet among its peers (shared_viewers.cpp) sees the same packet in a row.
    for (guint i = 0; i < n; i++)
      for (const auto &sink : *sinks) sink->deliver(self, gst_buffer_ref(gst_buffer_list_get(list, i)));
  }
  gst_mini_object_unref(GST_MINI_OBJECT_CAST(info->data));
  info->data = nullptr;
  return GST_PAD_PROBE_HANDLED;
}

std::shared_ptr<KeyframeRequests> Track::keyframe_requests(int *index) {
  std::lock_guard<std::mutex> lock(mutex_);
  *index = keyframe_index_;
  return keyframe_requests_;
}

void Track::share_keyframe_requests(const std::shared_ptr<KeyframeRequests> &requests) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (keyframe_requests_ == requests) return;
  }
  int index = requests->join(shared_from_this());
  std::lock_guard<std::mutex> lock(mutex_);
  keyframe_requests_ = requests;
  keyframe_index_ = index;
}

// Only while a key frame is wanted: then the packets that start one answer the request.
void Track::watch_keyframe(GstBuffer *buffer) {
  if (kind_ != "video") return;
  int index;
  auto requests = keyframe_requests(&index);
  if (!requests || !requests->wanted(index)) return;
  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) return;
  bool keyframe = rtp_starts_keyframe(codec().encoding, map.data, map.size);
  gst_buffer_unmap(buffer, &map);
  if (keyframe) requests->keyframe(index);
}

void Track::request_keyframe() {
  if (kind_ != "video") return;
  int index;
  auto requests = keyframe_requests(&index);
  if (!requests) {
    share_keyframe_requests(std::make_shared<KeyframeRequests>());
    requests = keyframe_requests(&index);
  }
  requests->want(index, static_cast<bool>(raw_source().get()));
}

void Track::send_keyframe_request() {
  GPtr<GstPad> pad;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pad = source_;
  }
  if (!pad) return;
  GstElement *payloader = gst_pad_get_parent_element(pad.get());
  if (!payloader) return;
  GST_DEBUG("%s track asks its source for a key frame (request %u)", kind_.c_str(), keyframe_count_ + 1);
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
