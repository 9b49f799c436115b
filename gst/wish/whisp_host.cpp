#include "whisp_host.h"

#include <atomic>

#include "protocol/ice_servers.h"

GST_DEBUG_CATEGORY_EXTERN(wish_whisp_debug);
#define GST_CAT_DEFAULT wish_whisp_debug

namespace wish {

namespace {

constexpr int kCanvasWidth = 1280, kCanvasHeight = 720;
constexpr gint64 kSecondaryGoneUs = 1 * G_USEC_PER_SEC;  // a secondary silent this long leaves the picture
constexpr guint kGrabHoldMs = 5000;  // 0x0 (mobility): the old publisher may still send meanwhile
constexpr guint64 kMixLatency = 100 * GST_MSECOND;
constexpr GstClockTimeDiff kPaceHeadroom = 200 * GST_MSECOND;  // a file's first frames are not late

GstClockTimeDiff running_time_now(GstElement *element) {
  g_autoptr(GstClock) clock = gst_element_get_clock(element);
  if (!clock) return 0;
  return GST_CLOCK_DIFF(gst_element_get_base_time(element), gst_clock_get_time(clock));
}

bool is_whep_url(const std::string &url) { return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0; }

struct Region {
  int x, y, w, h, zorder;
};

// Where main and secondary go on the canvas for a template.
void template_regions(const std::string &id, Region *main, Region *secondary) {
  if (id == "02") {
    *main = {0, 0, kCanvasWidth / 2, kCanvasHeight, 0};
    *secondary = {kCanvasWidth / 2, 0, kCanvasWidth / 2, kCanvasHeight, 0};
  } else if (id == "03") {
    *main = {0, 0, kCanvasWidth, kCanvasHeight / 2, 0};
    *secondary = {0, kCanvasHeight / 2, kCanvasWidth, kCanvasHeight / 2, 0};
  } else {  // "01": picture-in-picture
    *main = {0, 0, kCanvasWidth, kCanvasHeight, 0};
    *secondary = {944, 524, 320, 180, 1};
  }
}

void place(GstPad *pad, const Region &r, double alpha) {
  if (!pad) return;
  g_object_set(pad, "xpos", r.x, "ypos", r.y, "width", r.w, "height", r.h, "zorder", static_cast<guint>(r.zorder),
               "alpha", alpha, nullptr);
}

}  // namespace

struct WhispHost::Pull {
  std::string id, url;
  std::shared_ptr<Stream> stream;
  GPtr<GstElement> bin;
  std::mutex feeders_mutex;  // guards feeders: made on streaming threads
  std::vector<std::unique_ptr<TrackFeeder>> feeders;
  GstClockTimeDiff pace_offset = -1;  // under feeders_mutex: running time a file's media starts at
  std::atomic<int> open_pads{0};      // pads that have not reached their end
  std::atomic<bool> media_ended{false};
  std::vector<WhispCallback> waiting;  // worker only
  gint64 deadline_us = 0;
  bool ready = false;  // worker only
  std::string error;   // under WhispHost::mutex_
};

struct WhispHost::Merge {
  std::string id, template_id, main, secondary;
  std::shared_ptr<Stream> stream;
  GPtr<GstElement> bin, compositor, audiomixer;
  std::shared_ptr<Slot> main_slot, secondary_slot;
  std::shared_ptr<RtpTap> secondary_video;
  std::unique_ptr<TrackFeeder> video_feeder, audio_feeder;
  std::mutex pads_mutex;  // guards the compositor pads: requested on streaming threads
  GPtr<GstPad> main_pad, secondary_pad;
  bool secondary_shown = false;  // worker only
  std::atomic<bool> pads_added{false};  // set on a streaming thread: the worker lays them out again
};

WhispHost::WhispHost(GstElement *element, std::shared_ptr<Dispatcher> dispatch,
                     std::shared_ptr<StreamRegistry> registry, Settings settings)
    : element_(element), dispatch_(std::move(dispatch)), registry_(std::move(registry)), settings_(std::move(settings)) {
  registry_->set_grabbing(true);
}

WhispHost::~WhispHost() { registry_->set_grabbing(false); }

int WhispHost::kinds_of(const WhispMedia &m) {
  bool audio = !m.amsid.empty(), video = !m.vmsid.empty();
  if (audio == video) return StreamRegistry::kAllKinds;
  return video ? StreamRegistry::kVideo : StreamRegistry::kAudio;
}

void WhispHost::post_message(const char *action, const std::string &id, GstStructure *fields) {
  GstStructure *s = fields ? fields : gst_structure_new_empty("wish-whisp");
  gst_structure_set_name(s, "wish-whisp");
  gst_structure_set(s, "action", G_TYPE_STRING, action, "id", G_TYPE_STRING, id.c_str(), nullptr);
  gst_element_post_message(element_, gst_message_new_element(GST_OBJECT(element_), s));
}

// ---------------------------------------------------------------------------------------
// Pulling

void WhispHost::pull(const WhispRequest &request, WhispCallback done) {
  const std::string &url = request.media.url;
  bool allowed = false;
  for (const auto &prefix : settings_.pull_allow) allowed = allowed || (!prefix.empty() && url.rfind(prefix, 0) == 0);
  if (!allowed) {
    done(WhispResult::refused(403, settings_.pull_allow.empty() ? "pulling is off (whisp-pull-allow is empty)"
                                                                : url + " is not allowed by whisp-pull-allow"));
    return;
  }
  if (!dispatch_->post([this, url, done] {
        std::shared_ptr<Pull> existing;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          for (const auto &kv : pulls_)
            if (kv.second->url == url) existing = kv.second;
        }
        if (existing) {  // the same URL again: the pull there is
          auto again = [done](WhispResult r) {
            if (r.status == 201) r.status = 200, r.existing = true;
            done(r);
          };
          if (existing->ready) {
            WhispResult r = WhispResult::ok(200);
            r.resource = existing->id;
            r.stream = existing->stream->name();
            r.url = registry_->whep_url(r.stream);
            r.existing = true;
            done(r);
          } else {
            existing->waiting.push_back(again);
          }
          return;
        }
        auto p = std::make_shared<Pull>();
        p->id = random_hex(4);
        p->url = url;
        p->stream = std::make_shared<Stream>("pull-" + p->id, "whisp pull of " + url);
        p->stream->set_msids({p->stream->name() + "-audio", p->stream->name() + "-video"});
        p->deadline_us = g_get_monotonic_time() + static_cast<gint64>(settings_.pull_timeout_s) * G_USEC_PER_SEC;
        p->waiting.push_back(done);
        if (!registry_->add(p->stream)) {
          done(WhispResult::refused(500, "stream name taken"));
          return;
        }
        {
          std::lock_guard<std::mutex> lock(mutex_);
          pulls_[p->id] = p;
        }
        start_pull(p);
      }))
    done(WhispResult::refused(503, "the element is stopping"));
}

// A sub-bin with whepsrc (WHEP URLs: encoded media taken as it comes) or uridecodebin (other
// URIs: stopped at encoded media it can, decoded otherwise), each stream fed into a track.
void WhispHost::start_pull(const std::shared_ptr<Pull> &p) {
  GstElement *bin = new_hosted_bin(("pull-" + p->id).c_str());
  p->bin = GPtr<GstElement>::ref(bin);
  bool whep = is_whep_url(p->url);
  GstElement *src = gst_element_factory_make(whep ? "whepsrc" : "uridecodebin", nullptr);
  if (!src) {
    std::lock_guard<std::mutex> lock(mutex_);
    p->error = std::string(whep ? "whepsrc" : "uridecodebin") + " is not available";
    gst_object_unref(gst_object_ref_sink(bin));
    p->bin.reset();
    return;
  }
  if (whep) {
    g_object_set(src, "whep-endpoint", p->url.c_str(), "ice-local-addresses", settings_.ice_local_addresses.c_str(),
                 "ice-port-range", settings_.ice_port_range.c_str(), nullptr);
  } else {
    GPtr<GstCaps> stop = GPtr<GstCaps>::adopt(gst_caps_from_string(
        "video/x-h264; video/x-vp8; video/x-vp9; audio/x-opus; video/x-raw(ANY); audio/x-raw(ANY)"));
    g_object_set(src, "uri", p->url.c_str(), "caps", stop.get(), nullptr);
  }
  struct Ctx {
    std::weak_ptr<Pull> pull;
    EncoderSettings encoder;
    bool whep;
    GstElement *element;
  };
  g_signal_connect_data(
      src, "pad-added", G_CALLBACK(+[](GstElement *el, GstPad *pad, gpointer d) {
        auto *ctx = static_cast<Ctx *>(d);
        auto p = ctx->pull.lock();
        if (!p) return;
        std::string kind;
        if (ctx->whep) {
          kind = g_str_has_prefix(GST_PAD_NAME(pad), "audio") ? "audio" : "video";
        } else {
          g_autoptr(GstCaps) caps = gst_pad_get_current_caps(pad);
          if (!caps) caps = gst_pad_query_caps(pad, nullptr);
          const gchar *name = gst_structure_get_name(gst_caps_get_structure(caps, 0));
          if (g_str_has_prefix(name, "video/")) kind = "video";
          else if (g_str_has_prefix(name, "audio/")) kind = "audio";
          else return;
        }
        std::shared_ptr<Track> track = p->stream->track(kind, 0);
        if (track && track->has_caps()) return;  // one track of a kind
        if (!track) track = p->stream->add_track(kind);
        GstBin *bin = GST_BIN(GST_OBJECT_PARENT(el));
        auto feeder = std::make_unique<TrackFeeder>(bin, track, ctx->encoder);
        GstPad *into = feeder->sink_pad();
        if (ctx->whep) {
          // whepsrc hands over encoded media when downstream takes it, known at pad-added.
          GstElement *filter = gst_element_factory_make("capsfilter", nullptr);
          g_autoptr(GstCaps) encoded = gst_caps_from_string(kind == "video" ? "video/x-h264; video/x-vp8; video/x-vp9"
                                                                            : "audio/x-opus");
          g_object_set(filter, "caps", encoded, nullptr);
          gst_bin_add(bin, filter);
          g_autoptr(GstPad) fsrc = gst_element_get_static_pad(filter, "src");
          gst_pad_link(fsrc, into);
          gst_element_sync_state_with_parent(filter);
          into = gst_element_get_static_pad(filter, "sink");
          gst_pad_link(pad, into);
          gst_object_unref(into);
        } else {
          // A file plays as fast as it decodes: paced by the clock from now on, as if live.
          GstElement *pace = gst_element_factory_make("clocksync", nullptr);
          {
            std::lock_guard<std::mutex> lock(p->feeders_mutex);
            if (p->pace_offset < 0) p->pace_offset = running_time_now(ctx->element) + kPaceHeadroom;
            g_object_set(pace, "ts-offset", p->pace_offset, nullptr);
          }
          gst_bin_add(bin, pace);
          g_autoptr(GstPad) psrc = gst_element_get_static_pad(pace, "src");
          g_autoptr(GstPad) psink = gst_element_get_static_pad(pace, "sink");
          gst_pad_link(psrc, into);
          gst_element_sync_state_with_parent(pace);
          gst_pad_link(pad, psink);
          // When every pad of it has ended, so does the pull.
          p->open_pads++;
          gst_pad_add_probe(psink, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
                            +[](GstPad *, GstPadProbeInfo *info, gpointer d) {
                              if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) != GST_EVENT_EOS) return GST_PAD_PROBE_OK;
                              auto *pull = static_cast<Pull *>(d);
                              if (--pull->open_pads == 0) pull->media_ended = true;
                              return GST_PAD_PROBE_DROP;
                            },
                            p.get(), nullptr);
        }
        std::lock_guard<std::mutex> lock(p->feeders_mutex);
        p->feeders.push_back(std::move(feeder));
      }),
      new Ctx{p, settings_.encoder, whep, element_}, [](gpointer d, GClosure *) { delete static_cast<Ctx *>(d); },
      static_cast<GConnectFlags>(0));
  gst_bin_add(GST_BIN(bin), src);
  p->stream->set_live(true);
  add_hosted_bin(GST_BIN(element_), bin);
  GST_INFO_OBJECT(element_, "pulling %s as stream %s", p->url.c_str(), p->stream->name().c_str());
}

void WhispHost::end_pull(const std::shared_ptr<Pull> &p, const std::string &reason) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pulls_.erase(p->id);
  }
  registry_->remove(p->stream);
  if (p->bin) remove_hosted_bin(GST_BIN(element_), p->bin.get());
  {
    std::lock_guard<std::mutex> lock(p->feeders_mutex);
    p->feeders.clear();
  }
  p->bin.reset();
  GST_INFO_OBJECT(element_, "pull of %s ended: %s", p->url.c_str(), reason.c_str());
  post_message("pull-ended", p->id,
               gst_structure_new("wish-whisp", "url", G_TYPE_STRING, p->url.c_str(), "reason", G_TYPE_STRING,
                                 reason.c_str(), nullptr));
}

bool WhispHost::handle_message(GstMessage *message) {
  if (GST_MESSAGE_TYPE(message) != GST_MESSAGE_ERROR) return false;
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto &kv : pulls_) {
    auto &p = kv.second;
    if (!p->bin || !gst_object_has_as_ancestor(GST_MESSAGE_SRC(message), GST_OBJECT(p->bin.get()))) continue;
    if (p->error.empty()) {
      g_autoptr(GError) err = nullptr;
      g_autofree gchar *dbg = nullptr;
      gst_message_parse_error(message, &err, &dbg);
      p->error = err ? err->message : "error";
      if (dbg) p->error += std::string(" (") + dbg + ")";
      GST_INFO_OBJECT(element_, "pull of %s failed: %s", p->url.c_str(), p->error.c_str());
    }
    return true;  // the pull fails; the pipeline goes on
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Switching

void WhispHost::switch_streams(const WhispRequest &request, WhispCallback done) {
  if (!dispatch_->post([this, request, done] {
        std::string from = registry_->name_of(request.media.url), to = registry_->name_of(request.other.url);
        int kinds = kinds_of(request.media) & kinds_of(request.other);
        if (!kinds) kinds = StreamRegistry::kAllKinds;
        std::string error;
        unsigned status = 500;
        if (!registry_->switch_stream(from, to, &error, &status, kinds)) {
          done(WhispResult::refused(status, error));
          return;
        }
        std::string id;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          for (auto it = switches_.begin(); it != switches_.end();)  // replaced, or switched back
            it = it->second.from == from ? switches_.erase(it) : std::next(it);
          if (to != from) {
            id = random_hex(4);
            switches_[id] = {from, to, kinds};
          }
        }
        WhispResult r = WhispResult::ok(to == from ? 200 : 201);
        r.resource = id;
        done(r);
        post_message(to == from ? "switched-back" : "switched", id,
                     gst_structure_new("wish-whisp", "source", G_TYPE_STRING, from.c_str(), "destination",
                                       G_TYPE_STRING, to.c_str(), nullptr));
      }))
    done(WhispResult::refused(503, "the element is stopping"));
}

// ---------------------------------------------------------------------------------------
// Merging

void WhispHost::merge(const WhispRequest &request, WhispCallback done) {
  if (!dispatch_->post([this, request, done] {
        auto m = std::make_shared<Merge>();
        m->id = random_hex(4);
        m->template_id = request.template_id;
        m->main = registry_->name_of(request.media.url);
        m->secondary = registry_->name_of(request.other.url);
        for (const auto &name : {m->main, m->secondary})
          if (!registry_->find(name)) {
            done(WhispResult::refused(404, "no stream named '" + name + "'"));
            return;
          }
        m->stream = std::make_shared<Stream>("merge-" + m->id, "whisp merge of " + m->main + " and " + m->secondary);
        m->stream->set_msids({m->stream->name() + "-audio", m->stream->name() + "-video"});
        m->main_slot = std::make_shared<Slot>(m->main, false);
        m->secondary_slot = std::make_shared<Slot>(m->secondary, false);
        int main_kinds = kinds_of(request.media), secondary_kinds = kinds_of(request.other);
        for (int i = 0; i < 2; i++) {
          int kinds = i == 0 ? main_kinds : secondary_kinds;
          auto &slot = i == 0 ? m->main_slot : m->secondary_slot;
          for (const char *kind : {"video", "audio"}) {
            if (!StreamRegistry::has_kind(kinds, kind)) continue;
            auto tap = RtpTap::create(kind);
            slot->add_output(tap);
            if (i == 1 && g_str_equal(kind, "video")) m->secondary_video = tap;
          }
        }
        start_merge(m);
        if (!registry_->add(m->stream)) {
          end_merge(m);
          done(WhispResult::refused(500, "stream name taken"));
          return;
        }
        registry_->join(m->main_slot);
        registry_->join(m->secondary_slot);
        {
          std::lock_guard<std::mutex> lock(mutex_);
          merges_[m->id] = m;
        }
        WhispResult r = WhispResult::ok(201);
        r.resource = m->id;
        r.stream = m->stream->name();
        r.url = registry_->whep_url(r.stream);
        done(r);
        post_message("merged", m->id,
                     gst_structure_new("wish-whisp", "main", G_TYPE_STRING, m->main.c_str(), "secondary", G_TYPE_STRING,
                                       m->secondary.c_str(), "template", G_TYPE_STRING, m->template_id.c_str(),
                                       "stream", G_TYPE_STRING, r.stream.c_str(), nullptr));
      }))
    done(WhispResult::refused(503, "the element is stopping"));
}

// A decoded input of a merge (streaming thread): converted, and into the compositor (placed
// by the template, a secondary hidden until its media flows) or the audio mixer.
void WhispHost::on_merge_input(GstElement *dbin, GstPad *pad, gpointer data) {
  auto *input = static_cast<MergeInput *>(data);
  auto m = input->merge.lock();
  if (!m) return;
  g_autoptr(GstCaps) caps = gst_pad_query_caps(pad, nullptr);
  bool video = g_str_has_prefix(gst_structure_get_name(gst_caps_get_structure(caps, 0)), "video");
  GST_DEBUG_OBJECT(dbin, "merge %s: decoded %s input %" GST_PTR_FORMAT, m->id.c_str(), input->main ? "main" : "secondary",
                   caps);
  GstBin *bin = GST_BIN(GST_OBJECT_PARENT(dbin));
  GstElement *convert = gst_element_factory_make(video ? "videoconvert" : "audioconvert", nullptr);
  GstElement *last = convert;
  gst_bin_add(bin, convert);
  if (!video) {
    last = gst_element_factory_make("audioresample", nullptr);
    gst_bin_add(bin, last);
    gst_element_link(convert, last);
  }
  GstElement *mixer = video ? m->compositor.get() : m->audiomixer.get();
  GPtr<GstPad> sink = GPtr<GstPad>::adopt(gst_element_request_pad_simple(mixer, "sink_%u"));
  if (video) {
    gst_util_set_object_arg(G_OBJECT(sink.get()), "sizing-policy", "keep-aspect-ratio");
    Region main_r, secondary_r, full{0, 0, kCanvasWidth, kCanvasHeight, 0};
    template_regions(m->template_id, &main_r, &secondary_r);
    // A secondary starts hidden; the first tick after its media arrives shows it.
    if (input->main)
      place(sink.get(), full, 1.0);
    else
      place(sink.get(), secondary_r, 0.0);
    {
      std::lock_guard<std::mutex> lock(m->pads_mutex);
      (input->main ? m->main_pad : m->secondary_pad) = sink;
    }
    m->pads_added = true;
  }
  g_autoptr(GstPad) out = gst_element_get_static_pad(last, "src");
  gst_pad_link(out, sink.get());
  gst_element_sync_state_with_parent(last);
  if (last != convert) gst_element_sync_state_with_parent(convert);
  g_autoptr(GstPad) in = gst_element_get_static_pad(convert, "sink");
  gst_pad_link(pad, in);
}

// tap -> decodebin -> compositor / audiomixer -> fixed caps -> feeder -> the merged stream's tracks
void WhispHost::start_merge(const std::shared_ptr<Merge> &m) {
  GstElement *bin = new_hosted_bin(("merge-" + m->id).c_str());
  m->bin = GPtr<GstElement>::ref(bin);
  GstElement *compositor = gst_element_factory_make("compositor", nullptr);
  GstElement *audiomixer = gst_element_factory_make("audiomixer", nullptr);
  GstElement *vfilter = gst_element_factory_make("capsfilter", nullptr);
  GstElement *afilter = gst_element_factory_make("capsfilter", nullptr);
  g_autoptr(GstCaps) vcaps = gst_caps_new_simple("video/x-raw", "width", G_TYPE_INT, kCanvasWidth, "height", G_TYPE_INT,
                                                 kCanvasHeight, "framerate", GST_TYPE_FRACTION, 30, 1,
                                                 "pixel-aspect-ratio", GST_TYPE_FRACTION, 1, 1, nullptr);
  g_autoptr(GstCaps) acaps = gst_caps_new_simple("audio/x-raw", "rate", G_TYPE_INT, 48000, "channels", G_TYPE_INT, 2, nullptr);
  g_object_set(vfilter, "caps", vcaps, nullptr);
  g_object_set(afilter, "caps", acaps, nullptr);
  // Live: the output starts at the first input's running time (the pipeline has been
  // playing for a while when a merge is made), waits kMixLatency for late inputs.
  for (GstElement *mixer : {compositor, audiomixer}) {
    g_object_set(mixer, "latency", kMixLatency, nullptr);
    gst_util_set_object_arg(G_OBJECT(mixer), "start-time-selection", "first");
  }
  gst_util_set_object_arg(G_OBJECT(compositor), "background", "black");
  m->compositor = GPtr<GstElement>::ref(compositor);
  m->audiomixer = GPtr<GstElement>::ref(audiomixer);
  gst_bin_add_many(GST_BIN(bin), compositor, vfilter, audiomixer, afilter, nullptr);
  gst_element_link(compositor, vfilter);
  gst_element_link(audiomixer, afilter);
  m->video_feeder = std::make_unique<TrackFeeder>(GST_BIN(bin), m->stream->add_track("video"), settings_.encoder);
  m->audio_feeder = std::make_unique<TrackFeeder>(GST_BIN(bin), m->stream->add_track("audio"), settings_.encoder);
  g_autoptr(GstPad) vsrc = gst_element_get_static_pad(vfilter, "src");
  g_autoptr(GstPad) asrc = gst_element_get_static_pad(afilter, "src");
  gst_pad_link(vsrc, m->video_feeder->sink_pad());
  gst_pad_link(asrc, m->audio_feeder->sink_pad());

  for (const auto &slot : {m->main_slot, m->secondary_slot})
    for (const auto &out : slot->outputs()) {
      GstElement *decodebin = std::static_pointer_cast<RtpTap>(out)->decode_in(GST_BIN(bin));
      g_signal_connect_data(decodebin, "pad-added", G_CALLBACK(&WhispHost::on_merge_input),
                            new MergeInput{m, slot == m->main_slot},
                            [](gpointer d, GClosure *) { delete static_cast<MergeInput *>(d); },
                            static_cast<GConnectFlags>(0));
    }
  m->stream->set_live(true);
  add_hosted_bin(GST_BIN(element_), bin);
  GST_INFO_OBJECT(element_, "merging %s and %s with template %s as stream %s", m->main.c_str(), m->secondary.c_str(),
                  m->template_id.c_str(), m->stream->name().c_str());
}

// The secondary is shown by its template while its video flows; otherwise the main fills the
// picture.
void WhispHost::layout_merge(Merge &m, bool secondary_shown) {
  Region main_r, secondary_r;
  template_regions(m.template_id, &main_r, &secondary_r);
  GPtr<GstPad> main_pad, secondary_pad;
  {
    std::lock_guard<std::mutex> lock(m.pads_mutex);
    main_pad = m.main_pad;
    secondary_pad = m.secondary_pad;
  }
  if (secondary_shown) {
    place(main_pad.get(), main_r, 1.0);
    place(secondary_pad.get(), secondary_r, 1.0);
  } else {
    Region full{0, 0, kCanvasWidth, kCanvasHeight, 0};
    place(main_pad.get(), full, 1.0);
    place(secondary_pad.get(), secondary_r, 0.0);
  }
  m.secondary_shown = secondary_shown;
  GST_INFO_OBJECT(element_, "merge %s: secondary %s", m.id.c_str(), secondary_shown ? "shown" : "gone, main fills");
}

void WhispHost::end_merge(const std::shared_ptr<Merge> &m) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    merges_.erase(m->id);
  }
  registry_->remove(m->stream);  // viewers switched to it see their own streams again
  registry_->leave(m->main_slot.get());
  registry_->leave(m->secondary_slot.get());
  m->main_slot->close();
  m->secondary_slot->close();
  if (m->bin) remove_hosted_bin(GST_BIN(element_), m->bin.get());
  m->video_feeder.reset();
  m->audio_feeder.reset();
  {
    std::lock_guard<std::mutex> lock(m->pads_mutex);
    m->main_pad.reset();
    m->secondary_pad.reset();
  }
  m->bin.reset();
}

// ---------------------------------------------------------------------------------------
// Grabbing

// The new media, found by its media ID among the streams, takes over the stream the URL
// names: its viewers, their switches and the merges of it show the new media from now on,
// and the stream's old publisher goes (after kGrabHoldMs for 0x0, at once otherwise).
void WhispHost::grab(const WhispRequest &request, WhispCallback done) {
  if (!dispatch_->post([this, request, done] {
        std::string target = registry_->name_of(request.media.url);
        auto old = registry_->media_of(target);  // what shows now: the stream, or an earlier grabber
        if (!old || !registry_->find(target)) {
          done(WhispResult::refused(404, "no stream named '" + target + "'"));
          return;
        }
        std::vector<std::string> ids = request.media.amsid;
        ids.insert(ids.end(), request.media.vmsid.begin(), request.media.vmsid.end());
        if (ids.empty()) {
          done(WhispResult::refused(422, "grabbing names the new media by its \"media ID\" (amsid, vmsid)"));
          return;
        }
        std::shared_ptr<Stream> taker;
        for (const auto &s : registry_->streams())
          if (s != old && s->name() != target && s->carries_msid(ids)) taker = s;
        if (!taker) {
          done(WhispResult::refused(404, "no stream carries the media ID given"));
          return;
        }
        std::string error;
        unsigned status = 500;
        if (!registry_->take_over(target, taker->name(), &error, &status)) {
          done(WhispResult::refused(status, error));
          return;
        }
        old->end_source(request.error_code == 0 ? kGrabHoldMs : 0, "grabbed");
        done(WhispResult::ok(200));
        post_message("grabbed", target,
                     gst_structure_new("wish-whisp", "stream", G_TYPE_STRING, target.c_str(), "by", G_TYPE_STRING,
                                       taker->name().c_str(), "error-code", G_TYPE_INT, request.error_code, nullptr));
      }))
    done(WhispResult::refused(503, "the element is stopping"));
}

// ---------------------------------------------------------------------------------------

unsigned WhispHost::end(WhispMessage kind, const std::string &id) {
  std::shared_ptr<Pull> pull;
  std::shared_ptr<Merge> merge;
  Switch sw{"", "", 0};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (kind == WhispMessage::Pulling && pulls_.count(id)) pull = pulls_[id];
    if (kind == WhispMessage::Merging && merges_.count(id)) merge = merges_[id];
    if (kind == WhispMessage::Switching && switches_.count(id)) {
      sw = switches_[id];
      switches_.erase(id);
    }
  }
  if (!sw.from.empty() && !still_switched(sw)) sw = Switch{"", "", 0};  // ended with its destination
  if (!pull && !merge && sw.from.empty()) return 404;
  bool posted = dispatch_->post([this, pull, merge, sw, id] {
    if (pull) end_pull(pull, "deleted");
    if (merge) {
      end_merge(merge);
      post_message("merge-ended", id);
    }
    if (!sw.from.empty()) {
      switch_back(sw);
      post_message("switched-back", id, gst_structure_new("wish-whisp", "source", G_TYPE_STRING, sw.from.c_str(), nullptr));
    }
  });
  return posted ? 200 : 503;
}

bool WhispHost::still_switched(const Switch &sw) const {
  for (const char *kind : {"video", "audio"})
    if (StreamRegistry::has_kind(sw.kinds, kind) && registry_->switched_to(sw.from, kind) == sw.to)
      return true;
  return false;
}

void WhispHost::snapshot(std::vector<std::shared_ptr<Pull>> *pulls, std::vector<std::shared_ptr<Merge>> *merges,
                         std::map<std::string, Switch> *switches, bool take_switches) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto &kv : pulls_) pulls->push_back(kv.second);
  for (const auto &kv : merges_) merges->push_back(kv.second);
  if (take_switches)
    switches->swap(switches_);
  else
    *switches = switches_;
}

void WhispHost::tick() {
  std::vector<std::shared_ptr<Pull>> pulls;
  std::vector<std::shared_ptr<Merge>> merges;
  std::map<std::string, Switch> switches;
  snapshot(&pulls, &merges, &switches, false);
  // A switch whose destination ended is over: its viewers see the source again.
  for (const auto &kv : switches) {
    if (still_switched(kv.second)) continue;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      switches_.erase(kv.first);
    }
    post_message("switched-back", kv.first,
                 gst_structure_new("wish-whisp", "source", G_TYPE_STRING, kv.second.from.c_str(), "reason",
                                   G_TYPE_STRING, "the destination ended", nullptr));
  }
  gint64 now = g_get_monotonic_time();
  for (const auto &p : pulls) {
    std::string error;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      error = p->error;
    }
    {
      std::lock_guard<std::mutex> lock(p->feeders_mutex);
      for (const auto &f : p->feeders)
        if (error.empty()) error = f->error();
    }
    if (!error.empty()) {
      answer_pull(p, WhispResult::refused(502, "the upstream refused: " + error), "failed: " + error);
      continue;
    }
    if (p->media_ended) {
      answer_pull(p, WhispResult::refused(502, p->url + " ended before its media could be served"), "end of stream");
      continue;
    }
    if (!p->ready && p->stream->ready()) {
      p->ready = true;
      WhispResult r = WhispResult::ok(201);
      r.resource = p->id;
      r.stream = p->stream->name();
      r.url = registry_->whep_url(r.stream);
      answer_pull(p, r);
      post_message("pulled", p->id,
                   gst_structure_new("wish-whisp", "url", G_TYPE_STRING, p->url.c_str(), "stream", G_TYPE_STRING,
                                     r.stream.c_str(), nullptr));
    } else if (!p->ready && now > p->deadline_us) {
      answer_pull(p,
                  WhispResult::refused(504, "nothing came from " + p->url + " within " +
                                                std::to_string(settings_.pull_timeout_s) + " s"),
                  "timeout");
    }
  }
  for (const auto &m : merges) {
    bool flowing = m->secondary_video && now - m->secondary_video->last_packet_us() < kSecondaryGoneUs;
    if (flowing != m->secondary_shown || m->pads_added.exchange(false)) layout_merge(*m, flowing);
  }
}

void WhispHost::stop() {
  std::vector<std::shared_ptr<Pull>> pulls;
  std::vector<std::shared_ptr<Merge>> merges;
  std::map<std::string, Switch> switches;
  snapshot(&pulls, &merges, &switches, true);
  for (const auto &p : pulls) answer_pull(p, WhispResult::refused(503, "the server is stopping"), "stopped");
  for (const auto &m : merges) end_merge(m);
  for (const auto &kv : switches) switch_back(kv.second);
}

void WhispHost::answer_pull(const std::shared_ptr<Pull> &p, const WhispResult &result, const std::string &reason) {
  for (auto &w : p->waiting) w(result);
  p->waiting.clear();
  if (result.status >= 300) end_pull(p, reason);
}

void WhispHost::switch_back(const Switch &sw) {
  std::string error;
  registry_->switch_stream(sw.from, "", &error, nullptr, sw.kinds);
}

}  // namespace wish
