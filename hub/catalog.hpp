// The signed catalog of a channel: for each of its stacks the version every agent runs (the
// held one when the stack is held, else the newest), the stack's rollout while it is running,
// paused or aborted (docs/design-rollouts.md), the hub's maintenance windows and the channel's
// newest revocation list; with a serial that only grows and an expiry that the hub renews
// before it passes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bundles/keys.hpp"
#include "platform/store/hub_store.hpp"
#include "sovdev.pb.h"

namespace sovdev::hub {

inline constexpr int64_t kDefaultCatalogTtl = 24 * 3600;

// What the channel's next catalog lists, unsigned and without serial or times.
[[nodiscard]] Expected<pb::Catalog> catalog_content(store::Database& db,
                                                    const std::string& channel);

// Errc::too_large when `content`, once dated and signed by a few keys, would exceed the
// kMaxCatalogBytes agents accept: the commands that add rollouts, windows and revocations refuse
// their change rather than leave serve with a catalog no agent takes. `what` names the change.
[[nodiscard]] Status check_catalog_fits(const pb::Catalog& content, const std::string& what);

// Builds the channel's next catalog from what hub.db holds, signs it and stores it.
Expected<store::HubCatalog> refresh_catalog(store::Database& db, const std::string& channel,
                                            const std::vector<SecretKey>& keys, int64_t now,
                                            int64_t ttl_seconds);

// The catalog topic of a channel under a topic prefix.
std::string catalog_topic(const std::string& prefix, const std::string& channel);

}  // namespace sovdev::hub
