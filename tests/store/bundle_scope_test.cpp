// The cache's channel scope and the drop of a damaged payload.
#include <catch2/catch.hpp>

#include "tests/store/agent_fixtures.hpp"

using namespace sovdev;
using namespace sovdev::store;
using namespace sovdev::store::test;

namespace {

// Bundle `n` of stack "sovdev" on `channel`, verified.
void cache_in(BundleCache& cache, std::uint8_t n, const std::string& channel,
              std::uint64_t version) {
  auto m = meta(n, version);
  m.channel = channel;
  REQUIRE(must(cache.begin(m)) == BundleState::partial);
  for (std::uint32_t i = 0; i < m.chunk_count; ++i) {
    REQUIRE_OK(cache.put_chunk(m.digest, i, chunk_bytes(n, i, 10)));
  }
  REQUIRE_OK(cache.set_state(m.digest, BundleState::verified));
}

}  // namespace

TEST_CASE("the newest verified bundle of a stack is found per channel") {
  auto db = agent_db();
  BundleCache cache(db);
  cache_in(cache, 1, "edge", 2);
  cache_in(cache, 2, "dev", 10);
  CHECK(must(cache.highest_verified("edge", "sovdev"))->version == 2);
  CHECK(must(cache.highest_verified("dev", "sovdev"))->version == 10);
  CHECK_FALSE(must(cache.highest_verified("prod", "sovdev")));
}

TEST_CASE("bundles of channels not followed are forgotten, a last good one among them too") {
  auto db = agent_db();
  BundleCache cache(db);
  ApplyLog log(db);
  cache_in(cache, 1, "edge", 2);
  cache_in(cache, 2, "dev", 10);
  REQUIRE_OK(log.set_last_good("sovdev", 10, digest(2)));

  const auto forgotten = must(cache.forget_other_channels({"edge"}));
  REQUIRE(forgotten == std::vector<std::string>{"sovdev@10 (channel dev)"});
  CHECK_FALSE(must(cache.find(digest(2))));
  CHECK_FALSE(must(log.last_good("sovdev")));
  CHECK(must(cache.highest_verified("sovdev"))->version == 2);
  CHECK(must(cache.forget_other_channels({"edge"})).empty());
}

TEST_CASE("a dropped payload leaves its bundle partial with the signed shape and no chunk held") {
  auto db = agent_db();
  BundleCache cache(db);
  ApplyLog log(db);
  cache_in(cache, 1, "edge", 2);
  REQUIRE_OK(log.set_last_good("sovdev", 2, digest(1)));

  BundleMeta signed_ = meta(1, 2, 6);  // the manifest's shape, not the one cached
  REQUIRE(must(cache.drop_payload(signed_)));
  const auto info = must(cache.find(digest(1)));
  REQUIRE(info);
  CHECK(info->state == BundleState::partial);
  CHECK_FALSE(info->rebuilt);
  CHECK(info->chunk_count == 6);
  CHECK(info->payload_size == 60);
  CHECK(must(cache.missing_chunks(digest(1))).size() == 6);
  // Still the last good bundle (its row stays), no longer the newest verified.
  CHECK(must(log.last_good("sovdev"))->digest == digest(1));
  CHECK_FALSE(must(cache.highest_verified("sovdev")));
  // A fetch resumes it: begin() reports it partial, and the chunks go in again.
  CHECK(must(cache.begin(signed_)) == BundleState::partial);
  CHECK_FALSE(must(cache.drop_payload(meta(9, 1))));
}
