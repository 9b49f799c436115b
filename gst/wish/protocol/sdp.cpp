#include "sdp.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "http.h"

namespace wish {

const char *direction_name(Direction d) {
  switch (d) {
    case Direction::SendRecv: return "sendrecv";
    case Direction::SendOnly: return "sendonly";
    case Direction::RecvOnly: return "recvonly";
    case Direction::Inactive: return "inactive";
  }
  return "sendrecv";
}

static std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    pos = nl + 1;
  }
  return lines;
}

static std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) i++;
    size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') i++;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

static bool parse_uint(std::string_view s, unsigned long max, unsigned long *out) {
  if (s.empty() || s.size() > 10) return false;
  unsigned long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned long>(c - '0');
  }
  if (v > max) return false;
  *out = v;
  return true;
}

static std::string upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

static std::optional<Direction> direction_attr(std::string_view a) {
  if (a == "sendrecv") return Direction::SendRecv;
  if (a == "sendonly") return Direction::SendOnly;
  if (a == "recvonly") return Direction::RecvOnly;
  if (a == "inactive") return Direction::Inactive;
  return std::nullopt;
}

std::optional<SessionDescription> parse_sdp(std::string_view text, std::string *error) {
  auto fail = [&](std::string why) -> std::optional<SessionDescription> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  auto lines = split_lines(text);
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (lines.empty() || lines.front() != "v=0") return fail("SDP must start with v=0");

  SessionDescription sd;
  std::string session_ufrag, session_pwd;
  Direction session_dir = Direction::SendRecv;
  MediaSection *m = nullptr;
  std::vector<bool> has_dir;
  size_t lineno = 0;
  for (std::string_view line : lines) {
    lineno++;
    if (line.size() < 2 || line[1] != '=' || !std::islower(static_cast<unsigned char>(line[0])))
      return fail("malformed SDP line " + std::to_string(lineno));
    char type = line[0];
    std::string_view value = line.substr(2);
    if (type == 'm') {
      auto f = split_ws(value);
      unsigned long port = 0;
      auto slash = f.size() > 1 ? f[1].find('/') : std::string_view::npos;
      if (f.size() < 4 || !parse_uint(f[1].substr(0, slash), 65535, &port))
        return fail("malformed m-line " + std::to_string(lineno));
      sd.media.emplace_back();
      has_dir.push_back(false);
      m = &sd.media.back();
      m->kind = std::string(f[0]);
      m->port = static_cast<unsigned>(port);
      m->proto = std::string(f[2]);
      for (size_t i = 3; i < f.size(); i++) {
        unsigned long pt;
        if (parse_uint(f[i], 127, &pt)) m->formats.push_back(static_cast<int>(pt));
        // non-numeric formats (webrtc-datachannel) are fine but carry no payload type
      }
      continue;
    }
    if (type != 'a') continue;
    auto colon = value.find(':');
    std::string_view name = value.substr(0, colon);
    std::string_view arg = colon == std::string_view::npos ? std::string_view() : value.substr(colon + 1);
    if (!m) {
      if (name == "ice-ufrag") session_ufrag = std::string(arg);
      else if (name == "ice-pwd") session_pwd = std::string(arg);
      else if (name == "group") {
        auto f = split_ws(arg);
        if (!f.empty() && f[0] == "BUNDLE")
          for (size_t i = 1; i < f.size(); i++) sd.bundle_mids.emplace_back(f[i]);
      } else if (auto d = direction_attr(name)) {
        session_dir = *d;
      }
      continue;
    }
    if (name == "mid") {
      m->mid = std::string(arg);
    } else if (name == "ice-ufrag") {
      m->ice_ufrag = std::string(arg);
    } else if (name == "ice-pwd") {
      m->ice_pwd = std::string(arg);
    } else if (name == "candidate") {
      m->candidates.emplace_back(value);
    } else if (name == "bundle-only") {
      m->bundle_only = true;
    } else if (name == "msid" || (name == "ssrc" && arg.find(" msid:") != std::string_view::npos &&
                                  m->msid_stream.empty())) {
      std::string_view ids = name == "msid" ? arg : arg.substr(arg.find(" msid:") + 6);
      ids = trim(ids);
      auto sp = ids.find(' ');
      m->msid_stream = std::string(ids.substr(0, sp));
      m->msid_track = sp == std::string_view::npos ? "" : std::string(trim(ids.substr(sp + 1)));
    } else if (name == "rtpmap" || name == "fmtp") {
      auto sp = arg.find(' ');
      unsigned long pt;
      if (sp == std::string_view::npos || !parse_uint(arg.substr(0, sp), 127, &pt))
        return fail("malformed a=" + std::string(name) + " at line " + std::to_string(lineno));
      std::string_view rest = trim(arg.substr(sp + 1));
      RtpMap &r = m->rtpmap[static_cast<int>(pt)];
      if (name == "fmtp") {
        r.fmtp = std::string(rest);
      } else {
        // encoding/clock[/channels]
        auto s1 = rest.find('/');
        if (s1 == std::string_view::npos)
          return fail("malformed a=rtpmap at line " + std::to_string(lineno));
        r.encoding = upper(rest.substr(0, s1));
        std::string_view tail = rest.substr(s1 + 1);
        auto s2 = tail.find('/');
        unsigned long clock = 0, ch = 0;
        if (!parse_uint(tail.substr(0, s2), 10000000, &clock))
          return fail("malformed a=rtpmap clock rate at line " + std::to_string(lineno));
        if (s2 != std::string_view::npos && !parse_uint(tail.substr(s2 + 1), 255, &ch))
          return fail("malformed a=rtpmap channels at line " + std::to_string(lineno));
        r.clock_rate = static_cast<unsigned>(clock);
        r.channels = static_cast<unsigned>(ch);
      }
    } else if (name == "extmap") {
      auto f = split_ws(arg);
      unsigned long id;
      if (f.size() >= 2 && parse_uint(f[0].substr(0, f[0].find('/')), 4095, &id))
        m->extmaps[static_cast<int>(id)] = std::string(f[1]);
    } else if (name == "rid") {
      auto f = split_ws(arg);
      if (f.size() >= 2 && (f[1] == "send" || f[1] == "recv"))
        m->rids.push_back({std::string(f[0]), f[1] == "send"});
    } else if (name == "simulcast") {
      m->simulcast = std::string(trim(arg));
    } else if (auto d = direction_attr(name)) {
      m->direction = *d;
      has_dir[sd.media.size() - 1] = true;
    }
  }
  if (sd.media.empty()) return fail("SDP has no m-line");
  for (size_t i = 0; i < sd.media.size(); i++) {
    auto &mm = sd.media[i];
    if (!has_dir[i]) mm.direction = session_dir;
    if (mm.ice_ufrag.empty()) mm.ice_ufrag = session_ufrag;
    if (mm.ice_pwd.empty()) mm.ice_pwd = session_pwd;
  }
  return sd;
}

std::string fmtp_param(std::string_view fmtp, std::string_view key) {
  size_t i = 0;
  while (i < fmtp.size()) {
    size_t end = fmtp.find(';', i);
    if (end == std::string_view::npos) end = fmtp.size();
    std::string_view kv = trim(fmtp.substr(i, end - i));
    auto eq = kv.find('=');
    if (eq != std::string_view::npos && iequals(trim(kv.substr(0, eq)), key))
      return std::string(trim(kv.substr(eq + 1)));
    i = end + 1;
  }
  return "";
}

// Score of an offered H.264 format for a stream of the given profile-level-id: higher is
// better, negative means unusable. Level is not compared: WebRTC peers negotiate
// level-asymmetry and decoders accept higher levels in practice.
static int h264_score(const RtpMap &r, std::string_view ours) {
  std::string mode = fmtp_param(r.fmtp, "packetization-mode");
  if (mode != "1") return -1;  // our payloader fragments with FU-A (mode 1)
  std::string plid = fmtp_param(r.fmtp, "profile-level-id");
  if (ours.size() < 4) return 1;
  if (plid.size() != 6) return 0;  // absent: baseline per RFC 6184, decodes constrained baseline
  std::string a = upper(plid.substr(0, 4)), b = upper(ours.substr(0, 4));
  if (a == b) return 4;
  unsigned long their_idc = std::strtoul(plid.substr(0, 2).c_str(), nullptr, 16);
  unsigned long our_idc = std::strtoul(std::string(ours.substr(0, 2)).c_str(), nullptr, 16);
  unsigned long our_iop = std::strtoul(std::string(ours.substr(2, 2)).c_str(), nullptr, 16);
  bool ours_constrained_baseline = our_idc == 0x42 && (our_iop & 0x40);
  if (ours_constrained_baseline) {
    // Constrained baseline decodes with baseline, main and high decoders.
    if (their_idc == 0x42) return 3;
    if (their_idc == 0x4d || their_idc == 0x64) return 2;
    return -1;
  }
  return their_idc == our_idc ? 3 : -1;
}

std::optional<int> match_codec(const MediaSection &m, const SendCodec &codec) {
  if (m.kind != codec.kind || m.rejected()) return std::nullopt;
  std::optional<int> best;
  int best_score = -1;
  for (int pt : m.formats) {
    auto it = m.rtpmap.find(pt);
    if (it == m.rtpmap.end()) continue;
    const RtpMap &r = it->second;
    if (r.encoding != codec.encoding || r.clock_rate != codec.clock_rate) continue;
    int score = 1;
    if (codec.encoding == "H264") score = h264_score(r, codec.h264_profile_level_id);
    if (score > best_score) {
      best_score = score;
      best = pt;
    }
  }
  return best;
}

std::string finish_local_sdp(std::string_view sdp, const std::vector<std::string> &candidates, bool complete) {
  auto lines = split_lines(sdp);
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  std::string out;
  bool in_media = false, media_rejected = false, have_mux_only = false, have_mux = false;
  std::vector<std::string> section;
  auto flush_section = [&]() {
    if (!in_media) {
      for (auto &l : section) out += l + "\r\n";
      section.clear();
      return;
    }
    for (auto &l : section) {
      out += l + "\r\n";
      if (l == "a=rtcp-mux" && !have_mux_only) out += "a=rtcp-mux-only\r\n";
    }
    if (!have_mux && !have_mux_only && !media_rejected) out += "a=rtcp-mux\r\na=rtcp-mux-only\r\n";
    if (!media_rejected) {
      for (auto &c : candidates) out += "a=" + c + "\r\n";
      if (complete) out += "a=end-of-candidates\r\n";
    }
    section.clear();
  };
  for (std::string_view line : lines) {
    if (line.substr(0, 2) == "m=") {
      flush_section();
      in_media = true;
      auto f = split_ws(line.substr(2));
      media_rejected = f.size() > 1 && f[1] == "0";
      have_mux_only = have_mux = false;
    }
    if (in_media) {
      // Candidates are re-added at the end of the section; drop the ones webrtcbin put in.
      if (line.substr(0, 12) == "a=candidate:" || line == "a=end-of-candidates") continue;
      if (line == "a=rtcp-mux-only") have_mux_only = true;
      if (line == "a=rtcp-mux") have_mux = true;
    }
    section.emplace_back(line);
  }
  flush_section();
  return out;
}

std::string unbundle_only(std::string_view sdp) {
  auto lines = split_lines(sdp);
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  // First find which m-sections are bundle-only.
  std::vector<bool> bundle_only;
  for (std::string_view line : lines) {
    if (line.substr(0, 2) == "m=") bundle_only.push_back(false);
    if (line == "a=bundle-only" && !bundle_only.empty()) bundle_only.back() = true;
  }
  std::string out;
  int index = -1;
  for (std::string_view line : lines) {
    if (line.substr(0, 2) == "m=") {
      index++;
      auto f = split_ws(line.substr(2));
      if (bundle_only[index] && f.size() > 1 && f[1] == "0") {
        std::string rebuilt = "m=" + std::string(f[0]) + " 9";
        for (size_t i = 2; i < f.size(); i++) rebuilt += " " + std::string(f[i]);
        out += rebuilt + "\r\n";
        continue;
      }
    }
    if (line == "a=bundle-only") continue;
    out += std::string(line) + "\r\n";
  }
  return out;
}

std::string set_directions(std::string_view sdp, Direction d) {
  auto lines = split_lines(sdp);
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  std::string out;
  bool in_media = false;
  for (std::string_view line : lines) {
    if (line.substr(0, 2) == "m=") in_media = true;
    if (in_media && line.substr(0, 2) == "a=" && direction_attr(line.substr(2))) {
      out += std::string("a=") + direction_name(d) + "\r\n";
      continue;
    }
    out += std::string(line) + "\r\n";
  }
  return out;
}

std::string add_rtx_for_every_codec(std::string_view sdp) {
  auto lines = split_lines(sdp);
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  // Sections: [start, end) line ranges; section 0 is the session part.
  std::vector<size_t> starts{0};
  for (size_t i = 0; i < lines.size(); i++)
    if (lines[i].substr(0, 2) == "m=") starts.push_back(i);
  starts.push_back(lines.size());
  // Every payload type any m-line uses is taken (BUNDLE: one namespace for all).
  std::vector<bool> used(128, false);
  for (std::string_view line : lines) {
    if (line.substr(0, 2) != "m=") continue;
    auto f = split_ws(line.substr(2));
    for (size_t i = 3; i < f.size(); i++) {
      unsigned long pt = 0;
      if (parse_uint(f[i], 127, &pt)) used[pt] = true;
    }
  }
  auto next_free = [&used]() -> int {
    for (int pt = 96; pt < 128; pt++)
      if (!used[pt]) return used[pt] = true, pt;
    for (int pt = 35; pt < 64; pt++)  // RFC 3551's unassigned range, as browsers use it
      if (!used[pt]) return used[pt] = true, pt;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < starts[1]; i++) out += std::string(lines[i]) + "\r\n";
  for (size_t sec = 1; sec + 1 < starts.size(); sec++) {
    size_t begin = starts[sec], end = starts[sec + 1];
    auto m = split_ws(lines[begin].substr(2));
    bool av = !m.empty() && (m[0] == "audio" || m[0] == "video");
    std::map<int, std::pair<std::string, std::string>> codecs;  // pt -> (encoding upper, clock)
    std::vector<int> rtx_targets;
    std::vector<int> nack;
    for (size_t i = begin + 1; i < end && av; i++) {
      std::string_view line = lines[i];
      unsigned long pt = 0;
      if (line.substr(0, 9) == "a=rtpmap:") {
        auto f = split_ws(line.substr(9));
        if (f.size() < 2 || !parse_uint(f[0], 127, &pt)) continue;
        std::string_view enc = f[1];
        size_t slash = enc.find('/');
        std::string name = upper(enc.substr(0, slash));
        std::string clock = slash == std::string_view::npos ? "" : std::string(enc.substr(slash + 1));
        clock = clock.substr(0, clock.find('/'));
        codecs[static_cast<int>(pt)] = {name, clock};
      } else if (line.substr(0, 7) == "a=fmtp:") {
        size_t space = line.find(' ');
        std::string apt = space == std::string_view::npos ? "" : fmtp_param(line.substr(space + 1), "apt");
        if (!apt.empty() && parse_uint(apt, 127, &pt)) rtx_targets.push_back(static_cast<int>(pt));
      } else if (line.substr(0, 10) == "a=rtcp-fb:") {
        auto f = split_ws(line.substr(10));
        if (f.size() == 2 && f[1] == "nack" && parse_uint(f[0], 127, &pt)) nack.push_back(static_cast<int>(pt));
      }
    }
    std::vector<std::pair<int, int>> added;  // (rtx pt, target pt)
    if (av && !rtx_targets.empty()) {
      for (size_t k = 3; k < m.size(); k++) {
        unsigned long pt = 0;
        if (!parse_uint(m[k], 127, &pt)) continue;
        int p = static_cast<int>(pt);
        auto c = codecs.find(p);
        if (c == codecs.end() || c->second.second.empty()) continue;
        const std::string &enc = c->second.first;
        if (enc == "RTX" || enc == "RED" || enc == "ULPFEC" || enc == "FLEXFEC-03" || enc == "TELEPHONE-EVENT" ||
            enc == "CN")
          continue;
        if (std::find(rtx_targets.begin(), rtx_targets.end(), p) != rtx_targets.end()) continue;
        if (std::find(nack.begin(), nack.end(), p) == nack.end()) continue;
        int rtx = next_free();
        if (rtx < 0) break;
        added.emplace_back(rtx, p);
      }
    }
    std::string mline(lines[begin]);
    for (const auto &a : added) mline += " " + std::to_string(a.first);
    out += mline + "\r\n";
    for (size_t i = begin + 1; i < end; i++) out += std::string(lines[i]) + "\r\n";
    for (const auto &a : added) {
      out += "a=rtpmap:" + std::to_string(a.first) + " rtx/" + codecs[a.second].second + "\r\n";
      out += "a=fmtp:" + std::to_string(a.first) + " apt=" + std::to_string(a.second) + "\r\n";
    }
  }
  return out;
}

std::map<uint32_t, uint32_t> rtx_ssrcs(std::string_view sdp) {
  std::map<uint32_t, uint32_t> out;
  for (std::string_view line : split_lines(sdp)) {
    if (line.substr(0, 17) != "a=ssrc-group:FID ") continue;
    auto f = split_ws(line.substr(17));
    unsigned long media = 0, rtx = 0;
    if (f.size() == 2 && parse_uint(f[0], UINT32_MAX, &media) && parse_uint(f[1], UINT32_MAX, &rtx))
      out[static_cast<uint32_t>(media)] = static_cast<uint32_t>(rtx);
  }
  return out;
}

std::string replace_ssrcs(std::string_view sdp, const std::map<uint32_t, uint32_t> &change) {
  auto swap = [&change](std::string_view word) {
    unsigned long ssrc = 0;
    if (!parse_uint(word, UINT32_MAX, &ssrc)) return std::string(word);
    auto it = change.find(static_cast<uint32_t>(ssrc));
    return it == change.end() ? std::string(word) : std::to_string(it->second);
  };
  auto lines = split_lines(sdp);
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  std::string out;
  for (std::string_view line : lines) {
    if (line.substr(0, 7) == "a=ssrc:") {
      size_t end = line.find(' ');
      std::string_view rest = end == std::string_view::npos ? "" : line.substr(end);
      out += "a=ssrc:" + swap(line.substr(7, end == std::string_view::npos ? end : end - 7)) + std::string(rest);
    } else if (line.substr(0, 13) == "a=ssrc-group:") {
      auto f = split_ws(line.substr(13));
      out += "a=ssrc-group:";
      for (size_t i = 0; i < f.size(); i++) out += (i ? " " : "") + (i ? swap(f[i]) : std::string(f[i]));
    } else {
      out += std::string(line);
    }
    out += "\r\n";
  }
  return out;
}

}  // namespace wish
