/**
 * SECTION:element-whipserversrc
 * @title: whipserversrc
 *
 * Takes WHIP publishers (RFC 9725). The publisher on `path` itself feeds the sometimes pads
 * `video_%u` / `audio_%u`: decoded by default, encoded or RTP when downstream asks; one at a
 * time, and the pads stay when it leaves for the next one to continue on them.
 *
 * Publishers on `path`/<name> (/whip/cam1) publish the stream <name> of the HTTP server
 * instead, many at once, each without re-encoding: a whepserversink on the same server plays
 * it at its own path/<name> (/whep/cam1), no change to the pipeline needed.
 *
 * |[
 * gst-launch-1.0 whipserversrc name=in whepserversink name=out \
 *   in.video_0 ! queue ! out.video_0  in.audio_0 ! queue ! out.audio_0
 * ]|
 * relays WHIP ingest on /whip to WHEP viewers on /whep, and /whip/<name> to /whep/<name>.
 */
#include "whipserversrc.h"

#include <gst/video/video.h>
#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "gst_utils.h"
#include "held_packets.h"
#include "media_outputs.h"
#include "protocol/sdp.h"
#include "protocol/simulcast.h"
#include "send_chain.h"
#include "server_bin.h"
#include "server_element.h"

GST_DEBUG_CATEGORY_STATIC(whipserversrc_debug);
#define GST_CAT_DEFAULT whipserversrc_debug

namespace wish {

class WhipServer;

namespace {

// How long the pads wait for every encoding of a simulcast publisher to tell its picture size
// before taking the largest that did (a browser may hold its largest back for a while), and
// how many packets of each encoding they hold meanwhile (its latest key frame on).
constexpr gint64 kPadsChoiceWait = 3 * G_TIME_SPAN_SECOND;
constexpr size_t kPadsHeldPackets = 2000;

struct Settings {
  gboolean takeover = FALSE;
  guint latency = 50;
  guint publisher_timeout = 5;  // seconds without a packet before a publisher counts as gone
  gboolean eos_on_leave = FALSE;
};

// Codecs a publisher may send: what the pads can hand out (RTP, parsed or decoded).
bool receivable(const RtpMap &r) {
  if (r.encoding == "H264") return fmtp_param(r.fmtp, "packetization-mode") == "1";
  return r.encoding == "VP8" || r.encoding == "VP9" || r.encoding == "H265" || r.encoding == "OPUS" ||
         r.encoding == "PCMU" || r.encoding == "PCMA" || r.encoding == "G722";
}

// The publisher's first receivable format on an m-line, as webrtcbin codec preferences that
// keep its payload type and fmtp, so the answer names exactly that codec.
GstCaps *preferred_caps(const MediaSection &m) {
  for (int pt : m.formats) {
    auto it = m.rtpmap.find(pt);
    if (it == m.rtpmap.end() || !receivable(it->second)) continue;
    const RtpMap &r = it->second;
    GstStructure *s = gst_structure_new("application/x-rtp", "media", G_TYPE_STRING, m.kind.c_str(), "encoding-name",
                                        G_TYPE_STRING, r.encoding.c_str(), "payload", G_TYPE_INT, pt, "clock-rate",
                                        G_TYPE_INT, static_cast<gint>(r.clock_rate), nullptr);
    if (r.channels) gst_structure_set(s, "encoding-params", G_TYPE_STRING, std::to_string(r.channels).c_str(), nullptr);
    for (const char *key : {"packetization-mode", "profile-level-id", "profile-id", "sprop-stereo", "stereo"}) {
      std::string v = fmtp_param(r.fmtp, key);
      if (!v.empty()) gst_structure_set(s, key, G_TYPE_STRING, v.c_str(), nullptr);
    }
    GstCaps *caps = gst_caps_new_empty();
    gst_caps_append_structure(caps, s);
    return caps;
  }
  return nullptr;
}

// The picture size of what a payloader takes, for its track: from the caps (h264parse tells
// it), else from the VP8 key frames (the depayloader does not).
void watch_picture_size(GstElement *payloader, const std::shared_ptr<Track> &track, bool vp8) {
  GPtr<GstPad> sink = GPtr<GstPad>::adopt(gst_element_get_static_pad(payloader, "sink"));
  if (!sink) return;
  auto types = vp8 ? GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM : GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM;
  gst_pad_add_probe(
      sink.get(), static_cast<GstPadProbeType>(types),
      [](GstPad *, GstPadProbeInfo *info, gpointer d) {
        auto track = static_cast<std::weak_ptr<Track> *>(d)->lock();
        if (!track) return GST_PAD_PROBE_OK;
        int width = 0, height = 0;
        if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
          GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
          if (GST_EVENT_TYPE(event) != GST_EVENT_CAPS) return GST_PAD_PROBE_OK;
          GstCaps *caps;
          gst_event_parse_caps(event, &caps);
          const GstStructure *s = gst_caps_get_structure(caps, 0);
          gst_structure_get_int(s, "width", &width);
          gst_structure_get_int(s, "height", &height);
        } else {
          GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER(info);
          GstMapInfo map;
          if (GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT) || !gst_buffer_map(buffer, &map, GST_MAP_READ))
            return GST_PAD_PROBE_OK;
          vp8_picture_size(map.data, map.size, &width, &height);
          gst_buffer_unmap(buffer, &map);
        }
        if (width > 0 && height > 0) track->set_picture_size(width, height);
        return GST_PAD_PROBE_OK;
      },
      new std::weak_ptr<Track>(track), [](gpointer d) { delete static_cast<std::weak_ptr<Track> *>(d); });
}

// What the publisher sends for a track (its RTP as received), for the track's bitrate.
void count_received(GstPad *pad, const std::shared_ptr<Track> &track) {
  gst_pad_add_probe(
      pad, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
      [](GstPad *, GstPadProbeInfo *info, gpointer d) {
        auto track = static_cast<std::weak_ptr<Track> *>(d)->lock();
        if (!track) return GST_PAD_PROBE_REMOVE;
        if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
          track->count_received(gst_buffer_get_size(GST_PAD_PROBE_INFO_BUFFER(info)));
        } else {
          GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
          track->count_received(gst_buffer_list_calculate_size(list));
        }
        return GST_PAD_PROBE_OK;
      },
      new std::weak_ptr<Track>(track), [](gpointer d) { delete static_cast<std::weak_ptr<Track> *>(d); });
}

struct Publisher;

// What a decodebin of a named stream's publisher feeds, for its pad-added handler.
struct EncodedTarget {
  WhipServer *self;
  std::weak_ptr<Publisher> pub;
  std::weak_ptr<Track> track;
};

struct Publisher : ServerSession {
  std::shared_ptr<Stream> named;  // the registry stream it publishes; null for the pads
  std::vector<SimulcastOffer> simulcast;  // the simulcast it offered (and gets), set before the answer
  std::mutex chains_mutex;        // guards chains and routed_rids: built on streaming threads
  std::vector<GPtr<GstElement>> chains;
  std::vector<std::string> routed_rids;  // simulcast encodings whose pad found its way
  std::optional<EncodingChoice> pads_choice;  // the pads' encoding (pads only), under chains_mutex
};

// A pad of a simulcast publisher whose encoding is not known yet (RID header extension).
struct SimulcastPad {
  WhipServer *self;
  std::weak_ptr<Publisher> pub;
  int rid_ext;
  bool unused = false;  // its encoding goes nowhere: dropped
  guint64 unnamed = 0;  // packets without a RID so far
  std::optional<std::string> rid;  // its encoding, once a packet told it
  // The pads' publisher: the a=rtpmap name of its payload ("VP8", "H264", ...), and its
  // packets held until the pads chose their encoding.
  std::string encoding;
  HeldPackets held{kPadsHeldPackets};
  bool replaying = false;  // held packets of the chosen encoding are pushed again
};

}  // namespace

class WhipServer : public ServerElement {
public:
  explicit WhipServer(GstElement *element) : ServerElement(element, "/whip"), outputs_(element) {}
  ~WhipServer() override { stop(); }

  Settings settings;  // guarded by the element's object lock
  GstStructure *stats();

  // MediaBackend
  Admission admit(const std::string &stream) override;
  bool can_answer(const std::string &stream, const SessionDescription &offer, std::string *why) override;

private:
  std::mutex metrics_mutex_;  // guards stream_publishers_ (the worker's count for the metrics); nothing under it
  std::map<std::string, guint> stream_publishers_;

  Settings snapshot();
  void configure_endpoint(EndpointConfig *config) override;
  void on_stop() override;
  guint silence_timeout_s() override { return snapshot().publisher_timeout; }
  int jitterbuffer_latency_ms() override { return static_cast<int>(snapshot().latency); }
  std::shared_ptr<ServerSession> new_session() override { return std::make_shared<Publisher>(); }
  bool attach_media(ServerSession &session, const SessionRequest &request, MediaResult *refusal) override;
  void on_connected(ServerSession &session) override;
  std::string finish_answer(ServerSession &session, const std::string &sdp) override;
  void on_stream(const std::shared_ptr<ServerSession> &session, GstPad *pad, const std::string &kind) override;
  void detach_media(ServerSession &session, GstElement *webrtc) override;
  void on_released(ServerSession &session, const std::string &reason) override;
  // Publishers by the stream they publish (the pads' own: the path without its slash), as the
  // worker counted them last.
  void collect_metrics(MetricsText &out) override {
    std::map<std::string, guint> publishers;
    {
      std::lock_guard<std::mutex> lock(metrics_mutex_);
      publishers = stream_publishers_;
    }
    for (const auto &kv : publishers)
      out.gauge("wish_publishers", "WHIP publishers, by the stream they publish", {{"stream", kv.first}}, kv.second);
  }
  void tick() override;
  static void on_encoded_pad(GstElement *decodebin, GstPad *pad, gpointer data);
  // Decodes a pad of the publisher up to its encoded stream and payloads it for the track.
  void feed_track(const std::shared_ptr<Publisher> &pub, GstPad *pad, const std::string &kind,
                  const std::shared_ptr<Track> &track);
  static GstPadProbeReturn on_simulcast_buffer(GstPad *pad, GstPadProbeInfo *info, gpointer data);
  void replay_held(GstPad *pad, SimulcastPad *sp);
  // Where the encoding `rid` that came on `pad` goes; false when nowhere.
  bool route_simulcast(const std::shared_ptr<Publisher> &pub, GstPad *pad, const std::string &rid);

  MediaOutputs outputs_;
  // Guards live_, named_ and default_session_; never held across GStreamer calls.
  std::mutex mutex_;
  std::map<std::string, std::string> live_;  // stream ("" for the pads) -> publishing session
  std::map<std::string, std::shared_ptr<Stream>> named_;  // streams this element registered
  std::string default_session_;  // for stats
  std::atomic<guint> publishers_{0};
};

}  // namespace wish

struct _GstWhipServerSrc {
  GstWishServerBin parent;
};

G_DEFINE_TYPE(GstWhipServerSrc, gst_whip_server_src, GST_TYPE_WISH_SERVER_BIN);
GST_ELEMENT_REGISTER_DEFINE(whipserversrc, "whipserversrc", GST_RANK_NONE, GST_TYPE_WHIP_SERVER_SRC);

namespace wish {

static WhipServer *whip_server(gpointer element) { return static_cast<WhipServer *>(server_impl(element)); }

Settings WhipServer::snapshot() {
  GST_OBJECT_LOCK(element());
  Settings s = settings;
  GST_OBJECT_UNLOCK(element());
  return s;
}

void WhipServer::configure_endpoint(EndpointConfig *cfg) {
  cfg->kind = EndpointKind::Whip;
  cfg->connect_timeout_ms = std::max(5u, snapshot().publisher_timeout) * 1000;
}

// READY->NULL: every session is gone; the output pads go too.
void WhipServer::on_stop() {
  outputs_.remove_all();
  std::map<std::string, std::shared_ptr<Stream>> named;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    named.swap(named_);
  }
  if (registry())
    for (const auto &kv : named) registry()->remove(kv.second);
}

Admission WhipServer::admit(const std::string &stream) {
  if (!running()) return {503, "the server is not playing"};
  Settings s = snapshot();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // With WHISP served, a new publisher on a live name takes it over (an implicit grab).
    bool grab = !stream.empty() && registry() && registry()->grabbing();
    if (live_.count(stream) && !s.takeover && !grab)
      return {409, stream.empty() ? "another publisher is live on this endpoint"
                                  : "a publisher is live on stream '" + stream + "'"};
    if (!stream.empty() && !named_.count(stream) && registry() && registry()->find(stream))
      return {409, "stream '" + stream + "' is served by another element"};
  }
  return {};
}

// RFC 9725: one MediaStream, at most one audio and one video track, each in a codec we take.
bool WhipServer::can_answer(const std::string &, const SessionDescription &offer, std::string *) {
  int audio = 0, video = 0, usable = 0;
  for (const auto &m : offer.media) {
    if (m.rejected() || (m.kind != "audio" && m.kind != "video")) continue;
    (m.kind == "audio" ? audio : video)++;
    GPtr<GstCaps> caps = GPtr<GstCaps>::adopt(preferred_caps(m));
    if (caps) usable++;
  }
  return audio <= 1 && video <= 1 && usable > 0;
}

bool WhipServer::attach_media(ServerSession &session, const SessionRequest &request, MediaResult *refusal) {
  auto &pub = static_cast<Publisher &>(session);
  // takeover: the publisher live on this stream goes first.
  std::string previous;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(request.stream);
    if (it != live_.end()) previous = it->second;
  }
  if (!previous.empty())
    if (auto old = find_session(previous)) {
      GST_INFO_OBJECT(element(), "publisher %s replaced by %s", previous.c_str(), session.id.c_str());
      end_session(*old, "replaced", true);
    }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    live_[request.stream] = session.id;
    if (request.stream.empty()) default_session_ = session.id;
  }
  if (!request.stream.empty()) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = named_.find(request.stream);
    if (it == named_.end()) {
      auto stream = std::make_shared<Stream>(request.stream, "whip publisher");
      if (!registry()->add(stream)) {
        *refusal = MediaResult::failure(409, "stream '" + request.stream + "' is served by another element");
        return false;
      }
      it = named_.emplace(request.stream, stream).first;
    }
    pub.named = it->second;
  }
  for (const auto &m : request.parsed.media)
    if (auto sc = simulcast_offer(m)) pub.simulcast.push_back(*sc);
  GstElement *webrtc = session.peer->webrtcbin();
  bool repoint = false;
  // Transceivers that accept exactly the publisher's first usable codec per m-line.
  for (const auto &m : request.parsed.media) {
    if (m.rejected() || (m.kind != "audio" && m.kind != "video")) continue;
    GPtr<GstCaps> caps = GPtr<GstCaps>::adopt(preferred_caps(m));
    if (!caps) continue;
    GstWebRTCRTPTransceiver *trans = nullptr;
    g_signal_emit_by_name(webrtc, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps.get(), &trans);
    if (trans) gst_object_unref(trans);
    if (!pub.named) continue;
    auto sc = simulcast_offer(m);
    // Each encoding of a simulcast publisher is a track of the stream, kept when it comes back;
    // the encodings of an earlier publisher that this one does not send leave.
    if (sc && (pub.named->simulcast() || !pub.named->track(m.kind, 0))) {
      repoint = pub.named->keep_simulcast(sc->rids) || repoint;
      for (const auto &rid : sc->rids)
        if (!pub.named->simulcast_track(rid)) pub.named->add_simulcast_track(rid, std::make_shared<Track>(m.kind));
    } else {
      if (m.kind == "video") repoint = pub.named->keep_simulcast({}) || repoint;
      if (!pub.named->track(m.kind, 0)) pub.named->add_track(m.kind);
    }
  }
  // Viewers of an encoding that left go on with one that is there.
  if (repoint && registry()) registry()->repoint_audience();
  if (pub.named) {
    std::vector<std::string> msids;
    for (const auto &m : request.parsed.media)
      for (const auto &id : {m.msid_stream, m.msid_track})
        if (!id.empty()) msids.push_back(id);
    pub.named->set_msids(msids);
    // A WHISP grab ends this publisher (delay_ms from now), if it is still the one publishing.
    std::string id = session.id, name = request.stream;
    std::shared_ptr<Dispatcher> dispatch = dispatcher();
    pub.named->set_source_ender([this, id, name, dispatch](unsigned delay_ms, const std::string &reason) {
      dispatch->post([this, id, name, delay_ms, reason] {
        worker()->add_timeout(delay_ms, [this, id, name, reason] {
          {
            std::lock_guard<std::mutex> lock(mutex_);
            auto it = live_.find(name);
            if (it == live_.end() || it->second != id) return;
          }
          if (auto s = find_session(id)) end_session(*s, reason, true);
        });
      });
    });
  }
  return true;
}

std::string WhipServer::finish_answer(ServerSession &session, const std::string &sdp) {
  auto &pub = static_cast<Publisher &>(session);
  return pub.simulcast.empty() ? sdp : accept_simulcast(sdp, pub.simulcast);
}

void WhipServer::on_connected(ServerSession &session) {
  auto &pub = static_cast<Publisher &>(session);
  publishers_++;
  if (pub.named) pub.named->set_live(true);
  GST_INFO_OBJECT(element(), "publisher %s connected%s%s", session.id.c_str(), pub.named ? " to stream " : "",
                  pub.named ? pub.named->name().c_str() : "");
  GstStructure *s = gst_structure_new("wish-publisher-joined", "session-id", G_TYPE_STRING, session.id.c_str(),
                                      "stream", G_TYPE_STRING, session.stream.c_str(), nullptr);
  gst_element_post_message(element(), gst_message_new_element(GST_OBJECT(element()), s));
}

// Streaming thread. The pads' publisher hands its streams to the outputs; a named stream's
// publisher to a chain that stops at the encoded stream and payloads it once for the track.
// A simulcast publisher's video comes on a pad per encoding (SSRC), each told apart by the
// RID header extension of its packets: dropped until one tells it.
void WhipServer::on_stream(const std::shared_ptr<ServerSession> &session, GstPad *pad, const std::string &kind) {
  auto pub = std::static_pointer_cast<Publisher>(session);
  if (kind == "video" && !pub->simulcast.empty()) {
    GST_DEBUG_OBJECT(element(), "publisher %s: simulcast pad %" GST_PTR_FORMAT, pub->id.c_str(), pad);
    gst_pad_add_probe(pad, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                      &WhipServer::on_simulcast_buffer, new SimulcastPad{this, pub, pub->simulcast.front().rid_ext},
                      [](gpointer d) { delete static_cast<SimulcastPad *>(d); });
    return;
  }
  if (!pub->named) {
    outputs_.attach(pad, kind);
    return;
  }
  std::shared_ptr<Track> track = pub->named->track(kind, 0);
  GST_DEBUG_OBJECT(element(), "stream %s: %s pad %" GST_PTR_FORMAT "%s", pub->named->name().c_str(), kind.c_str(), pad,
                   track ? "" : ", no track of that kind: dropped");
  if (track) feed_track(pub, pad, kind, track);
}

GstPadProbeReturn WhipServer::on_simulcast_buffer(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  auto *sp = static_cast<SimulcastPad *>(data);
  if (sp->unused) return GST_PAD_PROBE_DROP;
  if (sp->replaying) return GST_PAD_PROBE_OK;
  auto pub = sp->pub.lock();
  // The pads take the largest encoding: each one's packets are held (from its latest key
  // frame) until every one told its picture size, or the wait is over.
  bool choosing = pub && !pub->named;
  if (choosing && sp->encoding.empty()) {
    GPtr<GstCaps> caps = GPtr<GstCaps>::adopt(gst_pad_get_current_caps(pad));
    const char *name = caps ? gst_structure_get_string(gst_caps_get_structure(caps.get(), 0), "encoding-name") : nullptr;
    sp->encoding = name ? name : "";
  }
  sp->held.mark();
  int width = 0, height = 0;
  auto read = [&](GstBuffer *buffer) {
    GstMapInfo map;
    if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) return;
    if (!sp->rid) sp->rid = rtp_header_extension(map.data, map.size, sp->rid_ext);
    int w = 0, h = 0;
    if (choosing) sp->held.add(buffer, sp->encoding, map.data, map.size, &w, &h);
    if (w > 0 && h > 0) {
      width = w;
      height = h;
    }
    gst_buffer_unmap(buffer, &map);
  };
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    read(GST_PAD_PROBE_INFO_BUFFER(info));
  } else {
    GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
    for (guint i = 0; i < gst_buffer_list_length(list); i++) read(gst_buffer_list_get(list, i));
  }
  if (!sp->rid) {
    if (++sp->unnamed == 200)
      GST_WARNING_OBJECT(sp->self->element(), "simulcast pad %" GST_PTR_FORMAT ": 200 packets without a RID (extension %d)",
                         pad, sp->rid_ext);
    return GST_PAD_PROBE_DROP;
  }
  if (choosing) {
    std::optional<std::string> chosen;
    {
      std::lock_guard<std::mutex> lock(pub->chains_mutex);
      if (!pub->pads_choice) pub->pads_choice.emplace(pub->simulcast.front().rids, kPadsChoiceWait);
      chosen = pub->pads_choice->observe(*sp->rid, width, height, g_get_monotonic_time());
    }
    if (!chosen) return GST_PAD_PROBE_DROP;  // held, until the sizes are known
  }
  if (!pub || !sp->self->route_simulcast(pub, pad, *sp->rid)) {
    sp->unused = true;
    sp->held.clear();
    return GST_PAD_PROBE_DROP;
  }
  if (choosing) sp->self->replay_held(pad, sp);
  return GST_PAD_PROBE_REMOVE;  // this packet and the next go to what the pad is linked to now
}

// Streaming thread, the pad just linked to the outputs: the chosen encoding's packets from its
// latest key frame on go first, then the one being looked at and the rest.
void WhipServer::replay_held(GstPad *pad, SimulcastPad *sp) {
  bool keyframe = sp->held.holds_keyframe();
  std::vector<GstBuffer *> packets = sp->held.take_marked();
  GST_INFO_OBJECT(element(), "the pads start on encoding '%s' with %zu packets held%s", sp->rid->c_str(),
                  packets.size(), keyframe ? "" : ", no key frame among them: one is asked for");
  sp->replaying = true;
  for (GstBuffer *b : packets) gst_pad_push(pad, b);
  sp->replaying = false;
  // Only when none was seen (the hold overflowed, or the first packets were lost): the
  // publisher has sent no key frame to start from.
  if (!keyframe) gst_pad_send_event(pad, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
}

// Streaming thread. The pads take one encoding, the largest (EncodingChoice); a named stream
// takes each one as its own track.
bool WhipServer::route_simulcast(const std::shared_ptr<Publisher> &pub, GstPad *pad, const std::string &rid) {
  const auto &rids = pub->simulcast.front().rids;
  bool known = std::find(rids.begin(), rids.end(), rid) != rids.end();
  {
    std::lock_guard<std::mutex> lock(pub->chains_mutex);
    bool routed = std::find(pub->routed_rids.begin(), pub->routed_rids.end(), rid) != pub->routed_rids.end();
    if (!known || routed) {
      GST_WARNING_OBJECT(element(), "publisher %s: encoding '%s' on %" GST_PTR_FORMAT " %s: dropped", pub->id.c_str(),
                         rid.c_str(), pad, known ? "came twice" : "was not offered");
      return false;
    }
    pub->routed_rids.push_back(rid);
  }
  if (!pub->named) {
    std::optional<std::string> chosen;
    {
      std::lock_guard<std::mutex> lock(pub->chains_mutex);
      if (pub->pads_choice) chosen = pub->pads_choice->observe(rid, 0, 0, g_get_monotonic_time());
    }
    if (chosen != rid) return false;
    GST_INFO_OBJECT(element(), "publisher %s: simulcast encoding '%s' feeds the pads", pub->id.c_str(), rid.c_str());
    outputs_.attach(pad, "video");
    return true;
  }
  std::shared_ptr<Track> track = pub->named->simulcast_track(rid);
  // A stream first published without simulcast keeps its one video track: the last encoding.
  if (!track && rid == rids.back()) track = pub->named->track("video", 0);
  if (!track) return false;
  GST_INFO_OBJECT(element(), "stream %s: simulcast encoding '%s' on %" GST_PTR_FORMAT, pub->named->name().c_str(),
                  rid.c_str(), pad);
  feed_track(pub, pad, "video", track);
  return true;
}

void WhipServer::feed_track(const std::shared_ptr<Publisher> &pub, GstPad *pad, const std::string &kind,
                            const std::shared_ptr<Track> &track) {
  GstElement *decodebin = gst_element_factory_make("decodebin", nullptr);
  GPtr<GstCaps> encoded = GPtr<GstCaps>::adopt(gst_caps_from_string(
      kind == "video" ? "video/x-h264; video/x-vp8; video/x-vp9; video/x-h265"
                      : "audio/x-opus; audio/x-mulaw; audio/x-alaw; audio/G722"));
  g_object_set(decodebin, "caps", encoded.get(), nullptr);
  g_signal_connect_data(decodebin, "pad-added", G_CALLBACK(&WhipServer::on_encoded_pad),
                        new EncodedTarget{this, pub, track},
                        [](gpointer d, GClosure *) { delete static_cast<EncodedTarget *>(d); },
                        static_cast<GConnectFlags>(0));
  {
    std::lock_guard<std::mutex> lock(pub->chains_mutex);
    pub->chains.push_back(GPtr<GstElement>::ref(decodebin));
  }
  gst_bin_add(GST_BIN(element()), decodebin);
  gst_element_sync_state_with_parent(decodebin);
  GPtr<GstPad> sink = GPtr<GstPad>::adopt(gst_element_get_static_pad(decodebin, "sink"));
  gst_pad_link(pad, sink.get());
  count_received(pad, track);
}

void WhipServer::on_encoded_pad(GstElement *, GstPad *pad, gpointer data) {
  auto *target = static_cast<EncodedTarget *>(data);
  auto pub = target->pub.lock();
  auto track = target->track.lock();
  if (!pub || !track) return;
  WhipServer *self = target->self;
  GPtr<GstCaps> caps = GPtr<GstCaps>::adopt(gst_pad_get_current_caps(pad));
  if (!caps) caps = GPtr<GstCaps>::adopt(gst_pad_query_caps(pad, nullptr));
  std::vector<GstElement *> made;
  std::string summary, detail;
  if (!make_send_chain(caps.get(), EncoderSettings{}, &made, &summary, &detail)) {
    GST_WARNING_OBJECT(self->element(), "stream %s: %s (%s)", pub->named->name().c_str(), summary.c_str(),
                       detail.c_str());
    return;
  }
  GstPad *prev = pad;
  for (GstElement *e : made) {
    {
      std::lock_guard<std::mutex> lock(pub->chains_mutex);
      pub->chains.push_back(GPtr<GstElement>::ref(e));
    }
    gst_bin_add(GST_BIN(self->element()), e);
  }
  for (GstElement *e : made) {
    GPtr<GstPad> sink = GPtr<GstPad>::adopt(gst_element_get_static_pad(e, "sink"));
    gst_pad_link(prev, sink.get());
    prev = gst_element_get_static_pad(e, "src");
    gst_object_unref(prev);  // the element keeps its pad
  }
  if (track->kind() == "video")
    watch_picture_size(made.back(), track, gst_structure_has_name(gst_caps_get_structure(caps.get(), 0), "video/x-vp8"));
  track->set_source(prev);
  for (auto it = made.rbegin(); it != made.rend(); ++it) gst_element_sync_state_with_parent(*it);
  GST_INFO_OBJECT(self->element(), "stream %s: %s track %" GST_PTR_FORMAT, pub->named->name().c_str(),
                  track->kind().c_str(), caps.get());
}

// The publisher's webrtcbin is stopped: what it fed goes, the output pads stay.
void WhipServer::detach_media(ServerSession &session, GstElement *) {
  auto &pub = static_cast<Publisher &>(session);
  if (!pub.named) {
    bool current;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      current = default_session_ == session.id;
    }
    if (current) outputs_.detach_all();
    return;
  }
  std::vector<GPtr<GstElement>> chains;
  {
    std::lock_guard<std::mutex> lock(pub.chains_mutex);
    chains.swap(pub.chains);
  }
  for (const auto &t : pub.named->tracks()) t->clear_source();
  for (const auto &t : pub.named->simulcast_tracks()) t->clear_source();
  for (const auto &e : chains) {
    gst_element_set_locked_state(e.get(), TRUE);
    gst_element_set_state(e.get(), GST_STATE_NULL);
    if (GST_OBJECT_PARENT(e.get()) == GST_OBJECT(element())) gst_bin_remove(GST_BIN(element()), e.get());
  }
}

void WhipServer::on_released(ServerSession &session, const std::string &reason) {
  auto &pub = static_cast<Publisher &>(session);
  bool was_live = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(session.stream);
    if (it != live_.end() && it->second == session.id) {
      live_.erase(it);
      was_live = true;
      if (pub.named) pub.named->set_live(false);
    }
    if (default_session_ == session.id) default_session_.clear();
  }
  if (!session.connected) return;
  GST_INFO_OBJECT(element(), "publisher %s left (%s)", session.id.c_str(), reason.c_str());
  GstStructure *s = gst_structure_new("wish-publisher-left", "session-id", G_TYPE_STRING, session.id.c_str(), "stream",
                                      G_TYPE_STRING, session.stream.c_str(), "reason", G_TYPE_STRING, reason.c_str(),
                                      nullptr);
  gst_element_post_message(element(), gst_message_new_element(GST_OBJECT(element()), s));
  if (was_live && !pub.named && snapshot().eos_on_leave) outputs_.push_eos();
}

// A named stream nobody publishes or watches any more leaves the registry; while it has
// viewers it stays, for its publisher to come back to.
void WhipServer::tick() {
  {
    std::map<std::string, guint> publishers;
    for (const auto &s : sessions()) {
      auto pub = std::static_pointer_cast<Publisher>(s);
      if (!pub->answered) continue;
      publishers[pub->named ? pub->named->name() : endpoint()->config().path.substr(1)]++;
    }
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    stream_publishers_ = std::move(publishers);
  }
  std::vector<std::shared_ptr<Stream>> gone, named;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto &kv : named_) named.push_back(kv.second);
  }
  // A simulcast stream's video is its largest encoding with media, as sizes become known.
  bool promoted = false;
  for (const auto &s : named) promoted = s->promote_largest_simulcast() || promoted;
  if (promoted && registry()) registry()->repoint_audience();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = named_.begin(); it != named_.end();) {
      if (!live_.count(it->first) && registry() && registry()->audience(it->first) == 0) {
        gone.push_back(it->second);
        it = named_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto &s : gone) registry()->remove(s);
}

GstStructure *WhipServer::stats() {
  std::string session;
  GValue streams = G_VALUE_INIT;
  gst_value_list_init(&streams, 0);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    session = default_session_;
    for (const auto &kv : named_) {
      GValue v = G_VALUE_INIT;
      g_value_init(&v, G_TYPE_STRING);
      g_value_set_string(&v, kv.first.c_str());
      gst_value_list_append_and_take_value(&streams, &v);
    }
  }
  GstStructure *s = gst_structure_new("application/x-whipserversrc-stats", "publishing", G_TYPE_BOOLEAN,
                                      static_cast<gboolean>(!session.empty()), "session-id", G_TYPE_STRING,
                                      session.c_str(), "publishers", G_TYPE_UINT, publishers_.load(), "buffers-out",
                                      G_TYPE_UINT64, outputs_.buffers(), nullptr);
  gst_structure_take_value(s, "streams", &streams);
  return s;
}

}  // namespace wish

// ---------------------------------------------------------------------------------------
// GObject glue

enum {
  PROP_PATH = 1,
  PROP_TAKEOVER,
  PROP_LATENCY,
  PROP_PUBLISHER_TIMEOUT,
  PROP_EOS_ON_LEAVE,
  PROP_STATS,
};

static void gst_whip_server_src_init(GstWhipServerSrc *self) { wish::mark_live_source(GST_BIN(self)); }

static void gst_whip_server_src_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec) {
  wish::WhipServer *server = wish::whip_server(object);
  wish::Settings &s = server->settings;
  GST_OBJECT_LOCK(object);
  switch (prop_id) {
    case PROP_PATH: server->http.path = wish::string_from_value(value); break;
    case PROP_TAKEOVER: s.takeover = g_value_get_boolean(value); break;
    case PROP_LATENCY: s.latency = g_value_get_uint(value); break;
    case PROP_PUBLISHER_TIMEOUT: s.publisher_timeout = g_value_get_uint(value); break;
    case PROP_EOS_ON_LEAVE: s.eos_on_leave = g_value_get_boolean(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(object);
}

static void gst_whip_server_src_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  wish::WhipServer *server = wish::whip_server(object);
  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, server->stats());
    return;
  }
  const wish::Settings &s = server->settings;
  GST_OBJECT_LOCK(object);
  switch (prop_id) {
    case PROP_PATH: g_value_set_string(value, server->http.path.c_str()); break;
    case PROP_TAKEOVER: g_value_set_boolean(value, s.takeover); break;
    case PROP_LATENCY: g_value_set_uint(value, s.latency); break;
    case PROP_PUBLISHER_TIMEOUT: g_value_set_uint(value, s.publisher_timeout); break;
    case PROP_EOS_ON_LEAVE: g_value_set_boolean(value, s.eos_on_leave); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(object);
}

static GstStateChangeReturn gst_whip_server_src_change_state(GstElement *element, GstStateChange transition) {
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(gst_whip_server_src_parent_class)->change_state(element, transition);
  return wish::live_source_result(transition, ret);
}

static void gst_whip_server_src_class_init(GstWhipServerSrcClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GST_DEBUG_CATEGORY_INIT(whipserversrc_debug, "whipserversrc", 0, "WHIP server source");
  GST_WISH_SERVER_BIN_CLASS(klass)->create_impl = [](GstWishServerBin *self) -> wish::ServerElement * {
    return new wish::WhipServer(GST_ELEMENT(self));
  };
  gobject_class->set_property = gst_whip_server_src_set_property;
  gobject_class->get_property = gst_whip_server_src_get_property;
  element_class->change_state = gst_whip_server_src_change_state;

  wish::install_path_property(gobject_class, PROP_PATH, "WHIP", "/whip");
  auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(gobject_class, PROP_TAKEOVER,
      g_param_spec_boolean("takeover", "Takeover",
                           "A new publisher on a live stream replaces the current one instead of getting 409 Conflict",
                           FALSE, static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(gobject_class, PROP_LATENCY,
      g_param_spec_uint("latency", "Latency", "Jitterbuffer size in ms", 0, 10000, 50, flags));
  g_object_class_install_property(gobject_class, PROP_PUBLISHER_TIMEOUT,
      g_param_spec_uint("publisher-timeout", "Publisher timeout",
                        "Seconds without any packet before a publisher that did not DELETE counts as gone (a "
                        "publisher that never connects goes after this too, at least 5 s)",
                        1, 3600, 5, static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(gobject_class, PROP_EOS_ON_LEAVE,
      g_param_spec_boolean("eos-on-leave", "EOS on leave",
                           "Push EOS on the output pads when their publisher leaves (default: pads and pipeline stay "
                           "up for the next publisher)",
                           FALSE, static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(gobject_class, PROP_STATS,
      g_param_spec_boxed("stats", "Statistics",
                         "publishing, session-id (the publisher of the pads), publishers (count so far), "
                         "buffers-out and streams (names of the named streams this element publishes)",
                         GST_TYPE_STRUCTURE, static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  wish::MediaOutputs::add_pad_templates(element_class);
  gst_element_class_set_static_metadata(
      element_class, "WHIP server source", "Source/Network/WebRTC",
      "Takes WHIP publishers (RFC 9725): the one on the path feeds the pads (decoded by default, encoded or RTP "
      "when downstream asks), those on path/<name> publish named streams of the HTTP server; posts "
      "wish-publisher-joined and wish-publisher-left element messages",
      "wish project");
}
