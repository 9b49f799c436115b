#include "simulcast.h"

#include <algorithm>
#include <cstring>
#include <strings.h>

#include "rtcp.h"

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

namespace {

// Exp-Golomb reader over an RBSP (emulation prevention bytes already removed). Reading past
// the end sets `bad` and yields zeros.
struct BitReader {
  const std::vector<uint8_t> &data;
  size_t bit = 0;
  bool bad = false;
  uint32_t u(unsigned n) {
    uint32_t v = 0;
    for (unsigned i = 0; i < n; i++) {
      if (bit >= data.size() * 8) {
        bad = true;
        return 0;
      }
      v = (v << 1) | ((data[bit / 8] >> (7 - bit % 8)) & 1);
      bit++;
    }
    return v;
  }
  uint32_t ue() {
    unsigned zeros = 0;
    while (!bad && u(1) == 0)
      if (++zeros > 31) bad = true;
    if (bad) return 0;
    return ((1u << zeros) - 1) + u(zeros);
  }
  int32_t se() {
    uint32_t k = ue();
    return (k & 1) ? static_cast<int32_t>((k + 1) / 2) : -static_cast<int32_t>(k / 2);
  }
};

void skip_scaling_list(BitReader &r, int size) {
  int last = 8, next = 8;
  for (int j = 0; j < size && !r.bad; j++) {
    if (next != 0) next = (last + r.se() + 256) % 256;
    last = next == 0 ? last : next;
  }
}

}  // namespace

bool h264_sps_picture_size(const uint8_t *nal, size_t size, int *width, int *height) {
  if (size < 4 || (nal[0] & 0x1f) != 7) return false;
  std::vector<uint8_t> rbsp;
  rbsp.reserve(size);
  for (size_t i = 1, zeros = 0; i < size; i++) {
    if (zeros >= 2 && nal[i] == 3) {  // emulation prevention byte
      zeros = 0;
      continue;
    }
    zeros = nal[i] == 0 ? zeros + 1 : 0;
    rbsp.push_back(nal[i]);
  }
  BitReader r{rbsp};
  uint32_t profile = r.u(8);
  r.u(16);  // constraint flags, level
  r.ue();   // seq_parameter_set_id
  uint32_t chroma_format = 1;
  if (profile == 100 || profile == 110 || profile == 122 || profile == 244 || profile == 44 || profile == 83 ||
      profile == 86 || profile == 118 || profile == 128 || profile == 138 || profile == 139 || profile == 134 ||
      profile == 135) {
    chroma_format = r.ue();
    if (chroma_format > 3) return false;
    if (chroma_format == 3) r.u(1);  // separate_colour_plane_flag
    r.ue();                          // bit depths
    r.ue();
    r.u(1);
    if (r.u(1))  // seq_scaling_matrix_present_flag
      for (int i = 0; i < (chroma_format == 3 ? 12 : 8) && !r.bad; i++)
        if (r.u(1)) skip_scaling_list(r, i < 6 ? 16 : 64);
  }
  r.ue();  // log2_max_frame_num_minus4
  uint32_t poc_type = r.ue();
  if (poc_type == 0) {
    r.ue();
  } else if (poc_type == 1) {
    r.u(1);
    r.se();
    r.se();
    uint32_t cycle = r.ue();
    if (cycle > 255) return false;
    for (uint32_t i = 0; i < cycle && !r.bad; i++) r.se();
  } else if (poc_type != 2) {
    return false;
  }
  r.ue();  // max_num_ref_frames
  r.u(1);
  uint32_t mbs_w = r.ue() + 1, map_units_h = r.ue() + 1;
  uint32_t frame_mbs_only = r.u(1);
  if (!frame_mbs_only) r.u(1);
  r.u(1);  // direct_8x8_inference_flag
  uint32_t crop_l = 0, crop_r = 0, crop_t = 0, crop_b = 0;
  if (r.u(1)) {
    crop_l = r.ue();
    crop_r = r.ue();
    crop_t = r.ue();
    crop_b = r.ue();
  }
  if (r.bad || mbs_w > 1024 || map_units_h > 1024) return false;
  // Cropping is counted in chroma samples (4:2:0 and 4:2:2 halve the width, 4:2:0 the height).
  uint32_t unit_x = (chroma_format == 1 || chroma_format == 2) ? 2 : 1;
  uint32_t unit_y = (chroma_format == 1 ? 2 : 1) * (2 - frame_mbs_only);
  int64_t w = int64_t(mbs_w) * 16 - int64_t(unit_x) * (crop_l + crop_r);
  int64_t h = int64_t(map_units_h) * 16 * (2 - frame_mbs_only) - int64_t(unit_y) * (crop_t + crop_b);
  if (w <= 0 || h <= 0) return false;
  *width = static_cast<int>(w);
  *height = static_cast<int>(h);
  return true;
}

bool rtp_picture_size(const uint8_t *packet, size_t size, std::string_view encoding, int *width, int *height) {
  size_t header = rtp::header_length(packet, size), n = 0;
  if (header == 0 || !rtp::payload_length(packet, size, &n) || n == 0) return false;
  const uint8_t *p = packet + header;
  auto is = [&](const char *name) {
    return encoding.size() == strlen(name) && strncasecmp(encoding.data(), name, encoding.size()) == 0;
  };
  if (is("VP8")) {
    // RFC 7741 4.2 payload descriptor; only the start of partition 0 holds the frame header.
    size_t i = 1;
    bool start = p[0] & 0x10, pid0 = (p[0] & 0x07) == 0;
    if (p[0] & 0x80) {
      if (n < 2) return false;
      uint8_t x = p[1];
      i = 2;
      if (x & 0x80) i += (i < n && (p[i] & 0x80)) ? 2 : 1;  // PictureID, 7 or 15 bits
      if (x & 0x40) i += 1;                                  // TL0PICIDX
      if (x & 0x30) i += 1;                                  // TID/KEYIDX
    }
    return start && pid0 && i < n && vp8_picture_size(p + i, n - i, width, height);
  }
  if (is("H264")) {
    uint8_t type = p[0] & 0x1f;
    if (type == 7) return h264_sps_picture_size(p, n, width, height);
    if (type != 24) return false;  // STAP-A: 16-bit sizes, each followed by its NAL unit
    for (size_t i = 1; i + 2 <= n;) {
      size_t len = (size_t(p[i]) << 8) | p[i + 1];
      i += 2;
      if (len == 0 || i + len > n) return false;
      if ((p[i] & 0x1f) == 7) return h264_sps_picture_size(p + i, len, width, height);
      i += len;
    }
  }
  return false;
}

std::optional<std::string> EncodingChoice::observe(const std::string &rid, int width, int height, int64_t now_us) {
  if (chosen_) return chosen_;
  if (rids_.empty()) return std::nullopt;
  if (first_us_ < 0) first_us_ = now_us;
  auto it = std::find(rids_.begin(), rids_.end(), rid);
  if (it != rids_.end() && width > 0 && height > 0) areas_[it - rids_.begin()] = int64_t(width) * height;
  bool all = std::all_of(areas_.begin(), areas_.end(), [](int64_t a) { return a > 0; });
  if (!all && now_us - first_us_ < wait_us_) return std::nullopt;
  size_t best = rids_.size() - 1;  // the one listed last when no size is known
  for (size_t i = 0; i < rids_.size(); i++)
    if (areas_[i] > areas_[best]) best = i;
  chosen_ = rids_[best];
  return chosen_;
}

}  // namespace wish
