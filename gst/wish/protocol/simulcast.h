// Simulcast ingest: a publisher sends one video m-line in several encodings told apart by
// their RID (RFC 8851 a=rid, RFC 8853 a=simulcast, RFC 8852 RTP header extensions), as
// browsers do with sendEncodings, without a=ssrc lines. Plain C++.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sdp.h"

namespace wish {

inline constexpr char kMidExtension[] = "urn:ietf:params:rtp-hdrext:sdes:mid";
inline constexpr char kRidExtension[] = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
inline constexpr char kRepairedRidExtension[] = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";

struct SimulcastOffer {
  std::string mid;
  std::vector<std::string> rids;  // as a=simulcast:send lists them (the first of each group)
  int mid_ext = 0, rid_ext = 0, repaired_rid_ext = 0;  // offered extension ids, 0 when absent
};

// The simulcast a video m-line offers to send: the rids a=simulcast:send lists that a=rid
// declares with "send" (paused ones, "~rid", too), with the RID header extension offered.
// nullopt when it offers none of that, or fewer than two such rids (then it is a plain one).
std::optional<SimulcastOffer> simulcast_offer(const MediaSection &m);

// Accepts the simulcast of `offers` in an answer (each found by its mid): a=extmap for the
// MID, RID and repaired RID extensions with the offered ids (unless the answer has them),
// a=rid:<id> recv for each rid and a=simulcast:recv with them all; rejected m-lines (port 0)
// get nothing. Other text unchanged.
std::string accept_simulcast(std::string_view answer, const std::vector<SimulcastOffer> &offers);

// The value of RTP header extension `id` (RFC 8285 one-byte or two-byte form) in an RTP
// packet; nullopt when the packet has no such element or is malformed.
std::optional<std::string> rtp_header_extension(const uint8_t *packet, size_t size, int id);

// The picture size a VP8 key frame (RFC 6386 9.1) gives; false for anything else.
bool vp8_picture_size(const uint8_t *frame, size_t size, int *width, int *height);

// The picture size of an H.264 sequence parameter set (ITU-T H.264 7.3.2.1.1), NAL header
// byte included, after cropping; false when it is not one or is malformed.
bool h264_sps_picture_size(const uint8_t *nal, size_t size, int *width, int *height);

// The picture size an RTP packet tells, for choosing among a publisher's encodings before
// decoding any: `encoding` is the a=rtpmap name ("VP8": the key frame header at the start of
// a frame, RFC 7741; "H264": an SPS, alone or in a STAP-A, RFC 6184). False for a packet
// that tells none.
bool rtp_picture_size(const uint8_t *packet, size_t size, std::string_view encoding, int *width, int *height);

// Which of a publisher's encodings feeds an output that takes one (whipserversrc's pads): the
// largest picture, whatever order the publisher lists its encodings in (browsers list theirs
// smallest first, OBS Studio largest first). Chosen once every offered encoding has told its
// size, or `wait_us` after the first packet when some never do (a browser holds its largest
// back until its bandwidth estimate allows it); the one listed last when none did.
class EncodingChoice {
public:
  EncodingChoice(std::vector<std::string> rids, int64_t wait_us) : rids_(std::move(rids)), wait_us_(wait_us) {}
  // A packet of encoding `rid` at `now_us`, with the picture size it tells (0 when none).
  // Returns the chosen encoding once there is one, and from then on.
  std::optional<std::string> observe(const std::string &rid, int width, int height, int64_t now_us);

private:
  std::vector<std::string> rids_;
  int64_t wait_us_;
  int64_t first_us_ = -1;
  std::vector<int64_t> areas_ = std::vector<int64_t>(rids_.size(), 0);
  std::optional<std::string> chosen_;
};

}  // namespace wish
