#include "agent/images/store_blob_source.hpp"

#include <filesystem>

#include "platform/store/image_blobs.hpp"

namespace sovdev::agent::images {

Expected<std::unique_ptr<StoreBlobSource>> StoreBlobSource::open(const std::string& state_dir) {
  const std::string path = (std::filesystem::path(state_dir) / "agent.db").string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return make_error(Errc::not_found, path + " does not exist: start the agent with --state " +
                                           state_dir + " first");
  }
  store::OpenOptions options;
  options.create = false;
  options.read_only = true;
  SOVDEV_ASSIGN(store::Database db, store::Database::open(path, options));
  return std::unique_ptr<StoreBlobSource>(
      new StoreBlobSource(std::make_unique<store::Database>(std::move(db))));
}

Expected<std::optional<HeldBlob>> StoreBlobSource::find(std::string_view digest) {
  if (digest.size() != 32) return std::optional<HeldBlob>();
  store::ImageBlobs blobs(*db_);
  SOVDEV_ASSIGN(auto info, blobs.find(digest));
  if (!info || info->state != store::BlobState::verified) return std::optional<HeldBlob>();
  HeldBlob held;
  held.media_type = info->media_type;
  held.size = info->size;
  held.path = blobs.blob_path(digest);
  std::error_code ec;
  if (held.path.empty() || !std::filesystem::exists(held.path, ec)) {
    return std::optional<HeldBlob>();
  }
  return std::optional<HeldBlob>(std::move(held));
}

}  // namespace sovdev::agent::images
