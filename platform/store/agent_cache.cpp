// BundleCache and opening the agent database; the smaller views are in agent_records.cpp.
#include "platform/store/agent_cache.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/hex.hpp"
#include "platform/store/chunk_file.hpp"
#include "platform/store/chunk_table.hpp"
#include "platform/store/detail.hpp"
#include "platform/store/migrate.hpp"
#include "platform/store/transaction.hpp"

namespace sovdev::store {

using detail::check_digest;
using detail::short_hex;
using detail::with_context;

Expected<Database> open_agent_database(const std::string& path) {
  OpenOptions options;
  options.synchronous = Synchronous::full;
  SOVDEV_ASSIGN(Database db, Database::open(path, options));
  SOVDEV_TRY(migrate(db, Schema::agent));
  return db;
}

const char* state_name(BundleState state) {
  switch (state) {
    case BundleState::partial: return "partial";
    case BundleState::complete: return "complete";
    case BundleState::verified: return "verified";
  }
  return "unknown";
}

namespace {

std::optional<BundleState> parse_state(std::string_view text) {
  for (auto state : {BundleState::partial, BundleState::complete, BundleState::verified}) {
    if (text == state_name(state)) return state;
  }
  return std::nullopt;
}

constexpr const char* kColumns =
    "SELECT digest, stack, channel, version, envelope, chunk_count, payload_size, state, "
    "payload_origin, chunk_size FROM bundles ";

constexpr const char* kPayloadFolder = "payloads";

// Bytes in chunk `index` of a payload kept in a file.
std::size_t chunk_length(const BundleInfo& info, std::uint32_t index) {
  const std::uint64_t at = std::uint64_t{index} * info.chunk_size;
  return static_cast<std::size_t>(std::min<std::uint64_t>(info.chunk_size, info.payload_size - at));
}

Expected<BundleInfo> read_info(const Statement& row) {
  BundleInfo info;
  info.digest = row.blob(0);
  info.stack = row.text(1);
  info.channel = row.text(2);
  info.version = row.uint64(3);
  info.envelope = row.blob(4);
  info.chunk_count = static_cast<std::uint32_t>(row.uint64(5));
  info.payload_size = row.uint64(6);
  const auto state = parse_state(row.text(7));
  // The CHECK constraint makes this unreachable unless the file was edited by hand.
  if (!state) return make_error(Errc::store, "unknown bundle state '" + row.text(7) + "'");
  info.state = *state;
  info.rebuilt = row.text(8) == "rebuilt";
  info.chunk_size = static_cast<std::uint32_t>(row.uint64(9));
  return info;
}

// Runs a query over kColumns that returns at most one bundle.
template <class... Args>
Expected<std::optional<BundleInfo>> query_one(Database& db, const std::string& where,
                                              const Args&... args) {
  // A handful of queries, run at every fetch and apply: compiled once per connection.
  SOVDEV_ASSIGN(CachedStatement select, db.cached(kColumns + where));
  SOVDEV_TRY(select->bind_all(args...));
  SOVDEV_ASSIGN(const bool row, select->step());
  if (!row) return std::optional<BundleInfo>();
  SOVDEV_ASSIGN(BundleInfo info, read_info(*select));
  return std::optional<BundleInfo>(std::move(info));
}

// Errc::conflict when the stack and version are cached under a digest other than meta's.
Status check_version_free(Database& db, const BundleMeta& meta) {
  SOVDEV_ASSIGN(auto same_version, query_one(db, "WHERE stack = ? AND version = ? AND digest != ?",
                                             meta.stack, meta.version, Blob{meta.digest}));
  if (!same_version) return {};
  return make_error(Errc::conflict,
                    "the cache already holds this stack and version with other content (" +
                        short_hex(same_version->digest) + ", " + state_name(same_version->state) +
                        "); the publisher signed two different bundles for one version");
}

// The shape of a cached bundle's payload (the envelope is not read), or Errc::not_found.
Expected<BundleInfo> shape(Database& db, std::string_view digest) {
  SOVDEV_ASSIGN(CachedStatement select,
                db.cached("SELECT chunk_count, payload_size, chunk_size, state FROM bundles "
                          "WHERE digest = ?"));
  SOVDEV_TRY(select->bind(1, Blob{digest}));
  SOVDEV_ASSIGN(const bool row, select->step());
  if (!row) return make_error(Errc::not_found, "the bundle is not in the cache");
  BundleInfo info;
  info.digest = digest;
  info.chunk_count = static_cast<std::uint32_t>(select->uint64(0));
  info.payload_size = select->uint64(1);
  info.chunk_size = static_cast<std::uint32_t>(select->uint64(2));
  info.state = parse_state(select->text(3)).value_or(BundleState::partial);
  return info;
}

Expected<std::uint32_t> chunk_count(Database& db, std::string_view digest) {
  SOVDEV_ASSIGN(const BundleInfo info, shape(db, digest));
  return info.chunk_count;
}

}  // namespace

Expected<BundleState> BundleCache::begin(const BundleMeta& meta) {
  const std::string what = "cache bundle " + meta.stack + "@" + std::to_string(meta.version) +
                           " (" + short_hex(meta.digest) + ")";
  return with_context(
      what, transaction(db_, [&]() -> Expected<BundleState> {
        SOVDEV_TRY(check_digest(meta.digest));
        SOVDEV_ASSIGN(auto held, query_one(db_, "WHERE digest = ?", Blob{meta.digest}));
        if (held) return held->state;
        SOVDEV_TRY(check_version_free(db_, meta));
        const std::string path = payload_path(meta.digest);
        const std::uint32_t chunk_size =
            path.empty() || meta.chunk_count == 0 ? 0 : meta.chunk_size;
        if (chunk_size > 0) {
          if (std::uint64_t{meta.chunk_count} * chunk_size < meta.payload_size ||
              meta.payload_size <= std::uint64_t{meta.chunk_count - 1} * chunk_size) {
            return make_error(Errc::invalid, std::to_string(meta.chunk_count) + " chunks of " +
                                                 std::to_string(chunk_size) +
                                                 " bytes cannot hold a payload of " +
                                                 std::to_string(meta.payload_size));
          }
          // A file left by a bundle removed in a crash must not lend its bytes to this one.
          std::error_code ec;
          std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
          std::filesystem::remove(path, ec);
        }
        SOVDEV_ASSIGN(Statement insert,
                      db_.prepare("INSERT INTO bundles (digest, stack, channel, version, envelope, "
                                  "chunk_count, payload_size, state, chunk_size) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?, 'partial', ?)"));
        SOVDEV_TRY(insert.bind_all(Blob{meta.digest}, meta.stack, meta.channel, meta.version,
                                   Blob{meta.envelope}, meta.chunk_count, meta.payload_size,
                                   chunk_size));
        SOVDEV_TRY(insert.run());
        return BundleState::partial;
      }));
}

Status BundleCache::put_chunk(std::string_view digest, std::uint32_t index, std::string_view data) {
  const std::string what = "store chunk " + std::to_string(index) + " of " + short_hex(digest);
  return with_context(what, transaction(db_, [&]() -> Status {
                        SOVDEV_TRY(check_digest(digest));
                        SOVDEV_ASSIGN(const BundleInfo info, shape(db_, digest));
                        if (index >= info.chunk_count) {
                          return make_error(Errc::invalid, "index out of range: the bundle has " +
                                                               std::to_string(info.chunk_count) +
                                                               " chunks");
                        }
                        if (info.chunk_size == 0) {
                          return detail::insert_chunk(db_, digest, index, data);
                        }
                        return write_payload(info, index, data);
                      }));
}

std::string BundleCache::payload_path(std::string_view digest) const {
  const std::string& db = db_.path();
  if (db.empty() || db == ":memory:" || db.compare(0, 5, "file:") == 0) return {};
  return (std::filesystem::path(db).parent_path() / kPayloadFolder / to_hex(digest)).string();
}

Status BundleCache::write_payload(const BundleInfo& info, std::uint32_t index,
                                  std::string_view data) {
  const std::size_t length = chunk_length(info, index);
  if (data.size() != length) {
    return make_error(Errc::invalid, "the chunk holds " + std::to_string(data.size()) +
                                         " bytes, chunk " + std::to_string(index) + " is " +
                                         std::to_string(length));
  }
  const std::string path = payload_path(info.digest);
  SOVDEV_ASSIGN(bool fresh, detail::mark_chunk(db_, info.digest, index));
  SOVDEV_ASSIGN(ChunkFile file, ChunkFile::open(path, true));
  if (!fresh) {
    // Held already: fine when it is the same chunk again (a re-sent message).
    std::string held;
    SOVDEV_TRY(file.read_at(std::uint64_t{index} * info.chunk_size, length, held));
    if (held == data) return {};
    return make_error(Errc::conflict, "already stored with other content");
  }
  // The row commits with the caller's transaction, after these bytes are in the page cache: a
  // kill -9 never leaves a row without its bytes; a power cut can (see drop_damaged).
  return file.write_at(std::uint64_t{index} * info.chunk_size, data);
}

Status BundleCache::read_payload(const BundleInfo& info, std::uint32_t index, std::string& out) {
  if (index >= info.chunk_count) {
    return make_error(Errc::not_found,
                      "the bundle has " + std::to_string(info.chunk_count) + " chunks");
  }
  SOVDEV_ASSIGN(ChunkFile file, ChunkFile::open(payload_path(info.digest), false));
  return file.read_at(std::uint64_t{index} * info.chunk_size, chunk_length(info, index), out);
}

Expected<std::uint32_t> BundleCache::drop_damaged(
    std::string_view digest, const std::function<bool(std::uint32_t, std::string_view)>& good) {
  const std::string what = "check the held chunks of " + short_hex(digest);
  return with_context(what, [&]() -> Expected<std::uint32_t> {
    SOVDEV_ASSIGN(const BundleInfo info, shape(db_, digest));
    if (info.state != BundleState::partial) return 0u;
    std::vector<std::uint32_t> held;
    {
      SOVDEV_ASSIGN(Statement select,
                    db_.prepare("SELECT idx FROM chunks WHERE digest = ? ORDER BY idx"));
      SOVDEV_TRY(select.bind(1, Blob{digest}));
      for (;;) {
        SOVDEV_ASSIGN(const bool row, select.step());
        if (!row) break;
        held.push_back(static_cast<std::uint32_t>(select.uint64(0)));
      }
    }
    std::vector<std::uint32_t> bad;
    std::string chunk;
    for (const std::uint32_t index : held) {
      const Status read = info.chunk_size == 0 ? detail::read_chunk(db_, digest, index, chunk)
                                               : read_payload(info, index, chunk);
      // A file shorter than its rows, or none at all, is what a power cut can leave: those
      // chunks are fetched again (a file that cannot be written says so then).
      if (!read || !good(index, chunk)) bad.push_back(index);
    }
    if (bad.empty()) return 0u;
    const auto forget = [&]() -> Status {
      SOVDEV_ASSIGN(Statement remove,
                    db_.prepare("DELETE FROM chunks WHERE digest = ? AND idx = ?"));
      for (const std::uint32_t index : bad) {
        SOVDEV_TRY(remove.bind_all(Blob{digest}, index));
        SOVDEV_TRY(remove.run());
        remove.reset();
      }
      return {};
    };
    SOVDEV_TRY(transaction(db_, forget));
    return static_cast<std::uint32_t>(bad.size());
  }());
}

Expected<std::vector<std::uint32_t>> BundleCache::missing_chunks(std::string_view digest) {
  const std::string what = "list missing chunks of " + short_hex(digest);
  return with_context(what, [&]() -> Expected<std::vector<std::uint32_t>> {
    SOVDEV_ASSIGN(const std::uint32_t count, chunk_count(db_, digest));
    // Ordered by the (digest, idx) index, which covers the query: no chunk data is read.
    SOVDEV_ASSIGN(Statement held,
                  db_.prepare("SELECT idx FROM chunks WHERE digest = ? ORDER BY idx"));
    SOVDEV_TRY(held.bind(1, Blob{digest}));
    std::vector<std::uint32_t> missing;
    std::uint32_t next = 0;
    for (;;) {
      SOVDEV_ASSIGN(const bool row, held.step());
      if (!row) break;
      const std::uint64_t idx = held.uint64(0);
      for (; next < count && next < idx; ++next) missing.push_back(next);
      if (next == idx) ++next;
    }
    for (; next < count; ++next) missing.push_back(next);
    return missing;
  }());
}

Expected<std::string> BundleCache::read_chunk(std::string_view digest, std::uint32_t index) {
  std::string out;
  SOVDEV_TRY(read_chunk(digest, index, out));
  return out;
}

Status BundleCache::read_chunk(std::string_view digest, std::uint32_t index, std::string& out) {
  const std::string what = "read chunk " + std::to_string(index) + " of " + short_hex(digest);
  return with_context(what, [&]() -> Status {
    SOVDEV_ASSIGN(const BundleInfo info, shape(db_, digest));
    if (info.chunk_size == 0) return detail::read_chunk(db_, digest, index, out);
    return read_payload(info, index, out);
  }());
}

Status BundleCache::set_state(std::string_view digest, BundleState state) {
  const std::string what =
      "mark bundle " + short_hex(digest) + " " + std::string(state_name(state));
  return with_context(
      what, transaction(db_, [&]() -> Status {
        SOVDEV_ASSIGN(const BundleInfo info, shape(db_, digest));
        const std::uint32_t count = info.chunk_count;
        if (state != BundleState::partial) {
          SOVDEV_ASSIGN(Statement held,
                        db_.prepare("SELECT count(*) FROM chunks WHERE digest = ?"));
          SOVDEV_TRY(held.bind(1, Blob{digest}));
          SOVDEV_TRY(held.step());
          if (held.uint64(0) < count) {
            return make_error(Errc::invalid, std::to_string(count - held.uint64(0)) + " of " +
                                                 std::to_string(count) + " chunks are missing");
          }
          if (info.chunk_size > 0 && info.state == BundleState::partial && count > 0) {
            // The chunks were written without an fsync; this commit says they are all there.
            SOVDEV_ASSIGN(ChunkFile file, ChunkFile::open(payload_path(digest), false));
            SOVDEV_TRY(file.sync());
          }
        }
        SOVDEV_ASSIGN(Statement update,
                      db_.prepare("UPDATE bundles SET state = ? WHERE digest = ?"));
        SOVDEV_TRY(update.bind_all(state_name(state), Blob{digest}));
        return update.run();
      }));
}

Status BundleCache::start_writeback(std::string_view digest) {
  const std::string path = payload_path(digest);
  if (path.empty()) return {};
  SOVDEV_ASSIGN(const BundleInfo info, shape(db_, digest));
  if (info.chunk_size == 0 || info.state != BundleState::partial) return {};
  SOVDEV_ASSIGN(ChunkFile file, ChunkFile::open(path, false));
  return file.start_writeback();
}

Status BundleCache::put_rebuilt(const BundleMeta& meta, const ChunkSource& source) {
  const std::string what = "store the rebuilt payload of " + meta.stack + "@" +
                           std::to_string(meta.version) + " (" + short_hex(meta.digest) + ")";
  const std::string path = payload_path(meta.digest);
  return with_context(
      what, transaction(db_, [&]() -> Status {
        SOVDEV_TRY(check_digest(meta.digest));
        SOVDEV_ASSIGN(auto held, query_one(db_, "WHERE digest = ?", Blob{meta.digest}));
        if (held && held->state == BundleState::verified) {
          return make_error(Errc::conflict, "the bundle is verified already; its payload is kept");
        }
        if (held) {
          // A download that was started in full: its signed chunks give way to the rebuilt ones.
          SOVDEV_TRY(detail::delete_chunks(db_, meta.digest));
          SOVDEV_ASSIGN(Statement update,
                        db_.prepare("UPDATE bundles SET chunk_count = ?, payload_size = ?, "
                                    "payload_origin = 'rebuilt', chunk_size = 0 WHERE digest = ?"));
          SOVDEV_TRY(update.bind_all(meta.chunk_count, meta.payload_size, Blob{meta.digest}));
          SOVDEV_TRY(update.run());
        } else {
          SOVDEV_TRY(check_version_free(db_, meta));
          SOVDEV_ASSIGN(Statement insert,
                        db_.prepare("INSERT INTO bundles (digest, stack, channel, version, "
                                    "envelope, chunk_count, payload_size, state, payload_origin) "
                                    "VALUES (?, ?, ?, ?, ?, ?, ?, 'partial', 'rebuilt')"));
          SOVDEV_TRY(insert.bind_all(Blob{meta.digest}, meta.stack, meta.channel, meta.version,
                                     Blob{meta.envelope}, meta.chunk_count, meta.payload_size));
          SOVDEV_TRY(insert.run());
        }
        // In a folder, the chunks go to a new file that replaces the download's only once it is
        // complete and on disk; every chunk but the last is as long as the first.
        const std::string fresh = path.empty() ? std::string() : path + ".rebuilt";
        std::optional<ChunkFile> file;
        if (!fresh.empty()) {
          std::error_code ec;
          std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
          std::filesystem::remove(fresh, ec);
          SOVDEV_ASSIGN(ChunkFile opened, ChunkFile::open(fresh, true));
          file.emplace(std::move(opened));
        }
        std::string chunk;
        std::uint64_t total = 0;
        std::uint32_t chunk_size = 0;
        for (std::uint32_t i = 0; i < meta.chunk_count; ++i) {
          chunk.clear();
          auto got = source(i, chunk);
          if (!got) return std::move(got).error().context("chunk " + std::to_string(i));
          if (!file) {
            SOVDEV_TRY(detail::insert_chunk(db_, meta.digest, i, chunk));
          } else {
            if (i == 0) chunk_size = static_cast<std::uint32_t>(chunk.size());
            const bool last = i + 1 == meta.chunk_count;
            if (chunk.empty() || (last ? chunk.size() > chunk_size : chunk.size() != chunk_size)) {
              return make_error(Errc::invalid, "chunk " + std::to_string(i) + " holds " +
                                                   std::to_string(chunk.size()) +
                                                   " bytes, the first " +
                                                   std::to_string(chunk_size));
            }
            SOVDEV_TRY(file->write_at(std::uint64_t{i} * chunk_size, chunk));
            SOVDEV_ASSIGN(const bool marked, detail::mark_chunk(db_, meta.digest, i));
            (void)marked;
          }
          total += chunk.size();
        }
        if (total != meta.payload_size) {
          return make_error(Errc::invalid, "the chunks hold " + std::to_string(total) +
                                               " bytes, the payload was declared as " +
                                               std::to_string(meta.payload_size));
        }
        if (file) {
          SOVDEV_TRY(file->sync());
          if (::rename(fresh.c_str(), path.c_str()) != 0)
            return file_io_error("rename", fresh, errno);
          // Renamed before the commit: a crash in between leaves the download's rows over the
          // rebuilt bytes, which drop_damaged() finds.
          SOVDEV_TRY(sync_folder(std::filesystem::path(path).parent_path().string()));
        }
        SOVDEV_ASSIGN(Statement verified,
                      db_.prepare("UPDATE bundles SET state = 'verified', chunk_size = ? "
                                  "WHERE digest = ?"));
        SOVDEV_TRY(verified.bind_all(chunk_size, Blob{meta.digest}));
        return verified.run();
      }));
}

Expected<std::optional<BundleInfo>> BundleCache::find(std::string_view digest) {
  return with_context("find bundle " + short_hex(digest),
                      query_one(db_, "WHERE digest = ?", Blob{digest}));
}

Expected<std::optional<BundleInfo>> BundleCache::find_version(std::string_view stack,
                                                              std::uint64_t version) {
  return with_context("find bundle " + std::string(stack) + "@" + std::to_string(version),
                      query_one(db_, "WHERE stack = ? AND version = ?", stack, version));
}

Expected<std::optional<BundleInfo>> BundleCache::highest_verified(std::string_view stack) {
  return with_context(
      "find the newest verified bundle of " + std::string(stack),
      query_one(db_, "WHERE stack = ? AND state = 'verified' ORDER BY version DESC LIMIT 1",
                stack));
}

Expected<std::vector<BundleInfo>> BundleCache::list() {
  return with_context("list cached bundles", [&]() -> Expected<std::vector<BundleInfo>> {
    SOVDEV_ASSIGN(Statement select, db_.prepare(std::string(kColumns) + "ORDER BY stack, version"));
    std::vector<BundleInfo> bundles;
    for (;;) {
      SOVDEV_ASSIGN(const bool row, select.step());
      if (!row) return bundles;
      SOVDEV_ASSIGN(BundleInfo info, read_info(select));
      bundles.push_back(std::move(info));
    }
  }());
}

Expected<bool> BundleCache::remove(std::string_view digest) {
  auto removed = with_context(
      "remove bundle " + short_hex(digest), transaction(db_, [&]() -> Expected<bool> {
        {
          SOVDEV_ASSIGN(Statement guard,
                        db_.prepare("SELECT stack FROM last_good WHERE digest = ?"));
          SOVDEV_TRY(guard.bind(1, Blob{digest}));
          SOVDEV_ASSIGN(const bool row, guard.step());
          if (row) {
            return make_error(Errc::conflict, "it is the last good bundle of stack " +
                                                  guard.text(0) +
                                                  ", kept for rollback; set another one first");
          }
        }
        // Chunks first and explicitly, rather than trusting the cascade: it holds even on a
        // connection opened without foreign keys.
        SOVDEV_TRY(detail::delete_chunks(db_, digest));
        SOVDEV_ASSIGN(Statement bundle, db_.prepare("DELETE FROM bundles WHERE digest = ?"));
        SOVDEV_TRY(bundle.bind(1, Blob{digest}));
        SOVDEV_TRY(bundle.run());
        return db_.changes() > 0;
      }));
  if (removed && *removed && db_.autocommit()) {
    // Committed: the bytes can go. Inside a caller's transaction the sweep takes them later.
    const std::string path = payload_path(digest);
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove(path, ec);
  }
  return removed;
}

Expected<std::uint32_t> BundleCache::sweep_payloads() {
  const std::string probe = payload_path(std::string(32, '\0'));
  if (probe.empty()) return 0u;
  const std::filesystem::path folder = std::filesystem::path(probe).parent_path();
  std::error_code ec;
  if (!std::filesystem::is_directory(folder, ec)) return 0u;
  // Under the write lock: no other process is then half-way through a rebuild or a removal,
  // so what no committed row owns is truly left over.
  SOVDEV_ASSIGN(Transaction locked, Transaction::begin(db_));
  std::uint32_t swept = 0;
  SOVDEV_ASSIGN(Statement owned, db_.prepare("SELECT 1 FROM bundles WHERE digest = ?"));
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    auto digest = from_hex(name);
    bool keep = false;
    if (digest && digest->size() == 32) {
      SOVDEV_TRY(owned.bind(1, Blob{*digest}));
      SOVDEV_ASSIGN(keep, owned.step());
      owned.reset();
    }
    // Anything else (a .rebuilt file of a crashed rebuild) is ours and unfinished.
    if (keep) continue;
    std::filesystem::remove(entry.path(), ec);
    if (!ec) swept++;
  }
  SOVDEV_TRY(locked.commit());
  return swept;
}

}  // namespace sovdev::store
