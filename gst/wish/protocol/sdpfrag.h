// application/trickle-ice-sdpfrag bodies (RFC 8840) as WHIP/WHEP PATCH requests carry them.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wish {

struct SdpFragMedia {
  std::string mid;
  std::vector<std::string> candidates;  // "candidate:..." values, without "a="
  bool end_of_candidates = false;
};

struct SdpFrag {
  std::string ice_ufrag, ice_pwd;  // session level, or taken from the first m-section
  std::vector<std::string> ice_options;
  std::vector<SdpFragMedia> media;
  bool end_of_candidates = false;   // anywhere in the fragment

  size_t candidate_count() const;
};

// Lenient: unknown attributes are ignored, candidates before any m-line are attached to an
// implicit first section. Fails only on text that is not SDP-shaped.
std::optional<SdpFrag> parse_sdpfrag(std::string_view text, std::string *error);

// A fragment with session-level credentials and one m-section per mid, as an ICE restart
// answer or a client's trickle PATCH carries it.
std::string build_sdpfrag(const SdpFrag &frag);

}  // namespace wish
