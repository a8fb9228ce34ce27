// The gates of a staged rollout (docs/design-rollouts.md), as pure functions: a rollout row, the
// agents' last statuses and the hub's clock in; per-wave counts and the one step to take out.
// `serve` runs evaluate() on each tick for every running rollout and writes what apply() made
// of the row; `status` and /metrics show the counts. Nothing here reads a clock or a database,
// so the tests drive every rule with made-up statuses and times.
//
// A wave with no agents meets its gate only when an earlier wave had some: a rollout never
// moves on nobody's word (a hub without statuses yet would otherwise open every wave at once).
// An agent's labels are those it reports: a lying agent moves only itself between waves, as it
// could lie about its health. Each agent is counted in the first wave that admits it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bundles/rollout_rules.hpp"
#include "platform/store/hub_store.hpp"
#include "platform/store/rollout_store.hpp"

namespace sovdev::hub::rollout {

using sovdev::rollout::Labels;

// One agent as the gates see it.
struct AgentSample {
  std::string agent_id;  // the hub's record: the topic the status came on
  std::string channel;
  Labels labels;
  std::string state;  // the status' state; "offline" for a last will
  std::string applied_digest;
  std::string failed_digest;
  std::string window_digest;
  std::int64_t window_opens_at = 0;
  std::int64_t seen_at = 0;  // the hub's clock when it stored the status
};

// nullopt when the stored status no longer parses (it is then no agent of any wave).
std::optional<AgentSample> sample_of(const store::AgentRecord& record);
std::vector<AgentSample> samples_of(const std::vector<store::AgentRecord>& records);

enum class AgentPhase { healthy, failed, waiting_window, offline, pending };
const char* phase_name(AgentPhase phase);

struct WaveCounts {
  std::string name;
  bool admitted = false;  // opened: its agents may start the rollout's version
  std::uint32_t members = 0;
  std::uint32_t healthy = 0;
  std::uint32_t failed = 0;
  std::uint32_t pending = 0;         // neither of the others: fetching, applying, not started
  std::uint32_t offline = 0;         // last will, or no status for --within
  std::uint32_t waiting_window = 0;  // its version waits for a maintenance window
};

enum class Step {
  none,
  gate_met,   // the current wave's gate is met: remember when, the next opens after the pause
  gate_lost,  // met before the pause ended, not any more: the pause starts again when it is
  open_next,
  complete,  // the last wave's gate met: the hold moves to the rollout's version
  abort,
};
const char* step_name(Step step);

struct Transition {
  Step step = Step::none;
  std::string reason;  // for abort and complete: what `status` shows
};

struct Evaluation {
  std::vector<WaveCounts> waves;  // every wave, the unopened ones with their would-be members
  std::uint32_t admitted = 0;     // members of the opened waves
  std::uint32_t failed = 0;       // failures in the opened waves: what the abort threshold counts
  Transition next;
};

// The counts always; the step only for a running rollout (a paused or stopped one takes none).
Evaluation evaluate(const store::RolloutRow& rollout, const std::vector<AgentSample>& agents,
                    std::int64_t now);
// Which wave admits an agent (its first match), or nullopt; every agent of another channel too.
std::optional<std::size_t> wave_of(const store::RolloutRow& rollout, const AgentSample& agent);
AgentPhase phase_of(const store::RolloutRow& rollout, const AgentSample& agent, std::int64_t now);

// Writes a step into the row (state, wave, timers, reason, updated_at). True when what the
// catalog shows of it changed (a wave opened, the state), so the catalog is signed again.
bool apply(store::RolloutRow& rollout, const Transition& transition, std::int64_t now);

// The operator's commands. Errc::conflict when the rollout is not in a state that allows it
// (naming the state); resume gives the current wave back the time it spent paused, so a pause
// never runs out its --within.
[[nodiscard]] Status pause(store::RolloutRow& rollout, std::int64_t now);
[[nodiscard]] Status resume(store::RolloutRow& rollout, std::int64_t now);
[[nodiscard]] Status abort(store::RolloutRow& rollout, const std::string& reason, std::int64_t now);

// "90 %", "12.5 %": a per mille value as people read it.
std::string permille_text(std::uint32_t permille);
// "30m", "1h30m", "45s".
std::string duration_text(std::int64_t seconds);

}  // namespace sovdev::hub::rollout
