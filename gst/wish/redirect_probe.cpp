#include "redirect_probe.h"

#include <gst/gst.h>

#include "http_request.h"

GST_DEBUG_CATEGORY_EXTERN(wish_server_debug);
#define GST_CAT_DEFAULT wish_server_debug

namespace wish {

RedirectProbe::RedirectProbe(std::vector<std::string> metrics_urls, std::string token,
                             std::shared_ptr<RedirectLoads> loads, guint interval_ms)
    : urls_(std::move(metrics_urls)), token_(std::move(token)), loads_(std::move(loads)),
      loop_(std::make_unique<LoopThread>("wish-redirect-probe")) {
  loop_->invoke_sync([this, interval_ms] {
    soup_ = soup_session_new_with_options("timeout", 2, "idle-timeout", 30, "user-agent", "wish ", nullptr);
    cancellable_ = g_cancellable_new();
    poll();
    interval_ = loop_->add_interval(interval_ms, [this] { poll(); });
  });
}

RedirectProbe::~RedirectProbe() {
  loop_->invoke_sync([this] {
    loop_->cancel(interval_);
    g_cancellable_cancel(cancellable_);
    g_clear_object(&cancellable_);
    g_clear_object(&soup_);
  });
  loop_.reset();
}

void RedirectProbe::poll() {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!token_.empty()) headers.emplace_back("Authorization", "Bearer " + token_);
  for (size_t i = 0; i < urls_.size(); i++) {
    if (urls_[i].empty()) continue;
    // The callbacks run on this loop, and never once the probe is destroyed (cancelled).
    send_request(soup_, cancellable_, "GET", urls_[i], headers, "", "",
                 [this, i](Response resp, std::string transport_error) {
                   std::optional<double> viewers;
                   if (resp.status == 200) viewers = prometheus_sum(resp.body, "wish_viewers");
                   if (!viewers)
                     GST_DEBUG("no load from %s: %s", urls_[i].c_str(),
                               !transport_error.empty() ? transport_error.c_str()
                               : resp.status == 200    ? "not Prometheus text"
                                                       : reason_phrase(resp.status));
                   else
                     GST_LOG("%s serves %.0f viewers", urls_[i].c_str(), *viewers);
                   loads_->report(i, viewers);
                 },
                 RequestLimits{2000, 1000, false});
  }
}

}  // namespace wish
