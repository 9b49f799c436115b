// RTCP compounds from viewers, and RTP headers: whatever parses is built again and must parse
// again to the same reports; the RTP helpers stay within the packet, and so do the readers of
// a simulcast publisher's RID and picture sizes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "protocol/rtcp.h"
#include "protocol/simulcast.h"

using namespace wish;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rtcp::Compound c;
  if (rtcp::parse_compound(data, size, &c)) {
    std::vector<uint8_t> again;
    for (const auto &sr : c.sender_reports) rtcp::append_sender_report(sr, &again);
    for (const auto &rr : c.receiver_reports) rtcp::append_receiver_report(rr, &again);
    for (const auto &bye : c.byes) rtcp::append_bye(bye, &again);
    for (const auto &nack : c.nacks) rtcp::append_nack(nack, &again);
    for (const auto &pli : c.plis) rtcp::append_pli(pli, &again);
    for (const auto &fir : c.firs) rtcp::append_fir(fir, &again);
    for (const auto &remb : c.rembs) rtcp::append_remb(remb, &again);
    rtcp::Compound d;
    if (!again.empty()) {
      if (!rtcp::parse_compound(again.data(), again.size(), &d)) __builtin_trap();  // what we write, we read
      if (d.sender_reports.size() != c.sender_reports.size() || d.nacks.size() != c.nacks.size() ||
          d.firs.size() != c.firs.size() || d.rembs.size() != c.rembs.size())
        __builtin_trap();
      for (size_t i = 0; i < c.rembs.size(); i++)
        if (d.rembs[i].bitrate != c.rembs[i].bitrate) __builtin_trap();
      for (size_t i = 0; i < c.receiver_reports.size(); i++)
        if (d.receiver_reports[i].blocks.size() != c.receiver_reports[i].blocks.size()) __builtin_trap();
    }
  }
  size_t header = rtp::header_length(data, size), payload = 0;
  if (header > size) __builtin_trap();
  if (header && rtp::payload_length(data, size, &payload)) {
    if (header + payload > size) __builtin_trap();
    std::vector<uint8_t> rtx = rtp::build_rtx(data, size, 97, 1, 2);
    if (rtx.size() != header + 2 + payload) __builtin_trap();
  }
  // What a simulcast publisher's packets tell: the encoding (RID extension) and picture size.
  for (int id : {1, 3, 10}) rtp_header_extension(data, size, id);
  for (const char *codec : {"VP8", "H264"}) {
    int width = 0, height = 0;
    if (rtp_picture_size(data, size, codec, &width, &height) && (width <= 0 || height <= 0)) __builtin_trap();
  }
  if (size > 0) {
    int width = 0, height = 0;
    if (h264_sps_picture_size(data, size, &width, &height) && (width <= 0 || height <= 0)) __builtin_trap();
  }
  return 0;
}
