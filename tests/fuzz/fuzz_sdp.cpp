// SDP offers and answers as an endpoint handles them: parse, pick a payload type for each
// codec we send, and the rewrites an answer or offer goes through before it goes out.
#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol/sdp.h"

using namespace wish;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  std::string error;
  if (auto sd = parse_sdp(text, &error)) {
    static const SendCodec codecs[] = {{"video", "H264", 90000, "42e01f"}, {"video", "H264", 90000, ""},
                                       {"video", "VP8", 90000, ""},        {"video", "VP9", 90000, ""},
                                       {"audio", "OPUS", 48000, ""}};
    for (const auto &m : sd->media) {
      for (const auto &c : codecs) match_codec(m, c);
      for (const auto &[pt, map] : m.rtpmap) {
        fmtp_param(map.fmtp, "profile-level-id");
        fmtp_param(map.fmtp, "packetization-mode");
      }
    }
  }
  // The rewrites see our own webrtcbin's SDP in practice, but must survive anything.
  std::string finished = finish_local_sdp(text, {"candidate:1 1 UDP 2130706431 192.0.2.1 40000 typ host"}, size % 2);
  parse_sdp(finished, &error);
  unbundle_only(text);
  set_directions(text, static_cast<Direction>(size % 4));
  return 0;
}
