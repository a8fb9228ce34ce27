// An independent reader of the Prometheus text format 0.0.4 for the tests: it applies the
// format's rules (HELP/TYPE once and before the samples, contiguous families, escaping,
// no repeated series, cumulative histogram buckets ending in +Inf) and lists what it finds
// wrong, so a test can fail on a page Prometheus would reject or misread.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace sovdev::testing {

struct Exposition {
  std::vector<std::string> problems;         // empty when the page follows the rules
  std::map<std::string, double> samples;     // "name{a=\"x\",b=\"y\"}" (as written) → value
  std::map<std::string, std::string> types;  // family → counter, gauge, histogram ...
  std::map<std::string, std::string> helps;  // family → HELP text, unescaped

  // The value of a series, or NaN when absent.
  double value(const std::string& series) const;
  bool has(const std::string& series) const { return samples.count(series) > 0; }
};

Exposition parse_exposition(const std::string& text);

}  // namespace sovdev::testing
