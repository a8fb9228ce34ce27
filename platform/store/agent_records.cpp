// The agent's small views: TrustHistory, ApplyLog and CatalogCache (BundleCache is in
// agent_cache.cpp).
#include "platform/store/agent_cache.hpp"
#include "platform/store/detail.hpp"
#include "platform/store/transaction.hpp"

namespace sovdev::store {

using detail::check_digest;
using detail::short_hex;
using detail::with_context;

// ---------------------------------------------------------------- TrustHistory

Status TrustHistory::add_root(std::uint64_t version, std::string_view envelope) {
  const std::string what = "record trust root version " + std::to_string(version);
  return with_context(
      what, transaction(db_, [&]() -> Status {
        SOVDEV_ASSIGN(auto latest_root, latest());
        if (latest_root) {
          const std::uint64_t held = latest_root->version;
          if (version == held) {
            return make_error(Errc::conflict,
                              "version " + std::to_string(held) + " is already held");
          }
          if (version < held) {
            return make_error(Errc::rollback,
                              "older than the held version " + std::to_string(held));
          }
          if (version != held + 1) {
            return make_error(Errc::invalid, "skips from version " + std::to_string(held) +
                                                 ": roots rotate one version at a time");
          }
        }
        SOVDEV_ASSIGN(Statement insert,
                      db_.prepare("INSERT INTO trust_roots (version, envelope) VALUES (?, ?)"));
        SOVDEV_TRY(insert.bind_all(version, Blob{envelope}));
        return insert.run();
      }));
}

Expected<std::optional<TrustRootRecord>> TrustHistory::latest() {
  return with_context(
      "read the latest trust root", [&]() -> Expected<std::optional<TrustRootRecord>> {
        SOVDEV_ASSIGN(Statement select, db_.prepare("SELECT version, envelope FROM trust_roots "
                                                    "ORDER BY version DESC LIMIT 1"));
        SOVDEV_ASSIGN(const bool row, select.step());
        if (!row) return std::optional<TrustRootRecord>();
        return std::optional<TrustRootRecord>(TrustRootRecord{select.uint64(0), select.blob(1)});
      }());
}

Expected<std::vector<TrustRootRecord>> TrustHistory::list() {
  return with_context("list trust roots", [&]() -> Expected<std::vector<TrustRootRecord>> {
    SOVDEV_ASSIGN(Statement select,
                  db_.prepare("SELECT version, envelope FROM trust_roots ORDER BY version"));
    std::vector<TrustRootRecord> roots;
    for (;;) {
      SOVDEV_ASSIGN(const bool row, select.step());
      if (!row) return roots;
      roots.push_back(TrustRootRecord{select.uint64(0), select.blob(1)});
    }
  }());
}

// ---------------------------------------------------------------- ApplyLog

Status ApplyLog::record(std::string_view stack, std::uint64_t version, std::string_view digest,
                        std::string_view result, std::string_view message) {
  const std::string what = "record apply of " + std::string(stack) + "@" + std::to_string(version) +
                           " (" + std::string(result) + ")";
  return with_context(
      what, transaction(db_, [&]() -> Status {
        SOVDEV_TRY(check_digest(digest));
        SOVDEV_ASSIGN(Statement insert,
                      db_.prepare("INSERT INTO apply_log (stack, version, digest, result, message) "
                                  "VALUES (?, ?, ?, ?, ?)"));
        SOVDEV_TRY(insert.bind_all(stack, version, Blob{digest}, result, message));
        SOVDEV_TRY(insert.run());
        // Everything of this stack older than the newest keep_per_stack_ entries.
        SOVDEV_ASSIGN(Statement prune,
                      db_.prepare("DELETE FROM apply_log WHERE stack = ?1 AND id <= ("
                                  "SELECT id FROM apply_log WHERE stack = ?1 "
                                  "ORDER BY id DESC LIMIT 1 OFFSET ?2)"));
        SOVDEV_TRY(prune.bind_all(stack, keep_per_stack_));
        return prune.run();
      }));
}

Expected<std::vector<ApplyEntry>> ApplyLog::history(std::string_view stack, std::size_t limit) {
  const std::string what = "read the apply history of " + std::string(stack);
  return with_context(what, [&]() -> Expected<std::vector<ApplyEntry>> {
    SOVDEV_ASSIGN(Statement select,
                  db_.prepare("SELECT id, stack, version, digest, result, message, at "
                              "FROM apply_log WHERE stack = ? ORDER BY id DESC LIMIT ?"));
    SOVDEV_TRY(select.bind_all(stack, limit));
    std::vector<ApplyEntry> entries;
    for (;;) {
      SOVDEV_ASSIGN(const bool row, select.step());
      if (!row) return entries;
      entries.push_back(ApplyEntry{select.int64(0), select.text(1), select.uint64(2),
                                   select.blob(3), select.text(4), select.text(5),
                                   select.int64(6)});
    }
  }());
}

Expected<std::optional<LastGood>> ApplyLog::last_good(std::string_view stack) {
  const std::string what = "read the last good bundle of " + std::string(stack);
  return with_context(what, [&]() -> Expected<std::optional<LastGood>> {
    SOVDEV_ASSIGN(Statement select,
                  db_.prepare("SELECT version, digest FROM last_good WHERE stack = ?"));
    SOVDEV_TRY(select.bind(1, stack));
    SOVDEV_ASSIGN(const bool row, select.step());
    if (!row) return std::optional<LastGood>();
    return std::optional<LastGood>(LastGood{select.uint64(0), select.blob(1)});
  }());
}

Status ApplyLog::set_last_good(std::string_view stack, std::uint64_t version,
                               std::string_view digest) {
  const std::string what = "set the last good bundle of " + std::string(stack) + " to " +
                           std::to_string(version) + " (" + short_hex(digest) + ")";
  return with_context(
      what, transaction(db_, [&]() -> Status {
        // Rollback falls back to this bundle from the cache alone: it must be there, whole and
        // verified, and be what the caller thinks it is.
        SOVDEV_ASSIGN(Statement check,
                      db_.prepare("SELECT stack, version, state FROM bundles WHERE digest = ?"));
        SOVDEV_TRY(check.bind(1, Blob{digest}));
        SOVDEV_ASSIGN(const bool row, check.step());
        if (!row) return make_error(Errc::not_found, "the bundle is not in the cache");
        if (check.text(0) != stack || check.uint64(1) != version) {
          return make_error(Errc::invalid, "the cached bundle is " + check.text(0) + "@" +
                                               std::to_string(check.uint64(1)));
        }
        if (check.text(2) != "verified") {
          return make_error(Errc::invalid, "the bundle is " + check.text(2) + ", not verified");
        }
        SOVDEV_ASSIGN(Statement upsert,
                      db_.prepare("INSERT INTO last_good (stack, version, digest) VALUES (?, ?, ?) "
                                  "ON CONFLICT (stack) DO UPDATE SET version = excluded.version, "
                                  "digest = excluded.digest, set_at = excluded.set_at"));
        SOVDEV_TRY(upsert.bind_all(stack, version, Blob{digest}));
        return upsert.run();
      }));
}

// ---------------------------------------------------------------- CatalogCache

Status CatalogCache::put(const CatalogRecord& record) {
  const std::string what =
      "store catalog " + record.channel + " serial " + std::to_string(record.serial);
  return with_context(
      what, transaction(db_, [&]() -> Status {
        SOVDEV_ASSIGN(auto held, get(record.channel));
        if (held) {
          if (record.serial < held->serial) {
            return make_error(Errc::rollback,
                              "older than the held serial " + std::to_string(held->serial));
          }
          if (record.serial == held->serial) {
            if (record.envelope == held->envelope) return {};
            return make_error(Errc::conflict,
                              "the held catalog has this serial with other content");
          }
        }
        SOVDEV_ASSIGN(Statement upsert,
                      db_.prepare("INSERT INTO catalogs (channel, serial, envelope, received_at) "
                                  "VALUES (?, ?, ?, ?) ON CONFLICT (channel) DO UPDATE SET "
                                  "serial = excluded.serial, envelope = excluded.envelope, "
                                  "received_at = excluded.received_at"));
        SOVDEV_TRY(upsert.bind_all(record.channel, record.serial, Blob{record.envelope},
                                   record.received_at));
        return upsert.run();
      }));
}

Expected<std::optional<CatalogRecord>> CatalogCache::get(std::string_view channel) {
  const std::string what = "read catalog " + std::string(channel);
  return with_context(what, [&]() -> Expected<std::optional<CatalogRecord>> {
    SOVDEV_ASSIGN(Statement select,
                  db_.prepare("SELECT channel, serial, envelope, received_at FROM catalogs "
                              "WHERE channel = ?"));
    SOVDEV_TRY(select.bind(1, channel));
    SOVDEV_ASSIGN(const bool row, select.step());
    if (!row) return std::optional<CatalogRecord>();
    return std::optional<CatalogRecord>(
        CatalogRecord{select.text(0), select.uint64(1), select.blob(2), select.int64(3)});
  }());
}

}  // namespace sovdev::store
