// What turns a sending element's input into RTP for WebRTC: encoders for raw input (H.264
// constrained baseline without B-frames or VP8, Opus), parsers and payloaders for input that
// is already encoded (never re-encoded). Shared by the elements that send media.
#pragma once

#include <gst/gst.h>

#include <optional>
#include <string>
#include <vector>

#include "protocol/sdp.h"

G_BEGIN_DECLS

// The video-codec property of the sending elements.
typedef enum {
  GST_WISH_VIDEO_CODEC_H264,
  GST_WISH_VIDEO_CODEC_VP8,
  GST_WISH_VIDEO_CODEC_VP9,
  GST_WISH_VIDEO_CODEC_H265,
} GstWishVideoCodec;

GType gst_wish_video_codec_get_type(void);

G_END_DECLS

namespace wish {

struct EncoderSettings {
  std::string video_encoding = "H264";  // raw video is encoded to: H264, VP8, VP9, H265
  std::string audio_encoding = "OPUS";  // raw audio is encoded to: OPUS, PCMU, PCMA, G722
  unsigned video_bitrate = 2000;  // kbit/s
  unsigned audio_bitrate = 64000;  // bit/s
  unsigned key_int_max = 60;    // frames
  int width = 0, height = 0;    // raw video is scaled to this size first (0: as it comes)
};

// The encoder properties of the sending elements (video-codec, video-bitrate, audio-bitrate,
// key-int-max) with ids first_id .. first_id + ENCODER_PROP_COUNT - 1; keyframe_note ends
// the description of key-int-max. set/get return false for other ids.
constexpr guint ENCODER_PROP_COUNT = 4;
void install_encoder_properties(GObjectClass *klass, guint first_id, const char *keyframe_note);
bool set_encoder_property(EncoderSettings &e, guint first_id, guint prop_id, const GValue *value);
bool get_encoder_property(const EncoderSettings &e, guint first_id, guint prop_id, GValue *value);

// The request pad templates video_%u / audio_%u of the sending elements; for class_init.
void add_send_pad_templates(GstElementClass *klass);

// Whether raw media can be encoded to that encoding (RTP encoding name, upper case) here: the
// encoder and payloader are installed.
bool can_encode(const std::string &kind, const std::string &encoding);
// The codec raw media of that kind is sent in when encoded to `encoding` here (clock rate,
// H.264 profile); nullopt when it cannot be (unknown encoding, encoder or payloader missing).
std::optional<SendCodec> encodable(const std::string &kind, const std::string &encoding);
// RTP caps of an encoding before any packet exists (a transceiver's codec preferences).
GstCaps *rtp_caps_for(const std::string &kind, const std::string &encoding);

// Makes the elements (not yet in a bin) for input of these caps, the payloader last, set up
// for WebRTC (MTU 1200, SPS/PPS with every IDR, payload type 96 video / 111 audio).
// On failure returns false with a summary and detail for an element error.
bool make_send_chain(GstCaps *caps, const EncoderSettings &settings, std::vector<GstElement *> *chain,
                     std::string *summary, std::string *detail);

// Answers a caps query on a sending element's input pad of that kind before its chain exists
// (nothing downstream answers yet): encoded formats first, so an upstream that can hand them
// over (a relay, a demuxer, decodebin) is not decoded only to be encoded again; raw in the
// format the encoders take. Intersected with the query's filter.
void answer_input_caps_query(GstQuery *query, const std::string &kind);

}  // namespace wish
