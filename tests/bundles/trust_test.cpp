#include <catch2/catch.hpp>

#include "bundles/hash.hpp"
#include "bundles/sign_objects.hpp"
#include "bundles/trust.hpp"
#include "fixtures.hpp"

using namespace sovdev;
using namespace sovdev::testing;

TEST_CASE("an initial trust root signed by its root threshold is accepted", "[trust]") {
  Keys k = make_keys(3, 1);
  auto policy =
      TrustPolicy::from_initial(signed_root(root_body(k, 1, 2), {k.roots[0], k.roots[2]}));
  REQUIRE(policy);
  CHECK(policy->version() == 1);
}

TEST_CASE("a trust root below its own threshold is refused", "[trust]") {
  Keys k = make_keys(3, 1);
  auto policy = TrustPolicy::from_initial(signed_root(root_body(k, 1, 2), {k.roots[0]}));
  REQUIRE_FALSE(policy);
  CHECK(policy.error().code == Errc::signature);
  CHECK_THAT(policy.error().message, Catch::Contains("1 of 2 required"));
}

TEST_CASE("a trust root whose threshold exceeds its keys cannot be made", "[trust]") {
  Keys k = make_keys(1, 1);
  TrustRootSpec spec;
  spec.root_keys = publics(k.roots);
  spec.publisher_keys = publics(k.publishers);
  spec.root_threshold = 2;
  auto root = make_trust_root(spec);
  REQUIRE_FALSE(root);
  CHECK_THAT(root.error().message, Catch::Contains("cannot be met"));
}

TEST_CASE("a manifest with no signature is refused", "[trust]") {
  Keys k = make_keys(1, 1);
  auto policy = *TrustPolicy::from_initial(signed_root(root_body(k, 1, 1), k.roots));
  auto r = policy.verify_manifest(manifest_signed_by({}), nullptr);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::signature);
  CHECK_THAT(r.error().message, Catch::Contains("has no signatures"));
}

TEST_CASE("a manifest with a bad signature is refused", "[trust]") {
  Keys k = make_keys(1, 1);
  auto policy = *TrustPolicy::from_initial(signed_root(root_body(k, 1, 1), k.roots));
  pb::Signed env;
  REQUIRE(env.ParseFromString(manifest_signed_by(k.publishers)));
  std::string sig = env.signatures(0).signature();
  sig[5] = static_cast<char>(sig[5] ^ 0x20);
  env.mutable_signatures(0)->set_signature(sig);
  auto r = policy.verify_manifest(env.SerializeAsString(), nullptr);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("signature does not verify"));
}

TEST_CASE("a manifest signed by an unknown key is refused", "[trust]") {
  Keys k = make_keys(1, 1);
  auto policy = *TrustPolicy::from_initial(signed_root(root_body(k, 1, 1), k.roots));
  auto r = policy.verify_manifest(manifest_signed_by({generate_key("intruder")}), nullptr);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("unknown key"));
}

TEST_CASE("a manifest signed by a root key but not a publisher key is refused", "[trust]") {
  Keys k = make_keys(1, 1);
  auto policy = *TrustPolicy::from_initial(signed_root(root_body(k, 1, 1), k.roots));
  auto r = policy.verify_manifest(manifest_signed_by(k.roots), nullptr);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("unknown key"));
}

TEST_CASE("a manifest below the publisher threshold is refused", "[trust]") {
  Keys k = make_keys(1, 3);
  auto policy = *TrustPolicy::from_initial(signed_root(root_body(k, 1, 1, 2), k.roots));
  auto r = policy.verify_manifest(manifest_signed_by({k.publishers[1]}), nullptr);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("threshold not met: 1 of 2"));
  REQUIRE(policy.verify_manifest(manifest_signed_by({k.publishers[1], k.publishers[2]}), nullptr));
}

TEST_CASE("duplicate signatures from one key count once", "[trust]") {
  Keys k = make_keys(1, 2);
  auto policy = *TrustPolicy::from_initial(signed_root(root_body(k, 1, 1, 2), k.roots));
  auto r = policy.verify_manifest(manifest_signed_by({k.publishers[0], k.publishers[0]}), nullptr);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("1 of 2"));
  CHECK_THAT(r.error().message, Catch::Contains("duplicate signature counted once"));
}

TEST_CASE("a verified manifest's digest is the hash of its body", "[trust]") {
  Keys k = make_keys(1, 1);
  auto policy = *TrustPolicy::from_initial(signed_root(root_body(k, 1, 1), k.roots));
  std::string digest;
  auto m = policy.verify_manifest(manifest_signed_by(k.publishers), &digest);
  REQUIRE(m);
  CHECK(digest == sha256(small_manifest().SerializeAsString()));
  CHECK(m->stack() == "sovdev");
}

TEST_CASE("root rotation signed by old and new thresholds is accepted", "[trust]") {
  Keys old_keys = make_keys(2, 1);
  Keys new_keys = make_keys(2, 1);
  auto v1 = *TrustPolicy::from_initial(signed_root(root_body(old_keys, 1, 2), old_keys.roots));
  std::vector<SecretKey> signers = old_keys.roots;
  signers.insert(signers.end(), new_keys.roots.begin(), new_keys.roots.end());
  auto v2 = v1.rotate(signed_root(root_body(new_keys, 2, 2), signers));
  REQUIRE(v2);
  CHECK(v2->version() == 2);
  // The new publisher signs now; the old one no longer does.
  CHECK(v2->verify_manifest(manifest_signed_by(new_keys.publishers), nullptr));
  CHECK_FALSE(v2->verify_manifest(manifest_signed_by(old_keys.publishers), nullptr));
}

TEST_CASE("root rotation without the old roots' signatures is refused", "[trust]") {
  Keys old_keys = make_keys(2, 1);
  Keys new_keys = make_keys(2, 1);
  auto v1 = *TrustPolicy::from_initial(signed_root(root_body(old_keys, 1, 2), old_keys.roots));
  // Only one of the two old root keys signs: below the old threshold.
  std::vector<SecretKey> signers = new_keys.roots;
  signers.push_back(old_keys.roots[0]);
  auto v2 = v1.rotate(signed_root(root_body(new_keys, 2, 2), signers));
  REQUIRE_FALSE(v2);
  CHECK(v2.error().code == Errc::signature);
  CHECK_THAT(v2.error().message, Catch::Contains("must be signed by the current root keys"));
}

TEST_CASE("root rotation without the new roots' own threshold is refused", "[trust]") {
  Keys old_keys = make_keys(1, 1);
  Keys new_keys = make_keys(2, 1);
  auto v1 = *TrustPolicy::from_initial(signed_root(root_body(old_keys, 1, 1), old_keys.roots));
  auto v2 =
      v1.rotate(signed_root(root_body(new_keys, 2, 2), {old_keys.roots[0], new_keys.roots[0]}));
  REQUIRE_FALSE(v2);
  CHECK_THAT(v2.error().message, Catch::Contains("trust root v2"));
}

TEST_CASE("root rotation skipping a version is refused", "[trust]") {
  Keys k = make_keys(1, 1);
  auto v1 = *TrustPolicy::from_initial(signed_root(root_body(k, 1, 1), k.roots));
  auto v3 = v1.rotate(signed_root(root_body(k, 3, 1), k.roots));
  REQUIRE_FALSE(v3);
  CHECK(v3.error().code == Errc::rollback);
  CHECK_THAT(v3.error().message, Catch::Contains("exactly one"));
  auto again = v1.rotate(signed_root(root_body(k, 1, 1), k.roots));
  REQUIRE_FALSE(again);
}

TEST_CASE("a catalog signature does not verify as a trust root", "[trust]") {
  Keys k = make_keys(1, 1);
  pb::TrustRoot root = root_body(k, 1, 1);
  pb::Signed env = make_signed(kTypeCatalog, root.SerializeAsString());
  add_signature(env, k.roots[0]);
  env.set_type(std::string(kTypeTrustRoot));
  auto policy = TrustPolicy::from_initial(env.SerializeAsString());
  REQUIRE_FALSE(policy);
  CHECK(policy.error().code == Errc::signature);
}

TEST_CASE("garbage and oversized trust roots are refused cleanly", "[trust]") {
  CHECK_FALSE(TrustPolicy::from_initial("not protobuf at all \xff\xff\xff"));
  auto big = TrustPolicy::from_initial(std::string(kMaxTrustRootBytes + 1, 'a'));
  REQUIRE_FALSE(big);
  CHECK(big.error().code == Errc::too_large);
}
