// Payloads the agent rebuilt from a delta (schema version 2): stored atomically, marked, and the
// migration that brought the column in keeps what a version 1 cache held.
#include "platform/store/agent_cache.hpp"
#include "platform/store/migrate.hpp"
#include "tests/store/agent_fixtures.hpp"
#include "tests/store/test_support.hpp"

using namespace sovdev;
using namespace sovdev::store;
using namespace sovdev::store::test;

namespace {

// The rebuilt payload of bundle `n`: `chunks` chunks of 7 bytes, unlike the signed 10.
BundleMeta rebuilt_meta(std::uint8_t n, std::uint64_t version, std::uint32_t chunks = 3) {
  BundleMeta m = meta(n, version);
  m.chunk_count = chunks;
  m.payload_size = std::uint64_t{chunks} * 7;
  return m;
}

ChunkSource rebuilt_chunks(std::uint8_t n) {
  return [n](std::uint32_t index, std::string& out) -> Status {
    out = chunk_bytes(100u + n, index, 7);
    return {};
  };
}

std::int64_t count(Database& db, const std::string& sql) {
  return must(query_int64(db, sql));
}

}  // namespace

TEST_CASE("migrating a version 1 cache with data keeps every row, marked signed") {
  TempDir dir;
  const std::string path = dir.file("agent.db");
  {
    auto db = must(Database::open(path, OpenOptions{}));
    REQUIRE_OK(migrate(db, migrations(Schema::agent).first(1), "agent"));
    REQUIRE(must(schema_version(db)) == 1);
    REQUIRE_OK(
        db.exec("INSERT INTO trust_roots (version, envelope) VALUES (1, x'0102');"
                "INSERT INTO bundles VALUES (x'" +
                std::string(62, 'a') +
                "01', 'sovdev', 'edge', 4, "
                "x'aa', 2, 20, 'verified');"
                "INSERT INTO bundles VALUES (x'" +
                std::string(62, 'a') +
                "02', 'sovdev', 'edge', 5, "
                "x'bb', 2, 20, 'partial');"
                "INSERT INTO chunks (digest, idx, data) VALUES (x'" +
                std::string(62, 'a') + "01', 0, x'00112233'), (x'" + std::string(62, 'a') +
                "01', 1, x'44');"
                "INSERT INTO last_good (stack, version, digest) VALUES ('sovdev', 4, x'" +
                std::string(62, 'a') +
                "01');"
                "INSERT INTO apply_log (stack, version, digest, result, message) VALUES "
                "('sovdev', 4, x'00', 'applied', 'ok');"
                "INSERT INTO catalogs VALUES ('edge', 9, x'cc', 1700000000);"));
  }
  auto db = must(open_agent_database(path));
  CHECK(
      must(schema_version(db)) ==
      static_cast<std::int64_t>(migrations(Schema::agent).size()));  // through 2, on to the newest
  CHECK(count(db, "SELECT count(*) FROM trust_roots") == 1);
  CHECK(count(db, "SELECT count(*) FROM bundles") == 2);
  CHECK(count(db, "SELECT count(*) FROM bundles WHERE payload_origin = 'signed'") == 2);
  CHECK(count(db, "SELECT count(*) FROM chunks") == 2);
  CHECK(count(db, "SELECT count(*) FROM apply_log") == 1);
  CHECK(count(db, "SELECT serial FROM catalogs WHERE channel = 'edge'") == 9);

  BundleCache cache(db);
  const std::string held = std::string(31, '\xaa') + '\x01';
  const auto info = must(cache.find(held));
  REQUIRE(info);
  CHECK(info->state == BundleState::verified);
  CHECK_FALSE(info->rebuilt);
  CHECK(info->version == 4);
  CHECK(info->chunk_count == 2);
  CHECK(info->payload_size == 20);
  CHECK(must(cache.read_chunk(held, 0)) == std::string("\x00\x11\x22\x33", 4));
  CHECK(must(ApplyLog(db).last_good("sovdev"))->version == 4);
  // The partial download carries on as before.
  CHECK(must(cache.missing_chunks(std::string(31, '\xaa') + '\x02')).size() == 2);
}

TEST_CASE("a rebuilt payload replaces a partial download's chunks and ends verified and rebuilt") {
  auto db = agent_db();
  BundleCache cache(db);
  REQUIRE(must(cache.begin(meta(1, 12))) == BundleState::partial);
  REQUIRE_OK(cache.put_chunk(digest(1), 0, chunk_bytes(1, 0, 10)));
  REQUIRE_OK(cache.put_chunk(digest(1), 3, chunk_bytes(1, 3, 10)));

  REQUIRE_OK(cache.put_rebuilt(rebuilt_meta(1, 12), rebuilt_chunks(1)));
  const auto info = must(cache.find(digest(1)));
  REQUIRE(info);
  CHECK(info->state == BundleState::verified);
  CHECK(info->rebuilt);
  CHECK(info->chunk_count == 3);
  CHECK(info->payload_size == 21);
  CHECK(must(cache.missing_chunks(digest(1))).empty());
  for (std::uint32_t i = 0; i < 3; ++i) {
    CHECK(must(cache.read_chunk(digest(1), i)) == chunk_bytes(101, i, 7));
  }
  CHECK(count(db, "SELECT count(*) FROM chunks") == 3);  // the signed chunk 3 is gone
  REQUIRE_OK(ApplyLog(db).set_last_good("sovdev", 12, digest(1)));
}

TEST_CASE("a rebuilt payload creates the bundle when it was not cached, and lists as rebuilt") {
  auto db = agent_db();
  BundleCache cache(db);
  cache_verified(cache, 1, 4);
  REQUIRE_OK(cache.put_rebuilt(rebuilt_meta(2, 5), rebuilt_chunks(2)));
  const auto all = must(cache.list());
  REQUIRE(all.size() == 2);
  CHECK_FALSE(all[0].rebuilt);
  CHECK(all[1].rebuilt);
  CHECK(all[1].envelope == meta(2, 5).envelope);
  CHECK(must(cache.highest_verified("sovdev"))->digest == digest(2));
  CHECK(must(cache.begin(meta(2, 5))) == BundleState::verified);  // a resumed fetch is done
  REQUIRE(must(cache.remove(digest(2))));
  CHECK(count(db, "SELECT count(*) FROM chunks WHERE digest = x'" + std::string(62, 'a') + "02'") ==
        0);
}

TEST_CASE(
    "a rebuilt payload is refused for a verified bundle and for a version held under "
    "another digest") {
  auto db = agent_db();
  BundleCache cache(db);
  cache_verified(cache, 1, 4);
  auto verified = cache.put_rebuilt(rebuilt_meta(1, 4), rebuilt_chunks(1));
  REQUIRE_FALSE(verified);
  CHECK(verified.error().code == Errc::conflict);
  CHECK_THAT(verified.error().message, Catch::Contains("verified already"));
  CHECK_FALSE(must(cache.find(digest(1)))->rebuilt);
  CHECK(must(cache.read_chunk(digest(1), 0)) == chunk_bytes(1, 0, 10));

  auto other = cache.put_rebuilt(rebuilt_meta(2, 4), rebuilt_chunks(2));
  REQUIRE_FALSE(other);
  CHECK(other.error().code == Errc::conflict);
  CHECK_THAT(other.error().message, Catch::Contains("sovdev@4"));
  CHECK_FALSE(must(cache.find(digest(2))));
}

TEST_CASE("a rebuilt payload whose chunks fail half way leaves the cache as it was") {
  auto db = agent_db();
  BundleCache cache(db);
  REQUIRE(must(cache.begin(meta(1, 12))) == BundleState::partial);
  REQUIRE_OK(cache.put_chunk(digest(1), 2, chunk_bytes(1, 2, 10)));
  auto failing = cache.put_rebuilt(rebuilt_meta(1, 12), [](std::uint32_t i, std::string& out) {
    if (i == 2) return Status(make_error(Errc::io, "disk read failed"));
    out = "chunk";
    return Status();
  });
  REQUIRE_FALSE(failing);
  CHECK(failing.error().code == Errc::io);
  CHECK_THAT(failing.error().message, Catch::Contains("chunk 2: disk read failed"));
  const auto info = must(cache.find(digest(1)));
  CHECK(info->state == BundleState::partial);
  CHECK_FALSE(info->rebuilt);
  CHECK(info->chunk_count == 4);
  CHECK(must(cache.missing_chunks(digest(1))) == std::vector<std::uint32_t>{0, 1, 3});

  // Chunks that add up to another size than declared are refused the same way.
  auto short_payload = cache.put_rebuilt(rebuilt_meta(1, 12), [](std::uint32_t, std::string& out) {
    out = "x";
    return Status();
  });
  REQUIRE_FALSE(short_payload);
  CHECK(short_payload.error().code == Errc::invalid);
  CHECK_FALSE(must(cache.find(digest(1)))->rebuilt);
}

TEST_CASE("the payload origin column accepts only signed and rebuilt") {
  auto db = agent_db();
  BundleCache cache(db);
  cache_verified(cache, 1, 4);
  CHECK_FALSE(db.exec("UPDATE bundles SET payload_origin = 'downloaded'"));
  CHECK_FALSE(db.exec("UPDATE bundles SET payload_origin = NULL"));
  CHECK(count(db, "SELECT count(*) FROM bundles WHERE payload_origin = 'signed'") == 1);
}
