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
#include "gstptr.h"
#include "send_chain.h"
#include "client_bin.h"
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
  GPtr<GstCaps> rtp_caps;           // the payloader's caps, for webrtcbin; under the media mutex
  std::atomic<bool> eos{false};
  GPtr<GstPad> webrtc_pad;       // request pad of the current webrtcbin; under the media mutex
  bool primed = false;           // webrtc_pad has had the stream's sticky events; under the media mutex
};

}  // namespace

// whipsink's media: sendonly transceivers fed by the inputs' payloaders.
class PublishMedia : public ClientElement {
public:
  explicit PublishMedia(GstWhipSink *element)
      : ClientElement(GST_ELEMENT(element), ClientProtocol::Whip), element_(element) {}

  EncoderSettings encoder;  // guarded by the element's object lock
  std::string msid;         // guarded by the element's object lock
  std::atomic<bool> running{false};

  // The first session starts once every input has RTP caps (maybe_begin).
  bool activate() override {
    if (!client().prepare()) return false;
    running = true;
    maybe_begin();
    return true;
  }
  void deactivate() override {
    running = false;
    client().stop();
  }

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
  GstWishClientBin parent;
};

G_DEFINE_TYPE(GstWhipSink, gst_whip_sink, GST_TYPE_WISH_CLIENT_BIN);
GST_ELEMENT_REGISTER_DEFINE(whipsink, "whipsink", GST_RANK_NONE, GST_TYPE_WHIP_SINK);


namespace wish {

static PublishMedia *publish_media(gpointer element) { return static_cast<PublishMedia *>(client_impl(element)); }

// Pads come and go outside mutex_: adding and removing them reaches the application
// (pad-added, pad-removed). Request and release run on the application's thread, one at a time.
GstPad *PublishMedia::request_pad(GstPadTemplate *templ, const gchar *) {
  std::string kind = g_str_has_prefix(GST_PAD_TEMPLATE_NAME_TEMPLATE(templ), "video") ? "video" : "audio";
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto &in : inputs_)
      if (in->kind == kind) {
        GST_WARNING_OBJECT(element_, "WHIP carries one %s track: no second %s pad", kind.c_str(), kind.c_str());
        return nullptr;
      }
  }
  auto in = std::make_unique<SendInput>();
  in->kind = kind;
  std::string name = kind + "_0";
  in->entry = gst_element_factory_make("queue", (name + "_queue").c_str());
  g_object_set(in->entry, "max-size-buffers", 0, "max-size-bytes", 0, "max-size-time", (guint64)(2 * GST_SECOND),
               nullptr);
  gst_bin_add(GST_BIN(element_), in->entry);
  GPtr<GstPad> target = GPtr<GstPad>::adopt(gst_element_get_static_pad(in->entry, "sink"));
  in->ghost = gst_ghost_pad_new_from_template(name.c_str(), target.get(), templ);
  gst_pad_add_probe(target.get(),
                    static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM | GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM),
                    &PublishMedia::on_entry, in.get(), nullptr);
  gst_element_sync_state_with_parent(in->entry);
  gst_pad_set_active(in->ghost, TRUE);
  GstPad *ghost = in->ghost;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    inputs_.push_back(std::move(in));
  }
  gst_element_add_pad(GST_ELEMENT(element_), ghost);
  return ghost;
}

void PublishMedia::release_pad(GstPad *pad) {
  std::unique_ptr<SendInput> gone;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = inputs_.begin(); it != inputs_.end(); ++it) {
      if ((*it)->ghost != pad) continue;
      gone = std::move(*it);
      inputs_.erase(it);
      break;
    }
  }
  if (gone) gst_element_remove_pad(GST_ELEMENT(element_), pad);
}

GstPadProbeReturn PublishMedia::on_entry(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  auto *in = static_cast<SendInput *>(data);
  PublishMedia *self = publish_media(GST_OBJECT_PARENT(GST_OBJECT_PARENT(pad)));
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
  g_autoptr(GstPad) src = gst_element_get_static_pad(chain.back(), "src");
  gst_pad_add_probe(src,
                    static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST |
                                                 GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
                    &PublishMedia::on_payloader_output, in, nullptr);
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
  PublishMedia *self = publish_media(element);
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
  return GPtr<GstPad>(in->webrtc_pad).release();
}

void PublishMedia::unprime(SendInput *in, GstPad *target) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (in->webrtc_pad.get() == target) in->primed = false;
}

// What webrtcbin sends upstream (keyframe requests from PLI/FIR, queries) goes to the payloader
// as it would through a link.
GstPadProbeReturn PublishMedia::on_webrtc_upstream(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *in = static_cast<SendInput *>(data);
  g_autoptr(GstPad) src = gst_element_get_static_pad(in->payloader, "src");
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_UPSTREAM) {
    gst_pad_send_event(src, GST_PAD_PROBE_INFO_EVENT(info));
    info->data = nullptr;
    return GST_PAD_PROBE_HANDLED;
  }
  return gst_pad_query(src, GST_PAD_PROBE_INFO_QUERY(info)) ? GST_PAD_PROBE_HANDLED : GST_PAD_PROBE_DROP;
}

void PublishMedia::set_rtp_caps(SendInput *in, GstCaps *caps) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    in->rtp_caps = GPtr<GstCaps>::ref(caps);
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
  if (running && !begun_.exchange(true)) client().begin();
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
  client().finish_async([element] {
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

// Sink pads are requested and released outside mutex_ (webrtcbin signals pad-added and
// pad-removed); only the pointers change under it.
bool PublishMedia::attach(GstElement *webrtc, std::string *error) {
  std::vector<std::pair<SendInput *, GPtr<GstCaps>>> wanted;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto &in : inputs_)
      if (in->payloader) wanted.emplace_back(in.get(), in->rtp_caps);
  }
  for (auto &w : wanted) {
    SendInput *in = w.first;
    g_autoptr(GstCaps) prefs = offer_preferences(w.second.get());
    GstPadTemplate *templ = gst_element_get_pad_template(webrtc, "sink_%u");
    GPtr<GstPad> pad = GPtr<GstPad>::adopt(gst_element_request_pad(webrtc, templ, nullptr, prefs));
    if (!pad) {
      *error = "webrtcbin refused a sink pad";
      return false;
    }
    std::string stream_id;
    GST_OBJECT_LOCK(element_);
    stream_id = msid;
    GST_OBJECT_UNLOCK(element_);
    if (!stream_id.empty()) g_object_set(pad.get(), "msid", stream_id.c_str(), nullptr);
    g_autoptr(GstWebRTCRTPTransceiver) trans = nullptr;
    g_object_get(pad.get(), "transceiver", &trans, nullptr);
    // The offer is made before the stream's caps reach webrtcbin: say what will come.
    if (trans)
      g_object_set(trans, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, "codec-preferences", prefs,
                   nullptr);
    gst_pad_add_probe(pad.get(),
                      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_EVENT_UPSTREAM | GST_PAD_PROBE_TYPE_QUERY_UPSTREAM),
                      &PublishMedia::on_webrtc_upstream, in, nullptr);
    std::lock_guard<std::mutex> lock(mutex_);
    in->webrtc_pad = std::move(pad);  // the payloader's output goes there from now on
    in->primed = false;
  }
  return true;
}

void PublishMedia::detach(GstElement *webrtc) {
  std::vector<GPtr<GstPad>> released;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto &in : inputs_)
      if (in->webrtc_pad) released.push_back(std::move(in->webrtc_pad));
  }
  for (const auto &pad : released) gst_element_release_request_pad(webrtc, pad.get());
}

}  // namespace wish

// ---------------------------------------------------------------------------------------
// GObject glue

enum { PROP_ENDPOINT = 1, PROP_MSID, PROP_ENCODER_FIRST };  // then the encoder properties (send_chain.h)

static void gst_whip_sink_init(GstWhipSink *self) { GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SINK); }

static void gst_whip_sink_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec) {
  if (prop_id == PROP_ENDPOINT) {
    wish::set_endpoint(object, value);
    return;
  }
  if (prop_id == PROP_MSID) {
    GST_OBJECT_LOCK(object);
    const gchar *v = g_value_get_string(value);
    wish::publish_media(object)->msid = v ? v : "";
    GST_OBJECT_UNLOCK(object);
    return;
  }
  wish::EncoderSettings &e = wish::publish_media(object)->encoder;
  GST_OBJECT_LOCK(object);
  if (!wish::set_encoder_property(e, PROP_ENCODER_FIRST, prop_id, value)) G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  GST_OBJECT_UNLOCK(object);
}

static void gst_whip_sink_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  if (prop_id == PROP_ENDPOINT) {
    wish::get_endpoint(object, value);
    return;
  }
  if (prop_id == PROP_MSID) {
    GST_OBJECT_LOCK(object);
    g_value_set_string(value, wish::publish_media(object)->msid.c_str());
    GST_OBJECT_UNLOCK(object);
    return;
  }
  const wish::EncoderSettings &e = wish::publish_media(object)->encoder;
  GST_OBJECT_LOCK(object);
  if (!wish::get_encoder_property(e, PROP_ENCODER_FIRST, prop_id, value)) G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  GST_OBJECT_UNLOCK(object);
}

static GstPad *gst_whip_sink_request_new_pad(GstElement *element, GstPadTemplate *templ, const gchar *name,
                                             const GstCaps *) {
  return wish::publish_media(element)->request_pad(templ, name);
}

static void gst_whip_sink_release_pad(GstElement *element, GstPad *pad) {
  wish::publish_media(element)->release_pad(pad);
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

static void gst_whip_sink_class_init(GstWhipSinkClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GST_DEBUG_CATEGORY_INIT(whipsink_debug, "whipsink", 0, "WHIP publisher sink");
  GST_WISH_CLIENT_BIN_CLASS(klass)->create_impl = [](GstWishClientBin *self) -> wish::ClientElement * {
    return new wish::PublishMedia(GST_WHIP_SINK(self));
  };
  gobject_class->set_property = gst_whip_sink_set_property;
  gobject_class->get_property = gst_whip_sink_get_property;
  element_class->request_new_pad = gst_whip_sink_request_new_pad;
  element_class->release_pad = gst_whip_sink_release_pad;
  GST_BIN_CLASS(klass)->handle_message = gst_whip_sink_handle_message;

  wish::install_endpoint_property(gobject_class, PROP_ENDPOINT, "WHIP");
  g_object_class_install_property(
      gobject_class, PROP_MSID,
      g_param_spec_string("msid", "MediaStream id",
                          "Stream id of the a=msid the offer gives its tracks, by which a WHISP grab names this "
                          "publisher's media (empty: webrtcbin's own)",
                          "", static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                                       GST_PARAM_MUTABLE_READY)));
  wish::install_encoder_properties(gobject_class, PROP_ENCODER_FIRST, "keyframe requests from the server are honoured at once");

  wish::add_send_pad_templates(element_class);
  gst_element_class_set_static_metadata(
      element_class, "WHIP publisher sink", "Sink/Network/WebRTC",
      "Publishes to a WHIP endpoint (RFC 9725), encoding raw input once; posts wish-session-started, "
      "wish-waiting, wish-reconnecting, wish-reconnected and wish-ice-restarted element messages",
      "wish project");
}
