#include "output_slot.h"

#include <gst/video/video.h>

GST_DEBUG_CATEGORY_EXTERN(wish_streams_debug);
#define GST_CAT_DEFAULT wish_streams_debug

namespace wish {

namespace {
// How long a video output waits for the keyframe it asked for before asking again.
constexpr gint64 kKeyframeRetryUs = 1000 * 1000;
constexpr size_t kMaxPendingPackets = 300;  // a keyframe and a few frames while DTLS comes up
// A packet with this output's header and the payload of `buffer` (taken): the header is
// copied, the payload memory is shared with every other viewer of the track. Each viewer's
// retransmission history (rtprtxsend, hundreds of packets) then holds headers, not copies of
// the video. Null when the buffer cannot be read.
GstBuffer *with_own_header(GstBuffer *buffer, size_t header_size, const RtpHeader &h) {
  gsize size = gst_buffer_get_size(buffer);
  GstMemory *header = gst_allocator_alloc(nullptr, header_size, nullptr);
  GstMapInfo map;
  if (!header || header_size > size || !gst_memory_map(header, &map, GST_MAP_WRITE)) {
    if (header) gst_memory_unref(header);
    gst_buffer_unref(buffer);
    return nullptr;
  }
  gst_buffer_extract(buffer, 0, map.data, header_size);
  write_rtp_header(map.data, h);
  gst_memory_unmap(header, &map);
  GstBuffer *own = gst_buffer_new();
  // Flags, timestamps and metas first (a copy from offset 0), then the header, then the
  // payload's memory, shared.
  gst_buffer_copy_into(own, buffer, static_cast<GstBufferCopyFlags>(GST_BUFFER_COPY_METADATA), 0, size);
  gst_buffer_append_memory(own, header);
  if (size > header_size) gst_buffer_copy_into(own, buffer, GST_BUFFER_COPY_MEMORY, header_size, size - header_size);
  gst_buffer_unref(buffer);
  return own;
}

}  // namespace

SlotOutput::SlotOutput(Params params)
    : params_(std::move(params)),
      encoding_hash_(std::hash<std::string>()(params_.encoding)),
      pad_(params_.pad),
      rtp_(params_.ssrc, params_.payload_type, params_.clock_rate, params_.kind == "video") {}

std::shared_ptr<SlotOutput> SlotOutput::create(Params params) {
  std::shared_ptr<SlotOutput> self(new SlotOutput(std::move(params)));
  // webrtcbin turns the viewer's PLI/FIR into upstream force-key-unit events on its sink
  // pad; nothing is linked there, so they are taken here for the current source.
  self->upstream_probe_ = gst_pad_add_probe(
      self->params_.pad.get(), GST_PAD_PROBE_TYPE_EVENT_UPSTREAM,
      [](GstPad *, GstPadProbeInfo *info, gpointer d) {
        GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
        if (gst_video_event_is_force_key_unit(event))
          if (auto output = static_cast<std::weak_ptr<SlotOutput> *>(d)->lock()) {
            output->keyframe_requests_++;
            output->request_keyframe();
          }
        return GST_PAD_PROBE_DROP;
      },
      new std::weak_ptr<SlotOutput>(self), [](gpointer d) { delete static_cast<std::weak_ptr<SlotOutput> *>(d); });
  return self;
}

SlotOutput::~SlotOutput() { close(); }

void SlotOutput::set_source(const std::shared_ptr<Track> &track) {
  std::shared_ptr<Track> old;
  {
    std::lock_guard<std::mutex> push(push_mutex_);
    drop_pending_locked();  // of the track it leaves
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    old = source_.lock();
    if (old == track) return;
    source_ = track;
    rtp_.switch_source();
    last_keyframe_ask_ = g_get_monotonic_time();
  }
  Track::move_sink(old, track, shared_from_this());
  // A viewer not connected yet asks once it is (enable): a key frame asked for now would be
  // kept for it, but need not reach it, and the sender ignores a second request that soon.
  bool enabled;
  {
    std::lock_guard<std::mutex> push(push_mutex_);
    enabled = enabled_;
  }
  if (enabled && track) track->request_keyframe();
}

std::shared_ptr<Track> SlotOutput::source() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return source_.lock();
}

void SlotOutput::request_keyframe() {
  if (auto track = source()) track->request_keyframe();
}

std::vector<GstEvent *> SlotOutput::priming_locked(const std::shared_ptr<Track> &from) {
  std::vector<GstEvent *> events;
  if (!started_) {
    gchar *id = g_strdup_printf("wish-slot-%08x-%s", params_.ssrc, params_.kind.c_str());
    events.push_back(gst_event_new_stream_start(id));
    g_free(id);
    events.push_back(gst_event_new_caps(params_.caps.get()));
  }
  GstSegment segment = from->segment();
  if (!started_ || !segment_sent_ || !gst_segment_is_equal(&segment, &sent_segment_)) {
    events.push_back(gst_event_new_segment(&segment));
    sent_segment_ = segment;
    segment_sent_ = true;
  }
  started_ = true;
  return events;
}

void SlotOutput::enable() {
  size_t kept;
  {
    std::lock_guard<std::mutex> push(push_mutex_);
    if (enabled_) return;
    enabled_ = true;
    std::vector<GstBuffer *> held;
    held.swap(pending_);
    kept = held.size();
    std::shared_ptr<Track> from = source();
    for (GstBuffer *b : held) {
      if (from)
        push_locked(from, b);
      else
        gst_buffer_unref(b);
    }
  }
  // Asked for even after a kept keyframe: webrtcbin may not take it yet (caps refused).
  GST_DEBUG("%s output enabled, %zu packets kept since a keyframe", params_.kind.c_str(), kept);
  if (auto track = source()) track->request_keyframe();
}

void SlotOutput::deliver(const std::shared_ptr<Track> &from, GstBuffer *buffer) {
  std::lock_guard<std::mutex> push(push_mutex_);
  if (enabled_)
    push_locked(from, buffer);
  else
    keep_locked(from, buffer);
}

void SlotOutput::keep_locked(const std::shared_ptr<Track> &from, GstBuffer *buffer) {
  bool current;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    current = takes_locked(from);
  }
  GstMapInfo map;
  if (!current || params_.kind != "video" || !gst_buffer_map(buffer, &map, GST_MAP_READ)) {
    gst_buffer_unref(buffer);
    return;
  }
  bool keyframe = rtp_starts_keyframe(params_.encoding, map.data, map.size);
  gst_buffer_unmap(buffer, &map);
  if (keyframe || pending_.size() >= kMaxPendingPackets) drop_pending_locked();  // too long: ask at enable()
  if (keyframe || !pending_.empty())
    pending_.push_back(buffer);
  else
    gst_buffer_unref(buffer);
}

bool SlotOutput::takes_locked(const std::shared_ptr<Track> &from) const {
  return !closed_ && from && source_.lock() == from && from->encoding_hash() == encoding_hash_;
}

void SlotOutput::drop_pending_locked() {
  for (GstBuffer *b : pending_) gst_buffer_unref(b);
  pending_.clear();
}

void SlotOutput::push_locked(const std::shared_ptr<Track> &from, GstBuffer *buffer) {
  GPtr<GstPad> pad;
  std::vector<GstEvent *> priming;
  bool ask_keyframe = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!takes_locked(from)) {
      gst_buffer_unref(buffer);
      return;
    }
    pad = pad_;
    priming = priming_locked(from);
  }
  // Sticky events go in first, also while webrtcbin still blocks buffers: it connects the
  // pad once negotiation is done and it has seen the caps.
  bool primed = true;
  for (GstEvent *e : priming) {
    bool caps = GST_EVENT_TYPE(e) == GST_EVENT_CAPS;
    if (!gst_pad_send_event(pad.get(), e) && caps) primed = false;
  }
  if (!primed || gst_pad_is_blocked(pad.get())) {
    GST_LOG("dropped: %s", primed ? "pad blocked" : "not primed");
    if (!primed) {
      std::lock_guard<std::mutex> lock(mutex_);
      started_ = false;  // not active yet: the events go again with the next packet
    }
    gst_buffer_unref(buffer);
    return;
  }

  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) {
    gst_buffer_unref(buffer);
    return;
  }
  RtpHeader in, out;
  bool parsed = parse_rtp_header(map.data, map.size, &in);
  bool keyframe = parsed && rtp_starts_keyframe(params_.encoding, map.data, map.size);
  gst_buffer_unmap(buffer, &map);
  if (!parsed) {
    gst_buffer_unref(buffer);
    return;
  }
  RtpContinuity::Verdict verdict;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_ || source_.lock() != from) {
      gst_buffer_unref(buffer);
      return;
    }
    gint64 now = g_get_monotonic_time();
    verdict = rtp_.process(in, keyframe, now, &out);
    if (verdict == RtpContinuity::Verdict::Drop && now - last_keyframe_ask_ > kKeyframeRetryUs) {
      last_keyframe_ask_ = now;
      ask_keyframe = true;
    }
  }
  if (verdict == RtpContinuity::Verdict::Drop) {
    gst_buffer_unref(buffer);
    if (ask_keyframe) from->request_keyframe();
    return;
  }
  if (verdict == RtpContinuity::Verdict::Rewrite) {
    buffer = with_own_header(buffer, in.payload_offset, out);
    if (!buffer) return;
  }
  packets_++;
  bytes_ += gst_buffer_get_size(buffer);
  GstFlowReturn ret = gst_pad_chain(pad.get(), buffer);
  if (ret == GST_FLOW_FLUSHING) {
    std::lock_guard<std::mutex> lock(mutex_);
    started_ = false;  // stopping, or not active yet: prime again if it comes back
  }
}

void SlotOutput::close() {
  std::shared_ptr<Track> old;
  GPtr<GstPad> pad;
  {
    std::lock_guard<std::mutex> push(push_mutex_);
    drop_pending_locked();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    closed_ = true;
    old = source_.lock();
    source_.reset();
    pad = std::move(pad_);
  }
  if (old) old->remove_sink(this);
  if (pad && upstream_probe_) gst_pad_remove_probe(pad.get(), upstream_probe_);
}

std::string SlotOutput::layer() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return layer_;
}

void SlotOutput::set_layer(std::string rid) {
  std::lock_guard<std::mutex> lock(mutex_);
  layer_ = std::move(rid);
}

void Slot::point_to(const std::string &showing, const Picker &pick) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    showing_ = showing;
  }
  for (const auto &o : outputs_) o->set_source(pick(*o));
}

std::string Slot::showing() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return showing_;
}

void Slot::close() {
  for (const auto &o : outputs_) o->close();
}

}  // namespace wish
