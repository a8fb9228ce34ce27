#include "hub/rollout/engine.hpp"

#include "sovdev.pb.h"

namespace sovdev::hub::rollout {
namespace {

using store::RolloutRow;
using store::RolloutState;

// The waves' selectors, parsed once per evaluation rather than once per agent.
struct ParsedWave {
  std::optional<sovdev::rollout::Selector> selector;  // nullopt: does not parse, admits nobody
  std::uint32_t percent = 0;
};

std::vector<ParsedWave> parse_waves(const RolloutRow& rollout) {
  std::vector<ParsedWave> out;
  for (const auto& w : rollout.waves) {
    ParsedWave p;
    if (auto s = sovdev::rollout::parse_selector(w.selector)) p.selector = std::move(*s);
    p.percent = w.percent;
    out.push_back(std::move(p));
  }
  return out;
}

std::optional<std::size_t> first_wave(const RolloutRow& rollout,
                                      const std::vector<ParsedWave>& waves,
                                      const AgentSample& agent) {
  if (agent.channel != rollout.channel) return std::nullopt;
  for (std::size_t i = 0; i < waves.size(); ++i) {
    const auto& w = waves[i];
    if (w.selector && w.selector->matches(agent.labels, agent.agent_id) &&
        sovdev::rollout::in_share(rollout.id, agent.agent_id, w.percent)) {
      return i;
    }
  }
  return std::nullopt;
}

void count(WaveCounts& wave, AgentPhase phase) {
  wave.members++;
  switch (phase) {
    case AgentPhase::healthy: wave.healthy++; break;
    case AgentPhase::failed: wave.failed++; break;
    case AgentPhase::waiting_window: wave.waiting_window++; break;
    case AgentPhase::offline: wave.offline++; break;
    case AgentPhase::pending: wave.pending++; break;
  }
}

// An empty wave passes only when an earlier one had agents (its selector's agents were all
// taken by earlier waves): a rollout never moves on nobody's word, as it would on a hub that
// has no status yet from the agents a canary names.
bool gate_met(const RolloutRow& rollout, const WaveCounts& wave, std::uint32_t earlier_members) {
  if (wave.members == 0) return earlier_members > 0;
  return std::uint64_t{wave.healthy} * 1000 >=
         std::uint64_t{rollout.success_permille} * wave.members;
}

bool threshold_reached(const RolloutRow& rollout, std::uint32_t failed, std::uint32_t admitted) {
  if (failed == 0) return false;
  if (rollout.abort_count > 0) return failed >= rollout.abort_count;
  return std::uint64_t{failed} * 1000 >= std::uint64_t{rollout.abort_permille} * admitted;
}

std::string threshold_text(const RolloutRow& rollout) {
  if (rollout.abort_count > 0) return std::to_string(rollout.abort_count) + " failed";
  return permille_text(rollout.abort_permille) + " failed";
}

}  // namespace

const char* phase_name(AgentPhase phase) {
  switch (phase) {
    case AgentPhase::healthy: return "healthy";
    case AgentPhase::failed: return "failed";
    case AgentPhase::waiting_window: return "waiting_window";
    case AgentPhase::offline: return "offline";
    case AgentPhase::pending: return "pending";
  }
  return "unknown";
}

const char* step_name(Step step) {
  switch (step) {
    case Step::none: return "none";
    case Step::gate_met: return "gate met";
    case Step::gate_lost: return "gate lost";
    case Step::open_next: return "open next wave";
    case Step::complete: return "complete";
    case Step::abort: return "abort";
  }
  return "unknown";
}

std::string permille_text(std::uint32_t permille) {
  std::string text = std::to_string(permille / 10);
  if (permille % 10 != 0) text += "." + std::to_string(permille % 10);
  return text + " %";
}

std::string duration_text(std::int64_t seconds) {
  if (seconds <= 0) return "0s";
  std::string out;
  const std::int64_t d = seconds / 86400, h = seconds % 86400 / 3600, m = seconds % 3600 / 60,
                     s = seconds % 60;
  if (d) out += std::to_string(d) + "d";
  if (h) out += std::to_string(h) + "h";
  if (m) out += std::to_string(m) + "m";
  if (s) out += std::to_string(s) + "s";
  return out;
}

std::optional<AgentSample> sample_of(const store::AgentRecord& record) {
  pb::AgentStatus st;
  if (!st.ParseFromString(record.status)) return std::nullopt;
  AgentSample a;
  a.agent_id = record.agent_id;
  a.channel = record.channel;
  for (const auto& [key, value] : st.labels()) a.labels.emplace(key, value);
  a.state = st.state();
  a.applied_digest = st.applied_digest();
  a.failed_digest = st.failed_digest();
  a.window_digest = st.window_digest();
  a.window_opens_at = st.window_opens_at();
  a.seen_at = record.seen_at;
  // A last will carries no labels: the status it replaced says which wave the agent is in.
  pb::AgentStatus prior;
  if (a.labels.empty() && !record.prior_status.empty() &&
      prior.ParseFromString(record.prior_status)) {
    for (const auto& [key, value] : prior.labels()) a.labels.emplace(key, value);
  }
  return a;
}

std::vector<AgentSample> samples_of(const std::vector<store::AgentRecord>& records) {
  std::vector<AgentSample> out;
  out.reserve(records.size());
  for (const auto& r : records) {
    if (auto a = sample_of(r)) out.push_back(std::move(*a));
  }
  return out;
}

std::optional<std::size_t> wave_of(const RolloutRow& rollout, const AgentSample& agent) {
  return first_wave(rollout, parse_waves(rollout), agent);
}

AgentPhase phase_of(const RolloutRow& rollout, const AgentSample& agent, std::int64_t now) {
  if (agent.state == "offline") return AgentPhase::offline;
  if (agent.applied_digest == rollout.digest && agent.state == "healthy") {
    return AgentPhase::healthy;
  }
  if (agent.failed_digest == rollout.digest) return AgentPhase::failed;
  if (now - agent.seen_at >= rollout.within_seconds) return AgentPhase::offline;
  if (agent.window_digest == rollout.digest) return AgentPhase::waiting_window;
  return AgentPhase::pending;
}

Evaluation evaluate(const RolloutRow& rollout, const std::vector<AgentSample>& agents,
                    std::int64_t now) {
  Evaluation e;
  for (std::size_t i = 0; i < rollout.waves.size(); ++i) {
    e.waves.push_back({rollout.waves[i].name, i <= rollout.current_wave});
  }
  const auto waves = parse_waves(rollout);
  for (const auto& agent : agents) {
    const auto index = first_wave(rollout, waves, agent);
    if (!index) continue;
    count(e.waves[*index], phase_of(rollout, agent, now));
  }
  for (const auto& w : e.waves) {
    if (!w.admitted) continue;
    e.admitted += w.members;
    e.failed += w.failed;
  }
  if (rollout.state != RolloutState::running || rollout.current_wave >= e.waves.size()) return e;

  // Failures abort at once, whatever the gate says: a wave half healthy and half failing is
  // not one to wait out.
  if (threshold_reached(rollout, e.failed, e.admitted)) {
    e.next = {Step::abort, std::to_string(e.failed) + " of " + std::to_string(e.admitted) +
                               " admitted agents failed version " +
                               std::to_string(rollout.version) + " (abort at " +
                               threshold_text(rollout) + ")"};
    return e;
  }
  const WaveCounts& wave = e.waves[rollout.current_wave];
  const bool last = rollout.current_wave + 1 == e.waves.size();
  const std::uint32_t earlier_members = e.admitted - wave.members;
  if (gate_met(rollout, wave, earlier_members)) {
    const std::int64_t met_at = rollout.gate_met_at.value_or(now);
    if (now - met_at < rollout.pause_between) {
      if (!rollout.gate_met_at) e.next = {Step::gate_met, {}};
      return e;
    }
    if (last) {
      e.next = {Step::complete, "all " + std::to_string(e.waves.size()) +
                                    " waves met their gates; version " +
                                    std::to_string(rollout.version) + " is current"};
    } else {
      e.next = {Step::open_next, {}};
    }
    return e;
  }
  if (now - rollout.wave_opened_at >= rollout.within_seconds) {
    e.next = {Step::abort, "wave " + wave.name + ": " + std::to_string(wave.healthy) + " of " +
                               std::to_string(wave.members) + " healthy after " +
                               duration_text(rollout.within_seconds) + ", " +
                               permille_text(rollout.success_permille) + " needed"};
    return e;
  }
  if (rollout.gate_met_at) e.next = {Step::gate_lost, {}};
  return e;
}

bool apply(RolloutRow& rollout, const Transition& t, std::int64_t now) {
  switch (t.step) {
    case Step::none: return false;
    case Step::gate_met: rollout.gate_met_at = now; break;
    case Step::gate_lost: rollout.gate_met_at.reset(); break;
    case Step::open_next:
      rollout.current_wave++;
      rollout.wave_opened_at = now;
      rollout.gate_met_at.reset();
      break;
    case Step::complete:
      rollout.state = RolloutState::completed;
      rollout.reason = t.reason;
      break;
    case Step::abort:
      rollout.state = RolloutState::aborted;
      rollout.reason = t.reason;
      break;
  }
  rollout.updated_at = now;
  return t.step == Step::open_next || t.step == Step::complete || t.step == Step::abort;
}

Status pause(RolloutRow& rollout, std::int64_t now) {
  if (rollout.state != RolloutState::running) {
    return make_error(Errc::conflict, "rollout " + std::to_string(rollout.id) + " is " +
                                          store::rollout_state_name(rollout.state) +
                                          ": only a running rollout can be paused");
  }
  rollout.state = RolloutState::paused;
  rollout.paused_at = now;
  rollout.reason = "paused by the operator";
  rollout.updated_at = now;
  return {};
}

Status resume(RolloutRow& rollout, std::int64_t now) {
  if (rollout.state != RolloutState::paused) {
    return make_error(Errc::conflict, "rollout " + std::to_string(rollout.id) + " is " +
                                          store::rollout_state_name(rollout.state) +
                                          ": only a paused rollout can be resumed");
  }
  const std::int64_t paused_for =
      rollout.paused_at ? std::max<std::int64_t>(0, now - *rollout.paused_at) : 0;
  rollout.wave_opened_at += paused_for;
  if (rollout.gate_met_at) *rollout.gate_met_at += paused_for;
  rollout.state = RolloutState::running;
  rollout.paused_at.reset();
  rollout.reason.clear();
  rollout.updated_at = now;
  return {};
}

Status abort(RolloutRow& rollout, const std::string& reason, std::int64_t now) {
  if (rollout.state != RolloutState::running && rollout.state != RolloutState::paused) {
    return make_error(Errc::conflict, "rollout " + std::to_string(rollout.id) + " is " +
                                          store::rollout_state_name(rollout.state) + " already");
  }
  rollout.state = RolloutState::aborted;
  rollout.paused_at.reset();
  rollout.reason = reason;
  rollout.updated_at = now;
  return {};
}

}  // namespace sovdev::hub::rollout
