// Rollouts as people and dashboards read them: each with its waves' counts as the gates see
// them now (hub/rollout/engine.hpp), for `sovdev-hub rollout status`, `sovdev-hub status` and
// /metrics.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hub/rollout/engine.hpp"

namespace sovdev::hub::rollout {

struct RolloutView {
  store::RolloutRow row;
  Evaluation counts;
};

// The newest rollout of each channel's stack (the one the catalog may list), by id.
[[nodiscard]] Expected<std::vector<RolloutView>> load_current_rollouts(store::Database& db,
                                                                       std::int64_t now);
// One rollout; Errc::not_found when there is none of that id.
[[nodiscard]] Expected<RolloutView> load_rollout(store::Database& db, std::uint64_t id,
                                                 std::int64_t now);

nlohmann::json rollout_json(const RolloutView& view);
void print_rollout(std::FILE* out, const RolloutView& view);
// One line: id, channel/stack, base -> version, state, current wave.
void print_rollout_line(std::FILE* out, const store::RolloutRow& row);

}  // namespace sovdev::hub::rollout
