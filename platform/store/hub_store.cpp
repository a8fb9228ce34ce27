#include "platform/store/hub_store.hpp"

#include <algorithm>
#include <ctime>

#include "platform/store/chunk_table.hpp"
#include "platform/store/detail.hpp"
#include "platform/store/migrate.hpp"
#include "platform/store/transaction.hpp"

namespace sovdev::store {

using detail::check_digest;
using detail::short_hex;
using detail::with_context;

Expected<Database> open_hub_database(const std::string& path) {
  OpenOptions options;
  options.synchronous = Synchronous::normal;
  // The hub serves the same chunks to many agents; it can afford a cache that keeps them hot.
  options.cache_kib = 16 * 1024;
  // A chunk (64 KiB) is a blob SQLite keeps on overflow pages and reads one page per pread,
  // bypassing its cache: with 4 KiB pages serving one chunk took 17 system calls, and reading
  // was a third of the hub's CPU in a pull. 64 KiB pages: two. The cost is larger writes of the
  // small rows (an agent's status: about one an hour per agent).
  options.page_size = 64 * 1024;
  SOVDEV_ASSIGN(Database db, Database::open(path, options));
  SOVDEV_TRY(migrate(db, Schema::hub));
  return db;
}

Expected<Database> open_hub_reader(const std::string& path) {
  OpenOptions read_only;
  read_only.create = false;
  read_only.read_only = true;
  read_only.synchronous = Synchronous::normal;
  read_only.cache_kib = 2048;
  return Database::open(path, read_only);
}

// ---------------------------------------------------------------- HubBundles

namespace {

constexpr const char* kHubBundleColumns =
    "SELECT digest, channel, stack, version, envelope, chunk_count, payload_size, "
    "uncompressed_size, created_at FROM bundles ";
// The same with an empty envelope, for the lookups made per chunk request.
constexpr const char* kHubBundleColumnsNoEnvelope =
    "SELECT digest, channel, stack, version, X'', chunk_count, payload_size, "
    "uncompressed_size, created_at FROM bundles ";

template <class... Args>
Expected<std::optional<HubBundle>> query_one_hub_bundle(Database& db, const char* columns,
                                                        const std::string& where,
                                                        const Args&... args) {
  SOVDEV_ASSIGN(CachedStatement select, db.cached(columns + where));
  SOVDEV_TRY(select->bind_all(args...));
  SOVDEV_ASSIGN(const bool row, select->step());
  if (!row) return std::optional<HubBundle>();
  return std::optional<HubBundle>(
      HubBundle{select->blob(0), select->text(1), select->text(2), select->uint64(3),
                select->blob(4), static_cast<std::uint32_t>(select->uint64(5)), select->uint64(6),
                select->uint64(7), select->int64(8)});
}

}  // namespace

Expected<bool> HubBundles::put_bundle(const HubBundle& bundle, const HubChunkSource& chunks) {
  const std::string what = "store bundle " + bundle.channel + "/" + bundle.stack + "@" +
                           std::to_string(bundle.version) + " (" + short_hex(bundle.digest) + ")";
  return with_context(
      what, transaction(db_, [&]() -> Expected<bool> {
        SOVDEV_TRY(check_digest(bundle.digest));
        SOVDEV_ASSIGN(auto held, query_one_hub_bundle(db_, kHubBundleColumns, "WHERE digest = ?",
                                                      Blob{bundle.digest}));
        if (held) return false;
        SOVDEV_ASSIGN(auto newest, latest(bundle.channel, bundle.stack));
        if (newest && newest->version == bundle.version) {
          return make_error(Errc::conflict,
                            "this version is already published with other content (" +
                                short_hex(newest->digest) + "); publish under a new version");
        }
        if (newest && newest->version > bundle.version) {
          return make_error(Errc::rollback, "the stack is already published at version " +
                                                std::to_string(newest->version) +
                                                "; agents would refuse a lower one");
        }
        SOVDEV_ASSIGN(Statement insert,
                      db_.prepare("INSERT INTO bundles (digest, channel, stack, version, envelope, "
                                  "chunk_count, payload_size, uncompressed_size, created_at) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
        SOVDEV_TRY(insert.bind_all(Blob{bundle.digest}, bundle.channel, bundle.stack,
                                   bundle.version, Blob{bundle.envelope}, bundle.chunk_count,
                                   bundle.payload_size, bundle.uncompressed_size,
                                   bundle.created_at));
        SOVDEV_TRY(insert.run());
        std::uint64_t total = 0;
        for (std::uint32_t index = 0; index < bundle.chunk_count; ++index) {
          auto data = chunks(index);
          if (!data) return std::move(data).error().context("chunk " + std::to_string(index));
          total += data->size();
          auto stored = detail::insert_chunk(db_, bundle.digest, index, *data);
          if (!stored) return std::move(stored).error().context("chunk " + std::to_string(index));
        }
        if (total != bundle.payload_size) {
          return make_error(Errc::invalid, "the chunks hold " + std::to_string(total) +
                                               " bytes, the manifest declares " +
                                               std::to_string(bundle.payload_size));
        }
        return true;
      }));
}

Expected<std::optional<HubBundle>> HubBundles::find(std::string_view digest) {
  return with_context(
      "find bundle " + short_hex(digest),
      query_one_hub_bundle(db_, kHubBundleColumns, "WHERE digest = ?", Blob{digest}));
}

Expected<std::optional<HubBundle>> HubBundles::find_without_envelope(std::string_view digest) {
  return with_context(
      "find bundle " + short_hex(digest),
      query_one_hub_bundle(db_, kHubBundleColumnsNoEnvelope, "WHERE digest = ?", Blob{digest}));
}

Expected<std::string> HubBundles::read_chunk(std::string_view digest, std::uint32_t index) {
  std::string out;
  SOVDEV_TRY(read_chunk(digest, index, out));
  return out;
}

Status HubBundles::read_chunk(std::string_view digest, std::uint32_t index, std::string& out) {
  const std::string what = "read chunk " + std::to_string(index) + " of " + short_hex(digest);
  return with_context(what, detail::read_chunk(db_, digest, index, out));
}

Expected<std::optional<HubBundle>> HubBundles::latest(std::string_view channel,
                                                      std::string_view stack) {
  return with_context(
      "find the newest bundle of " + std::string(channel) + "/" + std::string(stack),
      query_one_hub_bundle(db_, kHubBundleColumns,
                           "WHERE channel = ? AND stack = ? ORDER BY version DESC LIMIT 1", channel,
                           stack));
}

Expected<std::vector<std::string>> HubBundles::channels() {
  SOVDEV_ASSIGN(Statement select,
                db_.prepare("SELECT DISTINCT channel FROM bundles ORDER BY channel"));
  std::vector<std::string> out;
  for (;;) {
    SOVDEV_ASSIGN(const bool row, select.step());
    if (!row) break;
    out.push_back(select.text(0));
  }
  return out;
}

Expected<std::vector<HubBundle>> HubBundles::newest_per_stack(std::string_view channel) {
  SOVDEV_ASSIGN(Statement stacks,
                db_.prepare("SELECT DISTINCT stack FROM bundles WHERE channel = ? ORDER BY stack"));
  SOVDEV_TRY(stacks.bind_all(channel));
  std::vector<HubBundle> out;
  for (;;) {
    SOVDEV_ASSIGN(const bool row, stacks.step());
    if (!row) break;
    SOVDEV_ASSIGN(auto newest, latest(channel, stacks.text(0)));
    if (newest) out.push_back(std::move(*newest));
  }
  return out;
}

Expected<std::vector<VersionEntry>> HubBundles::versions(std::string_view channel,
                                                         std::string_view stack) {
  const std::string what = "list versions of " + std::string(channel) + "/" + std::string(stack);
  return with_context(what, [&]() -> Expected<std::vector<VersionEntry>> {
    SOVDEV_ASSIGN(Statement select, db_.prepare("SELECT version, digest FROM bundles WHERE "
                                                "channel = ? AND stack = ? ORDER BY version"));
    SOVDEV_TRY(select.bind_all(channel, stack));
    std::vector<VersionEntry> entries;
    for (;;) {
      SOVDEV_ASSIGN(const bool row, select.step());
      if (!row) return entries;
      entries.push_back(VersionEntry{select.uint64(0), select.blob(1)});
    }
  }());
}

Expected<bool> HubBundles::remove(std::string_view digest) {
  return with_context(
      "remove bundle " + short_hex(digest), transaction(db_, [&]() -> Expected<bool> {
        SOVDEV_ASSIGN(Statement chunks, db_.prepare("DELETE FROM chunks WHERE digest = ?"));
        SOVDEV_TRY(chunks.bind(1, Blob{digest}));
        SOVDEV_TRY(chunks.run());
        SOVDEV_ASSIGN(Statement bundle, db_.prepare("DELETE FROM bundles WHERE digest = ?"));
        SOVDEV_TRY(bundle.bind(1, Blob{digest}));
        SOVDEV_TRY(bundle.run());
        return db_.changes() > 0;
      }));
}

// ---------------------------------------------------------------- HubCatalogs

Status HubCatalogs::put_catalog(std::string_view channel, std::uint64_t serial,
                                std::int64_t expires_at, std::string_view envelope) {
  const std::string what =
      "store catalog " + std::string(channel) + " serial " + std::to_string(serial);
  return with_context(
      what, transaction(db_, [&]() -> Status {
        SOVDEV_ASSIGN(auto held, catalog(channel));
        if (held && serial <= held->serial) {
          return make_error(Errc::rollback, "the published serial is already " +
                                                std::to_string(held->serial) +
                                                "; a new catalog needs a higher one");
        }
        SOVDEV_ASSIGN(Statement upsert,
                      db_.prepare("INSERT INTO catalogs (channel, serial, expires_at, envelope) "
                                  "VALUES (?, ?, ?, ?) ON CONFLICT (channel) DO UPDATE SET "
                                  "serial = excluded.serial, expires_at = excluded.expires_at, "
                                  "envelope = excluded.envelope"));
        SOVDEV_TRY(upsert.bind_all(channel, serial, expires_at, Blob{envelope}));
        return upsert.run();
      }));
}

Expected<std::optional<HubCatalog>> HubCatalogs::catalog(std::string_view channel) {
  const std::string what = "read catalog " + std::string(channel);
  return with_context(what, [&]() -> Expected<std::optional<HubCatalog>> {
    SOVDEV_ASSIGN(Statement select,
                  db_.prepare("SELECT channel, serial, expires_at, envelope FROM catalogs "
                              "WHERE channel = ?"));
    SOVDEV_TRY(select.bind(1, channel));
    SOVDEV_ASSIGN(const bool row, select.step());
    if (!row) return std::optional<HubCatalog>();
    return std::optional<HubCatalog>(
        HubCatalog{select.text(0), select.uint64(1), select.int64(2), select.blob(3)});
  }());
}

// ---------------------------------------------------------------- FleetStatus

Expected<bool> FleetStatus::upsert(const AgentRecord& record, std::int64_t now) {
  const std::string what = "record the status of agent " + record.agent_id;
  if (now == 0) now = static_cast<std::int64_t>(std::time(nullptr));
  return with_context(what, [&]() -> Expected<bool> {
    SOVDEV_ASSIGN(Statement upsert,
                  db_.prepare("INSERT INTO agents (agent_id, channel, status, updated_at, seen_at) "
                              "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (agent_id) DO UPDATE SET "
                              "channel = excluded.channel, status = excluded.status, "
                              "updated_at = excluded.updated_at, seen_at = excluded.seen_at, "
                              "prior_status = CASE WHEN ?6 THEN agents.status ELSE NULL END "
                              "WHERE excluded.updated_at >= agents.updated_at OR ?6"));
    SOVDEV_TRY(upsert.bind_all(record.agent_id, record.channel, Blob{record.status},
                               std::min(record.updated_at, now), now,
                               record.replaces_newer ? 1 : 0));
    SOVDEV_TRY(upsert.run());
    return db_.changes() > 0;
  }());
}

Expected<std::vector<AgentRecord>> FleetStatus::list() {
  return with_context("list agents", [&]() -> Expected<std::vector<AgentRecord>> {
    SOVDEV_ASSIGN(Statement select,
                  db_.prepare("SELECT agent_id, channel, status, updated_at, seen_at, "
                              "prior_status FROM agents ORDER BY agent_id"));
    std::vector<AgentRecord> agents;
    for (;;) {
      SOVDEV_ASSIGN(const bool row, select.step());
      if (!row) return agents;
      AgentRecord r{select.text(0), select.text(1), select.blob(2), select.int64(3)};
      r.seen_at = select.int64(4);
      r.prior_status = select.blob(5);
      agents.push_back(std::move(r));
    }
  }());
}

}  // namespace sovdev::store
