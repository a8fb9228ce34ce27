// The bundle file (.sdb): everything an offline site needs in one file, for a USB stick.
//
//   offset 0   8 bytes  magic "SOVDEVB" + format version byte 0x01
//   offset 8   4 bytes  little-endian length N of the signed manifest (≤ kMaxManifestBytes)
//   offset 12  N bytes  pb::Signed of type "manifest"
//   then       the compressed payload, exactly manifest.payload_size bytes, then end of file
//
// The manifest comes first so a reader can verify it before trusting a single payload byte,
// and the payload is read chunk by chunk against the signed chunk hashes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace sovdev {

inline constexpr size_t kBundleHeaderSize = 12;
inline constexpr std::string_view kBundleMagic{"SOVDEVB\x01", 8};

std::string encode_bundle_header(uint32_t manifest_size);

// Returns the manifest length declared by the first kBundleHeaderSize bytes.
Expected<uint32_t> parse_bundle_header(std::string_view header);

}  // namespace sovdev
