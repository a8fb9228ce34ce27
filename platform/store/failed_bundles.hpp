// The bundles whose apply failed on this agent (refused by the target, or not healthy in time),
// with the reason. The daemon never tries one of them again by itself: this table outlives the
// process, so a watchdog kill or a reboot after a rollback does not start the same failed
// apply over. A newer version of the stack being applied clears the older entries; an
// operator clears them with `sovdev-agent retry`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "platform/store/sqlite.hpp"

namespace sovdev::store {

struct FailedBundle {
  std::string digest;  // manifest digest, 32 bytes
  std::string stack;
  std::uint64_t version = 0;
  std::string reason;
  std::int64_t failed_at = 0;  // unix seconds
};

class FailedBundles {
 public:
  explicit FailedBundles(Database& db) : db_(db) {}

  // Records (or replaces) the failure of a bundle.
  [[nodiscard]] Status add(const FailedBundle& failed);
  [[nodiscard]] Expected<std::optional<FailedBundle>> find(std::string_view digest);
  // Every failed bundle, by stack then version.
  [[nodiscard]] Expected<std::vector<FailedBundle>> list();
  // Forgets the failures of `stack` below `version`: a newer version was applied.
  [[nodiscard]] Expected<std::int64_t> clear_below(std::string_view stack, std::uint64_t version);
  // Forgets the failures of one stack ("" = of every stack); returns how many.
  [[nodiscard]] Expected<std::int64_t> clear(std::string_view stack);

 private:
  Database& db_;
};

}  // namespace sovdev::store
