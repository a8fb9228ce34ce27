#include "bundles/trust.hpp"

#include <set>

#include "bundles/delta.hpp"
#include "bundles/hash.hpp"
#include "bundles/manifest_rules.hpp"
#include "bundles/messages.hpp"

namespace sovdev {
namespace {

// "an online", "a targets": messages read as sentences.
std::string with_article(const std::string& word) {
  return (!word.empty() && (word[0] == 'o' || word[0] == 'a') ? "an " : "a ") + word;
}

bool has_key(const pb::Role& role, std::string_view id) {
  for (const auto& k : role.key_ids()) {
    if (k == id) return true;
  }
  return false;
}

Status check_role(const pb::Role& role, std::string_view name, const KeyRing& keys) {
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
  return {};
}

// The online keys sit on the serving hub, which parses every agent's traffic: were one of them
// also a targets or root key, taking the hub would be enough to install content or a new root.
Status check_online_apart(const pb::TrustRoot& root) {
  for (const auto& id : root.online().key_ids()) {
    std::string name = short_hex(id);
    for (const auto& k : root.keys()) {
      if (k.key_id() == id) name = "'" + k.name() + "' (" + short_hex(id) + ")";
    }
    for (const auto& [other, label] :
         {std::pair{&root.targets(), "targets"}, std::pair{&root.root(), "root"}}) {
      if (has_key(*other, id)) {
        return make_error(Errc::invalid,
                          "trust root gives key " + name + " both the online and the " + label +
                              " role: the serving hub's key must sign catalogs and delta "
                              "manifests only; make a separate key for each");
      }
    }
  }
  return {};
}

// Schema 1 roots have root + publisher; schema 2 roots root + targets + online. A root mixing
// the two forms is refused rather than guessed at.
Status check_roles(const pb::TrustRoot& root, const KeyRing& keys) {
  SOVDEV_TRY(check_role(root.root(), "root", keys));
  const bool split = root.targets().key_ids_size() > 0 || root.online().key_ids_size() > 0;
  if (root.publisher().key_ids_size() > 0) {
    if (split) {
      return make_error(Errc::invalid,
                        "trust root has a publisher role and targets/online roles: a root has "
                        "either publisher (schema 1) or targets and online (schema 2)");
    }
    return check_role(root.publisher(), "publisher", keys);
  }
  if (!split) {
    return make_error(Errc::invalid, "trust root has no targets or online keys");
  }
  SOVDEV_TRY(check_role(root.targets(), "targets", keys));
  SOVDEV_TRY(check_role(root.online(), "online", keys));
  return check_online_apart(root);
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
  SOVDEV_TRY(check_roles(root, keys));
  return keys;
}

}  // namespace

std::string_view role_name(TrustRole role) {
  switch (role) {
    case TrustRole::root: return "root";
    case TrustRole::targets: return "targets";
    case TrustRole::online: return "online";
  }
  return "?";
}

Expected<pb::TrustRoot> make_trust_root(const TrustRootSpec& spec) {
  const bool legacy = !spec.publisher_keys.empty();
  if (legacy && (!spec.targets_keys.empty() || !spec.online_keys.empty())) {
    return make_error(Errc::invalid,
                      "a trust root has either publisher keys (schema 1) or targets and online "
                      "keys, not both");
  }
  pb::TrustRoot root;
  root.set_schema(legacy ? 1 : kTrustRootSchema);
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
  root.mutable_root()->set_threshold(spec.root_threshold);
  if (legacy) {
    for (const auto& k : spec.publisher_keys) add(k, root.mutable_publisher());
    root.mutable_publisher()->set_threshold(spec.publisher_threshold);
  } else {
    for (const auto& k : spec.targets_keys) add(k, root.mutable_targets());
    for (const auto& k : spec.online_keys) add(k, root.mutable_online());
    root.mutable_targets()->set_threshold(spec.targets_threshold);
    root.mutable_online()->set_threshold(spec.online_threshold);
  }
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
  if (root.schema() > kTrustRootSchema) {
    return make_error(Errc::invalid, "trust root schema " + std::to_string(root.schema()) +
                                         " is newer than this program understands");
  }
  if (root.version() == 0) return make_error(Errc::invalid, "trust root version must be ≥ 1");
  SOVDEV_ASSIGN(KeyRing keys, keyring_of(root));
  SOVDEV_TRY(verify_threshold(envelope, kTypeTrustRoot, root.root(), keys,
                              "trust root v" + std::to_string(root.version()), "root"));
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
                                     " (by the keys of v" + std::to_string(version()) + ")",
                                 "root");
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
  SOVDEV_TRY(verify_role(envelope, kTypeManifest, TrustRole::targets, "bundle manifest"));
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
  SOVDEV_TRY(verify_role(envelope, kTypeCatalog, TrustRole::online, "catalog"));
  pb::Catalog catalog;
  if (!catalog.ParseFromString(envelope.body())) {
    return make_error(Errc::invalid, "catalog body is not a valid Catalog");
  }
  if (catalog.channel().empty()) return make_error(Errc::invalid, "catalog names no channel");
  return catalog;
}

Expected<pb::RevocationList> TrustPolicy::verify_revocations(std::string_view signed_list) const {
  SOVDEV_ASSIGN(pb::Signed envelope,
                parse_signed(signed_list, kTypeRevocations, kMaxRevocationsBytes));
  SOVDEV_TRY(verify_role(envelope, kTypeRevocations, TrustRole::targets, "revocation list"));
  pb::RevocationList list;
  if (!list.ParseFromString(envelope.body())) {
    return make_error(Errc::invalid, "revocation list body is not a valid RevocationList");
  }
  if (!valid_channel_name(list.channel())) {
    return make_error(Errc::invalid, "revocation list names no valid channel");
  }
  if (list.serial() == 0) return make_error(Errc::invalid, "revocation list has serial 0");
  if (static_cast<size_t>(list.revoked_size()) > kMaxRevokedVersions) {
    return make_error(Errc::too_large, "revocation list names more than " +
                                           std::to_string(kMaxRevokedVersions) + " versions");
  }
  for (const auto& r : list.revoked()) {
    if (r.manifest_digest().size() != kDigestSize || r.stack().empty() || r.version() == 0) {
      return make_error(Errc::invalid,
                        "revocation list: an entry without stack, version or a 32-byte digest");
    }
  }
  return list;
}

Expected<pb::DeltaManifest> TrustPolicy::verify_delta(std::string_view signed_delta) const {
  SOVDEV_ASSIGN(pb::Signed envelope,
                parse_signed(signed_delta, kTypeDelta, kMaxDeltaManifestBytes));
  return verify_delta(envelope);
}

Expected<pb::DeltaManifest> TrustPolicy::verify_delta(const pb::Signed& envelope) const {
  SOVDEV_TRY(verify_role(envelope, kTypeDelta, TrustRole::online, "delta manifest"));
  pb::DeltaManifest manifest;
  if (!manifest.ParseFromString(envelope.body())) {
    return make_error(Errc::invalid, "delta manifest body is not a valid DeltaManifest");
  }
  SOVDEV_TRY(check_delta_shape(manifest));
  return manifest;
}

const pb::Role& TrustPolicy::role(TrustRole r) const {
  if (r == TrustRole::root) return root_.root();
  if (legacy()) return root_.publisher();
  return r == TrustRole::targets ? root_.targets() : root_.online();
}

Status TrustPolicy::verify_role(const pb::Signed& envelope, std::string_view type, TrustRole r,
                                std::string_view what) const {
  const std::string name = legacy() ? "publisher" : std::string(role_name(r));
  auto ok = verify_threshold(envelope, type, role(r), keys_, what, name);
  if (ok || legacy()) return ok;
  // A signature by a key of another role is the tell of a stolen or misplaced key (the hub's
  // online key signing content): name the role it holds, so the log says what happened.
  std::string misuse;
  for (const auto& sig : envelope.signatures()) {
    for (TrustRole other : {TrustRole::root, TrustRole::targets, TrustRole::online}) {
      if (other == r || !has_key(role(other), sig.key_id())) continue;
      misuse += "; key " + short_hex(sig.key_id()) + " is " +
                (other == TrustRole::online ? "an " : "a ") + std::string(role_name(other)) +
                " key, and a " + std::string(what) + " counts only " + std::string(role_name(r)) +
                " keys";
    }
  }
  if (misuse.empty()) return ok;
  return make_error(ok.error().code, ok.error().message + misuse);
}

Status TrustPolicy::check_signers(TrustRole r, const std::vector<SecretKey>& signers,
                                  std::string_view what) const {
  const std::string name(role_name(r));
  const std::string where = "trust root v" + std::to_string(version());
  if (signers.empty()) return make_error(Errc::usage, std::string(what) + ": no key given");
  std::set<std::string> distinct;
  for (const auto& key : signers) {
    const std::string id = key_id(key.public_key());
    const std::string label = "key '" + key.name + "' (" + short_hex(id) + ")";
    std::string holds;
    for (TrustRole other : {TrustRole::root, TrustRole::targets, TrustRole::online}) {
      if (has_key(role(other), id))
        holds += (holds.empty() ? "" : ", ") + std::string(role_name(other));
    }
    if (!has_key(role(r), id)) {
      return make_error(Errc::signature,
                        std::string(what) + ": " + label + " is not " + with_article(name) +
                            " key of " + where +
                            (holds.empty() ? "" : " (it is " + with_article(holds) + " key)") +
                            ": agents would refuse what it signs");
    }
    // In a schema 2 root the roles are apart already (check_online_apart); a root key may also
    // be a targets key (both offline) but must never be handed to the hub.
    if (r == TrustRole::online && has_key(role(TrustRole::root), id)) {
      return make_error(Errc::signature, std::string(what) + ": " + label +
                                             " is also a root key of " + where +
                                             ": never give a root key to the serving hub");
    }
    distinct.insert(id);
  }
  if (distinct.size() < role(r).threshold()) {
    return make_error(Errc::signature,
                      std::string(what) + ": " + std::to_string(distinct.size()) + " of the " +
                          std::to_string(role(r).threshold()) + " " + name + " keys " + where +
                          " requires: agents would refuse what they sign; give more --key");
  }
  return {};
}

}  // namespace sovdev
