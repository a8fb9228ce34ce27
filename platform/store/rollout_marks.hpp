// What the agent keeps for staged rollouts (agent.db tables rollout_marks and revocations,
// migration 7; docs/design-rollouts.md).
//
// A mark is written before the first apply of a rollout's version and names the version the
// agent held as last good at that moment: the one place an aborted rollout with `revert` may
// send it back to (the only downgrade there is). While a mark is open, the cache cannot delete
// that prior bundle (a trigger refuses it). A revert closes the mark, so it serves once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "platform/store/agent_cache.hpp"
#include "platform/store/sqlite.hpp"

namespace sovdev::store {

struct RolloutMark {
  std::string stack;
  std::uint64_t rollout_id = 0;
  std::string channel;
  std::uint64_t version = 0;      // the rollout's version
  std::string digest;             // its manifest digest, 32 bytes
  std::optional<LastGood> prior;  // the last good before it; none on a fresh agent
  std::string state = "open";     // open, reverted, superseded
  std::int64_t marked_at = 0;     // unix seconds
};

class RolloutMarks {
 public:
  explicit RolloutMarks(Database& db) : db_(db) {}

  // Records a mark unless (stack, rollout_id) has one already: the first apply's last good is
  // what counts, an apply tried again must not move it. True when it was recorded now.
  [[nodiscard]] Expected<bool> record(const RolloutMark& mark);
  [[nodiscard]] Expected<std::optional<RolloutMark>> find(std::string_view stack,
                                                          std::uint64_t rollout_id);
  // The open mark of a stack whose rollout version is `digest`.
  [[nodiscard]] Expected<std::optional<RolloutMark>> find_open(std::string_view stack,
                                                               std::string_view digest);
  // Closes an open mark (state: reverted or superseded); false when none was open.
  [[nodiscard]] Expected<bool> close(std::string_view stack, std::uint64_t rollout_id,
                                     std::string_view state, std::int64_t now);
  // Another version of the stack was applied: its open marks for other digests can never
  // serve again (a revert needs the rollout's version to be the last good). Returns how many.
  [[nodiscard]] Expected<std::int64_t> supersede(std::string_view stack, std::string_view applied,
                                                 std::int64_t now);
  // Closes the open marks of channels not in `followed` (their bundles are forgotten).
  [[nodiscard]] Expected<std::int64_t> close_other_channels(
      const std::vector<std::string>& followed, std::int64_t now);
  // Every mark, by stack then rollout id.
  [[nodiscard]] Expected<std::vector<RolloutMark>> list();

 private:
  Database& db_;
};

struct RevocationRecord {
  std::string channel;
  std::uint64_t serial = 0;
  std::string envelope;  // the Signed RevocationList, verified by the caller before put()
  std::int64_t received_at = 0;
};

class RevocationCache {
 public:
  explicit RevocationCache(Database& db) : db_(db) {}

  // Keeps a channel's list when its serial is above the one held: true when it replaced it,
  // false for the same serial (a catalog re-sent), Errc::rollback for a lower one.
  [[nodiscard]] Expected<bool> put(const RevocationRecord& record);
  [[nodiscard]] Expected<std::optional<RevocationRecord>> get(std::string_view channel);

 private:
  Database& db_;
};

}  // namespace sovdev::store
