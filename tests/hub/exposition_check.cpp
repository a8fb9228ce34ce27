#include "tests/hub/exposition_check.hpp"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <regex>
#include <set>
#include <sstream>

namespace sovdev::testing {
namespace {

const std::regex kMetricName("[a-zA-Z_:][a-zA-Z0-9_:]*");
const std::regex kLabelName("[a-zA-Z_][a-zA-Z0-9_]*");

bool parse_number(const std::string& s, double& out) {
  if (s == "+Inf" || s == "Inf") return out = std::numeric_limits<double>::infinity(), true;
  if (s == "-Inf") return out = -std::numeric_limits<double>::infinity(), true;
  if (s == "NaN") return out = std::numeric_limits<double>::quiet_NaN(), true;
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;  // unescaped values
  std::string value_text;
};

// Parses `name{l="v",...} value [timestamp]`; returns an error text or "".
std::string parse_sample(const std::string& line, Sample& s) {
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') i++;
  s.name = line.substr(0, i);
  if (!std::regex_match(s.name, kMetricName)) return "bad metric name '" + s.name + "'";
  if (i < line.size() && line[i] == '{') {
    i++;
    while (i < line.size() && line[i] != '}') {
      const size_t eq = line.find('=', i);
      if (eq == std::string::npos) return "label without '='";
      const std::string label = line.substr(i, eq - i);
      if (!std::regex_match(label, kLabelName)) return "bad label name '" + label + "'";
      i = eq + 1;
      if (i >= line.size() || line[i] != '"') return "label value not quoted";
      i++;
      std::string value;
      for (;; i++) {
        if (i >= line.size()) return "unterminated label value";
        if (line[i] == '"') break;
        if (line[i] == '\\') {
          if (++i >= line.size()) return "dangling backslash";
          if (line[i] == 'n') {
            value += '\n';
          } else if (line[i] == '\\' || line[i] == '"') {
            value += line[i];
          } else {
            return std::string("unknown escape \\") + line[i];
          }
        } else {
          value += line[i];
        }
      }
      i++;  // the closing quote
      if (!s.labels.emplace(label, value).second) return "label '" + label + "' twice";
      if (i < line.size() && line[i] == ',') i++;
    }
    if (i >= line.size()) return "unterminated label set";
    i++;  // '}'
  }
  if (i >= line.size() || line[i] != ' ') return "no value";
  std::istringstream rest(line.substr(i + 1));
  std::string timestamp;
  rest >> s.value_text >> timestamp;
  double ignored = 0;
  if (!parse_number(s.value_text, ignored)) return "bad value '" + s.value_text + "'";
  return "";
}

// The family a sample belongs to, by the TYPE of the names seen so far.
std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string sfx = suffix;
    if (name.size() > sfx.size() && name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0) {
      const std::string base = name.substr(0, name.size() - sfx.size());
      auto t = types.find(base);
      if (t != types.end() && (t->second == "histogram" || t->second == "summary")) return base;
    }
  }
  return name;
}

}  // namespace

double Exposition::value(const std::string& series) const {
  auto it = samples.find(series);
  return it == samples.end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
}

Exposition parse_exposition(const std::string& text) {
  Exposition e;
  std::set<std::string> finished;  // families whose samples are over
  std::string current;
  std::set<std::string> series;
  // Histogram bookkeeping per family + labels without le: the buckets in order, and _count.
  std::map<std::string, std::vector<std::pair<double, double>>> buckets;
  std::map<std::string, double> counts;
  const auto problem = [&](size_t n, const std::string& what) {
    e.problems.push_back("line " + std::to_string(n) + ": " + what);
  };
  if (!text.empty() && text.back() != '\n') e.problems.push_back("no newline at the end");
  std::istringstream in(text);
  std::string line;
  for (size_t n = 1; std::getline(in, line); n++) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream words(line);
      std::string hash, keyword, name;
      words >> hash >> keyword >> name;
      if (keyword != "HELP" && keyword != "TYPE") continue;  // a plain comment
      if (!std::regex_match(name, kMetricName)) problem(n, "bad name in " + keyword);
      if (finished.count(name) || current == name) {
        problem(n, keyword + " of " + name + " after its samples");
      }
      std::string rest;
      std::getline(words, rest);
      if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
      auto& slot = keyword == "HELP" ? e.helps : e.types;
      if (!slot.emplace(name, rest).second) problem(n, "second " + keyword + " for " + name);
      if (keyword == "TYPE") {
        static const std::set<std::string> known = {"counter", "gauge", "histogram", "summary",
                                                    "untyped"};
        if (!known.count(rest)) problem(n, "unknown type '" + rest + "'");
      }
      continue;
    }
    Sample s;
    if (auto bad = parse_sample(line, s); !bad.empty()) {
      problem(n, bad + " in: " + line);
      continue;
    }
    const std::string family = family_of(s.name, e.types);
    if (family != current) {
      if (!current.empty()) finished.insert(current);
      if (finished.count(family)) problem(n, "family " + family + " is not contiguous");
      current = family;
    }
    if (!e.types.count(family)) problem(n, "sample of " + family + " without TYPE");
    std::string key = s.name;
    for (const auto& [k, v] : s.labels) key += "|" + k + "=" + v;
    if (!series.insert(key).second) problem(n, "repeated series: " + line);
    double v = 0;
    parse_number(s.value_text, v);
    e.samples[line.substr(0, line.rfind(' '))] = v;
    const std::string type = e.types.count(family) ? e.types.at(family) : "";
    const std::string total = "_total";
    if (type == "counter" && (family.size() <= total.size() ||
                              family.compare(family.size() - total.size(), total.size(), total))) {
      problem(n, "counter " + family + " does not end in _total");
    }
    if (type == "histogram") {
      std::string group = family;
      for (const auto& [k, val] : s.labels) {
        if (k != "le") group += "|" + k + "=" + val;
      }
      if (s.name == family + "_bucket") {
        double le = 0;
        if (!s.labels.count("le") || !parse_number(s.labels.at("le"), le)) {
          problem(n, "bucket without a numeric le");
        } else {
          buckets[group].push_back({le, v});
        }
      } else if (s.name == family + "_count") {
        counts[group] = v;
      }
    }
  }
  for (const auto& [group, list] : buckets) {
    for (size_t i = 1; i < list.size(); i++) {
      if (list[i].first <= list[i - 1].first) e.problems.push_back(group + ": le not ascending");
      if (list[i].second < list[i - 1].second) e.problems.push_back(group + ": not cumulative");
    }
    if (list.empty() || !std::isinf(list.back().first)) {
      e.problems.push_back(group + ": no +Inf bucket");
    } else if (!counts.count(group) || counts.at(group) != list.back().second) {
      e.problems.push_back(group + ": _count differs from the +Inf bucket");
    }
  }
  return e;
}

}  // namespace sovdev::testing
