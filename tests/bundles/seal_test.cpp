// bundles/seal: agent identities, epoch keys sealed to one agent, values sealed to their place.
#include <catch2/catch.hpp>
#include <string>

#include "bundles/keys.hpp"
#include "bundles/seal.hpp"

using namespace sovdev;
using namespace sovdev::seal;

namespace {

std::string flip(std::string s, size_t at) {
  s[at] = static_cast<char>(s[at] ^ 0x01);
  return s;
}

std::string object_ad(std::string_view name) {
  return associated_data("sovdev/v1/secret",
                         {"sovdev", "12", "edge", "3", "v1", "Secret", "data", name});
}

}  // namespace

TEST_CASE("an agent key survives its text form, and the public half is derived from the secret",
          "[seal]") {
  const AgentKey key = generate_agent_key("edge-07");
  REQUIRE(key.public_key.size() == kKeySize);
  REQUIRE(key.secret.size() == kKeySize);
  const std::string secret_text = encode_agent_secret(key);
  const std::string public_text = encode_agent_public(key);
  CHECK(secret_text.rfind("sovdev-x25519-secret edge-07 ", 0) == 0);
  CHECK(public_text.rfind("sovdev-x25519-public edge-07 ", 0) == 0);

  auto secret = parse_agent_secret(secret_text);
  REQUIRE(secret);
  CHECK(secret->name == "edge-07");
  CHECK(secret->public_key == key.public_key);
  CHECK(secret->secret.view() == key.secret.view());
  auto pub = parse_agent_public(public_text);
  REQUIRE(pub);
  CHECK(pub->public_key == key.public_key);
  CHECK(pub->secret.empty());
}

TEST_CASE("agent key files of the wrong kind or shape are refused with a message", "[seal]") {
  const AgentKey key = generate_agent_key("a");
  auto swapped = parse_agent_secret(encode_agent_public(key));
  REQUIRE_FALSE(swapped);
  CHECK_THAT(swapped.error().message, Catch::Contains("sovdev-x25519-public key file"));
  // A signing key is never taken for an agent identity.
  auto signing = parse_agent_public(encode_public_key({"a", generate_key("a").public_key()}));
  REQUIRE_FALSE(signing);
  CHECK_THAT(signing.error().message, Catch::Contains("not a sovdev agent key file"));
  CHECK_FALSE(parse_agent_public("sovdev-x25519-public a 00ff"));
  CHECK_FALSE(parse_agent_public("sovdev-x25519-public a " + std::string(64, 'g')));
  CHECK_FALSE(parse_agent_public("sovdev-x25519-public bad/name " + std::string(64, '0')));
  CHECK_FALSE(parse_agent_public(encode_agent_public(key) + " extra"));
}

TEST_CASE("an epoch key sealed to one agent opens for it alone, and a changed box not at all",
          "[seal]") {
  const AgentKey alice = generate_agent_key("alice");
  const AgentKey bob = generate_agent_key("bob");
  const SecretBytes epoch = random_key();
  const std::string box = seal_to(alice.public_key, epoch);
  CHECK(box.size() == kBoxOverhead + kKeySize);

  auto opened = open_sealed(box, alice);
  REQUIRE(opened);
  CHECK(opened->view() == epoch.view());

  auto other = open_sealed(box, bob);
  REQUIRE_FALSE(other);
  CHECK(other.error().code == Errc::signature);
  for (const size_t at : {size_t{0}, size_t{40}, box.size() - 1}) {
    auto changed = open_sealed(flip(box, at), alice);
    REQUIRE_FALSE(changed);
    CHECK(changed.error().code == Errc::signature);
  }
  auto cut = open_sealed(box.substr(1), alice);
  REQUIRE_FALSE(cut);
  CHECK(cut.error().code == Errc::invalid);
  // A public key alone opens nothing.
  auto public_only = open_sealed(box, *parse_agent_public(encode_agent_public(alice)));
  REQUIRE_FALSE(public_only);
  CHECK(public_only.error().code == Errc::usage);
}

TEST_CASE("an epoch key's id names channel, epoch and key, and reveals none of them", "[seal]") {
  const SecretBytes key = random_key();
  const SecretBytes other = random_key();
  const std::string id = epoch_key_id("edge", 3, key);
  CHECK(id.size() == kKeyIdSize);
  CHECK(id == epoch_key_id("edge", 3, SecretBytes::copy_of(key.view())));
  CHECK(id != epoch_key_id("edge", 4, key));
  CHECK(id != epoch_key_id("edge2", 3, key));
  CHECK(id != epoch_key_id("edge", 3, other));
  CHECK(id.find(std::string(key.view())) == std::string::npos);
}

TEST_CASE("associated data keeps its fields apart", "[seal]") {
  CHECK(associated_data("d", {"a", "bc"}) != associated_data("d", {"ab", "c"}));
  CHECK(associated_data("d", {"a"}) != associated_data("e", {"a"}));
  CHECK(associated_data("d", {"", "a"}) != associated_data("d", {"a", ""}));
}

TEST_CASE("a sealed value opens under its key and its place only", "[seal]") {
  const SecretBytes key = random_key();
  const std::string plain = "s3cr3t-p@ss/with+base64=";
  const std::string sealed = encrypt(key, plain, object_ad("postgresql"));
  CHECK(sealed.size() == kNonceSize + plain.size() + kTagSize);
  CHECK(sealed.find(plain) == std::string::npos);
  CHECK(encrypt(key, plain, object_ad("postgresql")) != sealed);  // a fresh nonce each time

  auto opened = decrypt(key, sealed, object_ad("postgresql"), 1024);
  REQUIRE(opened);
  CHECK(opened->view() == plain);

  auto moved = decrypt(key, sealed, object_ad("grafana"), 1024);
  REQUIRE_FALSE(moved);
  CHECK(moved.error().code == Errc::signature);
  auto wrong_key = decrypt(random_key(), sealed, object_ad("postgresql"), 1024);
  REQUIRE_FALSE(wrong_key);
  CHECK(wrong_key.error().code == Errc::signature);
  for (const size_t at : {size_t{0}, kNonceSize, kNonceSize + 3, sealed.size() - 1}) {
    auto changed = decrypt(key, flip(sealed, at), object_ad("postgresql"), 1024);
    REQUIRE_FALSE(changed);
    CHECK(changed.error().code == Errc::signature);
  }
  auto short_one =
      decrypt(key, sealed.substr(0, kNonceSize + kTagSize - 1), object_ad("postgresql"), 1024);
  REQUIRE_FALSE(short_one);
  CHECK(short_one.error().code == Errc::invalid);
  auto too_big = decrypt(key, sealed, object_ad("postgresql"), plain.size() - 1);
  REQUIRE_FALSE(too_big);
  CHECK(too_big.error().code == Errc::too_large);
}

TEST_CASE("an empty value seals and opens", "[seal]") {
  const SecretBytes key = random_key();
  const std::string sealed = encrypt(key, "", object_ad("empty"));
  CHECK(sealed.size() == kNonceSize + kTagSize);
  auto opened = decrypt(key, sealed, object_ad("empty"), 0);
  REQUIRE(opened);
  CHECK(opened->empty());
  CHECK_FALSE(decrypt(key, flip(sealed, kNonceSize), object_ad("empty"), 0));
}

TEST_CASE("secret bytes move and leave nothing behind", "[seal]") {
  SecretBytes a = SecretBytes::copy_of("abc");
  SecretBytes b = std::move(a);
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is the point
  CHECK(b.view() == "abc");
  b = SecretBytes::copy_of("xy");
  CHECK(b.view() == "xy");
}
