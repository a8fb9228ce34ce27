#include "hub/rollout/serve_rollouts.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "hub/rollout/engine.hpp"
#include "platform/store/catalog_inputs.hpp"
#include "platform/store/hub_store.hpp"
#include "platform/store/transaction.hpp"

namespace sovdev::hub::rollout {
namespace {

// Evaluates every running rollout against the fleet; true when one of them takes a step.
Expected<bool> any_step(store::Database& db, std::int64_t now) {
  SOVDEV_ASSIGN(const auto running, store::Rollouts(db).running());
  if (running.empty()) return false;
  SOVDEV_ASSIGN(const auto records, store::FleetStatus(db).list());
  const auto agents = samples_of(records);
  for (const auto& r : running) {
    if (evaluate(r, agents, now).next.step != Step::none) return true;
  }
  return false;
}

}  // namespace

Status RolloutDriver::run_gates(std::int64_t now) {
  SOVDEV_ASSIGN(const std::int64_t changed, store::all_catalog_changes(db_));
  if (!dirty_ && changed == rollouts_changed_ && now < next_pass_) return {};
  dirty_ = false;
  rollouts_changed_ = changed;
  next_pass_ = now + kQuietPass;
  // Most ticks take no step: decided without the write lock, so the CLI and the status writes
  // never wait on a pass that changes nothing.
  SOVDEV_ASSIGN(const bool stepping, any_step(db_, now));
  if (!stepping) return {};
  // Evaluated again under the lock: the operator may have paused or aborted one meanwhile, and
  // a step must not overwrite that.
  return store::transaction(db_, [&]() -> Status {
    store::Rollouts rollouts(db_);
    SOVDEV_ASSIGN(auto running, rollouts.running());
    SOVDEV_ASSIGN(const auto records, store::FleetStatus(db_).list());
    const auto agents = samples_of(records);
    for (auto& r : running) {
      const Evaluation e = evaluate(r, agents, now);
      if (e.next.step == Step::none) continue;
      apply(r, e.next, now);
      SOVDEV_TRY(rollouts.update_progress(r));
      if (e.next.step == Step::complete) {
        SOVDEV_TRY(store::StackHolds(db_).set({r.channel, r.stack, r.version, now}));
      }
      steps_++;
      const std::string& wave =
          r.waves[std::min<std::size_t>(r.current_wave, r.waves.size() - 1)].name;
      spdlog::info("rollout {} of {}/{}@{}: {}{}{}", r.id, r.channel, r.stack, r.version,
                   step_name(e.next.step), e.next.step == Step::open_next ? " " + wave : "",
                   e.next.reason.empty() ? "" : ": " + e.next.reason);
    }
    return {};
  });
}

Expected<std::vector<std::string>> RolloutDriver::tick(std::int64_t now) {
  if (auto gates = run_gates(now); !gates) {
    // The catalogs still go out for the operator's changes; the gates run again next tick.
    spdlog::warn("rollout gates: {}", gates.error().message);
  }
  SOVDEV_ASSIGN(const auto channels, store::HubBundles(db_).channels());
  std::vector<std::string> out;
  for (const auto& channel : channels) {
    SOVDEV_ASSIGN(const std::int64_t count, store::catalog_change_count(db_, channel));
    const auto seen = seen_.find(channel);
    // Never signed by this process: sign once if anything was ever changed, since a change may
    // have come while no hub ran.
    if (seen != seen_.end() ? seen->second == count : count == 0) continue;
    pending_[channel] = count;
    out.push_back(channel);
  }
  return out;
}

std::int64_t RolloutDriver::pending_count(const std::string& channel) const {
  const auto it = pending_.find(channel);
  return it == pending_.end() ? 0 : it->second;
}

}  // namespace sovdev::hub::rollout
