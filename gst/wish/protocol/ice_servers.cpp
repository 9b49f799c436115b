#include "ice_servers.h"

#include <sys/random.h>

#include <cctype>
#include <cerrno>
#include <stdexcept>

#include "http.h"

namespace wish {

static std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '%' && i + 2 < s.size() &&
        std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

static std::string percent_encode(std::string_view s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

static std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string IceServer::uri() const {
  std::string u = scheme + ":" + host;
  if (port) u += ":" + std::to_string(port);
  if (!transport.empty()) u += "?transport=" + transport;
  return u;
}

std::string IceServer::gst_url() const {
  std::string u = scheme + "://";
  if (!username.empty() || !credential.empty())
    u += percent_encode(username) + ":" + percent_encode(credential) + "@";
  u += host;
  if (port) u += ":" + std::to_string(port);
  if (!transport.empty()) u += "?transport=" + transport;
  return u;
}

std::string IceServer::link_value() const {
  std::string v = "<" + uri() + ">; rel=\"ice-server\"";
  if (scheme != "stun" && scheme != "stuns") {
    v += "; username=" + quote(username) + "; credential=" + quote(credential) +
         "; credential-type=\"password\"";
  }
  return v;
}

std::optional<IceServer> parse_ice_server_url(std::string_view url) {
  IceServer s;
  auto colon = url.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string scheme(url.substr(0, colon));
  for (auto &c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "stun" && scheme != "stuns" && scheme != "turn" && scheme != "turns")
    return std::nullopt;
  s.scheme = scheme;
  std::string_view rest = url.substr(colon + 1);
  if (rest.substr(0, 2) == "//") rest.remove_prefix(2);
  auto q = rest.find('?');
  std::string_view query = q == std::string_view::npos ? std::string_view() : rest.substr(q + 1);
  rest = rest.substr(0, q);
  auto at = rest.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    auto c2 = userinfo.find(':');
    s.username = percent_decode(userinfo.substr(0, c2));
    if (c2 != std::string_view::npos) s.credential = percent_decode(userinfo.substr(c2 + 1));
    rest = rest.substr(at + 1);
  }
  std::string_view hostport = rest;
  while (!hostport.empty() && hostport.back() == '/') hostport.remove_suffix(1);
  size_t port_colon = std::string_view::npos;
  if (!hostport.empty() && hostport.front() == '[') {
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    if (close + 1 < hostport.size() && hostport[close + 1] == ':') port_colon = close + 1;
  } else {
    port_colon = hostport.rfind(':');
  }
  s.host = std::string(hostport.substr(0, port_colon));
  if (s.host.empty()) return std::nullopt;
  if (port_colon != std::string_view::npos) {
    std::string_view p = hostport.substr(port_colon + 1);
    if (p.empty() || p.size() > 5) return std::nullopt;
    unsigned long v = 0;
    for (char c : p) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
      v = v * 10 + static_cast<unsigned long>(c - '0');
    }
    if (v == 0 || v > 65535) return std::nullopt;
    s.port = static_cast<unsigned>(v);
  }
  if (!query.empty()) {
    std::string_view t = "transport=";
    auto tp = query.find(t);
    if (tp != std::string_view::npos) {
      std::string_view val = query.substr(tp + t.size());
      s.transport = std::string(val.substr(0, val.find('&')));
    }
  }
  return s;
}

std::string LinkValue::param(std::string_view name) const {
  for (const auto &p : params)
    if (iequals(p.first, name)) return p.second;
  return "";
}

std::vector<LinkValue> parse_link_header(std::string_view v) {
  std::vector<LinkValue> out;
  size_t i = 0;
  auto skip_ws = [&]() {
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) i++;
  };
  while (i < v.size()) {
    skip_ws();
    while (i < v.size() && (v[i] == ',' || v[i] == ' ')) i++;
    if (i >= v.size()) break;
    if (v[i] != '<') {  // not a link: skip to the next comma outside quotes
      bool inq = false;
      while (i < v.size() && (inq || v[i] != ',')) {
        if (v[i] == '"') inq = !inq;
        i++;
      }
      continue;
    }
    auto close = v.find('>', i);
    if (close == std::string_view::npos) break;
    LinkValue link;
    link.target = std::string(trim(v.substr(i + 1, close - i - 1)));
    i = close + 1;
    // parameters: [;] name[=value] ... until a comma outside quotes
    while (i < v.size()) {
      skip_ws();
      if (i < v.size() && v[i] == ';') {
        i++;
        skip_ws();
      }
      if (i >= v.size() || v[i] == ',') break;
      size_t ns = i;
      while (i < v.size() && v[i] != '=' && v[i] != ';' && v[i] != ',' && v[i] != ' ') i++;
      std::string name(v.substr(ns, i - ns));
      for (auto &c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      skip_ws();
      std::string value;
      if (i < v.size() && v[i] == '=') {
        i++;
        skip_ws();
        if (i < v.size() && v[i] == '"') {
          i++;
          while (i < v.size() && v[i] != '"') {
            if (v[i] == '\\' && i + 1 < v.size()) i++;
            value += v[i++];
          }
          if (i < v.size()) i++;
        } else {
          size_t vs = i;
          while (i < v.size() && v[i] != ';' && v[i] != ',' && v[i] != ' ') i++;
          value = std::string(v.substr(vs, i - vs));
        }
      }
      if (name.empty()) {
        if (i < v.size() && v[i] != ',') i++;  // stray character: make progress
        continue;
      }
      link.params.emplace_back(std::move(name), std::move(value));
    }
    out.push_back(std::move(link));
  }
  return out;
}

std::vector<IceServer> ice_servers_from_links(const std::vector<LinkValue> &links) {
  std::vector<IceServer> out;
  for (const auto &l : links) {
    if (!iequals(l.param("rel"), "ice-server")) continue;
    auto s = parse_ice_server_url(l.target);
    if (!s) continue;
    s->username = l.param("username");
    s->credential = l.param("credential");
    out.push_back(std::move(*s));
  }
  return out;
}

std::string random_hex(size_t n_bytes) {
  std::string bytes(n_bytes, '\0');
  size_t got = 0;
  while (got < n_bytes) {
    ssize_t r = getrandom(&bytes[got], n_bytes - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("getrandom failed");
    }
    got += static_cast<size_t>(r);
  }
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

}  // namespace wish
