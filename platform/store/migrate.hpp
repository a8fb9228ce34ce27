// Schema migrations: numbered, append-only SQL files embedded at build time.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "common/error.hpp"
#include "platform/store/sqlite.hpp"

namespace sovdev::store {

enum class Schema { agent, hub };

// One file from platform/store/migrations/<schema>/NNN_name.sql.
struct Migration {
  std::int64_t version;   // NNN: 1, 2, 3 ... without gaps (the build refuses gaps)
  std::string_view file;  // "001_initial.sql", for messages
  std::string_view sql;
};

const char* schema_name(Schema which);

// Every migration of `which`, ordered by version. Defined in the generated source, so adding a
// file to the folder is the whole change.
std::span<const Migration> migrations(Schema which);

// The schema version stored in the file (PRAGMA user_version); 0 for a new database.
[[nodiscard]] Expected<std::int64_t> schema_version(Database& db);

// Applies the pending migrations, each in a savepoint together with its user_version bump, all
// under one write lock so two processes starting at once do not both migrate. A migration that
// fails is undone entirely (the ones before it stay) and its error is returned. A database
// newer than the newest migration is refused: this program would misread it.
[[nodiscard]] Status migrate(Database& db, Schema which);
// The same over an explicit list (`name` is for messages); the list must be numbered 1..N.
[[nodiscard]] Status migrate(Database& db, std::span<const Migration> list, std::string_view name);

}  // namespace sovdev::store
