// One upgrade fetched by the real agent code (BundleFetch) from the real hub code (hub::Server)
// over a LoopbackBus, counting every packet on the agent's link from the catalog that names the
// new version to the rebuilt bundle. What bench_delta reports as a delta's wire bytes, and what
// the tests of the delta exchange hold it to.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bundles/keys.hpp"
#include "tests/delta/loopback_bus.hpp"

namespace sovdev::testing {

struct LoopbackUpgrade {
  std::string dir;         // work folder (created afresh)
  std::string trust_root;  // signed
  SecretKey publisher;     // signs the bundles, catalogs and delta manifests
  std::string base_file;   // bundle files as `sovdev-hub build` writes them
  std::string target_file;
  std::string agent_db;  // an agent database holding the base, verified (copied per agent)
  std::string base_digest;
  uint64_t base_version = 0;
  std::string stack;
  std::string channel;
  // Agents that fetch the upgrade before the measured one: 0 = the measured agent is the first
  // to ask, and waits while the hub makes the delta; 1 = the delta is made already, as for
  // every agent of a fleet but the first.
  int agents_before = 1;
  // Agents older than the one-answer delta exchange (their requests lack its fields).
  bool old_agent = false;
  // The hub's ServeOptions::delta_hold_ms.
  uint32_t delta_hold_ms = 1000;
};

struct LoopbackResult {
  std::string error;  // empty when the upgrade was fetched
  bool used_delta = false;
  std::vector<LoopbackBus::Packet> packets;  // the measured agent's link
  uint64_t bytes = 0;
};

LoopbackResult fetch_upgrade_over_loopback(const LoopbackUpgrade& upgrade);

}  // namespace sovdev::testing
