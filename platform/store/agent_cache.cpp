// BundleCache and opening the agent database; the smaller views are in agent_records.cpp.
#include "platform/store/agent_cache.hpp"

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
    "payload_origin FROM bundles ";

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
  return info;
}

// Runs a query over kColumns that returns at most one bundle.
template <class... Args>
Expected<std::optional<BundleInfo>> query_one(Database& db, const std::string& where,
                                              const Args&... args) {
  SOVDEV_ASSIGN(Statement select, db.prepare(kColumns + where));
  SOVDEV_TRY(select.bind_all(args...));
  SOVDEV_ASSIGN(const bool row, select.step());
  if (!row) return std::optional<BundleInfo>();
  SOVDEV_ASSIGN(BundleInfo info, read_info(select));
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

// chunk_count of a cached bundle, or Errc::not_found.
Expected<std::uint32_t> chunk_count(Database& db, std::string_view digest) {
  SOVDEV_ASSIGN(Statement select, db.prepare("SELECT chunk_count FROM bundles WHERE digest = ?"));
  SOVDEV_TRY(select.bind(1, Blob{digest}));
  SOVDEV_ASSIGN(const bool row, select.step());
  if (!row) return make_error(Errc::not_found, "the bundle is not in the cache");
  return static_cast<std::uint32_t>(select.uint64(0));
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
        SOVDEV_ASSIGN(Statement insert,
                      db_.prepare("INSERT INTO bundles (digest, stack, channel, version, envelope, "
                                  "chunk_count, payload_size, state) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?, 'partial')"));
        SOVDEV_TRY(insert.bind_all(Blob{meta.digest}, meta.stack, meta.channel, meta.version,
                                   Blob{meta.envelope}, meta.chunk_count, meta.payload_size));
        SOVDEV_TRY(insert.run());
        return BundleState::partial;
      }));
}

Status BundleCache::put_chunk(std::string_view digest, std::uint32_t index, std::string_view data) {
  const std::string what = "store chunk " + std::to_string(index) + " of " + short_hex(digest);
  return with_context(what, transaction(db_, [&]() -> Status {
                        SOVDEV_TRY(check_digest(digest));
                        SOVDEV_ASSIGN(const std::uint32_t count, chunk_count(db_, digest));
                        if (index >= count) {
                          return make_error(Errc::invalid, "index out of range: the bundle has " +
                                                               std::to_string(count) + " chunks");
                        }
                        return detail::insert_chunk(db_, digest, index, data);
                      }));
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
  return with_context(what, detail::read_chunk(db_, digest, index, out));
}

Status BundleCache::set_state(std::string_view digest, BundleState state) {
  const std::string what =
      "mark bundle " + short_hex(digest) + " " + std::string(state_name(state));
  return with_context(
      what, transaction(db_, [&]() -> Status {
        SOVDEV_ASSIGN(const std::uint32_t count, chunk_count(db_, digest));
        if (state != BundleState::partial) {
          SOVDEV_ASSIGN(Statement held,
                        db_.prepare("SELECT count(*) FROM chunks WHERE digest = ?"));
          SOVDEV_TRY(held.bind(1, Blob{digest}));
          SOVDEV_TRY(held.step());
          if (held.uint64(0) < count) {
            return make_error(Errc::invalid, std::to_string(count - held.uint64(0)) + " of " +
                                                 std::to_string(count) + " chunks are missing");
          }
        }
        SOVDEV_ASSIGN(Statement update,
                      db_.prepare("UPDATE bundles SET state = ? WHERE digest = ?"));
        SOVDEV_TRY(update.bind_all(state_name(state), Blob{digest}));
        return update.run();
      }));
}

Status BundleCache::put_rebuilt(const BundleMeta& meta, const ChunkSource& source) {
  const std::string what = "store the rebuilt payload of " + meta.stack + "@" +
                           std::to_string(meta.version) + " (" + short_hex(meta.digest) + ")";
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
                                    "payload_origin = 'rebuilt' WHERE digest = ?"));
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
        std::string chunk;
        std::uint64_t total = 0;
        for (std::uint32_t i = 0; i < meta.chunk_count; ++i) {
          chunk.clear();
          auto got = source(i, chunk);
          if (!got) return std::move(got).error().context("chunk " + std::to_string(i));
          SOVDEV_TRY(detail::insert_chunk(db_, meta.digest, i, chunk));
          total += chunk.size();
        }
        if (total != meta.payload_size) {
          return make_error(Errc::invalid, "the chunks hold " + std::to_string(total) +
                                               " bytes, the payload was declared as " +
                                               std::to_string(meta.payload_size));
        }
        SOVDEV_ASSIGN(Statement verified,
                      db_.prepare("UPDATE bundles SET state = 'verified' WHERE digest = ?"));
        SOVDEV_TRY(verified.bind(1, Blob{meta.digest}));
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
  return with_context(
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
}

}  // namespace sovdev::store
