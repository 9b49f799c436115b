#include "sdpfrag.h"

#include <cctype>

#include "http.h"

namespace wish {

size_t SdpFrag::candidate_count() const {
  size_t n = 0;
  for (const auto &m : media) n += m.candidates.size();
  return n;
}

std::optional<SdpFrag> parse_sdpfrag(std::string_view text, std::string *error) {
  SdpFrag frag;
  SdpFragMedia *cur = nullptr;
  size_t pos = 0, lineno = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = trim(text.substr(pos, nl - pos));
    pos = nl + 1;
    lineno++;
    if (line.empty()) continue;
    if (line.size() < 2 || line[1] != '=' || !std::islower(static_cast<unsigned char>(line[0]))) {
      if (error) *error = "malformed sdpfrag line " + std::to_string(lineno);
      return std::nullopt;
    }
    if (line[0] == 'm') {
      frag.media.emplace_back();
      cur = &frag.media.back();
      continue;
    }
    if (line[0] != 'a') continue;
    std::string_view value = line.substr(2);
    auto colon = value.find(':');
    std::string_view name = value.substr(0, colon);
    std::string_view arg = colon == std::string_view::npos ? std::string_view() : value.substr(colon + 1);
    if (name == "ice-ufrag") {
      if (frag.ice_ufrag.empty()) frag.ice_ufrag = std::string(arg);
    } else if (name == "ice-pwd") {
      if (frag.ice_pwd.empty()) frag.ice_pwd = std::string(arg);
    } else if (name == "ice-options") {
      frag.ice_options.emplace_back(arg);
    } else if (name == "mid") {
      if (cur) cur->mid = std::string(arg);
    } else if (name == "candidate") {
      if (!cur) {
        frag.media.emplace_back();
        cur = &frag.media.back();
      }
      cur->candidates.emplace_back(value);
    } else if (name == "end-of-candidates") {
      frag.end_of_candidates = true;
      if (cur) cur->end_of_candidates = true;
    }
  }
  return frag;
}

std::string build_sdpfrag(const SdpFrag &frag) {
  std::string out;
  for (const auto &o : frag.ice_options) out += "a=ice-options:" + o + "\r\n";
  if (!frag.ice_ufrag.empty()) out += "a=ice-ufrag:" + frag.ice_ufrag + "\r\n";
  if (!frag.ice_pwd.empty()) out += "a=ice-pwd:" + frag.ice_pwd + "\r\n";
  for (const auto &m : frag.media) {
    // RFC 8840: the m-line is a placeholder; the mid says which section is meant.
    out += "m=audio 9 RTP/AVP 0\r\n";
    if (!m.mid.empty()) out += "a=mid:" + m.mid + "\r\n";
    for (const auto &c : m.candidates) out += "a=" + c + "\r\n";
    if (m.end_of_candidates) out += "a=end-of-candidates\r\n";
  }
  return out;
}

}  // namespace wish
