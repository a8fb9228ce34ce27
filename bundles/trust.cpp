#include "bundles/trust.hpp"

#include <set>

#include "bundles/delta.hpp"
#include "bundles/hash.hpp"
#include "bundles/manifest_rules.hpp"

namespace sovdev {
namespace {

Status check_role(const pb::TrustRoot& root, const pb::Role& role, std::string_view name,
                  const KeyRing& keys) {
  if (role.key_ids_size() == 0) {
    return make_error(Errc::invalid, "trust root has no " + std::string(name) + " keys");
  }
  std::set<std::string> distinct(role.key_ids().begin(), role.key_ids().end());
  if (distinct.size() != static_cast<size_t>(role.key_ids_size())) {
    return make_error(Errc::invalid, "trust root lists a " + std::string(name) + " key twice");
  }
  for (const auto& id : distinct) {
    if (!keys.count(id)) {
      return make_error(Errc::invalid, "trust root's " + std::string(name) + " role names key " +
                                           short_hex(id) + " that it does not list");
    }
  }
  if (role.threshold() == 0 || role.threshold() > distinct.size()) {
    return make_error(Errc::invalid, "trust root's " + std::string(name) + " threshold " +
                                         std::to_string(role.threshold()) + " cannot be met by " +
                                         std::to_string(distinct.size()) + " key(s)");
  }
  (void)root;
  return {};
}

Expected<KeyRing> keyring_of(const pb::TrustRoot& root) {
  KeyRing keys;
  for (const auto& k : root.keys()) {
    if (k.ed25519().size() != crypto_sign_PUBLICKEYBYTES) {
      return make_error(Errc::invalid, "trust root key '" + k.name() + "' is not 32 bytes");
    }
    if (k.key_id() != key_id(k.ed25519())) {
      return make_error(Errc::invalid, "trust root key '" + k.name() + "' has a wrong key id");
    }
    keys[k.key_id()] = k.ed25519();
  }
  SOVDEV_TRY(check_role(root, root.root(), "root", keys));
  SOVDEV_TRY(check_role(root, root.publisher(), "publisher", keys));
  return keys;
}

}  // namespace

Expected<pb::TrustRoot> make_trust_root(const TrustRootSpec& spec) {
  pb::TrustRoot root;
  root.set_schema(1);
  root.set_version(spec.version);
  root.set_created_at(spec.created_at);
  std::set<std::string> listed;
  auto add = [&](const PublicKeyInfo& k, pb::Role* role) {
    const std::string id = key_id(k.public_key);
    if (listed.insert(id).second) {
      auto* pk = root.add_keys();
      pk->set_key_id(id);
      pk->set_ed25519(k.public_key);
      pk->set_name(k.name);
    }
    role->add_key_ids(id);
  };
  for (const auto& k : spec.root_keys) add(k, root.mutable_root());
  for (const auto& k : spec.publisher_keys) add(k, root.mutable_publisher());
  root.mutable_root()->set_threshold(spec.root_threshold);
  root.mutable_publisher()->set_threshold(spec.publisher_threshold);
  SOVDEV_TRY(keyring_of(root));
  return root;
}

Expected<std::string> sign_trust_root(const pb::TrustRoot& root,
                                      const std::vector<SecretKey>& signers) {
  pb::Signed envelope = make_signed(kTypeTrustRoot, root.SerializeAsString());
  for (const auto& key : signers) add_signature(envelope, key);
  return envelope.SerializeAsString();
}

TrustPolicy::TrustPolicy(pb::TrustRoot root, std::string envelope)
    : root_(std::move(root)), envelope_(std::move(envelope)) {
  keys_ = *keyring_of(root_);  // checked by parse_root before construction
}

Expected<TrustPolicy> TrustPolicy::parse_root(std::string_view signed_root,
                                              pb::Signed* envelope_out) {
  SOVDEV_ASSIGN(pb::Signed envelope, parse_signed(signed_root, kTypeTrustRoot, kMaxTrustRootBytes));
  pb::TrustRoot root;
  if (!root.ParseFromString(envelope.body())) {
    return make_error(Errc::invalid, "trust root body is not a valid TrustRoot");
  }
  if (root.schema() > kSchema) {
    return make_error(Errc::invalid, "trust root schema " + std::to_string(root.schema()) +
                                         " is newer than this program understands");
  }
  if (root.version() == 0) return make_error(Errc::invalid, "trust root version must be ≥ 1");
  SOVDEV_ASSIGN(KeyRing keys, keyring_of(root));
  SOVDEV_TRY(verify_threshold(envelope, kTypeTrustRoot, root.root(), keys,
                              "trust root v" + std::to_string(root.version())));
  *envelope_out = std::move(envelope);
  return TrustPolicy(std::move(root), std::string(signed_root));
}

Expected<TrustPolicy> TrustPolicy::from_initial(std::string_view signed_root) {
  pb::Signed envelope;
  return parse_root(signed_root, &envelope);
}

Expected<TrustPolicy> TrustPolicy::rotate(std::string_view signed_root) const {
  pb::Signed envelope;
  SOVDEV_ASSIGN(TrustPolicy next, parse_root(signed_root, &envelope));
  if (next.version() != version() + 1) {
    return make_error(Errc::rollback,
                      "trust root rotation from v" + std::to_string(version()) + " to v" +
                          std::to_string(next.version()) +
                          " refused: each rotation must raise the version by exactly one");
  }
  auto old_ok = verify_threshold(envelope, kTypeTrustRoot, root_.root(), keys_,
                                 "trust root v" + std::to_string(next.version()) +
                                     " (by the keys of v" + std::to_string(version()) + ")");
  if (!old_ok) {
    return std::move(old_ok).error().context(
        "trust root rotation refused: the new root must be signed by the current root keys");
  }
  return next;
}

Expected<pb::BundleManifest> TrustPolicy::verify_manifest(std::string_view signed_manifest,
                                                          std::string* digest) const {
  SOVDEV_ASSIGN(pb::Signed envelope,
                parse_signed(signed_manifest, kTypeManifest, kMaxManifestBytes));
  return verify_manifest(envelope, digest);
}

Expected<pb::BundleManifest> TrustPolicy::verify_manifest(const pb::Signed& envelope,
                                                          std::string* digest) const {
  SOVDEV_TRY(
      verify_threshold(envelope, kTypeManifest, root_.publisher(), keys_, "bundle manifest"));
  pb::BundleManifest manifest;
  if (!manifest.ParseFromString(envelope.body())) {
    return make_error(Errc::invalid, "bundle manifest body is not a valid BundleManifest");
  }
  SOVDEV_TRY(check_manifest_shape(manifest));
  if (digest) *digest = sha256(envelope.body());
  return manifest;
}

Expected<pb::Catalog> TrustPolicy::verify_catalog(std::string_view signed_catalog) const {
  SOVDEV_ASSIGN(pb::Signed envelope, parse_signed(signed_catalog, kTypeCatalog, kMaxCatalogBytes));
  SOVDEV_TRY(verify_threshold(envelope, kTypeCatalog, root_.publisher(), keys_, "catalog"));
  pb::Catalog catalog;
  if (!catalog.ParseFromString(envelope.body())) {
    return make_error(Errc::invalid, "catalog body is not a valid Catalog");
  }
  if (catalog.channel().empty()) return make_error(Errc::invalid, "catalog names no channel");
  return catalog;
}

Expected<pb::DeltaManifest> TrustPolicy::verify_delta(std::string_view signed_delta) const {
  SOVDEV_ASSIGN(pb::Signed envelope,
                parse_signed(signed_delta, kTypeDelta, kMaxDeltaManifestBytes));
  return verify_delta(envelope);
}

Expected<pb::DeltaManifest> TrustPolicy::verify_delta(const pb::Signed& envelope) const {
  SOVDEV_TRY(verify_threshold(envelope, kTypeDelta, root_.publisher(), keys_, "delta manifest"));
  pb::DeltaManifest manifest;
  if (!manifest.ParseFromString(envelope.body())) {
    return make_error(Errc::invalid, "delta manifest body is not a valid DeltaManifest");
  }
  SOVDEV_TRY(check_delta_shape(manifest));
  return manifest;
}

}  // namespace sovdev
