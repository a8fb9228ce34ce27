// Internal to platform/oci: a layer's bytes as they stream from the source, decompressed
// (gzip, possibly multi-member as Go's reader accepts; zstd, possibly several frames; or a
// plain tar passed through), handed on in chunks.
#pragma once

#include <memory>
#include <string_view>

#include "common/error.hpp"
#include "platform/oci/media.hpp"
#include "platform/oci/source.hpp"

namespace sovdev::oci::detail {

class LayerDecoder {
 public:
  virtual ~LayerDecoder() = default;
  // Decompresses `in`, passing what comes out to the sink given at creation.
  virtual Status feed(std::string_view in) = 0;
  // After the last input byte: the stream must have ended cleanly (no truncated frame).
  virtual Status finish() = 0;
};

Expected<std::unique_ptr<LayerDecoder>> make_decoder(media::Compression compression, ByteSink out);

}  // namespace sovdev::oci::detail
