// The signed catalog of a channel: the newest version of each of its stacks, with a serial that
// only grows and an expiry that the hub renews before it passes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bundles/keys.hpp"
#include "platform/store/hub_store.hpp"

namespace sovdev::hub {

inline constexpr int64_t kDefaultCatalogTtl = 24 * 3600;

// Builds the channel's next catalog from what hub.db holds, signs it and stores it.
Expected<store::HubCatalog> refresh_catalog(store::Database& db, const std::string& channel,
                                            const std::vector<SecretKey>& keys, int64_t now,
                                            int64_t ttl_seconds);

// The catalog topic of a channel under a topic prefix.
std::string catalog_topic(const std::string& prefix, const std::string& channel);

}  // namespace sovdev::hub
