#include "bundles/yaml/scalar.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <limits>
#include <optional>

namespace sovdev::yaml::detail {
namespace {

constexpr std::string_view kTagPrefix = "tag:yaml.org,2002:";

enum class Kind { null, boolean, integer, unsigned_integer, floating, string };

struct Value {
  Kind kind = Kind::string;
  bool boolean = false;
  int64_t integer = 0;
  uint64_t unsigned_integer = 0;
  double floating = 0;
};

std::string_view kind_name(Kind kind) {
  switch (kind) {
    case Kind::null: return "!!null";
    case Kind::boolean: return "!!bool";
    case Kind::integer:
    case Kind::unsigned_integer: return "!!int";
    case Kind::floating: return "!!float";
    case Kind::string: break;
  }
  return "!!str";
}

bool one_of(std::string_view s, std::initializer_list<std::string_view> words) {
  for (std::string_view w : words) {
    if (s == w) return true;
  }
  return false;
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Go's strconv.ParseUint(s, 0, 64): 0b, 0o, 0x prefixes and a leading 0 for octal.
std::optional<uint64_t> go_parse_uint(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t base = 10;
  if (s[0] == '0') {
    char prefix = s.size() >= 3 ? lower(s[1]) : '\0';
    if (prefix == 'b' || prefix == 'o' || prefix == 'x') {
      base = prefix == 'b' ? 2 : prefix == 'o' ? 8 : 16;
      s.remove_prefix(2);
    } else {
      base = 8;
      s.remove_prefix(1);
    }
  }
  uint64_t n = 0;
  for (char c : s) {
    uint64_t digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint64_t>(c - '0');
    } else if (lower(c) >= 'a' && lower(c) <= 'z') {
      digit = static_cast<uint64_t>(lower(c) - 'a' + 10);
    } else {
      return std::nullopt;
    }
    if (digit >= base) return std::nullopt;
    if (n > (std::numeric_limits<uint64_t>::max() - digit) / base) return std::nullopt;
    n = n * base + digit;
  }
  return n;
}

// Go's strconv.ParseInt(s, 0, 64).
std::optional<int64_t> go_parse_int(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  std::optional<uint64_t> magnitude = go_parse_uint(s);
  if (!magnitude) return std::nullopt;
  constexpr uint64_t kCutoff = uint64_t{1} << 63;
  if (*magnitude > kCutoff || (!negative && *magnitude == kCutoff)) return std::nullopt;
  if (*magnitude == kCutoff) return std::numeric_limits<int64_t>::min();
  auto value = static_cast<int64_t>(*magnitude);
  return negative ? -value : value;
}

size_t skip_digits(std::string_view s, size_t i) {
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  return i;
}

// go-yaml's yamlStyleFloat: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
bool is_yaml_style_float(std::string_view s) {
  size_t i = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  size_t int_end = skip_digits(s, i);
  if (int_end == i) {
    if (i >= s.size() || s[i] != '.') return false;
    size_t frac_end = skip_digits(s, i + 1);
    if (frac_end == i + 1) return false;
    i = frac_end;
  } else {
    i = int_end;
    if (i < s.size() && s[i] == '.') i = skip_digits(s, i + 1);
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp_end = skip_digits(s, i);
    if (exp_end == i) return false;
    i = exp_end;
  }
  return i == s.size();
}

// Go's strconv.ParseFloat on text is_yaml_style_float accepted: an overflow is an error (the
// scalar then stays a string, as in go-yaml), an underflow is zero.
std::optional<double> go_parse_float(std::string_view s) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  double value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec == std::errc::result_out_of_range) {
    size_t e = s.find_first_of("eE");
    bool tiny = e != std::string_view::npos && e + 1 < s.size() && s[e + 1] == '-';
    if (tiny) return 0.0;
    return std::nullopt;
  }
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

Value make_float(double f) {
  Value v;
  v.kind = Kind::floating;
  v.floating = f;
  return v;
}

// go-yaml v2's resolve() for an untagged plain scalar. Timestamps are left out on purpose:
// go-yaml hands them to interface{} targets as the original string.
Value resolve_plain(std::string_view text) {
  Value v;
  if (one_of(text, {"", "~", "null", "Null", "NULL"})) {
    v.kind = Kind::null;
    return v;
  }
  if (one_of(text, {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})) {
    v.kind = Kind::boolean;
    v.boolean = true;
    return v;
  }
  if (one_of(text, {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"})) {
    v.kind = Kind::boolean;
    return v;
  }
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (one_of(text, {".nan", ".NaN", ".NAN"})) return make_float(std::nan(""));
  if (one_of(text, {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"})) return make_float(kInf);
  if (one_of(text, {"-.inf", "-.Inf", "-.INF"})) return make_float(-kInf);

  char first = text[0];
  if ((first >= '0' && first <= '9') || first == '+' || first == '-') {
    std::string plain;  // go-yaml drops every '_' before parsing numbers
    for (char c : text) {
      if (c != '_') plain.push_back(c);
    }
    if (auto i = go_parse_int(plain)) {
      v.kind = Kind::integer;
      v.integer = *i;
      return v;
    }
    if (auto u = go_parse_uint(plain)) {
      v.kind = Kind::unsigned_integer;
      v.unsigned_integer = *u;
      return v;
    }
    if (is_yaml_style_float(plain)) {
      if (auto f = go_parse_float(plain)) return make_float(*f);
    }
  } else if (first == '.' && is_yaml_style_float(text)) {
    if (auto f = go_parse_float(text)) return make_float(*f);
  }
  return v;  // a string
}

// An explicit !!bool, !!int, !!float or !!null must agree with what the text resolves to, as
// go-yaml insists ("cannot decode !!str `abc` as a !!int").
Status resolve_tagged(std::string_view tag, std::string_view text, Value& v) {
  v = resolve_plain(text);
  std::string_view want = tag.substr(kTagPrefix.size());
  bool is_int = v.kind == Kind::integer || v.kind == Kind::unsigned_integer;
  if (want == "float" && is_int) {
    v = make_float(v.kind == Kind::integer ? static_cast<double>(v.integer)
                                           : static_cast<double>(v.unsigned_integer));
  }
  if (kind_name(v.kind).substr(2) == want) return {};
  return make_error(Errc::invalid, "cannot decode " + std::string(kind_name(v.kind)) + " `" +
                                       std::string(text) + "` as a !!" + std::string(want));
}

Status resolve(std::string_view tag, std::string_view text, Value& v) {
  if (tag == "?") {
    v = resolve_plain(text);
    return {};
  }
  if (tag.substr(0, kTagPrefix.size()) == kTagPrefix) {
    std::string_view name = tag.substr(kTagPrefix.size());
    if (one_of(name, {"bool", "int", "float", "null"})) return resolve_tagged(tag, text, v);
    if (name == "binary") {
      return make_error(Errc::invalid, "!!binary scalars are not supported: use a Secret's data");
    }
  }
  v = Value{};  // quoted, block, !!str, !!timestamp and unknown tags: the text itself
  return {};
}

// What encoding/json prints for a float64 holding a whole number is that number without a
// fraction, so keep those integers: an int field such as replicas then accepts `1e3` or `3.0`
// exactly as it does from kubectl.
nlohmann::json float_json(double f) {
  constexpr double kTwo63 = 9223372036854775808.0;
  if (std::trunc(f) == f) {
    if (f >= -kTwo63 && f < kTwo63) return static_cast<int64_t>(f);
    if (f >= 0 && f < 2 * kTwo63) return static_cast<uint64_t>(f);
  }
  return f;
}

// Go's strconv.FormatFloat(f, 'g', -1, 32), which sigs.k8s.io/yaml uses for float keys.
std::string go_format_float32(double value) {
  auto f = static_cast<float>(value);
  if (std::isnan(f)) return ".nan";
  if (std::isinf(f)) return f > 0 ? ".inf" : "-.inf";
  char buf[64];
  auto sci = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  std::string scientific(buf, sci.ptr);
  int exponent = std::atoi(scientific.c_str() + scientific.find('e') + 1);
  if (exponent < -4 || exponent >= 6) return scientific;  // Go's %e form looks like C's
  auto fixed = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::fixed);
  return std::string(buf, fixed.ptr);
}

}  // namespace

Status resolve_scalar(std::string_view tag, std::string_view text, nlohmann::json& out) {
  Value v;
  SOVDEV_TRY(resolve(tag, text, v));
  switch (v.kind) {
    case Kind::null: out = nullptr; break;
    case Kind::boolean: out = v.boolean; break;
    case Kind::integer: out = v.integer; break;
    case Kind::unsigned_integer: out = v.unsigned_integer; break;
    case Kind::floating:
      if (!std::isfinite(v.floating)) {
        return make_error(Errc::invalid, "`" + std::string(text) +
                                             "` is not a finite number and JSON cannot hold it: "
                                             "quote it if a string is meant");
      }
      out = float_json(v.floating);
      break;
    case Kind::string: out = std::string(text); break;
  }
  return {};
}

Status resolve_key(std::string_view tag, std::string_view text, std::string& out) {
  Value v;
  SOVDEV_TRY(resolve(tag, text, v));
  switch (v.kind) {
    case Kind::null:
      return make_error(Errc::invalid, "a null map key (`" + std::string(text) +
                                           "`) cannot become a JSON key: quote it");
    case Kind::boolean: out = v.boolean ? "true" : "false"; break;
    case Kind::integer: out = std::to_string(v.integer); break;
    case Kind::unsigned_integer:
      return make_error(Errc::invalid, "map key `" + std::string(text) +
                                           "` is too large an integer for kubectl: quote it");
    case Kind::floating: out = go_format_float32(v.floating); break;
    case Kind::string: out = std::string(text); break;
  }
  return {};
}

}  // namespace sovdev::yaml::detail
