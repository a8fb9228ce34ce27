#include "platform/store/hub_images.hpp"

#include <ctime>

#include "bundles/blob_wire.hpp"
#include "bundles/hash.hpp"
#include "platform/store/detail.hpp"
#include "platform/store/transaction.hpp"

namespace sovdev::store {

using detail::check_digest;
using detail::with_context;

namespace {

constexpr const char* kImageBlobColumns =
    "SELECT digest, media_type, size, wire_digest, wire_size, chunk_count, blob_manifest, "
    "created_at FROM image_blobs ";
constexpr const char* kImageBlobColumnsNoManifest =
    "SELECT digest, media_type, size, wire_digest, wire_size, chunk_count, X'', created_at "
    "FROM image_blobs ";

Expected<std::optional<ImageBlobRow>> query_one_image_blob(Database& db, const char* columns,
                                                           const char* where,
                                                           std::string_view key) {
  SOVDEV_ASSIGN(CachedStatement select, db.cached(std::string(columns) + where));
  SOVDEV_TRY(select->bind_all(Blob{key}));
  SOVDEV_ASSIGN(const bool row, select->step());
  if (!row) return std::optional<ImageBlobRow>();
  return std::optional<ImageBlobRow>(ImageBlobRow{
      select->blob(0), select->text(1), select->uint64(2), select->blob(3), select->uint64(4),
      static_cast<std::uint32_t>(select->uint64(5)), select->blob(6), select->int64(7)});
}

std::string blob_name(std::string_view digest) {
  return "image blob " + detail::short_hex(digest);
}

// One blob being written: a transaction open from begin() to commit(), the encoder's chunks
// inserted as they come. On the heap behind the interface, so the encoder's sink can point at
// it.
class StoreBlobWriter final : public ImageBlobWriter {
 public:
  StoreBlobWriter(Database& db, Transaction tx, std::string digest, std::string media_type,
                  std::int64_t now)
      : db_(db),
        tx_(std::move(tx)),
        digest_(std::move(digest)),
        media_type_(std::move(media_type)),
        now_(now) {}

  Status start(int level) {
    blobwire::BlobEncoder::Options options;
    options.level = level;
    SOVDEV_ASSIGN(auto encoder,
                  blobwire::BlobEncoder::create(
                      options, [this](std::uint32_t index, std::string_view chunk) -> Status {
                        return insert(index, chunk);
                      }));
    encoder_.emplace(std::move(encoder));
    return {};
  }

  Status write(std::string_view bytes) override {
    if (!encoder_) return make_error(Errc::internal, blob_name(digest_) + ": writer is spent");
    auto written = encoder_->write(bytes);
    if (!written) {
      encoder_.reset();
      tx_.rollback();
      return std::move(written).error().context("write " + blob_name(digest_));
    }
    return {};
  }

  Expected<ImageBlobRow> commit(std::uint64_t size) override {
    const std::string what = "store " + blob_name(digest_);
    if (!encoder_) return make_error(Errc::internal, what + ": writer is spent");
    auto finished = encoder_->finish();
    encoder_.reset();
    if (!finished) {
      tx_.rollback();
      return std::move(finished).error().context(what);
    }
    auto row = store(*finished, size);
    if (!row) {
      tx_.rollback();
      return std::move(row).error().context(what);
    }
    return row;
  }

 private:
  Status insert(std::uint32_t index, std::string_view chunk) {
    SOVDEV_ASSIGN(CachedStatement insert,
                  db_.cached("INSERT INTO image_chunks (digest, idx, data) VALUES (?, ?, ?)"));
    SOVDEV_TRY(insert->bind_all(Blob{digest_}, index, Blob{chunk}));
    return insert->run();
  }

  Expected<ImageBlobRow> store(const pb::BlobManifest& manifest, std::uint64_t size) {
    if (manifest.size() != size) {
      return make_error(Errc::invalid, std::to_string(manifest.size()) +
                                           " bytes were written, the source declares " +
                                           std::to_string(size));
    }
    if (manifest.digest() != digest_) {
      return make_error(Errc::signature, "the bytes written have digest " +
                                             detail::short_hex(manifest.digest()) +
                                             ", not the one the image names");
    }
    ImageBlobRow row;
    row.digest = digest_;
    row.media_type = media_type_;
    row.size = manifest.size();
    row.blob_manifest = manifest.SerializeAsString();
    row.wire_digest = sha256(row.blob_manifest);
    row.wire_size = manifest.wire_size();
    row.chunk_count = static_cast<std::uint32_t>(manifest.chunk_sha256_size());
    row.created_at = now_;
    SOVDEV_ASSIGN(Statement insert,
                  db_.prepare("INSERT INTO image_blobs (digest, media_type, size, wire_digest, "
                              "wire_size, chunk_count, blob_manifest, created_at) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
    SOVDEV_TRY(insert.bind_all(Blob{row.digest}, row.media_type, row.size, Blob{row.wire_digest},
                               row.wire_size, row.chunk_count, Blob{row.blob_manifest},
                               row.created_at));
    SOVDEV_TRY(insert.run());
    SOVDEV_TRY(tx_.commit());
    return row;
  }

  Database& db_;
  Transaction tx_;
  std::string digest_;
  std::string media_type_;
  std::int64_t now_;
  std::optional<blobwire::BlobEncoder> encoder_;
};

}  // namespace

Expected<std::optional<ImageBlobRow>> HubImages::find(std::string_view digest) {
  return with_context(blob_name(digest) + ": find",
                      query_one_image_blob(db_, kImageBlobColumns, "WHERE digest = ?", digest));
}

Expected<std::optional<ImageBlobRow>> HubImages::find_by_wire(std::string_view wire_digest,
                                                              bool with_manifest) {
  return with_context(
      "find image blob by wire digest " + detail::short_hex(wire_digest),
      query_one_image_blob(db_, with_manifest ? kImageBlobColumns : kImageBlobColumnsNoManifest,
                           "WHERE wire_digest = ?", wire_digest));
}

Status HubImages::read_chunk(std::string_view digest, std::uint32_t index, std::string& out) {
  const std::string what = "read chunk " + std::to_string(index) + " of " + blob_name(digest);
  return with_context(what, [&]() -> Status {
    SOVDEV_ASSIGN(CachedStatement select,
                  db_.cached("SELECT data FROM image_chunks WHERE digest = ? AND idx = ?"));
    SOVDEV_TRY(select->bind_all(Blob{digest}, index));
    SOVDEV_ASSIGN(const bool row, select->step());
    if (!row) return make_error(Errc::not_found, "the chunk is not held");
    select->blob(0, out);
    return {};
  }());
}

Expected<std::vector<std::string>> HubImages::missing(const std::vector<std::string>& digests) {
  std::vector<std::string> out;
  for (const auto& d : digests) {
    SOVDEV_ASSIGN(CachedStatement select, db_.cached("SELECT 1 FROM image_blobs WHERE digest = ?"));
    SOVDEV_TRY(select->bind_all(Blob{d}));
    SOVDEV_ASSIGN(const bool row, select->step());
    if (!row) out.push_back(d);
  }
  return out;
}

Expected<std::unique_ptr<ImageBlobWriter>> HubImages::begin(std::string_view digest,
                                                            std::string_view media_type, int level,
                                                            std::int64_t now) {
  const std::string what = "store " + blob_name(digest);
  SOVDEV_TRY(with_context(what, check_digest(digest)));
  if (now == 0) now = static_cast<std::int64_t>(std::time(nullptr));
  SOVDEV_ASSIGN(Transaction tx, with_context(what, Transaction::begin(db_)));
  SOVDEV_ASSIGN(auto held, find(digest));
  if (held) return make_error(Errc::conflict, what + ": already stored");
  auto writer = std::make_unique<StoreBlobWriter>(db_, std::move(tx), std::string(digest),
                                                  std::string(media_type), now);
  SOVDEV_TRY(with_context(what, writer->start(level)));
  return std::unique_ptr<ImageBlobWriter>(std::move(writer));
}

Expected<ImageBlobRow> HubImages::put(std::string_view media_type, std::string_view bytes,
                                      int level, std::int64_t now) {
  const std::string digest = sha256(bytes);
  SOVDEV_ASSIGN(auto held, find(digest));
  if (held) return std::move(*held);
  SOVDEV_ASSIGN(auto writer, begin(digest, media_type, level, now));
  SOVDEV_TRY(writer->write(bytes));
  return writer->commit(bytes.size());
}

Status HubImages::name_blobs(std::string_view bundle_digest,
                             const std::vector<std::string>& blob_digests) {
  const std::string what = "record the image blobs of bundle " + detail::short_hex(bundle_digest);
  return with_context(what, transaction(db_, [&]() -> Status {
                        SOVDEV_ASSIGN(auto absent, missing(blob_digests));
                        if (!absent.empty()) {
                          return make_error(Errc::not_found,
                                            blob_name(absent.front()) + " is not stored");
                        }
                        for (const auto& d : blob_digests) {
                          SOVDEV_ASSIGN(CachedStatement insert,
                                        db_.cached("INSERT INTO bundle_image_blobs (bundle_digest, "
                                                   "blob_digest) VALUES (?, ?) ON CONFLICT DO "
                                                   "NOTHING"));
                          SOVDEV_TRY(insert->bind_all(Blob{bundle_digest}, Blob{d}));
                          SOVDEV_TRY(insert->run());
                        }
                        return Status{};
                      }));
}

Expected<std::vector<std::string>> HubImages::blobs_of(std::string_view bundle_digest) {
  SOVDEV_ASSIGN(Statement select, db_.prepare("SELECT blob_digest FROM bundle_image_blobs WHERE "
                                              "bundle_digest = ? ORDER BY blob_digest"));
  SOVDEV_TRY(select.bind_all(Blob{bundle_digest}));
  std::vector<std::string> out;
  for (;;) {
    SOVDEV_ASSIGN(const bool row, select.step());
    if (!row) return out;
    out.push_back(select.blob(0));
  }
}

Expected<bool> HubImages::named_by_a_bundle(std::string_view digest) {
  SOVDEV_ASSIGN(CachedStatement select,
                db_.cached("SELECT 1 FROM bundle_image_blobs WHERE blob_digest = ? LIMIT 1"));
  SOVDEV_TRY(select->bind_all(Blob{digest}));
  return select->step();
}

}  // namespace sovdev::store
