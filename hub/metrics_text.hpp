// Prometheus text exposition format 0.0.4, just what the hub's /metrics needs: families with
// HELP and TYPE, escaped label values, histograms. Not prometheus-cpp (Debian's
// prometheus-cpp-dev): its registry keeps long-lived metric objects, while most of ours are
// read afresh from hub.db on each scrape, and the format is a page of rules.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sovdev::hub::metrics {

// A label value is escaped (\\, \", \n) and made valid UTF-8 (agents report the strings; one
// stray byte would make Prometheus reject the whole scrape). Other control characters, C1 and
// bidirectional overrides are shown as text (the value holds \x1b, \u{009b}), never passed
// on to the dashboard or terminal that prints the value.
struct Label {
  std::string_view name;
  std::string_view value;
};

// Escapes a label value as the text format requires.
std::string escape_label_value(std::string_view value);

// Observations in fixed buckets; `bounds` are the upper bounds, ascending, without +Inf.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  const std::vector<double>& bounds() const { return bounds_; }
  // Per bucket, not cumulative; one more than bounds(): the last one is above every bound.
  const std::vector<std::uint64_t>& counts() const { return counts_; }
  double sum() const { return sum_; }
  std::uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

enum class Type { counter, gauge, histogram };

// Writes families one after the other: a family's samples must be contiguous, and each name
// and label set appears once (a repeated series is dropped, so a scrape never fails on it).
class Writer {
 public:
  // Starts a family: its HELP and TYPE lines. Samples added until the next family() belong
  // to it; a family without samples is still announced, so dashboards see it exists.
  void family(std::string_view name, Type type, std::string_view help);
  void sample(std::initializer_list<Label> labels, double value);
  void sample(std::initializer_list<Label> labels, std::uint64_t value);
  // Writes a whole histogram family: cumulative _bucket series with le up to +Inf, _sum and
  // _count.
  void histogram(std::string_view name, std::string_view help, const Histogram& h);

  // Series dropped because they repeated one already written.
  std::uint64_t duplicates() const { return duplicates_; }
  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void write(std::string_view suffix, std::initializer_list<Label> labels, std::string_view value);

  std::string out_;
  std::string name_;
  std::set<std::string> seen_;  // series of the current family
  std::uint64_t duplicates_ = 0;
};

// The text format's spelling of a number: shortest round-trip form, +Inf, -Inf, NaN.
std::string format_value(double value);

}  // namespace sovdev::hub::metrics
