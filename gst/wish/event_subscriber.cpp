#include "event_subscriber.h"

#include <gst/gst.h>

#include "http_request.h"
#include "protocol/client.h"

GST_DEBUG_CATEGORY_EXTERN(wish_client_debug);
#define GST_CAT_DEFAULT wish_client_debug

namespace wish {

namespace {
constexpr gsize kReadSize = 4096;
}

EventSubscriber::EventSubscriber(std::string link, const std::string &advertised, const std::vector<std::string> &wanted,
                                 std::string auth_token, OnEvent on_event, OnEnd on_end)
    : link_(std::move(link)), token_(std::move(auth_token)), on_event_(std::move(on_event)), on_end_(std::move(on_end)) {
  std::vector<std::string> offered = split_list(advertised);
  for (const auto &w : wanted) {
    bool ok = offered.empty();  // no events parameter: ask, the server says what it refuses
    for (const auto &o : offered) ok = ok || o == w;
    if (ok) names_.push_back(w);
  }
}

EventSubscriber::~EventSubscriber() {
  ended_ = true;  // callbacks of cancelled operations find nothing to do
  if (cancellable_) g_cancellable_cancel(cancellable_);
  if (body_) g_input_stream_close(body_, nullptr, nullptr);
  g_clear_object(&body_);
  g_clear_object(&cancellable_);
  g_clear_object(&soup_);
}

void EventSubscriber::start() {
  if (names_.empty()) return;
  soup_ = soup_session_new_with_options("timeout", 0, "user-agent", "wish ", nullptr);
  cancellable_ = g_cancellable_new();
  std::vector<std::pair<std::string, std::string>> headers;
  if (!token_.empty()) headers.push_back({"Authorization", "Bearer " + token_});
  send_request(soup_, cancellable_, "POST", link_, headers, "application/json", event_subscription_body(names_),
               [this](Response resp, std::string error) { on_subscribed(std::move(resp), std::move(error)); },
               RequestLimits{10000, 0, false});
}

void EventSubscriber::on_subscribed(Response resp, std::string error) {
  if (ended_) return;
  if (resp.status != 201 || !resp.headers.get("Location")) {
    end(resp.status ? "subscription answered " + std::to_string(resp.status) : "subscription failed: " + error);
    return;
  }
  stream_url_ = resolve_url(link_, *resp.headers.get("Location"));
  GST_INFO("subscribed to server-sent events at %s", stream_url_.c_str());
  SoupMessage *msg = soup_message_new("GET", stream_url_.c_str());
  if (!msg) {
    end("invalid event stream URL " + stream_url_);
    return;
  }
  SoupMessageHeaders *h = soup_message_get_request_headers(msg);
  soup_message_headers_replace(h, "Accept", "text/event-stream");
  if (!token_.empty()) soup_message_headers_replace(h, "Authorization", ("Bearer " + token_).c_str());
  struct Ctx {
    EventSubscriber *self;
    SoupMessage *msg;
  };
  soup_session_send_async(soup_, msg, G_PRIORITY_DEFAULT, cancellable_,
                          +[](GObject *src, GAsyncResult *res, gpointer d) {
                            std::unique_ptr<Ctx> ctx(static_cast<Ctx *>(d));
                            GError *err = nullptr;
                            GInputStream *stream = soup_session_send_finish(SOUP_SESSION(src), res, &err);
                            unsigned status = soup_message_get_status(ctx->msg);
                            g_object_unref(ctx->msg);
                            if (err && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                              g_error_free(err);
                              if (stream) g_object_unref(stream);
                              return;  // dropped: ctx->self may be gone
                            }
                            if (!err && status != 200) {
                              g_set_error(&err, G_IO_ERROR, G_IO_ERROR_FAILED, "event stream answered %u", status);
                              g_clear_object(&stream);
                            }
                            ctx->self->on_stream(stream, err);
                            g_clear_error(&err);
                          },
                          new Ctx{this, msg});
}

void EventSubscriber::on_stream(GInputStream *stream, GError *error) {
  if (!stream) {
    end(error ? error->message : "no event stream");
    return;
  }
  body_ = stream;
  read_more();
}

void EventSubscriber::read_more() {
  g_input_stream_read_bytes_async(
      body_, kReadSize, G_PRIORITY_DEFAULT, cancellable_,
      +[](GObject *src, GAsyncResult *res, gpointer d) {
        GError *err = nullptr;
        GBytes *bytes = g_input_stream_read_bytes_finish(G_INPUT_STREAM(src), res, &err);
        if (err && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
          g_error_free(err);
          return;  // dropped: the subscriber may be gone
        }
        auto *self = static_cast<EventSubscriber *>(d);
        gsize size = 0;
        const char *data = bytes ? static_cast<const char *>(g_bytes_get_data(bytes, &size)) : nullptr;
        if (err || size == 0) {
          self->end(err ? err->message : "the server ended the event stream");
          g_clear_error(&err);
          if (bytes) g_bytes_unref(bytes);
          return;
        }
        std::vector<ServerEvent> events = self->parser_.feed(std::string_view(data, size));
        g_bytes_unref(bytes);
        for (const auto &e : events) {
          if (self->ended_) return;
          self->on_event_(e);
        }
        if (!self->ended_) self->read_more();
      },
      this);
}

void EventSubscriber::end(const std::string &why) {
  if (ended_) return;
  ended_ = true;
  GST_INFO("server-sent events ended: %s", why.c_str());
  if (on_end_) on_end_(why);
}

}  // namespace wish
