// Helpers shared by the store's implementation files; not part of its interface.
#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/hex.hpp"

namespace sovdev::store::detail {

// Enough of a digest to name it in a message and find it in a listing.
inline std::string short_hex(std::string_view digest) {
  return to_hex(digest.substr(0, 6));
}

inline Status check_digest(std::string_view digest) {
  if (digest.size() == 32) return {};
  return make_error(Errc::invalid, "a digest is 32 bytes of SHA-256, got " +
                                       std::to_string(digest.size()) + " bytes");
}

// Prefixes the operation to an error on its way out of a public function.
template <class T>
Expected<T> with_context(std::string_view what, Expected<T> result) {
  if (!result) return std::move(result).error().context(what);
  return result;
}

}  // namespace sovdev::store::detail
