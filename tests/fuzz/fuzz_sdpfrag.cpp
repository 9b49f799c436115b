// Trickle ICE / ICE restart bodies of PATCH requests (RFC 8840), and the fragment we build
// back from what parsed (it must parse again).
#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol/sdpfrag.h"

using namespace wish;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  std::string error;
  if (auto frag = parse_sdpfrag(text, &error)) {
    frag->candidate_count();
    std::string again = build_sdpfrag(*frag);
    if (!parse_sdpfrag(again, &error)) __builtin_trap();  // what we write, we read
  }
  return 0;
}
