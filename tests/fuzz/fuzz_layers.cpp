// The video layer extension's inputs: layer requests a server reads from players, and the
// ladder a property gives. Whatever is accepted must name a layer or be refused with a reason.
#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol/layers.h"

using namespace wish;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  std::vector<VideoLayer> ladder = {{"h", 1280, 720, 2500}, {"m", 640, 360, 800}, {"l", 320, 180, 300}};
  LayerRequest request;
  std::string error;
  if (parse_layer_request(text, &request, &error)) {
    if (!request.automatic()) {
      int layer = choose_layer(ladder, request, &error);
      if (layer >= static_cast<int>(ladder.size()) || (layer < 0 && error.empty())) __builtin_trap();
    }
    LayerRequest again;
    if (!request.rid.empty() && (!parse_layer_request(layer_request_body(request.media_id, request.rid), &again, &error) ||
                                 again.rid != request.rid))
      __builtin_trap();
  } else if (error.empty()) {
    __builtin_trap();
  }
  std::vector<VideoLayer> parsed;
  if (parse_video_layers(text, &parsed, &error)) layers_event_data(0, parsed);
  return 0;
}
