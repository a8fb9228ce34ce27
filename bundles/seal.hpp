// The cryptography of secrets sealed to each site (docs/design-secrets.md), with no I/O:
//  - agent identities: X25519 key pairs, apart from the Ed25519 signing keys;
//  - epoch keys and their ids, which the signed manifest names;
//  - an epoch key sealed to one agent (crypto_box_seal) and opened by it;
//  - values sealed under a key (XChaCha20-Poly1305) bound to associated data that names where
//    they belong, so a sealed value moved to another object, version or stack fails to open.
// Every secret byte this module hands out lives in SecretBytes: locked memory that is zeroed
// when freed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace sovdev::seal {

inline constexpr size_t kKeySize = 32;      // epoch keys, the store key, X25519 keys
inline constexpr size_t kNonceSize = 24;    // XChaCha20-Poly1305 (IETF)
inline constexpr size_t kTagSize = 16;      // Poly1305
inline constexpr size_t kBoxOverhead = 48;  // crypto_box_seal: ephemeral key + tag
inline constexpr size_t kKeyIdSize = 32;

// Bytes in sodium_malloc'd memory: guarded, locked against swapping where the system allows,
// zeroed and freed on destruction. Move-only.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size);
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  unsigned char* data() { return data_; }
  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }
  static SecretBytes copy_of(std::string_view bytes);

 private:
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

// 32 random bytes: an epoch key or the hub's secret-store key.
SecretBytes random_key();

// An agent's identity. The secret half opens epoch keys sealed to the public half.
struct AgentKey {
  std::string name;
  std::string public_key;  // 32 bytes
  SecretBytes secret;      // 32 bytes
};
AgentKey generate_agent_key(std::string_view name);

// One line of text each, like the signing keys (bundles/keys.hpp), with their own tags so one
// kind is never taken for the other:
//   sovdev-x25519-secret <name> <hex of 32 bytes>
//   sovdev-x25519-public <name> <hex of 32 bytes>
std::string encode_agent_secret(const AgentKey& key);  // holds the secret: write it 0600
std::string encode_agent_public(const AgentKey& key);
Expected<AgentKey> parse_agent_secret(std::string_view text);  // checks the halves agree
Expected<AgentKey> parse_agent_public(std::string_view text);  // `secret` left empty

// BLAKE2b-256 over a domain tag, the channel, the epoch and the key: names the key without
// revealing it. An agent compares it with the manifest's before using a key it was sent.
std::string epoch_key_id(std::string_view channel, uint64_t epoch, const SecretBytes& key);

// `key` sealed to `agent_public_key`: kBoxOverhead + key.size() bytes only that agent opens.
// Anyone can seal to a public key: the opener checks what it got (epoch_key_id).
std::string seal_to(std::string_view agent_public_key, const SecretBytes& key);
Expected<SecretBytes> open_sealed(std::string_view sealed, const AgentKey& self);

// Associated data from fields: each length-prefixed after a domain tag, so no two different
// lists give the same bytes ("a","bc" vs "ab","c").
std::string associated_data(std::string_view domain,
                            std::initializer_list<std::string_view> fields);

// nonce || ciphertext || tag of `plaintext` under `key`, bound to `associated`.
std::string encrypt(const SecretBytes& key, std::string_view plaintext,
                    std::string_view associated);
// The plaintext, or Errc::signature when the tag does not verify (wrong key, other associated
// data, changed bytes) and Errc::too_large when it would exceed `max_plaintext`.
Expected<SecretBytes> decrypt(const SecretBytes& key, std::string_view sealed,
                              std::string_view associated, size_t max_plaintext);

}  // namespace sovdev::seal
