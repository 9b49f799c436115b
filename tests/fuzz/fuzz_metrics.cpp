// Other servers' Prometheus text, read for least-loaded redirects: any answer a server (or
// whatever answers at its address) sends must give a figure or none, never a crash; and what
// our own writer produces must always read back.
#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol/metrics.h"
#include "protocol/redirect_loads.h"

using namespace wish;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  prometheus_sum(text, "wish_viewers");
  metrics_url_for(text, "/metrics");
  // The input as a label value of our own text: always the format.
  MetricsText m;
  m.gauge("wish_viewers", "viewers", {{"stream", text}}, 2);
  m.gauge("wish_viewers", "viewers", {{"stream", "x"}}, 1);
  auto sum = prometheus_sum(m.text(), "wish_viewers");
  if (!sum || *sum != 3) __builtin_trap();
  return 0;
}
