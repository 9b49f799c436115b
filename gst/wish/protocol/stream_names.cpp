#include "stream_names.h"

#include "http.h"

namespace wish {

bool valid_stream_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "." || name == ".." || name == "sessions") return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '~' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string stream_name_from_locator(std::string_view locator, const std::vector<std::string> &endpoint_paths) {
  std::string_view s = trim(locator);
  size_t scheme = s.find("://");
  if (scheme != std::string_view::npos) {
    size_t path = s.find('/', scheme + 3);
    s = path == std::string_view::npos ? std::string_view() : s.substr(path);
  }
  size_t query = s.find_first_of("?#");
  if (query != std::string_view::npos) s = s.substr(0, query);
  while (s.size() > 1 && s.back() == '/') s.remove_suffix(1);
  if (s.empty() || s == "/") return "";
  if (s.front() != '/') return std::string(s);
  for (const auto &p : endpoint_paths) {
    if (p.empty() || s.size() <= p.size() + 1 || s.compare(0, p.size(), p) != 0 || s[p.size()] != '/') continue;
    std::string_view rest = s.substr(p.size() + 1);
    if (valid_stream_name(rest)) return std::string(rest);
  }
  return std::string(s.substr(1));
}

}  // namespace wish
