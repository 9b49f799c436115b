/**
 * SECTION:element-whipsink
 * @title: whipsink
 *
 * Publishes to any WHIP endpoint (RFC 9725). Request pads `video_%u` and `audio_%u` (one of
 * each): raw input is encoded inside (H.264 constrained baseline or VP8, Opus), encoded
 * H.264 / VP8 / VP9 / Opus is sent as it is.
 *
 * |[
 * gst-launch-1.0 whipsink name=w whip-endpoint=http://127.0.0.1:8889/whip \
 *   videotestsrc is-live=true ! w. audiotestsrc is-live=true ! w.
 * ]|
 */
#include "whipsink.h"

#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gst_utils.h"
#include "send_chain.h"
#include "client_properties.h"
#include "session_client.h"
#include "whepserversink.h"

GST_DEBUG_CATEGORY_STATIC(whipsink_debug);
#define GST_CAT_DEFAULT whipsink_debug

namespace wish {

namespace {

// One request pad: entry queue -> encoder/parser -> payloader, feeding the session's
// webrtcbin whenever there is one.
struct SendInput {
  std::string kind;
  GstPad *ghost = nullptr;        // owned by the element
  GstElement *entry = nullptr;    // owned by the bin
  GstElement *payloader = nullptr;  // owned by the bin; null until the first caps
  std::atomic<bool> ready{false};   // payloader has negotiated RTP caps
  GstCaps *rtp_caps = nullptr;      // the payloader's caps, for webrtcbin; under the media mutex
  ~SendInput() {
    if (rtp_caps) gst_caps_unref(rtp_caps);
  }
  std::atomic<bool> eos{false};
  GstPad *webrtc_pad = nullptr;  // request pad of the current webrtcbin; under the media mutex
  bool primed = false;           // webrtc_pad has had the stream's sticky events; under the media mutex
};

}  // namespace

// whipsink's media: sendonly transceivers fed by the inputs' payloaders.
class PublishMedia : public MediaSide {
public:
  explicit PublishMedia(GstWhipSink *element) : element_(element) {}

  EncoderSettings encoder;  // guarded by the element's object lock
  SessionClient *client = nullptr;
  std::atomic<bool> running{false};

  GstPad *request_pad(GstPadTemplate *templ, const gchar *name);
  void release_pad(GstPad *pad);
  void maybe_begin();
  void set_rtp_caps(SendInput *in, GstCaps *caps);

  bool attach(GstElement *webrtc, std::string *error) override;
  void detach(GstElement *webrtc) override;

private:
  static GstPadProbeReturn on_entry(GstPad *pad, GstPadProbeInfo *info, gpointer data);
  static GstPadProbeReturn on_payloader_output(GstPad *pad, GstPadProbeInfo *info, gpointer data);
  static GstPadProbeReturn on_webrtc_upstream(GstPad *pad, GstPadProbeInfo *info, gpointer data);
  GstPad *take_target(SendInput *in, bool *prime);
  void unprime(SendInput *in, GstPad *target);
  bool build_chain(SendInput *in, GstCaps *caps);
  void on_input_eos();

  GstWhipSink *element_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<SendInput>> inputs_;
  std::atomic<bool> begun_{false};
};

}  // namespace wish

struct _GstWhipSink {
  GstBin parent;
  wish::PublishMedia *media;
  wish::SessionClient *client;
};

G_DEFINE_TYPE(GstWhipSink, gst_whip_sink, GST_TYPE_BIN);
GST_ELEMENT_REGISTER_DEFINE(whipsink, "whipsink", GST_RANK_NONE, GST_TYPE_WHIP_SINK);


namespace wish {

GstPad *PublishMedia::request_pad(GstPadTemplate *templ, const gchar *) {
  std::string kind = g_str_has_prefix(GST_PAD_TEMPLATE_NAME_TEMPLATE(templ), "video") ? "video" : "audio";
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto &in : inputs_)
    if (in->kind == kind) {
      GST_WARNING_OBJECT(element_, "WHIP carries one %s track: no second %s pad", kind.c_str(), kind.c_str());
      return nullptr;
    }
  auto in = std::make_unique<SendInput>();
  in->kind = kind;
  std::string name = kind + "_0";
  in->entry = gst_element_factory_make("queue", (name + "_queue").c_str());
  g_object_set(in->entry, "max-size-buffers", 0, "max-size-bytes", 0, "max-size-time", (guint64)(2 * GST_SECOND),
               nullptr);
  gst_bin_add(GST_BIN(element_), in->entry);
  GstPad *target = gst_element_get_static_pad(in->entry, "sink");
  in->ghost = gst_ghost_pad_new_from_template(name.c_str(), target, templ);
  gst_pad_add_probe(target,
                    static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM | GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM),
                    &PublishMedia::on_entry, in.get(), nullptr);
  gst_object_unref(target);
  gst_element_sync_state_with_parent(in->entry);
  gst_pad_set_active(in->ghost, TRUE);
  gst_element_add_pad(GST_ELEMENT(element_), in->ghost);
  GstPad *ghost = in->ghost;
  inputs_.push_back(std::move(in));
  return ghost;
}

void PublishMedia::release_pad(GstPad *pad) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = inputs_.begin(); it != inputs_.end(); ++it) {
    if ((*it)->ghost != pad) continue;
    gst_element_remove_pad(GST_ELEMENT(element_), pad);
    inputs_.erase(it);
    return;
  }
}

GstPadProbeReturn PublishMedia::on_entry(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  auto *in = static_cast<SendInput *>(data);
  auto *element = GST_WHIP_SINK(GST_OBJECT_PARENT(GST_OBJECT_PARENT(pad)));
  PublishMedia *self = element->media;
  if (info->type & GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM) {
    GstQuery *query = GST_PAD_PROBE_INFO_QUERY(info);
    if (GST_QUERY_TYPE(query) != GST_QUERY_CAPS || in->payloader) return GST_PAD_PROBE_OK;
    answer_input_caps_query(query, in->kind);
    return GST_PAD_PROBE_HANDLED;
  }
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
    in->eos = true;
    self->on_input_eos();
  } else if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS && !in->payloader) {
    GstCaps *caps;
    gst_event_parse_caps(event, &caps);
    if (!self->build_chain(in, caps)) return GST_PAD_PROBE_DROP;
  }
  return GST_PAD_PROBE_OK;
}

bool PublishMedia::build_chain(SendInput *in, GstCaps *caps) {
  GST_OBJECT_LOCK(element_);
  EncoderSettings enc = encoder;
  GST_OBJECT_UNLOCK(element_);
  std::vector<GstElement *> chain;
  std::string summary, detail;
  if (!make_send_chain(caps, enc, &chain, &summary, &detail)) {
    GST_ELEMENT_ERROR(element_, STREAM, FORMAT, ("%s", summary.c_str()), ("%s", detail.c_str()));
    return false;
  }
  for (GstElement *e : chain) gst_bin_add(GST_BIN(element_), e);
  GstElement *prev = in->entry;
  for (GstElement *e : chain) {
    gst_element_link(prev, e);
    prev = e;
  }
  GstPad *src = gst_element_get_static_pad(chain.back(), "src");
  gst_pad_add_probe(src,
                    static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST |
                                                 GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
                    &PublishMedia::on_payloader_output, in, nullptr);
  gst_object_unref(src);
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) gst_element_sync_state_with_parent(*it);
  in->payloader = chain.back();
  GST_INFO_OBJECT(element_, "%s input: %" GST_PTR_FORMAT, in->kind.c_str(), caps);
  return true;
}

// The payloader's src pad is never linked: what it sends is handed to the current webrtcbin's
// sink pad here. A link would let webrtcbin's FLUSHING (while it starts, stops or is replaced
// between sessions) reach the input's queue and videotestsrc-like sources, which then pause for
// good; here FLUSHING only loses that buffer. A new sink pad first gets the stream's sticky
// events (stream-start, caps, segment): webrtcbin connects a pad only once it has caps.
GstPadProbeReturn PublishMedia::on_payloader_output(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  auto *in = static_cast<SendInput *>(data);
  auto *element = GST_WHIP_SINK(GST_OBJECT_PARENT(GST_OBJECT_PARENT(pad)));
  PublishMedia *self = element->media;
  GstEvent *event = (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) ? GST_PAD_PROBE_INFO_EVENT(info) : nullptr;
  if (event && GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
    GstCaps *caps;
    gst_event_parse_caps(event, &caps);
    self->set_rtp_caps(in, caps);  // caps mark the input ready
  }
  bool prime = false;
  GstPad *target = self->take_target(in, &prime);
  if (!target) return event ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;  // no session: dropped
  struct Priming {
    GstPad *target;
    bool ok;  // false when the target refused the caps (not active yet)
  } priming{target, true};
  if (prime)
    gst_pad_sticky_events_foreach(
        pad,
        [](GstPad *, GstEvent **ev, gpointer d) -> gboolean {
          auto *p = static_cast<Priming *>(d);
          if (!gst_pad_send_event(p->target, gst_event_ref(*ev)) && GST_EVENT_TYPE(*ev) == GST_EVENT_CAPS) p->ok = false;
          return TRUE;
        },
        &priming);
  bool ok = priming.ok;
  if (event) {
    // A sticky event was stored on the pad before this probe: priming has just sent it.
    if (!prime || !GST_EVENT_IS_STICKY(event)) gst_pad_send_event(target, gst_event_ref(event));
    if (!ok) self->unprime(in, target);
    gst_object_unref(target);
    // On to the missing peer, which marks a sticky event as sent.
    return GST_PAD_PROBE_OK;
  }
  GstFlowReturn ret = GST_FLOW_FLUSHING;
  if (ok) {
    if (info->type & GST_PAD_PROBE_TYPE_BUFFER)
      ret = gst_pad_chain(target, GST_PAD_PROBE_INFO_BUFFER(info));
    else
      ret = gst_pad_chain_list(target, GST_PAD_PROBE_INFO_BUFFER_LIST(info));
  } else {
    gst_mini_object_unref(GST_MINI_OBJECT_CAST(info->data));
  }
  info->data = nullptr;
  if (ret == GST_FLOW_FLUSHING) {
    self->unprime(in, target);  // not active yet: it gets the sticky events again later
  } else if (ret != GST_FLOW_OK && ret != GST_FLOW_NOT_LINKED) {
    GST_WARNING_OBJECT(element, "%s: webrtcbin refused a buffer: %s", in->kind.c_str(), gst_flow_get_name(ret));
  }
  gst_object_unref(target);
  return GST_PAD_PROBE_HANDLED;
}

GstPad *PublishMedia::take_target(SendInput *in, bool *prime) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!in->webrtc_pad) return nullptr;
  *prime = !in->primed;
  in->primed = true;
  return GST_PAD(gst_object_ref(in->webrtc_pad));
}

void PublishMedia::unprime(SendInput *in, GstPad *target) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (in->webrtc_pad == target) in->primed = false;
}

// What webrtcbin sends upstream (keyframe requests from PLI/FIR, queries) goes to the payloader
// as it would through a link.
GstPadProbeReturn PublishMedia::on_webrtc_upstream(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *in = static_cast<SendInput *>(data);
  GstPad *src = gst_element_get_static_pad(in->payloader, "src");
  GstPadProbeReturn result = GST_PAD_PROBE_HANDLED;
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_UPSTREAM) {
    gst_pad_send_event(src, GST_PAD_PROBE_INFO_EVENT(info));
    info->data = nullptr;
  } else if (!gst_pad_query(src, GST_PAD_PROBE_INFO_QUERY(info))) {
    result = GST_PAD_PROBE_DROP;
  }
  gst_object_unref(src);
  return result;
}

void PublishMedia::set_rtp_caps(SendInput *in, GstCaps *caps) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    gst_caps_replace(&in->rtp_caps, caps);
  }
  if (!in->ready.exchange(true)) maybe_begin();
}

// The first session starts once every input has RTP caps: the offer needs them all.
void PublishMedia::maybe_begin() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (inputs_.empty()) return;
    for (const auto &in : inputs_)
      if (!in->ready) return;
  }
  if (running && client && !begun_.exchange(true)) client->begin();
}

void PublishMedia::on_input_eos() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto &in : inputs_)
      if (!in->eos) return;
  }
  // Every input ended: the session is DELETEd off the streaming thread, then the element
  // reports EOS to the pipeline.
  GstElement *element = GST_ELEMENT(gst_object_ref(element_));
  client->finish_async([element] {
    gst_element_post_message(element, gst_message_new_eos(GST_OBJECT(element)));
    gst_object_unref(element);
  });
}

// What webrtcbin is told to offer: only the fields that do not change while the stream runs.
// Payloaders refine their caps later (sprop-parameter-sets, profile-level-id, ssrc), and caps
// that no longer match the transceiver's codec preferences would stop the stream.
static GstCaps *offer_preferences(GstCaps *rtp_caps) {
  const GstStructure *in = gst_caps_get_structure(rtp_caps, 0);
  GstStructure *out = gst_structure_new_empty("application/x-rtp");
  // ssrc stays: the payloader keeps it, and peers without the mid extension map streams by a=ssrc.
  for (const char *field :
       {"media", "encoding-name", "clock-rate", "payload", "encoding-params", "packetization-mode", "ssrc"}) {
    const GValue *v = gst_structure_get_value(in, field);
    if (v) gst_structure_set_value(out, field, v);
  }
  // rtph264pay fragments with FU-A (mode 1) but does not always say so in its first caps.
  const gchar *enc = gst_structure_get_string(out, "encoding-name");
  if (enc && g_ascii_strcasecmp(enc, "H264") == 0 && !gst_structure_has_field(out, "packetization-mode"))
    gst_structure_set(out, "packetization-mode", G_TYPE_STRING, "1", nullptr);
  GstCaps *caps = gst_caps_new_empty();
  gst_caps_append_structure(caps, out);
  return caps;
}

bool PublishMedia::attach(GstElement *webrtc, std::string *error) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto &in : inputs_) {
    if (!in->payloader) continue;
    GstPadTemplate *templ = gst_element_get_pad_template(webrtc, "sink_%u");
    GstCaps *prefs = offer_preferences(in->rtp_caps);
    GstPad *pad = gst_element_request_pad(webrtc, templ, nullptr, prefs);
    if (!pad) {
      gst_caps_unref(prefs);
      *error = "webrtcbin refused a sink pad";
      return false;
    }
    GstWebRTCRTPTransceiver *trans = nullptr;
    g_object_get(pad, "transceiver", &trans, nullptr);
    if (trans) {
      // The offer is made before the stream's caps reach webrtcbin: say what will come.
      g_object_set(trans, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, "codec-preferences", prefs,
                   nullptr);
      gst_object_unref(trans);
    }
    gst_caps_unref(prefs);
    gst_pad_add_probe(pad,
                      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_EVENT_UPSTREAM | GST_PAD_PROBE_TYPE_QUERY_UPSTREAM),
                      &PublishMedia::on_webrtc_upstream, in.get(), nullptr);
    in->webrtc_pad = pad;  // the payloader's output goes there from now on
    in->primed = false;
  }
  return true;
}

void PublishMedia::detach(GstElement *webrtc) {
  std::vector<GstPad *> released;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto &in : inputs_) {
      if (!in->webrtc_pad) continue;
      released.push_back(in->webrtc_pad);
      in->webrtc_pad = nullptr;
    }
  }
  for (GstPad *pad : released) {
    gst_element_release_request_pad(webrtc, pad);
    gst_object_unref(pad);
  }
}

}  // namespace wish

// ---------------------------------------------------------------------------------------
// GObject glue

// After the client properties come the encoder ones (send_chain.h).
enum { PROP_ENCODER_FIRST = wish::CLIENT_PROP_LAST };

static void gst_whip_sink_init(GstWhipSink *self) {
  self->media = new wish::PublishMedia(self);
  self->client = new wish::SessionClient(GST_ELEMENT(self), wish::ClientProtocol::Whip, self->media);
  self->media->client = self->client;
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SINK);
}

static void gst_whip_sink_finalize(GObject *object) {
  auto *self = GST_WHIP_SINK(object);
  delete self->client;
  delete self->media;
  G_OBJECT_CLASS(gst_whip_sink_parent_class)->finalize(object);
}

static void gst_whip_sink_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec) {
  auto *self = GST_WHIP_SINK(object);
  wish::ClientSettings &s = self->client->settings;
  wish::EncoderSettings &e = self->media->encoder;
  GST_OBJECT_LOCK(self);
  if (!wish::set_client_property(s, prop_id, value) && !wish::set_encoder_property(e, PROP_ENCODER_FIRST, prop_id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  GST_OBJECT_UNLOCK(self);
}

static void gst_whip_sink_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  auto *self = GST_WHIP_SINK(object);
  if (wish::get_client_status(*self->client, prop_id, value)) return;
  const wish::ClientSettings &s = self->client->settings;
  const wish::EncoderSettings &e = self->media->encoder;
  GST_OBJECT_LOCK(self);
  if (!wish::get_client_property(s, prop_id, value) && !wish::get_encoder_property(e, PROP_ENCODER_FIRST, prop_id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  GST_OBJECT_UNLOCK(self);
}

static GstStateChangeReturn gst_whip_sink_change_state(GstElement *element, GstStateChange transition) {
  auto *self = GST_WHIP_SINK(element);
  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      if (!self->client->prepare()) return GST_STATE_CHANGE_FAILURE;
      self->media->running = true;
      self->media->maybe_begin();
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      self->media->running = false;
      self->client->stop();
      break;
    default:
      break;
  }
  return GST_ELEMENT_CLASS(gst_whip_sink_parent_class)->change_state(element, transition);
}

static GstPad *gst_whip_sink_request_new_pad(GstElement *element, GstPadTemplate *templ, const gchar *name,
                                             const GstCaps *) {
  return GST_WHIP_SINK(element)->media->request_pad(templ, name);
}

static void gst_whip_sink_release_pad(GstElement *element, GstPad *pad) {
  GST_WHIP_SINK(element)->media->release_pad(pad);
}

static void gst_whip_sink_handle_message(GstBin *bin, GstMessage *message) {
  // webrtcbin's internal sinks say nothing about the element: it posts its own EOS once
  // every input ended and the session is DELETEd.
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_EOS && GST_MESSAGE_SRC(message) != GST_OBJECT(bin)) {
    gst_message_unref(message);
    return;
  }
  GST_BIN_CLASS(gst_whip_sink_parent_class)->handle_message(bin, message);
}

static void gst_whip_sink_restart_ice(GstWhipSink *self) { self->client->request_ice_restart(); }

static void gst_whip_sink_class_init(GstWhipSinkClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GST_DEBUG_CATEGORY_INIT(whipsink_debug, "whipsink", 0, "WHIP publisher sink");
  gobject_class->finalize = gst_whip_sink_finalize;
  gobject_class->set_property = gst_whip_sink_set_property;
  gobject_class->get_property = gst_whip_sink_get_property;
  element_class->change_state = gst_whip_sink_change_state;
  element_class->request_new_pad = gst_whip_sink_request_new_pad;
  element_class->release_pad = gst_whip_sink_release_pad;
  GST_BIN_CLASS(klass)->handle_message = gst_whip_sink_handle_message;

  wish::install_client_properties(gobject_class, "WHIP",
                                  "session-url, state, reconnects, ice-restarts and link-ice-servers");
  wish::install_encoder_properties(gobject_class, PROP_ENCODER_FIRST, "keyframe requests from the server are honoured at once");
  /**
   * GstWhipSink::restart-ice:
   *
   * Restarts ICE now (PATCH with If-Match: * and new credentials). A refused restart starts
   * a new session.
   */
  g_signal_new_class_handler("restart-ice", G_TYPE_FROM_CLASS(klass),
                             static_cast<GSignalFlags>(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
                             G_CALLBACK(gst_whip_sink_restart_ice), nullptr, nullptr, nullptr, G_TYPE_NONE, 0);

  wish::add_send_pad_templates(element_class);
  gst_element_class_set_static_metadata(
      element_class, "WHIP publisher sink", "Sink/Network/WebRTC",
      "Publishes to a WHIP endpoint (RFC 9725), encoding raw input once; posts wish-session-started, "
      "wish-waiting, wish-reconnecting and wish-ice-restarted element messages",
      "wish project");
}
