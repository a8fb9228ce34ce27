// The config's rollout keys (docs/design-rollouts.md): the agent's [labels], [rollouts] and its
// own maintenance windows ([[window]]). Part of agent/config.cpp's parse.
//
// The windows are kept as text and checked with platform/windows (cron schedules, IANA zones),
// the library the running agent evaluates them with (agent/rollout/tz_window_gate.hpp).
#include <string>

#include "agent/config.hpp"
#include "agent/config_reader.hpp"
#include "platform/windows/windows.hpp"

namespace sovdev::agent::config_detail {
namespace {

void read_labels(Reader& r, const toml::table& root, AgentConfig& c) {
  const toml::node* node = root.get("labels");
  if (node == nullptr) return;
  const toml::table* t = node->as_table();
  if (t == nullptr) {
    r.problem(
        Reader::line_of(*node), "labels",
        std::string("must be a table ([labels] site = \"plant-7\"), not ") + type_name(*node));
    return;
  }
  for (auto&& [key, value] : *t) {
    const std::string name = std::string(key.str());
    const uint32_t line =
        key.source().begin.line ? key.source().begin.line : Reader::line_of(value);
    if (!value.is_string()) {
      r.problem(line, "labels." + name, std::string("must be a string, not ") + type_name(value));
      continue;
    }
    const std::string text = value.as_string()->get();
    // One label at a time, so the message names the line of the one that is wrong.
    if (auto ok = sovdev::rollout::check_labels({{name, text}}); !ok) {
      r.problem(line, "labels." + name, ok.error().message);
      continue;
    }
    c.labels.emplace(name, text);
  }
  if (c.labels.size() > sovdev::rollout::kMaxLabels) {
    r.problem(Reader::line_of(*node), "labels",
              std::to_string(c.labels.size()) + " labels: at most " +
                  std::to_string(sovdev::rollout::kMaxLabels) +
                  " (a catalog's selectors need only the few that tell sites apart)");
  }
}

void read_windows(Reader& r, const toml::table& root, AgentConfig& c) {
  const toml::node* node = root.get("window");
  if (node == nullptr) return;
  const toml::array* list = node->as_array();
  if (node->is_integer()) {
    // `window = 16` at the top: the chunk window of [sync], as before [[window]] existed.
    r.problem(Reader::line_of(*node), "", "unknown key 'window': it belongs in [sync]");
    return;
  }
  if (list == nullptr || !list->is_array_of_tables()) {
    r.problem(Reader::line_of(*node), "window",
              "must be [[window]] tables (kind, schedule, duration, zone), not " +
                  std::string(type_name(*node)));
    return;
  }
  size_t index = 0;
  for (const toml::node& item : *list) {
    ++index;
    const toml::table& t = *item.as_table();
    const std::string name = "window[" + std::to_string(index) + "]";
    r.check_keys(t, "window");
    WindowConfig w;
    w.line = Reader::line_of(item);
    struct Field {
      const char* key;
      std::string* value;
      const char* example;
    };
    const Field fields[] = {
        {"kind", &w.kind, "kind = \"allow\" (or \"deny\")"},
        {"schedule", &w.schedule, "schedule = \"0 2 * * *\" (cron: when it opens)"},
        {"duration", &w.duration, "duration = \"4h\""},
        {"zone", &w.zone, "zone = \"Europe/Berlin\""},
    };
    bool whole = true;
    for (const auto& f : fields) {
      if (r.string(&t, name, f.key, *f.value)) continue;
      whole = false;
      // A value of the wrong type was reported by string(); a missing one is reported here.
      if (t.get(f.key) == nullptr) {
        r.problem(w.line, name, std::string(f.key) + " is required, e.g. " + f.example);
      }
    }
    if (!w.kind.empty() && w.kind != "allow" && w.kind != "deny") {
      r.problem(r.line(name + ".kind"), name + ".kind", "'" + w.kind + "' is not allow or deny");
      whole = false;
    }
    if (whole) {
      // Checked here with the library the agent evaluates it with, so check-config and start
      // refuse what could never be enforced.
      if (auto parsed = windows::parse_window(w.kind, w.schedule, w.duration, w.zone); !parsed) {
        r.problem(w.line, name, parsed.error().message);
        continue;
      }
      c.windows.push_back(std::move(w));
    }
  }
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) >= 0x20) out += ch;
  }
  return out + "\"";
}

}  // namespace

void read_rollout_config(Reader& r, const toml::table& root, AgentConfig& c) {
  read_labels(r, root, c);
  const toml::table* t = r.table(root, "rollouts");
  r.boolean(t, "rollouts", "prefetch", c.rollouts.prefetch);
  read_windows(r, root, c);
}

}  // namespace sovdev::agent::config_detail

namespace sovdev::agent {

std::string describe_rollout_config(const AgentConfig& c) {
  using config_detail::quoted;
  std::string out = "\n[labels]";
  if (c.labels.empty()) out += "  # none: only selectors matching every agent (or its id) admit it";
  out += "\n";
  for (const auto& [key, value] : c.labels) out += quoted(key) + " = " + quoted(value) + "\n";
  out += "\n[rollouts]\n";
  out += std::string("prefetch = ") + (c.rollouts.prefetch ? "true" : "false") +
         (c.rollouts.prefetch ? "" : "  # a rollout's version is fetched once admitted") + "\n";
  if (c.windows.empty()) {
    out += "\n# [[window]]: none of its own (the catalog's windows may still apply)\n";
  }
  for (const auto& w : c.windows) {
    out += "\n[[window]]\n";
    out += "kind = " + quoted(w.kind) + "\n";
    out += "schedule = " + quoted(w.schedule) + "\n";
    out += "duration = " + quoted(w.duration) + "\n";
    out += "zone = " + quoted(w.zone) + "\n";
  }
  out += config_detail::describe_images_config(c);
  return out;
}

}  // namespace sovdev::agent
