// The rollout gates (docs/design-rollouts.md) driven with made-up statuses and clocks: when the
// next wave opens, when offline agents stop counting as pending, how the abort threshold
// counts, that a paused rollout takes no step, that completing names the version, and that an
// agent lying about its labels moves nobody but itself.
#include <catch2/catch.hpp>

#include "hub/rollout/engine.hpp"

using namespace sovdev;
using namespace sovdev::hub::rollout;
using store::RolloutRow;
using store::RolloutState;

namespace {

const std::string kNew(32, 'n');
const std::string kBase(32, 'b');
constexpr std::int64_t kStart = 1'000'000;

RolloutRow rollout_of(std::vector<store::WaveRow> waves) {
  RolloutRow r;
  r.id = 7;
  r.channel = "prod";
  r.stack = "kp";
  r.version = 5;
  r.digest = kNew;
  r.base_version = 4;
  r.base_digest = kBase;
  r.waves = std::move(waves);
  r.success_permille = 900;
  r.within_seconds = 1800;
  r.abort_count = 3;
  r.wave_opened_at = kStart;
  r.created_at = kStart;
  return r;
}

RolloutRow two_waves() {
  return rollout_of({{"canary", "site=lab", 100}, {"all", "", 100}});
}

AgentSample sample_agent(const std::string& id, const std::string& site,
                         std::int64_t seen = kStart) {
  AgentSample a;
  a.agent_id = id;
  a.channel = "prod";
  a.labels = {{"site", site}};
  a.state = "healthy";
  a.applied_digest = kBase;
  a.seen_at = seen;
  return a;
}

AgentSample healthy_new(const std::string& id, const std::string& site) {
  AgentSample a = sample_agent(id, site);
  a.applied_digest = kNew;
  return a;
}

// n lab agents (the canary) and m plant agents, all still on the base version.
std::vector<AgentSample> sample_fleet(int lab, int plant) {
  std::vector<AgentSample> out;
  for (int i = 0; i < lab; ++i) out.push_back(sample_agent("lab-" + std::to_string(i), "lab"));
  for (int i = 0; i < plant; ++i)
    out.push_back(sample_agent("plant-" + std::to_string(i), "plant"));
  return out;
}

// Runs evaluate() and apply() as serve's tick does, returning the step taken.
Step tick(RolloutRow& r, const std::vector<AgentSample>& agents, std::int64_t now) {
  const Evaluation e = evaluate(r, agents, now);
  apply(r, e.next, now);
  return e.next.step;
}

}  // namespace

TEST_CASE("a wave counts its members by phase and each agent in its first matching wave only") {
  RolloutRow r = two_waves();
  auto agents = sample_fleet(4, 6);
  agents[0].applied_digest = kNew;  // healthy on the new version
  agents[1].failed_digest = kNew;   // failed it
  agents[2].window_digest = kNew;   // waits for its window
  agents[3].state = "offline";      // last will
  agents.push_back(sample_agent("other-channel", "lab"));
  agents.back().channel = "dev";
  const Evaluation e = evaluate(r, agents, kStart + 10);
  REQUIRE(e.waves.size() == 2);
  CHECK(e.waves[0].admitted);
  CHECK_FALSE(e.waves[1].admitted);
  CHECK(e.waves[0].members == 4);
  CHECK(e.waves[0].healthy == 1);
  CHECK(e.waves[0].failed == 1);
  CHECK(e.waves[0].waiting_window == 1);
  CHECK(e.waves[0].offline == 1);
  CHECK(e.waves[0].pending == 0);
  // The selector "" matches the lab agents too: they count in the canary, not twice.
  CHECK(e.waves[1].members == 6);
  CHECK(e.admitted == 4);
  CHECK(e.failed == 1);
}

TEST_CASE("a met gate opens the next wave only after --pause-between") {
  RolloutRow r = two_waves();
  r.pause_between = 600;
  std::vector<AgentSample> agents = sample_fleet(0, 5);
  for (int i = 0; i < 10; ++i) agents.push_back(healthy_new("lab-" + std::to_string(i), "lab"));

  CHECK(tick(r, agents, kStart + 60) == Step::gate_met);
  REQUIRE(r.gate_met_at == kStart + 60);
  CHECK(r.current_wave == 0);
  CHECK(tick(r, agents, kStart + 60 + 599) == Step::none);
  CHECK(r.current_wave == 0);
  CHECK(tick(r, agents, kStart + 60 + 600) == Step::open_next);
  CHECK(r.current_wave == 1);
  CHECK(r.wave_opened_at == kStart + 660);
  CHECK_FALSE(r.gate_met_at.has_value());
}

TEST_CASE("without a pause the next wave opens on the tick the gate is met") {
  RolloutRow r = two_waves();
  std::vector<AgentSample> agents = sample_fleet(10, 5);
  for (int i = 0; i < 8; ++i) agents[static_cast<size_t>(i)].applied_digest = kNew;
  // 8 of 10 healthy: 90 % needed, nothing happens (and within has not passed).
  CHECK(tick(r, agents, kStart + 100) == Step::none);
  agents[8].applied_digest = kNew;
  CHECK(tick(r, agents, kStart + 200) == Step::open_next);
  CHECK(r.current_wave == 1);
}

TEST_CASE("a gate lost during the pause starts the pause again once it is met again") {
  RolloutRow r = two_waves();
  r.pause_between = 600;
  std::vector<AgentSample> agents;
  for (int i = 0; i < 10; ++i) agents.push_back(healthy_new("lab-" + std::to_string(i), "lab"));
  CHECK(tick(r, agents, kStart + 10) == Step::gate_met);
  agents[0].state = "degraded";
  agents[1].state = "degraded";
  CHECK(tick(r, agents, kStart + 20) == Step::gate_lost);
  CHECK_FALSE(r.gate_met_at.has_value());
  agents[0].state = "healthy";
  agents[1].state = "healthy";
  CHECK(tick(r, agents, kStart + 30) == Step::gate_met);
  CHECK(tick(r, agents, kStart + 610) == Step::none);  // 600 s from the first met would open
  CHECK(tick(r, agents, kStart + 630) == Step::open_next);
}

TEST_CASE("offline agents count as pending until --within, then the unmet gate aborts") {
  RolloutRow r = two_waves();
  std::vector<AgentSample> agents;
  for (int i = 0; i < 9; ++i) agents.push_back(healthy_new("lab-" + std::to_string(i), "lab"));
  agents.push_back(
      sample_agent("lab-quiet", "lab", kStart - 10));  // reported before the wave opened
  agents.push_back(healthy_new("lab-gone", "lab"));
  agents.back().state = "offline";
  // 9 of 11 healthy (< 90 %): pending while within runs.
  Evaluation e = evaluate(r, agents, kStart + 1799);
  CHECK(e.next.step == Step::none);
  CHECK(e.waves[0].offline == 2);  // the last will, and the one silent for --within
  e = evaluate(r, agents, kStart + 1800);
  CHECK(e.next.step == Step::abort);
  CHECK(e.next.reason == "wave canary: 9 of 11 healthy after 30m, 90 % needed");
  apply(r, e.next, kStart + 1800);
  CHECK(r.state == RolloutState::aborted);
  CHECK(r.reason == e.next.reason);
}

TEST_CASE("the abort threshold as a count aborts at once, before --within") {
  RolloutRow r = two_waves();
  r.abort_count = 2;
  auto agents = sample_fleet(10, 0);
  agents[0].failed_digest = kNew;
  CHECK(tick(r, agents, kStart + 5) == Step::none);
  agents[1].failed_digest = kNew;
  const Evaluation e = evaluate(r, agents, kStart + 6);
  CHECK(e.next.step == Step::abort);
  CHECK(e.next.reason == "2 of 10 admitted agents failed version 5 (abort at 2 failed)");
  // A failure of another version (the base) is not this rollout's.
  agents[1].failed_digest = kBase;
  CHECK(evaluate(r, agents, kStart + 6).next.step == Step::none);
}

TEST_CASE("the abort threshold in percent counts the failures of every opened wave") {
  RolloutRow r = two_waves();
  r.abort_count = 0;
  r.abort_permille = 100;  // 10 %
  r.current_wave = 1;      // both waves open: 5 lab + 15 plant admitted
  auto agents = sample_fleet(5, 15);
  agents[0].failed_digest = kNew;                              // a canary failure still counts
  CHECK(evaluate(r, agents, kStart).next.step == Step::none);  // 1 of 20 = 5 %
  agents[10].failed_digest = kNew;
  const Evaluation e = evaluate(r, agents, kStart);  // 2 of 20 = 10 %
  CHECK(e.failed == 2);
  CHECK(e.admitted == 20);
  CHECK(e.next.step == Step::abort);
  CHECK(e.next.reason == "2 of 20 admitted agents failed version 5 (abort at 10 % failed)");
  // Failures among agents of a wave not yet opened do not count.
  r.current_wave = 0;
  CHECK(evaluate(r, agents, kStart).failed == 1);
}

TEST_CASE("a paused or stopped rollout takes no step, and resume gives back the paused time") {
  RolloutRow r = two_waves();
  auto agents = sample_fleet(10, 0);
  for (auto& a : agents) a.failed_digest = kNew;  // would abort a running one
  REQUIRE(pause(r, kStart + 100).has_value());
  CHECK(r.state == RolloutState::paused);
  const Evaluation e = evaluate(r, agents, kStart + 100000);
  CHECK(e.next.step == Step::none);
  CHECK(e.waves[0].failed == 10);  // still counted for the fleet view
  CHECK_FALSE(pause(r, kStart + 200).has_value());

  REQUIRE(resume(r, kStart + 1100).has_value());
  CHECK(r.state == RolloutState::running);
  CHECK(r.wave_opened_at == kStart + 1000);  // the 1000 s paused do not count against --within
  REQUIRE(abort(r, "by the operator", kStart + 1200).has_value());
  CHECK(r.state == RolloutState::aborted);
  CHECK(evaluate(r, agents, kStart + 1300).next.step == Step::none);
  CHECK_FALSE(resume(r, kStart + 1300).has_value());
  CHECK_FALSE(abort(r, "again", kStart + 1300).has_value());
}

TEST_CASE("the last wave's met gate completes the rollout") {
  RolloutRow r = two_waves();
  r.current_wave = 1;
  std::vector<AgentSample> agents;
  for (int i = 0; i < 3; ++i) agents.push_back(healthy_new("lab-" + std::to_string(i), "lab"));
  for (int i = 0; i < 10; ++i) agents.push_back(healthy_new("p-" + std::to_string(i), "plant"));
  const Evaluation e = evaluate(r, agents, kStart + 50);
  CHECK(e.next.step == Step::complete);
  CHECK(apply(r, e.next, kStart + 50));
  CHECK(r.state == RolloutState::completed);
  CHECK(r.reason == "all 2 waves met their gates; version 5 is current");
  CHECK(tick(r, agents, kStart + 60) == Step::none);
}

TEST_CASE("an agent lying about its labels changes its own wave and nobody else's") {
  RolloutRow r = two_waves();
  auto agents = sample_fleet(4, 6);
  const Evaluation honest = evaluate(r, agents, kStart + 10);
  agents[5].labels = {{"site", "lab"}};  // a plant agent claims to be in the lab
  const Evaluation lying = evaluate(r, agents, kStart + 10);
  CHECK(lying.waves[0].members == honest.waves[0].members + 1);
  CHECK(lying.waves[1].members == honest.waves[1].members - 1);
  for (std::size_t i = 0; i < agents.size(); ++i) {
    if (i == 5) continue;
    CHECK(wave_of(r, agents[i]) == (i < 4 ? 0u : 1u));
  }
  // Claiming another agent's id as a label is no way in: `id` is the record's, not a label.
  RolloutRow by_id = rollout_of({{"one", "id=plant-0", 100}, {"all", "", 100}});
  AgentSample impostor = sample_agent("plant-1", "plant");
  impostor.labels = {{"id", "plant-0"}};
  CHECK(wave_of(by_id, impostor) == 1u);
  CHECK(wave_of(by_id, sample_agent("plant-0", "plant")) == 0u);
}

TEST_CASE("a wave's percentage takes a stable share that grows with the percent") {
  RolloutRow r = rollout_of({{"half", "", 50}, {"rest", "", 100}});
  auto agents = sample_fleet(0, 200);
  const Evaluation e = evaluate(r, agents, kStart);
  CHECK(e.waves[0].members > 60);
  CHECK(e.waves[0].members < 140);
  CHECK(e.waves[0].members + e.waves[1].members == 200);
}

TEST_CASE("a wave nobody reported from never passes, one emptied by earlier waves does") {
  RolloutRow r = two_waves();
  // No status from any agent yet: the canary waits, then aborts when --within has passed.
  CHECK(tick(r, {}, kStart + 10) == Step::none);
  const Evaluation e = evaluate(r, {}, kStart + 1800);
  CHECK(e.next.step == Step::abort);
  CHECK(e.next.reason == "wave canary: 0 of 0 healthy after 30m, 90 % needed");

  // Every lab agent is in the canary: the second lab wave is empty and passes on the canary's.
  RolloutRow lab = rollout_of({{"canary", "site=lab", 100}, {"rest", "site=lab", 100}});
  lab.current_wave = 1;
  std::vector<AgentSample> agents;
  for (int i = 0; i < 3; ++i) agents.push_back(healthy_new("lab-" + std::to_string(i), "lab"));
  CHECK(evaluate(lab, agents, kStart + 10).next.step == Step::complete);
}

TEST_CASE("texts people read: per mille and durations") {
  CHECK(permille_text(900) == "90 %");
  CHECK(permille_text(125) == "12.5 %");
  CHECK(duration_text(1800) == "30m");
  CHECK(duration_text(5400) == "1h30m");
  CHECK(duration_text(45) == "45s");
}
