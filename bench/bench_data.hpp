// Bundles too big for the hub's packer (which refuses duplicate objects), written with the
// bundle libraries directly: the same records, manifest, signature and file layout.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bundles/yaml/objects.hpp"

namespace sovdev::bench {

struct GeneratedBundle {
  std::string bundle;         // the .sdb file
  std::string payload;        // its payload alone: one plain zstd frame (.zst)
  uint64_t uncompressed = 0;  // bytes the payload decompresses to
  uint64_t payload_size = 0;
  uint64_t records = 0;
  uint64_t copies = 0;  // of the source objects
};

// The objects of a manifests folder, parsed and put in apply order once.
std::vector<yaml::Object> load_objects(const std::string& manifests_dir);

// `objects` written again and again, each copy's names suffixed "-c<n>", until the records
// reach `target` uncompressed bytes; zstd level 3. Files go to `prefix`.sdb / `prefix`.zst; a
// bundle a previous run left there is reused.
GeneratedBundle make_repeated_bundle(const std::vector<yaml::Object>& objects, uint64_t target,
                                     const std::string& key_file, const std::string& prefix);

// ConfigMaps of ~1 MiB of random base64 each at zstd level 1, until the payload itself (not
// the content) reaches `target_payload` bytes.
GeneratedBundle make_random_bundle(uint64_t target_payload, const std::string& key_file,
                                   const std::string& prefix);

}  // namespace sovdev::bench
