// The served form of an image (docs/design-images.md): for each architecture asked, the
// source's manifest rebuilt around the unchanged config and the layers uncompressed, named by
// the config's diff_ids; one index over them. Layers go to the caller's LayerStore as they are
// decompressed and checked; a layer the store holds is never downloaded.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "platform/oci/reference.hpp"
#include "platform/oci/source.hpp"

namespace sovdev::oci {

inline constexpr uint32_t kMaxLayers = 256;
inline constexpr uint64_t kMaxLayerBytes = uint64_t{64} << 30;  // compressed or not

class LayerWriter {  // the caller's: stores one uncompressed layer; destroyed without commit() =
                     // discard
 public:
  virtual ~LayerWriter() = default;
  virtual Status write(std::string_view bytes) = 0;
  virtual Status commit(std::string_view raw_diff_id,
                        uint64_t size) = 0;  // only after the diff_id checked
};

class LayerStore {
 public:
  virtual ~LayerStore() = default;
  virtual Expected<std::optional<uint64_t>> held(std::string_view raw_diff_id) = 0;  // size if held
  virtual Expected<std::unique_ptr<LayerWriter>> begin(std::string_view raw_diff_id) = 0;
};

struct ServedBlob {
  std::string digest;  // raw
  std::string media_type;
  uint64_t size = 0;
  std::string bytes;   // index, manifests, configs; empty for layers (those went to the LayerStore)
  std::string arch;    // "" for the index
  uint32_t layer = 0;  // 1-based place for layers, 0 otherwise
};

struct ConvertedImage {
  Reference reference;            // as resolved (normalized)
  std::string index_digest;       // raw
  std::vector<ServedBlob> blobs;  // index first, then per arch: manifest, config, layers in order
  uint64_t bytes_downloaded = 0;  // read from the source
  uint32_t layers_downloaded = 0, layers_reused = 0;
};

// arches: Go names as in bundles ("amd64", "arm64"); os linux; arm64 variant v8 or none.
Expected<ConvertedImage> convert_image(ImageSource& source, const Reference& ref,
                                       const std::vector<std::string>& arches, LayerStore& layers);

}  // namespace sovdev::oci
