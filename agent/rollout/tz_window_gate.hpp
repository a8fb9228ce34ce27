// The maintenance windows' gate the running agent uses (agent/rollout/window_gate.hpp): the
// config's [[window]] tables and the catalog's windows for this agent, evaluated by
// platform/windows with the agent's own clock (cron schedules in IANA zones from the system's
// tzdata; deny wins; no allow window means open outside the deny ones).
//
// A catalog window the agent cannot read (the hub checks them with the same parser, so only a
// newer hub's syntax or a damaged catalog) closes the gate rather than being skipped: skipping a
// deny window would apply a version when the site said not to. The status then says the
// opening is unknown and the agent asks again a minute later.
#pragma once

#include <memory>
#include <vector>

#include "agent/config.hpp"
#include "agent/rollout/window_gate.hpp"
#include "common/error.hpp"
#include "platform/windows/windows.hpp"

namespace sovdev::agent::rollout {

class TzWindowGate final : public WindowGate {
 public:
  // The config's windows, parsed once (load_config has checked them already).
  static Expected<std::shared_ptr<const TzWindowGate>> make(
      const std::vector<WindowConfig>& config);

  [[nodiscard]] WindowVerdict at(
      int64_t now, const std::vector<pb::MaintenanceWindow>& catalog_windows) const override;

 private:
  explicit TzWindowGate(std::vector<windows::Window> own) : own_(std::move(own)) {}
  std::vector<windows::Window> own_;
};

}  // namespace sovdev::agent::rollout
