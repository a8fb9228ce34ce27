#include "platform/windows/policy.hpp"

namespace sovdev::windows {

Expected<Window> parse_window(const pb::MaintenanceWindow& window) {
  return parse_window(window.deny() ? "deny" : "allow", window.schedule(), window.duration(),
                      window.zone());
}

Expected<WindowSet> agent_windows(const std::vector<pb::MaintenanceWindow>& config,
                                  const pb::Catalog* catalog, const rollout::Labels& labels,
                                  std::string_view agent_id) {
  std::vector<Window> all;
  for (size_t i = 0; i < config.size(); ++i) {
    auto w = parse_window(config[i]);
    if (!w) return std::move(w.error()).context("config window " + std::to_string(i + 1));
    all.push_back(std::move(*w));
  }
  if (catalog) {
    for (int i = 0; i < catalog->windows_size(); ++i) {
      const auto& cw = catalog->windows(i);
      const std::string what = "catalog " + catalog->channel() + " window " + std::to_string(i + 1);
      auto selector = rollout::parse_selector(cw.selector());
      if (!selector) return std::move(selector.error()).context(what);
      if (!selector->matches(labels, agent_id)) continue;
      auto w = parse_window(cw);
      if (!w) return std::move(w.error()).context(what);
      all.push_back(std::move(*w));
    }
  }
  return WindowSet(std::move(all));
}

}  // namespace sovdev::windows
