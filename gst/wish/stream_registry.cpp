#include "stream_registry.h"

#include <algorithm>

#include "output_slot.h"
#include "protocol/stream_names.h"

GST_DEBUG_CATEGORY_EXTERN(wish_streams_debug);
#define GST_CAT_DEFAULT wish_streams_debug

namespace wish {

namespace {
std::mutex registries_mutex;
std::map<std::string, std::weak_ptr<StreamRegistry>> registries;
}  // namespace

// ---------------------------------------------------------------------------------------
// Stream

std::shared_ptr<Track> Stream::add_track(const std::string &kind) {
  auto track = std::make_shared<Track>(kind);
  add_track(track);
  return track;
}

void Stream::add_track(std::shared_ptr<Track> track) {
  if (track->kind() == "video") track->share_keyframe_requests(video_keyframes_);
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

void Stream::set_msids(std::vector<std::string> ids) {
  std::lock_guard<std::mutex> lock(mutex_);
  msids_ = std::move(ids);
}

bool Stream::carries_msid(const std::vector<std::string> &ids) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto &id : ids)
    if (!id.empty() && std::find(msids_.begin(), msids_.end(), id) != msids_.end()) return true;
  return false;
}

void Stream::set_source_ender(SourceEnder ender) {
  std::lock_guard<std::mutex> lock(mutex_);
  ender_ = std::move(ender);
}

void Stream::end_source(unsigned delay_ms, const std::string &reason) {
  SourceEnder ender;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ender = ender_;
  }
  if (ender) ender(delay_ms, reason);
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
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (streams_.count(stream->name())) return false;
    streams_[stream->name()] = stream;
  }
  GST_INFO("stream %s added (%s)", stream->name().c_str(), stream->origin().c_str());
  repoint_all();  // viewers waiting for this name (a pull or a merge their slot asked for)
  return true;
}

void StreamRegistry::remove(const std::shared_ptr<Stream> &stream) {
  std::lock_guard<std::mutex> serial(repoint_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = streams_.find(stream->name());
    if (it == streams_.end() || it->second != stream) return;
    streams_.erase(it);
    for (auto &r : routes_)
      for (auto k = r.second.begin(); k != r.second.end();)
        k = k->second == stream->name() ? r.second.erase(k) : std::next(k);
    for (auto t = takeovers_.begin(); t != takeovers_.end();)  // both the grabbed and the taker
      t = t->first == stream->name() || t->second == stream->name() ? takeovers_.erase(t) : std::next(t);
  }
  GST_INFO("stream %s removed", stream->name().c_str());
  repoint_all();
}

std::shared_ptr<Stream> StreamRegistry::find(const std::string &name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = streams_.find(name);
  return it == streams_.end() ? nullptr : it->second;
}

std::string StreamRegistry::taken_over_locked(std::string name) const {
  for (int hops = 0; hops < 8; hops++) {  // grabs of grabs; bounded against cycles
    auto t = takeovers_.find(name);
    if (t == takeovers_.end()) break;
    name = t->second;
  }
  return name;
}

std::shared_ptr<Stream> StreamRegistry::resolve_locked(const std::string &name, const std::string &kind,
                                                       bool follow_switches) const {
  std::string shown = name;
  auto route = follow_switches ? routes_.find(name) : routes_.end();
  if (route != routes_.end()) {
    auto k = route->second.find(kind);
    if (k != route->second.end()) shown = k->second;
  }
  auto it = streams_.find(taken_over_locked(shown));
  return it == streams_.end() ? nullptr : it->second;
}

std::shared_ptr<Stream> StreamRegistry::resolve(const std::string &name, const std::string &kind,
                                                bool follow_switches) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return resolve_locked(name, kind, follow_switches);
}

std::shared_ptr<Stream> StreamRegistry::media_of(const std::string &name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = streams_.find(taken_over_locked(name));
  return it == streams_.end() ? nullptr : it->second;
}

bool StreamRegistry::take_over(const std::string &name_locator, const std::string &taker_locator, std::string *error,
                               unsigned *error_status) {
  std::string name = name_of(name_locator), taker = name_of(taker_locator);
  bool back = taker.empty() || taker == name;
  std::lock_guard<std::mutex> serial(repoint_mutex_);
  std::shared_ptr<Stream> stream = find(name) ? media_of(name) : nullptr, taking = back ? nullptr : find(taker);
  if (!may_show(name, stream, taker, taking, back, error, error_status)) return false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (back) {
      takeovers_.erase(name);
    } else {
      takeovers_.erase(taker);  // the taker shows its own media
      takeovers_[name] = taker;
    }
  }
  GST_INFO("%s shows the media of %s", name.c_str(), back ? name.c_str() : taker.c_str());
  repoint_all();
  return true;
}

std::vector<std::shared_ptr<Stream>> StreamRegistry::streams() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::shared_ptr<Stream>> out;
  for (const auto &kv : streams_) out.push_back(kv.second);
  return out;
}

void StreamRegistry::add_endpoint_path(const std::string &path, bool whep, std::weak_ptr<Endpoint> endpoint) {
  std::lock_guard<std::mutex> lock(mutex_);
  endpoint_paths_.push_back({path, whep, std::move(endpoint)});
}

int StreamRegistry::add_metrics_source(MetricsSource source) {
  std::lock_guard<std::mutex> lock(mutex_);
  int id = next_metrics_source_++;
  metrics_sources_[id] = std::move(source);
  return id;
}

void StreamRegistry::remove_metrics_source(int id) {
  std::lock_guard<std::mutex> lock(mutex_);
  metrics_sources_.erase(id);
}

void StreamRegistry::collect_metrics(MetricsText &out) const {
  std::vector<MetricsSource> sources;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto &kv : metrics_sources_) sources.push_back(kv.second);
  }
  for (const auto &s : sources) s(out);
}

std::vector<StreamRegistry::EndpointEntry> StreamRegistry::endpoints() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return endpoint_paths_;
}

void StreamRegistry::remove_endpoint_path(const std::string &path) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = endpoint_paths_.begin(); it != endpoint_paths_.end(); ++it)
    if (it->path == path) {
      endpoint_paths_.erase(it);
      return;
    }
}

std::string StreamRegistry::name_of(const std::string &locator) const {
  std::vector<std::string> paths;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto &p : endpoint_paths_) paths.push_back(p.path);
  }
  return stream_name_from_locator(locator, paths);
}

std::string StreamRegistry::whep_url(const std::string &name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto &p : endpoint_paths_)
    if (p.whep) return p.path + "/" + name;
  return name;
}

void StreamRegistry::join(const std::shared_ptr<Slot> &slot) {
  std::lock_guard<std::mutex> serial(repoint_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    audience_.erase(std::remove_if(audience_.begin(), audience_.end(), [](const auto &w) { return w.expired(); }),
                    audience_.end());
    audience_.push_back(slot);
  }
  point(slot);
}

void StreamRegistry::repoint(const std::shared_ptr<Slot> &slot) {
  std::lock_guard<std::mutex> serial(repoint_mutex_);
  point(slot);
}

void StreamRegistry::repoint_audience() {
  std::lock_guard<std::mutex> serial(repoint_mutex_);
  repoint_all();
}

void Stream::set_layers(std::vector<VideoLayer> layers) {
  std::lock_guard<std::mutex> lock(mutex_);
  layers_ = std::move(layers);
}

std::vector<VideoLayer> Stream::layers() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return layers_;
}

void Stream::add_simulcast_track(const std::string &rid, std::shared_ptr<Track> track) {
  track->share_keyframe_requests(video_keyframes_);
  std::lock_guard<std::mutex> lock(mutex_);
  bool first = simulcast_.empty();
  simulcast_.emplace_back(rid, track);
  if (first) tracks_.push_back(std::move(track));  // the video track until a larger one has media
}

bool Stream::keep_simulcast(const std::vector<std::string> &rids) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::pair<std::string, std::shared_ptr<Track>>> kept, gone;
  for (auto &kv : simulcast_)
    (std::find(rids.begin(), rids.end(), kv.first) != rids.end() ? kept : gone).push_back(std::move(kv));
  simulcast_ = std::move(kept);
  for (const auto &kv : gone) {
    auto video = std::find(tracks_.begin(), tracks_.end(), kv.second);
    if (video == tracks_.end()) continue;
    if (!simulcast_.empty())
      *video = simulcast_.front().second;
    else if (!rids.empty())
      tracks_.erase(video);  // the first encoding added takes its place
    GST_INFO("stream %s: simulcast encoding '%s' is gone%s", name_.c_str(), kv.first.c_str(),
             rids.empty() ? ", its track is the video track" : "");
  }
  return !gone.empty();
}

std::shared_ptr<Track> Stream::simulcast_track(const std::string &rid) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto &kv : simulcast_)
    if (kv.first == rid) return kv.second;
  return nullptr;
}

std::vector<std::shared_ptr<Track>> Stream::simulcast_tracks() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::shared_ptr<Track>> out;
  for (const auto &kv : simulcast_) out.push_back(kv.second);
  return out;
}

bool Stream::simulcast() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !simulcast_.empty();
}

std::vector<VideoLayer> Stream::simulcast_layers() const {
  std::vector<std::pair<std::string, std::shared_ptr<Track>>> sc;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    sc = simulcast_;
  }
  std::vector<VideoLayer> layers;
  for (const auto &kv : sc) {
    VideoLayer l;
    l.rid = kv.first;
    l.width = kv.second->width();
    l.height = kv.second->height();
    l.bitrate = kv.second->received_bps();
    layers.push_back(l);
  }
  std::stable_sort(layers.begin(), layers.end(),
                   [](const VideoLayer &a, const VideoLayer &b) { return a.width * a.height > b.width * b.height; });
  return layers;
}

bool Stream::promote_largest_simulcast() {
  std::lock_guard<std::mutex> lock(mutex_);
  auto current = std::find_if(tracks_.begin(), tracks_.end(), [&](const auto &t) {
    return std::any_of(simulcast_.begin(), simulcast_.end(), [&](const auto &kv) { return kv.second == t; });
  });
  if (current == tracks_.end()) return false;
  // With media now: a publisher may stop sending an encoding for a while (a browser its largest
  // when its bandwidth estimate or CPU falls short), and its viewers would get nothing from it.
  auto active = [](const std::shared_ptr<Track> &t) { return t->has_caps() && t->received_bps() > 0; };
  std::shared_ptr<Track> best;
  for (const auto &kv : simulcast_) {
    const auto &t = kv.second;
    if (!active(t)) continue;
    if (!best || t->width() * t->height() > best->width() * best->height()) best = t;
  }
  if (!best || best == *current) return false;
  // Without a size known, one with media beats one without.
  if (active(*current) && best->width() * best->height() <= (*current)->width() * (*current)->height())
    return false;
  GST_INFO("stream %s: its video is now the %dx%d simulcast encoding%s", name_.c_str(), best->width(), best->height(),
           active(*current) ? "" : " (the one before sends nothing)");
  *current = best;
  return true;
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

bool StreamRegistry::may_show(const std::string &from, const std::shared_ptr<Stream> &from_stream,
                              const std::string &to, const std::shared_ptr<Stream> &to_stream, bool back,
                              std::string *error, unsigned *error_status) {
  if (error_status) *error_status = 404;
  if (from.empty() || !from_stream) {
    *error = "no stream named '" + from + "'";
    return false;
  }
  if (!back && !to_stream) {
    *error = "no stream named '" + to + "'";
    return false;
  }
  if (to_stream && !compatible(from_stream, to_stream)) {
    *error = "'" + from + "' and '" + to + "' are in other codecs, and transcoding is off";
    if (error_status) *error_status = 409;
    return false;
  }
  return true;
}

bool StreamRegistry::switch_stream(const std::string &from_locator, const std::string &to_locator, std::string *error,
                                   unsigned *error_status, int kinds) {
  std::string from = name_of(from_locator), to = name_of(to_locator);
  bool back = to.empty() || to == from;
  std::lock_guard<std::mutex> serial(repoint_mutex_);
  std::shared_ptr<Stream> from_stream = find(from), to_stream = back ? nullptr : find(to);
  if (!may_show(from, from_stream, to, to_stream, back, error, error_status)) return false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const char *kind : {"video", "audio"}) {
      if (!has_kind(kinds, kind)) continue;
      if (back)
        routes_[from].erase(kind);
      else
        routes_[from][kind] = to;
    }
    if (routes_[from].empty()) routes_.erase(from);
  }
  GST_INFO("viewers of %s now see %s (%s)", from.c_str(), back ? from.c_str() : to.c_str(),
           kinds == kAllKinds ? "video and audio" : kinds == kVideo ? "video" : "audio");
  repoint_all();
  return true;
}

std::string StreamRegistry::switched_to(const std::string &from, const std::string &kind) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto route = routes_.find(from);
  if (route == routes_.end()) return "";
  auto k = route->second.find(kind);
  return k == route->second.end() ? "" : k->second;
}

void StreamRegistry::point(const std::shared_ptr<Slot> &slot) {
  const std::string requested = slot->requested();
  bool follow = slot->follows_switches();
  auto video = resolve(requested, "video", follow), audio = resolve(requested, "audio", follow);
  std::string showing = video ? video->name() : audio ? audio->name() : "";
  bool unsettled = false;
  slot->point_to(showing, [this, video, audio, &unsettled](const SlotTarget &t) {
    auto stream = t.kind() == "audio" ? audio : video;
    auto track = stream ? pick(stream, t) : nullptr;
    // Its codec is not known yet: whether it needs transcoding is decided again (settle()).
    if (track && !track->has_caps() && !t.encoding().empty()) unsettled = true;
    return track;
  });
  if (!unsettled) return;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto &w : unsettled_)
    if (w.lock() == slot) return;
  unsettled_.push_back(slot);
}

void StreamRegistry::settle() {
  std::vector<std::weak_ptr<Slot>> slots;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (unsettled_.empty()) return;
    slots.swap(unsettled_);
  }
  std::lock_guard<std::mutex> serial(repoint_mutex_);
  for (const auto &w : slots)
    if (auto slot = w.lock()) point(slot);  // puts it back while a codec is still unknown
}

void StreamRegistry::repoint_all() {
  std::vector<std::shared_ptr<Slot>> slots;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto &w : audience_)
      if (auto s = w.lock()) slots.push_back(s);
  }
  for (const auto &s : slots) point(s);
}

void StreamRegistry::set_transcoder(Transcoder *transcoder, bool allowed) {
  std::lock_guard<std::mutex> lock(mutex_);
  transcoders_.emplace_back(transcoder, allowed);
}

void StreamRegistry::release_transcoder(Transcoder *transcoder) {
  std::lock_guard<std::mutex> lock(mutex_);
  transcoders_.erase(std::remove_if(transcoders_.begin(), transcoders_.end(),
                                    [transcoder](const auto &t) { return t.first == transcoder; }),
                     transcoders_.end());
}

Transcoder *StreamRegistry::transcoder_locked() const {
  for (const auto &t : transcoders_)
    if (!t.second) return nullptr;  // one element of the server forbids it: nobody transcodes
  return transcoders_.empty() ? nullptr : transcoders_.front().first;
}

std::shared_ptr<Track> StreamRegistry::pick(const std::shared_ptr<Stream> &stream, const SlotTarget &target) {
  std::shared_ptr<Track> track = stream ? stream->track(target.kind(), target.index()) : nullptr;
  std::string rid = track && track->kind() == "video" ? target.layer() : "";
  // A simulcast encoding is a track of its own, as the publisher sent it.
  std::shared_ptr<Track> encoding_track = rid.empty() ? nullptr : stream->simulcast_track(rid);
  if (encoding_track) {
    track = encoding_track;
    rid.clear();
  }
  if (!rid.empty() && track->has_caps()) {
    // A lower layer: the stream's video encoded again at that size, shared by its viewers.
    for (const auto &layer : stream->layers()) {
      if (layer.rid != rid) continue;
      Transcoder *transcoder;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        transcoder = transcoder_locked();
      }
      std::string encoding = target.encoding().empty() ? track->codec().encoding : target.encoding();
      if (auto variant = transcoder ? transcoder->variant(track, encoding, &layer) : nullptr) return variant;
    }
  }
  if (!track || target.encoding().empty() || !track->has_caps()) return track;
  std::string encoding = track->codec().encoding;
  if (encoding == target.encoding()) return track;
  Transcoder *transcoder;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    transcoder = transcoder_locked();
  }
  if (!transcoder) return track;  // its packets are not sent to the target: the picture holds
  GST_INFO("%s %s track of %s for a %s target: transcoding", encoding.c_str(), target.kind().c_str(),
           stream->name().c_str(), target.encoding().c_str());
  std::shared_ptr<Track> variant = transcoder->variant(track, target.encoding());
  return variant ? variant : track;
}

bool StreamRegistry::transcoding() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return transcoder_locked() != nullptr;
}

bool StreamRegistry::compatible(const std::shared_ptr<Stream> &a, const std::shared_ptr<Stream> &b) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (transcoder_locked()) return true;
  }
  // Viewers of `a` are on a's encodings: each needs a track of `b` in it (tracks without caps
  // yet are not judged).
  for (const auto &ta : a->tracks()) {
    if (!ta->has_caps()) continue;
    bool judged = false, found = false;
    for (const auto &tb : b->tracks()) {
      if (tb->kind() != ta->kind() || !tb->has_caps()) continue;
      judged = true;
      found = found || tb->codec().encoding == ta->codec().encoding;
    }
    if (judged && !found) return false;
  }
  return true;
}

}  // namespace wish
