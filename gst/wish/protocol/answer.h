// The SDP answer of a server that sends to a WHEP viewer without webrtcbin (the shared viewer
// transport): from the viewer's recvonly offer and the tracks we have, the offer's matching
// payload types, with rtx (RFC 4588) when offered, our ICE credentials, candidates and DTLS
// fingerprint. m-lines we cannot serve are rejected (port 0).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sdp.h"

namespace wish {

struct AnswerTrack {
  SendCodec codec;          // kind, encoding ("H264", "VP8", "VP9", "OPUS", "PCMU", "PCMA"), clock rate
  uint32_t ssrc = 0;
  uint32_t rtx_ssrc = 0;    // 0: no retransmission stream even when the offer has rtx
  bool nack = true;         // false: no a=rtcp-fb nack (do-retransmission=false); pli and fir stay
  std::string msid_stream = "wish", msid_track;  // msid_track "" : "<kind><index>"
};

struct AnswerTransport {
  std::string ice_ufrag, ice_pwd;
  std::string fingerprint;              // "AB:CD:..." (sha-256)
  std::vector<std::string> candidates;  // "candidate:..." values
  bool end_of_candidates = true;
  std::string cname = "wish";
};

// What the answer decided for each m-line of the offer, in its order.
struct AnsweredMedia {
  std::string mid;
  int track = -1;              // index into the tracks; -1: rejected
  int payload_type = -1;
  int rtx_payload_type = -1;   // -1: no rtx
  bool video = false;
};

struct Answer {
  std::string sdp;
  std::vector<AnsweredMedia> media;
};

// The choices alone (what the transport needs before it has credentials to answer with).
std::optional<std::vector<AnsweredMedia>> match_offer(std::string_view offer, const std::vector<AnswerTrack> &tracks,
                                                      std::string *error);

// Each track goes on the first offered m-line of its kind that can carry its codec and is
// not taken yet. nullopt and *error when the offer does not parse, does not ask to receive,
// or no track fits any m-line.
std::optional<Answer> write_answer(std::string_view offer, const std::vector<AnswerTrack> &tracks,
                                   const AnswerTransport &transport, std::string *error);

}  // namespace wish
