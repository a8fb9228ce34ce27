#include "platform/oci/digest.hpp"

#include "common/hex.hpp"

namespace sovdev::oci {

Expected<std::string> parse_digest(std::string_view text) {
  constexpr std::string_view kPrefix = "sha256:";
  const auto bad = [&](const char* why) {
    return make_error(Errc::invalid, "digest '" + std::string(text.substr(0, 100)) + "': " + why);
  };
  if (text.substr(0, kPrefix.size()) != kPrefix) {
    return bad("not a sha256 digest (expected sha256:<64 lowercase hex digits>)");
  }
  const std::string_view hex = text.substr(kPrefix.size());
  if (hex.size() != 64) return bad("a sha256 digest has 64 hex digits");
  for (const char ch : hex) {
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
      return bad("a sha256 digest has lowercase hex digits only");
    }
  }
  auto raw = from_hex(hex);
  if (!raw) return bad("not hex");
  return std::move(*raw);
}

std::string format_digest(std::string_view raw) {
  return "sha256:" + to_hex(raw);
}

}  // namespace sovdev::oci
