/**
 * SECTION:element-whepsrc
 * @title: whepsrc
 *
 * Plays a WHEP endpoint (draft-ietf-wish-whep-03). Sometimes pads `video_%u` / `audio_%u`
 * carry decoded media by default (decoders autoplugged by rank); when downstream only takes
 * encoded caps (video/x-h264, audio/x-opus, ...) or application/x-rtp, the pad gives that.
 *
 * |[
 * gst-launch-1.0 whepsrc whep-endpoint=http://127.0.0.1:8889/whep name=s \
 *   s. ! queue ! videoconvert ! autovideosink s. ! queue ! audioconvert ! autoaudiosink
 * gst-play-1.0 whep://127.0.0.1:8889/whep
 * ]|
 */
#include "whepsrc.h"

#include <gst/rtp/rtp.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <libsoup/soup.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gst_utils.h"
#include "media_outputs.h"
#include "protocol/http.h"
#include "client_bin.h"

GST_DEBUG_CATEGORY_STATIC(whepsrc_debug);
#define GST_CAT_DEFAULT whepsrc_debug


namespace wish {

namespace {

struct CodecChoice {
  const char *name;        // as users write it in video-codecs / audio-codecs
  const char *decoder_caps;  // what a decoder must accept for the default list
  const char *rtp_caps;
};

const CodecChoice kVideoCodecs[] = {
    {"h264", "video/x-h264",
     "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,"
     "packetization-mode=(string)1,profile-level-id=(string)42e01f,level-asymmetry-allowed=(string)1"},
    {"vp8", "video/x-vp8", "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000"},
    {"vp9", "video/x-vp9", "application/x-rtp,media=video,encoding-name=VP9,payload=98,clock-rate=90000"},
    {"h265", "video/x-h265", "application/x-rtp,media=video,encoding-name=H265,payload=100,clock-rate=90000"},
};
const CodecChoice kAudioCodecs[] = {
    {"opus", "audio/x-opus",
     "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,encoding-params=(string)2"},
    {"g722", "audio/G722", "application/x-rtp,media=audio,encoding-name=G722,payload=9,clock-rate=8000"},
    {"pcmu", "audio/x-mulaw", "application/x-rtp,media=audio,encoding-name=PCMU,payload=0,clock-rate=8000"},
    {"pcma", "audio/x-alaw", "application/x-rtp,media=audio,encoding-name=PCMA,payload=8,clock-rate=8000"},
};

bool have_decoder(const char *caps_str) {
  GList *decoders = gst_element_factory_list_get_elements(GST_ELEMENT_FACTORY_TYPE_DECODER, GST_RANK_MARGINAL);
  GstCaps *caps = gst_caps_from_string(caps_str);
  GList *usable = gst_element_factory_list_filter(decoders, caps, GST_PAD_SINK, FALSE);
  bool found = usable != nullptr;
  gst_plugin_feature_list_free(usable);
  gst_plugin_feature_list_free(decoders);
  gst_caps_unref(caps);
  return found;
}

// The codec names of a list, lower-cased.
std::vector<std::string> codec_names(const std::string &list) {
  std::vector<std::string> names = split_list(list);
  for (auto &name : names)
    for (auto &c : name) c = static_cast<char>(g_ascii_tolower(c));
  return names;
}

// Offered RTP caps for one kind: the listed codecs in order, or every codec a decoder exists for.
template <size_t N>
GstCaps *offer_caps(const CodecChoice (&table)[N], const std::string &list, std::string *error) {
  GstCaps *caps = gst_caps_new_empty();
  if (list == "none") return caps;
  std::vector<std::string> wanted = codec_names(list);
  if (wanted.empty()) {
    for (const auto &c : table)
      if (have_decoder(c.decoder_caps)) gst_caps_append(caps, gst_caps_from_string(c.rtp_caps));
    return caps;
  }
  for (const auto &w : wanted) {
    bool known = false;
    for (const auto &c : table) {
      if (w == c.name) {
        gst_caps_append(caps, gst_caps_from_string(c.rtp_caps));
        known = true;
      }
    }
    if (!known) *error = "unknown codec '" + w + "'";
  }
  return caps;
}



}  // namespace

// whepsrc's media: recvonly transceivers for the wanted codecs; received streams on output
// pads that outlive sessions.
// The server-sent events whepsrc asks for unless told otherwise: all it knows.
constexpr const char *kDefaultEvents = "active,inactive,layers,reconnect,viewercount";

class PlayMedia : public ClientElement {
public:
  explicit PlayMedia(GstElement *element)
      : ClientElement(element, ClientProtocol::Whep), element_(element), outputs_(element) {
    client().settings.events = kDefaultEvents;
  }
  std::string video_codecs, audio_codecs;  // guarded by the element's object lock

  bool attach(GstElement *webrtc, std::string *error) override {
    GST_OBJECT_LOCK(element_);
    std::string vc = video_codecs, ac = audio_codecs;
    GST_OBJECT_UNLOCK(element_);
    std::string codec_error;
    GstCaps *video = offer_caps(kVideoCodecs, vc, &codec_error);
    GstCaps *audio = offer_caps(kAudioCodecs, ac, &codec_error);
    bool ok = codec_error.empty();
    // One recvonly transceiver per kind, offering the codecs wanted (or decodable) in order.
    for (GstCaps *caps : {video, audio}) {
      if (ok && !gst_caps_is_empty(caps)) {
        GstWebRTCRTPTransceiver *trans = nullptr;
        g_signal_emit_by_name(webrtc, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps, &trans);
        if (trans) gst_object_unref(trans);
      }
      gst_caps_unref(caps);
    }
    if (!ok) *error = codec_error;
    return ok;
  }
  void on_stream(GstPad *pad, const std::string &kind) override { outputs_.attach(pad, kind); }
  void detach(GstElement *) override { outputs_.detach_all(); }
  void stop() override { outputs_.remove_all(); }
  void eos() override { outputs_.push_eos(); }
  guint64 buffers() const override { return outputs_.buffers(); }

private:
  GstElement *element_;
  MediaOutputs outputs_;
};

static PlayMedia *play_media(gpointer element) { return static_cast<PlayMedia *>(client_impl(element)); }

}  // namespace wish

struct _GstWhepSrc {
  GstWishClientBin parent;
};

static void gst_whep_src_uri_handler_init(gpointer iface, gpointer data);

G_DEFINE_TYPE_WITH_CODE(GstWhepSrc, gst_whep_src, GST_TYPE_WISH_CLIENT_BIN,
                        G_IMPLEMENT_INTERFACE(GST_TYPE_URI_HANDLER, gst_whep_src_uri_handler_init));
GST_ELEMENT_REGISTER_DEFINE(whepsrc, "whepsrc", GST_RANK_PRIMARY, GST_TYPE_WHEP_SRC);


// ---------------------------------------------------------------------------------------
// GObject glue

enum {
  PROP_ENDPOINT = 1,
  PROP_LATENCY,
  PROP_VIDEO_CODECS,
  PROP_AUDIO_CODECS,
  PROP_EVENTS,
  PROP_VIDEO_LAYER,
};

static void gst_whep_src_init(GstWhepSrc *self) { wish::mark_live_source(GST_BIN(self)); }

static void gst_whep_src_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec) {
  if (prop_id == PROP_ENDPOINT) {
    wish::set_endpoint(object, value);
    return;
  }
  wish::PlayMedia *media = wish::play_media(object);
  GST_OBJECT_LOCK(object);
  switch (prop_id) {
    case PROP_LATENCY: media->client().settings.latency = g_value_get_uint(value); break;
    case PROP_VIDEO_CODECS: media->video_codecs = wish::string_from_value(value); break;
    case PROP_AUDIO_CODECS: media->audio_codecs = wish::string_from_value(value); break;
    case PROP_EVENTS: media->client().settings.events = wish::string_from_value(value); break;
    case PROP_VIDEO_LAYER: media->client().settings.video_layer = wish::string_from_value(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(object);
  if (prop_id == PROP_VIDEO_LAYER) media->client().request_layer();  // while playing: asked for at once
}

static void gst_whep_src_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
  if (prop_id == PROP_ENDPOINT) {
    wish::get_endpoint(object, value);
    return;
  }
  wish::PlayMedia *media = wish::play_media(object);
  GST_OBJECT_LOCK(object);
  switch (prop_id) {
    case PROP_LATENCY: g_value_set_uint(value, media->client().settings.latency); break;
    case PROP_VIDEO_CODECS: g_value_set_string(value, media->video_codecs.c_str()); break;
    case PROP_AUDIO_CODECS: g_value_set_string(value, media->audio_codecs.c_str()); break;
    case PROP_EVENTS: g_value_set_string(value, media->client().settings.events.c_str()); break;
    case PROP_VIDEO_LAYER: g_value_set_string(value, media->client().settings.video_layer.c_str()); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(object);
}

static GstStateChangeReturn gst_whep_src_change_state(GstElement *element, GstStateChange transition) {
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(gst_whep_src_parent_class)->change_state(element, transition);
  return wish::live_source_result(transition, ret);
}

static gboolean gst_whep_src_send_event(GstElement *element, GstEvent *event) {
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
    wish::play_media(element)->client().send_eos();
    gst_event_unref(event);
    return TRUE;
  }
  return GST_ELEMENT_CLASS(gst_whep_src_parent_class)->send_event(element, event);
}

static void gst_whep_src_class_init(GstWhepSrcClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GST_DEBUG_CATEGORY_INIT(whepsrc_debug, "whepsrc", 0, "WHEP player source");
  GST_WISH_CLIENT_BIN_CLASS(klass)->create_impl = [](GstWishClientBin *self) -> wish::ClientElement * {
    return new wish::PlayMedia(GST_ELEMENT(self));
  };
  gobject_class->set_property = gst_whep_src_set_property;
  gobject_class->get_property = gst_whep_src_get_property;
  element_class->change_state = gst_whep_src_change_state;
  element_class->send_event = gst_whep_src_send_event;

  auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  wish::install_endpoint_property(gobject_class, PROP_ENDPOINT, "WHEP");
  g_object_class_install_property(gobject_class, PROP_LATENCY,
      g_param_spec_uint("latency", "Latency",
                        "Jitterbuffer size in ms: low by default for live playback; raise it on lossy networks", 0,
                        10000, 50, flags));
  g_object_class_install_property(gobject_class, PROP_VIDEO_CODECS,
      g_param_spec_string("video-codecs", "Video codecs",
                          "Video codecs to offer in order, comma-separated from h264, vp8, vp9, h265; empty: every "
                          "one a decoder is installed for; none: no video",
                          "", flags));
  g_object_class_install_property(gobject_class, PROP_AUDIO_CODECS,
      g_param_spec_string("audio-codecs", "Audio codecs",
                          "Audio codecs to offer in order, comma-separated from opus, g722, pcmu, pcma; empty: every "
                          "one a decoder is installed for; none: no audio",
                          "", flags));

  g_object_class_install_property(gobject_class, PROP_EVENTS,
      g_param_spec_string("events", "Server-sent events",
                          "Server-sent events to subscribe to when the server offers them, comma-separated from "
                          "active, inactive, layers, reconnect, viewercount; each is posted as a wish-event element "
                          "message, and reconnect moves playback to the URL it names. Empty: none",
                          wish::kDefaultEvents, flags));

  g_object_class_install_property(gobject_class, PROP_VIDEO_LAYER,
      g_param_spec_string("video-layer", "Video layer",
                          "The video layer (its rid, e.g. h, m, l) to ask the server for when it offers layer "
                          "selection; empty or auto: the server's choice. Changeable while playing; each answer is "
                          "posted as a wish-layer element message (rid, status, detail)",
                          "", static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                                       GST_PARAM_MUTABLE_PLAYING)));

  wish::MediaOutputs::add_pad_templates(element_class);
  gst_element_class_set_static_metadata(
      element_class, "WHEP player source", "Source/Network/WebRTC",
      "Plays a WHEP endpoint (draft-ietf-wish-whep-03): decoded by default, encoded or RTP when downstream asks; "
      "posts wish-session-started, wish-waiting, wish-reconnecting, wish-reconnected, wish-ice-restarted, wish-event and wish-layer element messages",
      "wish project");
}

// ---------------------------------------------------------------------------------------
// URI handler: whep://host/path is http, wheps:// is https.

static GstURIType gst_whep_src_uri_get_type(GType) { return GST_URI_SRC; }

static const gchar *const *gst_whep_src_uri_get_protocols(GType) {
  static const gchar *protocols[] = {"whep", "wheps", nullptr};
  return protocols;
}

static gchar *gst_whep_src_uri_get_uri(GstURIHandler *handler) {
  auto *self = GST_WHEP_SRC(handler);
  GST_OBJECT_LOCK(self);
  std::string endpoint = wish::play_media(self)->client().settings.endpoint;
  GST_OBJECT_UNLOCK(self);
  if (endpoint.rfind("https://", 0) == 0) return g_strdup(("wheps://" + endpoint.substr(8)).c_str());
  if (endpoint.rfind("http://", 0) == 0) return g_strdup(("whep://" + endpoint.substr(7)).c_str());
  return endpoint.empty() ? nullptr : g_strdup(endpoint.c_str());
}

static gboolean gst_whep_src_uri_set_uri(GstURIHandler *handler, const gchar *uri, GError **error) {
  auto *self = GST_WHEP_SRC(handler);
  std::string u = uri ? uri : "";
  std::string endpoint;
  if (u.rfind("wheps://", 0) == 0)
    endpoint = "https://" + u.substr(8);
  else if (u.rfind("whep://", 0) == 0)
    endpoint = "http://" + u.substr(7);
  else {
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_UNSUPPORTED_PROTOCOL, "not a whep:// or wheps:// URI: %s", uri);
    return FALSE;
  }
  GST_OBJECT_LOCK(self);
  wish::play_media(self)->client().settings.endpoint = endpoint;
  GST_OBJECT_UNLOCK(self);
  return TRUE;
}

static void gst_whep_src_uri_handler_init(gpointer g_iface, gpointer) {
  auto *iface = static_cast<GstURIHandlerInterface *>(g_iface);
  iface->get_type = gst_whep_src_uri_get_type;
  iface->get_protocols = gst_whep_src_uri_get_protocols;
  iface->get_uri = gst_whep_src_uri_get_uri;
  iface->set_uri = gst_whep_src_uri_set_uri;
}
