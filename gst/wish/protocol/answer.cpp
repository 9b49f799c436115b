#include "answer.h"

#include <cstdlib>
#include <random>

namespace wish {

namespace {

// The rtx payload type the offer pairs with pt (a=fmtp:<rtx> apt=<pt>), -1 when none.
int rtx_for(const MediaSection &m, int pt) {
  for (int f : m.formats) {
    auto it = m.rtpmap.find(f);
    if (it == m.rtpmap.end() || it->second.encoding != "RTX") continue;
    std::string apt = fmtp_param(it->second.fmtp, "apt");
    if (!apt.empty() && std::atoi(apt.c_str()) == pt) return f;
  }
  return -1;
}

std::string rtpmap_line(int pt, const RtpMap &r) {
  // Names as RFC 7587 and the registry spell them; the parser upper-cased them.
  std::string name = r.encoding == "OPUS" ? "opus" : r.encoding == "RTX" ? "rtx" : r.encoding;
  std::string line = "a=rtpmap:" + std::to_string(pt) + " " + name + "/" + std::to_string(r.clock_rate);
  if (r.channels > 1) line += "/" + std::to_string(r.channels);
  return line + "\r\n";
}

}  // namespace

namespace {

std::optional<std::vector<AnsweredMedia>> match(const SessionDescription &offer, const std::vector<AnswerTrack> &tracks,
                                                std::string *error) {
  std::vector<AnsweredMedia> out;
  std::vector<bool> used(tracks.size(), false);
  bool any = false;
  for (const MediaSection &m : offer.media) {
    AnsweredMedia a;
    a.mid = m.mid;
    a.video = m.kind == "video";
    bool wants = m.direction == Direction::RecvOnly || m.direction == Direction::SendRecv;
    if (!m.rejected() && wants && (m.kind == "audio" || m.kind == "video")) {
      for (size_t i = 0; i < tracks.size() && a.track < 0; i++) {
        if (used[i]) continue;
        if (std::optional<int> pt = match_codec(m, tracks[i].codec)) {
          a.track = static_cast<int>(i);
          a.payload_type = *pt;
          if (tracks[i].rtx_ssrc) a.rtx_payload_type = rtx_for(m, *pt);
          used[i] = true;
          any = true;
        }
      }
    }
    out.push_back(a);
  }
  if (!any) {
    if (error) *error = "no offered m-line can carry any of our tracks";
    return std::nullopt;
  }
  return out;
}

}  // namespace

std::optional<std::vector<AnsweredMedia>> match_offer(std::string_view offer_text, const std::vector<AnswerTrack> &tracks,
                                                      std::string *error) {
  std::string why;
  std::optional<SessionDescription> offer = parse_sdp(offer_text, &why);
  if (!offer) {
    if (error) *error = "offer: " + why;
    return std::nullopt;
  }
  return match(*offer, tracks, error);
}

std::optional<Answer> write_answer(std::string_view offer_text, const std::vector<AnswerTrack> &tracks,
                                   const AnswerTransport &transport, std::string *error) {
  std::string why;
  std::optional<SessionDescription> offer = parse_sdp(offer_text, &why);
  if (!offer) {
    if (error) *error = "offer: " + why;
    return std::nullopt;
  }
  std::optional<std::vector<AnsweredMedia>> media = match(*offer, tracks, error);
  if (!media) return std::nullopt;
  Answer answer;
  answer.media = std::move(*media);

  std::string s = "v=0\r\no=- " + std::to_string(std::random_device{}() & 0x7fffffff) + " 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";
  std::string bundle;
  for (const AnsweredMedia &a : answer.media)
    if (a.track >= 0 && !a.mid.empty()) bundle += " " + a.mid;
  if (!bundle.empty()) s += "a=group:BUNDLE" + bundle + "\r\n";
  s += "a=msid-semantic: WMS\r\n";
  for (size_t k = 0; k < offer->media.size(); k++) {
    const MediaSection &m = offer->media[k];
    const AnsweredMedia &a = answer.media[k];
    if (a.track < 0) {
      // Rejected: the offer's first format keeps the m-line well-formed. The ICE credentials
      // and fingerprint too: webrtcbin (1.22) rejects an answer with any m-line without them.
      std::string fmt = m.formats.empty() ? "0" : std::to_string(m.formats.front());
      s += "m=" + m.kind + " 0 " + m.proto + " " + fmt + "\r\nc=IN IP4 0.0.0.0\r\n";
      s += "a=ice-ufrag:" + transport.ice_ufrag + "\r\na=ice-pwd:" + transport.ice_pwd + "\r\n";
      s += "a=fingerprint:sha-256 " + transport.fingerprint + "\r\na=setup:passive\r\n";
      if (!m.mid.empty()) s += "a=mid:" + m.mid + "\r\n";
      s += "a=inactive\r\n";
      continue;
    }
    const AnswerTrack &t = tracks[a.track];
    std::string pt = std::to_string(a.payload_type), rtx = std::to_string(a.rtx_payload_type);
    s += "m=" + m.kind + " 9 UDP/TLS/RTP/SAVPF " + pt + (a.rtx_payload_type >= 0 ? " " + rtx : "") + "\r\n";
    s += "c=IN IP4 0.0.0.0\r\n";
    s += "a=ice-ufrag:" + transport.ice_ufrag + "\r\na=ice-pwd:" + transport.ice_pwd + "\r\n";
    s += "a=ice-options:trickle\r\n";
    s += "a=fingerprint:sha-256 " + transport.fingerprint + "\r\na=setup:passive\r\n";
    if (!m.mid.empty()) s += "a=mid:" + m.mid + "\r\n";
    s += "a=sendonly\r\na=rtcp-mux\r\n";
    const RtpMap &r = m.rtpmap.at(a.payload_type);
    s += rtpmap_line(a.payload_type, r);
    if (!r.fmtp.empty()) s += "a=fmtp:" + pt + " " + r.fmtp + "\r\n";
    if (a.video && t.nack) s += "a=rtcp-fb:" + pt + " nack\r\n";
    if (a.video) s += "a=rtcp-fb:" + pt + " nack pli\r\na=rtcp-fb:" + pt + " ccm fir\r\n";
    if (a.rtx_payload_type >= 0) {
      s += rtpmap_line(a.rtx_payload_type, m.rtpmap.at(a.rtx_payload_type));
      s += "a=fmtp:" + rtx + " apt=" + pt + "\r\n";
    }
    std::string track_id = t.msid_track.empty() ? m.kind + std::to_string(a.track) : t.msid_track;
    s += "a=msid:" + t.msid_stream + " " + track_id + "\r\n";
    if (a.rtx_payload_type >= 0)
      s += "a=ssrc-group:FID " + std::to_string(t.ssrc) + " " + std::to_string(t.rtx_ssrc) + "\r\n";
    s += "a=ssrc:" + std::to_string(t.ssrc) + " cname:" + transport.cname + "\r\n";
    if (a.rtx_payload_type >= 0) s += "a=ssrc:" + std::to_string(t.rtx_ssrc) + " cname:" + transport.cname + "\r\n";
    for (const std::string &c : transport.candidates) s += "a=" + c + "\r\n";
    if (transport.end_of_candidates) s += "a=end-of-candidates\r\n";
  }
  answer.sdp = std::move(s);
  return answer;
}

}  // namespace wish
