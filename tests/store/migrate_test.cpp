// Migrations: the embedded files, the schema they produce, idempotence, failure and refusal.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "platform/store/agent_cache.hpp"
#include "platform/store/migrate.hpp"
#include "tests/store/test_support.hpp"

using namespace sovdev;
using namespace sovdev::store;
using namespace sovdev::store::test;

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// CREATE text with whitespace runs collapsed and no space inside parentheses, so layout
// differences do not count but any change of meaning does.
std::string normalize(const std::string& sql) {
  std::string out;
  bool space = false;
  for (char c : sql) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = true;
      continue;
    }
    if (space && !out.empty() && out.back() != '(' && c != ')' && c != ',') out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// Every object in sqlite_master plus the schema version, sorted.
std::vector<std::string> snapshot(Database& db) {
  auto select = must(db.prepare(
      "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"));
  std::vector<std::string> objects;
  while (must(select.step())) {
    objects.push_back(select.text(0) + " " + select.text(1) + " on " + select.text(2) + ": " +
                      normalize(select.text(3)));
  }
  std::sort(objects.begin(), objects.end());
  objects.push_back("user_version " + std::to_string(must(schema_version(db))));
  return objects;
}

Database migrate_memory_db() {
  return must(Database::open(":memory:", OpenOptions{}));
}

const Migration kGood{1, "001_good.sql", "CREATE TABLE a (x INTEGER);"};
const Migration kBad{2, "002_bad.sql",
                     "CREATE TABLE b (y INTEGER); INSERT INTO no_such_table VALUES (1);"};

}  // namespace

TEST_CASE("each schema's migrations are numbered 1..N and match the files on disk") {
  for (Schema which : {Schema::agent, Schema::hub}) {
    const auto folder =
        std::filesystem::path(SOVDEV_SOURCE_DIR) / "platform/store/migrations" / schema_name(which);
    const auto list = migrations(which);
    REQUIRE_FALSE(list.empty());
    std::size_t files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(folder)) {
      if (entry.path().extension() == ".sql") ++files;
    }
    CHECK(list.size() == files);
    for (std::size_t i = 0; i < list.size(); ++i) {
      INFO(list[i].file);
      CHECK(list[i].version == static_cast<std::int64_t>(i + 1));
      CHECK(list[i].sql == read_file(folder / std::string(list[i].file)));
    }
  }
}

TEST_CASE("migrating an empty database yields exactly the schema snapshot") {
  for (Schema which : {Schema::agent, Schema::hub}) {
    INFO(schema_name(which));
    auto migrated = migrate_memory_db();
    REQUIRE_OK(migrate(migrated, which));
    auto expected = migrate_memory_db();
    REQUIRE_OK(
        expected.exec(read_file(std::filesystem::path(SOVDEV_SOURCE_DIR) / "platform/store/schema" /
                                (std::string(schema_name(which)) + ".sql"))));
    CHECK(snapshot(migrated) == snapshot(expected));
    CHECK(must(schema_version(migrated)) == static_cast<std::int64_t>(migrations(which).size()));
  }
}

TEST_CASE("migrating a second time changes nothing and keeps the data") {
  TempDir dir;
  auto db = must(open_agent_database(dir.file("agent.db")));
  REQUIRE_OK(db.exec("INSERT INTO catalogs VALUES ('edge', 3, x'00', 0)"));
  const auto before = snapshot(db);
  REQUIRE_OK(migrate(db, Schema::agent));
  CHECK(snapshot(db) == before);
  CHECK(must(query_int64(db, "SELECT count(*) FROM catalogs")) == 1);
}

TEST_CASE("a failing migration is undone with its version bump, keeping the ones before it") {
  auto db = migrate_memory_db();
  const Migration list[] = {kGood, kBad};
  auto failed = migrate(db, list, "test");
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code == Errc::store);
  CHECK(failed.error().message.find("to version 2 (002_bad.sql)") != std::string::npos);
  CHECK(failed.error().message.find("no such table") != std::string::npos);
  CHECK(must(schema_version(db)) == 1);
  CHECK(must(query_int64(db, "SELECT count(*) FROM sqlite_master WHERE name = 'a'")) == 1);
  CHECK(must(query_int64(db, "SELECT count(*) FROM sqlite_master WHERE name = 'b'")) == 0);
  CHECK(db.autocommit());

  // Running it again from version 1 fails the same way and still leaves version 1.
  REQUIRE_FALSE(migrate(db, list, "test"));
  CHECK(must(schema_version(db)) == 1);
}

TEST_CASE("a database newer than the program is refused with advice to upgrade") {
  TempDir dir;
  const auto newer = static_cast<std::int64_t>(migrations(Schema::agent).size() + 1);
  {
    auto db = must(Database::open(dir.file("agent.db"), OpenOptions{}));
    REQUIRE_OK(db.exec("PRAGMA user_version = " + std::to_string(newer)));
  }
  auto opened = open_agent_database(dir.file("agent.db"));
  REQUIRE_FALSE(opened);
  CHECK(opened.error().code == Errc::store);
  const std::string expected =
      "database schema version " + std::to_string(newer) + " is newer than this program (" +
      std::to_string(migrations(Schema::agent).size()) + "): upgrade the program";
  CHECK(opened.error().message.find(expected) != std::string::npos);
  auto db = must(Database::open(dir.file("agent.db"), OpenOptions{}));
  CHECK(must(schema_version(db)) == newer);
}

TEST_CASE("a migration list with a gap is refused before anything runs") {
  auto db = migrate_memory_db();
  const Migration gap{3, "003_gap.sql", "CREATE TABLE c (z);"};
  const Migration list[] = {kGood, gap};
  auto refused = migrate(db, list, "test");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("out of sequence") != std::string::npos);
  CHECK(must(schema_version(db)) == 0);
}
