#include "metrics.h"

#include <cmath>
#include <cstdio>

namespace wish {

namespace {
// Label values escape backslash, double quote and line feed.
std::string escape(const std::string &v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    snprintf(buf, sizeof buf, "%.0f", v);
  else
    snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
}  // namespace

void MetricsText::counter(const std::string &name, const std::string &help, const MetricLabels &labels, double value) {
  add(name, "counter", help, labels, value);
}

void MetricsText::gauge(const std::string &name, const std::string &help, const MetricLabels &labels, double value) {
  add(name, "gauge", help, labels, value);
}

void MetricsText::add(const std::string &name, const char *type, const std::string &help, const MetricLabels &labels,
                      double value) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    order_.push_back(name);
    it = families_.emplace(name, Family{help, type, {}}).first;
  }
  std::string sample = name;
  if (!labels.empty()) {
    sample += "{";
    for (size_t i = 0; i < labels.size(); i++)
      sample += (i ? "," : "") + labels[i].first + "=\"" + escape(labels[i].second) + "\"";
    sample += "}";
  }
  it->second.samples.push_back(sample + " " + number(value));
}

std::string MetricsText::text() const {
  std::string out;
  for (const auto &name : order_) {
    const Family &f = families_.at(name);
    // A counter family is named without _total in HELP and TYPE.
    std::string family = name;
    if (f.type == "counter" && family.size() > 6 && family.compare(family.size() - 6, 6, "_total") == 0)
      family.resize(family.size() - 6);
    out += "# HELP " + family + " " + f.help + "\n# TYPE " + family + " " + f.type + "\n";
    for (const auto &s : f.samples) out += s + "\n";
  }
  return out;
}

}  // namespace wish
