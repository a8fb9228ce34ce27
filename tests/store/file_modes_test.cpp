// Who can read the databases: the agent's cache holds bundle payloads, which may carry Secrets,
// so every file SQLite keeps (the database, its -wal and -shm) is its owner's alone, and a
// read-only open (`status`) works where this user may not write.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "platform/store/sqlite.hpp"
#include "tests/store/test_support.hpp"
#include "tests/support/nobody.hpp"

using namespace sovdev;
using namespace sovdev::store;
using namespace sovdev::store::test;

namespace {

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// Sets the umask for one scope: the permissions must not depend on the caller's.
struct Umask {
  explicit Umask(mode_t mask) : old(::umask(mask)) {}
  ~Umask() { ::umask(old); }
  Umask(const Umask&) = delete;
  Umask& operator=(const Umask&) = delete;
  mode_t old;
};

void write_rows(const std::string& path) {
  auto db = must(Database::open(path, OpenOptions{}));
  REQUIRE_OK(db.exec("CREATE TABLE IF NOT EXISTS t (v TEXT)"));
  REQUIRE_OK(db.exec("INSERT INTO t VALUES ('secret')"));
}

}  // namespace

TEST_CASE("a new database and its -wal and -shm files are readable by their owner only",
          "[sqlite][hygiene]") {
  const Umask usual(022);
  TempDir dir;
  const std::string path = dir.file("agent.db");
  auto db = must(Database::open(path, OpenOptions{}));
  REQUIRE_OK(db.exec("CREATE TABLE t (v TEXT)"));
  REQUIRE_OK(db.exec("INSERT INTO t VALUES ('secret')"));
  // The connection is open: -wal and -shm exist now.
  CHECK(mode_of(path) == 0600);
  CHECK(mode_of(path + "-wal") == 0600);
  CHECK(mode_of(path + "-shm") == 0600);
}

TEST_CASE("a database an older version left 0644 is narrowed to 0600 when opened for writing",
          "[sqlite][hygiene]") {
  const Umask usual(022);
  TempDir dir;
  const std::string path = dir.file("hub.db");
  write_rows(path);
  REQUIRE(::chmod(path.c_str(), 0644) == 0);
  auto db = must(Database::open(path, OpenOptions{}));
  REQUIRE_OK(db.exec("INSERT INTO t VALUES ('more')"));
  CHECK(mode_of(path) == 0600);
  CHECK(mode_of(path + "-wal") == 0600);
  CHECK(mode_of(path + "-shm") == 0600);
}

TEST_CASE("a database opens read-only where this user cannot write", "[sqlite][hygiene]") {
  SOVDEV_SKIP_WITHOUT_NOBODY();
  TempDir dir;
  const std::string path = dir.file("agent.db");
  write_rows(path);  // closed again: SQLite removed -wal and -shm
  REQUIRE(::chmod(dir.path().c_str(), 0555) == 0);
  REQUIRE(::chmod(path.c_str(), 0644) == 0);
  // root writes anywhere: the child is nobody, to meet the folder's permissions.
  const auto result = sovdev::testing::as_nobody([&] {
    OpenOptions options;
    options.create = false;
    options.read_only = true;
    auto db = Database::open(path, options);
    if (!db) return db.error().message;
    auto rows = query_int64(*db, "SELECT count(*) FROM t");
    return rows ? "rows " + std::to_string(*rows) : rows.error().message;
  });
  ::chmod(dir.path().c_str(), 0700);  // so the folder can be removed
  REQUIRE(result.has_value());
  CHECK(*result == "rows 1");
  CHECK_FALSE(std::filesystem::exists(path + "-shm"));
}
