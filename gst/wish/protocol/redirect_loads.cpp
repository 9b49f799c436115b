#include "redirect_loads.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "client.h"

namespace wish {
namespace {

bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'; }
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }
bool blank(char c) { return c == ' ' || c == '\t'; }

void skip_blanks(const std::string &line, size_t &i) {
  while (i < line.size() && blank(line[i])) i++;
}

// One label set "{a="x",b="y\"z"}" from line[i] on; false when malformed.
bool skip_labels(const std::string &line, size_t &i) {
  if (i >= line.size() || line[i] != '{') return true;
  i++;
  for (;;) {
    skip_blanks(line, i);
    if (i < line.size() && line[i] == '}') {
      i++;
      return true;
    }
    if (i >= line.size() || !name_start(line[i]) || line[i] == ':') return false;
    while (i < line.size() && name_char(line[i]) && line[i] != ':') i++;
    skip_blanks(line, i);
    if (i >= line.size() || line[i] != '=') return false;
    i++;
    skip_blanks(line, i);
    if (i >= line.size() || line[i] != '"') return false;
    for (i++;; i++) {
      if (i >= line.size()) return false;
      if (line[i] == '\\') {
        if (++i >= line.size()) return false;
      } else if (line[i] == '"') {
        i++;
        break;
      }
    }
    skip_blanks(line, i);
    if (i < line.size() && line[i] == ',') i++;
    else if (i >= line.size() || line[i] != '}') return false;
  }
}

// A sample value: a float, or NaN / +Inf / -Inf as the format writes them.
bool parse_value(const std::string &token, double *out) {
  if (token == "NaN") *out = NAN;
  else if (token == "+Inf" || token == "Inf") *out = INFINITY;
  else if (token == "-Inf") *out = -INFINITY;
  else {
    for (char c : token)  // decimal only: strtod would also read hex, "inf", "nan(...)"
      if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) return false;
    errno = 0;
    char *end = nullptr;
    *out = std::strtod(token.c_str(), &end);
    if (token.empty() || end != token.c_str() + token.size() || errno == ERANGE) return false;
  }
  return true;
}

}  // namespace

std::optional<double> prometheus_sum(const std::string &text, const std::string &name) {
  double sum = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t i = 0;
    skip_blanks(line, i);
    if (i == line.size() || line[i] == '#') continue;  // blank, HELP, TYPE or a comment
    if (!name_start(line[i])) return std::nullopt;
    size_t name_begin = i;
    while (i < line.size() && name_char(line[i])) i++;
    std::string metric = line.substr(name_begin, i - name_begin);
    if (!skip_labels(line, i)) return std::nullopt;
    if (i >= line.size() || !blank(line[i])) return std::nullopt;
    skip_blanks(line, i);
    size_t value_begin = i;
    while (i < line.size() && !blank(line[i])) i++;
    double value = 0;
    if (!parse_value(line.substr(value_begin, i - value_begin), &value)) return std::nullopt;
    skip_blanks(line, i);
    if (i < line.size()) {  // a timestamp: milliseconds, an integer
      size_t ts = i;
      if (line[i] == '-') i++;
      while (i < line.size() && line[i] >= '0' && line[i] <= '9') i++;
      if (i == ts || i < line.size()) return std::nullopt;
    }
    if (metric == name) sum += value;
  }
  return sum;
}

std::string metrics_url_for(const std::string &endpoint, const std::string &metrics_path) {
  size_t scheme_end = endpoint.find("://");
  if (scheme_end == std::string::npos) return {};
  std::string scheme = endpoint.substr(0, scheme_end);
  for (char &c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https") return {};
  if (scheme_end + 3 >= endpoint.size() || std::strchr("/?#", endpoint[scheme_end + 3])) return {};  // no host
  return resolve_url(endpoint, metrics_path.empty() || metrics_path[0] != '/' ? "/" + metrics_path : metrics_path);
}

void RedirectLoads::report(size_t i, std::optional<double> viewers) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (i >= loads_.size()) return;
  Load &l = loads_[i];
  l.known = viewers.has_value() && std::isfinite(*viewers);
  l.viewers = l.known ? *viewers : 0;
  l.sent_since = 0;
}

size_t RedirectLoads::choose(size_t turn) {
  std::lock_guard<std::mutex> lock(mutex_);
  const size_t n = loads_.size();
  if (!n) return 0;
  size_t best = n;
  for (size_t k = 0; k < n; k++) {
    size_t i = (turn + k) % n;  // from the one whose turn it is, so ties go in turn
    if (!loads_[i].known) continue;
    if (best == n || loads_[i].viewers + loads_[i].sent_since < loads_[best].viewers + loads_[best].sent_since)
      best = i;
  }
  if (best == n) best = turn % n;
  loads_[best].sent_since++;
  return best;
}

}  // namespace wish
