// Polls the Prometheus metrics of the servers behind redirect-endpoints, so a server at its
// limit sends new viewers to the least loaded of them (redirect-policy=least-loaded).
#pragma once

#include <libsoup/soup.h>

#include <memory>
#include <string>
#include <vector>

#include "loop_thread.h"
#include "protocol/redirect_loads.h"

namespace wish {

class RedirectProbe {
public:
  // metrics_urls[i] belongs to endpoint i of loads (empty: never polled, counted unknown).
  // Polls at once and then every interval_ms on a thread of its own, with the bearer token
  // when there is one; an answer that is not metrics, or none within 2 s, is "unknown".
  RedirectProbe(std::vector<std::string> metrics_urls, std::string token, std::shared_ptr<RedirectLoads> loads,
                guint interval_ms = 2000);
  // Polls under way are cancelled.
  ~RedirectProbe();
  RedirectProbe(const RedirectProbe &) = delete;
  RedirectProbe &operator=(const RedirectProbe &) = delete;

private:
  void poll();  // loop thread
  std::vector<std::string> urls_;
  std::string token_;
  std::shared_ptr<RedirectLoads> loads_;
  std::unique_ptr<LoopThread> loop_;
  SoupSession *soup_ = nullptr;          // loop_'s thread only
  GCancellable *cancellable_ = nullptr;  // cancelled on destruction
  guint interval_ = 0;
};

}  // namespace wish
