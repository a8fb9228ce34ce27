// Internal to platform/oci: the source's index, manifest and config read into checked structs.
// Everything here came from the source: each field is type-checked and bounded before use.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace sovdev::oci::detail {

struct Descriptor {
  std::string media_type;
  std::string digest;  // raw
  uint64_t size = 0;
  std::string architecture, os, variant;  // index entries only
};

struct SourceIndex {
  std::vector<Descriptor> manifests;
};

struct SourceManifest {
  Descriptor config;
  std::vector<Descriptor> layers;
};

struct SourceConfig {
  std::string architecture, os, variant;
  std::vector<std::string> diff_ids;  // raw
};

// `media_type` is what the source said; the JSON's own mediaType, when present, must agree.
Expected<SourceIndex> parse_index(std::string_view bytes, std::string_view media_type);
Expected<SourceManifest> parse_manifest(std::string_view bytes, std::string_view media_type);
Expected<SourceConfig> parse_config(std::string_view bytes);

}  // namespace sovdev::oci::detail
