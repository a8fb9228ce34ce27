// Ed25519 keys, their text file format, and signing with domain separation.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "sovdev.pb.h"

namespace sovdev {

struct SecretKey {
  std::string name;
  std::string secret;  // libsodium's 64-byte form (seed || public key)
  std::string public_key() const { return secret.substr(32); }
};

struct PublicKeyInfo {
  std::string name;
  std::string public_key;  // 32 bytes
};

SecretKey generate_key(std::string_view name);

// A key's name: 1-64 of [A-Za-z0-9._-] (it goes into files and messages as it is).
bool valid_key_name(std::string_view name);

// SHA-256 of the public key: how signatures and roles name a key.
std::string key_id(std::string_view public_key);

// Key files are one line of text so they can be pasted, diffed and checked by eye:
//   sovdev-ed25519-secret <name> <hex of 64 bytes>
//   sovdev-ed25519-public <name> <hex of 32 bytes>
std::string encode_secret_key(const SecretKey& key);
std::string encode_public_key(const PublicKeyInfo& key);
Expected<SecretKey> parse_secret_key(std::string_view text);
Expected<PublicKeyInfo> parse_public_key(std::string_view text);

// Object types: the domain each signature is bound to.
inline constexpr std::string_view kTypeTrustRoot = "trust-root";
inline constexpr std::string_view kTypeCatalog = "catalog";
inline constexpr std::string_view kTypeManifest = "manifest";
inline constexpr std::string_view kTypeDelta = "delta";
inline constexpr std::string_view kTypeRevocations = "revocations";

// "sovdev/v1/" + type + "\0" + body: what every signature covers.
std::string signing_input(std::string_view type, std::string_view body);

pb::Signed make_signed(std::string_view type, std::string body);
void add_signature(pb::Signed& envelope, const SecretKey& key);

// Public keys by key id.
using KeyRing = std::map<std::string, std::string>;

// Counts distinct keys of `role` with a valid signature over the envelope. Fails with
// Errc::signature when fewer than the role's threshold verify, explaining each signature and
// naming the role (`role_name`: "targets", "online", "root") so an operator sees which keys were
// expected.
[[nodiscard]] Status verify_threshold(const pb::Signed& envelope, std::string_view type,
                                      const pb::Role& role, const KeyRing& keys,
                                      std::string_view what, std::string_view role_name = "");

// Parses a serialized Signed envelope of the given type (refusing others and oversized input).
Expected<pb::Signed> parse_signed(std::string_view bytes, std::string_view type, size_t max_size);

}  // namespace sovdev
