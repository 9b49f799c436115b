#include "oma_host.h"

#include <gst/gst.h>

#include "http_request.h"

GST_DEBUG_CATEGORY_EXTERN(wish_oma_debug);
#define GST_CAT_DEFAULT wish_oma_debug

namespace wish {

OmaHost::OmaHost(std::shared_ptr<StreamRegistry> registry, guint notify_timeout_s)
    : registry_(registry), loop_(std::make_unique<LoopThread>("wish-oma-notify")) {
  loop_->invoke_sync([this, notify_timeout_s] {
    soup_ = soup_session_new_with_options("timeout", notify_timeout_s, "idle-timeout", 30, "user-agent", "wish ",
                                          nullptr);
    cancellable_ = g_cancellable_new();
  });
}

OmaHost::~OmaHost() {
  closed_ = true;
  loop_->invoke_sync([this] {
    g_cancellable_cancel(cancellable_);
    g_clear_object(&cancellable_);
    g_clear_object(&soup_);
  });
  loop_.reset();
}

std::vector<OmaEndpoint> OmaHost::endpoints() {
  std::vector<OmaEndpoint> out;
  auto registry = registry_.lock();
  if (!registry) return out;
  for (const auto &e : registry->endpoints()) {
    auto ep = e.endpoint.lock();
    if (!ep) continue;
    out.push_back({e.path, e.whep, ep->config().named_streams, ep});
  }
  return out;
}

void OmaHost::notify(const std::string &url, const std::string &content_type, const std::string &body,
                     std::function<void(bool)> done) {
  if (closed_) return;
  loop_->invoke([this, url, content_type, body, done] {
    if (!soup_) return;
    GST_DEBUG("notifying %s", url.c_str());
    send_request(soup_, cancellable_, "POST", url, {}, content_type, body,
                 [url, done](Response resp, std::string transport_error) {
                   bool ok = resp.status >= 200 && resp.status < 300;
                   if (!ok)
                     GST_INFO("notification to %s failed: %s", url.c_str(),
                              transport_error.empty() ? reason_phrase(resp.status) : transport_error.c_str());
                   done(ok);
                 });
  });
}

}  // namespace wish
