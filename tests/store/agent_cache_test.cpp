// The agent's bundle cache: downloads, conflicts, chunk access, removal, a full disk.
#include "platform/store/agent_cache.hpp"
#include "platform/store/transaction.hpp"
#include "tests/store/agent_fixtures.hpp"
#include "tests/store/test_support.hpp"

using namespace sovdev;
using namespace sovdev::store;
using namespace sovdev::store::test;

namespace {

std::vector<std::uint32_t> range(std::uint32_t from, std::uint32_t to) {
  std::vector<std::uint32_t> out;
  for (auto i = from; i < to; ++i) out.push_back(i);
  return out;
}

std::int64_t chunks_of(Database& db, const std::string& bundle) {
  auto count = must(db.prepare("SELECT count(*) FROM chunks WHERE digest = ?"));
  REQUIRE_OK(count.bind(1, Blob{bundle}));
  REQUIRE(must(count.step()));
  return count.int64(0);
}

}  // namespace

TEST_CASE("a download goes partial to complete to verified as the missing chunks shrink") {
  auto db = agent_db();
  BundleCache cache(db);
  const auto m = meta(1, 12);
  CHECK(must(cache.begin(m)) == BundleState::partial);
  CHECK(must(cache.missing_chunks(m.digest)) == range(0, 4));

  REQUIRE_OK(cache.put_chunk(m.digest, 2, chunk_bytes(1, 2, 10)));
  CHECK(must(cache.missing_chunks(m.digest)) == std::vector<std::uint32_t>{0, 1, 3});
  REQUIRE_OK(cache.put_chunk(m.digest, 0, chunk_bytes(1, 0, 10)));
  REQUIRE_OK(cache.put_chunk(m.digest, 3, chunk_bytes(1, 3, 10)));
  CHECK(must(cache.missing_chunks(m.digest)) == std::vector<std::uint32_t>{1});

  auto early = cache.set_state(m.digest, BundleState::complete);
  REQUIRE_FALSE(early);
  CHECK(early.error().code == Errc::invalid);
  CHECK(early.error().message.find("1 of 4 chunks are missing") != std::string::npos);

  REQUIRE_OK(cache.put_chunk(m.digest, 1, chunk_bytes(1, 1, 10)));
  CHECK(must(cache.missing_chunks(m.digest)).empty());
  REQUIRE_OK(cache.set_state(m.digest, BundleState::complete));
  CHECK(must(cache.find(m.digest))->state == BundleState::complete);
  REQUIRE_OK(cache.set_state(m.digest, BundleState::verified));

  const auto info = must(cache.find(m.digest));
  REQUIRE(info);
  CHECK(info->state == BundleState::verified);
  CHECK(info->stack == "sovdev");
  CHECK(info->channel == "edge");
  CHECK(info->version == 12);
  CHECK(info->envelope == m.envelope);
  CHECK(info->chunk_count == 4);
  CHECK(info->payload_size == 40);
  CHECK(must(cache.read_chunk(m.digest, 3)) == chunk_bytes(1, 3, 10));
}

TEST_CASE("begin on a digest already cached returns its state, so a download resumes") {
  auto db = agent_db();
  BundleCache cache(db);
  cache_verified(cache, 1, 5);
  CHECK(must(cache.begin(meta(1, 5))) == BundleState::verified);
  CHECK(must(cache.list()).size() == 1);
}

TEST_CASE("begin refuses the same stack and version under another digest as a conflict") {
  auto db = agent_db();
  BundleCache cache(db);
  REQUIRE(must(cache.begin(meta(1, 7))) == BundleState::partial);
  auto conflict = cache.begin(meta(2, 7));
  REQUIRE_FALSE(conflict);
  CHECK(conflict.error().code == Errc::conflict);
  CHECK(conflict.error().message.find("sovdev@7") != std::string::npos);
  CHECK_FALSE(must(cache.find(digest(2))));
}

TEST_CASE("a partial download can be replaced by removing it and beginning the other, atomically") {
  auto db = agent_db();
  BundleCache cache(db);
  REQUIRE(must(cache.begin(meta(1, 7))) == BundleState::partial);
  REQUIRE_OK(cache.put_chunk(digest(1), 0, "old"));
  REQUIRE_OK(transaction(db, [&]() -> Status {
    SOVDEV_ASSIGN(const bool removed, cache.remove(digest(1)));
    if (!removed) return make_error(Errc::internal, "nothing removed");
    return cache.begin(meta(2, 7)).has_value() ? Status{} : make_error(Errc::internal, "begin");
  }));
  CHECK(must(cache.find_version("sovdev", 7))->digest == digest(2));
  CHECK(must(query_int64(db, "SELECT count(*) FROM chunks")) == 0);
}

TEST_CASE("put_chunk accepts the same chunk twice, and refuses other bytes or a bad index") {
  auto db = agent_db();
  BundleCache cache(db);
  REQUIRE(must(cache.begin(meta(1, 1))) == BundleState::partial);
  REQUIRE_OK(cache.put_chunk(digest(1), 0, "same"));
  REQUIRE_OK(cache.put_chunk(digest(1), 0, "same"));

  auto other = cache.put_chunk(digest(1), 0, "different");
  REQUIRE_FALSE(other);
  CHECK(other.error().code == Errc::conflict);
  CHECK(other.error().message.rfind("store chunk 0 of abababababab", 0) == 0);
  CHECK(must(cache.read_chunk(digest(1), 0)) == "same");

  auto past_end = cache.put_chunk(digest(1), 4, "x");
  REQUIRE_FALSE(past_end);
  CHECK(past_end.error().code == Errc::invalid);
  CHECK(past_end.error().message.find("has 4 chunks") != std::string::npos);

  auto unknown = cache.put_chunk(digest(9), 0, "x");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code == Errc::not_found);

  auto bad_digest = cache.put_chunk("short", 0, "x");
  REQUIRE_FALSE(bad_digest);
  CHECK(bad_digest.error().code == Errc::invalid);
}

TEST_CASE("missing_chunks lists the gaps of a 4096-chunk bundle in order") {
  auto db = agent_db();
  BundleCache cache(db);
  const auto m = meta(1, 1, 4096);
  REQUIRE(must(cache.begin(m)) == BundleState::partial);
  std::vector<std::uint32_t> expected;
  REQUIRE_OK(transaction(db, [&]() -> Status {
    for (std::uint32_t i = 0; i < 4096; ++i) {
      if (i % 7 == 3 || i == 4095) {
        expected.push_back(i);
        continue;
      }
      SOVDEV_TRY(cache.put_chunk(m.digest, i, "c"));
    }
    return {};
  }));
  CHECK(must(cache.missing_chunks(m.digest)) == expected);
}

TEST_CASE("read_chunk returns one 64 KiB chunk, and a chunk not held is not_found") {
  auto db = agent_db();
  BundleCache cache(db);
  REQUIRE(must(cache.begin(meta(1, 1))) == BundleState::partial);
  const std::string big = chunk_bytes(1, 1, 64 * 1024);
  REQUIRE_OK(cache.put_chunk(digest(1), 1, big));
  std::string buffer;
  REQUIRE_OK(cache.read_chunk(digest(1), 1, buffer));
  CHECK(buffer == big);
  auto missing = cache.read_chunk(digest(1), 2);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == Errc::not_found);
}

TEST_CASE("remove deletes a bundle with its chunks, but never the last good bundle") {
  auto db = agent_db();
  BundleCache cache(db);
  ApplyLog log(db);
  cache_verified(cache, 1, 1);
  cache_verified(cache, 2, 2);
  REQUIRE_OK(log.set_last_good("sovdev", 1, digest(1)));

  auto refused = cache.remove(digest(1));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::conflict);
  CHECK(refused.error().message.find("last good") != std::string::npos);

  CHECK(must(cache.remove(digest(2))));
  CHECK_FALSE(must(cache.remove(digest(2))));
  CHECK_FALSE(must(cache.find(digest(2))));
  CHECK(chunks_of(db, digest(2)) == 0);
  CHECK(chunks_of(db, digest(1)) == 4);
}

TEST_CASE("find_version, highest_verified and list see the right bundles") {
  auto db = agent_db();
  BundleCache cache(db);
  cache_verified(cache, 1, 3);
  cache_verified(cache, 2, 5);
  REQUIRE(must(cache.begin(meta(3, 9))) == BundleState::partial);
  CHECK(must(cache.find_version("sovdev", 5))->digest == digest(2));
  CHECK_FALSE(must(cache.find_version("sovdev", 4)));
  CHECK(must(cache.highest_verified("sovdev"))->version == 5);
  CHECK_FALSE(must(cache.highest_verified("other")));
  const auto all = must(cache.list());
  REQUIRE(all.size() == 3);
  CHECK(all[0].version == 3);
  CHECK(all[2].version == 9);
  CHECK(all[2].state == BundleState::partial);
}

TEST_CASE("a full disk is reported as an io error that says so, and the cache stays usable") {
  auto db = agent_db();
  BundleCache cache(db);
  REQUIRE(must(cache.begin(meta(1, 1))) == BundleState::partial);
  const auto pages = must(query_int64(db, "PRAGMA page_count"));
  REQUIRE_OK(db.exec("PRAGMA max_page_count = " + std::to_string(pages + 2)));
  auto full = cache.put_chunk(digest(1), 0, chunk_bytes(1, 0, 64 * 1024));
  REQUIRE_FALSE(full);
  CHECK(full.error().code == Errc::io);
  CHECK(full.error().message.find("disk full") != std::string::npos);
  CHECK(full.error().message.find("store chunk 0 of ") == 0);
  CHECK(db.autocommit());
  REQUIRE_OK(cache.put_chunk(digest(1), 0, "small"));
  CHECK(must(cache.missing_chunks(digest(1))) == std::vector<std::uint32_t>{1, 2, 3});
}
