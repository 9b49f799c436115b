/**
 * SECTION:element-whepserversink
 * @title: whepserversink
 *
 * Serves the pipeline's audio and video to any number of WHEP players
 * (draft-ietf-wish-whep-03) over HTTP(S). Raw input is encoded once (H.264 constrained
 * baseline or VP8, Opus); encoded input is sent as is. Each input is payloaded once and its
 * packets are handed to every viewer's webrtcbin; the viewers never touch the shared chain.
 *
 * The inputs form the stream named after the path ("whep" for /whep). Streams other server
 * elements on the same HTTP server carry (WHIP publishers that named theirs, /whip/cam1) are
 * played at <path>/<name> (/whep/cam1), and switch-stream re-points viewers at run time.
 *
 * |[
 * gst-launch-1.0 whepserversink name=s port=8889 \
 *   videotestsrc is-live=true ! s. audiotestsrc is-live=true ! s.
 * ]|
 * and open http://localhost:8889/whep in a browser.
 */
#include "whepserversink.h"

#include <gst/webrtc/webrtc.h>

#include <algorithm>
#include <optional>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gst_utils.h"
#include "gstptr.h"
#include "output_slot.h"
#include "player_page.h"
#include "send_chain.h"
#include "server_bin.h"
#include "server_element.h"
#include "whep_server.h"

GST_DEBUG_CATEGORY(whepserversink_debug);
#define GST_CAT_DEFAULT whepserversink_debug

namespace wish {

namespace {

// RTP caps webrtcbin is told about for one viewer: the payload type and fmtp the viewer
// offered, so the answer's codec intersection succeeds, and the SSRC the slot sends with.
GstCaps *viewer_caps(GstCaps *rtp_caps, int pt, guint ssrc, const RtpMap *offered) {
  const GstStructure *s = gst_caps_get_structure(rtp_caps, 0);
  GstStructure *out = gst_structure_new_empty("application/x-rtp");
  for (const char *field : {"media", "encoding-name", "clock-rate", "encoding-params", "packetization-mode",
                            "profile-level-id", "sprop-stereo", "stereo"}) {
    const GValue *v = gst_structure_get_value(s, field);
    if (v) gst_structure_set_value(out, field, v);
  }
  gst_structure_set(out, "payload", G_TYPE_INT, pt, "ssrc", G_TYPE_UINT, ssrc, nullptr);
  const gchar *enc = gst_structure_get_string(s, "encoding-name");
  if (enc && g_ascii_strcasecmp(enc, "OPUS") == 0 && !gst_structure_has_field(out, "encoding-params"))
    gst_structure_set(out, "encoding-params", G_TYPE_STRING, "2", nullptr);
  if (offered && !offered->fmtp.empty()) {
    // Keep the peer's fmtp values so intersection with its offer is exact.
    const std::string &fmtp = offered->fmtp;
    size_t i = 0;
    while (i < fmtp.size()) {
      size_t end = fmtp.find(';', i);
      if (end == std::string::npos) end = fmtp.size();
      std::string kv = fmtp.substr(i, end - i);
      size_t eq = kv.find('=');
      if (eq != std::string::npos) {
        std::string k = std::string(trim(kv.substr(0, eq))), val = std::string(trim(kv.substr(eq + 1)));
        for (auto &c : k) c = static_cast<char>(g_ascii_tolower(c));
        // webrtcbin adds level-asymmetry-allowed for H.264 itself
        if (!k.empty() && g_ascii_isalpha(k[0]) && k != "level-asymmetry-allowed")
          gst_structure_set(out, k.c_str(), G_TYPE_STRING, val.c_str(), nullptr);
      }
      i = end + 1;
    }
  }
  GstCaps *caps = gst_caps_new_empty();
  gst_caps_append_structure(caps, out);
  return caps;
}

// The first codec of the viewer's m-line (in its order) that raw media can be encoded to
// here, with its payload type.
std::optional<std::pair<SendCodec, int>> encodable_codec(const MediaSection &m) {
  for (int pt : m.formats) {
    auto it = m.rtpmap.find(pt);
    if (it == m.rtpmap.end()) continue;
    if (auto codec = encodable(m.kind, it->second.encoding))
      if (auto matched = match_codec(m, *codec)) return std::make_pair(*codec, *matched);
  }
  return std::nullopt;
}

}  // namespace

}  // namespace wish

struct _GstWhepServerSink {
  GstWishServerBin parent;
};

G_DEFINE_TYPE(GstWhepServerSink, gst_whep_server_sink, GST_TYPE_WISH_SERVER_BIN);
GST_ELEMENT_REGISTER_DEFINE(whepserversink, "whepserversink", GST_RANK_NONE, GST_TYPE_WHEP_SERVER_SINK);

namespace wish {

WhepServer *whep_server(gpointer element) { return static_cast<WhepServer *>(server_impl(element)); }

void WhepServer::configure_endpoint(EndpointConfig *cfg) {
  GST_OBJECT_LOCK(element());
  cfg->kind = EndpointKind::Whep;
  cfg->max_sessions = settings.max_viewers;
  cfg->redirect_to = split_list(settings.redirect_endpoints);
  cfg->counter_offer = settings.counter_offer == GST_WISH_COUNTER_OFFER_NEVER    ? CounterOfferMode::Never
                       : settings.counter_offer == GST_WISH_COUNTER_OFFER_ALWAYS ? CounterOfferMode::Always
                                                                                 : CounterOfferMode::WhenNeeded;
  cfg->connect_timeout_ms = settings.viewer_timeout * 1000;
  const bool least_loaded = settings.redirect_policy == GST_WISH_REDIRECT_LEAST_LOADED;
  // The other servers are read where this one serves its own metrics, with the same token.
  const std::string metrics_path = http.metrics_path.empty() ? "/metrics" : http.metrics_path;
  const std::string token = http.auth_token;
  GST_OBJECT_UNLOCK(element());
  cfg->player_page = whep_player_page();
  if (least_loaded && !cfg->redirect_to.empty()) {
    std::vector<std::string> urls;
    for (const auto &endpoint : cfg->redirect_to) {
      urls.push_back(metrics_url_for(endpoint, metrics_path));
      if (urls.back().empty())
        GST_WARNING_OBJECT(element(), "redirect endpoint %s is not an http(s) URL: its load is unknown",
                           endpoint.c_str());
    }
    cfg->redirect_loads = std::make_shared<RedirectLoads>(urls.size());
    redirect_probe_ = std::make_unique<RedirectProbe>(urls, token, cfg->redirect_loads);
  }
}

guint WhepServer::silence_timeout_s() {
  GST_OBJECT_LOCK(element());
  guint t = settings.viewer_timeout;
  GST_OBJECT_UNLOCK(element());
  return t;
}

std::string WhepServer::own_name() {
  GST_OBJECT_LOCK(element());
  std::string path = http.endpoint_path();
  GST_OBJECT_UNLOCK(element());
  return path.size() > 1 ? path.substr(1) : "whep";
}

// The inputs become a stream of the server, named after the path.
void WhepServer::on_serving() {
  stream_ = std::make_shared<Stream>(own_name(), std::string("whepserversink ") + GST_ELEMENT_NAME(element()));
  {
    std::lock_guard<std::mutex> lock(inputs_mutex_);
    for (const auto &in : inputs_) stream_->add_track(in->track);
  }
  stream_->set_live(true);
  stream_->set_layers(layers_);
  if (!registry()->add(stream_))
    GST_WARNING_OBJECT(element(), "another stream is called %s on this server: only switch-stream reaches ours",
                       stream_->name().c_str());
}

void WhepServer::on_stop() {
  redirect_probe_.reset();
  // The shared transport posts to this worker: the next start makes one of its own (with the
  // ICE settings of then). Its viewers are released by now.
  if (worker()) worker()->invoke_sync([this] { shared_.reset(); });
  if (stream_ && registry()) registry()->remove(stream_);
  stream_.reset();
}

// ---------------------------------------------------------------------------------------
// Inputs

GstPad *WhepServer::request_pad(GstPadTemplate *templ, const gchar *name) {
  auto input = std::make_unique<Input>();
  input->kind = g_str_has_prefix(GST_PAD_TEMPLATE_NAME_TEMPLATE(templ), "video") ? "video" : "audio";
  std::string pad_name;
  {
    std::lock_guard<std::mutex> lock(inputs_mutex_);
    unsigned &counter = pad_counter_[input->kind == "video" ? 0 : 1];
    pad_name = name ? name : input->kind + "_" + std::to_string(counter);
    counter++;
  }
  GPtr<GstPad> existing = GPtr<GstPad>::adopt(gst_element_get_static_pad(element(), pad_name.c_str()));
  if (existing) {
    GST_WARNING_OBJECT(element(), "pad %s exists already", pad_name.c_str());
    return nullptr;
  }
  input->track = std::make_shared<Track>(input->kind);
  GstElement *entry = gst_element_factory_make("queue", (pad_name + "_queue").c_str());
  g_object_set(entry, "max-size-buffers", 0, "max-size-bytes", 0, "max-size-time", (guint64)(2 * GST_SECOND), nullptr);
  input->entry = GPtr<GstElement>::sink(entry);
  gst_bin_add(GST_BIN(element()), entry);  // the bin takes a reference of its own
  GPtr<GstPad> target = GPtr<GstPad>::adopt(gst_element_get_static_pad(entry, "sink"));
  GstPad *ghost = gst_ghost_pad_new_from_template(pad_name.c_str(), target.get(), templ);
  input->ghost = ghost;
  gst_pad_add_probe(target.get(),
                    static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM | GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM),
                    &WhepServer::on_entry_event, input.get(), nullptr);
  gst_element_sync_state_with_parent(entry);
  gst_pad_set_active(ghost, TRUE);
  if (stream_) stream_->add_track(input->track);
  {
    std::lock_guard<std::mutex> lock(inputs_mutex_);
    inputs_.push_back(std::move(input));
  }
  gst_element_add_pad(element(), ghost);
  GST_DEBUG_OBJECT(element(), "new input pad %s", pad_name.c_str());
  return ghost;
}

void WhepServer::release_pad(GstPad *pad) {
  std::unique_ptr<Input> input;
  {
    std::lock_guard<std::mutex> lock(inputs_mutex_);
    for (auto it = inputs_.begin(); it != inputs_.end(); ++it) {
      if ((*it)->ghost == pad) {
        input = std::move(*it);
        inputs_.erase(it);
        break;
      }
    }
  }
  if (!input) return;
  // Viewers fed by this input lose that stream; their sessions end rather than go silent.
  if (worker())
    worker()->invoke_sync([this, &input] {
      for (const auto &s : sessions())
        for (const auto &o : std::static_pointer_cast<Viewer>(s)->slot->outputs())
          if (o->source() == input->track) end_session(*s, "input-removed");
    });
  input->track->clear_source();
  if (stream_) stream_->remove_track(input->track);
  gst_element_remove_pad(element(), pad);
  std::vector<GPtr<GstElement>> elements = input->chain;
  elements.insert(elements.begin(), input->entry);
  for (const auto &e : elements) {
    if (GST_OBJECT_PARENT(e.get()) != GST_OBJECT(element())) continue;  // the bin is being disposed
    gst_element_set_state(e.get(), GST_STATE_NULL);
    gst_bin_remove(GST_BIN(element()), e.get());
  }
}

GstPadProbeReturn WhepServer::on_entry_event(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  auto *input = static_cast<Input *>(data);
  GPtr<GstElement> owner = GPtr<GstElement>::adopt(gst_pad_get_parent_element(pad));  // the entry queue
  if (!owner) return GST_PAD_PROBE_OK;
  GPtr<GstElement> sink = GPtr<GstElement>::adopt(GST_ELEMENT(gst_object_get_parent(GST_OBJECT(owner.get()))));
  if (!sink) return GST_PAD_PROBE_OK;
  WhepServer *self = whep_server(sink.get());
  if (info->type & GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM) {
    GstQuery *query = GST_PAD_PROBE_INFO_QUERY(info);
    if (GST_QUERY_TYPE(query) != GST_QUERY_CAPS || !input->chain.empty()) return GST_PAD_PROBE_OK;
    answer_input_caps_query(query, input->kind);  // until the chain exists nothing downstream answers
    return GST_PAD_PROBE_HANDLED;
  }
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_EOS:
      input->eos = true;
      if (self->all_inputs_eos()) {
        GST_INFO_OBJECT(sink.get(), "all inputs are EOS");
        gst_element_post_message(sink.get(), gst_message_new_eos(GST_OBJECT(sink.get())));
      }
      break;
    case GST_EVENT_FLUSH_STOP:
    case GST_EVENT_STREAM_START:
      input->eos = false;
      break;
    case GST_EVENT_CAPS:
      if (input->chain.empty()) {
        GstCaps *caps;
        gst_event_parse_caps(event, &caps);
        if (!self->build_chain(input, caps)) return GST_PAD_PROBE_DROP;
      }
      break;
    default:
      break;
  }
  return GST_PAD_PROBE_OK;
}

// Builds entry -> [convert/encode/parse] -> payloader for the first caps seen; the
// payloader's output goes to the track.
bool WhepServer::build_chain(Input *input, GstCaps *caps) {
  GST_OBJECT_LOCK(element());
  EncoderSettings enc = settings.encoder;
  GST_OBJECT_UNLOCK(element());
  std::vector<GstElement *> made;
  std::string summary, detail;
  if (!make_send_chain(caps, enc, &made, &summary, &detail)) {
    GST_ELEMENT_ERROR(element(), STREAM, FORMAT, ("%s", summary.c_str()), ("%s", detail.c_str()));
    return false;
  }
  // Raw input goes through a tee first: encodings in other codecs, for viewers that cannot
  // take this one, branch off there (TranscodeHost) instead of decoding this encoding.
  GstElement *tee = nullptr;
  const gchar *media = gst_structure_get_name(gst_caps_get_structure(caps, 0));
  if (g_str_has_suffix(media, "/x-raw")) {
    tee = gst_element_factory_make("tee", nullptr);
    GstElement *queue = gst_element_factory_make("queue", nullptr);
    g_object_set(tee, "allow-not-linked", TRUE, nullptr);
    g_object_set(queue, "max-size-buffers", 0, "max-size-bytes", 0, "max-size-time", (guint64)(2 * GST_SECOND), nullptr);
    made.insert(made.begin(), {tee, queue});
  }
  std::vector<GPtr<GstElement>> chain;
  for (GstElement *e : made) {
    chain.push_back(GPtr<GstElement>::sink(e));
    gst_bin_add(GST_BIN(element()), e);
  }
  GstElement *prev = input->entry.get();
  for (const auto &e : chain) {
    if (!gst_element_link(prev, e.get())) {
      GST_ELEMENT_ERROR(element(), CORE, NEGOTIATION, ("Cannot link the %s chain", input->kind.c_str()),
                        ("%s ! %s failed", GST_OBJECT_NAME(prev), GST_OBJECT_NAME(e.get())));
      return false;
    }
    prev = e.get();
  }
  GPtr<GstPad> out = GPtr<GstPad>::adopt(gst_element_get_static_pad(chain.back().get(), "src"));
  input->track->set_source(out.get());
  if (tee) input->track->set_raw_source(tee);
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) gst_element_sync_state_with_parent(it->get());
  input->chain = std::move(chain);
  GST_INFO_OBJECT(element(), "%s input %s: %" GST_PTR_FORMAT, input->kind.c_str(), GST_PAD_NAME(input->ghost), caps);
  return true;
}

bool WhepServer::all_inputs_eos() {
  std::lock_guard<std::mutex> lock(inputs_mutex_);
  for (const auto &in : inputs_)
    if (!in->eos) return false;
  return !inputs_.empty();
}

// ---------------------------------------------------------------------------------------
// Viewers

std::shared_ptr<Stream> WhepServer::stream_for(const std::string &requested, const std::string &kind) {
  auto reg = registry();
  if (!reg) return nullptr;
  return reg->resolve(requested.empty() ? own_name() : requested, kind);
}

// The tracks of that kind viewers of `requested` see, in order.
std::vector<std::shared_ptr<Track>> WhepServer::tracks_for(const std::string &requested, const std::string &kind) {
  std::vector<std::shared_ptr<Track>> out;
  if (auto stream = stream_for(requested, kind))
    for (const auto &t : stream->tracks())
      if (t->kind() == kind) out.push_back(t);
  return out;
}

Admission WhepServer::admit(const std::string &requested) {
  if (!running()) return {503, "the server is not playing"};
  auto video = stream_for(requested, "video"), audio = stream_for(requested, "audio");
  if (!video && !audio) return {404, "no stream named '" + requested + "'"};
  if ((video && video->ready()) || (audio && audio->ready())) return {};
  return {409, video == stream_ ? "no media is being published yet" : "nothing is published on this stream yet"};
}

// Every kind of media the stream has and the offer receives must reach the viewer: in the
// track's own codec, or encoded for the viewer when transcoding is allowed. Never an answer
// that leaves the viewer's video m-line inactive without saying why.
bool WhepServer::can_answer(const std::string &requested, const SessionDescription &offer, std::string *why) {
  bool transcoding = registry() && registry()->transcoding(), any = false;
  for (const char *kind : {"video", "audio"}) {
    std::vector<std::shared_ptr<Track>> tracks;
    for (const auto &t : tracks_for(requested, kind))
      if (t->has_caps()) tracks.push_back(t);
    bool offered = false, served = false;
    for (const auto &m : offer.media) {
      if (m.kind != kind || m.rejected() || (m.direction != Direction::RecvOnly && m.direction != Direction::SendRecv))
        continue;
      offered = true;
      for (const auto &t : tracks) served = served || match_codec(m, t->codec());
      if (!served && transcoding && !tracks.empty()) served = encodable_codec(m).has_value();
    }
    if (offered && !tracks.empty() && !served) {
      if (why)
        *why = std::string("the stream's ") + kind + " is " + tracks[0]->codec().encoding + " and the offer's " + kind +
               " m-lines take none of it" + (transcoding ? " nor a codec this server can encode" : " (transcoding is off)");
      return false;
    }
    any = any || (offered && served);
  }
  if (!any && why) *why = "no codec in common with the offer";
  return any;
}

// Pairs each m-line the player can receive with a track of that kind, first come first
// served; for a counter-offer, every track with media.
std::vector<PlannedOutput> WhepServer::plan(const SessionRequest &request) {
  std::vector<PlannedOutput> out;
  std::map<std::string, std::vector<std::shared_ptr<Track>>> tracks;
  for (const char *kind : {"video", "audio"}) tracks[kind] = tracks_for(request.stream, kind);
  if (request.counter_offer) {
    for (const auto &kv : tracks)
      for (size_t i = 0; i < kv.second.size(); i++) {
        GPtr<GstCaps> caps = kv.second[i]->caps();
        if (!caps) continue;
        gint pt = kv.first == "audio" ? 111 : 96;
        gst_structure_get_int(gst_caps_get_structure(caps.get(), 0), "payload", &pt);
        out.push_back({kv.second[i], i, pt, std::nullopt});
      }
    return out;
  }
  std::vector<Track *> used;
  bool transcoding = registry() && registry()->transcoding();
  for (const auto &m : request.parsed.media) {
    if (m.rejected() || (m.direction != Direction::RecvOnly && m.direction != Direction::SendRecv)) continue;
    auto kind = tracks.find(m.kind);
    if (kind == tracks.end()) continue;
    // The first unused track in a codec of the m-line; else, transcoding allowed, the first
    // unused track encoded for the viewer (once per codec for all such viewers).
    std::optional<PlannedOutput> chosen;
    for (int pass = 0; pass < 2 && !chosen; pass++) {
      if (pass == 1 && !transcoding) break;
      for (size_t i = 0; i < kind->second.size() && !chosen; i++) {
        const auto &t = kind->second[i];
        if (std::find(used.begin(), used.end(), t.get()) != used.end() || !t->has_caps()) continue;
        if (pass == 0) {
          if (auto pt = match_codec(m, t->codec())) chosen = PlannedOutput{t, i, *pt, std::nullopt, std::nullopt};
        } else if (auto codec = encodable_codec(m)) {
          chosen = PlannedOutput{t, i, codec->second, std::nullopt, codec->first};
        }
      }
    }
    if (!chosen) continue;
    auto offered = m.rtpmap.find(chosen->pt);
    if (offered != m.rtpmap.end()) chosen->offered = offered->second;
    used.push_back(chosen->track.get());
    out.push_back(std::move(*chosen));
  }
  return out;
}

bool WhepServer::attach_media(ServerSession &session, const SessionRequest &request, MediaResult *refusal) {
  auto &viewer = static_cast<Viewer &>(session);
  if (!stream_for(request.stream, "video") && !stream_for(request.stream, "audio")) {
    *refusal = MediaResult::failure(404, "no stream named '" + request.stream + "'");
    return false;
  }
  std::vector<PlannedOutput> planned = plan(request);
  if (planned.empty()) {
    *refusal = MediaResult::failure(422, "no codec in common with the offer");
    return false;
  }
  GstElement *webrtc = session.peer->webrtcbin();
  viewer.slot = std::make_shared<Slot>(request.stream.empty() ? own_name() : request.stream);
  for (auto &p : planned) {
    // One SSRC per output for the viewer's whole session, whatever it is pointed at; one
    // a gone viewer had, if any (ssrc_pool.h: GLib keeps a little for every SSRC announced).
    guint ssrc = viewer.ssrcs.take();
    GPtr<GstCaps> track_caps =
        p.encoded ? GPtr<GstCaps>::adopt(rtp_caps_for(p.encoded->kind, p.encoded->encoding)) : p.track->caps();
    if (!track_caps) continue;  // its source went meanwhile
    GPtr<GstCaps> caps = GPtr<GstCaps>::adopt(
        viewer_caps(track_caps.get(), p.pt, ssrc, p.offered ? &*p.offered : nullptr));
    GstPadTemplate *templ = gst_element_get_pad_template(webrtc, "sink_%u");
    GPtr<GstPad> pad = GPtr<GstPad>::adopt(gst_element_request_pad(webrtc, templ, nullptr, caps.get()));
    if (!pad) {
      *refusal = MediaResult::failure(500, "webrtcbin refused a sink pad");
      return false;
    }
    GstWebRTCRTPTransceiver *trans = nullptr;
    g_object_get(pad.get(), "transceiver", &trans, nullptr);
    if (trans) {
      g_object_set(trans, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, "codec-preferences", caps.get(),
                   nullptr);
      gst_object_unref(trans);
    }
    SendCodec codec = p.encoded ? *p.encoded : p.track->codec();
    if (p.encoded)
      GST_INFO_OBJECT(element(), "viewer %s gets %s %s, encoded for it", session.id.c_str(), codec.kind.c_str(),
                      codec.encoding.c_str());
    SlotOutput::Params params;
    params.pad = pad;
    params.caps = caps;
    params.kind = p.track->kind();
    params.encoding = codec.encoding;
    params.index = p.index;
    params.ssrc = ssrc;
    params.payload_type = static_cast<uint8_t>(p.pt);
    params.clock_rate = codec.clock_rate ? codec.clock_rate : 90000;
    viewer.slot->add_output(SlotOutput::create(params));
    GST_DEBUG_OBJECT(element(), "viewer %s gets %" GST_PTR_FORMAT, session.id.c_str(), caps.get());
  }
  RtxSsrcs::watch(webrtc, viewer.rtx);
  registry()->join(viewer.slot);
  return true;
}

void WhepServer::on_answered(ServerSession &session) { post_viewer_message("wish-viewer-joined", session.id, nullptr); }

}  // namespace wish

// ---------------------------------------------------------------------------------------
// GObject glue

enum {
  PROP_PATH = 1,
  PROP_MAX_VIEWERS,
  PROP_MAX_CPU_LOAD,
  PROP_REDIRECT_ENDPOINTS,
  PROP_REDIRECT_POLICY,
  PROP_COUNTER_OFFER,
  PROP_VIEWER_TIMEOUT,
  PROP_STATS,
  PROP_VIDEO_LAYERS,
  PROP_SHARED_TRANSPORT,
  PROP_ENCODER_FIRST,  // the encoder properties (send_chain.h)
};

GType gst_wish_counter_offer_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_WISH_COUNTER_OFFER_NEVER, "Never counter-offer; refuse offers without a common codec with 422", "never"},
      {GST_WISH_COUNTER_OFFER_WHEN_NEEDED, "Counter-offer (406) only when the player's offer cannot be answered",
       "when-needed"},
      {GST_WISH_COUNTER_OFFER_ALWAYS, "Always answer a POST with a 406 counter-offer", "always"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstWishCounterOffer", values));
  return type;
}

GType gst_wish_redirect_policy_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_WISH_REDIRECT_ROUND_ROBIN, "Each redirected viewer to the next of redirect-endpoints in turn",
       "round-robin"},
      {GST_WISH_REDIRECT_LEAST_LOADED,
       "To the redirect endpoint whose server serves the fewest viewers, read from its Prometheus metrics "
       "(wish_viewers) every 2 s at this element's metrics-path (default /metrics) with its auth-token; servers "
       "that do not answer are skipped, in turn when none does",
       "least-loaded"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstWishRedirectPolicy", values));
  return type;
}

static void gst_whep_server_sink_init(GstWhepServerSink *self) { GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SINK); }

static void gst_whep_server_sink_set_property(GObject *object, guint prop_id, const GValue *value,
                                              GParamSpec *pspec) {
  wish::WhepServer *server = wish::whep_server(object);
  wish::Settings &s = server->settings;
  GST_OBJECT_LOCK(object);
  if (!wish::set_encoder_property(s.encoder, PROP_ENCODER_FIRST, prop_id, value)) {
    switch (prop_id) {
      case PROP_PATH: server->http.path = wish::string_from_value(value); break;
      case PROP_MAX_VIEWERS: s.max_viewers = g_value_get_uint(value); break;
      case PROP_MAX_CPU_LOAD: s.max_cpu_load = g_value_get_uint(value); break;
      case PROP_REDIRECT_ENDPOINTS: s.redirect_endpoints = wish::string_from_value(value); break;
      case PROP_REDIRECT_POLICY: s.redirect_policy = static_cast<GstWishRedirectPolicy>(g_value_get_enum(value)); break;
      case PROP_COUNTER_OFFER: s.counter_offer = static_cast<GstWishCounterOffer>(g_value_get_enum(value)); break;
      case PROP_VIEWER_TIMEOUT: s.viewer_timeout = g_value_get_uint(value); break;
      case PROP_VIDEO_LAYERS: s.video_layers = wish::string_from_value(value); break;
      case PROP_SHARED_TRANSPORT: s.shared_transport = g_value_get_boolean(value); break;
      default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
  }
  GST_OBJECT_UNLOCK(object);
}

static void gst_whep_server_sink_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  wish::WhepServer *server = wish::whep_server(object);
  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, server->stats());
    return;
  }
  const wish::Settings &s = server->settings;
  GST_OBJECT_LOCK(object);
  if (!wish::get_encoder_property(s.encoder, PROP_ENCODER_FIRST, prop_id, value)) {
    switch (prop_id) {
      case PROP_PATH: g_value_set_string(value, server->http.path.c_str()); break;
      case PROP_MAX_VIEWERS: g_value_set_uint(value, s.max_viewers); break;
      case PROP_MAX_CPU_LOAD: g_value_set_uint(value, s.max_cpu_load); break;
      case PROP_REDIRECT_ENDPOINTS: g_value_set_string(value, s.redirect_endpoints.c_str()); break;
      case PROP_REDIRECT_POLICY: g_value_set_enum(value, s.redirect_policy); break;
      case PROP_COUNTER_OFFER: g_value_set_enum(value, s.counter_offer); break;
      case PROP_VIEWER_TIMEOUT: g_value_set_uint(value, s.viewer_timeout); break;
      case PROP_VIDEO_LAYERS: g_value_set_string(value, s.video_layers.c_str()); break;
      case PROP_SHARED_TRANSPORT: g_value_set_boolean(value, s.shared_transport); break;
      default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
  }
  GST_OBJECT_UNLOCK(object);
}

static void gst_whep_server_sink_handle_message(GstBin *bin, GstMessage *message) {
  // Viewers' webrtcbins hold sinks whose EOS says nothing about the element: it posts its own
  // when every input is EOS.
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_EOS && GST_MESSAGE_SRC(message) != GST_OBJECT(bin)) {
    gst_message_unref(message);
    return;
  }
  GST_BIN_CLASS(gst_whep_server_sink_parent_class)->handle_message(bin, message);
}

static GstPad *gst_whep_server_sink_request_new_pad(GstElement *element, GstPadTemplate *templ, const gchar *name,
                                                    const GstCaps *) {
  return wish::whep_server(element)->request_pad(templ, name);
}

static void gst_whep_server_sink_release_pad(GstElement *element, GstPad *pad) {
  wish::whep_server(element)->release_pad(pad);
}

static guint gst_whep_server_sink_reconnect_viewers(GstElement *element, const gchar *url) {
  auto endpoint = wish::whep_server(element)->endpoint();
  return endpoint ? static_cast<guint>(endpoint->announce_reconnect(url ? url : "")) : 0;
}

static void gst_whep_server_sink_class_init(GstWhepServerSinkClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GST_DEBUG_CATEGORY_INIT(whepserversink_debug, "whepserversink", 0, "WHEP server sink");

  GST_WISH_SERVER_BIN_CLASS(klass)->create_impl = [](GstWishServerBin *self) -> wish::ServerElement * {
    return new wish::WhepServer(GST_ELEMENT(self));
  };
  gobject_class->set_property = gst_whep_server_sink_set_property;
  gobject_class->get_property = gst_whep_server_sink_get_property;
  element_class->request_new_pad = gst_whep_server_sink_request_new_pad;
  element_class->release_pad = gst_whep_server_sink_release_pad;
  GST_BIN_CLASS(klass)->handle_message = gst_whep_server_sink_handle_message;

  auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  auto ro = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  wish::install_path_property(gobject_class, PROP_PATH, "WHEP", "/whep");
  g_object_class_install_property(gobject_class, PROP_MAX_VIEWERS,
      g_param_spec_uint("max-viewers", "Maximum viewers",
                        "Viewers served at once; more get 503 with Retry-After, or 307 to redirect-endpoints (0 = "
                        "unlimited)",
                        0, G_MAXUINT, 0, flags));
  g_object_class_install_property(gobject_class, PROP_MAX_CPU_LOAD,
      g_param_spec_uint("max-cpu-load", "Maximum CPU load",
                        "CPU the process may use (percent of one core, over the last 2 s) before new viewers get 307 "
                        "to redirect-endpoints, or 503 with Retry-After without them; sessions are never "
                        "redirected (0 = no limit)",
                        0, 6400, 0, static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                                             GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property(gobject_class, PROP_REDIRECT_ENDPOINTS,
      g_param_spec_string("redirect-endpoints", "Redirect endpoints",
                          "Comma-separated WHEP endpoint URLs new viewers are sent to (307, as redirect-policy "
                          "chooses) once max-viewers are served, instead of 503; a named stream's name is appended. "
                          "Empty: 503",
                          "", flags));
  g_object_class_install_property(gobject_class, PROP_REDIRECT_POLICY,
      g_param_spec_enum("redirect-policy", "Redirect policy",
                        "Which of redirect-endpoints a redirected viewer is sent to: in turn, or the least loaded",
                        gst_wish_redirect_policy_get_type(), GST_WISH_REDIRECT_ROUND_ROBIN, flags));
  g_object_class_install_property(gobject_class, PROP_COUNTER_OFFER,
      g_param_spec_enum("counter-offer", "Counter-offer",
                        "When to answer a POST with a 406 counter-offer carrying the server's own SDP offer",
                        gst_wish_counter_offer_get_type(), GST_WISH_COUNTER_OFFER_WHEN_NEEDED, flags));
  wish::install_encoder_properties(gobject_class, PROP_ENCODER_FIRST, "new viewers get a keyframe at once anyway");
  g_object_class_install_property(gobject_class, PROP_VIEWER_TIMEOUT,
      g_param_spec_uint("viewer-timeout", "Viewer timeout",
                        "Seconds a viewer has to connect after its answer, and seconds without any packet from a "
                        "connected viewer (RTCP, DTLS), before its session is removed: for players that never "
                        "connect or vanish without DELETE",
                        2, 3600, 10, static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(gobject_class, PROP_VIDEO_LAYERS,
      g_param_spec_string("video-layers", "Video layers",
                          "Lower layers viewers may choose instead of the video as it comes (layer 'h'), through "
                          "the WHEP layer extension: comma-separated rid:WIDTHxHEIGHT:KBPS, largest first, e.g. "
                          "m:640x360:800,l:320x180:300. Each is encoded once, from its first viewer to its last "
                          "(transcode must be allowed). Empty: no layers",
                          "", flags));
  g_object_class_install_property(gobject_class, PROP_SHARED_TRANSPORT,
      g_param_spec_boolean("shared-transport", "Shared transport",
                           "Serve plain WHEP viewers on one ICE agent and thread for all of them (DTLS-SRTP, "
                           "RTX, PLI/FIR, trickle and ICE restart) instead of a webrtcbin each. Offers it cannot "
                           "serve (counter-offers, transcoding, video-layers, simulcast, a=setup:passive, "
                           "stun-server or turn-servers set) still get a webrtcbin. Its viewers are reported as "
                           "the others are: stats, metrics, messages, WHEP events. false: a webrtcbin per viewer",
                           TRUE, flags));
  g_object_class_install_property(gobject_class, PROP_STATS,
      g_param_spec_boxed("stats", "Statistics",
                         "viewer-count, inputs-ready (inputs whose stream can be served) and viewers, a list "
                         "of structures with session-id, connection-state, stream (asked for), showing (after "
                         "switch-stream), packets-sent, bytes-sent and duration",
                         GST_TYPE_STRUCTURE, ro));

  /**
   * GstWhepServerSink::reconnect-viewers:
   * @url: (nullable): the WHEP endpoint players move to; NULL or "": the redirect-endpoints
   *   in turn (the stream's name appended), or without those this endpoint again (a new
   *   session, e.g. through a load balancer)
   *
   * Sends the server-sent event `reconnect` to every player subscribed to it: each POSTs a
   * new session there and DELETEs its old one (rebalancing, draining before maintenance).
   * The element sends it by itself when it stops.
   *
   * Returns: how many players were told.
   */
  g_signal_new_class_handler("reconnect-viewers", G_TYPE_FROM_CLASS(klass),
                             static_cast<GSignalFlags>(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
                             G_CALLBACK(gst_whep_server_sink_reconnect_viewers), nullptr, nullptr, nullptr, G_TYPE_UINT,
                             1, G_TYPE_STRING);

  wish::add_send_pad_templates(element_class);
  gst_element_class_set_static_metadata(
      element_class, "WHEP server sink", "Sink/Network/WebRTC",
      "Serves audio and video to WHEP players (draft-ietf-wish-whep-03) over HTTP(S), its own inputs and the "
      "other streams of its HTTP server; posts wish-viewer-joined / wish-viewer-left element messages",
      "wish project");
  gst_type_mark_as_plugin_api(gst_wish_counter_offer_get_type(), static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(gst_wish_redirect_policy_get_type(), static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(gst_wish_video_codec_get_type(), static_cast<GstPluginAPIFlags>(0));
}
