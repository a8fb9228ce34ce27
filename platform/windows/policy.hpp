// The maintenance windows one agent keeps (docs/design-rollouts.md): those of its config, and
// those of its channel's catalog whose selector matches its labels and id. The catalog is
// online-signed, so its windows are the hub's word; the config's are the site's own, and both
// count (a deny of either wins).
#pragma once

#include <string_view>
#include <vector>

#include "bundles/rollout_rules.hpp"
#include "common/error.hpp"
#include "platform/windows/windows.hpp"
#include "sovdev.pb.h"

namespace sovdev::windows {

// A window in the catalog's form (pb::MaintenanceWindow, selector unused) checked and parsed.
Expected<Window> parse_window(const pb::MaintenanceWindow& window);

// The config's windows plus the catalog's that match. An error (Errc::invalid, naming the
// window) when any of them does not parse, or a catalog window's selector does not: the caller
// then holds back new versions as if closed, rather than skip a deny window it cannot read.
Expected<WindowSet> agent_windows(const std::vector<pb::MaintenanceWindow>& config,
                                  const pb::Catalog* catalog, const rollout::Labels& labels,
                                  std::string_view agent_id);

}  // namespace sovdev::windows
