#include "bundles/hash.hpp"

// SHA256_Init and friends are deprecated in OpenSSL 3 in favour of EVP, but kept through the 3.x
// series (Debian 12 ships 3.0); see the comment in hash.hpp for why they are used.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <cstdlib>

#include "common/hex.hpp"

namespace sovdev {

void ensure_sodium() {
  static const bool ready = [] {
    // sodium_init fails only when the system cannot provide randomness: nothing can be signed then.
    if (sodium_init() < 0) std::abort();
    return true;
  }();
  (void)ready;
}

void Sha256::Free::operator()(SHA256state_st* ctx) const {
  delete ctx;
}

Sha256::Sha256() : ctx_(new SHA256state_st) {
  if (SHA256_Init(ctx_.get()) != 1) std::abort();  // cannot fail in OpenSSL 3
}

Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;
Sha256::~Sha256() = default;

void Sha256::update(std::string_view bytes) {
  if (SHA256_Update(ctx_.get(), bytes.data(), bytes.size()) != 1) std::abort();
}

std::string Sha256::finish() {
  std::string out(kDigestSize, '\0');
  if (SHA256_Final(reinterpret_cast<unsigned char*>(out.data()), ctx_.get()) != 1) std::abort();
  return out;
}

std::string sha256(std::string_view bytes) {
  Sha256 h;
  h.update(bytes);
  return h.finish();
}

std::string short_hex(std::string_view digest) {
  return to_hex(digest.substr(0, 8));
}

}  // namespace sovdev
