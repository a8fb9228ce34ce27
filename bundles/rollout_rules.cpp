#include "bundles/rollout_rules.hpp"

#include <algorithm>
#include <cctype>

#include "bundles/hash.hpp"
#include "bundles/messages.hpp"

namespace sovdev::rollout {
namespace {

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool label_chars(std::string_view s, bool slash) {
  if (s.empty() || s.size() > kMaxLabelBytes) return false;
  if (!is_alnum(s.front()) || !is_alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return is_alnum(c) || c == '-' || c == '_' || c == '.' || (slash && c == '/');
  });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Error bad_selector(std::string_view text, const std::string& why) {
  return make_error(Errc::invalid, "selector \"" + std::string(text.substr(0, 80)) + "\": " + why);
}

// A value the requirement on `key` may compare with: agent ids for `id`, label values else.
bool valid_value_for(std::string_view key, std::string_view value) {
  return key == kIdKey ? valid_agent_id(value) : valid_label_value(value);
}

// Splits at commas outside parentheses.
Expected<std::vector<std::string_view>> split_requirements(std::string_view text) {
  std::vector<std::string_view> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    const char c = i < text.size() ? text[i] : ',';
    if (c == '(') {
      if (++depth > 1) return bad_selector(text, "nested parentheses");
    } else if (c == ')') {
      if (--depth < 0) return bad_selector(text, "a ')' without its '('");
    } else if (c == ',' && depth == 0) {
      parts.push_back(trim(text.substr(start, i - start)));
      start = i + 1;
    }
  }
  if (depth != 0) return bad_selector(text, "a '(' without its ')'");
  return parts;
}

Expected<Requirement> parse_set(std::string_view whole, std::string_view key, Requirement::Op op,
                                std::string_view rest) {
  rest = trim(rest);
  if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')') {
    return bad_selector(whole, "expected a list in parentheses after " + std::string(key) +
                                   (op == Requirement::Op::in ? " in" : " notin"));
  }
  Requirement r{std::string(key), op, {}};
  std::string_view list = rest.substr(1, rest.size() - 2);
  size_t start = 0;
  for (size_t i = 0; i <= list.size(); ++i) {
    if (i < list.size() && list[i] != ',') continue;
    const std::string_view value = trim(list.substr(start, i - start));
    if (!valid_value_for(key, value)) {
      return bad_selector(
          whole, "bad value \"" + std::string(value.substr(0, 80)) + "\" for " + std::string(key));
    }
    r.values.emplace_back(value);
    start = i + 1;
  }
  if (r.values.size() > kMaxValuesPerRequirement) {
    return bad_selector(whole, "more than " + std::to_string(kMaxValuesPerRequirement) +
                                   " values for " + std::string(key));
  }
  return r;
}

Expected<Requirement> parse_requirement(std::string_view whole, std::string_view part) {
  using Op = Requirement::Op;
  if (part.empty()) return bad_selector(whole, "an empty requirement");
  if (part.front() == '!') {
    const std::string_view key = trim(part.substr(1));
    if (!valid_label_key(key)) return bad_selector(whole, "bad key after '!'");
    return Requirement{std::string(key), Op::not_exists, {}};
  }
  if (const size_t at = part.find_first_of("=!"); at != std::string_view::npos) {
    const std::string_view key = trim(part.substr(0, at));
    std::string_view rest = part.substr(at);
    Op op = Op::equals;
    if (rest.starts_with("==")) {
      rest.remove_prefix(2);
    } else if (rest.starts_with("!=")) {
      op = Op::not_equals;
      rest.remove_prefix(2);
    } else if (rest.starts_with("=")) {
      rest.remove_prefix(1);
    } else {
      return bad_selector(whole, "'!' must start a requirement or come before '='");
    }
    if (!valid_label_key(key)) {
      return bad_selector(whole, "bad key \"" + std::string(key.substr(0, 80)) + "\"");
    }
    const std::string_view value = trim(rest);
    if (!valid_value_for(key, value)) {
      return bad_selector(
          whole, "bad value \"" + std::string(value.substr(0, 80)) + "\" for " + std::string(key));
    }
    return Requirement{std::string(key), op, {std::string(value)}};
  }
  // "key in (...)", "key notin (...)" or a bare key.
  const size_t space = part.find_first_of(" \t");
  const std::string_view key = part.substr(0, space);
  if (!valid_label_key(key)) {
    return bad_selector(whole, "bad key \"" + std::string(key.substr(0, 80)) + "\"");
  }
  if (space == std::string_view::npos) return Requirement{std::string(key), Op::exists, {}};
  const std::string_view rest = trim(part.substr(space));
  if (rest.starts_with("notin") && (rest.size() == 5 || !is_alnum(rest[5]))) {
    return parse_set(whole, key, Op::not_in, rest.substr(5));
  }
  if (rest.starts_with("in") && (rest.size() == 2 || !is_alnum(rest[2]))) {
    return parse_set(whole, key, Op::in, rest.substr(2));
  }
  return bad_selector(whole, "expected =, !=, in or notin after " + std::string(key));
}

}  // namespace

bool valid_label_key(std::string_view key) {
  return label_chars(key, true);
}

bool valid_label_value(std::string_view value) {
  return value.empty() || label_chars(value, false);
}

Status check_labels(const Labels& labels) {
  if (labels.size() > kMaxLabels) {
    return make_error(Errc::invalid, "more than " + std::to_string(kMaxLabels) + " labels");
  }
  for (const auto& [key, value] : labels) {
    if (key == kIdKey) {
      return make_error(Errc::invalid,
                        "label \"id\" is reserved: selectors match the agent's id by that name");
    }
    if (!valid_label_key(key)) {
      return make_error(Errc::invalid,
                        "label key \"" + key.substr(0, 80) +
                            "\": 1-63 of A-Z a-z 0-9 . _ - /, starting and ending with a letter "
                            "or digit");
    }
    if (!valid_label_value(value)) {
      return make_error(Errc::invalid,
                        "label " + key + ": value \"" + value.substr(0, 80) +
                            "\": 0-63 of A-Z a-z 0-9 . _ -, starting and ending with a letter "
                            "or digit");
    }
  }
  return {};
}

Expected<Selector> parse_selector(std::string_view text) {
  if (text.size() > kMaxSelectorBytes) {
    return bad_selector(text, "longer than " + std::to_string(kMaxSelectorBytes) + " bytes");
  }
  Selector s;
  const std::string_view body = trim(text);
  if (body.empty() || body == "*") return s;
  SOVDEV_ASSIGN(auto parts, split_requirements(body));
  if (parts.size() > kMaxRequirements) {
    return bad_selector(text, "more than " + std::to_string(kMaxRequirements) + " requirements");
  }
  for (const auto part : parts) {
    SOVDEV_ASSIGN(auto r, parse_requirement(body, part));
    s.all_.push_back(std::move(r));
  }
  return s;
}

bool Selector::matches(const Labels& labels, std::string_view agent_id) const {
  using Op = Requirement::Op;
  return std::all_of(all_.begin(), all_.end(), [&](const Requirement& r) {
    const std::string* value = nullptr;
    std::string id;
    if (r.key == kIdKey) {
      id = std::string(agent_id);
      value = &id;
    } else if (auto it = labels.find(r.key); it != labels.end()) {
      value = &it->second;
    }
    const auto listed = [&] {
      return value && std::find(r.values.begin(), r.values.end(), *value) != r.values.end();
    };
    switch (r.op) {
      case Op::equals:
      case Op::in: return listed();
      case Op::not_equals:
      case Op::not_in: return !listed();
      case Op::exists: return value != nullptr;
      case Op::not_exists: return value == nullptr;
    }
    return false;
  });
}

std::string Selector::text() const {
  using Op = Requirement::Op;
  if (all_.empty()) return "*";
  std::string out;
  for (const auto& r : all_) {
    if (!out.empty()) out += ",";
    const auto list = [&] {
      std::string l = "(";
      for (size_t i = 0; i < r.values.size(); ++i) l += (i ? "," : "") + r.values[i];
      return l + ")";
    };
    switch (r.op) {
      case Op::equals: out += r.key + "=" + r.values.front(); break;
      case Op::not_equals: out += r.key + "!=" + r.values.front(); break;
      case Op::in: out += r.key + " in " + list(); break;
      case Op::not_in: out += r.key + " notin " + list(); break;
      case Op::exists: out += r.key; break;
      case Op::not_exists: out += "!" + r.key; break;
    }
  }
  return out;
}

bool in_share(uint64_t rollout_id, std::string_view agent_id, uint32_t percent) {
  if (percent == 0) return false;
  if (percent >= 100) return true;
  std::string input = "sovdev-rollout-share";
  input.push_back('\0');
  input += std::to_string(rollout_id);
  input.push_back('\0');
  input += agent_id;
  const std::string digest = sha256(input);
  uint64_t h = 0;  // the first 4 bytes, big-endian: h · 100 < percent · 2^32 fits in 64 bits
  for (size_t i = 0; i < 4; ++i) h = (h << 8) | static_cast<unsigned char>(digest[i]);
  return h * 100 < static_cast<uint64_t>(percent) << 32;
}

bool wave_admits(uint64_t rollout_id, const pb::RolloutWave& wave, const Labels& labels,
                 std::string_view agent_id) {
  auto selector = parse_selector(wave.selector());
  return selector && selector->matches(labels, agent_id) &&
         in_share(rollout_id, agent_id, wave.percent());
}

bool admits(const pb::CatalogRollout& rollout, const Labels& labels, std::string_view agent_id) {
  if (rollout.state() != pb::CatalogRollout::RUNNING) return false;
  return std::any_of(
      rollout.admitted().begin(), rollout.admitted().end(),
      [&](const pb::RolloutWave& w) { return wave_admits(rollout.id(), w, labels, agent_id); });
}

Expected<pb::RolloutWave> parse_wave(std::string_view text) {
  const auto bad = [&](const std::string& why) {
    return make_error(Errc::invalid, "wave \"" + std::string(text.substr(0, 120)) + "\": " + why +
                                         " (NAME:SELECTOR[:PERCENT], e.g. canary:site=lab:10)");
  };
  const size_t first = text.find(':');
  if (first == std::string_view::npos) return bad("no ':' after the name");
  const std::string_view name = text.substr(0, first);
  if (!valid_label_value(name) || name.empty()) return bad("bad name");
  std::string_view rest = text.substr(first + 1);
  uint32_t percent = 100;
  if (const size_t last = rest.rfind(':'); last != std::string_view::npos) {
    std::string_view p = trim(rest.substr(last + 1));
    if (p.ends_with('%')) p.remove_suffix(1);
    if (p.empty() || p.size() > 3 ||
        !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return bad("the percentage is not a number from 1 to 100");
    }
    percent = static_cast<uint32_t>(std::stoul(std::string(p)));
    if (percent < 1 || percent > 100) return bad("the percentage is not a number from 1 to 100");
    rest = rest.substr(0, last);
  }
  SOVDEV_ASSIGN(auto selector, parse_selector(rest));
  pb::RolloutWave wave;
  wave.set_name(std::string(name));
  wave.set_selector(selector.text());
  wave.set_percent(percent);
  return wave;
}

}  // namespace sovdev::rollout
