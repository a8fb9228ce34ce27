// The channel epoch keys an agent was sent (agent.db table epoch_keys, migration 6), kept as
// received: sealed to the agent's X25519 key. Nothing here opens them (agent/secret_keys.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "platform/store/sqlite.hpp"

namespace sovdev::store {

class EpochKeyCache {
 public:
  explicit EpochKeyCache(Database& db) : db_(db) {}

  // Keeps (or replaces) the sealed key of (channel, epoch). `sealed` is 80 bytes.
  [[nodiscard]] Status put(std::string_view channel, uint64_t epoch, std::string_view sealed,
                           int64_t now);
  [[nodiscard]] Expected<std::optional<std::string>> find(std::string_view channel, uint64_t epoch);
  // Forgets one key (it did not open, or named another key id): the next use asks again.
  [[nodiscard]] Status drop(std::string_view channel, uint64_t epoch);

 private:
  Database& db_;
};

}  // namespace sovdev::store
