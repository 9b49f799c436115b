// Prometheus text exposition format (version 0.0.4) for the metrics a server publishes:
// families with HELP and TYPE written once, samples with escaped label values.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace wish {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class MetricsText {
public:
  // Samples of one family may be added from several places, in any order; the text groups
  // them under one HELP/TYPE. Counters' names end in _total.
  void counter(const std::string &name, const std::string &help, const MetricLabels &labels, double value);
  void gauge(const std::string &name, const std::string &help, const MetricLabels &labels, double value);
  std::string text() const;

private:
  struct Family {
    std::string help, type;
    std::vector<std::string> samples;
  };
  void add(const std::string &name, const char *type, const std::string &help, const MetricLabels &labels,
           double value);
  std::vector<std::string> order_;
  std::map<std::string, Family> families_;
};

constexpr const char *kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace wish
