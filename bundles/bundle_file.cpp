#include "bundles/bundle_file.hpp"

#include "bundles/trust.hpp"

namespace sovdev {

std::string encode_bundle_header(uint32_t manifest_size) {
  std::string out(kBundleMagic);
  for (int shift = 0; shift < 32; shift += 8) {
    out.push_back(static_cast<char>((manifest_size >> shift) & 0xff));
  }
  return out;
}

Expected<uint32_t> parse_bundle_header(std::string_view header) {
  if (header.size() < kBundleHeaderSize) {
    return make_error(Errc::invalid, "truncated bundle file: " + std::to_string(header.size()) +
                                         " bytes, shorter than the header");
  }
  if (header.substr(0, 7) != kBundleMagic.substr(0, 7)) {
    return make_error(Errc::invalid, "not a sovdev bundle file (bad magic)");
  }
  if (header[7] != kBundleMagic[7]) {
    return make_error(Errc::invalid, "bundle file format " +
                                         std::to_string(static_cast<unsigned char>(header[7])) +
                                         " is not understood by this program");
  }
  uint32_t size = 0;
  for (size_t i = 0; i < 4; i++) {
    size |= static_cast<uint32_t>(static_cast<unsigned char>(header[8 + i])) << (8 * i);
  }
  if (size == 0 || size > kMaxManifestBytes) {
    return make_error(Errc::invalid, "bundle file declares a manifest of " + std::to_string(size) +
                                         " bytes (limit " + std::to_string(kMaxManifestBytes) +
                                         ")");
  }
  return size;
}

}  // namespace sovdev
