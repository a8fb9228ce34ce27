#include "platform/store/chunk_table.hpp"

namespace sovdev::store::detail {

Status insert_chunk(Database& db, std::string_view digest, std::uint32_t index,
                    std::string_view data) {
  // ON CONFLICT names the unique key: INSERT OR IGNORE would also swallow CHECK and NOT NULL
  // failures.
  {
    SOVDEV_ASSIGN(CachedStatement insert, db.cached("INSERT INTO chunks (digest, idx, data) "
                                                    "VALUES (?, ?, ?) ON CONFLICT (digest, idx) "
                                                    "DO NOTHING"));
    SOVDEV_TRY(insert->bind_all(Blob{digest}, index, Blob{data}));
    SOVDEV_TRY(insert->run());
  }
  if (db.changes() == 1) return {};
  // Held already: fine when it is the same chunk again (a re-sent message). Compared inside
  // SQLite, so the stored copy is never loaded here.
  SOVDEV_ASSIGN(Statement same,
                db.prepare("SELECT data = ? FROM chunks WHERE digest = ? AND idx = ?"));
  SOVDEV_TRY(same.bind_all(Blob{data}, Blob{digest}, index));
  SOVDEV_ASSIGN(const bool row, same.step());
  if (row && same.int64(0) == 1) return {};
  return make_error(Errc::conflict, "already stored with other content");
}

Expected<bool> mark_chunk(Database& db, std::string_view digest, std::uint32_t index) {
  SOVDEV_ASSIGN(CachedStatement insert, db.cached("INSERT INTO chunks (digest, idx, data) "
                                                  "VALUES (?, ?, X'') ON CONFLICT (digest, idx) "
                                                  "DO NOTHING"));
  SOVDEV_TRY(insert->bind_all(Blob{digest}, index));
  SOVDEV_TRY(insert->run());
  return db.changes() == 1;
}

Status read_chunk(Database& db, std::string_view digest, std::uint32_t index, std::string& out) {
  // One statement, compiled once per connection: chunks are read one at a time, and compiling
  // (or opening an incremental blob, which compiles one too) costs more than running it.
  SOVDEV_ASSIGN(CachedStatement select,
                db.cached("SELECT data FROM chunks WHERE digest = ? AND idx = ?"));
  SOVDEV_TRY(select->bind_all(Blob{digest}, index));
  SOVDEV_ASSIGN(const bool row, select->step());
  if (!row) return make_error(Errc::not_found, "the chunk is not held");
  select->blob(0, out);
  return {};
}

Status delete_chunks(Database& db, std::string_view digest) {
  SOVDEV_ASSIGN(Statement remove, db.prepare("DELETE FROM chunks WHERE digest = ?"));
  SOVDEV_TRY(remove.bind(1, Blob{digest}));
  return remove.run();
}

}  // namespace sovdev::store::detail
