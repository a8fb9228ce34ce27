#pragma once

#include <sodium.h>

#include <string>
#include <string_view>

namespace sovdev {

inline constexpr size_t kDigestSize = 32;

// libsodium must be initialised once before use; safe to call from anywhere, any number of times.
void ensure_sodium();

// Incremental SHA-256 (libsodium), for hashing a stream without holding it.
class Sha256 {
 public:
  Sha256();
  void update(std::string_view bytes);
  std::string finish();  // 32 raw bytes; the object is spent afterwards

 private:
  crypto_hash_sha256_state state_;
};

std::string sha256(std::string_view bytes);

// First 8 bytes of a digest in hex: enough for people to tell bundles apart in messages.
std::string short_hex(std::string_view digest);

}  // namespace sovdev
