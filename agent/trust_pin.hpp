#pragma once

#include <optional>
#include <string>

#include "bundles/trust.hpp"
#include "platform/store/sqlite.hpp"

namespace sovdev::agent {

// The trust root the agent goes by: the newest in its cache. A trust file given by the
// operator pins the first root, or rotates the pinned one by exactly one version.
Expected<TrustPolicy> pinned_trust(store::Database& db,
                                   const std::optional<std::string>& trust_file);

// Reads and checks a trust root file on its own (for commands that keep no state).
Expected<TrustPolicy> trust_from_file(const std::string& path);

}  // namespace sovdev::agent
