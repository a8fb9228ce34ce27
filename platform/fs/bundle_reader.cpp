#include "platform/fs/bundle_reader.hpp"

#include "bundles/bundle_file.hpp"
#include "bundles/verify.hpp"

namespace sovdev::fs {

Expected<BundleFileReader> BundleFileReader::open(const std::string& path) {
  SOVDEV_ASSIGN(InputFile in, InputFile::open(path));
  BundleFileReader reader(std::move(in));
  SOVDEV_ASSIGN(std::string_view header, reader.in_.read(kBundleHeaderSize));
  SOVDEV_ASSIGN(uint32_t manifest_size, parse_bundle_header(header));
  SOVDEV_ASSIGN(std::string_view envelope, reader.in_.read(manifest_size));
  if (envelope.size() != manifest_size) {
    return make_error(Errc::invalid, "truncated bundle file: it ends inside the manifest");
  }
  reader.envelope_ = std::string(envelope);
  return reader;
}

Status BundleFileReader::check_size(const pb::BundleManifest& manifest) const {
  const uint64_t expected = kBundleHeaderSize + envelope_.size() + manifest.payload_size();
  if (in_.size() < expected) {
    return make_error(Errc::invalid, "truncated bundle file: " + std::to_string(in_.size()) +
                                         " bytes, the manifest declares " +
                                         std::to_string(expected) + ": copy it again");
  }
  if (in_.size() > expected) {
    return make_error(Errc::invalid, "bundle file has " + std::to_string(in_.size() - expected) +
                                         " unexpected bytes after its payload");
  }
  return {};
}

Expected<std::string_view> BundleFileReader::next_chunk(const pb::BundleManifest& manifest) {
  const uint64_t length = chunk_length(manifest, next_);
  if (length == 0) return make_error(Errc::internal, "read past the last chunk");
  SOVDEV_ASSIGN(std::string_view data, in_.read(static_cast<size_t>(length)));
  if (data.size() != length) {
    return make_error(Errc::invalid,
                      "truncated bundle file: it ends inside chunk " + std::to_string(next_));
  }
  next_++;
  return data;
}

}  // namespace sovdev::fs
