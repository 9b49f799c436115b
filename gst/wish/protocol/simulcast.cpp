#include "simulcast.h"

#include <algorithm>

namespace wish {

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t end = s.find(sep, i);
    if (end == std::string_view::npos) end = s.size();
    if (end > i) out.push_back(s.substr(i, end - i));
    i = end + 1;
  }
  return out;
}

// The rids of the "send" direction of an a=simulcast value ("send q;h;f recv x"): the first
// alternative of each group, without the paused mark.
std::vector<std::string> simulcast_send_rids(std::string_view value) {
  auto words = split(value, ' ');
  for (size_t i = 0; i + 1 < words.size(); i++) {
    if (words[i] != "send") continue;
    std::vector<std::string> rids;
    for (auto group : split(words[i + 1], ';')) {
      auto alts = split(group, ',');
      if (alts.empty()) continue;
      std::string_view rid = alts.front();
      if (!rid.empty() && rid.front() == '~') rid.remove_prefix(1);
      if (!rid.empty()) rids.emplace_back(rid);
    }
    return rids;
  }
  return {};
}

int extension_id(const MediaSection &m, const char *uri) {
  for (const auto &kv : m.extmaps)
    if (kv.second == uri) return kv.first;
  return 0;
}

}  // namespace

std::optional<SimulcastOffer> simulcast_offer(const MediaSection &m) {
  if (m.kind != "video" || m.rejected() || m.simulcast.empty()) return std::nullopt;
  SimulcastOffer offer;
  offer.mid = m.mid;
  offer.mid_ext = extension_id(m, kMidExtension);
  offer.rid_ext = extension_id(m, kRidExtension);
  offer.repaired_rid_ext = extension_id(m, kRepairedRidExtension);
  if (!offer.rid_ext) return std::nullopt;
  for (const auto &rid : simulcast_send_rids(m.simulcast)) {
    bool declared = std::any_of(m.rids.begin(), m.rids.end(), [&](const auto &r) { return r.send && r.id == rid; });
    bool twice = std::find(offer.rids.begin(), offer.rids.end(), rid) != offer.rids.end();
    if (declared && !twice) offer.rids.push_back(rid);
  }
  if (offer.rids.size() < 2) return std::nullopt;
  return offer;
}

std::string accept_simulcast(std::string_view answer, const std::vector<SimulcastOffer> &offers) {
  // m-sections as line ranges; the lines for one go at its end.
  std::vector<std::string_view> lines;
  for (auto l : split(answer, '\n')) {
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    lines.push_back(l);
  }
  std::string out;
  auto flush_section = [&](size_t begin, size_t end) {
    const SimulcastOffer *offer = nullptr;
    std::vector<std::string_view> extmaps;
    auto fields = split(lines[begin], ' ');
    bool rejected = fields.size() > 1 && fields[1] == "0";
    for (size_t i = begin; i < end && !rejected; i++) {
      std::string_view l = lines[i];
      if (l.substr(0, 6) == "a=mid:")
        for (const auto &o : offers)
          if (o.mid == l.substr(6)) offer = &o;
      if (l.substr(0, 9) == "a=extmap:") extmaps.push_back(l);
    }
    // Candidates last: the added lines go before them.
    size_t tail = end;
    if (offer)
      while (tail > begin && (lines[tail - 1].substr(0, 12) == "a=candidate:" || lines[tail - 1] == "a=end-of-candidates"))
        tail--;
    for (size_t i = begin; i < tail; i++) out.append(lines[i]).append("\r\n");
    if (offer) {
      // Present: the uri is answered already, or its id is taken by another extension.
      auto present = [&](const char *uri, int id) {
        for (auto e : extmaps) {
          std::string_view ext_id = e.substr(9, e.find_first_of(" /") - 9);
          if (e.find(uri) != std::string_view::npos || ext_id == std::to_string(id)) return true;
        }
        return false;
      };
      for (auto [uri, id] : {std::pair<const char *, int>{kMidExtension, offer->mid_ext}, {kRidExtension, offer->rid_ext},
                             {kRepairedRidExtension, offer->repaired_rid_ext}})
        if (id && !present(uri, id)) out += "a=extmap:" + std::to_string(id) + " " + uri + "\r\n";
      std::string list;
      for (const auto &rid : offer->rids) {
        out += "a=rid:" + rid + " recv\r\n";
        list += (list.empty() ? "" : ";") + rid;
      }
      out += "a=simulcast:recv " + list + "\r\n";
    }
    for (size_t i = tail; i < end; i++) out.append(lines[i]).append("\r\n");
  };
  std::vector<size_t> starts;
  for (size_t i = 0; i < lines.size(); i++)
    if (lines[i].substr(0, 2) == "m=") starts.push_back(i);
  starts.push_back(lines.size());
  for (size_t i = 0; i < starts.front(); i++) out.append(lines[i]).append("\r\n");
  for (size_t k = 0; k + 1 < starts.size(); k++) flush_section(starts[k], starts[k + 1]);
  return out;
}

std::optional<std::string> rtp_header_extension(const uint8_t *p, size_t size, int id) {
  if (size < 12 || (p[0] >> 6) != 2 || !(p[0] & 0x10) || id <= 0) return std::nullopt;
  size_t pos = 12 + 4 * static_cast<size_t>(p[0] & 0x0f);
  if (pos + 4 > size) return std::nullopt;
  unsigned profile = (p[pos] << 8) | p[pos + 1];
  size_t len = 4 * static_cast<size_t>((p[pos + 2] << 8) | p[pos + 3]);
  pos += 4;
  if (pos + len > size) return std::nullopt;
  size_t end = pos + len;
  bool one_byte = profile == 0xBEDE;
  if (!one_byte && (profile & 0xfff0) != 0x1000) return std::nullopt;
  while (pos < end) {
    if (p[pos] == 0) {  // padding
      pos++;
      continue;
    }
    int ext_id;
    size_t ext_len;
    if (one_byte) {
      ext_id = p[pos] >> 4;
      ext_len = (p[pos] & 0x0f) + 1u;
      if (ext_id == 15) return std::nullopt;  // reserved: stop (RFC 8285 4.2)
      pos += 1;
    } else {
      if (pos + 2 > end) return std::nullopt;
      ext_id = p[pos];
      ext_len = p[pos + 1];
      pos += 2;
    }
    if (pos + ext_len > end) return std::nullopt;
    if (ext_id == id) return std::string(reinterpret_cast<const char *>(p + pos), ext_len);
    pos += ext_len;
  }
  return std::nullopt;
}

bool vp8_picture_size(const uint8_t *f, size_t size, int *width, int *height) {
  // frame tag (3 bytes, bit 0 clear for a key frame), start code 9d 01 2a, 14-bit sizes.
  if (size < 10 || (f[0] & 1) || f[3] != 0x9d || f[4] != 0x01 || f[5] != 0x2a) return false;
  *width = (f[6] | (f[7] << 8)) & 0x3fff;
  *height = (f[8] | (f[9] << 8)) & 0x3fff;
  return *width > 0 && *height > 0;
}

}  // namespace wish
