// Just enough SDP (RFC 8866) understanding for WHIP/WHEP servers and clients: validate an
// offer, find the payload type to send a codec with, and finish an answer before it goes out.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wish {

enum class Direction { SendRecv, SendOnly, RecvOnly, Inactive };
const char *direction_name(Direction d);

struct RtpMap {
  std::string encoding;  // upper case: "H264", "VP8", "OPUS"
  unsigned clock_rate = 0;
  unsigned channels = 0;
  std::string fmtp;      // "" when absent
};

struct MediaSection {
  std::string kind;  // "audio", "video", "application", ...
  unsigned port = 0;
  std::string proto;
  std::vector<int> formats;          // payload types in preference order
  std::map<int, RtpMap> rtpmap;      // by payload type
  std::string mid;
  Direction direction = Direction::SendRecv;
  std::string ice_ufrag, ice_pwd;    // media level, or inherited from session level
  std::vector<std::string> candidates;  // "candidate:..." values
  bool bundle_only = false;
  // a=msid:<stream id> [<track id>] (RFC 8830), and the older a=ssrc:<n> msid:... form.
  std::string msid_stream, msid_track;
  // a=extmap:<id>[/<direction>] <uri> (RFC 8285), by id.
  std::map<int, std::string> extmaps;
  // a=rid:<id> <send|recv> [params] (RFC 8851), in order, and a=simulcast (RFC 8853) as given.
  struct Rid {
    std::string id;
    bool send = true;
  };
  std::vector<Rid> rids;
  std::string simulcast;  // the a=simulcast value, "" when absent

  // Port 0 rejects an m-line, except with a=bundle-only (RFC 8843: max-bundle offers).
  bool rejected() const { return port == 0 && !bundle_only; }
};

struct SessionDescription {
  std::vector<MediaSection> media;
  std::vector<std::string> bundle_mids;  // from a=group:BUNDLE
};

// Parses and validates. Returns nullopt and a short reason in *error when the text is not an
// SDP session description we can use (not "v=0" first, a malformed line, no m-line, ...).
std::optional<SessionDescription> parse_sdp(std::string_view text, std::string *error);

// Value of one key=value pair of an fmtp line, lower-cased key lookup: "" when absent.
std::string fmtp_param(std::string_view fmtp, std::string_view key);

// A codec this side can send on one m-line.
struct SendCodec {
  std::string kind;         // "audio" / "video"
  std::string encoding;     // "H264", "VP8", "VP9", "OPUS"
  unsigned clock_rate = 0;
  std::string h264_profile_level_id;  // e.g. "42e01f" for H.264; empty: any profile
};

// The payload type the peer offered for this codec on this m-line, best match first
// (H.264: same profile and packetization-mode=1 preferred, then any profile the stream
// decodes with). nullopt when the m-line cannot carry the codec.
std::optional<int> match_codec(const MediaSection &m, const SendCodec &codec);

// Finishes an answer or offer made by webrtcbin for the wire: adds a=rtcp-mux-only next to
// a=rtcp-mux, puts the given candidates (values "candidate:...") in every m-section that is
// not rejected, with a=end-of-candidates when gathering is complete, and normalises line
// endings to CRLF.
std::string finish_local_sdp(std::string_view sdp, const std::vector<std::string> &candidates,
                             bool complete = true);

// webrtcbin's max-bundle offers give every m-line but the first port 0 and a=bundle-only
// (RFC 8843). Many servers read port 0 as rejected, as browsers never send it: give such
// m-lines port 9 and drop a=bundle-only. BUNDLE still puts them on one transport.
std::string unbundle_only(std::string_view sdp);

// GStreamer 1.22's webrtcbin offers an rtx payload type (RFC 4588) for the first codec of an
// m-line only: whichever other codec the answerer picks would get NACKs but no
// retransmissions. Adds `a=rtpmap:<n> rtx/<clock>` and `a=fmtp:<n> apt=<pt>` for every audio
// or video codec of an m-line that has NACK (a=rtcp-fb:<pt> nack) and rtx for another codec
// but none of its own, with payload types no m-line uses. Other SDP is returned unchanged.
std::string add_rtx_for_every_codec(std::string_view sdp);

// The retransmission SSRCs of an SDP (the second SSRC of each a=ssrc-group:FID line), keyed
// by the SSRC they repair.
std::map<uint32_t, uint32_t> rtx_ssrcs(std::string_view sdp);

// The SDP with every SSRC of a=ssrc and a=ssrc-group lines found in `change` replaced by its
// value. Other lines are returned unchanged.
std::string replace_ssrcs(std::string_view sdp, const std::map<uint32_t, uint32_t> &change);

// Replaces a=sendrecv/a=recvonly/... of every m-section with the given direction.
std::string set_directions(std::string_view sdp, Direction d);

}  // namespace wish
