// The seam between the agent's state machine and its maintenance windows
// (docs/design-rollouts.md, "Maintenance windows").
//
// The daemon asks the gate before it applies a version other than the one applied: a new
// current version, a rollout's version, a revert. It does not ask for the drift correction of
// the applied version, for the automatic rollback after a failed apply, or for the version of a
// running rollout with `ignore_windows`. When the gate is closed the version stays fetched and
// waits; the status says "waiting for window (opens <local time>)" with window_opens_at and
// window_digest, and the daemon's next_tick_ms() wakes it at `opens_at` to ask again.
//
// The daemon hands the gate the windows of its channel's catalog whose selector matches this
// agent (labels and id, bundles/rollout_rules.hpp); the gate adds the config's own [[window]]
// tables (agent/config.hpp WindowConfig) and decides: deny wins, and without any allow window
// everything outside the deny windows is open.
//
// The real gate is built from platform/windows (cron schedules, IANA zones) in cmd_run.cpp and
// given to the daemon through DaemonSettings::window_gate. Until then the setting stays null,
// which means always open. Tests give a fake.
#pragma once

#include <cstdint>
#include <vector>

#include "sovdev.pb.h"

namespace sovdev::agent::rollout {

struct WindowVerdict {
  bool open = true;
  // When closed: the next opening, unix seconds; 0 when the gate cannot tell (the daemon then
  // asks again a minute later).
  int64_t opens_at = 0;
};

class WindowGate {
 public:
  virtual ~WindowGate() = default;
  // Whether a change of version may start at `now` (unix seconds). `catalog_windows`: the
  // catalog's windows that apply to this agent, already matched by selector.
  [[nodiscard]] virtual WindowVerdict at(
      int64_t now, const std::vector<pb::MaintenanceWindow>& catalog_windows) const = 0;
};

}  // namespace sovdev::agent::rollout
