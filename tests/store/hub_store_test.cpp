// The hub store: published bundles, catalog serials, agent statuses, reopening.
#include "platform/store/hub_store.hpp"
#include <filesystem>
#include "tests/store/test_support.hpp"

using namespace sovdev;
using namespace sovdev::store;
using namespace sovdev::store::test;

namespace {

Database hub_db() {
  return must(open_hub_database(":memory:"));
}

constexpr std::size_t kChunk = 1000;

HubBundle bundle(std::uint8_t n, std::uint64_t version, std::uint32_t chunks = 3,
                 std::string channel = "edge") {
  return HubBundle{digest(n),
                   std::move(channel),
                   "sovdev",
                   version,
                   "manifest-" + std::to_string(n),
                   chunks,
                   std::uint64_t{chunks} * kChunk,
                   std::uint64_t{chunks} * kChunk * 5,
                   1700000000 + n};
}

HubChunkSource source(std::uint8_t n) {
  return
      [n](std::uint32_t index) -> Expected<std::string> { return chunk_bytes(n, index, kChunk); };
}

}  // namespace

TEST_CASE("the hub stores a bundle with its chunks and serves them back") {
  auto db = hub_db();
  HubBundles bundles(db);
  CHECK(must(bundles.put_bundle(bundle(1, 1), source(1))));
  const auto found = must(bundles.find(digest(1)));
  REQUIRE(found);
  CHECK(found->channel == "edge");
  CHECK(found->stack == "sovdev");
  CHECK(found->envelope == "manifest-1");
  CHECK(found->chunk_count == 3);
  CHECK(found->payload_size == 3 * kChunk);
  CHECK(found->uncompressed_size == 15 * kChunk);
  CHECK(found->created_at == 1700000001);
  for (std::uint32_t i = 0; i < 3; ++i) {
    CHECK(must(bundles.read_chunk(digest(1), i)) == chunk_bytes(1, i, kChunk));
  }
  CHECK(bundles.read_chunk(digest(1), 3).error().code == Errc::not_found);
  CHECK_FALSE(must(bundles.find(digest(2))));
}

TEST_CASE("a lookup without the envelope gives every other field, and reads stay repeatable") {
  auto db = hub_db();
  HubBundles bundles(db);
  REQUIRE(must(bundles.put_bundle(bundle(1, 1), source(1))));
  REQUIRE(must(bundles.put_bundle(bundle(2, 2, 2), source(2))));
  // Twice each, in turn: the statements are cached and lent again, never left mid-read.
  for (int round = 0; round < 2; ++round) {
    for (const std::uint8_t n : {std::uint8_t{1}, std::uint8_t{2}}) {
      const auto full = must(bundles.find(digest(n)));
      const auto lean = must(bundles.find_without_envelope(digest(n)));
      REQUIRE(full);
      REQUIRE(lean);
      CHECK(full->envelope == "manifest-" + std::to_string(n));
      CHECK(lean->envelope.empty());
      CHECK(lean->digest == full->digest);
      CHECK(lean->version == full->version);
      CHECK(lean->chunk_count == full->chunk_count);
      CHECK(lean->payload_size == full->payload_size);
      CHECK(lean->uncompressed_size == full->uncompressed_size);
      CHECK(lean->created_at == full->created_at);
      std::string out = "left over";
      REQUIRE_OK(bundles.read_chunk(digest(n), 1, out));
      CHECK(out == chunk_bytes(n, 1, kChunk));
    }
  }
  CHECK_FALSE(must(bundles.find_without_envelope(digest(3))));
}

TEST_CASE("publishing the same bundle again is a no-op") {
  auto db = hub_db();
  HubBundles bundles(db);
  CHECK(must(bundles.put_bundle(bundle(1, 1), source(1))));
  int calls = 0;
  auto counting = [&](std::uint32_t) -> Expected<std::string> {
    ++calls;
    return std::string(kChunk, 'x');
  };
  CHECK_FALSE(must(bundles.put_bundle(bundle(1, 1), counting)));
  CHECK(calls == 0);
  CHECK(must(bundles.read_chunk(digest(1), 0)) == chunk_bytes(1, 0, kChunk));
}

TEST_CASE("the hub refuses other content for a published version and a lower version") {
  auto db = hub_db();
  HubBundles bundles(db);
  REQUIRE(must(bundles.put_bundle(bundle(1, 5), source(1))));
  auto same_version = bundles.put_bundle(bundle(2, 5), source(2));
  REQUIRE_FALSE(same_version);
  CHECK(same_version.error().code == Errc::conflict);
  auto lower = bundles.put_bundle(bundle(3, 4), source(3));
  REQUIRE_FALSE(lower);
  CHECK(lower.error().code == Errc::rollback);
  // Another channel has its own versions.
  CHECK(must(bundles.put_bundle(bundle(4, 4, 3, "dev"), source(4))));
}

TEST_CASE("a bundle whose chunks fail or do not add up is not stored at all") {
  auto db = hub_db();
  HubBundles bundles(db);
  auto failing = [](std::uint32_t index) -> Expected<std::string> {
    if (index == 2) return make_error(Errc::io, "read payload: short read");
    return std::string(kChunk, 'x');
  };
  auto failed = bundles.put_bundle(bundle(1, 1), failing);
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code == Errc::io);
  CHECK(failed.error().message.find("chunk 2: read payload: short read") != std::string::npos);

  auto short_chunks = [](std::uint32_t) -> Expected<std::string> { return std::string(10, 'x'); };
  auto mismatch = bundles.put_bundle(bundle(1, 1), short_chunks);
  REQUIRE_FALSE(mismatch);
  CHECK(mismatch.error().code == Errc::invalid);

  CHECK_FALSE(must(bundles.find(digest(1))));
  CHECK(must(query_int64(db, "SELECT count(*) FROM chunks")) == 0);
}

TEST_CASE("latest and versions follow the version order of one channel and stack") {
  auto db = hub_db();
  HubBundles bundles(db);
  REQUIRE(must(bundles.put_bundle(bundle(1, 2), source(1))));
  REQUIRE(must(bundles.put_bundle(bundle(2, 10), source(2))));
  REQUIRE(must(bundles.put_bundle(bundle(3, 11, 3, "dev"), source(3))));
  CHECK(must(bundles.latest("edge", "sovdev"))->digest == digest(2));
  CHECK(must(bundles.latest("dev", "sovdev"))->version == 11);
  CHECK_FALSE(must(bundles.latest("prod", "sovdev")));
  const auto versions = must(bundles.versions("edge", "sovdev"));
  REQUIRE(versions.size() == 2);
  CHECK(versions[0].version == 2);
  CHECK(versions[1].version == 10);
  CHECK(versions[1].digest == digest(2));

  CHECK(must(bundles.remove(digest(1))));
  CHECK_FALSE(must(bundles.remove(digest(1))));
  CHECK(must(bundles.versions("edge", "sovdev")).size() == 1);
  CHECK(must(query_int64(db, "SELECT count(*) FROM chunks")) == 6);
}

TEST_CASE("a channel's catalog serial must grow with every publish") {
  auto db = hub_db();
  HubCatalogs catalogs(db);
  CHECK_FALSE(must(catalogs.catalog("edge")));
  REQUIRE_OK(catalogs.put_catalog("edge", 1, 5000, "catalog-1"));
  REQUIRE_OK(catalogs.put_catalog("edge", 2, 6000, "catalog-2"));

  auto same = catalogs.put_catalog("edge", 2, 7000, "catalog-2b");
  REQUIRE_FALSE(same);
  CHECK(same.error().code == Errc::rollback);
  auto lower = catalogs.put_catalog("edge", 1, 7000, "catalog-1b");
  REQUIRE_FALSE(lower);
  CHECK(lower.error().code == Errc::rollback);
  CHECK(lower.error().message.find("already 2") != std::string::npos);

  REQUIRE_OK(catalogs.put_catalog("dev", 1, 100, "dev-1"));  // channels are independent
  const auto edge = must(catalogs.catalog("edge"));
  REQUIRE(edge);
  CHECK(edge->serial == 2);
  CHECK(edge->expires_at == 6000);
  CHECK(edge->envelope == "catalog-2");
}

TEST_CASE("the fleet table keeps each agent's newest status") {
  auto db = hub_db();
  FleetStatus fleet(db);
  CHECK(must(fleet.upsert({"edge-02", "edge", "status-a", 100})));
  CHECK(must(fleet.upsert({"edge-01", "edge", "status-b", 100})));
  CHECK(must(fleet.upsert({"edge-02", "edge", "status-c", 200})));
  CHECK_FALSE(must(fleet.upsert({"edge-02", "edge", "stale", 150})));
  const auto agents = must(fleet.list());
  REQUIRE(agents.size() == 2);
  CHECK(agents[0].agent_id == "edge-01");
  CHECK(agents[1].status == "status-c");
  CHECK(agents[1].updated_at == 200);
}

TEST_CASE("reopening the hub database file keeps everything") {
  TempDir dir;
  const std::string path = dir.file("hub.db");
  {
    auto db = must(open_hub_database(path));
    REQUIRE(must(HubBundles(db).put_bundle(bundle(1, 1), source(1))));
    REQUIRE_OK(HubCatalogs(db).put_catalog("edge", 4, 9000, "catalog-4"));
    REQUIRE(must(FleetStatus(db).upsert({"edge-01", "edge", "status", 1})));
  }
  auto db = must(open_hub_database(path));
  CHECK(must(HubBundles(db).read_chunk(digest(1), 2)) == chunk_bytes(1, 2, kChunk));
  CHECK(must(HubCatalogs(db).catalog("edge"))->serial == 4);
  CHECK(must(FleetStatus(db).list()).size() == 1);
  CHECK(must(query_int64(db, "PRAGMA synchronous")) == 1);  // NORMAL on the hub
  // A chunk on 64 KiB pages is read in two system calls, not seventeen.
  CHECK(must(query_int64(db, "PRAGMA page_size")) == 64 * 1024);
  CHECK(std::filesystem::exists(path + "-wal"));  // and still in WAL mode
}

TEST_CASE("a hub database made with 4 KiB pages opens and keeps them") {
  TempDir dir;
  const std::string path = dir.file("hub.db");
  {
    auto db = must(Database::open(path, OpenOptions{}));
    REQUIRE(must(query_int64(db, "PRAGMA page_size")) == 4096);
  }
  auto db = must(open_hub_database(path));
  CHECK(must(query_int64(db, "PRAGMA page_size")) == 4096);
  REQUIRE(must(HubBundles(db).put_bundle(bundle(1, 1), source(1))));
  CHECK(must(HubBundles(db).read_chunk(digest(1), 2)) == chunk_bytes(1, 2, kChunk));
}
