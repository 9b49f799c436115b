// The WHEP video layer extension (urn:ietf:params:whep:ext:core:layer): the layers a viewer may
// choose from, what a player asks for, and which layer that is. Plain C++ (json-glib).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace wish {

inline constexpr char kLayerRel[] = "urn:ietf:params:whep:ext:core:layer";

struct VideoLayer {
  std::string rid;
  int width = 0, height = 0;  // 0: not known yet
  unsigned kbps = 0;          // target bitrate
  uint64_t bitrate = 0;       // bit/s as measured (simulcast encodings as received), 0: not measured
};

// A ladder as the video-layers property gives it: "m:640x360:800,l:320x180:300" (rid, size,
// kbit/s), largest first. False with a reason for anything else (rids must be distinct tokens
// of letters and digits, sizes even and at least 16x16, bitrates 1..100000).
bool parse_video_layers(const std::string &spec, std::vector<VideoLayer> *layers, std::string *error);

// A player's layer request. Every field is optional; rid also arrives as encodingId (older
// texts). A request with nothing but mediaId hands the choice back to the server.
struct LayerRequest {
  std::string media_id;  // "" when absent
  std::string rid;
  int spatial = -1, temporal = -1, max_spatial = -1, max_temporal = -1, max_width = -1, max_height = -1;
  bool automatic() const;
};
// False with a reason (the answer is a 400) for a body that is not such a JSON object.
bool parse_layer_request(const std::string &body, LayerRequest *request, std::string *error);
// The body a player sends for a rid ("" hands the choice back).
std::string layer_request_body(const std::string &media_id, const std::string &rid);

// The layer `request` names among `layers` (largest first; spatialLayerId counts from the
// smallest), -1 with a reason when none fits (the answer is a 422). Not for automatic requests.
int choose_layer(const std::vector<VideoLayer> &layers, const LayerRequest &request, std::string *why);

// The data of the layers server-sent event: {"<mline>":[{"rid":..,"spatialLayerId":..,
// "temporalLayerId":0,"bitrate":..,"targetBitrate":..,"width":..,"height":..}, ...]}; bitrate
// is the measured one, or the target while there is none.
std::string layers_event_data(int mline, const std::vector<VideoLayer> &layers);

}  // namespace wish
