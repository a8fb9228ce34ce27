// A load generator for the fan-out benchmark: simulated agents that speak the sync protocol
// (README, "Sync protocol") and do nothing else, over libmosquitto (the library of the
// baseline's mosquitto_sub), all of a process's agents driven by one thread that polls their
// sockets. Each checks the retained catalog and the manifest against the trust root, listens on
// the bundle's blob topic, asks for the chunks with the agent's window and broadcast position,
// and counts what arrives; it keeps no chunk (no hash unless asked, no SQLite). What the hub and
// the broker cost a fleet is measured as if each agent had a machine of its own, as agents do;
// bench_fleet_harness without --lite runs the agent's own state machine instead.
// bench_rollout drives them with follow(): agents with labels that follow each catalog's
// rollout (rollout::admits) and report their status, as an agent with labels would.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bundles/rollout_rules.hpp"
#include "bundles/trust.hpp"
#include "common/error.hpp"

namespace sovdev::bench {

struct LiteOptions {
  std::string host;  // the broker, plain TCP
  int port = 1883;
  std::string prefix, channel;
  uint32_t window = 16;
  bool check_chunks = false;          // SHA-256 of every chunk against the signed manifest
  int64_t request_timeout_ms = 2000;  // in flight this long with nothing arriving: asked again
  // Rollouts (bench_rollout, docs/design-rollouts.md), for follow() only: each agent has these
  // labels (by its number), takes the first catalog's entry as the version it already runs,
  // then follows every catalog: the rollout's version when rollout::admits it, else the
  // entry's; it pulls a version it lacks and, holding it, publishes an AgentStatus (state
  // healthy, applied_digest, labels) on <prefix>/status/<id>. pull() ignores these.
  std::function<rollout::Labels(int)> labels;
};

class LiteFleet {
 public:
  LiteFleet(const TrustPolicy& trust, LiteOptions options);
  ~LiteFleet();
  LiteFleet(const LiteFleet&) = delete;
  LiteFleet& operator=(const LiteFleet&) = delete;

  // Deadlines are monotonic_ms() times (bench/fleet_procs.hpp).
  // Connects agents "lite-<first>" .. "lite-<first + count - 1>"; returns once the broker has
  // accepted every one.
  Status connect(int first, int count, int64_t deadline_ms);
  // Every agent subscribes to its channel's catalog and pulls the newest bundle; returns once
  // every agent holds every chunk.
  Status pull(int64_t deadline_ms);
  // Rollout mode: every agent subscribes to its catalog and follows it (LiteOptions::labels)
  // until `stop()` returns true or the deadline passes (Errc::unavailable).
  Status follow(int64_t deadline_ms, const std::function<bool()>& stop);
  uint64_t bytes_received() const;  // FetchResponse payloads, as the agent counts them
  // "<n> requests, <n> timeouts, <n> gaps in the broadcast numbering, <n> chunks held already"
  std::string counts() const;

  struct Agent;  // one simulated agent (lite_fleet.cpp)

 private:
  // One turn: poll every socket (up to `wait_ms`), read and write what is ready, then ask for
  // more where the window has room and expire what has waited too long.
  Status turn(int wait_ms);

  const TrustPolicy& trust_;
  LiteOptions options_;
  std::vector<std::unique_ptr<Agent>> agents_;
  int64_t last_tick_ms_ = 0;
};

}  // namespace sovdev::bench
