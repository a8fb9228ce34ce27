// The config file's reader, shared by agent/config.cpp and agent/config_rollout.cpp: the keys
// each table may have, and a Reader that collects "FILE:LINE: key: what is wrong" problems while
// the tables are read. Internal to the agent's config parsing (it exposes toml++).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// Header-only, in the config's two files only: parse once at startup, drop the tree. No
// exceptions (errors come back as values), no formatters (the settings are printed by hand).
#define TOML_EXCEPTIONS 0
#define TOML_ENABLE_FORMATTERS 0
#include <toml++/toml.h>

#include "common/error.hpp"

namespace sovdev::agent::config_detail {

namespace fsys = std::filesystem;
using std::chrono::seconds;

inline constexpr size_t kMaxProblems = 20;

// Every key, by table ("" is the top level): unknown keys are refused, with a hint.
inline const std::map<std::string_view, std::vector<std::string_view>>& known_keys() {
  static const std::map<std::string_view, std::vector<std::string_view>> keys = {
      {"",
       {"agent_id", "channels", "stacks", "state_dir", "trust_root", "arch", "broker", "sync",
        "apply", "labels", "rollouts", "window", "images"}},
      {"broker",
       {"urls", "topic_prefix", "username", "password_file", "ca_file", "cert_file", "key_file",
        "keepalive_seconds"}},
      {"sync",
       {"window", "request_timeout_seconds", "backoff_min_seconds", "backoff_max_seconds",
        "status_interval_seconds"}},
      {"apply",
       {"target", "dir", "command", "kubeconfig", "context", "reconcile_interval_seconds",
        "health_timeout_seconds"}},
      {"rollouts", {"prefetch"}},
      {"images", {"quota"}},
      {"window", {"kind", "schedule", "duration", "zone"}},
  };
  return keys;
}

inline size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

inline std::string hint_for(std::string_view table, std::string_view key) {
  for (const auto& k : known_keys().at(table)) {
    if (edit_distance(k, key) <= 2) return ": did you mean '" + std::string(k) + "'?";
  }
  for (const size_t distance : {size_t{0}, size_t{2}}) {
    for (const auto& [other, keys] : known_keys()) {
      if (other == table) continue;
      for (const auto& k : keys) {
        if (edit_distance(k, key) > distance) continue;
        const std::string where =
            other.empty() ? "at the top, before any [table]" : "in [" + std::string(other) + "]";
        if (distance == 0) return ": it belongs " + where;
        return ": did you mean '" + std::string(k) + "' " + where + "?";
      }
    }
  }
  return "";
}

inline const char* type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number with a fraction";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    default: return "a date or time";
  }
}

class Reader {
 public:
  Reader(std::string_view name, fsys::path base) : name_(name), base_(std::move(base)) {}

  void problem(uint32_t line, const std::string& key, const std::string& what) {
    if (problems_.size() >= kMaxProblems) return;
    std::string out = name_;
    if (line > 0) out += ":" + std::to_string(line);
    out += ": ";
    if (!key.empty()) out += key + ": ";
    problems_.emplace_back(line, out + what);
  }

  Status result() const {
    if (problems_.empty()) return {};
    // In file order, as a reader fixes them; what has no line (a missing key) first.
    auto sorted = problems_;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string message;
    for (const auto& p : sorted) message += (message.empty() ? "" : "\n") + p.second;
    if (problems_.size() >= kMaxProblems) message += "\n" + name_ + ": (stopped after 20 problems)";
    return make_error(Errc::invalid, message);
  }

  static uint32_t line_of(const toml::node& node) { return node.source().begin.line; }

  std::string dotted(std::string_view table, std::string_view key) const {
    return table.empty() ? std::string(key) : std::string(table) + "." + std::string(key);
  }

  // Refuses keys the table does not have; returns the table, or nullptr (missing or not one).
  const toml::table* table(const toml::table& parent, std::string_view key) {
    const toml::node* node = parent.get(key);
    if (node == nullptr) return nullptr;
    if (!node->is_table()) {
      problem(line_of(*node), std::string(key),
              std::string("must be a table ([") + std::string(key) + "]), not " + type_name(*node));
      return nullptr;
    }
    check_keys(*node->as_table(), key);
    return node->as_table();
  }

  void check_keys(const toml::table& t, std::string_view table) {
    const auto& known = known_keys().at(table);
    for (auto&& [key, node] : t) {
      if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
      const uint32_t line = key.source().begin.line ? key.source().begin.line : line_of(node);
      const std::string what = node.is_table() ? "unknown table [" + dotted(table, key.str()) + "]"
                                               : "unknown key '" + dotted(table, key.str()) + "'";
      problem(line, "", what + hint_for(table, key.str()));
    }
  }

  bool string(const toml::table* t, std::string_view table, std::string_view key,
              std::string& out) {
    const toml::node* node = t ? t->get(key) : nullptr;
    if (node == nullptr) return false;
    lines_[dotted(table, key)] = line_of(*node);
    if (!node->is_string()) {
      problem(line_of(*node), dotted(table, key),
              std::string("must be a string, not ") + type_name(*node));
      return false;
    }
    out = node->as_string()->get();
    return true;
  }

  bool strings(const toml::table* t, std::string_view table, std::string_view key,
               std::vector<std::string>& out) {
    const toml::node* node = t ? t->get(key) : nullptr;
    if (node == nullptr) return false;
    lines_[dotted(table, key)] = line_of(*node);
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      problem(line_of(*node), dotted(table, key),
              std::string("must be an array of strings, not ") + type_name(*node));
      return false;
    }
    out.clear();
    for (const toml::node& item : *array) {
      if (!item.is_string()) {
        problem(line_of(item), dotted(table, key),
                std::string("must hold strings only, not ") + type_name(item));
        return false;
      }
      out.push_back(item.as_string()->get());
    }
    return true;
  }

  bool boolean(const toml::table* t, std::string_view table, std::string_view key, bool& out) {
    const toml::node* node = t ? t->get(key) : nullptr;
    if (node == nullptr) return false;
    lines_[dotted(table, key)] = line_of(*node);
    if (!node->is_boolean()) {
      problem(line_of(*node), dotted(table, key),
              std::string("must be true or false, not ") + type_name(*node));
      return false;
    }
    out = node->as_boolean()->get();
    return true;
  }

  bool integer(const toml::table* t, std::string_view table, std::string_view key, int64_t min,
               int64_t max, int64_t& out) {
    const toml::node* node = t ? t->get(key) : nullptr;
    if (node == nullptr) return false;
    lines_[dotted(table, key)] = line_of(*node);
    if (!node->is_integer()) {
      problem(line_of(*node), dotted(table, key),
              std::string("must be a whole number, not ") + type_name(*node));
      return false;
    }
    const int64_t value = node->as_integer()->get();
    if (value < min || value > max) {
      problem(line_of(*node), dotted(table, key),
              std::to_string(value) + " is out of range " + std::to_string(min) + ".." +
                  std::to_string(max));
      return false;
    }
    out = value;
    return true;
  }

  void seconds_in(const toml::table* t, std::string_view table, std::string_view key, int64_t min,
                  int64_t max, seconds& out) {
    int64_t value = 0;
    if (integer(t, table, key, min, max, value)) out = seconds(value);
  }

  void required(bool present, const std::string& key, const std::string& example) {
    if (!present) problem(0, "", key + " is required, e.g. " + example);
  }

  uint32_t line(const std::string& key) const {
    const auto it = lines_.find(key);
    return it == lines_.end() ? 0 : it->second;
  }

  // Relative to the config file's folder.
  std::string resolve(const std::string& path) const {
    if (path.empty()) return path;
    const fsys::path p(path);
    return (p.is_absolute() ? p : base_ / p).lexically_normal().string();
  }

  void must_be_file(const std::string& key, const std::string& path, const std::string& advice) {
    std::error_code ec;
    const auto status = fsys::status(path, ec);
    if (!fsys::exists(status)) {
      problem(line(key), key, path + " does not exist: " + advice);
    } else if (!fsys::is_regular_file(status)) {
      problem(line(key), key, path + " is not a file");
    } else if (::access(path.c_str(), R_OK) != 0) {
      problem(line(key), key,
              path +
                  " cannot be read by this user: run as the user the agent runs as, or fix "
                  "the file's permissions");
    }
  }

 private:
  std::string name_;
  fsys::path base_;
  std::vector<std::pair<uint32_t, std::string>> problems_;  // line, message
  std::map<std::string, uint32_t> lines_;
};

}  // namespace sovdev::agent::config_detail

namespace sovdev::agent {

struct AgentConfig;

namespace config_detail {
// [labels], [rollouts] and [[window]] (agent/config_rollout.cpp).
void read_rollout_config(Reader& r, const toml::table& root, AgentConfig& c);
// [images] (agent/config_images.cpp).
void read_images_config(Reader& r, const toml::table& root, AgentConfig& c);
std::string describe_images_config(const AgentConfig& c);
}  // namespace config_detail

}  // namespace sovdev::agent
