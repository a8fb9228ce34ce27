#include "platform/store/image_blobs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "common/hex.hpp"
#include "platform/store/chunk_file.hpp"
#include "platform/store/detail.hpp"
#include "platform/store/transaction.hpp"

namespace sovdev::store {

using detail::check_digest;
using detail::short_hex;
using detail::with_context;

namespace {

constexpr const char* kBlobColumns =
    "SELECT digest, wire_digest, media_type, size, wire_size, blob_manifest, chunk_size, "
    "chunk_count, state, used_at FROM image_blobs ";

ImageBlobInfo read_blob_row(const Statement& row) {
  ImageBlobInfo info;
  info.digest = row.blob(0);
  info.wire_digest = row.blob(1);
  info.media_type = row.text(2);
  info.size = row.uint64(3);
  info.wire_size = row.uint64(4);
  info.blob_manifest = row.blob(5);
  info.chunk_size = static_cast<std::uint32_t>(row.uint64(6));
  info.chunk_count = static_cast<std::uint32_t>(row.uint64(7));
  info.state = row.text(8) == "verified" ? BlobState::verified : BlobState::partial;
  info.used_at = row.int64(9);
  return info;
}

template <class... Args>
Expected<std::vector<ImageBlobInfo>> blob_rows(Database& db, const std::string& rest,
                                               const Args&... args) {
  SOVDEV_ASSIGN(Statement select, db.prepare(kBlobColumns + rest));
  SOVDEV_TRY(select.bind_all(args...));
  std::vector<ImageBlobInfo> out;
  for (;;) {
    SOVDEV_ASSIGN(const bool row, select.step());
    if (!row) return out;
    out.push_back(read_blob_row(select));
  }
}

Expected<ImageBlobInfo> held_blob(Database& db, std::string_view digest) {
  SOVDEV_ASSIGN(auto rows, blob_rows(db, "WHERE digest = ?", Blob{digest}));
  if (rows.empty()) return make_error(Errc::not_found, "the blob is not in the store");
  return std::move(rows.front());
}

std::size_t blob_chunk_length(const ImageBlobInfo& info, std::uint32_t index) {
  const std::uint64_t at = std::uint64_t{index} * info.chunk_size;
  return static_cast<std::size_t>(std::min<std::uint64_t>(info.chunk_size, info.wire_size - at));
}

Status delete_blob_chunks(Database& db, std::string_view digest) {
  SOVDEV_ASSIGN(Statement remove, db.prepare("DELETE FROM image_chunks WHERE digest = ?"));
  SOVDEV_TRY(remove.bind(1, Blob{digest}));
  return remove.run();
}

Expected<std::vector<std::uint32_t>> held_chunks(Database& db, std::string_view digest) {
  SOVDEV_ASSIGN(CachedStatement select,
                db.cached("SELECT idx FROM image_chunks WHERE digest = ? ORDER BY idx"));
  SOVDEV_TRY(select->bind(1, Blob{digest}));
  std::vector<std::uint32_t> held;
  for (;;) {
    SOVDEV_ASSIGN(const bool row, select->step());
    if (!row) return held;
    held.push_back(static_cast<std::uint32_t>(select->uint64(0)));
  }
}

}  // namespace

std::string ImageBlobs::folder() const {
  const std::string& db = db_.path();
  if (db.empty() || db == ":memory:" || db.compare(0, 5, "file:") == 0) return {};
  return (std::filesystem::path(db).parent_path() / "images").string();
}

std::string ImageBlobs::partial_path(std::string_view wire_digest) const {
  const std::string root = folder();
  return root.empty() ? root : root + "/partial/" + to_hex(wire_digest);
}

std::string ImageBlobs::blob_path(std::string_view digest) const {
  const std::string root = folder();
  return root.empty() ? root : root + "/blobs/" + to_hex(digest) + ".zst";
}

Status ImageBlobs::need(std::string_view bundle, const std::vector<ImageBlobMeta>& blobs,
                        std::int64_t now) {
  return with_context(
      "record the image blobs of bundle " + short_hex(bundle), transaction(db_, [&]() -> Status {
        SOVDEV_TRY(check_digest(bundle));
        SOVDEV_ASSIGN(CachedStatement insert,
                      db_.cached("INSERT INTO image_blobs (digest, wire_digest, media_type, size, "
                                 "wire_size, state, used_at) VALUES (?, ?, ?, ?, ?, 'partial', ?) "
                                 "ON CONFLICT (digest) DO UPDATE SET used_at = excluded.used_at"));
        SOVDEV_ASSIGN(CachedStatement needs,
                      db_.cached("INSERT INTO bundle_image_blobs (bundle, digest) VALUES (?, ?) "
                                 "ON CONFLICT DO NOTHING"));
        for (const auto& b : blobs) {
          SOVDEV_TRY(check_digest(b.digest));
          SOVDEV_TRY(check_digest(b.wire_digest));
          SOVDEV_ASSIGN(auto held, blob_rows(db_, "WHERE digest = ? OR wire_digest = ?",
                                             Blob{b.digest}, Blob{b.wire_digest}));
          for (const auto& h : held) {
            if (h.digest != b.digest || h.wire_digest != b.wire_digest || h.size != b.size ||
                h.wire_size != b.wire_size) {
              return make_error(Errc::conflict, "blob " + short_hex(b.digest) +
                                                    " is held with another wire form (" +
                                                    short_hex(h.wire_digest) + ")");
            }
          }
          SOVDEV_TRY(insert->bind_all(Blob{b.digest}, Blob{b.wire_digest}, b.media_type, b.size,
                                      b.wire_size, now));
          SOVDEV_TRY(insert->run());
          insert->reset();
          SOVDEV_TRY(needs->bind_all(Blob{bundle}, Blob{b.digest}));
          SOVDEV_TRY(needs->run());
          needs->reset();
        }
        return {};
      }));
}

Status ImageBlobs::forget_bundle(std::string_view bundle) {
  SOVDEV_ASSIGN(Statement remove, db_.prepare("DELETE FROM bundle_image_blobs WHERE bundle = ?"));
  SOVDEV_TRY(remove.bind(1, Blob{bundle}));
  return remove.run();
}

Expected<std::optional<ImageBlobInfo>> ImageBlobs::find(std::string_view digest) {
  SOVDEV_ASSIGN(auto rows, blob_rows(db_, "WHERE digest = ?", Blob{digest}));
  if (rows.empty()) return std::optional<ImageBlobInfo>();
  return std::optional<ImageBlobInfo>(std::move(rows.front()));
}

Expected<std::vector<ImageBlobInfo>> ImageBlobs::needed_by(std::string_view bundle) {
  return blob_rows(db_,
                   "WHERE digest IN (SELECT digest FROM bundle_image_blobs WHERE bundle = ?) "
                   "ORDER BY digest",
                   Blob{bundle});
}

Status ImageBlobs::set_manifest(std::string_view digest, std::string_view blob_manifest,
                                std::uint32_t chunk_size, std::uint32_t chunk_count) {
  return with_context(
      "keep the blob manifest of " + short_hex(digest), transaction(db_, [&]() -> Status {
        SOVDEV_ASSIGN(const ImageBlobInfo info, held_blob(db_, digest));
        if (info.state == BlobState::verified) return {};
        if (chunk_size == 0 || std::uint64_t{chunk_count} * chunk_size < info.wire_size ||
            (chunk_count > 0 && info.wire_size <= std::uint64_t{chunk_count - 1} * chunk_size)) {
          return make_error(Errc::invalid, std::to_string(chunk_count) + " chunks of " +
                                               std::to_string(chunk_size) + " bytes cannot hold " +
                                               std::to_string(info.wire_size));
        }
        if (info.blob_manifest == blob_manifest && info.chunk_size == chunk_size) return {};
        if (folder().empty()) return make_error(Errc::invalid, "image blobs need a folder");
        // Another shape (or none before): nothing held so far can be trusted at its place.
        SOVDEV_TRY(delete_blob_chunks(db_, digest));
        const std::string path = partial_path(info.wire_digest);
        std::error_code ec;
        std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
        std::filesystem::remove(path, ec);
        SOVDEV_ASSIGN(Statement update,
                      db_.prepare("UPDATE image_blobs SET blob_manifest = ?, chunk_size = ?, "
                                  "chunk_count = ? WHERE digest = ?"));
        SOVDEV_TRY(update.bind_all(Blob{blob_manifest}, chunk_size, chunk_count, Blob{digest}));
        return update.run();
      }));
}

Status ImageBlobs::put_chunk(std::string_view digest, std::uint32_t index, std::string_view data) {
  const std::string what = "store chunk " + std::to_string(index) + " of blob " + short_hex(digest);
  return with_context(
      what, transaction(db_, [&]() -> Status {
        SOVDEV_ASSIGN(const ImageBlobInfo info, held_blob(db_, digest));
        if (info.chunk_size == 0 || index >= info.chunk_count) {
          return make_error(Errc::invalid, "index out of range");
        }
        const std::size_t length = blob_chunk_length(info, index);
        if (data.size() != length) {
          return make_error(Errc::invalid, "the chunk holds " + std::to_string(data.size()) +
                                               " bytes, not " + std::to_string(length));
        }
        SOVDEV_ASSIGN(CachedStatement mark, db_.cached("INSERT INTO image_chunks (digest, idx) "
                                                       "VALUES (?, ?) ON CONFLICT DO NOTHING"));
        SOVDEV_TRY(mark->bind_all(Blob{digest}, index));
        SOVDEV_TRY(mark->run());
        const bool fresh = db_.changes() == 1;
        SOVDEV_ASSIGN(ChunkFile file, ChunkFile::open(partial_path(info.wire_digest), true));
        const std::uint64_t at = std::uint64_t{index} * info.chunk_size;
        if (!fresh) {
          std::string held;
          SOVDEV_TRY(file.read_at(at, length, held));
          if (held == data) return {};
          return make_error(Errc::conflict, "already stored with other content");
        }
        return file.write_at(at, data);
      }));
}

Expected<std::vector<std::uint32_t>> ImageBlobs::missing_chunks(std::string_view digest) {
  SOVDEV_ASSIGN(const ImageBlobInfo info, held_blob(db_, digest));
  SOVDEV_ASSIGN(const auto held, held_chunks(db_, digest));
  std::vector<std::uint32_t> missing;
  std::size_t h = 0;
  for (std::uint32_t i = 0; i < info.chunk_count; ++i) {
    while (h < held.size() && held[h] < i) ++h;
    if (h < held.size() && held[h] == i) continue;
    missing.push_back(i);
  }
  return missing;
}

Expected<std::uint32_t> ImageBlobs::drop_damaged(
    std::string_view digest, const std::function<bool(std::uint32_t, std::string_view)>& good) {
  SOVDEV_ASSIGN(const ImageBlobInfo info, held_blob(db_, digest));
  if (info.state != BlobState::partial || info.chunk_size == 0) return 0u;
  SOVDEV_ASSIGN(const auto held, held_chunks(db_, digest));
  if (held.empty()) return 0u;
  std::vector<std::uint32_t> bad;
  auto file = ChunkFile::open(partial_path(info.wire_digest), false);
  std::string chunk;
  for (const std::uint32_t index : held) {
    // No file, or one shorter than its rows: what a power cut can leave.
    if (!file || index >= info.chunk_count ||
        !file->read_at(std::uint64_t{index} * info.chunk_size, blob_chunk_length(info, index),
                       chunk) ||
        !good(index, chunk)) {
      bad.push_back(index);
    }
  }
  if (bad.empty()) return 0u;
  const auto forget = [&]() -> Status {
    SOVDEV_ASSIGN(Statement remove,
                  db_.prepare("DELETE FROM image_chunks WHERE digest = ? AND idx = ?"));
    for (const std::uint32_t index : bad) {
      SOVDEV_TRY(remove.bind_all(Blob{digest}, index));
      SOVDEV_TRY(remove.run());
      remove.reset();
    }
    return {};
  };
  SOVDEV_TRY(transaction(db_, forget));
  return static_cast<std::uint32_t>(bad.size());
}

Status ImageBlobs::start_writeback(std::string_view digest) {
  SOVDEV_ASSIGN(const ImageBlobInfo info, held_blob(db_, digest));
  if (info.state != BlobState::partial || info.chunk_size == 0) return {};
  SOVDEV_ASSIGN(ChunkFile file, ChunkFile::open(partial_path(info.wire_digest), false));
  return file.start_writeback();
}

Status ImageBlobs::mark_verified(std::string_view digest) {
  return with_context(
      "keep blob " + short_hex(digest), transaction(db_, [&]() -> Status {
        SOVDEV_ASSIGN(const ImageBlobInfo info, held_blob(db_, digest));
        if (info.state == BlobState::verified) return {};
        SOVDEV_ASSIGN(Statement count,
                      db_.prepare("SELECT count(*) FROM image_chunks WHERE digest = ?"));
        SOVDEV_TRY(count.bind(1, Blob{digest}));
        SOVDEV_TRY(count.step());
        if (info.chunk_size == 0 || count.uint64(0) < info.chunk_count) {
          return make_error(Errc::invalid, "chunks are missing");
        }
        const std::string from = partial_path(info.wire_digest);
        const std::string to = blob_path(digest);
        {
          SOVDEV_ASSIGN(ChunkFile file, ChunkFile::open(from, false));
          SOVDEV_TRY(file.sync());
        }
        std::error_code ec;
        std::filesystem::create_directories(std::filesystem::path(to).parent_path(), ec);
        if (::rename(from.c_str(), to.c_str()) != 0) return file_io_error("rename", from, errno);
        // Renamed before the commit: a crash in between leaves a partial row over a whole file,
        // which the next fetch checks and adopts (adopt_verified).
        SOVDEV_TRY(sync_folder(std::filesystem::path(to).parent_path().string()));
        SOVDEV_TRY(delete_blob_chunks(db_, digest));
        SOVDEV_ASSIGN(Statement update,
                      db_.prepare("UPDATE image_blobs SET state = 'verified' WHERE digest = ?"));
        SOVDEV_TRY(update.bind(1, Blob{digest}));
        return update.run();
      }));
}

Status ImageBlobs::adopt_verified(std::string_view digest) {
  return transaction(db_, [&]() -> Status {
    SOVDEV_TRY(delete_blob_chunks(db_, digest));
    SOVDEV_ASSIGN(Statement update,
                  db_.prepare("UPDATE image_blobs SET state = 'verified' WHERE digest = ?"));
    SOVDEV_TRY(update.bind(1, Blob{digest}));
    return update.run();
  });
}

Expected<bool> ImageBlobs::remove(std::string_view digest) {
  SOVDEV_ASSIGN(auto info, find(digest));
  if (!info) return false;
  const auto drop = [&]() -> Status {
    SOVDEV_TRY(delete_blob_chunks(db_, digest));
    SOVDEV_ASSIGN(Statement remove, db_.prepare("DELETE FROM image_blobs WHERE digest = ?"));
    SOVDEV_TRY(remove.bind(1, Blob{digest}));
    return remove.run();
  };
  SOVDEV_TRY(transaction(db_, drop));
  if (!folder().empty() && db_.autocommit()) {
    std::error_code ec;
    std::filesystem::remove(partial_path(info->wire_digest), ec);
    std::filesystem::remove(blob_path(digest), ec);
  }
  return true;
}

Status ImageBlobs::reset_partial(std::string_view digest) {
  SOVDEV_ASSIGN(const ImageBlobInfo info, held_blob(db_, digest));
  if (info.state != BlobState::partial) return {};
  SOVDEV_TRY(delete_blob_chunks(db_, digest));
  std::error_code ec;
  if (!folder().empty()) std::filesystem::remove(partial_path(info.wire_digest), ec);
  return {};
}

Expected<std::vector<ImageBlobInfo>> ImageBlobs::collectable(const std::vector<std::string>& keep) {
  SOVDEV_ASSIGN(auto all, blob_rows(db_, "ORDER BY state = 'verified', used_at, digest"));
  std::set<std::string> kept;
  {
    SOVDEV_ASSIGN(Statement select,
                  db_.prepare("SELECT digest FROM bundle_image_blobs WHERE bundle = ?"));
    for (const auto& bundle : keep) {
      SOVDEV_TRY(select.bind(1, Blob{bundle}));
      for (;;) {
        SOVDEV_ASSIGN(const bool row, select.step());
        if (!row) break;
        kept.insert(select.blob(0));
      }
      select.reset();
    }
  }
  std::vector<ImageBlobInfo> out;
  for (auto& info : all) {
    if (!kept.count(info.digest)) out.push_back(std::move(info));
  }
  return out;
}

Expected<std::uint64_t> ImageBlobs::bytes_reserved() {
  SOVDEV_ASSIGN(Statement sum, db_.prepare("SELECT coalesce(sum(wire_size), 0) FROM image_blobs "
                                           "WHERE state = 'verified' OR chunk_size > 0"));
  SOVDEV_TRY(sum.step());
  return sum.uint64(0);
}

Expected<std::uint32_t> ImageBlobs::sweep() {
  const std::string root = folder();
  if (root.empty()) return 0u;
  SOVDEV_ASSIGN(Transaction locked, Transaction::begin(db_));
  // Needs of bundles the cache no longer holds keep nothing.
  SOVDEV_TRY(
      db_.exec("DELETE FROM bundle_image_blobs WHERE bundle NOT IN "
               "(SELECT digest FROM bundles)"));
  std::set<std::string> partial, whole;
  SOVDEV_ASSIGN(auto rows, blob_rows(db_, ""));
  for (const auto& r : rows) {
    if (r.state == BlobState::verified) {
      whole.insert(to_hex(r.digest) + ".zst");
    } else {
      partial.insert(to_hex(r.wire_digest));
      whole.insert(to_hex(r.digest) + ".zst");  // renamed, not yet committed: adopted later
    }
  }
  SOVDEV_TRY(locked.commit());
  std::uint32_t swept = 0;
  std::error_code ec;
  for (const auto& [sub, owned] : {std::pair{"partial", &partial}, std::pair{"blobs", &whole}}) {
    const auto dir = std::filesystem::path(root) / sub;
    if (!std::filesystem::is_directory(dir, ec)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (owned->count(entry.path().filename().string())) continue;
      std::filesystem::remove(entry.path(), ec);
      if (!ec) swept++;
    }
  }
  return swept;
}

}  // namespace sovdev::store
