// Checking a payload against its signed manifest, chunk by chunk, as it streams past.
#pragma once

#include <cstdint>
#include <string_view>

#include "bundles/payload.hpp"
#include "sovdev.pb.h"

namespace sovdev {

uint32_t chunk_count(const pb::BundleManifest& manifest);
uint64_t chunk_length(const pb::BundleManifest& manifest, uint32_t index);

// Checks one chunk's index, length and signed hash: "chunk 7 of 12: hash mismatch".
Status verify_chunk(const pb::BundleManifest& manifest, uint32_t index, std::string_view data);

// Takes every chunk in order, checks each, the whole-payload hash, and decodes every record
// (handing each to `on_record`), so a payload that passes can be applied.
class PayloadVerifier {
 public:
  static Expected<PayloadVerifier> create(const pb::BundleManifest& manifest,
                                          PayloadReader::OnRecord on_record);
  Status add_chunk(uint32_t index, std::string_view data);
  Expected<uint32_t> finish();  // the number of records

 private:
  PayloadVerifier(const pb::BundleManifest& manifest, PayloadReader reader);

  const pb::BundleManifest* manifest_;
  PayloadReader reader_;
  Sha256 hash_;
  uint32_t next_ = 0;
};

}  // namespace sovdev
