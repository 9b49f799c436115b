// RTCP parsing and building, and the RTP header edits of the viewer transport. GStreamer's
// GstRTCPBuffer/GstRTPBuffer (what webrtcbin's rtpbin reads and writes) is the reference on
// both sides: what it writes we read, what we write it reads.
#include <gst/check/gstcheck.h>
#include <gst/rtp/gstrtcpbuffer.h>
#include <gst/rtp/gstrtpbuffer.h>

#include <cstring>
#include <vector>

#include "protocol/rtcp.h"

using namespace wish;

namespace {

std::vector<uint8_t> bytes_of(GstBuffer *buf) {
  GstMapInfo map;
  gst_buffer_map(buf, &map, GST_MAP_READ);
  std::vector<uint8_t> v(map.data, map.data + map.size);
  gst_buffer_unmap(buf, &map);
  return v;
}

rtcp::Compound parse_ok(const std::vector<uint8_t> &b) {
  rtcp::Compound c;
  std::string error;
  fail_unless(rtcp::parse_compound(b.data(), b.size(), &c, &error), "rejected: %s", error.c_str());
  return c;
}

bool parses(const std::vector<uint8_t> &b) {
  rtcp::Compound c;
  return rtcp::parse_compound(b.data(), b.size(), &c);
}

}  // namespace

GST_START_TEST(test_reads_gstreamer_reports) {
  GstBuffer *buf = gst_rtcp_buffer_new(1400);
  GstRTCPBuffer rtcp = GST_RTCP_BUFFER_INIT;
  GstRTCPPacket p;
  gst_rtcp_buffer_map(buf, GST_MAP_READWRITE, &rtcp);
  fail_unless(gst_rtcp_buffer_add_packet(&rtcp, GST_RTCP_TYPE_SR, &p));
  gst_rtcp_packet_sr_set_sender_info(&p, 0x11223344, 0xe1a2b3c4d5e6f708ull, 90000, 1234, 567890);
  gst_rtcp_packet_add_rb(&p, 0xaabbccdd, 25, 7, 0x10002, 33, 0x55667788, 0x10000);
  gst_rtcp_packet_add_rb(&p, 0x01020304, 0, -3, 17, 0, 0, 0);
  fail_unless(gst_rtcp_buffer_add_packet(&rtcp, GST_RTCP_TYPE_SDES, &p));
  gst_rtcp_packet_sdes_add_item(&p, 0x11223344);
  gst_rtcp_packet_sdes_add_entry(&p, GST_RTCP_SDES_CNAME, 9, reinterpret_cast<const guint8 *>("user@host"));
  fail_unless(gst_rtcp_buffer_add_packet(&rtcp, GST_RTCP_TYPE_BYE, &p));
  gst_rtcp_packet_bye_add_ssrc(&p, 0x11223344);
  gst_rtcp_packet_bye_add_ssrc(&p, 0x99);
  gst_rtcp_buffer_unmap(&rtcp);
  std::vector<uint8_t> b = bytes_of(buf);
  gst_buffer_unref(buf);

  rtcp::Compound c = parse_ok(b);
  fail_unless_equals_int(c.sender_reports.size(), 1);
  const rtcp::SenderReport &sr = c.sender_reports[0];
  fail_unless_equals_uint64(sr.ssrc, 0x11223344);
  fail_unless_equals_uint64(sr.ntp_time, 0xe1a2b3c4d5e6f708ull);
  fail_unless_equals_int(sr.rtp_time, 90000);
  fail_unless_equals_int(sr.packet_count, 1234);
  fail_unless_equals_int(sr.octet_count, 567890);
  fail_unless_equals_int(sr.blocks.size(), 2);
  fail_unless_equals_uint64(sr.blocks[0].ssrc, 0xaabbccdd);
  fail_unless_equals_int(sr.blocks[0].fraction_lost, 25);
  fail_unless_equals_int(sr.blocks[0].cumulative_lost, 7);
  fail_unless_equals_int(sr.blocks[0].highest_seq, 0x10002);
  fail_unless_equals_int(sr.blocks[0].jitter, 33);
  fail_unless_equals_uint64(sr.blocks[0].last_sr, 0x55667788);
  fail_unless_equals_int(sr.blocks[0].delay_since_sr, 0x10000);
  fail_unless_equals_int(sr.blocks[1].cumulative_lost, -3);  // 24-bit signed
  fail_unless_equals_int(c.skipped, 1);                      // the SDES
  fail_unless_equals_int(c.byes.size(), 1);
  fail_unless(c.byes[0].ssrcs == std::vector<uint32_t>({0x11223344, 0x99}));
}
GST_END_TEST;

GST_START_TEST(test_reads_gstreamer_feedback) {
  GstBuffer *buf = gst_rtcp_buffer_new(1400);
  GstRTCPBuffer rtcp = GST_RTCP_BUFFER_INIT;
  GstRTCPPacket p;
  gst_rtcp_buffer_map(buf, GST_MAP_READWRITE, &rtcp);
  fail_unless(gst_rtcp_buffer_add_packet(&rtcp, GST_RTCP_TYPE_RR, &p));
  gst_rtcp_packet_rr_set_ssrc(&p, 0x5555);
  gst_rtcp_packet_add_rb(&p, 0x1234, 3, 100, 65600, 12, 0, 0);
  // Generic NACK as rtpsession writes it: PID 100, BLP bits 0 and 15 -> 101 and 116.
  fail_unless(gst_rtcp_buffer_add_packet(&rtcp, GST_RTCP_TYPE_RTPFB, &p));
  gst_rtcp_packet_fb_set_type(&p, GST_RTCP_RTPFB_TYPE_NACK);
  gst_rtcp_packet_fb_set_sender_ssrc(&p, 0x5555);
  gst_rtcp_packet_fb_set_media_ssrc(&p, 0x1234);
  gst_rtcp_packet_fb_set_fci_length(&p, 2);
  guint8 *fci = gst_rtcp_packet_fb_get_fci(&p);
  GST_WRITE_UINT16_BE(fci, 100);
  GST_WRITE_UINT16_BE(fci + 2, 0x8001);
  GST_WRITE_UINT16_BE(fci + 4, 65535);
  GST_WRITE_UINT16_BE(fci + 6, 0x0001);  // wraps: 65535, 0
  fail_unless(gst_rtcp_buffer_add_packet(&rtcp, GST_RTCP_TYPE_PSFB, &p));
  gst_rtcp_packet_fb_set_type(&p, GST_RTCP_PSFB_TYPE_PLI);
  gst_rtcp_packet_fb_set_sender_ssrc(&p, 0x5555);
  gst_rtcp_packet_fb_set_media_ssrc(&p, 0x1234);
  fail_unless(gst_rtcp_buffer_add_packet(&rtcp, GST_RTCP_TYPE_PSFB, &p));
  gst_rtcp_packet_fb_set_type(&p, GST_RTCP_PSFB_TYPE_FIR);
  gst_rtcp_packet_fb_set_sender_ssrc(&p, 0x5555);
  gst_rtcp_packet_fb_set_media_ssrc(&p, 0);
  gst_rtcp_packet_fb_set_fci_length(&p, 2);
  fci = gst_rtcp_packet_fb_get_fci(&p);
  GST_WRITE_UINT32_BE(fci, 0x1234);
  GST_WRITE_UINT32_BE(fci + 4, 0x07000000);  // seq nr 7
  gst_rtcp_buffer_unmap(&rtcp);
  std::vector<uint8_t> b = bytes_of(buf);
  gst_buffer_unref(buf);

  rtcp::Compound c = parse_ok(b);
  fail_unless_equals_int(c.receiver_reports.size(), 1);
  fail_unless_equals_int(c.receiver_reports[0].ssrc, 0x5555);
  fail_unless_equals_int(c.receiver_reports[0].blocks.size(), 1);
  fail_unless_equals_int(c.receiver_reports[0].blocks[0].cumulative_lost, 100);
  fail_unless_equals_int(c.receiver_reports[0].blocks[0].highest_seq, 65600);
  fail_unless_equals_int(c.nacks.size(), 1);
  fail_unless_equals_int(c.nacks[0].media_ssrc, 0x1234);
  fail_unless(c.nacks[0].seqs == std::vector<uint16_t>({100, 101, 116, 65535, 0}));
  fail_unless_equals_int(c.plis.size(), 1);
  fail_unless_equals_int(c.plis[0].media_ssrc, 0x1234);
  fail_unless_equals_int(c.firs.size(), 1);
  fail_unless_equals_int(c.firs[0].entries.size(), 1);
  fail_unless_equals_int(c.firs[0].entries[0].ssrc, 0x1234);
  fail_unless_equals_int(c.firs[0].entries[0].seq, 7);
}
GST_END_TEST;

GST_START_TEST(test_gstreamer_reads_ours) {
  rtcp::SenderReport sr;
  sr.ssrc = 0xdeadbeef;
  sr.ntp_time = rtcp::ntp_from_unix_us(1700000000500000);
  sr.rtp_time = 123456;
  sr.packet_count = 10;
  sr.octet_count = 12000;
  std::vector<uint8_t> b = rtcp::build_sender_compound(sr, "wish-cname");
  rtcp::append_nack({0xdeadbeef, 0x42, {10, 11, 13, 30}}, &b);
  rtcp::append_pli({0xdeadbeef, 0x42}, &b);
  rtcp::append_fir({0xdeadbeef, {{0x42, 3}}}, &b);
  rtcp::ReceiverReport rr{0xdeadbeef, {{0x42, 12, -5, 70000, 4, 0x01020304, 655}}};
  rtcp::append_receiver_report(rr, &b);
  rtcp::append_bye({{0xdeadbeef}}, &b);

  GstBuffer *buf = gst_buffer_new_memdup(b.data(), b.size());
  fail_unless(gst_rtcp_buffer_validate(buf));
  GstRTCPBuffer rtcp = GST_RTCP_BUFFER_INIT;
  GstRTCPPacket p;
  gst_rtcp_buffer_map(buf, GST_MAP_READ, &rtcp);
  fail_unless(gst_rtcp_buffer_get_first_packet(&rtcp, &p));
  fail_unless_equals_int(gst_rtcp_packet_get_type(&p), GST_RTCP_TYPE_SR);
  guint32 ssrc, rtptime, packets, octets;
  guint64 ntp;
  gst_rtcp_packet_sr_get_sender_info(&p, &ssrc, &ntp, &rtptime, &packets, &octets);
  fail_unless_equals_uint64(ssrc, 0xdeadbeef);
  fail_unless_equals_uint64(ntp, sr.ntp_time);
  fail_unless_equals_uint64(ntp >> 32, 1700000000ull + 2208988800ull);
  fail_unless((ntp & 0xffffffff) / 4294967296.0 > 0.4999 && (ntp & 0xffffffff) / 4294967296.0 < 0.5001);
  fail_unless_equals_int(rtptime, 123456);
  fail_unless_equals_int(octets, 12000);

  fail_unless(gst_rtcp_packet_move_to_next(&p));
  fail_unless_equals_int(gst_rtcp_packet_get_type(&p), GST_RTCP_TYPE_SDES);
  fail_unless(gst_rtcp_packet_sdes_first_entry(&p));
  GstRTCPSDESType type;
  guint8 len;
  guint8 *data;
  gst_rtcp_packet_sdes_get_entry(&p, &type, &len, &data);
  fail_unless_equals_int(type, GST_RTCP_SDES_CNAME);
  fail_unless(len == 10 && memcmp(data, "wish-cname", 10) == 0);

  fail_unless(gst_rtcp_packet_move_to_next(&p));
  fail_unless_equals_int(gst_rtcp_packet_get_type(&p), GST_RTCP_TYPE_RTPFB);
  fail_unless_equals_int(gst_rtcp_packet_fb_get_type(&p), GST_RTCP_RTPFB_TYPE_NACK);
  fail_unless_equals_int(gst_rtcp_packet_fb_get_media_ssrc(&p), 0x42);
  fail_unless_equals_int(gst_rtcp_packet_fb_get_fci_length(&p), 2);  // 10 (+11, 13) and 30
  guint8 *fci = gst_rtcp_packet_fb_get_fci(&p);
  fail_unless_equals_int(GST_READ_UINT16_BE(fci), 10);
  fail_unless_equals_int(GST_READ_UINT16_BE(fci + 2), 0x0005);
  fail_unless_equals_int(GST_READ_UINT16_BE(fci + 4), 30);

  fail_unless(gst_rtcp_packet_move_to_next(&p));
  fail_unless_equals_int(gst_rtcp_packet_fb_get_type(&p), GST_RTCP_PSFB_TYPE_PLI);
  fail_unless(gst_rtcp_packet_move_to_next(&p));
  fail_unless_equals_int(gst_rtcp_packet_fb_get_type(&p), GST_RTCP_PSFB_TYPE_FIR);
  fail_unless_equals_int(GST_READ_UINT32_BE(gst_rtcp_packet_fb_get_fci(&p)), 0x42);

  fail_unless(gst_rtcp_packet_move_to_next(&p));
  fail_unless_equals_int(gst_rtcp_packet_get_type(&p), GST_RTCP_TYPE_RR);
  guint32 bssrc, exthighest, jitter, lsr, dlsr;
  guint8 fraction;
  gint32 lost;
  gst_rtcp_packet_get_rb(&p, 0, &bssrc, &fraction, &lost, &exthighest, &jitter, &lsr, &dlsr);
  fail_unless(bssrc == 0x42 && fraction == 12 && lost == -5 && exthighest == 70000 && lsr == 0x01020304 && dlsr == 655);

  fail_unless(gst_rtcp_packet_move_to_next(&p));
  fail_unless_equals_int(gst_rtcp_packet_get_type(&p), GST_RTCP_TYPE_BYE);
  fail_if(gst_rtcp_packet_move_to_next(&p));
  gst_rtcp_buffer_unmap(&rtcp);
  gst_buffer_unref(buf);

  // And we read back what we wrote.
  rtcp::Compound c = parse_ok(b);
  fail_unless(c.nacks.size() == 1 && c.nacks[0].seqs == std::vector<uint16_t>({10, 11, 13, 30}));
  fail_unless(c.receiver_reports.size() == 1 && c.receiver_reports[0].blocks[0].cumulative_lost == -5);
}
GST_END_TEST;

GST_START_TEST(test_nack_wraps) {
  std::vector<uint16_t> seqs = {65530, 65535, 0, 9, 10, 200};
  std::vector<uint8_t> b;
  rtcp::append_nack({1, 2, seqs}, &b);
  // 65530 covers up to 10 (16 after it, across the wrap); 200 its own entry.
  fail_unless_equals_int(b.size(), 12 + 2 * 4);
  rtcp::Compound c = parse_ok(b);
  fail_unless(c.nacks[0].seqs == seqs);
}
GST_END_TEST;

GST_START_TEST(test_remb) {
  // The REMB layout of draft-alvestrand-rmcat-remb 2.2: exponent 1, mantissa 0x3fb93, 3 SSRCs.
  const std::vector<uint8_t> packet = {0x8f, 206,  0x00, 0x07, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00,
                                       0x00, 'R',  'E',  'M',  'B',  0x03, 0x07, 0xfb, 0x93, 0x23, 0x45,
                                       0x67, 0x89, 0x23, 0x45, 0x67, 0x8a, 0x23, 0x45, 0x67, 0x8b};
  rtcp::Compound c = parse_ok(packet);
  fail_unless_equals_int(c.rembs.size(), 1);
  fail_unless_equals_int(c.rembs[0].sender_ssrc, 0x12345678);
  fail_unless_equals_uint64(c.rembs[0].bitrate, 0x3fb93 * 2);
  fail_unless(c.rembs[0].ssrcs == std::vector<uint32_t>({0x23456789, 0x2345678a, 0x2345678b}));
  std::vector<uint8_t> ours;
  rtcp::append_remb(c.rembs[0], &ours);
  fail_unless(ours == packet);
  // A large rate loses only what the 18-bit mantissa cannot hold.
  ours.clear();
  rtcp::append_remb({1, 2500000000ull, {5}}, &ours);
  uint64_t back = parse_ok(ours).rembs[0].bitrate;
  fail_unless(back <= 2500000000ull && back > 2500000000ull - 2500000000ull / (1 << 17));
  // Exponent 63 with a mantissa that overflows 64 bits.
  std::vector<uint8_t> bad = packet;
  bad[17] = 0xff;
  fail_if(parses(bad));
}
GST_END_TEST;

GST_START_TEST(test_skips_what_a_sender_does_not_read) {
  std::vector<uint8_t> b;
  rtcp::append_receiver_report({7, {}}, &b);
  // transport-cc (RTPFB FMT 15) with some feedback bytes, an APP packet, an XR.
  const std::vector<uint8_t> tcc = {0x8f, 205, 0x00, 0x04, 0, 0, 0, 7, 0, 0, 0, 9, 0x00, 0x01, 0x00, 0x02, 0x12, 0x34, 0x56, 0x01};
  const std::vector<uint8_t> app = {0x80, 204, 0x00, 0x02, 0, 0, 0, 7, 'a', 'b', 'c', 'd'};
  const std::vector<uint8_t> xr = {0x80, 207, 0x00, 0x01, 0, 0, 0, 7};
  b.insert(b.end(), tcc.begin(), tcc.end());
  b.insert(b.end(), app.begin(), app.end());
  b.insert(b.end(), xr.begin(), xr.end());
  rtcp::Compound c = parse_ok(b);
  fail_unless_equals_int(c.transport_cc, 1);
  fail_unless_equals_int(c.skipped, 2);
  fail_unless_equals_int(c.receiver_reports.size(), 1);
  // Reduced-size RTCP (RFC 5506): a PLI alone.
  std::vector<uint8_t> pli;
  rtcp::append_pli({1, 2}, &pli);
  fail_unless_equals_int(parse_ok(pli).plis.size(), 1);
}
GST_END_TEST;

GST_START_TEST(test_rejects_malformed) {
  std::vector<uint8_t> good;
  rtcp::append_receiver_report({7, {{1, 2, 3, 4, 5, 6, 7}}}, &good);
  rtcp::append_nack({7, 1, {5, 6}}, &good);
  fail_unless(parses(good));
  // Every cut that is not at a packet's end.
  for (size_t n = 0; n < good.size(); n++) {
    if (n == 32) continue;  // the RR alone
    fail_if(parses(std::vector<uint8_t>(good.begin(), good.begin() + n)), "a cut at %zu parsed", n);
  }
  auto with = [&](size_t at, uint8_t v) {
    std::vector<uint8_t> b = good;
    b[at] = v;
    return b;
  };
  fail_if(parses(with(0, 0x41)));      // version 1
  fail_if(parses(with(1, 72)));        // not an RTCP packet type
  fail_if(parses(with(3, 20)));        // length past the end
  fail_if(parses(with(0, 0x82)));      // RR count 2 in a packet that holds one block
  fail_if(parses(with(0, 0xa1)));      // padding in the first packet of two
  fail_if(parses(with(35, 2)));        // a NACK whose length leaves out its FCI
  std::vector<uint8_t> trailing = good;
  trailing.insert(trailing.end(), {0x80, 201});
  fail_if(parses(trailing));
  // Padding in the last packet: its count must be within the packet.
  std::vector<uint8_t> padded;
  rtcp::append_pli({1, 2}, &padded);
  padded[0] |= 0x20;
  padded[3] = 3;
  padded.insert(padded.end(), {0, 0, 0, 4});
  fail_unless_equals_int(parse_ok(padded).plis.size(), 1);
  padded.back() = 0;
  fail_if(parses(padded));
  padded.back() = 13;
  fail_if(parses(padded));
  // FIR with half an entry; REMB with more SSRCs than bytes.
  std::vector<uint8_t> fir;
  rtcp::append_fir({1, {{2, 3}}}, &fir);
  fir[3] = 3;
  fir.resize(16);
  fail_if(parses(fir));
  std::vector<uint8_t> remb;
  rtcp::append_remb({1, 1000, {2}}, &remb);
  remb[16] = 2;
  fail_if(parses(remb));
}
GST_END_TEST;

GST_START_TEST(test_rtp_header_helpers) {
  // Two CSRCs, a one-byte header extension, 4 bytes of padding: GstRTPBuffer's view is the
  // reference for where the payload is.
  GstBuffer *buf = gst_rtp_buffer_new_allocate(10, 4, 2);
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  gst_rtp_buffer_map(buf, GST_MAP_READWRITE, &rtp);
  gst_rtp_buffer_set_payload_type(&rtp, 96);
  gst_rtp_buffer_set_seq(&rtp, 65000);
  gst_rtp_buffer_set_timestamp(&rtp, 3000000000u);
  gst_rtp_buffer_set_ssrc(&rtp, 0xcafe);
  gst_rtp_buffer_set_marker(&rtp, TRUE);
  gst_rtp_buffer_set_csrc(&rtp, 0, 1);
  gst_rtp_buffer_set_csrc(&rtp, 1, 2);
  const guint8 ext[3] = {1, 2, 3};
  fail_unless(gst_rtp_buffer_add_extension_onebyte_header(&rtp, 3, ext, 3));
  guint8 *payload = static_cast<guint8 *>(gst_rtp_buffer_get_payload(&rtp));
  for (int i = 0; i < 10; i++) payload[i] = static_cast<guint8>(i + 1);
  gst_rtp_buffer_unmap(&rtp);
  std::vector<uint8_t> b = bytes_of(buf);
  gst_buffer_unref(buf);

  gst_rtp_buffer_map(buf = gst_buffer_new_memdup(b.data(), b.size()), GST_MAP_READ, &rtp);
  size_t header = gst_rtp_buffer_get_header_len(&rtp);
  gst_rtp_buffer_unmap(&rtp);
  gst_buffer_unref(buf);
  fail_unless_equals_int(rtp::header_length(b.data(), b.size()), header);
  size_t n = 0;
  fail_unless(rtp::payload_length(b.data(), b.size(), &n));
  fail_unless_equals_int(n, 10);
  fail_unless(rtp::marker(b.data()));
  fail_unless_equals_int(rtp::payload_type(b.data()), 96);

  rtp::set_payload_type(b.data(), 102);
  rtp::set_seq(b.data(), 7);
  rtp::set_timestamp(b.data(), 0x01020304);
  rtp::set_ssrc(b.data(), 0x99887766);
  buf = gst_buffer_new_memdup(b.data(), b.size());
  gst_rtp_buffer_map(buf, GST_MAP_READ, &rtp);
  fail_unless_equals_int(gst_rtp_buffer_get_payload_type(&rtp), 102);
  fail_unless(gst_rtp_buffer_get_marker(&rtp));
  fail_unless_equals_int(gst_rtp_buffer_get_seq(&rtp), 7);
  fail_unless_equals_int(gst_rtp_buffer_get_timestamp(&rtp), 0x01020304);
  fail_unless_equals_uint64(gst_rtp_buffer_get_ssrc(&rtp), 0x99887766);
  fail_unless_equals_int(gst_rtp_buffer_get_csrc(&rtp, 1), 2);
  gst_rtp_buffer_unmap(&rtp);
  gst_buffer_unref(buf);

  // RTX (RFC 4588): same CSRCs and extension, OSN then the payload, no padding.
  std::vector<uint8_t> rtx = rtp::build_rtx(b.data(), b.size(), 97, 0x1111, 500);
  buf = gst_buffer_new_memdup(rtx.data(), rtx.size());
  fail_unless(gst_rtp_buffer_map(buf, GST_MAP_READ, &rtp));
  fail_unless_equals_int(gst_rtp_buffer_get_payload_type(&rtp), 97);
  fail_unless_equals_int(gst_rtp_buffer_get_ssrc(&rtp), 0x1111);
  fail_unless_equals_int(gst_rtp_buffer_get_seq(&rtp), 500);
  fail_unless_equals_int(gst_rtp_buffer_get_timestamp(&rtp), 0x01020304);
  fail_if(gst_rtp_buffer_get_padding(&rtp));
  fail_unless_equals_int(gst_rtp_buffer_get_csrc_count(&rtp), 2);
  gpointer ext_data;
  guint ext_size;
  fail_unless(gst_rtp_buffer_get_extension_onebyte_header(&rtp, 3, 0, &ext_data, &ext_size));
  fail_unless_equals_int(gst_rtp_buffer_get_payload_len(&rtp), 12);
  const guint8 *rp = static_cast<const guint8 *>(gst_rtp_buffer_get_payload(&rtp));
  fail_unless_equals_int(GST_READ_UINT16_BE(rp), 7);
  for (int i = 0; i < 10; i++) fail_unless_equals_int(rp[2 + i], i + 1);
  gst_rtp_buffer_unmap(&rtp);
  gst_buffer_unref(buf);

  // Malformed: too short, version 0, extension past the end, padding larger than the payload.
  fail_unless_equals_int(rtp::header_length(b.data(), 11), 0);
  std::vector<uint8_t> bad = b;
  bad[0] &= 0x3f;
  fail_unless_equals_int(rtp::header_length(bad.data(), bad.size()), 0);
  fail_unless_equals_int(rtp::header_length(b.data(), header - 1), 0);
  bad = b;
  bad.back() = 15;
  fail_if(rtp::payload_length(bad.data(), bad.size(), &n));
  fail_unless(rtp::build_rtx(bad.data(), bad.size(), 97, 1, 1).empty());

  // Demultiplexing on one port (RFC 5761): RTP with PT 96 and the marker is not RTCP.
  fail_if(rtcp::is_rtcp(b.data(), b.size()));
  std::vector<uint8_t> sr = rtcp::build_sender_compound({}, "x");
  fail_unless(rtcp::is_rtcp(sr.data(), sr.size()));
}
GST_END_TEST;

static Suite *rtcp_suite(void) {
  Suite *s = suite_create("rtcp");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_reads_gstreamer_reports);
  tcase_add_test(tc, test_reads_gstreamer_feedback);
  tcase_add_test(tc, test_gstreamer_reads_ours);
  tcase_add_test(tc, test_nack_wraps);
  tcase_add_test(tc, test_remb);
  tcase_add_test(tc, test_skips_what_a_sender_does_not_read);
  tcase_add_test(tc, test_rejects_malformed);
  tcase_add_test(tc, test_rtp_header_helpers);
  return s;
}

GST_CHECK_MAIN(rtcp);
