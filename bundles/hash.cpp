#include "bundles/hash.hpp"

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

Sha256::Sha256() {
  ensure_sodium();
  crypto_hash_sha256_init(&state_);
}

void Sha256::update(std::string_view bytes) {
  crypto_hash_sha256_update(&state_, reinterpret_cast<const unsigned char*>(bytes.data()),
                            bytes.size());
}

std::string Sha256::finish() {
  std::string out(kDigestSize, '\0');
  crypto_hash_sha256_final(&state_, reinterpret_cast<unsigned char*>(out.data()));
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
