// What makes a manifest well formed, and what an agent may install.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "sovdev.pb.h"

namespace sovdev {

// The format generation this program writes and understands.
inline constexpr uint32_t kSchema = 1;

inline constexpr uint32_t kMinChunkSize = 4 * 1024;
inline constexpr uint32_t kMaxChunkSize = 1024 * 1024;
inline constexpr uint32_t kDefaultChunkSize = 64 * 1024;
// A decoder's window is private memory on the agent; payloads may not ask for more.
inline constexpr uint32_t kMaxWindowLog = 22;
// etcd stores objects up to ~1.5 MiB; a record above this cannot be a valid object.
inline constexpr uint64_t kMaxRecordSize = 2 * 1024 * 1024;

// Internal consistency: sizes, chunk count, hash lengths, names, and the secrets fields (sealed
// objects need a channel, an epoch above 0 and a 32-byte key id; none, all three empty). Needs
// no trust decision.
Status check_manifest_shape(const pb::BundleManifest& manifest);

std::string describe(const pb::BundleManifest& manifest);  // "sovdev@12 (edge, arm64)"

// What the agent already holds for the manifest's stack.
struct HeldVersion {
  uint64_t version = 0;
  std::string digest;
};

struct InstallTarget {
  std::string channel;  // empty: any channel (only for verifying a file by hand)
  std::string arch;     // empty: any architecture
};

// Refuses a bundle for another channel or architecture, a lower version than held (rollback),
// and the same version with other content.
Status check_installable(const pb::BundleManifest& manifest, std::string_view digest,
                         const InstallTarget& target, const std::optional<HeldVersion>& highest,
                         const std::optional<HeldVersion>& same_version);

// An expired catalog may not start a new install (freeze attack), though the cached stack runs on.
Status check_catalog_fresh(const pb::Catalog& catalog, int64_t now);

// The architecture this program was built for, in Debian/Kubernetes spelling (amd64, arm64).
std::string host_arch();

}  // namespace sovdev
