#include "http_request.h"

#include <memory>

namespace wish {

namespace {

// One request under way: its own cancellable (cancelled with the caller's, or by a limit).
struct Pending {
  RequestCallback done;
  RequestLimits limits;
  GCancellable *own = nullptr;
  GCancellable *parent = nullptr;
  gulong parent_handler = 0;
  SoupMessage *msg = nullptr;
  gulong wrote_handler = 0;
  GSource *answer_timer = nullptr, *connect_timer = nullptr;
  bool on_wire = false;
  std::string timed_out;  // why a limit cancelled it

  ~Pending() {
    for (GSource *t : {answer_timer, connect_timer}) {
      if (!t) continue;
      g_source_destroy(t);
      g_source_unref(t);
    }
    if (wrote_handler) g_signal_handler_disconnect(msg, wrote_handler);
    if (parent_handler) g_cancellable_disconnect(parent, parent_handler);
    g_clear_object(&parent);
    g_clear_object(&own);
    g_clear_object(&msg);
  }

  GSource *timer(guint ms, GSourceFunc fn) {
    GSource *t = g_timeout_source_new(ms);
    g_source_set_callback(t, fn, this, nullptr);
    g_source_attach(t, g_main_context_get_thread_default());
    return t;
  }
};

}  // namespace

void send_request(SoupSession *session, GCancellable *cancellable, const char *method, const std::string &url,
                  const std::vector<std::pair<std::string, std::string>> &headers, const std::string &content_type,
                  const std::string &body, RequestCallback done, const RequestLimits &limits) {
  g_autoptr(SoupMessage) msg = soup_message_new(method, url.c_str());
  if (!msg) {
    done(Response::empty(0), "invalid URL " + url);
    return;
  }
  soup_message_add_flags(msg, SOUP_MESSAGE_NO_REDIRECT);
  if (limits.new_connection) soup_message_add_flags(msg, SOUP_MESSAGE_NEW_CONNECTION);
  SoupMessageHeaders *h = soup_message_get_request_headers(msg);
  for (const auto &kv : headers) soup_message_headers_replace(h, kv.first.c_str(), kv.second.c_str());
  if (!content_type.empty()) {
    g_autoptr(GBytes) bytes = g_bytes_new(body.data(), body.size());
    soup_message_set_request_body_from_bytes(msg, content_type.c_str(), bytes);
  }
  auto *p = new Pending;
  p->done = std::move(done);
  p->limits = limits;
  p->msg = SOUP_MESSAGE(g_object_ref(msg));
  p->own = g_cancellable_new();
  if (cancellable) {
    p->parent = G_CANCELLABLE(g_object_ref(cancellable));
    p->parent_handler = g_cancellable_connect(
        cancellable, G_CALLBACK(+[](GCancellable *, gpointer own) { g_cancellable_cancel(G_CANCELLABLE(own)); }),
        g_object_ref(p->own), g_object_unref);
  }
  if (limits.answer_ms) {
    p->answer_timer = p->timer(limits.answer_ms, [](gpointer d) -> gboolean {
      auto *pending = static_cast<Pending *>(d);
      pending->timed_out = "no answer within " + std::to_string(pending->limits.answer_ms) + " ms";
      g_cancellable_cancel(pending->own);
      return G_SOURCE_REMOVE;
    });
  }
  if (limits.connect_ms) {
    p->wrote_handler = g_signal_connect(msg, "wrote-headers", G_CALLBACK(+[](SoupMessage *, gpointer d) {
                                          static_cast<Pending *>(d)->on_wire = true;
                                        }),
                                        p);
    p->connect_timer = p->timer(limits.connect_ms, [](gpointer d) -> gboolean {
      auto *pending = static_cast<Pending *>(d);
      if (!pending->on_wire && pending->timed_out.empty()) {
        pending->timed_out = "not connected within " + std::to_string(pending->limits.connect_ms) + " ms";
        g_cancellable_cancel(pending->own);
      }
      return G_SOURCE_REMOVE;
    });
  }
  soup_session_send_and_read_async(
      session, msg, G_PRIORITY_DEFAULT, p->own,
      [](GObject *source, GAsyncResult *res, gpointer data) {
        std::unique_ptr<Pending> pending(static_cast<Pending *>(data));
        SoupMessage *m = soup_session_get_async_result_message(SOUP_SESSION(source), res);
        g_autoptr(GError) err = nullptr;
        g_autoptr(GBytes) bytes = soup_session_send_and_read_finish(SOUP_SESSION(source), res, &err);
        if (!bytes) {
          bool cancelled = g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          // Cancelled by the caller: nothing. By a limit: a transport error like any other.
          if (cancelled && pending->timed_out.empty()) return;
          std::string why = cancelled ? pending->timed_out : (err ? err->message : "request failed");
          RequestCallback cb = std::move(pending->done);
          pending.reset();
          cb(Response::empty(0), why);
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
        RequestCallback cb = std::move(pending->done);
        pending.reset();
        cb(std::move(r), "");
      },
      p);
}

}  // namespace wish
