// Payloads kept in files beside the agent database (migration 004): where the bytes go, what
// the rows say, and what a crash, a power cut or a full disk leaves.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/hex.hpp"
#include "platform/store/agent_cache.hpp"
#include "platform/store/transaction.hpp"
#include "tests/store/test_support.hpp"

using namespace sovdev;
using namespace sovdev::store;
using namespace sovdev::store::test;

namespace {

constexpr std::uint32_t kFileChunk = 1000;

// Bundle `n`: 4 chunks of kFileChunk bytes and a last one of 300, kept in a payload file.
BundleMeta file_meta(std::uint8_t n, std::uint64_t version) {
  BundleMeta m{digest(n), "sovdev", "edge", version, "manifest", 5, 4 * kFileChunk + 300};
  m.chunk_size = kFileChunk;
  return m;
}

std::string chunk_of(std::uint8_t n, std::uint32_t i) {
  return chunk_bytes(n, i, i == 4 ? 300 : kFileChunk);
}

std::filesystem::path payload(const TempDir& dir, std::uint8_t n) {
  return std::filesystem::path(dir.file("payloads")) / to_hex(digest(n));
}

void store_all(BundleCache& cache, std::uint8_t n) {
  for (std::uint32_t i = 0; i < 5; ++i) REQUIRE_OK(cache.put_chunk(digest(n), i, chunk_of(n, i)));
}

std::int64_t query_count(Database& db, const std::string& sql) {
  return must(query_int64(db, sql));
}

}  // namespace

TEST_CASE("a bundle with a chunk size keeps its payload in a file and only markers in the table") {
  TempDir dir;
  auto db = must(open_agent_database(dir.file("agent.db")));
  BundleCache cache(db);
  REQUIRE(must(cache.begin(file_meta(1, 1))) == BundleState::partial);
  store_all(cache, 1);
  REQUIRE_OK(cache.set_state(digest(1), BundleState::verified));

  CHECK(std::filesystem::file_size(payload(dir, 1)) == 4 * kFileChunk + 300);
  CHECK(query_count(db, "SELECT count(*) FROM chunks") == 5);
  CHECK(query_count(db, "SELECT sum(length(data)) FROM chunks") == 0);
  CHECK(must(cache.find(digest(1)))->chunk_size == kFileChunk);
  for (std::uint32_t i = 0; i < 5; ++i)
    CHECK(must(cache.read_chunk(digest(1), i)) == chunk_of(1, i));
  CHECK(must(cache.missing_chunks(digest(1))).empty());
}

TEST_CASE("without a folder (a database in memory) or a chunk size, chunks stay in the table") {
  TempDir dir;
  auto in_memory = must(open_agent_database(":memory:"));
  auto in_file = must(open_agent_database(dir.file("agent.db")));
  auto no_size = file_meta(2, 1);
  no_size.chunk_size = 0;
  for (auto* db : {&in_memory, &in_file}) {
    BundleCache cache(*db);
    const auto m = db == &in_memory ? file_meta(2, 1) : no_size;
    REQUIRE(must(cache.begin(m)) == BundleState::partial);
    store_all(cache, 2);
    CHECK(must(cache.find(digest(2)))->chunk_size == 0);
    CHECK(query_count(*db, "SELECT sum(length(data)) FROM chunks") == 4 * kFileChunk + 300);
    CHECK(must(cache.read_chunk(digest(2), 4)) == chunk_of(2, 4));
  }
  CHECK_FALSE(std::filesystem::exists(dir.file("payloads/" + to_hex(digest(2)))));
}

TEST_CASE("a payload file refuses a chunk of the wrong length or other bytes at a held index") {
  TempDir dir;
  auto db = must(open_agent_database(dir.file("agent.db")));
  BundleCache cache(db);
  REQUIRE(must(cache.begin(file_meta(1, 1))) == BundleState::partial);
  REQUIRE_OK(cache.put_chunk(digest(1), 0, chunk_of(1, 0)));
  REQUIRE_OK(cache.put_chunk(digest(1), 0, chunk_of(1, 0)));  // the same again: a no-op

  auto other = cache.put_chunk(digest(1), 0, chunk_of(9, 0));
  REQUIRE_FALSE(other);
  CHECK(other.error().code == Errc::conflict);
  auto short_one = cache.put_chunk(digest(1), 1, "short");
  REQUIRE_FALSE(short_one);
  CHECK(short_one.error().code == Errc::invalid);
  auto long_last = cache.put_chunk(digest(1), 4, chunk_of(1, 0));
  REQUIRE_FALSE(long_last);
  CHECK(long_last.error().code == Errc::invalid);
  CHECK(must(cache.read_chunk(digest(1), 0)) == chunk_of(1, 0));
  CHECK(must(cache.missing_chunks(digest(1))) == std::vector<std::uint32_t>{1, 2, 3, 4});
}

TEST_CASE("a chunk whose transaction rolled back is missing, though its bytes reached the file") {
  TempDir dir;
  auto db = must(open_agent_database(dir.file("agent.db")));
  BundleCache cache(db);
  REQUIRE(must(cache.begin(file_meta(1, 1))) == BundleState::partial);
  {
    auto tx = must(Transaction::begin(db));
    REQUIRE_OK(cache.put_chunk(digest(1), 2, chunk_of(1, 2)));
    tx.rollback();
  }
  CHECK(must(cache.missing_chunks(digest(1))).size() == 5);
  REQUIRE_OK(cache.put_chunk(digest(1), 2, chunk_of(1, 2)));  // stored again, no conflict
  CHECK(must(cache.missing_chunks(digest(1))).size() == 4);
}

TEST_CASE("after a power cut, drop_damaged forgets chunks whose bytes never reached the disk") {
  TempDir dir;
  auto db = must(open_agent_database(dir.file("agent.db")));
  BundleCache cache(db);
  REQUIRE(must(cache.begin(file_meta(1, 1))) == BundleState::partial);
  for (std::uint32_t i = 0; i < 4; ++i) REQUIRE_OK(cache.put_chunk(digest(1), i, chunk_of(1, i)));
  // What a power cut can leave: the rows committed, chunk 1 zeroed, the file cut inside chunk 3.
  {
    std::fstream f(payload(dir, 1), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(kFileChunk);
    f << std::string(kFileChunk, '\0');
    REQUIRE(f.good());
  }
  std::filesystem::resize_file(payload(dir, 1), 3 * kFileChunk + 10);
  SECTION("the whole file lost") {
    std::filesystem::remove(payload(dir, 1));
    const auto any = [](std::uint32_t, std::string_view) { return true; };
    CHECK(must(cache.drop_damaged(digest(1), any)) == 4);
    CHECK(must(cache.missing_chunks(digest(1))).size() == 5);
    return;
  }
  const auto good = [](std::uint32_t i, std::string_view data) { return data == chunk_of(1, i); };
  CHECK(must(cache.drop_damaged(digest(1), good)) == 2);
  CHECK(must(cache.missing_chunks(digest(1))) == std::vector<std::uint32_t>{1, 3, 4});
  CHECK(must(cache.drop_damaged(digest(1), good)) == 0);
  for (const std::uint32_t i : {1u, 3u, 4u})
    REQUIRE_OK(cache.put_chunk(digest(1), i, chunk_of(1, i)));
  REQUIRE_OK(cache.set_state(digest(1), BundleState::verified));
  for (std::uint32_t i = 0; i < 5; ++i)
    CHECK(must(cache.read_chunk(digest(1), i)) == chunk_of(1, i));
}

TEST_CASE("a full disk under a payload file is an io error; nothing is marked held") {
  TempDir dir;
  auto db = must(open_agent_database(dir.file("agent.db")));
  BundleCache cache(db);
  REQUIRE(must(cache.begin(file_meta(1, 1))) == BundleState::partial);
  // Every write to /dev/full fails with ENOSPC, as on a full file system.
  std::filesystem::create_symlink("/dev/full", payload(dir, 1));
  auto full = cache.put_chunk(digest(1), 0, chunk_of(1, 0));
  REQUIRE_FALSE(full);
  CHECK(full.error().code == Errc::io);
  CHECK(full.error().message.find("No space left on device") != std::string::npos);
  CHECK(full.error().message.find("store chunk 0 of ") == 0);
  CHECK(db.autocommit());
  CHECK(must(cache.missing_chunks(digest(1))).size() == 5);
  std::filesystem::remove(payload(dir, 1));  // space again
  REQUIRE_OK(cache.put_chunk(digest(1), 0, chunk_of(1, 0)));
  CHECK(must(cache.missing_chunks(digest(1))).size() == 4);
}

TEST_CASE("remove deletes the payload file; files nobody owns are swept, under the write lock") {
  TempDir dir;
  {
    auto db = must(open_agent_database(dir.file("agent.db")));
    BundleCache cache(db);
    for (const std::uint8_t n : {std::uint8_t{1}, std::uint8_t{2}, std::uint8_t{3}}) {
      REQUIRE(must(cache.begin(file_meta(n, n))) == BundleState::partial);
      store_all(cache, n);
    }
    CHECK(must(cache.remove(digest(1))));
    CHECK_FALSE(std::filesystem::exists(payload(dir, 1)));
    // Removed inside a transaction the caller commits: the file stays until the sweep.
    {
      auto tx = must(Transaction::begin(db));
      CHECK(must(cache.remove(digest(2))));
      REQUIRE_OK(tx.commit());
    }
    CHECK(std::filesystem::exists(payload(dir, 2)));
    std::ofstream(dir.file("payloads/" + to_hex(digest(7)) + ".rebuilt")) << "half";
  }
  auto db = must(open_agent_database(dir.file("agent.db")));
  CHECK(std::filesystem::exists(payload(dir, 2)));  // opening alone touches nothing
  {
    // While another connection writes, nothing is swept (it may be that writer's file).
    OpenOptions quick;
    quick.busy_timeout_ms = 50;
    auto other = must(Database::open(dir.file("agent.db"), quick));
    auto writing = must(Transaction::begin(db));
    CHECK_FALSE(BundleCache(other).sweep_payloads());
    CHECK(std::filesystem::exists(payload(dir, 2)));
  }
  CHECK(must(BundleCache(db).sweep_payloads()) == 2);
  CHECK_FALSE(std::filesystem::exists(payload(dir, 2)));
  CHECK_FALSE(std::filesystem::exists(dir.file("payloads/" + to_hex(digest(7)) + ".rebuilt")));
  CHECK(std::filesystem::exists(payload(dir, 3)));
  CHECK(must(BundleCache(db).read_chunk(digest(3), 4)) == chunk_of(3, 4));
}

TEST_CASE("begin does not let a stale file lend its bytes to a new bundle") {
  TempDir dir;
  auto db = must(open_agent_database(dir.file("agent.db")));
  BundleCache cache(db);
  std::filesystem::create_directories(dir.file("payloads"));
  std::ofstream(payload(dir, 1)) << std::string(5000, 'x');
  REQUIRE(must(cache.begin(file_meta(1, 1))) == BundleState::partial);
  CHECK_FALSE(std::filesystem::exists(payload(dir, 1)));
}

TEST_CASE("a rebuilt payload replaces a partial download's file whole") {
  TempDir dir;
  auto db = must(open_agent_database(dir.file("agent.db")));
  BundleCache cache(db);
  REQUIRE(must(cache.begin(file_meta(1, 1))) == BundleState::partial);
  REQUIRE_OK(cache.put_chunk(digest(1), 0, chunk_of(1, 0)));
  auto rebuilt = file_meta(1, 1);
  rebuilt.chunk_count = 3;
  rebuilt.payload_size = 2 * 700 + 5;
  REQUIRE_OK(cache.put_rebuilt(rebuilt, [](std::uint32_t i, std::string& out) -> Status {
    out = chunk_bytes(5, i, i == 2 ? 5 : 700);
    return {};
  }));
  const auto info = must(cache.find(digest(1)));
  CHECK(info->rebuilt);
  CHECK(info->state == BundleState::verified);
  CHECK(info->chunk_size == 700);
  CHECK(std::filesystem::file_size(payload(dir, 1)) == 1405);
  CHECK(must(cache.read_chunk(digest(1), 1)) == chunk_bytes(5, 1, 700));
  CHECK(must(cache.read_chunk(digest(1), 2)) == chunk_bytes(5, 2, 5));
  CHECK(query_count(db, "SELECT count(*) FROM chunks") == 3);

  // Uneven chunks are refused and leave the cache as it was.
  REQUIRE(must(cache.begin(file_meta(2, 2))) == BundleState::partial);
  auto uneven = file_meta(2, 2);
  uneven.chunk_count = 3;
  uneven.payload_size = 1400;
  auto refused = cache.put_rebuilt(uneven, [](std::uint32_t i, std::string& out) -> Status {
    out = chunk_bytes(6, i, i == 1 ? 600 : 400);
    return {};
  });
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::invalid);
  CHECK(must(cache.find(digest(2)))->state == BundleState::partial);
  CHECK_FALSE(must(cache.find(digest(2)))->rebuilt);
}

TEST_CASE(
    "writing a partial payload back early changes nothing a reader, a resume or the end sees") {
  TempDir dir;
  auto db = must(open_agent_database(dir.file("agent.db")));
  BundleCache cache(db);
  REQUIRE(must(cache.begin(file_meta(1, 1))) == BundleState::partial);
  REQUIRE_OK(cache.put_chunk(digest(1), 0, chunk_of(1, 0)));
  REQUIRE_OK(cache.put_chunk(digest(1), 3, chunk_of(1, 3)));
  REQUIRE_OK(cache.start_writeback(digest(1)));
  CHECK(must(cache.missing_chunks(digest(1))) == std::vector<std::uint32_t>{1, 2, 4});
  CHECK(must(cache.read_chunk(digest(1), 3)) == chunk_of(1, 3));
  for (std::uint32_t i : {1u, 2u, 4u}) REQUIRE_OK(cache.put_chunk(digest(1), i, chunk_of(1, i)));
  REQUIRE_OK(cache.start_writeback(digest(1)));
  REQUIRE_OK(cache.set_state(digest(1), BundleState::complete));
  // Once the payload is complete (flushed) there is nothing left to start.
  REQUIRE_OK(cache.start_writeback(digest(1)));
  for (std::uint32_t i = 0; i < 5; ++i)
    CHECK(must(cache.read_chunk(digest(1), i)) == chunk_of(1, i));
  // A bundle the cache does not hold is an error, not a silent no-op.
  CHECK_FALSE(cache.start_writeback(digest(9)));
}

TEST_CASE("the agent database commits at synchronous FULL: a bundle's state survives a power cut") {
  // Chunk batches relax this for their own commits only (agent/fetch.cpp); every transition
  // (complete, verified, applied, last good, trust root) must find FULL in place.
  TempDir dir;
  auto db = must(open_agent_database(dir.file("agent.db")));
  CHECK(query_count(db, "PRAGMA synchronous") == 2);
  auto mode = must(db.prepare("PRAGMA journal_mode"));
  REQUIRE(must(mode.step()));
  CHECK(mode.text(0) == "wal");
}
