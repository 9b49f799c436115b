// Server-sent events, both sides fed from the network: the event stream a player reads (cut
// anywhere), the subscription bodies a server reads, and the event data a player looks into.
// Each event read must come back the same after being written and read again.
#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol/events.h"

using namespace wish;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  EventStreamParser whole, pieces;
  auto events = whole.feed(text);
  size_t cut = size ? data[0] % 7 + 1 : 1, n = 0;
  for (size_t i = 0; i < text.size(); i += cut) n += pieces.feed(text.substr(i, cut)).size();
  if (n != events.size()) __builtin_trap();  // chunking must not change what is read
  for (const auto &e : events) {
    reconnect_url(e.data);
    viewer_count(e.data);
    if (e.type.find_first_of("\r\n") != std::string::npos) __builtin_trap();
  }
  std::vector<std::string> names;
  std::string error;
  if (parse_event_subscription(text, server_event_names(), &names, &error)) {
    std::vector<std::string> again;
    if (!parse_event_subscription(event_subscription_body(names), server_event_names(), &again, &error) || again != names)
      __builtin_trap();
  }
  return 0;
}
