#include "send_chain.h"

#include "gstptr.h"

GType gst_wish_video_codec_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_WISH_VIDEO_CODEC_H264, "H.264 constrained baseline (x264enc)", "h264"},
      {GST_WISH_VIDEO_CODEC_VP8, "VP8 (vp8enc)", "vp8"},
      {GST_WISH_VIDEO_CODEC_VP9, "VP9 (vp9enc)", "vp9"},
      {GST_WISH_VIDEO_CODEC_H265, "H.265 main (x265enc)", "h265"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstWishVideoCodec", values));
  return type;
}

namespace wish {

static GstElement *make(const char *factory, std::string *missing) {
  GstElement *e = gst_element_factory_make(factory, nullptr);
  if (!e && missing->empty()) *missing = factory;
  return e;
}

void add_send_pad_templates(GstElementClass *klass) {
  static GstStaticPadTemplate video = GST_STATIC_PAD_TEMPLATE(
      "video_%u", GST_PAD_SINK, GST_PAD_REQUEST,
      // Encoded first: caps queries intersect with the template, and its order counts.
      GST_STATIC_CAPS("video/x-h264; video/x-vp8; video/x-vp9; video/x-h265; video/x-raw"));
  static GstStaticPadTemplate audio = GST_STATIC_PAD_TEMPLATE(
      "audio_%u", GST_PAD_SINK, GST_PAD_REQUEST,
      GST_STATIC_CAPS("audio/x-opus; audio/x-mulaw; audio/x-alaw; audio/G722; audio/x-raw"));
  gst_element_class_add_static_pad_template(klass, &video);
  gst_element_class_add_static_pad_template(klass, &audio);
}

static GstCaps *send_input_caps(const std::string &kind) {
  return gst_caps_from_string(kind == "video"
                                  ? "video/x-h264; video/x-vp8; video/x-vp9; video/x-h265; video/x-raw,format=I420; "
                                    "video/x-raw"
                                  : "audio/x-opus; audio/x-mulaw; audio/x-alaw; audio/G722; "
                                    "audio/x-raw,rate=48000,channels=2; audio/x-raw");
}

void answer_input_caps_query(GstQuery *query, const std::string &kind) {
  GstCaps *filter = nullptr;
  gst_query_parse_caps(query, &filter);
  GstCaps *caps = send_input_caps(kind);
  if (filter) {
    GstCaps *both = gst_caps_intersect_full(filter, caps, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref(caps);
    caps = both;
  }
  gst_query_set_caps_result(query, caps);
  gst_caps_unref(caps);
}

namespace {

struct EncodingInfo {
  const char *kind, *name, *encoder, *payloader;
  unsigned clock_rate;
  int pt;  // static payload type, or the dynamic one the elements use
};
// What raw media can be encoded to, in the order the server prefers to send it.
const EncodingInfo kEncodings[] = {
    {"video", "H264", "x264enc", "rtph264pay", 90000, 96}, {"video", "VP8", "vp8enc", "rtpvp8pay", 90000, 96},
    {"video", "VP9", "vp9enc", "rtpvp9pay", 90000, 96},    {"video", "H265", "x265enc", "rtph265pay", 90000, 96},
    {"audio", "OPUS", "opusenc", "rtpopuspay", 48000, 111}, {"audio", "PCMU", "mulawenc", "rtppcmupay", 8000, 0},
    {"audio", "PCMA", "alawenc", "rtppcmapay", 8000, 8},   {"audio", "G722", "avenc_g722", "rtpg722pay", 8000, 9},
};

const EncodingInfo *encoding_info(const std::string &kind, const std::string &name) {
  for (const auto &e : kEncodings)
    if (kind == e.kind && name == e.name) return &e;
  return nullptr;
}

bool installed(const char *factory) {
  GPtr<GstElementFactory> f = GPtr<GstElementFactory>::adopt(gst_element_factory_find(factory));
  return static_cast<bool>(f);
}

GstElement *capsfilter(const char *caps, std::string *missing) {
  GstElement *filter = make("capsfilter", missing);
  GPtr<GstCaps> c = GPtr<GstCaps>::adopt(gst_caps_from_string(caps));
  if (filter) g_object_set(filter, "caps", c.get(), nullptr);
  return filter;
}

// Raw video to the encoding, low latency, no B-frames.
void encode_video(const std::string &encoding, const EncoderSettings &st, std::vector<GstElement *> *chain,
                  std::string *missing) {
  chain->push_back(make("videoconvert", missing));
  if (encoding == "VP8" || encoding == "VP9") {
    GstElement *enc = make(encoding == "VP8" ? "vp8enc" : "vp9enc", missing);
    if (enc) {
      g_object_set(enc, "deadline", (gint64)1, "cpu-used", 8, "target-bitrate", (gint)(st.video_bitrate * 1000),
                   "keyframe-max-dist", (gint)st.key_int_max, "lag-in-frames", 0, "threads", 2, nullptr);
      gst_util_set_object_arg(G_OBJECT(enc), "end-usage", "cbr");
      gst_util_set_object_arg(G_OBJECT(enc), "error-resilient", "default");
    }
    chain->push_back(enc);
    GstElement *pay = make(encoding == "VP8" ? "rtpvp8pay" : "rtpvp9pay", missing);
    if (pay) gst_util_set_object_arg(G_OBJECT(pay), "picture-id-mode", "15-bit");
    chain->push_back(pay);
  } else if (encoding == "H265") {
    chain->push_back(capsfilter("video/x-raw,format=I420", missing));  // main profile: 8-bit 4:2:0
    GstElement *enc = make("x265enc", missing);
    if (enc) {
      g_object_set(enc, "bitrate", st.video_bitrate, "key-int-max", (gint)st.key_int_max, nullptr);
      gst_util_set_object_arg(G_OBJECT(enc), "tune", "zerolatency");
      gst_util_set_object_arg(G_OBJECT(enc), "speed-preset", "ultrafast");
    }
    chain->push_back(enc);
    chain->push_back(make("h265parse", missing));
    chain->push_back(capsfilter("video/x-h265,stream-format=byte-stream,alignment=au", missing));
    chain->push_back(make("rtph265pay", missing));
  } else {
    GstElement *enc = make("x264enc", missing);
    if (enc) {
      g_object_set(enc, "bitrate", st.video_bitrate, "key-int-max", st.key_int_max, "bframes", 0, nullptr);
      gst_util_set_object_arg(G_OBJECT(enc), "tune", "zerolatency");
      gst_util_set_object_arg(G_OBJECT(enc), "speed-preset", "ultrafast");
    }
    chain->push_back(enc);
    chain->push_back(capsfilter("video/x-h264,profile=constrained-baseline,stream-format=byte-stream", missing));
    chain->push_back(make("rtph264pay", missing));
  }
}

// Raw audio to the encoding: Opus at 48 kHz, G.711 at 8 kHz mono, G.722 at 16 kHz mono.
void encode_audio(const std::string &encoding, const EncoderSettings &st, std::vector<GstElement *> *chain,
                  std::string *missing) {
  chain->push_back(make("audioconvert", missing));
  chain->push_back(make("audioresample", missing));
  if (encoding == "PCMU" || encoding == "PCMA") {
    chain->push_back(capsfilter("audio/x-raw,rate=8000,channels=1", missing));
    chain->push_back(make(encoding == "PCMU" ? "mulawenc" : "alawenc", missing));
    chain->push_back(make(encoding == "PCMU" ? "rtppcmupay" : "rtppcmapay", missing));
  } else if (encoding == "G722") {
    chain->push_back(capsfilter("audio/x-raw,format=S16LE,rate=16000,channels=1", missing));
    chain->push_back(make("avenc_g722", missing));
    chain->push_back(make("rtpg722pay", missing));
  } else {
    GstElement *enc = make("opusenc", missing);
    if (enc) g_object_set(enc, "bitrate", (gint)st.audio_bitrate, nullptr);
    chain->push_back(enc);
    chain->push_back(make("rtpopuspay", missing));
  }
}

}  // namespace

bool can_encode(const std::string &kind, const std::string &encoding) {
  const EncodingInfo *e = encoding_info(kind, encoding);
  return e && installed(e->encoder) && installed(e->payloader);
}

std::optional<SendCodec> encodable(const std::string &kind, const std::string &encoding) {
  if (!can_encode(kind, encoding)) return std::nullopt;
  // x264enc is set to constrained baseline level 3.1 (rtp_caps_for says the same).
  return SendCodec{kind, encoding, encoding_info(kind, encoding)->clock_rate, encoding == "H264" ? "42e01f" : ""};
}

GstCaps *rtp_caps_for(const std::string &kind, const std::string &encoding) {
  const EncodingInfo *e = encoding_info(kind, encoding);
  if (!e) return nullptr;
  GstCaps *caps = gst_caps_new_simple("application/x-rtp", "media", G_TYPE_STRING, e->kind, "encoding-name",
                                      G_TYPE_STRING, e->name, "clock-rate", G_TYPE_INT, (gint)e->clock_rate, "payload",
                                      G_TYPE_INT, e->pt, nullptr);
  if (encoding == "OPUS") gst_caps_set_simple(caps, "encoding-params", G_TYPE_STRING, "2", nullptr);
  if (encoding == "H264")
    gst_caps_set_simple(caps, "packetization-mode", G_TYPE_STRING, "1", "profile-level-id", G_TYPE_STRING, "42e01f",
                        nullptr);
  return caps;
}

bool make_send_chain(GstCaps *caps, const EncoderSettings &st, std::vector<GstElement *> *out, std::string *summary,
                     std::string *detail) {
  const GstStructure *s = gst_caps_get_structure(caps, 0);
  const gchar *media = gst_structure_get_name(s);
  std::string missing;
  std::vector<GstElement *> chain;
  if (g_str_equal(media, "video/x-raw")) {
    if (st.width > 0 && st.height > 0) {  // a lower layer of a ladder
      chain.push_back(make("videoscale", &missing));
      chain.push_back(capsfilter(("video/x-raw,width=" + std::to_string(st.width) + ",height=" +
                                  std::to_string(st.height) + ",pixel-aspect-ratio=1/1").c_str(),
                                 &missing));
    }
    encode_video(st.video_encoding, st, &chain, &missing);
  } else if (g_str_equal(media, "video/x-h264")) {
    GstElement *parse = make("h264parse", &missing);
    if (parse) g_object_set(parse, "config-interval", -1, nullptr);
    chain.push_back(parse);
    chain.push_back(capsfilter("video/x-h264,stream-format=byte-stream,alignment=au", &missing));
    chain.push_back(make("rtph264pay", &missing));
  } else if (g_str_equal(media, "video/x-h265")) {
    GstElement *parse = make("h265parse", &missing);
    if (parse) g_object_set(parse, "config-interval", -1, nullptr);
    chain.push_back(parse);
    chain.push_back(capsfilter("video/x-h265,stream-format=byte-stream,alignment=au", &missing));
    chain.push_back(make("rtph265pay", &missing));
  } else if (g_str_equal(media, "video/x-vp8")) {
    GstElement *pay = make("rtpvp8pay", &missing);
    if (pay) gst_util_set_object_arg(G_OBJECT(pay), "picture-id-mode", "15-bit");
    chain.push_back(pay);
  } else if (g_str_equal(media, "video/x-vp9")) {
    GstElement *pay = make("rtpvp9pay", &missing);
    if (pay) gst_util_set_object_arg(G_OBJECT(pay), "picture-id-mode", "15-bit");
    chain.push_back(pay);
  } else if (g_str_equal(media, "audio/x-raw")) {
    encode_audio(st.audio_encoding, st, &chain, &missing);
  } else if (g_str_equal(media, "audio/x-opus")) {
    chain.push_back(make("rtpopuspay", &missing));
  } else if (g_str_equal(media, "audio/x-mulaw")) {
    chain.push_back(make("rtppcmupay", &missing));
  } else if (g_str_equal(media, "audio/x-alaw")) {
    chain.push_back(make("rtppcmapay", &missing));
  } else if (g_str_equal(media, "audio/G722")) {
    chain.push_back(make("rtpg722pay", &missing));
  } else {
    *summary = "Unsupported input";
    *detail = std::string("cannot send ") + media;
    return false;
  }
  if (!missing.empty()) {
    for (GstElement *e : chain)
      if (e) gst_object_unref(gst_object_ref_sink(e));
    *summary = "Missing element '" + missing + "'";
    *detail = std::string("needed to send ") + media;
    return false;
  }
  GstElement *payloader = chain.back();
  g_object_set(payloader, "mtu", 1200, nullptr);
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(payloader), "config-interval"))
    g_object_set(payloader, "config-interval", -1, nullptr);
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(payloader), "aggregate-mode"))
    gst_util_set_object_arg(G_OBJECT(payloader), "aggregate-mode", "zero-latency");
  // Static payload types for G.711 and G.722; 96 video and 111 audio otherwise.
  const gchar *pay_name = GST_OBJECT_NAME(gst_element_get_factory(payloader));
  int pt = g_str_has_prefix(media, "audio") ? 111 : 96;
  for (const auto &e : kEncodings)
    if (g_str_equal(pay_name, e.payloader)) pt = e.pt;
  g_object_set(payloader, "pt", pt, nullptr);
  // A fixed SSRC: otherwise the payloader takes the one rtpbin suggests once it is linked,
  // and the a=ssrc already offered (peers without the mid extension map streams by it) no
  // longer matches what is sent.
  g_object_set(payloader, "ssrc", g_random_int(), nullptr);
  *out = chain;
  return true;
}

enum EncoderProperty { VIDEO_CODEC, VIDEO_BITRATE, AUDIO_BITRATE, KEY_INT_MAX };

void install_encoder_properties(GObjectClass *klass, guint first_id, const char *keyframe_note) {
  auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(klass, first_id + VIDEO_CODEC,
      g_param_spec_enum("video-codec", "Video codec",
                        "Codec raw video is encoded to (server elements also encode, once per codec, for viewers "
                        "that cannot take it, unless transcode is false)",
                        gst_wish_video_codec_get_type(),
                        GST_WISH_VIDEO_CODEC_H264, flags));
  g_object_class_install_property(klass, first_id + VIDEO_BITRATE,
      g_param_spec_uint("video-bitrate", "Video bitrate", "Bitrate of encoded raw video in kbit/s", 50, 100000, 2000,
                        flags));
  g_object_class_install_property(klass, first_id + AUDIO_BITRATE,
      g_param_spec_uint("audio-bitrate", "Audio bitrate", "Bitrate of encoded raw audio (Opus) in bit/s", 6000,
                        510000, 64000, flags));
  // Param specs keep their strings: an interned one lives as long as the process.
  const gchar *blurb = g_intern_string(
      (std::string("Longest distance between keyframes of encoded raw video, in frames (") + keyframe_note + ")")
          .c_str());
  g_object_class_install_property(klass, first_id + KEY_INT_MAX,
      g_param_spec_uint("key-int-max", "Keyframe interval", blurb, 1, 100000, 60, flags));
}

bool set_encoder_property(EncoderSettings &e, guint first_id, guint prop_id, const GValue *value) {
  if (prop_id < first_id) return false;
  switch (prop_id - first_id) {
    case VIDEO_CODEC:
      switch (g_value_get_enum(value)) {
        case GST_WISH_VIDEO_CODEC_VP8: e.video_encoding = "VP8"; break;
        case GST_WISH_VIDEO_CODEC_VP9: e.video_encoding = "VP9"; break;
        case GST_WISH_VIDEO_CODEC_H265: e.video_encoding = "H265"; break;
        default: e.video_encoding = "H264"; break;
      }
      return true;
    case VIDEO_BITRATE: e.video_bitrate = g_value_get_uint(value); return true;
    case AUDIO_BITRATE: e.audio_bitrate = g_value_get_uint(value); return true;
    case KEY_INT_MAX: e.key_int_max = g_value_get_uint(value); return true;
    default: return false;
  }
}

bool get_encoder_property(const EncoderSettings &e, guint first_id, guint prop_id, GValue *value) {
  if (prop_id < first_id) return false;
  switch (prop_id - first_id) {
    case VIDEO_CODEC:
      g_value_set_enum(value, e.video_encoding == "VP8"   ? GST_WISH_VIDEO_CODEC_VP8
                              : e.video_encoding == "VP9" ? GST_WISH_VIDEO_CODEC_VP9
                              : e.video_encoding == "H265" ? GST_WISH_VIDEO_CODEC_H265
                                                           : GST_WISH_VIDEO_CODEC_H264);
      return true;
    case VIDEO_BITRATE: g_value_set_uint(value, e.video_bitrate); return true;
    case AUDIO_BITRATE: g_value_set_uint(value, e.audio_bitrate); return true;
    case KEY_INT_MAX: g_value_set_uint(value, e.key_int_max); return true;
    default: return false;
  }
}

}  // namespace wish
