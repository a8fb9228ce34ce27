// The agent's side of sealed secrets (docs/design-secrets.md): its X25519 identity beside the
// state, and the channel epoch keys the hub sealed to it (cached sealed in agent.db). A key is
// opened only while a version is verified and applied, into locked memory zeroed when freed.
#pragma once

#include <optional>
#include <string>

#include "bundles/seal.hpp"
#include "common/error.hpp"
#include "platform/store/sqlite.hpp"
#include "sovdev.pb.h"

namespace sovdev::agent {

// <state>/agent.key (the secret half, 0600) and <state>/agent.pub (what the hub enrols).
std::string agent_key_path(const std::string& state_dir);
std::string agent_public_path(const std::string& state_dir);

// The agent's key, or nullopt when it has none yet (`sovdev-agent keygen` makes it). A key file
// that group or others may read or write is refused (Errc::denied), like ssh's private keys.
[[nodiscard]] Expected<std::optional<seal::AgentKey>> load_agent_key(const std::string& state_dir);

// The hub command that gives this agent the channel's epoch keys.
std::string enrol_command(const std::string& agent_id, const std::string& channel);

// The epoch key the manifest names (secrets_channel, secrets_epoch, secrets_key_id), opened
// from the cache with `self`. Errors say why and which command fixes it:
//  - Errc::not_found: no sealed key cached for that epoch (ask the hub for it);
//  - Errc::signature: the cached key does not open with this agent's key (kept: the fetch asks
//    for one sealed to the new key and replaces it), or is another key than the manifest names
//    (dropped, so the next use asks again);
//  - Errc::denied: this agent has no key (`self` is null).
[[nodiscard]] Expected<seal::SecretBytes> open_epoch_key(store::Database& db,
                                                         const seal::AgentKey* self,
                                                         const std::string& agent_id,
                                                         const pb::BundleManifest& manifest);

}  // namespace sovdev::agent
