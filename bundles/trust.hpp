// The trust policy an agent pins: which keys may sign what, and how the root may rotate.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bundles/keys.hpp"
#include "common/error.hpp"
#include "sovdev.pb.h"

namespace sovdev {

// Size caps in the spirit of python-tuf: nothing unbounded is parsed.
inline constexpr size_t kMaxTrustRootBytes = 512 * 1024;
inline constexpr size_t kMaxCatalogBytes = 64 * 1024;
inline constexpr size_t kMaxManifestBytes = 1024 * 1024;

struct TrustRootSpec {
  uint64_t version = 1;
  int64_t created_at = 0;
  std::vector<PublicKeyInfo> root_keys;
  std::vector<PublicKeyInfo> publisher_keys;
  uint32_t root_threshold = 1;
  uint32_t publisher_threshold = 1;
};

// Builds a TrustRoot body after checking it is usable (thresholds reachable, keys well formed).
Expected<pb::TrustRoot> make_trust_root(const TrustRootSpec& spec);

class TrustPolicy {
 public:
  // The first root an agent pins: self-signed by a threshold of its own root keys.
  static Expected<TrustPolicy> from_initial(std::string_view signed_root);

  // Version N+1, signed by a threshold of this root's keys and a threshold of its own.
  [[nodiscard]] Expected<TrustPolicy> rotate(std::string_view signed_root) const;

  // Verifies a signed manifest against the publisher role; on success returns the manifest and
  // sets `digest` to SHA-256 of its body (the bundle's identity).
  [[nodiscard]] Expected<pb::BundleManifest> verify_manifest(std::string_view signed_manifest,
                                                             std::string* digest) const;
  [[nodiscard]] Expected<pb::BundleManifest> verify_manifest(const pb::Signed& envelope,
                                                             std::string* digest) const;

  // Verifies a signed catalog; expiry is judged by the caller (check_catalog_fresh), because an
  // expired catalog still tells an offline site that nothing newer is known.
  [[nodiscard]] Expected<pb::Catalog> verify_catalog(std::string_view signed_catalog) const;

  // Verifies a signed delta manifest against the publisher role and checks its shape (a window
  // above the delta cap is refused). Whether it fits the bundle the agent wants is the caller's.
  [[nodiscard]] Expected<pb::DeltaManifest> verify_delta(std::string_view signed_delta) const;
  [[nodiscard]] Expected<pb::DeltaManifest> verify_delta(const pb::Signed& envelope) const;

  const pb::TrustRoot& root() const { return root_; }
  uint64_t version() const { return root_.version(); }
  const std::string& envelope() const { return envelope_; }

 private:
  TrustPolicy(pb::TrustRoot root, std::string envelope);
  static Expected<TrustPolicy> parse_root(std::string_view signed_root, pb::Signed* envelope_out);

  pb::TrustRoot root_;
  std::string envelope_;  // serialized Signed, kept so it can be stored and shown
  KeyRing keys_;
};

// Builds a signed trust root: `spec` signed by every key in `signers`.
Expected<std::string> sign_trust_root(const pb::TrustRoot& root,
                                      const std::vector<SecretKey>& signers);

}  // namespace sovdev
