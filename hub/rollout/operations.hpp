// What the operator's rollout commands do to hub.db (docs/design-rollouts.md): start, pause,
// resume and abort rollouts, hold and release stacks, revoke versions, set maintenance
// windows. Each is one transaction that checks its input against what hub.db holds and that the
// channel's catalog still fits what agents accept. None signs a catalog: `serve` sees the
// change counter move and signs with the online key it alone holds. (`revoke` signs the
// revocation list itself, with a targets key the operator gives.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bundles/keys.hpp"
#include "platform/store/catalog_inputs.hpp"
#include "platform/store/rollout_store.hpp"
#include "sovdev.pb.h"

namespace sovdev::hub::rollout {

struct StartRequest {
  std::string channel;
  std::string stack;
  std::uint64_t version = 0;
  std::vector<std::string> waves;  // NAME:SELECTOR[:PERCENT]
  std::string success = "100%";
  std::string within;
  std::string abort_failed;
  std::string pause_between;  // empty: none
  bool rollback_on_abort = false;
  bool ignore_windows = false;
};

// Inserts the rollout (running, its first wave open) and holds the stack at its base, the
// version current before it. Errc::usage for bad options, Errc::not_found when the version is
// not published, Errc::rollback when it is not above the current one, Errc::conflict when the
// stack has a rollout running or paused.
[[nodiscard]] Expected<store::RolloutRow> start_rollout(store::Database& db,
                                                        const StartRequest& request,
                                                        std::int64_t now);

enum class Change { pause, resume, abort };
[[nodiscard]] Expected<store::RolloutRow> change_rollout(store::Database& db, std::uint64_t id,
                                                         Change change, std::int64_t now);

// The version a stack's catalog entry lists: the hold's, else the newest published; nullopt
// when nothing of the stack is published.
[[nodiscard]] Expected<std::optional<std::uint64_t>> current_version(store::Database& db,
                                                                     const std::string& channel,
                                                                     const std::string& stack);
// Holds the stack at its current version unless it is held already (publishing a new version
// then leaves agents where they are). Returns the held version, nullopt when nothing is
// published yet (the first version is current in any case).
[[nodiscard]] Expected<std::optional<std::uint64_t>> hold_current(store::Database& db,
                                                                  const std::string& channel,
                                                                  const std::string& stack,
                                                                  std::int64_t now);
// Drops the hold: the newest published version becomes current. Refused (Errc::conflict) while
// a rollout of the stack runs or is paused; Errc::not_found when the stack was not held.
// Returns the version it was held at.
[[nodiscard]] Expected<std::uint64_t> release_hold(store::Database& db, const std::string& channel,
                                                   const std::string& stack);

struct RevokeRequest {
  std::string channel;
  std::string stack;
  std::uint64_t version = 0;
  std::string reason;
  std::vector<SecretKey> keys;  // targets keys
};
// Signs the channel's next revocation list: the previous entries plus this version, serial + 1.
// Errc::not_found for a version that is not published, Errc::conflict when it is revoked already.
[[nodiscard]] Expected<pb::RevocationList> revoke_version(store::Database& db,
                                                          const RevokeRequest& request,
                                                          std::int64_t now);
// The channel's newest list as hub.db holds it (signed by the hub's own command: parsed, not
// verified); an empty list with serial 0 when there is none.
[[nodiscard]] Expected<pb::RevocationList> stored_revocations(store::Database& db,
                                                              const std::string& channel);

// Checks the window's shape (selector, schedule of 5 fields, duration, zone name) and that every
// catalog it joins still fits. Returns its id.
[[nodiscard]] Expected<std::uint64_t> add_window(store::Database& db, store::HubWindow window,
                                                 std::int64_t now);

}  // namespace sovdev::hub::rollout
