#include "oma_host.h"

#include <gst/gst.h>

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
    g_autoptr(SoupMessage) msg = soup_message_new("POST", url.c_str());
    if (!msg) {
      GST_WARNING("cannot notify %s: not a URL", url.c_str());
      done(false);
      return;
    }
    soup_message_add_flags(msg, SOUP_MESSAGE_NO_REDIRECT);
    g_autoptr(GBytes) bytes = g_bytes_new(body.data(), body.size());
    soup_message_set_request_body_from_bytes(msg, content_type.c_str(), bytes);
    GST_DEBUG("notifying %s", url.c_str());
    struct Pending {
      std::string url;
      std::function<void(bool)> done;
    };
    auto *heap = new Pending{url, done};
    soup_session_send_and_read_async(
        soup_, msg, G_PRIORITY_DEFAULT, cancellable_,
        [](GObject *source, GAsyncResult *res, gpointer data) {
          std::unique_ptr<Pending> p(static_cast<Pending *>(data));
          SoupMessage *m = soup_session_get_async_result_message(SOUP_SESSION(source), res);
          g_autoptr(GError) err = nullptr;
          g_autoptr(GBytes) reply = soup_session_send_and_read_finish(SOUP_SESSION(source), res, &err);
          if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) return;
          guint status = reply ? soup_message_get_status(m) : 0;
          if (status < 200 || status >= 300)
            GST_INFO("notification to %s failed: %s", p->url.c_str(), err ? err->message : soup_status_get_phrase(status));
          p->done(status >= 200 && status < 300);
        },
        heap);
  });
}

}  // namespace wish
