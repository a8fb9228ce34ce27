#pragma once

#include <sodium.h>

#include <memory>
#include <string>
#include <string_view>

struct SHA256state_st;

namespace sovdev {

inline constexpr size_t kDigestSize = 32;

// libsodium must be initialised once before use; safe to call from anywhere, any number of times.
void ensure_sodium();

// Incremental SHA-256, for hashing a stream without holding it. OpenSSL's libcrypto (already
// mapped by Paho's TLS) rather than libsodium: it uses the CPU's SHA extensions (x86 SHA-NI,
// ARMv8 crypto), 5-7× faster here, and every byte an agent receives is hashed at least once.
// Its SHA256_* functions rather than EVP: the same code, without the provider machinery that
// EVP sets up on first use (139 KB of heap an agent without TLS kept for its whole life).
class Sha256 {
 public:
  Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  ~Sha256();
  void update(std::string_view bytes);
  std::string finish();  // 32 raw bytes; the object is spent afterwards

 private:
  struct Free {
    void operator()(SHA256state_st* ctx) const;
  };
  std::unique_ptr<SHA256state_st, Free> ctx_;
};

std::string sha256(std::string_view bytes);

// First 8 bytes of a digest in hex: enough for people to tell bundles apart in messages.
std::string short_hex(std::string_view digest);

}  // namespace sovdev
