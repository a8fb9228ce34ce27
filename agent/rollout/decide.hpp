// What the agent runs of one catalog entry (docs/design-rollouts.md, "Agent"): the pure rule
// the daemon's plan() follows, with everything it looks up in agent.db handed in.
//
// - Revert: the last good version is a rollout's, an open mark of that rollout names the
//   pre-rollout last good, and either the catalog aborted that rollout with `revert` or the
//   running version is revoked: the goal is the mark's pre-rollout last good. This is the only
//   goal below what the agent runs; the daemon never goes down for anything else.
// - Admitted: the entry's rollout (running, built for this arch, not revoked) admits the agent
//   (sovdev::rollout::admits): the goal is the rollout's version. An agent that runs it already
//   keeps it while the rollout is paused or aborted without revert.
// - Otherwise the entry's version, unless it is revoked (then no goal, and a note).
// - Prefetch (config [rollouts] prefetch): an agent that runs the entry's version and is not
//   admitted to a running rollout fetches the rollout's version, never applies it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "bundles/rollout_rules.hpp"
#include "sovdev.pb.h"

namespace sovdev::agent::rollout {

using Labels = sovdev::rollout::Labels;

struct Held {
  uint64_t version = 0;
  std::string digest;
};

enum class GoalKind { current, rollout, revert };

struct Goal {
  GoalKind kind = GoalKind::current;
  uint64_t version = 0;
  std::string digest;
  uint64_t rollout_id = 0;      // rollout and revert: the rollout concerned
  bool ignore_windows = false;  // a running rollout's version that skips the windows
};

// An open rollout mark whose rollout version is the agent's last good (store::RolloutMark).
struct OpenMark {
  uint64_t rollout_id = 0;
  std::string digest;
  std::optional<Held> prior;
};

struct Inputs {
  const Labels& labels;
  std::string_view agent_id;
  std::string_view arch;
  std::optional<Held> last_good;
  std::optional<OpenMark> mark;
  std::function<bool(std::string_view digest)> revoked;
  bool prefetch = false;
};

struct Decision {
  std::optional<Goal> want;      // what to run; none: nothing this entry names may run
  std::optional<Goal> prefetch;  // fetch, never apply
  std::string note;              // why the agent is not where the catalog says (revocations)
};

Decision decide(const pb::CatalogEntry& entry, const Inputs& in);

}  // namespace sovdev::agent::rollout
