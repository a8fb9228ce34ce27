// Sealed secrets driven as an operator drives them, with real processes only: a secret-store
// key made by `sovdev-hub secret init`, values planted with `secret set` on stdin, agents keyed
// by `sovdev-agent keygen` and enrolled with `sovdev-hub agents add`, bundles built from a plain
// folder with `--secrets-env`, `--db` and `--store-key`. For the end-to-end tests of issue #20
// (secret_leak_test.cpp, secret_fleet_test.cpp); the broker, hub and agents are a Fleet's.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/sync/sync_fixture.hpp"

namespace sovdev::testing {

// A broker whose users are the hub and `agents` (each with password "secret-<agent>").
BrokerOptions broker_users(const std::vector<std::string>& agents);

// `prefix` and 16 random hex digits: a value nothing else can hold by chance.
std::string unique_value(const std::string& prefix);

// A Fleet's hub.db used as the provision host uses it: values, enrolled agents, sealed builds.
class SealedHub {
 public:
  explicit SealedHub(const Fleet& fleet);

  const Fleet& fleet;
  std::string store_key;
  mutable std::string said;  // everything these commands printed, for the leak searches

  // `sovdev-hub secret set --env edge NAME KEY`, the value on stdin.
  void set(const std::string& name, const std::string& key, const std::string& value) const;
  // `sovdev-agent keygen --state <agent's state>` (`force`: replace its key).
  void keygen(const std::string& agent, bool force = false) const;
  // `sovdev-hub agents add|remove|rotate AGENT ...` on channel edge; returns its output.
  std::string add(const std::string& agent) const;
  std::string remove(const std::string& agent) const;
  std::string rotate(const std::string& agent) const;
  // `sovdev-hub build` of `source` (stack kp, channel edge) with its secrets of environment edge
  // sealed; the bundle file goes to ws.dir/<name>.sdb. Returns the file.
  std::string build(const std::string& source, const std::string& name, uint64_t version) const;
  // build() then `publish` (`live`: the catalog goes to the broker now, for a running hub).
  std::string build_and_publish(const std::string& source, uint64_t version, bool live) const;

 private:
  // Requires exit 0, keeps what the command said; returns its stdout.
  std::string ok(const RunResult& r, const std::string& what) const;
};

// A plain folder `dir` with a Namespace `app`, a Secret app/db whose `password` is
// `${secret:db/password}` and a ConfigMap app/settings holding `marker`.
void write_secret_source(const std::string& dir, const std::string& marker);

// The objects a dir target holds, by kind ("Secret", "ConfigMap"...); parsed from its files.
std::multimap<std::string, nlohmann::json> target_objects(const std::string& dir);
// The path of the file of the dir target's Secret app/db ("" when there is none).
std::string target_secret_file(const std::string& dir);

// What the hub last recorded of `agent` (`sovdev-hub status --json`); empty when nothing.
nlohmann::json hub_agent_status(const Fleet& fleet, const std::string& agent);
// `sovdev-agent status --state ... --json` of `agent`.
nlohmann::json agent_local_status(const Fleet& fleet, const std::string& agent);
// The last good version of stack kp in the agent's own state, 0 when none.
uint64_t last_good_version(const Fleet& fleet, const std::string& agent);

// The value's forms a leak could take: as is and in base64 (what a Secret's data holds).
std::vector<std::string> leak_forms(const std::string& value);

}  // namespace sovdev::testing
