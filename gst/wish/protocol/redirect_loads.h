// Where a server at its limit sends new viewers (307): the other endpoints in turn, or the
// least loaded of them by what their Prometheus metrics last said.
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace wish {

// The sum of every sample of the metric family `name` in a Prometheus text exposition (0 when
// the family has no sample); nullopt when the text is not in that format.
std::optional<double> prometheus_sum(const std::string &text, const std::string &name);

// The URL of the metrics of the server an endpoint URL points at: its scheme and authority,
// then metrics_path. Empty when the endpoint is not an absolute http(s) URL.
std::string metrics_url_for(const std::string &endpoint, const std::string &metrics_path);

// The viewers each redirect endpoint serves as last reported, plus those sent there since.
// Thread-safe: reports come from a poller, choices from the HTTP server.
class RedirectLoads {
public:
  explicit RedirectLoads(size_t endpoints) : loads_(endpoints) {}
  // Endpoint i served `viewers` at the last poll, or did not answer (nullopt).
  void report(size_t i, std::optional<double> viewers);
  // The endpoint for the next redirected viewer: the least loaded of those that answered
  // (turn decides among equals, so equal servers fill in turn), or when none answered, the
  // endpoint whose turn it is. Counts the viewer against the chosen one until its next report.
  size_t choose(size_t turn);

private:
  struct Load {
    bool known = false;
    double viewers = 0;
    unsigned sent_since = 0;
  };
  std::mutex mutex_;  // guards loads_
  std::vector<Load> loads_;
};

}  // namespace wish
