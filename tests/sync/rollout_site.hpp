// Staged rollouts on one agent, inside one process: signed bundles of stack "kp" imported into
// a real agent.db, catalogs signed with the workspace's online key handed to the real Daemon
// (offline MQTT client, as if from the broker), the dir target writing what is applied, and a
// fake maintenance-window gate whose opening the test sets.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "agent/daemon.hpp"
#include "agent/rollout/window_gate.hpp"
#include "bundles/keys.hpp"
#include "bundles/trust.hpp"
#include "platform/mqtt/client.hpp"
#include "platform/store/sqlite.hpp"
#include "platform/target/target.hpp"
#include "tests/cli/cli_fixture.hpp"

namespace spdlog {
class logger;
}

namespace sovdev::testing {

// Closed until `opens_at` (unix seconds), open from then on; remembers what it was asked.
class FakeGate : public agent::rollout::WindowGate {
 public:
  explicit FakeGate(int64_t opens_at) : opens_at_(opens_at) {}
  agent::rollout::WindowVerdict at(
      int64_t now, const std::vector<pb::MaintenanceWindow>& windows) const override;
  int asked() const { return asked_; }
  const std::vector<pb::MaintenanceWindow>& last_windows() const { return last_windows_; }

 private:
  int64_t opens_at_;
  mutable int asked_ = 0;
  mutable std::vector<pb::MaintenanceWindow> last_windows_;
};

struct SiteOptions {
  std::string agent_id = "site-a";
  sovdev::rollout::Labels labels;
  bool prefetch = false;
  std::shared_ptr<const agent::rollout::WindowGate> gate;
  int64_t reconcile_ms = 0;  // 0: no drift correction
  std::string exec_command;  // the exec target with this command instead of the dir target
};

class RolloutSite {
 public:
  explicit RolloutSite(SiteOptions options = {});
  ~RolloutSite();

  Workspace ws;
  std::string state;    // the agent's state folder
  std::string applied;  // the dir target's folder
  std::unique_ptr<store::Database> db;
  std::unique_ptr<TrustPolicy> trust;
  std::unique_ptr<mqtt::Client> offline;
  std::unique_ptr<target::Target> target;
  std::unique_ptr<agent::Daemon> daemon;
  int64_t now_ms = 1'800'000'000'000;

  // A new daemon over the same agent.db (a restart, or other settings), started.
  void restart(SiteOptions options);
  // Writes kp@version (one ConfigMap whose value names the version), signed with the targets
  // key, and imports it into the cache. Returns its manifest digest.
  std::string add_version(uint64_t version);
  // The catalog entry listing kp@version (imported before).
  pb::CatalogEntry entry(uint64_t version) const;
  // A rollout of kp@version with the given waves ("name:selector:percent").
  pb::CatalogRollout rollout(uint64_t id, uint64_t version, const std::vector<std::string>& waves,
                             pb::CatalogRollout::State state = pb::CatalogRollout::RUNNING) const;
  // A catalog of channel edge listing `entries` (serial and dates filled in).
  pb::Catalog catalog(std::vector<pb::CatalogEntry> entries);
  // Signs with the online key (or `keys`) and hands the catalog to the daemon.
  void receive(const pb::Catalog& c, const std::vector<SecretKey>& keys = {});
  // A revocation list of channel edge revoking `versions`, signed with the targets key.
  std::string revocations(uint64_t serial, const std::vector<uint64_t>& versions) const;
  void tick_at(int64_t ms);

  // The last good version of kp (none before the first apply).
  std::optional<uint64_t> last_good();
  // The version the dir target's ConfigMap file says, 0 when there is none.
  uint64_t on_target() const;
  // Removes that file, as drift the next reconcile puts back.
  void drift() const;
  std::string log() const;

 private:
  SiteOptions options_;
  uint64_t serial_ = 0;
  std::map<uint64_t, std::string> digests_;  // version → manifest digest
  std::shared_ptr<std::ostringstream> log_;
  std::shared_ptr<spdlog::logger> previous_logger_;
};

}  // namespace sovdev::testing
