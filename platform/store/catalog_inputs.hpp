// What shapes a channel's catalog besides its published bundles (docs/design-rollouts.md):
// stack holds, the hub's maintenance windows and targets-signed revocation lists, plus the
// change counter that tells `serve` a catalog needs signing again. Rollouts are in
// rollout_store.hpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "platform/store/sqlite.hpp"

namespace sovdev::store {

struct StackHold {
  std::string channel;
  std::string stack;
  std::uint64_t version = 0;
  std::int64_t held_at = 0;
};

class StackHolds {
 public:
  explicit StackHolds(Database& db) : db_(db) {}
  // Sets or moves the hold.
  [[nodiscard]] Status set(const StackHold& hold);
  [[nodiscard]] Expected<std::optional<StackHold>> get(std::string_view channel,
                                                       std::string_view stack);
  // False when the stack was not held.
  [[nodiscard]] Expected<bool> release(std::string_view channel, std::string_view stack);
  [[nodiscard]] Expected<std::vector<StackHold>> list();

 private:
  Database& db_;
};

// Shapes only: the schedule and zone are checked in full by platform/windows.
struct HubWindow {
  std::uint64_t id = 0;  // set by add()
  std::string channel;   // "" for every channel
  std::string selector;
  bool deny = false;
  std::string schedule;
  std::string duration;
  std::string zone;
  std::int64_t created_at = 0;
};

class HubWindows {
 public:
  explicit HubWindows(Database& db) : db_(db) {}
  [[nodiscard]] Expected<std::uint64_t> add(const HubWindow& window);
  // False when there was no such window.
  [[nodiscard]] Expected<bool> remove(std::uint64_t id);
  // Every window, by id.
  [[nodiscard]] Expected<std::vector<HubWindow>> list();
  // The windows a channel's catalog carries: its own and those for every channel, by id.
  [[nodiscard]] Expected<std::vector<HubWindow>> for_channel(std::string_view channel);

 private:
  Database& db_;
};

struct StoredRevocations {
  std::string channel;
  std::uint64_t serial = 0;
  std::int64_t issued_at = 0;
  std::string envelope;  // Signed RevocationList
};

class RevocationLists {
 public:
  explicit RevocationLists(Database& db) : db_(db) {}
  // Errc::rollback unless `serial` is above the channel's newest: agents take only a higher one.
  [[nodiscard]] Status put(const StoredRevocations& list);
  [[nodiscard]] Expected<std::optional<StoredRevocations>> newest(std::string_view channel);

 private:
  Database& db_;
};

// How often what a channel's catalog carries has changed (its own count plus that of the
// windows for every channel): only grows, so a reader compares it with the value it last saw.
[[nodiscard]] Expected<std::int64_t> catalog_change_count(Database& db, std::string_view channel);
// The same over every channel: any rollout, hold, window or revocation changed.
[[nodiscard]] Expected<std::int64_t> all_catalog_changes(Database& db);

}  // namespace sovdev::store
