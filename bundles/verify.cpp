#include "bundles/verify.hpp"

#include <algorithm>

namespace sovdev {

uint32_t chunk_count(const pb::BundleManifest& manifest) {
  return static_cast<uint32_t>(manifest.chunk_sha256_size());
}

uint64_t chunk_length(const pb::BundleManifest& manifest, uint32_t index) {
  const uint64_t start = static_cast<uint64_t>(index) * manifest.chunk_size();
  if (start >= manifest.payload_size()) return 0;
  return std::min<uint64_t>(manifest.chunk_size(), manifest.payload_size() - start);
}

Status verify_chunk(const pb::BundleManifest& manifest, uint32_t index, std::string_view data) {
  const std::string where =
      "chunk " + std::to_string(index) + " of " + std::to_string(chunk_count(manifest));
  if (index >= chunk_count(manifest)) {
    return make_error(Errc::invalid, where + ": no such chunk");
  }
  if (data.size() != chunk_length(manifest, index)) {
    return make_error(Errc::invalid, where + ": " + std::to_string(data.size()) +
                                         " bytes, expected " +
                                         std::to_string(chunk_length(manifest, index)));
  }
  if (sha256(data) != manifest.chunk_sha256(static_cast<int>(index))) {
    return make_error(Errc::signature, where + ": hash mismatch (the chunk was altered)");
  }
  return {};
}

PayloadVerifier::PayloadVerifier(const pb::BundleManifest& manifest, PayloadReader reader)
    : manifest_(&manifest), reader_(std::move(reader)) {}

Expected<PayloadVerifier> PayloadVerifier::create(const pb::BundleManifest& manifest,
                                                  PayloadReader::OnRecord on_record) {
  SOVDEV_ASSIGN(auto reader,
                PayloadReader::create(PayloadReader::limits_for(manifest), std::move(on_record)));
  return PayloadVerifier(manifest, std::move(reader));
}

Status PayloadVerifier::add_chunk(uint32_t index, std::string_view data) {
  if (index != next_) {
    return make_error(Errc::internal, "chunk " + std::to_string(index) +
                                          " out of order (expected " + std::to_string(next_) + ")");
  }
  SOVDEV_TRY(verify_chunk(*manifest_, index, data));
  hash_.update(data);
  next_++;
  auto fed = reader_.feed(data);
  if (!fed) return std::move(fed).error().context("chunk " + std::to_string(index));
  return {};
}

Expected<uint32_t> PayloadVerifier::finish() {
  if (next_ != chunk_count(*manifest_)) {
    return make_error(Errc::invalid, "payload incomplete: " + std::to_string(next_) + " of " +
                                         std::to_string(chunk_count(*manifest_)) + " chunks");
  }
  if (hash_.finish() != manifest_->payload_sha256()) {
    return make_error(Errc::signature, "payload hash does not match the signed manifest");
  }
  SOVDEV_ASSIGN(uint32_t records, reader_.finish());
  if (records != manifest_->resource_count()) {
    return make_error(Errc::invalid, "payload holds " + std::to_string(records) +
                                         " objects, the manifest declares " +
                                         std::to_string(manifest_->resource_count()));
  }
  return records;
}

}  // namespace sovdev
