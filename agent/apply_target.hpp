// The apply target the agent's config names, built with what it needs (the kube target: the
// credentials, an API client and the cache for its inventory).
#pragma once

#include <memory>

#include "agent/config.hpp"
#include "platform/store/sqlite.hpp"
#include "platform/target/target.hpp"

namespace sovdev::agent {

Expected<std::unique_ptr<target::Target>> make_apply_target(store::Database& db,
                                                            const ApplyConfig& apply);

}  // namespace sovdev::agent
