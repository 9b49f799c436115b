#include "http_client.h"

#include <strings.h>

namespace wish_test {

std::string HttpResult::header(const std::string &name) const {
  for (const auto &kv : headers)
    if (strcasecmp(kv.first.c_str(), name.c_str()) == 0) return kv.second;
  return "";
}

std::vector<std::string> HttpResult::all(const std::string &name) const {
  std::vector<std::string> out;
  for (const auto &kv : headers)
    if (strcasecmp(kv.first.c_str(), name.c_str()) == 0) out.push_back(kv.second);
  return out;
}

HttpClient::HttpClient(bool accept_any_certificate) : accept_any_certificate_(accept_any_certificate) {
  session_ = soup_session_new_with_options("timeout", 20, "idle-timeout", 5, nullptr);
}

HttpClient::~HttpClient() { g_object_unref(session_); }

HttpResult HttpClient::request(const std::string &method, const std::string &url,
                               const std::vector<std::pair<std::string, std::string>> &headers,
                               const std::string &body) {
  HttpResult r;
  SoupMessage *msg = soup_message_new(method.c_str(), url.c_str());
  if (!msg) return r;
  if (accept_any_certificate_)  // the tests' self-signed certificates
    g_signal_connect(msg, "accept-certificate",
                     G_CALLBACK(+[](SoupMessage *, GTlsCertificate *, GTlsCertificateFlags) { return TRUE; }), nullptr);
  std::string content_type;
  for (const auto &kv : headers) {
    if (strcasecmp(kv.first.c_str(), "Content-Type") == 0)
      content_type = kv.second;
    else
      soup_message_headers_append(soup_message_get_request_headers(msg), kv.first.c_str(), kv.second.c_str());
  }
  if (!body.empty() || !content_type.empty()) {
    GBytes *bytes = g_bytes_new(body.data(), body.size());
    soup_message_set_request_body_from_bytes(msg, content_type.empty() ? nullptr : content_type.c_str(), bytes);
    g_bytes_unref(bytes);
  }
  GError *err = nullptr;
  GBytes *resp = soup_session_send_and_read(session_, msg, nullptr, &err);
  if (resp) {
    gsize size = 0;
    const char *data = static_cast<const char *>(g_bytes_get_data(resp, &size));
    r.body.assign(data ? data : "", size);
    g_bytes_unref(resp);
  } else {
    g_printerr("HTTP %s %s failed: %s\n", method.c_str(), url.c_str(), err ? err->message : "?");
    g_clear_error(&err);
  }
  r.status = soup_message_get_status(msg);
  soup_message_headers_foreach(
      soup_message_get_response_headers(msg),
      [](const char *name, const char *value, gpointer out) {
        static_cast<HttpResult *>(out)->headers.emplace_back(name, value);
      },
      &r);
  g_object_unref(msg);
  return r;
}

}  // namespace wish_test
