#include "http_request.h"

#include <memory>

namespace wish {

void send_request(SoupSession *session, GCancellable *cancellable, const char *method, const std::string &url,
                  const std::vector<std::pair<std::string, std::string>> &headers, const std::string &content_type,
                  const std::string &body, RequestCallback done) {
  g_autoptr(SoupMessage) msg = soup_message_new(method, url.c_str());
  if (!msg) {
    done(Response::empty(0), "invalid URL " + url);
    return;
  }
  soup_message_add_flags(msg, SOUP_MESSAGE_NO_REDIRECT);
  SoupMessageHeaders *h = soup_message_get_request_headers(msg);
  for (const auto &kv : headers) soup_message_headers_replace(h, kv.first.c_str(), kv.second.c_str());
  if (!content_type.empty()) {
    g_autoptr(GBytes) bytes = g_bytes_new(body.data(), body.size());
    soup_message_set_request_body_from_bytes(msg, content_type.c_str(), bytes);
  }
  auto *heap = new RequestCallback(std::move(done));
  soup_session_send_and_read_async(
      session, msg, G_PRIORITY_DEFAULT, cancellable,
      [](GObject *source, GAsyncResult *res, gpointer data) {
        std::unique_ptr<RequestCallback> cb(static_cast<RequestCallback *>(data));
        SoupMessage *m = soup_session_get_async_result_message(SOUP_SESSION(source), res);
        g_autoptr(GError) err = nullptr;
        g_autoptr(GBytes) bytes = soup_session_send_and_read_finish(SOUP_SESSION(source), res, &err);
        if (!bytes) {
          bool cancelled = g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          if (!cancelled) (*cb)(Response::empty(0), err ? err->message : "request failed");
          return;
        }
        Response r;
        r.status = soup_message_get_status(m);
        gsize size = 0;
        const char *d = static_cast<const char *>(g_bytes_get_data(bytes, &size));
        r.body.assign(d ? d : "", size);
        soup_message_headers_foreach(
            soup_message_get_response_headers(m),
            [](const char *name, const char *value, gpointer out) { static_cast<Response *>(out)->headers.add(name, value); },
            &r);
        (*cb)(std::move(r), "");
      },
      heap);
}

}  // namespace wish
