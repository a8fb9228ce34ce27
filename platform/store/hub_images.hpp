// The hub's image blobs (docs/design-images.md): each blob of an image's served form (index,
// manifest, config, uncompressed layer) stored once per digest, in the wire form agents fetch
// (bundles/blob_wire.hpp: a zstd stream cut into chunks and its BlobManifest), and which
// published bundle names which blob, so a blob a bundle names is never removed.
//
// A view over the hub Database, like HubBundles. A blob is written in one transaction: its
// chunks as the encoder hands them out, its row at the end; a writer dropped before commit, or
// any failure on the way, leaves nothing behind.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "platform/store/sqlite.hpp"

namespace sovdev::store {

struct ImageBlobRow {
  std::string digest;  // raw SHA-256 of the blob's bytes (its OCI digest)
  std::string media_type;
  std::uint64_t size = 0;
  std::string wire_digest;  // SHA-256 of blob_manifest
  std::uint64_t wire_size = 0;
  std::uint32_t chunk_count = 0;
  std::string blob_manifest;  // serialized BlobManifest; empty when looked up without it
  std::int64_t created_at = 0;
};

// Writes one blob: its bytes through write(), then commit(). Destroyed uncommitted (or after a
// failed call), nothing of it stays in the database.
class ImageBlobWriter {
 public:
  virtual ~ImageBlobWriter() = default;
  [[nodiscard]] virtual Status write(std::string_view bytes) = 0;
  // Checks that what was written is `size` bytes with the digest given to begin(), stores the
  // blob's row and commits. The writer is spent afterwards.
  [[nodiscard]] virtual Expected<ImageBlobRow> commit(std::uint64_t size) = 0;
};

class HubImages {
 public:
  explicit HubImages(Database& db) : db_(db) {}

  // --- lookups
  [[nodiscard]] Expected<std::optional<ImageBlobRow>> find(std::string_view digest);
  // By the digest the signed manifest and the agents' requests name. Without the manifest's
  // bytes unless asked: a chunk request needs only the counts.
  [[nodiscard]] Expected<std::optional<ImageBlobRow>> find_by_wire(std::string_view wire_digest,
                                                                   bool with_manifest = false);
  // Chunk `index` of the wire form of the blob `digest` into `out` (reusing its capacity);
  // Errc::not_found when it is not held.
  [[nodiscard]] Status read_chunk(std::string_view digest, std::uint32_t index, std::string& out);
  // Of `digests`, those not held, in the order given.
  [[nodiscard]] Expected<std::vector<std::string>> missing(const std::vector<std::string>& digests);

  // --- writing
  // Starts writing the blob `digest` (raw SHA-256 the bytes must have), compressed at zstd
  // `level`. Errc::conflict when it is held already (ask find() first). The database is locked
  // for writing until the writer commits or is dropped.
  [[nodiscard]] Expected<std::unique_ptr<ImageBlobWriter>> begin(std::string_view digest,
                                                                 std::string_view media_type,
                                                                 int level = 19,
                                                                 std::int64_t now = 0);
  // A small blob held whole (an index, manifest or config): stored unless held already; returns
  // its row either way.
  [[nodiscard]] Expected<ImageBlobRow> put(std::string_view media_type, std::string_view bytes,
                                           int level = 19, std::int64_t now = 0);

  // --- which bundles name which blobs
  // Records that the stored bundle names these blobs (all held: Errc::not_found otherwise).
  [[nodiscard]] Status name_blobs(std::string_view bundle_digest,
                                  const std::vector<std::string>& blob_digests);
  // Sorted by digest.
  [[nodiscard]] Expected<std::vector<std::string>> blobs_of(std::string_view bundle_digest);
  [[nodiscard]] Expected<bool> named_by_a_bundle(std::string_view digest);

 private:
  Database& db_;
};

}  // namespace sovdev::store
