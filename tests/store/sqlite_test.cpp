// The SQLite wrappers: typed binding, stepping, errors, opening, transactions.
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <limits>

#include "platform/store/sqlite.hpp"
#include "platform/store/transaction.hpp"
#include "tests/store/test_support.hpp"
#include "tests/support/nobody.hpp"

using namespace sovdev;
using namespace sovdev::store;
using namespace sovdev::store::test;

namespace {

Database memory_db() {
  auto db = must(Database::open(":memory:", OpenOptions{}));
  REQUIRE_OK(db.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"));
  return db;
}

std::int64_t count_rows(Database& db) {
  return must(query_int64(db, "SELECT count(*) FROM t"));
}

}  // namespace

TEST_CASE("a statement binds integers, text, blobs and null and reads them back typed") {
  auto db = must(Database::open(":memory:", OpenOptions{}));
  REQUIRE_OK(db.exec("CREATE TABLE v (i, u, s, b, n)"));
  auto insert = must(db.prepare("INSERT INTO v VALUES (?, ?, ?, ?, ?)"));
  const std::string bytes("a\0b\xff", 4);
  REQUIRE_OK(insert.bind_all(std::int64_t{-5}, std::uint64_t{7}, std::string_view("héllo"),
                             Blob{bytes}, std::nullopt));
  REQUIRE_OK(insert.run());

  auto select = must(db.prepare("SELECT i, u, s, b, n, typeof(s), typeof(b), typeof(n) FROM v"));
  REQUIRE(must(select.step()));
  CHECK(select.int64(0) == -5);
  CHECK(select.uint64(1) == 7);
  CHECK(select.text(2) == "héllo");
  CHECK(select.blob(3) == bytes);
  CHECK(select.is_null(4));
  CHECK_FALSE(select.is_null(3));
  CHECK(select.text(5) == "text");
  CHECK(select.text(6) == "blob");
  CHECK(select.text(7) == "null");
  CHECK_FALSE(must(select.step()));
}

TEST_CASE("an empty string binds as empty text and an empty blob, not as NULL") {
  auto db = must(Database::open(":memory:", OpenOptions{}));
  auto select = must(db.prepare("SELECT typeof(?), typeof(?)"));
  REQUIRE_OK(select.bind_all(std::string_view(), Blob{std::string_view()}));
  REQUIRE(must(select.step()));
  CHECK(select.text(0) == "text");
  CHECK(select.text(1) == "blob");
}

TEST_CASE("binding a uint64 above INT64_MAX is refused instead of wrapping negative") {
  auto db = must(Database::open(":memory:", OpenOptions{}));
  auto select = must(db.prepare("SELECT ?"));
  constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  auto refused = select.bind(1, max + 1);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::invalid);
  CHECK(refused.error().message.find("parameter 1") != std::string::npos);

  REQUIRE_OK(select.bind(1, max));
  REQUIRE(must(select.step()));
  CHECK(select.uint64(0) == max);
}

TEST_CASE("bind_all stops at the first argument that cannot be bound") {
  auto db = must(Database::open(":memory:", OpenOptions{}));
  auto select = must(db.prepare("SELECT ?, ?"));
  auto refused = select.bind_all(1, std::numeric_limits<std::uint64_t>::max(), 3);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("parameter 2") != std::string::npos);
}

TEST_CASE("prepare refuses text holding two statements rather than ignoring the second") {
  auto db = memory_db();
  auto prepared = db.prepare("INSERT INTO t VALUES (1, 'a'); DELETE FROM t");
  REQUIRE_FALSE(prepared);
  CHECK(prepared.error().message.find("more than one statement") != std::string::npos);
  CHECK(db.prepare("SELECT 1;  ").has_value());
}

TEST_CASE("a failing step is a store error with SQLite's message, and the statement can rerun") {
  auto db = memory_db();
  auto insert = must(db.prepare("INSERT INTO t VALUES (?, 'x')"));
  REQUIRE_OK(insert.bind(1, 1));
  REQUIRE_OK(insert.run());
  insert.reset();
  auto duplicate = insert.run();
  REQUIRE_FALSE(duplicate);
  CHECK(duplicate.error().code == Errc::store);
  CHECK(duplicate.error().message.find("UNIQUE constraint failed") != std::string::npos);
  REQUIRE_OK(insert.bind(1, 2));
  REQUIRE_OK(insert.run());
  CHECK(count_rows(db) == 2);
  CHECK(db.changes() == 1);
  CHECK(db.last_insert_rowid() == 2);
}

TEST_CASE("result codes map to the project's error codes with advice") {
  auto full = sqlite_error(nullptr, SQLITE_FULL, "insert chunk 7 of abcd");
  CHECK(full.code == Errc::io);
  CHECK(full.message.rfind("disk full: insert chunk 7 of abcd: ", 0) == 0);
  auto corrupt = sqlite_error(nullptr, SQLITE_CORRUPT, "read bundle");
  CHECK(corrupt.code == Errc::store);
  CHECK(corrupt.message.find("move it away") != std::string::npos);
  auto not_db = sqlite_error(nullptr, SQLITE_NOTADB, "open");
  CHECK(not_db.message.find("move it away") != std::string::npos);
  auto busy = sqlite_error(nullptr, SQLITE_BUSY, "insert chunk 7 of abcd");
  CHECK(busy.code == Errc::store);
  CHECK(busy.message == "insert chunk 7 of abcd: database is locked");
}

TEST_CASE("open configures WAL, foreign keys, the chosen sync level, a small cache and no mmap") {
  TempDir dir;
  OpenOptions options;
  options.synchronous = Synchronous::normal;
  options.cache_kib = 256;
  auto db = must(Database::open(dir.file("a.db"), options));
  auto text = [&](const char* sql) {
    auto statement = must(db.prepare(sql));
    REQUIRE(must(statement.step()));
    return statement.text(0);
  };
  CHECK(text("PRAGMA journal_mode") == "wal");
  CHECK(must(query_int64(db, "PRAGMA foreign_keys")) == 1);
  CHECK(must(query_int64(db, "PRAGMA synchronous")) == 1);  // NORMAL
  CHECK(must(query_int64(db, "PRAGMA cache_size")) == -256);
  CHECK(must(query_int64(db, "PRAGMA mmap_size")) == 0);

  auto full = must(Database::open(dir.file("b.db"), OpenOptions{}));
  CHECK(must(query_int64(full, "PRAGMA synchronous")) == 2);  // FULL, the default
  CHECK(must(query_int64(full, "PRAGMA cache_size")) == -512);
}

TEST_CASE("opening a path that cannot be created is an io error naming the path") {
  TempDir dir;
  { std::ofstream(dir.file("plain-file")) << "x"; }
  for (const std::string& path : {dir.file("missing/agent.db"), dir.file("plain-file/agent.db"),
                                  std::string("/proc/sovdev-store-test.db")}) {
    auto opened = Database::open(path, OpenOptions{});
    REQUIRE_FALSE(opened);
    CHECK(opened.error().code == Errc::io);
    CHECK(opened.error().message.find(path) != std::string::npos);
  }
  OpenOptions no_create;
  no_create.create = false;
  auto absent = Database::open(dir.file("absent.db"), no_create);
  REQUIRE_FALSE(absent);
  CHECK(absent.error().code == Errc::io);
}

TEST_CASE("a file that is not a database is refused with advice to move it away") {
  TempDir dir;
  {
    std::ofstream out(dir.file("junk.db"));
    for (int i = 0; i < 100; ++i) out << "this is not a database ";
  }
  auto opened = Database::open(dir.file("junk.db"), OpenOptions{});
  REQUIRE_FALSE(opened);
  CHECK(opened.error().code == Errc::store);
  CHECK(opened.error().message.find("move it away") != std::string::npos);
}

TEST_CASE("a database opened read-only refuses writes with an io error") {
  TempDir dir;
  {
    auto db = must(Database::open(dir.file("a.db"), OpenOptions{}));
    REQUIRE_OK(db.exec("CREATE TABLE t (k INTEGER PRIMARY KEY)"));
  }
  OpenOptions read_only;
  read_only.read_only = true;
  auto db = must(Database::open(dir.file("a.db"), read_only));
  CHECK(must(query_int64(db, "SELECT count(*) FROM t")) == 0);
  auto write = db.exec("INSERT INTO t VALUES (1)");
  REQUIRE_FALSE(write);
  CHECK(write.error().code == Errc::io);
  CHECK(write.error().message.find("readonly") != std::string::npos);
}

TEST_CASE("a write-protected file opened for writing is refused at open, not at first write") {
  SOVDEV_SKIP_WITHOUT_NOBODY();
  TempDir dir;
  { auto db = must(Database::open(dir.file("a.db"), OpenOptions{})); }
  REQUIRE(chmod(dir.file("a.db").c_str(), 0444) == 0);
  REQUIRE(chmod(dir.path().c_str(), 0755) == 0);
  // Permissions do not bind root: the open runs as nobody when the suite is root.
  const auto result = sovdev::testing::as_nobody([&] {
    auto opened = Database::open(dir.file("a.db"), OpenOptions{});
    if (opened) return std::string("opened");
    return std::to_string(static_cast<int>(opened.error().code)) + " " + opened.error().message;
  });
  REQUIRE(result.has_value());
  INFO(*result);
  CHECK(result->rfind(std::to_string(static_cast<int>(Errc::io)) + " ", 0) == 0);
  CHECK(result->find("not writable") != std::string::npos);
}

TEST_CASE("a blob column is copied whole into a reused buffer, NULL as empty") {
  auto db = must(Database::open(":memory:", OpenOptions{}));
  REQUIRE_OK(db.exec("CREATE TABLE c (id INTEGER PRIMARY KEY, data BLOB)"));
  const std::string big = chunk_bytes(1, 2, 64 * 1024);
  auto insert = must(db.prepare("INSERT INTO c (data) VALUES (?), (NULL)"));
  REQUIRE_OK(insert.bind(1, Blob{big}));
  REQUIRE_OK(insert.run());
  auto select = must(db.prepare("SELECT data FROM c ORDER BY id"));
  std::string out = "previous content";
  REQUIRE(must(select.step()));
  select.blob(0, out);
  CHECK(out == big);
  REQUIRE(must(select.step()));
  select.blob(0, out);
  CHECK(out.empty());
}

TEST_CASE("a transaction commits when its body succeeds and returns the body's value") {
  auto db = memory_db();
  auto value = transaction(db, [&]() -> Expected<int> {
    SOVDEV_TRY(db.exec("INSERT INTO t VALUES (1, 'a')"));
    return 42;
  });
  CHECK(must(std::move(value)) == 42);
  CHECK(db.autocommit());
  CHECK(count_rows(db) == 1);
}

TEST_CASE("a transaction rolls back when its body returns an error, even after writes") {
  auto db = memory_db();
  auto failed = transaction(db, [&]() -> Status {
    SOVDEV_TRY(db.exec("INSERT INTO t VALUES (1, 'a')"));
    SOVDEV_TRY(db.exec("INSERT INTO t VALUES (1, 'duplicate')"));  // early return here
    return make_error(Errc::internal, "not reached");
  });
  REQUIRE_FALSE(failed);
  CHECK(failed.error().message.find("UNIQUE") != std::string::npos);
  CHECK(db.autocommit());
  CHECK(count_rows(db) == 0);
}

TEST_CASE("a nested transaction rolls back only its own work") {
  auto db = memory_db();
  REQUIRE_OK(transaction(db, [&]() -> Status {
    SOVDEV_TRY(db.exec("INSERT INTO t VALUES (1, 'outer')"));
    auto inner = transaction(db, [&]() -> Status {
      SOVDEV_TRY(db.exec("INSERT INTO t VALUES (2, 'inner')"));
      return make_error(Errc::conflict, "inner fails");
    });
    CHECK_FALSE(inner);
    CHECK_FALSE(db.autocommit());  // the outer transaction is still open
    return {};
  }));
  CHECK(count_rows(db) == 1);
}

TEST_CASE("a Transaction left without commit rolls back when it goes out of scope") {
  auto db = memory_db();
  {
    auto tx = must(Transaction::begin(db));
    REQUIRE_OK(db.exec("INSERT INTO t VALUES (1, 'a')"));
    auto moved = std::move(tx);  // the moved-from object must not roll back twice
  }
  CHECK(db.autocommit());
  CHECK(count_rows(db) == 0);
  {
    auto tx = must(Transaction::begin(db));
    REQUIRE_OK(db.exec("INSERT INTO t VALUES (1, 'a')"));
    REQUIRE_OK(tx.commit());
  }
  CHECK(count_rows(db) == 1);
}

TEST_CASE("a second writer waits for the busy timeout, then fails with 'database is locked'") {
  TempDir dir;
  OpenOptions quick;
  quick.busy_timeout_ms = 50;
  auto first = must(Database::open(dir.file("a.db"), quick));
  REQUIRE_OK(first.exec("CREATE TABLE t (k INTEGER PRIMARY KEY)"));
  auto second = must(Database::open(dir.file("a.db"), quick));
  auto holding = must(Transaction::begin(first));
  auto blocked =
      transaction(second, [&]() -> Status { return second.exec("INSERT INTO t VALUES (1)"); });
  REQUIRE_FALSE(blocked);
  CHECK(blocked.error().code == Errc::store);
  CHECK(blocked.error().message.find("database is locked") != std::string::npos);
}

TEST_CASE("a cached statement is compiled once, reset when its loan ends, and safe to nest") {
  auto db = memory_db();
  sqlite3_stmt* first = nullptr;
  for (int k = 1; k <= 3; ++k) {
    auto insert = must(db.cached("INSERT INTO t (k, v) VALUES (?, ?)"));
    if (first == nullptr) first = insert->handle();
    CHECK(insert->handle() == first);  // the same compiled statement every time
    REQUIRE_OK(insert->bind_all(k, "v" + std::to_string(k)));
    REQUIRE_OK(insert->run());
  }
  CHECK(must(query_int64(db, "SELECT count(*) FROM t")) == 3);

  const std::string select = "SELECT v FROM t WHERE k = ?";
  sqlite3_stmt* outer_handle = nullptr;
  {
    auto outer = must(db.cached(select));
    outer_handle = outer->handle();
    REQUIRE_OK(outer->bind(1, 1));
    REQUIRE(must(outer->step()));
    {
      // Asked for again while lent: another statement, and the outer row is untouched.
      auto inner = must(db.cached(select));
      CHECK(inner->handle() != outer_handle);
      REQUIRE_OK(inner->bind(1, 2));
      REQUIRE(must(inner->step()));
      CHECK(inner->text(0) == "v2");
    }
    CHECK(outer->text(0) == "v1");
    CHECK(sqlite3_stmt_busy(outer_handle) != 0);
  }
  // The loan ended: reset, so it holds no read open.
  CHECK(sqlite3_stmt_busy(outer_handle) == 0);
  auto again = must(db.cached(select));
  CHECK(again->handle() == outer_handle);
}

TEST_CASE("exec_cached runs transaction statements, and a cached error is reported") {
  auto db = memory_db();
  REQUIRE_OK(db.exec_cached("BEGIN IMMEDIATE"));
  REQUIRE_OK(db.exec("INSERT INTO t (k) VALUES (1)"));
  REQUIRE_OK(db.exec_cached("ROLLBACK"));
  CHECK(must(query_int64(db, "SELECT count(*) FROM t")) == 0);
  auto refused = db.exec_cached("INSERT INTO missing VALUES (1)");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("missing") != std::string::npos);
}

TEST_CASE("release_memory finalizes the cached statements that are not lent out") {
  auto db = memory_db();
  const auto compiled = [&] {
    int n = 0;
    for (sqlite3_stmt* s = sqlite3_next_stmt(db.handle(), nullptr); s != nullptr;
         s = sqlite3_next_stmt(db.handle(), s)) {
      n++;
    }
    return n;
  };
  REQUIRE_OK(db.exec_cached("INSERT INTO t (k, v) VALUES (1, 'a')"));
  REQUIRE_OK(db.exec_cached("INSERT INTO t (k, v) VALUES (2, 'b')"));
  {
    auto lent = must(db.cached("SELECT v FROM t ORDER BY k"));
    REQUIRE(must(lent->step()));
    CHECK(compiled() == 3);
    db.release_memory();
    // The two idle ones are gone; the one in use still reads its rows.
    CHECK(compiled() == 1);
    CHECK(lent->text(0) == "a");
    REQUIRE(must(lent->step()));
    CHECK(lent->text(0) == "b");
  }
  // Compiled again on the next use.
  REQUIRE_OK(db.exec_cached("INSERT INTO t (k, v) VALUES (3, 'c')"));
  CHECK(must(query_int64(db, "SELECT count(*) FROM t")) == 3);
}
