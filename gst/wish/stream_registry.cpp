#include "stream_registry.h"

#include <gst/video/video.h>

#include <algorithm>

#include "output_slot.h"
#include "protocol/stream_names.h"

GST_DEBUG_CATEGORY_EXTERN(wish_streams_debug);
#define GST_CAT_DEFAULT wish_streams_debug

namespace wish {

namespace {
constexpr gint64 kKeyframeThrottleUs = 200 * 1000;

std::mutex registries_mutex;
std::map<std::string, std::weak_ptr<StreamRegistry>> registries;
}  // namespace

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

void Track::clear_source() {
  GPtr<GstPad> pad;
  gulong probe;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pad = std::move(source_);
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
  // Never from the caller's thread: it may be a streaming thread of this very track.
  gst_element_call_async(
      payloader,
      [](GstElement *, gpointer d) {
        auto *src = static_cast<GstPad *>(d);
        gst_pad_send_event(src, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
      },
      pad.release(), [](gpointer d) { gst_object_unref(d); });
  gst_object_unref(payloader);
}

// ---------------------------------------------------------------------------------------
// Stream

std::shared_ptr<Track> Stream::add_track(const std::string &kind) {
  auto track = std::make_shared<Track>(kind);
  add_track(track);
  return track;
}

void Stream::add_track(std::shared_ptr<Track> track) {
  std::lock_guard<std::mutex> lock(mutex_);
  tracks_.push_back(std::move(track));
}

void Stream::remove_track(const std::shared_ptr<Track> &track) {
  std::lock_guard<std::mutex> lock(mutex_);
  tracks_.erase(std::remove(tracks_.begin(), tracks_.end(), track), tracks_.end());
}

std::shared_ptr<Track> Stream::track(const std::string &kind, size_t index) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto &t : tracks_)
    if (t->kind() == kind && index-- == 0) return t;
  return nullptr;
}

std::vector<std::shared_ptr<Track>> Stream::tracks() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return tracks_;
}

bool Stream::ready(gint64 grace_us) const {
  if (!live_) return false;
  size_t with_media = 0;
  gint64 first = 0;
  auto all = tracks();
  for (const auto &t : all) {
    if (!t->has_caps()) continue;
    with_media++;
    gint64 since = t->first_caps_us();
    if (!first || since < first) first = since;
  }
  if (with_media == 0) return false;
  return with_media == all.size() || g_get_monotonic_time() - first > grace_us;
}

// ---------------------------------------------------------------------------------------
// StreamRegistry

std::shared_ptr<StreamRegistry> StreamRegistry::acquire(const std::string &key) {
  std::lock_guard<std::mutex> lock(registries_mutex);
  if (!key.empty()) {
    auto it = registries.find(key);
    if (it != registries.end())
      if (auto existing = it->second.lock()) return existing;
  }
  std::shared_ptr<StreamRegistry> registry(new StreamRegistry());
  registry->key_ = key;
  if (!key.empty()) registries[key] = registry;
  return registry;
}

StreamRegistry::~StreamRegistry() {
  if (key_.empty()) return;
  std::lock_guard<std::mutex> lock(registries_mutex);
  auto it = registries.find(key_);
  if (it != registries.end() && it->second.expired()) registries.erase(it);
}

bool StreamRegistry::add(const std::shared_ptr<Stream> &stream) {
  std::lock_guard<std::mutex> serial(repoint_mutex_);
  std::vector<std::pair<std::shared_ptr<Slot>, std::shared_ptr<Stream>>> moves;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (streams_.count(stream->name())) return false;
    streams_[stream->name()] = stream;
    // Viewers already waiting for this name (none in practice: admission needs the stream).
    for (const auto &w : audience_)
      if (auto slot = w.lock())
        if (resolve_locked(slot->requested()) == stream) moves.emplace_back(slot, stream);
  }
  GST_INFO("stream %s added (%s)", stream->name().c_str(), stream->origin().c_str());
  repoint(moves);
  return true;
}

void StreamRegistry::remove(const std::shared_ptr<Stream> &stream) {
  std::lock_guard<std::mutex> serial(repoint_mutex_);
  std::vector<std::pair<std::shared_ptr<Slot>, std::shared_ptr<Stream>>> moves;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(stream->name());
    if (it == streams_.end() || it->second != stream) return;
    streams_.erase(it);
    for (auto r = routes_.begin(); r != routes_.end();)
      r = r->second == stream->name() ? routes_.erase(r) : std::next(r);
    for (const auto &w : audience_)
      if (auto slot = w.lock())
        if (slot->showing() == stream->name()) moves.emplace_back(slot, resolve_locked(slot->requested()));
  }
  GST_INFO("stream %s removed", stream->name().c_str());
  repoint(moves);
}

std::shared_ptr<Stream> StreamRegistry::find(const std::string &name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = streams_.find(name);
  return it == streams_.end() ? nullptr : it->second;
}

std::shared_ptr<Stream> StreamRegistry::resolve_locked(const std::string &name) const {
  auto route = routes_.find(name);
  const std::string &shown = route == routes_.end() ? name : route->second;
  auto it = streams_.find(shown);
  return it == streams_.end() ? nullptr : it->second;
}

std::shared_ptr<Stream> StreamRegistry::resolve(const std::string &name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return resolve_locked(name);
}

std::vector<std::shared_ptr<Stream>> StreamRegistry::streams() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::shared_ptr<Stream>> out;
  for (const auto &kv : streams_) out.push_back(kv.second);
  return out;
}

void StreamRegistry::add_endpoint_path(const std::string &path) {
  std::lock_guard<std::mutex> lock(mutex_);
  endpoint_paths_.push_back(path);
}

void StreamRegistry::remove_endpoint_path(const std::string &path) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = std::find(endpoint_paths_.begin(), endpoint_paths_.end(), path);
  if (it != endpoint_paths_.end()) endpoint_paths_.erase(it);
}

std::string StreamRegistry::name_of(const std::string &locator) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stream_name_from_locator(locator, endpoint_paths_);
}

void StreamRegistry::join(const std::shared_ptr<Slot> &slot) {
  std::lock_guard<std::mutex> serial(repoint_mutex_);
  std::shared_ptr<Stream> target;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    audience_.erase(std::remove_if(audience_.begin(), audience_.end(), [](const auto &w) { return w.expired(); }),
                    audience_.end());
    audience_.push_back(slot);
    target = resolve_locked(slot->requested());
  }
  slot->point_to(target);
}

void StreamRegistry::leave(const Slot *slot) {
  std::lock_guard<std::mutex> lock(mutex_);
  audience_.erase(std::remove_if(audience_.begin(), audience_.end(),
                                 [&](const auto &w) {
                                   auto s = w.lock();
                                   return !s || s.get() == slot;
                                 }),
                  audience_.end());
}

size_t StreamRegistry::audience(const std::string &name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = 0;
  for (const auto &w : audience_)
    if (auto s = w.lock())
      if (s->requested() == name) n++;
  return n;
}

bool StreamRegistry::switch_stream(const std::string &from_locator, const std::string &to_locator, std::string *error) {
  std::string from = name_of(from_locator), to = name_of(to_locator);
  std::lock_guard<std::mutex> serial(repoint_mutex_);
  std::vector<std::pair<std::shared_ptr<Slot>, std::shared_ptr<Stream>>> moves;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (from.empty() || !streams_.count(from)) {
      *error = "no stream named '" + from + "'";
      return false;
    }
    if (!to.empty() && to != from && !streams_.count(to)) {
      *error = "no stream named '" + to + "'";
      return false;
    }
    if (to.empty() || to == from)
      routes_.erase(from);
    else
      routes_[from] = to;
    auto target = resolve_locked(from);
    for (const auto &w : audience_)
      if (auto slot = w.lock())
        if (slot->requested() == from) moves.emplace_back(slot, target);
  }
  GST_INFO("viewers of %s now see %s (%zu slots)", from.c_str(), to.empty() ? from.c_str() : to.c_str(), moves.size());
  repoint(moves);
  return true;
}

std::map<std::string, std::string> StreamRegistry::routes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return routes_;
}

void StreamRegistry::repoint(const std::vector<std::pair<std::shared_ptr<Slot>, std::shared_ptr<Stream>>> &moves) {
  for (const auto &m : moves) m.first->point_to(m.second);
}

}  // namespace wish
