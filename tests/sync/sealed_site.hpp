// Sealed Secrets inside one process: bundle files whose Secrets are sealed as the hub's build
// seals them (signed with the workspace's targets key), an agent cache with agent.key beside it
// and epoch keys sealed to it, and the real Daemon (offline MQTT client) applying to a real
// target. Also what a test searches for a value that must not be stored or said.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/daemon.hpp"
#include "bundles/seal.hpp"
#include "bundles/trust.hpp"
#include "platform/mqtt/client.hpp"
#include "platform/store/sqlite.hpp"
#include "platform/target/target.hpp"
#include "tests/cli/cli_fixture.hpp"

namespace spdlog {
class logger;
}

namespace sovdev::testing {

// One object of a test bundle. With `sealed` values, its `data` names their keys with empty
// values and the values are sealed into the record.
struct TestObject {
  nlohmann::json object;
  std::map<std::string, std::string> sealed;
};
nlohmann::json secret_object(const std::string& ns, const std::string& name);
nlohmann::json config_map_object(const std::string& ns, const std::string& name,
                                 const std::string& value);

// How the bundle seals: the manifest names `epoch` and the id of `named`; the records are
// sealed with `sealing` (default: `named`). The ways a bundle can lie are switches.
struct SealPlan {
  uint64_t epoch = 3;
  const seal::SecretBytes* named = nullptr;
  const seal::SecretBytes* sealing = nullptr;
  int32_t declared_off_by = 0;  // sealed_objects declared minus the records sealed
  bool tamper = false;          // one byte of the first sealed blob changed, then signed
};

// A bundle of stack "kp", channel "edge" in ws.dir/<name>, signed with ws's targets key.
std::string write_sealed_bundle(const Workspace& ws, const std::string& name, uint64_t version,
                                const std::vector<TestObject>& objects, const SealPlan& plan);

class SealedSite {
 public:
  SealedSite();
  ~SealedSite();

  Workspace ws;
  std::string state;     // the agent's state folder (agent.db, agent.key)
  seal::AgentKey agent;  // written to <state>/agent.key, 0600
  std::unique_ptr<store::Database> db;
  std::unique_ptr<TrustPolicy> trust;
  std::unique_ptr<mqtt::Client> offline;
  std::unique_ptr<target::Target> target;
  std::unique_ptr<agent::Daemon> daemon;

  // Makes the daemon over `t` (of `kind`: dir, exec or kube), its agent key loaded from the
  // state folder; `reconcile_ms` 0: no drift correction.
  void use(std::unique_ptr<target::Target> t, const std::string& kind = "dir",
           int64_t reconcile_ms = 0);
  void import(const std::string& bundle);
  // The epoch key of channel edge, sealed to `to` (default: this agent), into the cache.
  void give_key(uint64_t epoch, const seal::SecretBytes& key, const seal::AgentKey* to = nullptr);
  int64_t now_ms = 1'800'000'000'000;
  void apply_cached();
  // One tick `ms` later (a retry falls due).
  void tick_after(int64_t ms);

  std::optional<uint64_t> last_good();
  bool failed_recorded(uint64_t version);
  // Every cell of every table of agent.db read through SQLite, the bytes of agent.db and its
  // -wal, every file in the state folder, the daemon's status and everything logged so far.
  std::string everything_kept_or_said();
  std::string log() const { return log_->str(); }

 private:
  std::shared_ptr<std::ostringstream> log_;
  std::shared_ptr<spdlog::logger> previous_logger_;
};

// The value's forms a leak could take: as is and in base64.
std::vector<std::string> forms_of(const std::string& value);
std::string base64_of(const std::string& value);

}  // namespace sovdev::testing
