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
// A revocation list rides inside a catalog: it leaves room for the catalog's own entries.
inline constexpr size_t kMaxRevocationsBytes = 16 * 1024;
inline constexpr size_t kMaxRevokedVersions = 128;
inline constexpr size_t kMaxManifestBytes = 1024 * 1024;

// A trust root written by this program has schema 2: root, targets and online roles. Schema 1
// roots (root and publisher) are still read: see TrustPolicy::legacy().
inline constexpr uint32_t kTrustRootSchema = 2;

// The roles a trust root names. `targets` signs bundle manifests and lives offline with root;
// `online` is what `sovdev-hub serve` holds: it signs catalogs and delta manifests, never content,
// so a stolen hub can delay or withhold updates but not install its own.
enum class TrustRole { root, targets, online };
std::string_view role_name(TrustRole role);

struct TrustRootSpec {
  uint64_t version = 1;
  int64_t created_at = 0;
  std::vector<PublicKeyInfo> root_keys;
  std::vector<PublicKeyInfo> targets_keys;
  std::vector<PublicKeyInfo> online_keys;
  uint32_t root_threshold = 1;
  uint32_t targets_threshold = 1;
  uint32_t online_threshold = 1;
  // Schema 1 (legacy) only: one role for content and catalogs. Given, targets and online must be
  // empty; kept so tests and old deployments can still make what agents already pin.
  std::vector<PublicKeyInfo> publisher_keys;
  uint32_t publisher_threshold = 1;
};

// Builds a TrustRoot body after checking it is usable (thresholds reachable, keys well formed,
// no key both targets and online, no root key online).
Expected<pb::TrustRoot> make_trust_root(const TrustRootSpec& spec);

class TrustPolicy {
 public:
  // The first root an agent pins: self-signed by a threshold of its own root keys.
  static Expected<TrustPolicy> from_initial(std::string_view signed_root);

  // Version N+1, signed by a threshold of this root's keys and a threshold of its own.
  [[nodiscard]] Expected<TrustPolicy> rotate(std::string_view signed_root) const;

  // Verifies a signed manifest against the targets role; on success returns the manifest and
  // sets `digest` to SHA-256 of its body (the bundle's identity).
  [[nodiscard]] Expected<pb::BundleManifest> verify_manifest(std::string_view signed_manifest,
                                                             std::string* digest) const;
  [[nodiscard]] Expected<pb::BundleManifest> verify_manifest(const pb::Signed& envelope,
                                                             std::string* digest) const;

  // Verifies a signed catalog against the online role; expiry is judged by the caller
  // (check_catalog_fresh), because an expired catalog still tells an offline site that nothing
  // newer is known.
  [[nodiscard]] Expected<pb::Catalog> verify_catalog(std::string_view signed_catalog) const;

  // Verifies a channel's revocation list (carried inside its catalog) against the targets role:
  // the online role that signs the catalog can withhold a newer list, never forge one. Checks
  // its shape (a channel, a serial, at most kMaxRevokedVersions entries, each with a stack, a
  // version and a digest). Whether its serial is new is the caller's.
  [[nodiscard]] Expected<pb::RevocationList> verify_revocations(std::string_view signed_list) const;

  // Verifies a signed delta manifest against the online role and checks its shape (a window
  // above the delta cap is refused). Whether it fits the bundle the agent wants is the caller's.
  [[nodiscard]] Expected<pb::DeltaManifest> verify_delta(std::string_view signed_delta) const;
  [[nodiscard]] Expected<pb::DeltaManifest> verify_delta(const pb::Signed& envelope) const;

  // A schema 1 root: its publisher keys hold both the targets and the online role, so the hub's
  // key can still sign content. Agents keep accepting it until the operator rotates to a root
  // with targets and online roles (`sovdev-hub trust rotate`); inspect and trust say so.
  bool legacy() const { return root_.publisher().key_ids_size() > 0; }
  // The role's keys and threshold (for a legacy root, targets and online are the publisher role).
  const pb::Role& role(TrustRole role) const;
  // Checks that `keys` can sign for `role` by themselves before anything is signed: each is a
  // key of the role and of no role it must stay apart from, and together they meet the
  // threshold. `what` names the command for the message ("serve").
  [[nodiscard]] Status check_signers(TrustRole role, const std::vector<SecretKey>& keys,
                                     std::string_view what) const;

  const pb::TrustRoot& root() const { return root_; }
  uint64_t version() const { return root_.version(); }
  const std::string& envelope() const { return envelope_; }

 private:
  TrustPolicy(pb::TrustRoot root, std::string envelope);
  static Expected<TrustPolicy> parse_root(std::string_view signed_root, pb::Signed* envelope_out);
  // verify_threshold against `role`, saying which role a wrong key holds instead.
  [[nodiscard]] Status verify_role(const pb::Signed& envelope, std::string_view type,
                                   TrustRole role, std::string_view what) const;

  pb::TrustRoot root_;
  std::string envelope_;  // serialized Signed, kept so it can be stored and shown
  KeyRing keys_;
};

// Builds a signed trust root: `spec` signed by every key in `signers`.
Expected<std::string> sign_trust_root(const pb::TrustRoot& root,
                                      const std::vector<SecretKey>& signers);

}  // namespace sovdev
