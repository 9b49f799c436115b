#include "media_host.h"

#include <gst/app/gstappsrc.h>

#include <algorithm>

GST_DEBUG_CATEGORY_EXTERN(wish_streams_debug);
#define GST_CAT_DEFAULT wish_streams_debug

namespace wish {

namespace {
constexpr gint64 kVariantIdleUs = 3 * G_USEC_PER_SEC;  // a variant nobody uses for this long goes
}

// ---------------------------------------------------------------------------------------
// RtpTap

RtpTap::RtpTap(std::string kind, size_t index) : kind_(std::move(kind)), index_(index) {
  GstElement *src = gst_element_factory_make("appsrc", nullptr);
  appsrc_ = GPtr<GstElement>::sink(src);
  g_object_set(src, "is-live", TRUE, "do-timestamp", TRUE, "format", GST_FORMAT_TIME, "block", FALSE, "max-bytes",
               static_cast<guint64>(2 * 1024 * 1024), nullptr);
  gst_util_set_object_arg(G_OBJECT(src), "leaky-type", "downstream");  // a stalled decoder loses the oldest
}

GstElement *RtpTap::decode_in(GstBin *bin) {
  GstElement *decodebin = gst_element_factory_make("decodebin", nullptr);
  gst_bin_add_many(bin, GST_ELEMENT(gst_object_ref(appsrc_.get())), decodebin, nullptr);
  gst_element_link(appsrc_.get(), decodebin);
  return decodebin;
}

std::shared_ptr<RtpTap> RtpTap::create(const std::string &kind, size_t index) {
  return std::shared_ptr<RtpTap>(new RtpTap(kind, index));
}

RtpTap::~RtpTap() { close(); }

void RtpTap::set_source(const std::shared_ptr<Track> &track) {
  std::shared_ptr<Track> old;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    old = source_.lock();
    if (old == track) return;
    source_ = track;
    caps_set_ = false;
  }
  Track::move_sink(old, track, shared_from_this());
  if (track) track->request_keyframe();  // video starts at a keyframe
}

std::shared_ptr<Track> RtpTap::source() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return source_.lock();
}

void RtpTap::deliver(const std::shared_ptr<Track> &from, GstBuffer *buffer) {
  bool set_caps = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_ || !from || source_.lock() != from) {
      gst_buffer_unref(buffer);
      return;
    }
    set_caps = !caps_set_;
    caps_set_ = true;
  }
  if (set_caps) {
    GPtr<GstCaps> caps = from->caps();
    GST_DEBUG_OBJECT(appsrc_.get(), "first packet from a %s track: %" GST_PTR_FORMAT, kind_.c_str(), caps.get());
    if (caps) gst_app_src_set_caps(GST_APP_SRC(appsrc_.get()), caps.get());
  }
  last_packet_us_ = g_get_monotonic_time();
  // The packet carries its publisher's timestamps, from another clock and base time; appsrc's
  // do-timestamp only stamps buffers that have none, so they go.
  buffer = gst_buffer_make_writable(buffer);
  GST_BUFFER_PTS(buffer) = GST_CLOCK_TIME_NONE;
  GST_BUFFER_DTS(buffer) = GST_CLOCK_TIME_NONE;
  gst_app_src_push_buffer(GST_APP_SRC(appsrc_.get()), buffer);
}

void RtpTap::close() {
  std::shared_ptr<Track> old;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    closed_ = true;
    old = source_.lock();
    source_.reset();
  }
  if (old) old->remove_sink(this);
}

// ---------------------------------------------------------------------------------------
// TrackFeeder

TrackFeeder::TrackFeeder(GstBin *bin, std::shared_ptr<Track> track, EncoderSettings settings)
    : bin_(bin), track_(std::move(track)), settings_(settings) {
  GstElement *queue = gst_element_factory_make("queue", nullptr);
  g_object_set(queue, "max-size-buffers", 0, "max-size-bytes", 0, "max-size-time", (guint64)(2 * GST_SECOND), nullptr);
  queue_ = GPtr<GstElement>::sink(queue);
  gst_bin_add(bin_, queue);
  sink_ = GPtr<GstPad>::adopt(gst_element_get_static_pad(queue, "sink"));
  gst_pad_add_probe(sink_.get(), GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, &TrackFeeder::on_event, this, nullptr);
  gst_element_sync_state_with_parent(queue);
}

TrackFeeder::~TrackFeeder() {
  track_->clear_source();
  std::vector<GPtr<GstElement>> elements;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    elements = chain_;
  }
  elements.insert(elements.begin(), queue_);
  for (const auto &e : elements) {
    gst_element_set_state(e.get(), GST_STATE_NULL);
    if (GST_OBJECT_PARENT(e.get()) == GST_OBJECT(bin_)) gst_bin_remove(bin_, e.get());
  }
}

std::string TrackFeeder::error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

GstPadProbeReturn TrackFeeder::on_event(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *self = static_cast<TrackFeeder *>(data);
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
  if (GST_EVENT_TYPE(event) != GST_EVENT_CAPS) return GST_PAD_PROBE_OK;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    if (!self->chain_.empty()) return GST_PAD_PROBE_OK;
  }
  GstCaps *caps;
  gst_event_parse_caps(event, &caps);
  return self->build(caps) ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
}

bool TrackFeeder::build(GstCaps *caps) {
  std::vector<GstElement *> made;
  std::string summary, detail;
  if (!make_send_chain(caps, settings_, &made, &summary, &detail)) {
    GST_WARNING("cannot feed a %s track: %s (%s)", track_->kind().c_str(), summary.c_str(), detail.c_str());
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = summary + ": " + detail;
    return false;
  }
  std::vector<GPtr<GstElement>> chain;
  for (GstElement *e : made) {
    chain.push_back(GPtr<GstElement>::sink(e));
    gst_bin_add(bin_, e);
  }
  GstElement *prev = queue_.get();
  for (const auto &e : chain) {
    gst_element_link(prev, e.get());
    prev = e.get();
  }
  g_autoptr(GstPad) out = gst_element_get_static_pad(prev, "src");
  track_->set_source(out);
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) gst_element_sync_state_with_parent(it->get());
  GST_INFO("%s track fed with %" GST_PTR_FORMAT, track_->kind().c_str(), caps);
  std::lock_guard<std::mutex> lock(mutex_);
  chain_ = std::move(chain);
  return true;
}

GstElement *new_hosted_bin(const char *name) {
  GstElement *bin = gst_bin_new(name);
  g_object_set(bin, "async-handling", TRUE, nullptr);
  return bin;
}

void add_hosted_bin(GstBin *parent, GstElement *child) {
  gst_bin_add(parent, child);
  gst_element_sync_state_with_parent(child);
}

void remove_hosted_bin(GstBin *parent, GstElement *child) {
  gst_element_set_locked_state(child, TRUE);
  gst_element_set_state(child, GST_STATE_NULL);
  if (GST_OBJECT_PARENT(child) == GST_OBJECT(parent)) gst_bin_remove(parent, child);
}

// ---------------------------------------------------------------------------------------
// TranscodeHost

std::shared_ptr<Track> TranscodeHost::variant(const std::shared_ptr<Track> &source, const std::string &encoding,
                                              const VideoLayer *layer) {
  if (!can_encode(source->kind(), encoding)) return nullptr;
  std::string rid = layer ? layer->rid : "";
  std::shared_ptr<Variant> v;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto &existing : variants_)
      if (existing->source.lock() == source && existing->encoding == encoding && existing->layer.rid == rid)
        return existing->track;
    v = std::make_shared<Variant>();
    v->source = source;
    v->encoding = encoding;
    if (layer) v->layer = *layer;
    v->track = std::make_shared<Track>(source->kind());
    variants_.push_back(v);
  }
  if (!dispatch_->post([this, v] { build(v); })) return nullptr;
  return v->track;
}

// What a variant is encoded with: its encoding, and a layer's size and bitrate.
static EncoderSettings encoder_settings(const TranscodeHost::Variant &v) {
  EncoderSettings settings;
  (v.track->kind() == "audio" ? settings.audio_encoding : settings.video_encoding) = v.encoding;
  if (!v.layer.rid.empty()) {
    settings.width = v.layer.width;
    settings.height = v.layer.height;
    settings.video_bitrate = v.layer.kbps;
  }
  return settings;
}

// source track -> tap -> decodebin -> feeder (encoder for the encoding) -> variant track;
// or, with the source's raw media at hand, its tee -> feeder -> variant track.
void TranscodeHost::build(const std::shared_ptr<Variant> &v) {
  auto source = v->source.lock();
  if (!source) return;
  GstElement *bin = new_hosted_bin(nullptr);
  v->bin = GPtr<GstElement>::ref(bin);
  if (GPtr<GstElement> tee = source->raw_source()) {
    EncoderSettings settings = encoder_settings(*v);
    v->feeder = std::make_unique<TrackFeeder>(GST_BIN(bin), v->track, settings);
    GstPad *ghost = gst_ghost_pad_new("sink", v->feeder->sink_pad());
    gst_pad_set_active(ghost, TRUE);
    gst_element_add_pad(bin, ghost);
    add_hosted_bin(bin_, bin);
    v->raw_tee = tee;
    v->tee_pad = GPtr<GstPad>::adopt(gst_element_request_pad_simple(tee.get(), "src_%u"));
    if (v->tee_pad) gst_pad_link(v->tee_pad.get(), ghost);
    GST_INFO("encoding raw %s to %s for a variant", source->kind().c_str(), v->encoding.c_str());
    return;
  }
  v->tap = RtpTap::create(source->kind());
  GstElement *decodebin = v->tap->decode_in(GST_BIN(bin));
  EncoderSettings settings = encoder_settings(*v);
  struct Ctx {
    std::weak_ptr<Variant> variant;
    EncoderSettings settings;
  };
  g_signal_connect_data(decodebin, "pad-added", G_CALLBACK(+[](GstElement *dbin, GstPad *pad, gpointer d) {
                          auto *ctx = static_cast<Ctx *>(d);
                          auto v = ctx->variant.lock();
                          if (!v || v->feeder) return;
                          GstBin *parent = GST_BIN(GST_OBJECT_PARENT(dbin));
                          v->feeder = std::make_unique<TrackFeeder>(parent, v->track, ctx->settings);
                          gst_pad_link(pad, v->feeder->sink_pad());
                        }),
                        new Ctx{v, settings}, [](gpointer d, GClosure *) { delete static_cast<Ctx *>(d); },
                        static_cast<GConnectFlags>(0));
  add_hosted_bin(bin_, bin);
  v->tap->set_source(source);
  GST_INFO("transcoding a %s %s track to %s", source->codec().encoding.c_str(), source->kind().c_str(),
           v->encoding.c_str());
}

void TranscodeHost::tear_down(const std::shared_ptr<Variant> &v) {
  if (v->tap) v->tap->close();
  if (v->tee_pad) {
    // Unlinked first: the tee (allow-not-linked) goes on feeding the other branches.
    GstPad *peer = gst_pad_get_peer(v->tee_pad.get());
    if (peer) {
      gst_pad_unlink(v->tee_pad.get(), peer);
      gst_object_unref(peer);
    }
    gst_element_release_request_pad(v->raw_tee.get(), v->tee_pad.get());
    v->tee_pad.reset();
    v->raw_tee.reset();
  }
  v->track->clear_source();
  if (v->bin) remove_hosted_bin(bin_, v->bin.get());
  v->feeder.reset();
  v->bin.reset();
}

void TranscodeHost::tick() {
  gint64 now = g_get_monotonic_time();
  std::vector<std::shared_ptr<Variant>> gone;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = variants_.begin(); it != variants_.end();) {
      auto &v = *it;
      bool used = v->track->sink_count() > 0 && !v->source.expired();
      if (used) v->unused_since = 0;
      else if (!v->unused_since) v->unused_since = now;
      if (!used && now - v->unused_since > kVariantIdleUs) {
        gone.push_back(v);
        it = variants_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto &v : gone) tear_down(v);
}

void TranscodeHost::stop() {
  std::vector<std::shared_ptr<Variant>> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    all.swap(variants_);
  }
  for (const auto &v : all) tear_down(v);
}

size_t TranscodeHost::count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return variants_.size();
}

}  // namespace wish
