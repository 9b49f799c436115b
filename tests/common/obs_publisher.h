// A WHIP simulcast publisher shaped as OBS Studio (31+) publishes through libdatachannel, not
// as a browser does: one non-trickle offer without candidates (it gathers only once answered,
// so the server learns its address from its connectivity checks), audio first (mid 0, Opus
// pt 111, a=ssrc lines), then video (mid 1, H.264 pt 96 packetization-mode=1 profile 42e01f,
// nack/pli/fir/goog-remb, no RTX), sendonly, a=rid:<n> send for the encoders 0, 1, 2...
// (0 the output size, each next one a step smaller: OBS's WHIPSimulcastEncoders), a=simulcast:
// send 0;1;2 and no a=ssrc lines for the video (libdatachannel leaves them out with rids).
// Every video packet carries the MID (id 1) and RID (id 2) header extensions; each encoding
// has its SSRC (base + 1 + index) and sequence numbers.
//
// Built from webrtcbin in the test process: one x264enc per layer, each payloader writing the
// two header extensions, an rtpfunnel into one sendonly transceiver, and the offer written in
// that shape from webrtcbin's credentials (the answer's mids are mapped back for webrtcbin).
#pragma once

#include <gst/gst.h>

#include <map>
#include <string>
#include <vector>

namespace wish_test {

struct ObsPublisherOptions {
  int width = 640, height = 360;  // the output size: rid 0
  int layers = 3;
  int kbps = 1500;  // rid 0's; OBS gives each next layer one step (kbps / layers) less
  std::vector<std::string> rids;  // default "0", "1", ...
  std::string pattern = "ball";
};

class ObsPublisher {
public:
  explicit ObsPublisher(const ObsPublisherOptions &opts = {});
  ~ObsPublisher();
  std::string create_offer();
  bool set_remote_answer(const std::string &sdp);
  // The layers, in offer order: rid, size and SSRC.
  struct Layer {
    std::string rid;
    int width, height, kbps;
    guint32 ssrc;
  };
  const std::vector<Layer> &layers() const { return layers_; }

private:
  ObsPublisherOptions opts_;
  std::vector<Layer> layers_;
  guint32 audio_ssrc_ = 0;
  GstElement *pipeline_ = nullptr;
  GstElement *webrtc_ = nullptr;
  std::map<std::string, std::string> mids_;  // the offer's mid -> webrtcbin's
};

}  // namespace wish_test
