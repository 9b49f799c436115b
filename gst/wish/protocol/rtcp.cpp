#include "rtcp.h"

#include <algorithm>

namespace wish::rtcp {

namespace {

uint16_t read16(const uint8_t *p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t read24(const uint8_t *p) { return (uint32_t(p[0]) << 16) | (uint32_t(p[1]) << 8) | p[2]; }
uint32_t read32(const uint8_t *p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

void put16(std::vector<uint8_t> *o, uint16_t v) {
  o->push_back(static_cast<uint8_t>(v >> 8));
  o->push_back(static_cast<uint8_t>(v));
}
void put32(std::vector<uint8_t> *o, uint32_t v) {
  for (int i = 0; i < 4; i++) o->push_back(static_cast<uint8_t>(v >> (24 - 8 * i)));
}

bool fail(std::string *error, const char *what) {
  if (error) *error = what;
  return false;
}

void read_blocks(const uint8_t *p, unsigned count, std::vector<ReportBlock> *out) {
  for (unsigned i = 0; i < count; i++, p += 24) {
    ReportBlock b;
    b.ssrc = read32(p);
    b.fraction_lost = p[4];
    uint32_t lost = read24(p + 5);
    b.cumulative_lost = (lost & 0x800000) ? static_cast<int32_t>(lost | 0xff000000u) : static_cast<int32_t>(lost);
    b.highest_seq = read32(p + 8);
    b.jitter = read32(p + 12);
    b.last_sr = read32(p + 16);
    b.delay_since_sr = read32(p + 20);
    out->push_back(b);
  }
}

// One packet's body (after the 4-byte header, padding removed) into *out.
bool parse_one(uint8_t count, uint8_t type, const uint8_t *body, size_t n, Compound *out, std::string *error) {
  switch (type) {
    case kSr: {
      if (n < 24 + 24 * size_t(count)) return fail(error, "SR shorter than its report blocks");
      SenderReport sr;
      sr.ssrc = read32(body);
      sr.ntp_time = (uint64_t(read32(body + 4)) << 32) | read32(body + 8);
      sr.rtp_time = read32(body + 12);
      sr.packet_count = read32(body + 16);
      sr.octet_count = read32(body + 20);
      read_blocks(body + 24, count, &sr.blocks);  // profile extensions after them are ignored
      out->sender_reports.push_back(std::move(sr));
      return true;
    }
    case kRr: {
      if (n < 4 + 24 * size_t(count)) return fail(error, "RR shorter than its report blocks");
      ReceiverReport rr;
      rr.ssrc = read32(body);
      read_blocks(body + 4, count, &rr.blocks);
      out->receiver_reports.push_back(std::move(rr));
      return true;
    }
    case kBye: {
      if (n < 4 * size_t(count)) return fail(error, "BYE shorter than its SSRCs");
      Bye bye;
      for (unsigned i = 0; i < count; i++) bye.ssrcs.push_back(read32(body + 4 * i));
      out->byes.push_back(std::move(bye));
      return true;
    }
    case kRtpfb:
    case kPsfb:
      break;
    default:  // SDES, APP, XR, ...: nothing a sender acts on
      out->skipped++;
      return true;
  }

  // Feedback (RFC 4585 6.1): sender SSRC, media SSRC, then the FCI; count is the FMT.
  if (n < 8) return fail(error, "feedback shorter than its SSRCs");
  uint32_t sender = read32(body), media = read32(body + 4);
  const uint8_t *fci = body + 8;
  size_t fci_len = n - 8;
  if (type == kRtpfb && count == 1) {
    if (fci_len == 0 || fci_len % 4) return fail(error, "NACK without whole PID+BLP entries");
    Nack nack{sender, media, {}};
    for (size_t i = 0; i < fci_len; i += 4) {
      uint16_t pid = read16(fci + i), blp = read16(fci + i + 2);
      nack.seqs.push_back(pid);
      for (int b = 0; b < 16; b++)
        if (blp & (1 << b)) nack.seqs.push_back(static_cast<uint16_t>(pid + b + 1));
    }
    out->nacks.push_back(std::move(nack));
  } else if (type == kRtpfb && count == 15) {
    out->transport_cc++;
  } else if (type == kPsfb && count == 1) {
    out->plis.push_back(Pli{sender, media});
  } else if (type == kPsfb && count == 4) {
    if (fci_len == 0 || fci_len % 8) return fail(error, "FIR without whole entries");
    Fir fir{sender, {}};
    for (size_t i = 0; i < fci_len; i += 8) fir.entries.push_back(FirEntry{read32(fci + i), fci[i + 4]});
    out->firs.push_back(std::move(fir));
  } else if (type == kPsfb && count == 15 && fci_len >= 4 && std::equal(fci, fci + 4, "REMB")) {
    if (fci_len < 8) return fail(error, "REMB without its bitrate");
    size_t num = fci[4];
    if (fci_len < 8 + 4 * num) return fail(error, "REMB shorter than its SSRCs");
    unsigned exp = fci[5] >> 2;
    uint64_t mantissa = (uint64_t(fci[5] & 0x03) << 16) | read16(fci + 6);
    if (exp > 46 && mantissa >> (64 - exp)) return fail(error, "REMB bitrate out of range");
    Remb remb{sender, mantissa << exp, {}};
    for (size_t i = 0; i < num; i++) remb.ssrcs.push_back(read32(fci + 8 + 4 * i));
    out->rembs.push_back(std::move(remb));
  } else {
    out->skipped++;
  }
  return true;
}

void header(uint8_t count, uint8_t type, std::vector<uint8_t> *out) {
  out->push_back(static_cast<uint8_t>(0x80 | (count & 0x1f)));
  out->push_back(type);
  put16(out, 0);  // by end_packet()
}

// Writes the length of the packet that starts at `start` (whole 32-bit words minus one).
void end_packet(size_t start, std::vector<uint8_t> *out) {
  uint16_t words = static_cast<uint16_t>((out->size() - start) / 4 - 1);
  (*out)[start + 2] = static_cast<uint8_t>(words >> 8);
  (*out)[start + 3] = static_cast<uint8_t>(words);
}

void put_blocks(const std::vector<ReportBlock> &blocks, size_t count, std::vector<uint8_t> *out) {
  for (size_t i = 0; i < count; i++) {
    const ReportBlock &b = blocks[i];
    put32(out, b.ssrc);
    out->push_back(b.fraction_lost);
    uint32_t lost = static_cast<uint32_t>(std::clamp(b.cumulative_lost, -0x800000, 0x7fffff)) & 0xffffff;
    out->push_back(static_cast<uint8_t>(lost >> 16));
    put16(out, static_cast<uint16_t>(lost));
    put32(out, b.highest_seq);
    put32(out, b.jitter);
    put32(out, b.last_sr);
    put32(out, b.delay_since_sr);
  }
}

}  // namespace

bool parse_compound(const uint8_t *data, size_t len, Compound *out, std::string *error) {
  *out = Compound{};
  if (len < 4) return fail(error, "shorter than an RTCP header");
  size_t offset = 0;
  while (offset < len) {
    if (len - offset < 4) return fail(error, "trailing bytes after the last packet");
    const uint8_t *p = data + offset;
    if ((p[0] >> 6) != 2) return fail(error, "not RTCP version 2");
    if (p[1] < 192 || p[1] > 223) return fail(error, "packet type outside RTCP's range");
    size_t size = (size_t(read16(p + 2)) + 1) * 4;
    if (size > len - offset) return fail(error, "packet longer than the datagram");
    size_t body = size - 4;
    if (p[0] & 0x20) {  // padding: only the last packet of a compound may have it (RFC 3550 6.4.1)
      if (offset + size != len) return fail(error, "padding before the last packet");
      size_t pad = p[size - 1];
      if (pad == 0 || pad > body) return fail(error, "padding count out of range");
      body -= pad;
    }
    if (!parse_one(p[0] & 0x1f, p[1], p + 4, body, out, error)) return false;
    offset += size;
  }
  return true;
}

bool is_rtcp(const uint8_t *data, size_t len) { return len >= 2 && data[1] >= 192 && data[1] <= 223; }

void append_sender_report(const SenderReport &sr, std::vector<uint8_t> *out) {
  size_t start = out->size(), count = std::min<size_t>(sr.blocks.size(), 31);
  header(static_cast<uint8_t>(count), kSr, out);
  put32(out, sr.ssrc);
  put32(out, static_cast<uint32_t>(sr.ntp_time >> 32));
  put32(out, static_cast<uint32_t>(sr.ntp_time));
  put32(out, sr.rtp_time);
  put32(out, sr.packet_count);
  put32(out, sr.octet_count);
  put_blocks(sr.blocks, count, out);
  end_packet(start, out);
}

void append_receiver_report(const ReceiverReport &rr, std::vector<uint8_t> *out) {
  size_t start = out->size(), count = std::min<size_t>(rr.blocks.size(), 31);
  header(static_cast<uint8_t>(count), kRr, out);
  put32(out, rr.ssrc);
  put_blocks(rr.blocks, count, out);
  end_packet(start, out);
}

void append_sdes_cname(uint32_t ssrc, const std::string &cname, std::vector<uint8_t> *out) {
  size_t start = out->size(), n = std::min<size_t>(cname.size(), 255);
  header(1, kSdes, out);
  put32(out, ssrc);
  out->push_back(1);  // CNAME
  out->push_back(static_cast<uint8_t>(n));
  out->insert(out->end(), cname.begin(), cname.begin() + static_cast<std::ptrdiff_t>(n));
  // The item list ends with a null octet, the chunk with a 32-bit boundary (RFC 3550 6.5).
  do out->push_back(0);
  while ((out->size() - start) % 4);
  end_packet(start, out);
}

void append_bye(const Bye &bye, std::vector<uint8_t> *out) {
  size_t start = out->size(), count = std::min<size_t>(bye.ssrcs.size(), 31);
  header(static_cast<uint8_t>(count), kBye, out);
  for (size_t i = 0; i < count; i++) put32(out, bye.ssrcs[i]);
  end_packet(start, out);
}

void append_nack(const Nack &nack, std::vector<uint8_t> *out) {
  size_t start = out->size();
  header(1, kRtpfb, out);
  put32(out, nack.sender_ssrc);
  put32(out, nack.media_ssrc);
  // Each sequence number joins the entry before it when it is within the 16 after its PID
  // (in sequence number order, with wrap-around), else starts the next entry.
  bool open = false;
  uint16_t pid = 0, blp = 0;
  for (uint16_t s : nack.seqs) {
    uint16_t diff = static_cast<uint16_t>(s - pid);
    if (open && diff == 0) continue;
    if (open && diff >= 1 && diff <= 16) {
      blp = static_cast<uint16_t>(blp | (1u << (diff - 1)));
      continue;
    }
    if (open) put16(out, pid), put16(out, blp);
    open = true, pid = s, blp = 0;
  }
  if (open) put16(out, pid), put16(out, blp);
  end_packet(start, out);
}

void append_pli(const Pli &pli, std::vector<uint8_t> *out) {
  size_t start = out->size();
  header(1, kPsfb, out);
  put32(out, pli.sender_ssrc);
  put32(out, pli.media_ssrc);
  end_packet(start, out);
}

void append_fir(const Fir &fir, std::vector<uint8_t> *out) {
  size_t start = out->size();
  header(4, kPsfb, out);
  put32(out, fir.sender_ssrc);
  put32(out, 0);  // media SSRC: unused by FIR (RFC 5104 4.3.1.2)
  for (const FirEntry &e : fir.entries) {
    put32(out, e.ssrc);
    out->push_back(e.seq);
    out->insert(out->end(), 3, 0);
  }
  end_packet(start, out);
}

void append_remb(const Remb &remb, std::vector<uint8_t> *out) {
  size_t start = out->size(), num = std::min<size_t>(remb.ssrcs.size(), 255);
  header(15, kPsfb, out);
  put32(out, remb.sender_ssrc);
  put32(out, 0);
  out->insert(out->end(), {'R', 'E', 'M', 'B'});
  out->push_back(static_cast<uint8_t>(num));
  unsigned exp = 0;
  while ((remb.bitrate >> exp) >= (1u << 18)) exp++;
  uint32_t mantissa = static_cast<uint32_t>(remb.bitrate >> exp);
  out->push_back(static_cast<uint8_t>((exp << 2) | (mantissa >> 16)));
  put16(out, static_cast<uint16_t>(mantissa));
  for (size_t i = 0; i < num; i++) put32(out, remb.ssrcs[i]);
  end_packet(start, out);
}

std::vector<uint8_t> build_sender_compound(const SenderReport &sr, const std::string &cname) {
  std::vector<uint8_t> out;
  append_sender_report(sr, &out);
  append_sdes_cname(sr.ssrc, cname, &out);
  return out;
}

uint64_t ntp_from_unix_us(int64_t unix_us) {
  constexpr uint64_t kUnixToNtp = 2208988800ull;  // seconds from 1900 to 1970
  uint64_t seconds = static_cast<uint64_t>(unix_us / 1000000) + kUnixToNtp;
  uint64_t frac = (static_cast<uint64_t>(unix_us % 1000000) << 32) / 1000000;
  return (seconds << 32) | frac;
}

}  // namespace wish::rtcp

namespace wish::rtp {

size_t header_length(const uint8_t *p, size_t len) {
  if (len < 12 || (p[0] >> 6) != 2) return 0;
  size_t offset = 12 + 4 * static_cast<size_t>(p[0] & 0x0f);
  if (p[0] & 0x10) {  // header extension: profile, length in 32-bit words, then the words
    if (len < offset + 4) return 0;
    offset += 4 + 4 * static_cast<size_t>((p[offset + 2] << 8) | p[offset + 3]);
  }
  return offset <= len ? offset : 0;
}

bool payload_length(const uint8_t *p, size_t len, size_t *out) {
  size_t h = header_length(p, len);
  if (!h) return false;
  size_t n = len - h;
  if (p[0] & 0x20) {
    if (n == 0 || p[len - 1] == 0 || p[len - 1] > n) return false;
    n -= p[len - 1];
  }
  *out = n;
  return true;
}

std::vector<uint8_t> build_rtx(const uint8_t *packet, size_t len, uint8_t rtx_pt, uint32_t rtx_ssrc, uint16_t rtx_seq) {
  size_t h = header_length(packet, len), n = 0;
  if (!h || !payload_length(packet, len, &n)) return {};
  std::vector<uint8_t> out;
  out.reserve(h + 2 + n);
  out.insert(out.end(), packet, packet + h);
  out[0] &= static_cast<uint8_t>(~0x20);  // the padding stays behind
  set_payload_type(out.data(), rtx_pt);
  set_ssrc(out.data(), rtx_ssrc);
  set_seq(out.data(), rtx_seq);
  uint16_t osn = seq(packet);
  out.push_back(static_cast<uint8_t>(osn >> 8));
  out.push_back(static_cast<uint8_t>(osn));
  out.insert(out.end(), packet + h, packet + h + n);
  return out;
}

}  // namespace wish::rtp
