// A blocking libsoup client for tests: every request is a real HTTP exchange on 127.0.0.1.
#pragma once

#include <libsoup/soup.h>

#include <string>
#include <utility>
#include <vector>

namespace wish_test {

struct HttpResult {
  unsigned status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header(const std::string &name) const;  // first, "" when absent
  std::vector<std::string> all(const std::string &name) const;
};

class HttpClient {
public:
  explicit HttpClient(bool accept_any_certificate = false);
  ~HttpClient();
  HttpResult request(const std::string &method, const std::string &url,
                     const std::vector<std::pair<std::string, std::string>> &headers = {},
                     const std::string &body = "");

private:
  SoupSession *session_;
  bool accept_any_certificate_;
};

}  // namespace wish_test
