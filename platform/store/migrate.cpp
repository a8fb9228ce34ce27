#include "platform/store/migrate.hpp"

#include <string>

#include "platform/store/transaction.hpp"

namespace sovdev::store {

const char* schema_name(Schema which) {
  switch (which) {
    case Schema::agent: return "agent";
    case Schema::hub: return "hub";
  }
  return "unknown";
}

Expected<std::int64_t> schema_version(Database& db) {
  return query_int64(db, "PRAGMA user_version");
}

Status migrate(Database& db, Schema which) {
  return migrate(db, migrations(which), schema_name(which));
}

Status migrate(Database& db, std::span<const Migration> list, std::string_view name) {
  const std::string what = "migrate " + std::string(name) + " database " + db.path();
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (list[i].version != static_cast<std::int64_t>(i) + 1) {
      return make_error(Errc::internal,
                        what + ": migration " + std::string(list[i].file) + " is out of sequence");
    }
  }
  const std::int64_t known = static_cast<std::int64_t>(list.size());

  // Up to date (the common case): no write lock, so a CLI opening the database while a daemon
  // writes to it never makes the daemon wait.
  if (auto current = schema_version(db); current && *current == known) return {};

  // The version is read under the write lock, so a second process waits and then finds
  // nothing left to do instead of applying the same migration twice.
  SOVDEV_ASSIGN(Transaction tx, Transaction::begin(db));
  auto current = schema_version(db);
  if (!current) return std::move(current).error().context(what);
  if (*current > known) {
    return make_error(Errc::store, what + ": database schema version " + std::to_string(*current) +
                                       " is newer than this program (" + std::to_string(known) +
                                       "): upgrade the program");
  }
  for (const Migration& migration : list) {
    if (migration.version <= *current) continue;
    auto applied = [&]() -> Status {
      SOVDEV_ASSIGN(Transaction step, Transaction::begin(db));
      SOVDEV_TRY(db.exec(migration.sql));
      SOVDEV_TRY(db.exec("PRAGMA user_version = " + std::to_string(migration.version)));
      return step.commit();
    }();
    if (!applied) {
      // Keep the migrations that did apply: each is complete with its version bump.
      auto committed = tx.commit();
      Error error = std::move(applied).error().context(what + " to version " +
                                                       std::to_string(migration.version) + " (" +
                                                       std::string(migration.file) + ")");
      if (!committed) error.message += "; and then: " + committed.error().message;
      return error;
    }
  }
  auto committed = tx.commit();
  if (!committed) return std::move(committed).error().context(what);
  return {};
}

}  // namespace sovdev::store
