// serve's side of rollouts (docs/design-rollouts.md): on each tick it runs the gates of every
// running rollout and writes the steps they take (a wave opened, completed with the hold moved,
// aborted) in one transaction, and it tells serve which channels' catalogs to sign again:
// those whose change counter moved since it last looked, whether serve's own steps moved it or
// the operator's commands did. Everything it knows is in hub.db, so a restarted hub goes on
// where it stopped (and signs each channel's catalog once, in case a change came meanwhile).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "platform/store/sqlite.hpp"

namespace sovdev::hub::rollout {

class RolloutDriver {
 public:
  explicit RolloutDriver(store::Database& db) : db_(db) {}

  // Runs the gates, then returns the channels whose catalogs need signing. The caller reports
  // each one signed with signed_at(); one that failed is returned again on the next tick.
  // The gates read every agent's status: they run when a status was recorded since the last
  // pass (status_recorded), when a rollout changed, and at least every kQuietPass seconds for
  // the deadlines (--within, --pause-between); a quiet fleet costs a pass every few seconds,
  // not one a tick.
  [[nodiscard]] Expected<std::vector<std::string>> tick(std::int64_t now);
  void status_recorded() { dirty_ = true; }
  static constexpr std::int64_t kQuietPass = 5;
  void signed_at(const std::string& channel, std::int64_t count) { seen_[channel] = count; }
  // The change count tick() saw for a channel it returned: what to pass to signed_at().
  std::int64_t pending_count(const std::string& channel) const;
  std::uint64_t steps_taken() const { return steps_; }

 private:
  [[nodiscard]] Status run_gates(std::int64_t now);

  store::Database& db_;
  std::map<std::string, std::int64_t> seen_;     // per channel: the count last signed
  std::map<std::string, std::int64_t> pending_;  // per channel: the count tick() returned it at
  std::uint64_t steps_ = 0;
  bool dirty_ = true;
  std::int64_t next_pass_ = 0;          // unix seconds: the next pass even without a status
  std::int64_t rollouts_changed_ = -1;  // the rollouts' change count at the last pass
};

}  // namespace sovdev::hub::rollout
