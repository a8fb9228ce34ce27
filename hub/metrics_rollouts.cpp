// /metrics for rollouts: sovdev_hub_rollout_agents{rollout,channel,stack,wave,state} counts each
// wave's agents by phase as the gates see them, sovdev_hub_rollout_state{...,state} is 1 for the
// state the rollout is in. Only each stack's newest rollout: older ones are history, and a
// series per rollout ever made would grow without end.
#include <string>

#include "hub/metrics.hpp"
#include "hub/rollout/view.hpp"

namespace sovdev::hub::metrics {

Status render_rollouts(Writer& w, store::Database& db, std::int64_t now) {
  SOVDEV_ASSIGN(const auto views, rollout::load_current_rollouts(db, now));
  w.family("sovdev_hub_rollout_agents", Type::gauge,
           "Agents of each wave of each stack's newest rollout, by state: healthy, failed, "
           "pending, offline, waiting_window.");
  for (const auto& v : views) {
    const std::string id = std::to_string(v.row.id);
    for (const auto& wave : v.counts.waves) {
      const std::pair<const char*, std::uint32_t> phases[] = {
          {"healthy", wave.healthy},
          {"failed", wave.failed},
          {"pending", wave.pending},
          {"offline", wave.offline},
          {"waiting_window", wave.waiting_window}};
      for (const auto& [state, n] : phases) {
        w.sample({{"rollout", id},
                  {"channel", v.row.channel},
                  {"stack", v.row.stack},
                  {"wave", wave.name},
                  {"state", state}},
                 std::uint64_t{n});
      }
    }
  }
  w.family("sovdev_hub_rollout_admitted_waves", Type::gauge,
           "Waves opened so far of each stack's newest rollout.");
  for (const auto& v : views) {
    w.sample(
        {{"rollout", std::to_string(v.row.id)}, {"channel", v.row.channel}, {"stack", v.row.stack}},
        std::uint64_t{v.row.current_wave} + 1);
  }
  w.family("sovdev_hub_rollout_state", Type::gauge,
           "1 for the state each stack's newest rollout is in: running, paused, aborted, "
           "completed.");
  for (const auto& v : views) {
    const std::string id = std::to_string(v.row.id);
    for (auto s : {store::RolloutState::running, store::RolloutState::paused,
                   store::RolloutState::aborted, store::RolloutState::completed}) {
      w.sample({{"rollout", id},
                {"channel", v.row.channel},
                {"stack", v.row.stack},
                {"state", store::rollout_state_name(s)}},
               std::uint64_t{v.row.state == s ? 1u : 0u});
    }
  }
  return {};
}

}  // namespace sovdev::hub::metrics
