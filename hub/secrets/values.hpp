// Secret values on the hub (hub.db table secret_values, migration 003): sealed under the
// secret-store key, bound to (environment, name, key). A listing shows names and dates, never a
// value; a value leaves this class only as seal::SecretBytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hub/secrets/store_key.hpp"
#include "platform/store/sqlite.hpp"

namespace sovdev::hub::secrets {

inline constexpr size_t kMaxValueBytes = 64 * 1024;

struct ValueEntry {
  std::string environment, name, key;
  int64_t updated_at = 0;
  uint64_t size = 0;  // of the plaintext
};

// Environment: [a-z0-9-], 1-63. Name: a Kubernetes object name (lower case, digits, '-', '.',
// 1-253). Key: a Secret data key ([-._a-zA-Z0-9], 1-253). An empty string when valid, else why.
std::string check_environment(std::string_view environment);
std::string check_name(std::string_view name);
std::string check_key(std::string_view key);

class SecretValues {
 public:
  SecretValues(store::Database& db, const StoreKey& store_key) : db_(db), key_(store_key) {}

  // Adds or replaces one value.
  [[nodiscard]] Status set(const std::string& environment, const std::string& name,
                           const std::string& key, const seal::SecretBytes& value, int64_t now);
  // Errc::not_found when there is none; Errc::signature when the row was sealed with another
  // store key or does not open (moved, changed).
  [[nodiscard]] Expected<seal::SecretBytes> get(const std::string& environment,
                                                const std::string& name, const std::string& key);
  // Every value of the environment (all environments when empty), by name and key.
  [[nodiscard]] Expected<std::vector<ValueEntry>> list(const std::string& environment);
  // Removes one key of a name, or every key of it when `key` is empty; returns how many.
  [[nodiscard]] Expected<uint64_t> remove(const std::string& environment, const std::string& name,
                                          const std::string& key);

 private:
  store::Database& db_;
  const StoreKey& key_;
};

}  // namespace sovdev::hub::secrets
