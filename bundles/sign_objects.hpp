// Making the signed objects the hub publishes: bundle manifests and catalogs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bundles/keys.hpp"
#include "bundles/payload.hpp"
#include "sovdev.pb.h"

namespace sovdev {

struct BundleInfo {
  std::string stack;
  std::string channel;
  uint64_t version = 0;
  std::vector<std::string> arch;
  std::string environment;
  std::string source_revision;
  int64_t created_at = 0;
};

pb::BundleManifest make_manifest(const BundleInfo& info, const PayloadSummary& summary,
                                 const PayloadWriter::Options& options);

struct SignedManifest {
  std::string envelope;  // serialized pb::Signed
  std::string digest;    // SHA-256 of the signed body: the bundle's identity
};

// The manifest signed by every key given.
SignedManifest sign_manifest(const pb::BundleManifest& manifest,
                             const std::vector<SecretKey>& keys);
std::string sign_catalog(const pb::Catalog& catalog, const std::vector<SecretKey>& keys);
// A channel's revoked versions, signed by targets keys (docs/design-rollouts.md).
std::string sign_revocations(const pb::RevocationList& list, const std::vector<SecretKey>& keys);

}  // namespace sovdev
