// Role separation: targets keys sign content, the hub's online keys sign catalogs and delta
// manifests only, and each role rotates with the root keys alone.
#include <catch2/catch.hpp>

#include "bundles/delta.hpp"
#include "bundles/hash.hpp"
#include "bundles/sign_objects.hpp"
#include "bundles/trust.hpp"
#include "fixtures.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

std::string catalog_signed_by(const std::vector<SecretKey>& keys) {
  pb::Catalog c;
  c.set_schema(1);
  c.set_channel("edge");
  c.set_serial(1);
  c.set_expires_at(4102444800);
  auto* e = c.add_entries();
  e->set_stack("sovdev");
  e->set_version(3);
  e->set_manifest_digest(sha256(small_manifest().SerializeAsString()));
  return sign_catalog(c, keys);
}

std::string delta_signed_by(const std::vector<SecretKey>& keys) {
  static const std::string old_stream(4096, 'a');
  static const std::string new_stream = old_stream + std::string(16, 'b');
  auto delta = make_delta(old_stream, new_stream);
  REQUIRE(delta);
  return sign_delta_manifest(make_delta_manifest(sha256("new"), sha256("old"), *delta), keys);
}

TrustPolicy split_policy(const Keys& k) {
  return *TrustPolicy::from_initial(signed_root(roles_body(k, 1), k.roots));
}

std::vector<SecretKey> both(const std::vector<SecretKey>& a, const std::vector<SecretKey>& b) {
  std::vector<SecretKey> out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

}  // namespace

TEST_CASE("a manifest signed by the hub's online key is refused, naming the targets role",
          "[trust][roles]") {
  Keys k = make_keys(1, 1);
  const TrustPolicy policy = split_policy(k);
  auto r = policy.verify_manifest(manifest_signed_by(k.online), nullptr);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::signature);
  CHECK_THAT(r.error().message, Catch::Contains("0 of 1 required valid signature(s) by targets "
                                                "keys"));
  CHECK_THAT(r.error().message, Catch::Contains("is an online key, and a bundle manifest counts "
                                                "only targets keys"));
  CHECK(policy.verify_manifest(manifest_signed_by(k.publishers), nullptr));
}

TEST_CASE("a catalog signed by a targets key is refused, naming the online role",
          "[trust][roles]") {
  Keys k = make_keys(1, 1);
  const TrustPolicy policy = split_policy(k);
  auto r = policy.verify_catalog(catalog_signed_by(k.publishers));
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("by online keys"));
  CHECK_THAT(r.error().message, Catch::Contains("is a targets key"));
  CHECK(policy.verify_catalog(catalog_signed_by(k.online)));
}

TEST_CASE("a delta manifest counts only online signatures", "[trust][roles]") {
  Keys k = make_keys(1, 1);
  const TrustPolicy policy = split_policy(k);
  auto r = policy.verify_delta(delta_signed_by(k.publishers));
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message,
             Catch::Contains("delta manifest") && Catch::Contains("by online keys"));
  CHECK(policy.verify_delta(delta_signed_by(k.online)));
}

TEST_CASE("the online threshold and the targets threshold are counted apart", "[trust][roles]") {
  Keys k = make_keys(1, 2, 2);
  const TrustPolicy policy =
      *TrustPolicy::from_initial(signed_root(roles_body(k, 1, 1, 2, 2), k.roots));
  // One targets key plus one online key is not two targets signatures.
  auto mixed = policy.verify_manifest(manifest_signed_by({k.publishers[0], k.online[0]}), nullptr);
  REQUIRE_FALSE(mixed);
  CHECK_THAT(mixed.error().message, Catch::Contains("1 of 2"));
  CHECK(policy.verify_manifest(manifest_signed_by(k.publishers), nullptr));
  CHECK_FALSE(policy.verify_catalog(catalog_signed_by({k.online[0], k.publishers[0]})));
  CHECK(policy.verify_catalog(catalog_signed_by(k.online)));
}

TEST_CASE("a trust root that makes one key both targets and online cannot be made",
          "[trust][roles]") {
  Keys k = make_keys(1, 1);
  k.online = k.publishers;
  TrustRootSpec spec;
  spec.root_keys = publics(k.roots);
  spec.targets_keys = publics(k.publishers);
  spec.online_keys = publics(k.online);
  auto made = make_trust_root(spec);
  REQUIRE_FALSE(made);
  CHECK_THAT(made.error().message, Catch::Contains("both the online and the targets role"));

  // Nor one a root key holder wrote by hand: the agent refuses it as it parses it.
  Keys ok = make_keys(1, 1);
  pb::TrustRoot body = roles_body(ok, 1);
  body.mutable_online()->add_key_ids(body.targets().key_ids(0));
  auto pinned = TrustPolicy::from_initial(signed_root(body, ok.roots));
  REQUIRE_FALSE(pinned);
  CHECK_THAT(pinned.error().message, Catch::Contains("both the online and the targets role"));
}

TEST_CASE("a root key may not be an online key", "[trust][roles]") {
  Keys k = make_keys(1, 1);
  k.online = k.roots;
  TrustRootSpec spec;
  spec.root_keys = publics(k.roots);
  spec.targets_keys = publics(k.publishers);
  spec.online_keys = publics(k.online);
  auto made = make_trust_root(spec);
  REQUIRE_FALSE(made);
  CHECK_THAT(made.error().message, Catch::Contains("both the online and the root role"));
}

TEST_CASE("a trust root mixing a publisher role with targets and online is refused",
          "[trust][roles]") {
  Keys k = make_keys(1, 1);
  pb::TrustRoot body = roles_body(k, 1);
  *body.mutable_publisher() = body.targets();
  auto pinned = TrustPolicy::from_initial(signed_root(body, k.roots));
  REQUIRE_FALSE(pinned);
  CHECK_THAT(pinned.error().message, Catch::Contains("either publisher"));
}

TEST_CASE("a legacy root's publisher keys still sign manifests, catalogs and deltas",
          "[trust][roles]") {
  Keys k = make_keys(1, 1);
  const TrustPolicy policy = *TrustPolicy::from_initial(signed_root(root_body(k, 1, 1), k.roots));
  CHECK(policy.legacy());
  CHECK(policy.verify_manifest(manifest_signed_by(k.publishers), nullptr));
  CHECK(policy.verify_catalog(catalog_signed_by(k.publishers)));
  CHECK(policy.verify_delta(delta_signed_by(k.publishers)));
  CHECK(policy.check_signers(TrustRole::online, k.publishers, "serve"));
  CHECK_FALSE(split_policy(k).legacy());
}

TEST_CASE("rotating the online key needs only the root keys and keeps every bundle valid",
          "[trust][roles]") {
  Keys k = make_keys(1, 1);
  const TrustPolicy v1 = split_policy(k);
  const std::string bundle = manifest_signed_by(k.publishers);
  Keys next = k;
  next.online = {generate_key("online-new")};
  auto v2 = v1.rotate(signed_root(roles_body(next, 2), k.roots));
  REQUIRE(v2);
  CHECK(v2->verify_manifest(bundle, nullptr));
  CHECK(v2->verify_catalog(catalog_signed_by(next.online)));
  auto old_online = v2->verify_catalog(catalog_signed_by(k.online));
  REQUIRE_FALSE(old_online);
  CHECK_THAT(old_online.error().message, Catch::Contains("unknown key"));
}

TEST_CASE("rotating the targets key moves content signing to the new key", "[trust][roles]") {
  Keys k = make_keys(1, 1);
  const TrustPolicy v1 = split_policy(k);
  Keys next = k;
  next.publishers = {generate_key("targets-new")};
  auto v2 = v1.rotate(signed_root(roles_body(next, 2), k.roots));
  REQUIRE(v2);
  CHECK(v2->verify_manifest(manifest_signed_by(next.publishers), nullptr));
  CHECK_FALSE(v2->verify_manifest(manifest_signed_by(k.publishers), nullptr));
  CHECK(v2->verify_catalog(catalog_signed_by(k.online)));
}

TEST_CASE("rotating the root keys keeps the targets and online keys working", "[trust][roles]") {
  Keys k = make_keys(1, 1);
  const TrustPolicy v1 = split_policy(k);
  Keys next = k;
  next.roots = {generate_key("root-new")};
  auto v2 = v1.rotate(signed_root(roles_body(next, 2), both(k.roots, next.roots)));
  REQUIRE(v2);
  CHECK(v2->verify_manifest(manifest_signed_by(k.publishers), nullptr));
  CHECK(v2->verify_catalog(catalog_signed_by(k.online)));
  // Only the new root key may sign v3 now.
  CHECK_FALSE(v2->rotate(signed_root(roles_body(next, 3), k.roots)));
  CHECK(v2->rotate(signed_root(roles_body(next, 3), next.roots)));
}

TEST_CASE(
    "a legacy root rotates to separate roles, after which the publisher key signs only "
    "its new role",
    "[trust][roles]") {
  Keys k = make_keys(1, 1);
  const TrustPolicy v1 = *TrustPolicy::from_initial(signed_root(root_body(k, 1, 1), k.roots));
  const std::string bundle = manifest_signed_by(k.publishers);
  // The old publisher key becomes the targets key; the hub gets a new online key.
  auto v2 = v1.rotate(signed_root(roles_body(k, 2), k.roots));
  REQUIRE(v2);
  CHECK_FALSE(v2->legacy());
  CHECK(v2->verify_manifest(bundle, nullptr));
  CHECK_FALSE(v2->verify_catalog(catalog_signed_by(k.publishers)));
  CHECK(v2->verify_catalog(catalog_signed_by(k.online)));
}

TEST_CASE("check_signers refuses a key outside the role and names the role it holds",
          "[trust][roles]") {
  Keys k = make_keys(1, 1, 2);
  const TrustPolicy policy =
      *TrustPolicy::from_initial(signed_root(roles_body(k, 1, 1, 1, 2), k.roots));
  auto targets_on_hub = policy.check_signers(TrustRole::online, k.publishers, "serve");
  REQUIRE_FALSE(targets_on_hub);
  CHECK_THAT(targets_on_hub.error().message,
             Catch::Contains("serve: key 'pub0'") &&
                 Catch::Contains("is not an online key of trust root v1 (it is a targets key)"));
  auto root_on_hub = policy.check_signers(TrustRole::online, k.roots, "serve");
  REQUIRE_FALSE(root_on_hub);
  CHECK_THAT(root_on_hub.error().message, Catch::Contains("(it is a root key)"));
  auto online_build = policy.check_signers(TrustRole::targets, k.online, "build");
  REQUIRE_FALSE(online_build);
  CHECK_THAT(online_build.error().message, Catch::Contains("is not a targets key"));
  auto below = policy.check_signers(TrustRole::online, {k.online[0]}, "serve");
  REQUIRE_FALSE(below);
  CHECK_THAT(below.error().message, Catch::Contains("1 of the 2 online keys"));
  CHECK(policy.check_signers(TrustRole::online, k.online, "serve"));
  CHECK(policy.check_signers(TrustRole::targets, k.publishers, "build"));
}

namespace {

pb::RevocationList revocation_list() {
  pb::RevocationList list;
  list.set_schema(1);
  list.set_channel("edge");
  list.set_serial(2);
  auto* r = list.add_revoked();
  r->set_stack("sovdev");
  r->set_version(3);
  r->set_manifest_digest(sha256("manifest"));
  r->set_reason("breaks postgres");
  return list;
}

}  // namespace

TEST_CASE("a revocation list counts only targets signatures", "[trust][roles][revocations]") {
  Keys k = make_keys(1, 1);
  const TrustPolicy policy = split_policy(k);
  auto good = policy.verify_revocations(sign_revocations(revocation_list(), k.publishers));
  REQUIRE(good);
  CHECK(good->revoked(0).reason() == "breaks postgres");
  // The online key signs catalogs, and the catalog carries the list: it still cannot forge one.
  auto by_online = policy.verify_revocations(sign_revocations(revocation_list(), k.online));
  REQUIRE_FALSE(by_online);
  CHECK(by_online.error().code == Errc::signature);
  CHECK_THAT(by_online.error().message, Catch::Contains("targets"));
  // A catalog's signature never verifies as a revocation list's (domain separation).
  pb::Signed as_catalog;
  REQUIRE(as_catalog.ParseFromString(sign_catalog(pb::Catalog(), k.publishers)));
  pb::Signed swapped;
  REQUIRE(swapped.ParseFromString(sign_revocations(revocation_list(), k.publishers)));
  *swapped.mutable_signatures() = as_catalog.signatures();
  CHECK_FALSE(policy.verify_revocations(swapped.SerializeAsString()));
}

TEST_CASE("a revocation list of the wrong shape is refused", "[trust][roles][revocations]") {
  Keys k = make_keys(1, 1);
  const TrustPolicy policy = split_policy(k);
  auto list = revocation_list();
  list.mutable_revoked(0)->set_manifest_digest("short");
  CHECK_FALSE(policy.verify_revocations(sign_revocations(list, k.publishers)));
  list = revocation_list();
  list.set_serial(0);
  CHECK_FALSE(policy.verify_revocations(sign_revocations(list, k.publishers)));
  list = revocation_list();
  list.set_channel("Bad Channel");
  CHECK_FALSE(policy.verify_revocations(sign_revocations(list, k.publishers)));
  list = revocation_list();
  for (size_t i = 0; i < kMaxRevokedVersions; ++i) *list.add_revoked() = list.revoked(0);
  auto big = policy.verify_revocations(sign_revocations(list, k.publishers));
  REQUIRE_FALSE(big);
  CHECK(big.error().code == Errc::too_large);
}
