#include <catch2/catch.hpp>

#include "bundles/keys.hpp"
#include "common/hex.hpp"

using namespace sovdev;

TEST_CASE("key files round-trip and refuse the wrong kind of key", "[keys]") {
  const SecretKey key = generate_key("publisher-1");
  auto secret = parse_secret_key(encode_secret_key(key));
  REQUIRE(secret);
  CHECK(secret->secret == key.secret);
  CHECK(secret->name == "publisher-1");

  auto pub = parse_public_key(encode_public_key({key.name, key.public_key()}));
  REQUIRE(pub);
  CHECK(pub->public_key == key.public_key());

  auto wrong = parse_public_key(encode_secret_key(key));
  REQUIRE_FALSE(wrong);
  CHECK_THAT(wrong.error().message, Catch::Contains("secret key file"));

  auto garbage = parse_secret_key("hello world");
  REQUIRE_FALSE(garbage);
  CHECK_THAT(garbage.error().message, Catch::Contains("not a sovdev key file"));
}

TEST_CASE("a secret key file whose public half was edited is refused", "[keys]") {
  SecretKey key = generate_key("k");
  key.secret[40] = static_cast<char>(key.secret[40] ^ 1);
  auto parsed = parse_secret_key(encode_secret_key(key));
  REQUIRE_FALSE(parsed);
  CHECK_THAT(parsed.error().message, Catch::Contains("damaged"));
}

TEST_CASE("a signature is bound to its object type", "[keys]") {
  const SecretKey key = generate_key("k");
  pb::Role role;
  role.add_key_ids(key_id(key.public_key()));
  role.set_threshold(1);
  KeyRing ring{{key_id(key.public_key()), key.public_key()}};

  pb::Signed catalog = make_signed(kTypeCatalog, "body");
  add_signature(catalog, key);
  REQUIRE(verify_threshold(catalog, kTypeCatalog, role, ring, "catalog"));

  // The same body and signature presented as a manifest must not verify.
  pb::Signed as_manifest = catalog;
  as_manifest.set_type(std::string(kTypeManifest));
  auto r = verify_threshold(as_manifest, kTypeManifest, role, ring, "manifest");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::signature);
  CHECK_THAT(r.error().message, Catch::Contains("signature does not verify"));
}
