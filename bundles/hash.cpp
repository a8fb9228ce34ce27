#include "bundles/hash.hpp"

#include <openssl/evp.h>

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

void Sha256::Free::operator()(evp_md_ctx_st* ctx) const {
  EVP_MD_CTX_free(ctx);
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  // Failing here means the allocator or libcrypto is broken: nothing can be verified then.
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) std::abort();
}

Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;
Sha256::~Sha256() = default;

void Sha256::update(std::string_view bytes) {
  if (EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()) != 1) std::abort();
}

std::string Sha256::finish() {
  std::string out(kDigestSize, '\0');
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), reinterpret_cast<unsigned char*>(out.data()), &size) != 1 ||
      size != kDigestSize) {
    std::abort();
  }
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
