// The agent's image blob store (docs/design-images.md, migration 008): a row per blob a cached
// bundle needs, its bytes in files beside agent.db:
//   images/partial/<wire digest hex>  the wire form while it is fetched, chunk i at i * chunk_size
//   images/blobs/<digest hex>.zst     the wire form once it decoded to the signed size and digest
// Like the payload files of BundleCache: a chunk's bytes are written before the row that says
// it is held, without an fsync; mark_verified() syncs the file before it is renamed and the row
// says so, and drop_damaged() finds after a power cut the rows that outlived their bytes.
//
// Digests are raw 32-byte SHA-256 values; this library never parses a BlobManifest.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "platform/store/sqlite.hpp"

namespace sovdev::store {

enum class BlobState { partial, verified };

// What the signed bundle manifest says of a blob (pb::ImageBlob's fields the store keeps).
struct ImageBlobMeta {
  std::string digest;
  std::string wire_digest;
  std::string media_type;
  std::uint64_t size = 0;       // the blob's
  std::uint64_t wire_size = 0;  // its zstd stream's
};

struct ImageBlobInfo : ImageBlobMeta {
  std::string blob_manifest;  // the BlobManifest received; empty until then
  std::uint32_t chunk_size = 0;
  std::uint32_t chunk_count = 0;
  BlobState state = BlobState::partial;
  std::int64_t used_at = 0;  // unix seconds, the last time a bundle needing it was recorded
};

class ImageBlobs {
 public:
  explicit ImageBlobs(Database& db) : db_(db) {}

  // <folder of agent.db>/images; empty for a database in memory, which cannot hold blobs.
  [[nodiscard]] std::string folder() const;
  [[nodiscard]] std::string partial_path(std::string_view wire_digest) const;
  [[nodiscard]] std::string blob_path(std::string_view digest) const;

  // Records that `bundle` needs `blobs`: a partial row for each blob not held yet, and used_at
  // set to `now` for all of them. One transaction. Errc::conflict when a digest is held under
  // another wire digest (two signed listings disagree).
  [[nodiscard]] Status need(std::string_view bundle, const std::vector<ImageBlobMeta>& blobs,
                            std::int64_t now);
  // Forgets what `bundle` needs (its blobs stay until collected).
  [[nodiscard]] Status forget_bundle(std::string_view bundle);
  [[nodiscard]] Expected<std::optional<ImageBlobInfo>> find(std::string_view digest);
  // The blobs `bundle` needs, in digest order.
  [[nodiscard]] Expected<std::vector<ImageBlobInfo>> needed_by(std::string_view bundle);

  // Keeps the BlobManifest a fetch received and checked, and the shape of the partial file.
  // A row that had another shape loses its held chunks (and the file).
  [[nodiscard]] Status set_manifest(std::string_view digest, std::string_view blob_manifest,
                                    std::uint32_t chunk_size, std::uint32_t chunk_count);
  // Writes chunk `index` (its length checked against the shape) into the partial file, then
  // its row, in the caller's transaction or its own. Same bytes again: no-op.
  [[nodiscard]] Status put_chunk(std::string_view digest, std::uint32_t index,
                                 std::string_view data);
  [[nodiscard]] Expected<std::vector<std::uint32_t>> missing_chunks(std::string_view digest);
  // Reads every held chunk of a partial blob and forgets those `good` refuses; returns how many.
  [[nodiscard]] Expected<std::uint32_t> drop_damaged(
      std::string_view digest, const std::function<bool(std::uint32_t, std::string_view)>& good);
  // sync_file_range WRITE of the partial file: the disk works while the network does.
  [[nodiscard]] Status start_writeback(std::string_view digest);
  // Every chunk held and the whole checked by the caller: the partial file is synced, renamed
  // to blobs/<digest hex>.zst (folder synced), and the row says verified. Errc::invalid while
  // chunks are missing.
  [[nodiscard]] Status mark_verified(std::string_view digest);
  // A partial row whose file was renamed already (a crash between the rename and the commit):
  // the row is marked verified without its chunk rows. The caller checked the file.
  [[nodiscard]] Status adopt_verified(std::string_view digest);
  // Drops a blob's row, chunk rows and files (its needs stay). false when it was not held.
  [[nodiscard]] Expected<bool> remove(std::string_view digest);
  // Drops a partial blob's chunks and file, keeping its row (to be fetched again).
  [[nodiscard]] Status reset_partial(std::string_view digest);

  // Blobs no bundle of `keep` needs, partial ones first, then the least recently used.
  [[nodiscard]] Expected<std::vector<ImageBlobInfo>> collectable(
      const std::vector<std::string>& keep);
  // What the blobs take on disk, counting a partial blob at its whole wire size (it will).
  [[nodiscard]] Expected<std::uint64_t> bytes_reserved();
  // Removes files in images/ no row owns (a crash between a removal's commit and the unlink);
  // rows of bundles no longer cached are dropped too. Returns the files removed.
  [[nodiscard]] Expected<std::uint32_t> sweep();

 private:
  Database& db_;
};

}  // namespace sovdev::store
