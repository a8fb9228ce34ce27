#include "agent/rollout/tz_window_gate.hpp"

#include <spdlog/spdlog.h>

#include "platform/windows/policy.hpp"

namespace sovdev::agent::rollout {

Expected<std::shared_ptr<const TzWindowGate>> TzWindowGate::make(
    const std::vector<WindowConfig>& config) {
  std::vector<windows::Window> own;
  for (size_t i = 0; i < config.size(); ++i) {
    const auto& c = config[i];
    auto w = windows::parse_window(c.kind, c.schedule, c.duration, c.zone);
    if (!w) return std::move(w.error()).context("[[window]] " + std::to_string(i + 1));
    own.push_back(std::move(*w));
  }
  return std::shared_ptr<const TzWindowGate>(new TzWindowGate(std::move(own)));
}

WindowVerdict TzWindowGate::at(int64_t now,
                               const std::vector<pb::MaintenanceWindow>& catalog_windows) const {
  std::vector<windows::Window> all = own_;
  for (size_t i = 0; i < catalog_windows.size(); ++i) {
    auto w = windows::parse_window(catalog_windows[i]);
    if (!w) {
      spdlog::warn("catalog window {} cannot be read ({}): no version change until it can", i + 1,
                   w.error().message);
      return {false, 0};
    }
    all.push_back(std::move(*w));
  }
  const windows::WindowSet set(std::move(all));
  const windows::sys_seconds t{std::chrono::seconds(now)};
  if (set.open_at(t)) return {true, 0};
  const auto next = set.next_open(t);
  return {false, next ? next->time_since_epoch().count() : 0};
}

}  // namespace sovdev::agent::rollout
