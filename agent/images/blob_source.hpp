// What the loopback registry (`sovdev-agent images serve`) answers from: the image blobs the
// agent holds checked, by digest. The blob store implements it; the registry never sees a
// partial or unchecked blob.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace sovdev::agent::images {

struct HeldBlob {
  std::string media_type;
  std::uint64_t size = 0;  // of the blob itself (uncompressed): the Content-Length served
  std::string path;        // a file holding the blob as a zstd stream
};

class BlobSource {
 public:
  virtual ~BlobSource() = default;
  // `digest` is the raw 32-byte SHA-256. nullopt when the blob is not held checked.
  [[nodiscard]] virtual Expected<std::optional<HeldBlob>> find(std::string_view digest) = 0;
};

}  // namespace sovdev::agent::images
