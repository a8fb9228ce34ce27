// The agent's small records: trust roots, apply history, last good, catalogs; and reopening.
#include "platform/store/agent_cache.hpp"
#include "tests/store/agent_fixtures.hpp"
#include "tests/store/test_support.hpp"

using namespace sovdev;
using namespace sovdev::store;
using namespace sovdev::store::test;

TEST_CASE("trust roots are accepted only one version above the latest") {
  auto db = agent_db();
  TrustHistory trust(db);
  CHECK_FALSE(must(trust.latest()));
  REQUIRE_OK(trust.add_root(3, "root-3"));  // the first root may have any version
  REQUIRE_OK(trust.add_root(4, "root-4"));

  auto duplicate = trust.add_root(4, "root-4");
  REQUIRE_FALSE(duplicate);
  CHECK(duplicate.error().code == Errc::conflict);
  auto lower = trust.add_root(2, "root-2");
  REQUIRE_FALSE(lower);
  CHECK(lower.error().code == Errc::rollback);
  auto skip = trust.add_root(6, "root-6");
  REQUIRE_FALSE(skip);
  CHECK(skip.error().code == Errc::invalid);
  CHECK(skip.error().message.find("one version at a time") != std::string::npos);

  REQUIRE_OK(trust.add_root(5, "root-5"));
  const auto latest = must(trust.latest());
  REQUIRE(latest);
  CHECK(latest->version == 5);
  CHECK(latest->envelope == "root-5");
  const auto all = must(trust.list());
  REQUIRE(all.size() == 3);
  CHECK(all[0].version == 3);
  CHECK(all[1].version == 4);
  CHECK(all[2].envelope == "root-5");
}

TEST_CASE("the apply log returns the newest entries first and keeps a bounded history") {
  auto db = agent_db();
  ApplyLog log(db, 3);
  for (std::uint64_t v = 1; v <= 5; ++v) {
    REQUIRE_OK(log.record("sovdev", v, digest(static_cast<std::uint8_t>(v)), "applied",
                          "ok " + std::to_string(v)));
  }
  REQUIRE_OK(log.record("other", 1, digest(9), "failed", "no API server"));
  const auto history = must(log.history("sovdev", 10));
  REQUIRE(history.size() == 3);
  CHECK(history[0].version == 5);
  CHECK(history[0].message == "ok 5");
  CHECK(history[0].digest == digest(5));
  CHECK(history[0].at > 0);
  CHECK(history[2].version == 3);
  CHECK(must(log.history("sovdev", 1)).size() == 1);
  const auto other = must(log.history("other", 10));
  REQUIRE(other.size() == 1);
  CHECK(other[0].result == "failed");
}

TEST_CASE("last good is set only to a verified bundle of that stack and version") {
  auto db = agent_db();
  BundleCache cache(db);
  ApplyLog log(db);
  CHECK_FALSE(must(log.last_good("sovdev")));
  cache_verified(cache, 1, 1);
  REQUIRE(must(cache.begin(meta(2, 2))) == BundleState::partial);

  CHECK(log.set_last_good("sovdev", 2, digest(2)).error().code == Errc::invalid);  // partial
  CHECK(log.set_last_good("sovdev", 9, digest(1)).error().code == Errc::invalid);  // version
  CHECK(log.set_last_good("sovdev", 3, digest(3)).error().code == Errc::not_found);
  REQUIRE_OK(log.set_last_good("sovdev", 1, digest(1)));
  CHECK(must(log.last_good("sovdev"))->version == 1);

  cache_verified(cache, 3, 3);
  REQUIRE_OK(log.set_last_good("sovdev", 3, digest(3)));
  const auto good = must(log.last_good("sovdev"));
  CHECK(good->version == 3);
  CHECK(good->digest == digest(3));
  CHECK(must(cache.remove(digest(1))));  // no longer the fallback
}

TEST_CASE("the catalog cache keeps the newest serial and refuses going back") {
  auto db = agent_db();
  CatalogCache catalogs(db);
  CHECK_FALSE(must(catalogs.get("edge")));
  REQUIRE_OK(catalogs.put({"edge", 5, "catalog-5", 1000}));
  REQUIRE_OK(catalogs.put({"edge", 5, "catalog-5", 2000}));  // the retained copy again
  CHECK(catalogs.put({"edge", 5, "forged-5", 2000}).error().code == Errc::conflict);
  CHECK(catalogs.put({"edge", 4, "catalog-4", 2000}).error().code == Errc::rollback);
  REQUIRE_OK(catalogs.put({"edge", 6, "catalog-6", 3000}));
  REQUIRE_OK(catalogs.put({"dev", 1, "dev-1", 3000}));
  const auto edge = must(catalogs.get("edge"));
  REQUIRE(edge);
  CHECK(edge->serial == 6);
  CHECK(edge->envelope == "catalog-6");
  CHECK(edge->received_at == 3000);
  CHECK(must(catalogs.get("dev"))->serial == 1);
}

TEST_CASE("reopening the agent database file keeps everything") {
  TempDir dir;
  const std::string path = dir.file("agent.db");
  {
    auto db = must(open_agent_database(path));
    BundleCache cache(db);
    TrustHistory trust(db);
    ApplyLog log(db);
    CatalogCache catalogs(db);
    cache_verified(cache, 1, 1);
    REQUIRE(must(cache.begin(meta(2, 2))) == BundleState::partial);
    REQUIRE_OK(cache.put_chunk(digest(2), 1, "half"));
    REQUIRE_OK(trust.add_root(1, "root-1"));
    REQUIRE_OK(log.record("sovdev", 1, digest(1), "applied", "ok"));
    REQUIRE_OK(log.set_last_good("sovdev", 1, digest(1)));
    REQUIRE_OK(catalogs.put({"edge", 8, "catalog-8", 100}));
  }
  auto db = must(open_agent_database(path));
  BundleCache cache(db);
  CHECK(must(cache.find(digest(1)))->state == BundleState::verified);
  CHECK(must(cache.missing_chunks(digest(2))) == std::vector<std::uint32_t>{0, 2, 3});
  CHECK(must(cache.read_chunk(digest(2), 1)) == "half");
  CHECK(must(cache.read_chunk(digest(1), 3)) == chunk_bytes(1, 3, 10));
  CHECK(must(TrustHistory(db).latest())->envelope == "root-1");
  CHECK(must(ApplyLog(db).history("sovdev", 5)).size() == 1);
  CHECK(must(ApplyLog(db).last_good("sovdev"))->digest == digest(1));
  CHECK(must(CatalogCache(db).get("edge"))->serial == 8);
  CHECK(must(query_int64(db, "PRAGMA synchronous")) == 2);  // FULL on the agent
}
