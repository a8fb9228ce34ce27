// The kube target's inventory: every object it has applied for a stack and not yet pruned.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "platform/store/sqlite.hpp"

namespace sovdev::store {

struct KubeObject {
  std::string api_group;  // "" for the core group
  std::string kind;
  std::string namespace_;  // "" for cluster-scoped objects
  std::string name;
  std::string api_version;       // what it was last applied through
  std::string applied_digest;    // the bundle that last applied it (32 bytes)
  std::string resource_version;  // the server's, after that apply
};

class KubeInventory {
 public:
  explicit KubeInventory(Database& db) : db_(db) {}

  // Inserts or updates the object's row (by stack, group, kind, namespace, name).
  [[nodiscard]] Status record(std::string_view stack, const KubeObject& object);
  [[nodiscard]] Expected<std::vector<KubeObject>> list(std::string_view stack);
  [[nodiscard]] Status remove(std::string_view stack, const KubeObject& object);

 private:
  Database& db_;
};

}  // namespace sovdev::store
