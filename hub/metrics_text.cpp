#include "hub/metrics_text.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace sovdev::hub::metrics {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one (stray
// continuation bytes, overlong forms, surrogates, code points past U+10FFFF, cut-off ends).
size_t utf8_length(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; k++) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return n;
}

// The code point of a valid UTF-8 sequence when it is a C1 control (an 8-bit CSI among them)
// or a bidirectional override or isolate; 0 otherwise.
char32_t hidden_code_point(std::string_view seq) {
  if (seq.size() < 2 || seq.size() > 3) return 0;
  char32_t cp = static_cast<unsigned char>(seq[0]) & (seq.size() == 2 ? 0x1fu : 0x0fu);
  for (size_t k = 1; k < seq.size(); k++)
    cp = (cp << 6) | (static_cast<unsigned char>(seq[k]) & 0x3fu);
  const bool hidden = (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
                      (cp >= 0x2066 && cp <= 0x2069);
  return hidden ? cp : 0;
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size();) {
    const char c = value[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      // Agents report these strings and dashboards print them: a control character is shown
      // (as the text \x1b), never sent. Written escaped, so the value holds one backslash.
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\\\x%02x",
                    static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else if (const size_t n = utf8_length(value, i); n > 0) {
      if (const char32_t cp = hidden_code_point(value.substr(i, n)); cp != 0) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "\\\\u{%04x}", static_cast<unsigned>(cp));
        out += buf;
      } else {
        out.append(value.substr(i, n));
      }
      i += n;
      continue;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
    }
    i++;
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Shortest round-trip digits, in plain notation where it reads well ("0.0005" buckets,
  // "1700000000" timestamps; to_chars' own choice would give "5e-04" and "1.7e+09").
  const double magnitude = std::fabs(value);
  const bool plain = magnitude == 0 || (magnitude >= 1e-6 && magnitude < 1e15);
  char buf[64];
  const auto [end, ec] =
      std::to_chars(buf, buf + sizeof buf, value,
                    plain ? std::chars_format::fixed : std::chars_format::scientific);
  if (ec != std::errc()) return "NaN";  // cannot happen: 64 bytes hold either form
  return std::string(buf, end);
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::observe(double value) {
  // le means "less than or equal": a value on a bound belongs to that bound's bucket.
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  counts_[static_cast<size_t>(it - bounds_.begin())]++;
  sum_ += value;
  count_++;
}

void Writer::family(std::string_view name, Type type, std::string_view help) {
  name_ = name;
  seen_.clear();
  static constexpr std::string_view types[] = {"counter", "gauge", "histogram"};
  // HELP text escapes only backslash and newline; ours is constant text without them.
  out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out_.append("# TYPE ").append(name).append(" ");
  out_.append(types[static_cast<int>(type)]).append("\n");
}

void Writer::sample(std::initializer_list<Label> labels, double value) {
  write("", labels, format_value(value));
}

void Writer::sample(std::initializer_list<Label> labels, std::uint64_t value) {
  // Exact, where a double would round counters past 2^53.
  write("", labels, std::to_string(value));
}

void Writer::histogram(std::string_view name, std::string_view help, const Histogram& h) {
  family(name, Type::histogram, help);
  std::uint64_t cumulative = 0;
  for (size_t i = 0; i < h.bounds().size(); i++) {
    cumulative += h.counts()[i];
    const std::string le = format_value(h.bounds()[i]);
    write("_bucket", {{"le", le}}, std::to_string(cumulative));
  }
  write("_bucket", {{"le", "+Inf"}}, std::to_string(h.count()));
  write("_sum", {}, format_value(h.sum()));
  write("_count", {}, std::to_string(h.count()));
}

void Writer::write(std::string_view suffix, std::initializer_list<Label> labels,
                   std::string_view value) {
  std::string series = name_;
  series.append(suffix);
  if (labels.size() > 0) {
    series += '{';
    bool first = true;
    for (const auto& l : labels) {
      if (!first) series += ',';
      first = false;
      series.append(l.name).append("=\"").append(escape_label_value(l.value)).append("\"");
    }
    series += '}';
  }
  if (!seen_.insert(series).second) {
    duplicates_++;
    return;
  }
  out_.append(series).append(" ").append(value).append("\n");
}

}  // namespace sovdev::hub::metrics
