// Reads a bundle file (.sdb) from disk piece by piece: the manifest first, then one chunk at a
// time, so nothing larger than a chunk is ever held.
#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"
#include "platform/fs/files.hpp"
#include "sovdev.pb.h"

namespace sovdev::fs {

class BundleFileReader {
 public:
  static Expected<BundleFileReader> open(const std::string& path);

  // The signed manifest as stored, not yet verified.
  const std::string& manifest_envelope() const { return envelope_; }

  // After the manifest is verified: checks the file is exactly as long as it declares.
  Status check_size(const pb::BundleManifest& manifest) const;
  // Reads the next chunk (chunks come in order).
  Expected<std::string_view> next_chunk(const pb::BundleManifest& manifest);
  uint32_t chunks_read() const { return next_; }

 private:
  explicit BundleFileReader(InputFile in) : in_(std::move(in)) {}
  InputFile in_;
  std::string envelope_;
  uint32_t next_ = 0;
};

}  // namespace sovdev::fs
