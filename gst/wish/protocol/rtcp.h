// RTCP (RFC 3550, feedback of RFC 4585 and RFC 5104, REMB) and the RTP header edits of a
// sender that forwards one payloaded stream to many viewers: what arrives from a viewer is
// parsed with strict bounds, what we send is built here. No GStreamer: the viewer transport
// calls this on every packet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace wish::rtcp {

enum PacketType : uint8_t {
  kSr = 200,
  kRr = 201,
  kSdes = 202,
  kBye = 203,
  kApp = 204,
  kRtpfb = 205,  // transport-layer feedback (RFC 4585): FMT 1 NACK, FMT 15 transport-cc
  kPsfb = 206,   // payload-specific feedback: FMT 1 PLI, FMT 4 FIR, FMT 15 application (REMB)
};

struct ReportBlock {
  uint32_t ssrc = 0;
  uint8_t fraction_lost = 0;
  int32_t cumulative_lost = 0;  // 24-bit signed on the wire
  uint32_t highest_seq = 0;     // extended highest sequence number received
  uint32_t jitter = 0;
  uint32_t last_sr = 0;        // middle 32 bits of the NTP time of the last SR
  uint32_t delay_since_sr = 0;  // in 1/65536 s
};

struct SenderReport {
  uint32_t ssrc = 0;
  uint64_t ntp_time = 0;  // 32.32 fixed point, seconds since 1900
  uint32_t rtp_time = 0;
  uint32_t packet_count = 0;
  uint32_t octet_count = 0;
  std::vector<ReportBlock> blocks;
};

struct ReceiverReport {
  uint32_t ssrc = 0;
  std::vector<ReportBlock> blocks;
};

struct Bye {
  std::vector<uint32_t> ssrcs;
};

// Generic NACK: the sequence numbers a receiver asks to be sent again.
struct Nack {
  uint32_t sender_ssrc = 0;
  uint32_t media_ssrc = 0;
  std::vector<uint16_t> seqs;
};

struct Pli {
  uint32_t sender_ssrc = 0;
  uint32_t media_ssrc = 0;
};

struct FirEntry {
  uint32_t ssrc = 0;
  uint8_t seq = 0;  // the same number again is the same request (RFC 5104 4.3.1.1)
};
struct Fir {
  uint32_t sender_ssrc = 0;
  std::vector<FirEntry> entries;
};

struct Remb {
  uint32_t sender_ssrc = 0;
  uint64_t bitrate = 0;  // bits per second
  std::vector<uint32_t> ssrcs;
};

// Everything one compound packet said, in the order of each kind.
struct Compound {
  std::vector<SenderReport> sender_reports;
  std::vector<ReceiverReport> receiver_reports;
  std::vector<Bye> byes;
  std::vector<Nack> nacks;
  std::vector<Pli> plis;
  std::vector<Fir> firs;
  std::vector<Remb> rembs;
  unsigned transport_cc = 0;  // transport-wide feedback packets, recognised and not read
  unsigned skipped = 0;       // SDES, APP, XR and feedback types we do not act on
};

// Parses a compound packet (or a reduced-size one, RFC 5506: feedback alone). The whole
// packet is rejected when any part of it is malformed: bad version, lengths past the end,
// padding anywhere but in the last packet, counts that do not fit the length.
bool parse_compound(const uint8_t *data, size_t len, Compound *out, std::string *error = nullptr);

// Whether a datagram on a muxed port is RTCP rather than RTP (RFC 5761 4: the second byte is
// a packet type in 192..223). Only the first two bytes are looked at.
bool is_rtcp(const uint8_t *data, size_t len);

// Builders: each appends one RTCP packet to *out; concatenations of them are a compound.
void append_sender_report(const SenderReport &sr, std::vector<uint8_t> *out);
void append_receiver_report(const ReceiverReport &rr, std::vector<uint8_t> *out);
// An SDES chunk with the CNAME item (at most 255 bytes of it).
void append_sdes_cname(uint32_t ssrc, const std::string &cname, std::vector<uint8_t> *out);
void append_bye(const Bye &bye, std::vector<uint8_t> *out);
void append_nack(const Nack &nack, std::vector<uint8_t> *out);
void append_pli(const Pli &pli, std::vector<uint8_t> *out);
void append_fir(const Fir &fir, std::vector<uint8_t> *out);
void append_remb(const Remb &remb, std::vector<uint8_t> *out);

// The compound a sender sends on its interval: SR for one of its SSRCs (RFC 3550 6.1 wants
// a report first) and its CNAME.
std::vector<uint8_t> build_sender_compound(const SenderReport &sr, const std::string &cname);

// NTP time (32.32) from microseconds since the Unix epoch.
uint64_t ntp_from_unix_us(int64_t unix_us);

}  // namespace wish::rtcp

namespace wish::rtp {

// Length of the RTP header with its CSRCs and header extension; 0 when the packet is not
// RTP version 2 or is shorter than its header says.
size_t header_length(const uint8_t *packet, size_t len);
// Payload length without padding; false when the padding count does not fit the packet.
bool payload_length(const uint8_t *packet, size_t len, size_t *out);

inline uint8_t payload_type(const uint8_t *p) { return p[1] & 0x7f; }
inline bool marker(const uint8_t *p) { return p[1] & 0x80; }
inline uint16_t seq(const uint8_t *p) { return static_cast<uint16_t>((p[2] << 8) | p[3]); }
inline uint32_t timestamp(const uint8_t *p) {
  return (uint32_t(p[4]) << 24) | (uint32_t(p[5]) << 16) | (uint32_t(p[6]) << 8) | p[7];
}
inline uint32_t ssrc(const uint8_t *p) {
  return (uint32_t(p[8]) << 24) | (uint32_t(p[9]) << 16) | (uint32_t(p[10]) << 8) | p[11];
}
inline void set_payload_type(uint8_t *p, uint8_t pt) { p[1] = static_cast<uint8_t>((p[1] & 0x80) | (pt & 0x7f)); }
inline void set_seq(uint8_t *p, uint16_t v) {
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
inline void set_timestamp(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[4 + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
inline void set_ssrc(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[8 + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

// The retransmission of a packet (RFC 4588 4): its header (CSRCs and extension kept) with the
// RTX payload type, SSRC and sequence number, then the original sequence number, then the
// original payload without padding. Empty when the original is not a valid RTP packet.
std::vector<uint8_t> build_rtx(const uint8_t *packet, size_t len, uint8_t rtx_pt, uint32_t rtx_ssrc, uint16_t rtx_seq);

}  // namespace wish::rtp
