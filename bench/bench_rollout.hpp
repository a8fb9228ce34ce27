// bench_rollout's shared parts (bench_rollout.cpp: catalog size and the hub's CPU per wave, in
// process; bench_rollout_live.cpp: a real serve and lite agents, gate to the next wave's fetch).
#pragma once

#include <string>
#include <vector>

#include "bench/bench_sync_fleet.hpp"
#include "bundles/rollout_rules.hpp"

namespace sovdev::bench::roll {

inline const std::string kChannel = "edge";
inline const std::string kStack = "es";

// Agent n ("lite-<n>"): the first 10 are site=lab, the rest site=plant-<n % 20>; odd numbers
// region=eu, even region=us.
rollout::Labels labels_of(int n);
std::string agent_id(int n);
// The three waves every scenario rolls out with: the lab (10 agents), half of region eu, all.
std::vector<std::string> waves();
inline constexpr int kWaveOne = 10;  // lite-0 .. lite-9 (site=lab)

// Edge-stack bundles: v1 and v2 from the fixture, v3 v2's files again at version 3.
struct Bundles {
  std::string v1, v2, v3;
};
Bundles build_bundles(const Context& ctx);

// `sovdev-hub ARGS...` to completion; throws with its log when it fails.
void hub_command(const Context& ctx, const std::vector<std::string>& args, const std::string& log);

// Part 3: returns whether its bar held.
bool bench_live(const Context& ctx, const Bundles& bundles, int agents);

}  // namespace sovdev::bench::roll
