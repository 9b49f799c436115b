// whepserversink's viewers once their sessions exist: connected, leaving, the layer they
// see, and what the element reports about them (stats, messages, metrics).
#include <gst/gst.h>

#include <algorithm>
#include <ctime>

#include "protocol/metrics.h"
#include "protocol/sdp.h"
#include "stream_registry.h"
#include "webrtc_utils.h"
#include "whep_server.h"

GST_DEBUG_CATEGORY_EXTERN(whepserversink_debug);
#define GST_CAT_DEFAULT whepserversink_debug

namespace wish {

std::string RtxSsrcs::edit(const std::string &answer) {
  std::map<uint32_t, uint32_t> change;  // webrtcbin's draw -> ours
  {
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto &kv : rtx_ssrcs(answer)) {
      uint32_t ours = lease.take();
      change[kv.second] = ours;
      map[kv.first] = ours;
    }
  }
  return change.empty() ? answer : replace_ssrcs(answer, change);
}

bool RtxSsrcs::apply(GstElement *rtxsend) {
  GstStructure *s = gst_structure_new_empty("application/x-rtp-ssrc-map");
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (map.empty()) {
      gst_structure_free(s);
      return false;
    }
    for (const auto &kv : map) gst_structure_set(s, std::to_string(kv.first).c_str(), G_TYPE_UINT, kv.second, nullptr);
  }
  g_object_set(rtxsend, "ssrc-map", s, nullptr);
  gst_structure_free(s);
  return true;
}

// rtprtxsend picks the retransmission SSRC of a stream from its ssrc-map (write-only: no
// notify) when the stream's first packet passes, and keeps it. webrtcbin sets that map from
// the SSRCs it drew, more than once while it applies the answer: ours is set just before
// the first packet, once the answer is applied.
static GstPadProbeReturn before_first_packet(GstPad *pad, GstPadProbeInfo *, gpointer data) {
  GstElement *rtxsend = gst_pad_get_parent_element(pad);
  bool applied = rtxsend && (*static_cast<std::shared_ptr<RtxSsrcs> *>(data))->apply(rtxsend);
  if (rtxsend) gst_object_unref(rtxsend);
  return applied ? GST_PAD_PROBE_REMOVE : GST_PAD_PROBE_OK;
}

static void on_deep_element_added(GstBin *, GstBin *, GstElement *element, gpointer data) {
  GstElementFactory *f = gst_element_get_factory(element);
  if (!f || !g_str_equal(GST_OBJECT_NAME(f), "rtprtxsend")) return;
  GstPad *sink = gst_element_get_static_pad(element, "sink");
  if (!sink) return;
  gst_pad_add_probe(sink, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                    before_first_packet, new std::shared_ptr<RtxSsrcs>(*static_cast<std::shared_ptr<RtxSsrcs> *>(data)),
                    [](gpointer d) { delete static_cast<std::shared_ptr<RtxSsrcs> *>(d); });
  gst_object_unref(sink);
}

void RtxSsrcs::watch(GstElement *webrtcbin, const std::shared_ptr<RtxSsrcs> &rtx) {
  g_signal_connect_data(webrtcbin, "deep-element-added", G_CALLBACK(on_deep_element_added),
                        new std::shared_ptr<RtxSsrcs>(rtx),
                        [](gpointer d, GClosure *) { delete static_cast<std::shared_ptr<RtxSsrcs> *>(d); },
                        static_cast<GConnectFlags>(0));
}

SdpEdit WhepServer::answer_edit(ServerSession &session) {
  std::shared_ptr<RtxSsrcs> rtx = static_cast<Viewer &>(session).rtx;
  return [rtx](const std::string &answer) { return rtx->edit(answer); };
}

// video-layers must read as a ladder before anything is served.
bool WhepServer::on_start(std::string *error) {
  GST_OBJECT_LOCK(element());
  std::string spec = settings.video_layers;
  GST_OBJECT_UNLOCK(element());
  if (!parse_video_layers(spec, &layers_, error)) {
    *error = "invalid video-layers: " + *error;
    return false;
  }
  for (const auto &l : layers_)
    if (l.rid == kTopLayer) {
      *error = std::string("invalid video-layers: '") + kTopLayer + "' is the input's own layer";
      return false;
    }
  return true;
}

// The ladder of the stream a viewer watches: the encodings of a simulcast publisher, or its
// own video (the size it comes in, at video-bitrate) and the lower layers encoded from it.
std::vector<VideoLayer> WhepServer::session_layers(const std::string &id) {
  auto viewer = std::static_pointer_cast<Viewer>(find_session(id));
  auto stream = viewer && viewer->slot ? stream_for(viewer->slot->requested(), "video") : nullptr;
  if (stream && stream->simulcast()) return stream->simulcast_layers();
  std::vector<VideoLayer> lower = stream ? stream->layers() : std::vector<VideoLayer>();
  auto track = stream ? stream->track("video", 0) : nullptr;
  if (lower.empty() || !track) return {};
  VideoLayer top;
  top.rid = kTopLayer;
  GST_OBJECT_LOCK(element());
  top.kbps = settings.encoder.video_bitrate;
  GST_OBJECT_UNLOCK(element());
  if (GPtr<GstElement> tee = track->raw_source()) {
    GPtr<GstPad> pad = GPtr<GstPad>::adopt(gst_element_get_static_pad(tee.get(), "sink"));
    GPtr<GstCaps> caps = GPtr<GstCaps>::adopt(pad ? gst_pad_get_current_caps(pad.get()) : nullptr);
    if (caps) {
      gst_structure_get_int(gst_caps_get_structure(caps.get(), 0), "width", &top.width);
      gst_structure_get_int(gst_caps_get_structure(caps.get(), 0), "height", &top.height);
    }
  }
  lower.insert(lower.begin(), top);
  return lower;
}

// The viewer's video takes the layer's track from its next keyframe on, with its own SSRC,
// sequence numbers and timestamps going on (the slot is pointed again).
MediaResult WhepServer::select_layer(ServerSession &session, int layer) {
  auto &viewer = static_cast<Viewer &>(session);
  std::vector<VideoLayer> layers = session_layers(session.id);
  if (!viewer.slot || layer >= static_cast<int>(layers.size())) return MediaResult::failure(422, "no such layer");
  viewer.chosen = layer >= 0;
  viewer.control.reset();
  // The server's choice starts from the top and comes down if the connection cannot take it.
  show_layer(viewer, layers, std::max(layer, 0), layer < 0 ? "server" : "asked");
  return MediaResult::success("");
}

// New viewers go elsewhere while the process uses more CPU than max-cpu-load allows.
bool WhepServer::overloaded() {
  GST_OBJECT_LOCK(element());
  guint limit = settings.max_cpu_load;
  GST_OBJECT_UNLOCK(element());
  return limit && cpu_load_ > limit;
}

void WhepServer::show_layer(Viewer &viewer, const std::vector<VideoLayer> &layers, int index, const char *why) {
  // The top of a ladder is the stream's own track; simulcast encodings go by their rid.
  std::string rid = index <= 0 && layers[0].rid == kTopLayer ? "" : layers[index].rid;
  for (const auto &target : viewer.slot->outputs())
    if (auto output = std::dynamic_pointer_cast<SlotOutput>(target))
      if (output->kind() == "video") output->set_layer(rid);
  registry()->repoint(viewer.slot);
  viewer.layer = index;
  viewer.layer_switches++;
  GST_INFO_OBJECT(element(), "viewer %s now gets layer %s (%s)", viewer.id.c_str(), layers[index].rid.c_str(), why);
  gst_element_post_message(element(), gst_message_new_element(GST_OBJECT(element()),
                                                              gst_structure_new("wish-viewer-layer", "session-id",
                                                                                G_TYPE_STRING, viewer.id.c_str(), "rid",
                                                                                G_TYPE_STRING, layers[index].rid.c_str(),
                                                                                "reason", G_TYPE_STRING, why, nullptr)));
}

// The server's choice: down on congestion, up again after a quiet while (LayerControl).
void WhepServer::adapt_layer(Viewer &viewer) {
  if (viewer.chosen || !viewer.slot) return;
  std::vector<VideoLayer> layers = session_layers(viewer.id);
  if (layers.size() < 2) return;
  LayerControl::Sample sample;
  sample.packets = viewer.output_counts().packets;
  sample.nacks = viewer.stats.nacks;
  sample.fraction_lost = viewer.stats.fraction_lost;
  int next = viewer.control.update(sample, viewer.layer, static_cast<int>(layers.size()));
  if (next != viewer.layer) show_layer(viewer, layers, next, next > viewer.layer ? "congestion" : "recovered");
}

// Viewers are taken once every track of the stream has media, or one has had it for a few
// seconds (Stream::ready): nobody gets a video-only answer because audio started later.
// Media flows once the viewer is connected, starting with the keyframe kept meanwhile (or
// one asked for then).
void WhepServer::on_connected(ServerSession &session) {
  for (const auto &target : static_cast<Viewer &>(session).slot->outputs())
    if (auto o = std::dynamic_pointer_cast<SlotOutput>(target)) o->enable();
}

// The outputs stop (waiting for a packet under way) while the viewer's webrtcbin still runs.
void WhepServer::stop_feeding(ServerSession &session) {
  auto &viewer = static_cast<Viewer &>(session);
  if (!viewer.slot) return;
  {
    viewer.sample_stats();
    SentCounts counts = viewer.counts();
    std::lock_guard<std::mutex> lock(sent_mutex_);
    sent_done_[viewer.shown()] += counts;
  }
  if (registry()) registry()->leave(viewer.slot.get());
  viewer.slot->close();
}

void WhepServer::on_released(ServerSession &session, const std::string &reason) {
  if (session.answered) post_viewer_message("wish-viewer-left", session.id, reason.c_str());
}

// Worker: what the metrics show, read where sessions are set up (their slots are written on
// this thread), kept for the HTTP thread that serves the metrics.
void WhepServer::tick() {
  Metrics m;
  {
    std::lock_guard<std::mutex> lock(sent_mutex_);
    m.sent = sent_done_;
  }
  bool sample = ticks_++ % 4 == 0;  // webrtcbin's statistics about once a second
  if (sample) {
    timespec cpu{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    gint64 wall = g_get_monotonic_time(), used = cpu.tv_sec * G_USEC_PER_SEC + cpu.tv_nsec / 1000;
    cpu_samples_.emplace_back(wall, used);
    while (cpu_samples_.size() > 2 && wall - cpu_samples_.front().first > 2 * G_USEC_PER_SEC) cpu_samples_.pop_front();
    const auto &first = cpu_samples_.front();
    if (wall > first.first) cpu_load_ = 100.0 * (used - first.second) / (wall - first.first);
  }
  for (const auto &s : sessions()) {
    auto v = std::static_pointer_cast<Viewer>(s);
    if (!v->slot) continue;
    if (sample) {
      v->sample_stats();
      adapt_layer(*v);
    }
    std::string stream = v->shown();
    m.viewers[stream]++;
    m.sent[stream] += v->counts();
    if (v->stats.rtt_s >= 0) {
      Quality &q = m.quality[stream];
      q.rtt_s += v->stats.rtt_s;
      q.timed++;
    }
    if (v->stats.fraction_lost >= 0) {
      Quality &q = m.quality[stream];
      q.fraction_lost += v->stats.fraction_lost;
      q.packets_lost += v->stats.packets_lost;
      q.reporting++;
    }
  }
  std::lock_guard<std::mutex> lock(sent_mutex_);
  metrics_ = std::move(m);
}

void WhepServer::collect_metrics(MetricsText &out) {
  Metrics m;
  {
    std::lock_guard<std::mutex> lock(sent_mutex_);
    m = metrics_;
  }
  for (const auto &kv : m.viewers)
    out.gauge("wish_viewers", "WHEP viewers, by the stream they are shown", {{"stream", kv.first}}, kv.second);
  for (const auto &kv : m.sent) {
    const SentCounts &c = kv.second;
    MetricLabels by = {{"stream", kv.first}};
    out.counter("wish_sent_packets_total", "RTP packets sent to WHEP viewers, by stream", by, double(c.packets));
    out.counter("wish_sent_bytes_total", "RTP bytes sent to WHEP viewers, by stream", by, double(c.bytes));
    out.counter("wish_nacks_received_total", "Packets WHEP viewers asked for again (RTCP NACK), by stream", by,
                double(c.nacks));
    out.counter("wish_retransmitted_packets_total", "Packets sent again to WHEP viewers (RTX), by stream", by,
                double(c.retransmitted));
    out.counter("wish_keyframe_requests_total", "Keyframes WHEP viewers asked for (PLI/FIR), by stream", by,
                double(c.keyframe_requests));
    out.counter("wish_layer_switches_total", "Video layer changes WHEP viewers asked for, by stream", by,
                double(c.layer_switches));
  }
  for (const auto &kv : m.quality) {
    const Quality &q = kv.second;
    MetricLabels by = {{"stream", kv.first}};
    if (q.timed)
      out.gauge("wish_viewer_rtt_seconds", "Round-trip time to WHEP viewers (their receiver reports), mean by stream",
                by, q.rtt_s / q.timed);
    if (!q.reporting) continue;
    out.gauge("wish_viewer_fraction_lost", "Fraction of packets WHEP viewers reported lost, mean by stream", by,
              q.fraction_lost / q.reporting);
    out.gauge("wish_viewer_packets_lost", "Packets the current WHEP viewers reported lost in all, by stream", by,
              double(q.packets_lost));
  }
}

void WhepServer::post_viewer_message(const char *name, const std::string &id, const char *reason) {
  guint count = static_cast<guint>(sessions().size());
  GstStructure *s = gst_structure_new(name, "session-id", G_TYPE_STRING, id.c_str(), "viewers", G_TYPE_UINT, count,
                                      nullptr);
  if (reason) gst_structure_set(s, "reason", G_TYPE_STRING, reason, nullptr);
  gst_element_post_message(element(), gst_message_new_element(GST_OBJECT(element()), s));
}

GstStructure *WhepServer::stats() {
  GValue list = G_VALUE_INIT;
  gst_value_list_init(&list, 0);
  guint count = 0, inputs_ready = 0;
  {
    std::lock_guard<std::mutex> lock(inputs_mutex_);
    for (const auto &in : inputs_)
      if (in->track->has_caps()) inputs_ready++;
  }
  for (const auto &s : sessions()) {
    auto v = std::static_pointer_cast<Viewer>(s);
    auto [packets, bytes] = v->sent();
    std::string showing = v->slot ? v->slot->showing() : "";
    std::string state = v->shared ? SharedViewers::figures(*v->shared).state : v->state;
    GstStructure *st = gst_structure_new(
        "viewer", "session-id", G_TYPE_STRING, v->id.c_str(), "connection-state", G_TYPE_STRING, state.c_str(),
        "stream", G_TYPE_STRING, v->slot ? v->slot->requested().c_str() : "", "showing", G_TYPE_STRING,
        showing.c_str(), "packets-sent", G_TYPE_UINT64, packets, "bytes-sent", G_TYPE_UINT64, bytes, "duration",
        G_TYPE_UINT64, (guint64)((g_get_real_time() - v->created_us) * GST_USECOND), nullptr);
    GValue sv = G_VALUE_INIT;
    g_value_init(&sv, GST_TYPE_STRUCTURE);
    g_value_take_boxed(&sv, st);
    gst_value_list_append_and_take_value(&list, &sv);
    count++;
  }
  GstStructure *out = gst_structure_new("application/x-whepserversink-stats", "viewer-count", G_TYPE_UINT, count,
                                        "inputs-ready", G_TYPE_UINT, inputs_ready, nullptr);
  gst_structure_take_value(out, "viewers", &list);
  return out;
}

// shared-transport: offers the shared transport can serve get it; the others (and every
// offer while the property is off) get a webrtcbin as always.
void WhepServer::create_session(const SessionRequest &request, std::shared_ptr<SessionEvents> events,
                                SessionCallback done) {
  GST_OBJECT_LOCK(element());
  bool shared = settings.shared_transport;
  bool ice_servers = !http.stun_server.empty() || !http.turn_servers.empty();
  GST_OBJECT_UNLOCK(element());
  std::string why;
  if (ice_servers) why = "stun-server or turn-servers is set (the shared transport gathers host candidates only)";
  else if (!layers_.empty()) why = "video-layers is set";
  if (!shared || !why.empty() || !SharedViewers::can_serve(request, &why)) {
    if (shared) GST_INFO_OBJECT(element(), "viewer %s goes to webrtcbin: %s", request.id.c_str(), why.c_str());
    ServerElement::create_session(request, std::move(events), std::move(done));
    return;
  }
  bool queued = dispatcher() && dispatcher()->post([this, request, events, done]() mutable {
    if (!serve_shared(request, events, done)) ServerElement::create_session(request, events, std::move(done));
  });
  if (!queued) done(MediaResult::failure(503, "the server is stopping"), nullptr);
}

bool WhepServer::serve_shared(const SessionRequest &request, const std::shared_ptr<SessionEvents> &events,
                              SessionCallback &done) {
  if (!shared_) {
    GST_OBJECT_LOCK(element());
    std::string addresses = http.ice_local_addresses, ports = http.ice_port_range;
    GST_OBJECT_UNLOCK(element());
    IceConfig ice;
    PortRange range;
    std::string error;
    if (!resolve_local_addresses(addresses, &ice.local_addresses, &error) || !parse_port_range(ports, &range, &error)) {
      GST_WARNING_OBJECT(element(), "shared transport: %s", error.c_str());
      return false;
    }
    ice.min_port = range.min;
    ice.max_port = range.max;
    shared_ = SharedViewers::create(element(), ice, dispatcher(), &error);
    if (!shared_) {
      GST_WARNING_OBJECT(element(), "no shared transport: %s", error.c_str());
      return false;
    }
  }
  GST_OBJECT_LOCK(element());
  bool retransmission = http.do_retransmission;
  GST_OBJECT_UNLOCK(element());
  std::string stream = request.stream.empty() ? own_name() : request.stream;
  if (auto video = stream_for(request.stream, "video"))
    if (video->simulcast()) return false;  // layers switch on webrtcbin only
  std::vector<SharedViewers::Planned> planned;
  for (const auto &p : plan(request)) {
    if (p.encoded) {  // transcoded for the viewer: webrtcbin
      GST_INFO_OBJECT(element(), "viewer %s goes to webrtcbin: %s is encoded for it", request.id.c_str(),
                      p.encoded->encoding.c_str());
      return false;
    }
    planned.push_back({p.track, p.index});
  }
  if (planned.empty()) return false;
  // Answered, the viewer is listed with the webrtcbin ones (stats, metrics, messages).
  std::string id = request.id, requested = request.stream;
  SessionCallback answered = [this, id, requested, events, done](MediaResult result,
                                                                 std::unique_ptr<MediaSession> media) {
    auto viewer = std::make_shared<Viewer>();
    viewer->shared = result.ok && media && shared_ ? shared_->find(id) : nullptr;
    if (!viewer->shared) {
      done(std::move(result), std::move(media));
      return;
    }
    viewer->id = id;
    viewer->stream = requested;
    viewer->events = events;
    viewer->created_us = g_get_real_time();
    viewer->slot = SharedViewers::slot(*viewer->shared);
    done(std::move(result), adopt_session(viewer, std::move(media)));
    on_answered(*viewer);
  };
  return shared_->serve(request, stream, planned, retransmission, registry(), events, answered);
}

}  // namespace wish
