// What makes a bundle manifest's image fields well formed (docs/design-images.md), and which
// of its blobs one agent needs. Pure: the hub checks what it signs, the agent what it verified.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "sovdev.pb.h"

namespace sovdev {

inline constexpr size_t kMaxImageBlobs = 4096;
inline constexpr size_t kMaxImageRefs = 1024;
inline constexpr uint32_t kMaxImageLayers = 256;
inline constexpr uint64_t kMaxImageJsonBytes = 4 * 1024 * 1024;  // an index, manifest or config
inline constexpr uint64_t kMaxLayerBytes = uint64_t{64} << 30;

inline constexpr std::string_view kMediaIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kMediaManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kMediaConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kMediaLayer = "application/vnd.oci.image.layer.v1.tar";

// Counts, digest and hash lengths, media types (only the four above), sizes within the limits,
// each digest listed once per arch, every image's index listed as an index blob, layers with a
// repository and a place and nothing else with a place. Needs no trust decision.
[[nodiscard]] Status check_image_fields(const pb::BundleManifest& manifest);

// The blobs an agent of `arch` needs: the indexes and that arch's blobs, in the manifest's
// order. Empty when the bundle carries no images.
std::vector<const pb::ImageBlob*> blobs_for_arch(const pb::BundleManifest& manifest,
                                                 std::string_view arch);

// The listed blob with this digest, or null: whatever the manifest does not list is refused.
const pb::ImageBlob* find_image_blob(const pb::BundleManifest& manifest, std::string_view digest);

}  // namespace sovdev
