// The agents enrolled for secrets and their channels' epoch keys (hub.db, migration 004;
// docs/design-secrets.md). Each change to a channel's agents is one transaction:
//  - add: the channel's current epoch key is sealed to the newcomer (epoch 1 is made for a
//    channel's first agent);
//  - remove, rotate: the channel's next epoch starts, sealed to every agent it then has, so
//    versions built after it are closed to the removed agent (or the replaced key).
//  - rotate also re-seals to the new key every older epoch the agent held, so it can still open
//    the versions built under them.
// Changing agents needs the store key (epoch keys are kept sealed under it); handing out a
// grant does not: `serve` reads grant() only. Every enrolled agent and epoch row carries a MAC
// under a key derived from the store key (migration 005; its limits in fleet_keys.cpp): nothing
// is sealed to an agent row, and no epoch row is used, that fails it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hub/secrets/store_key.hpp"
#include "platform/store/sqlite.hpp"

namespace sovdev::hub::secrets {

// What a row's MAC says. Without the store key only a missing MAC can be seen.
enum class RowCheck { not_checked, verified, no_mac, changed };

struct EnrolledAgent {
  std::string agent_id, channel;
  std::string public_key;  // 32 bytes
  std::map<std::string, std::string> labels;
  int64_t added_at = 0;
  std::optional<int64_t> rotated_at;
  RowCheck row = RowCheck::not_checked;  // set by list()
};

struct EpochInfo {
  std::string channel;
  uint64_t epoch = 0;
  std::string key_id;
  std::string reason;
  int64_t created_at = 0;
  uint64_t grants = 0;
};

struct EpochKey {
  uint64_t epoch = 0;
  std::string key_id;
  seal::SecretBytes key;
};

// The wire's rules (bundles/messages.hpp), so an agent that can be enrolled can ask for its key.
// An agent id: 1-64 of [A-Za-z0-9._-] (it is an MQTT topic level too). Empty when valid.
std::string check_agent_id(std::string_view id);
// A channel: 1-63 of [a-z0-9._-]. Empty when valid.
std::string check_channel(std::string_view channel);

class FleetKeys {
 public:
  // `store_key` may be empty for the read-only calls (list, epochs, grant).
  FleetKeys(store::Database& db, const StoreKey& store_key) : db_(db), key_(store_key) {}

  // Returns the epoch the agent was granted. An agent enrolled already is refused unless its
  // row fails its MAC (older than migration 005, or changed outside these commands): then the
  // row is written again from `agent`, in the same channel.
  [[nodiscard]] Expected<uint64_t> add(const EnrolledAgent& agent, int64_t now);
  // Returns the channel's new epoch.
  [[nodiscard]] Expected<uint64_t> remove(const std::string& agent_id, int64_t now);
  [[nodiscard]] Expected<uint64_t> rotate(const std::string& agent_id,
                                          const std::string& public_key, int64_t now);

  // Each row's MAC is checked when the store key was given (else only a missing one is seen).
  [[nodiscard]] Expected<std::vector<EnrolledAgent>> list();
  [[nodiscard]] Expected<std::vector<EpochInfo>> epochs(const std::string& channel);
  // The channel's newest epoch key, opened (for `build`); nullopt when it has no agents yet.
  [[nodiscard]] Expected<std::optional<EpochKey>> current(const std::string& channel);
  // The epoch key sealed to one agent: what `serve` sends it; nullopt when it has no grant.
  [[nodiscard]] Expected<std::optional<std::string>> grant(const std::string& channel,
                                                           uint64_t epoch,
                                                           const std::string& agent_id);

 private:
  Expected<std::optional<EnrolledAgent>> find(const std::string& agent_id);
  // Makes the channel's next epoch and grants it to every agent of the channel.
  Expected<uint64_t> next_epoch(const std::string& channel, const std::string& reason, int64_t now);
  // Refuses, with what to do, an agent row that has no MAC or does not match it.
  Status verify_agent(const std::string& agent_id);
  // Inserts the row (or replaces it, as rotated at `now`) with its MAC.
  Status write_agent(const EnrolledAgent& agent, bool replace, int64_t now);
  // Verifies the row's MAC (a row without one gets it once its sealed key and key id check).
  Expected<EpochKey> open_epoch(const std::string& channel, uint64_t epoch);
  Status put_grant(const std::string& channel, uint64_t epoch, const EnrolledAgent& agent,
                   const seal::SecretBytes& key);
  Status require_store_key() const;

  store::Database& db_;
  const StoreKey& key_;
};

}  // namespace sovdev::hub::secrets
