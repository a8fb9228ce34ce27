// agent.db's rollout marks and revocation lists (migration 7, docs/design-rollouts.md).
#include <catch2/catch.hpp>

#include "platform/store/rollout_marks.hpp"
#include "tests/store/agent_fixtures.hpp"

using namespace sovdev;
using namespace sovdev::store;
using namespace sovdev::store::test;

namespace {

RolloutMark rollout_mark_of(std::uint64_t rollout, std::uint8_t n, std::uint64_t version,
                            std::optional<LastGood> prior) {
  RolloutMark m;
  m.stack = "sovdev";
  m.rollout_id = rollout;
  m.channel = "edge";
  m.version = version;
  m.digest = digest(n);
  m.prior = std::move(prior);
  m.marked_at = 100;
  return m;
}

}  // namespace

TEST_CASE("a rollout mark keeps the last good of its first apply; another apply does not move it") {
  auto db = agent_db();
  RolloutMarks marks(db);
  CHECK(must(marks.record(rollout_mark_of(7, 2, 2, LastGood{1, digest(1)}))));
  // Tried again after a transient error, with another last good: the first one stays.
  CHECK_FALSE(must(marks.record(rollout_mark_of(7, 2, 2, LastGood{9, digest(9)}))));
  auto found = must(marks.find_open("sovdev", digest(2)));
  REQUIRE(found);
  CHECK(found->rollout_id == 7);
  REQUIRE(found->prior);
  CHECK(found->prior->version == 1);
  CHECK(found->prior->digest == digest(1));
}

TEST_CASE("a closed mark is not found open, and closes once") {
  auto db = agent_db();
  RolloutMarks marks(db);
  REQUIRE(must(marks.record(rollout_mark_of(7, 2, 2, LastGood{1, digest(1)}))));
  CHECK(must(marks.close("sovdev", 7, "reverted", 200)));
  CHECK_FALSE(must(marks.find_open("sovdev", digest(2))));
  CHECK_FALSE(must(marks.close("sovdev", 7, "reverted", 300)));
  CHECK(must(marks.find("sovdev", 7))->state == "reverted");
}

TEST_CASE("applying another version supersedes the stack's other open marks") {
  auto db = agent_db();
  RolloutMarks marks(db);
  REQUIRE(must(marks.record(rollout_mark_of(7, 2, 2, LastGood{1, digest(1)}))));
  REQUIRE(must(marks.record(rollout_mark_of(8, 3, 3, LastGood{2, digest(2)}))));
  CHECK(must(marks.supersede("sovdev", digest(3), 200)) == 1);
  CHECK(must(marks.find("sovdev", 7))->state == "superseded");
  CHECK(must(marks.find_open("sovdev", digest(3))));
}

TEST_CASE("the cache cannot delete the pre-rollout last good while its mark is open") {
  auto db = agent_db();
  BundleCache cache(db);
  cache_verified(cache, 1, 1);
  cache_verified(cache, 2, 2);
  RolloutMarks marks(db);
  REQUIRE(must(marks.record(rollout_mark_of(7, 2, 2, LastGood{1, digest(1)}))));
  auto removed = cache.remove(digest(1));
  REQUIRE_FALSE(removed);
  CHECK(removed.error().message.find("pre-rollout last good") != std::string::npos);
  CHECK(must(cache.find(digest(1))));
  // The rollout's own version is no one's fallback: it may go.
  CHECK(must(cache.remove(digest(2))));
  REQUIRE(must(marks.close("sovdev", 7, "reverted", 200)));
  CHECK(must(cache.remove(digest(1))));
}

TEST_CASE("marks of channels the agent no longer follows are closed") {
  auto db = agent_db();
  RolloutMarks marks(db);
  auto other = rollout_mark_of(7, 2, 2, LastGood{1, digest(1)});
  other.channel = "lab";
  REQUIRE(must(marks.record(other)));
  REQUIRE(must(marks.record(rollout_mark_of(8, 3, 3, LastGood{1, digest(1)}))));
  CHECK(must(marks.close_other_channels({"edge"}, 200)) == 1);
  CHECK(must(marks.find("sovdev", 7))->state == "superseded");
  CHECK(must(marks.find("sovdev", 8))->state == "open");
}

TEST_CASE("a revocation list is replaced only by a higher serial") {
  auto db = agent_db();
  RevocationCache lists(db);
  CHECK(must(lists.put({"edge", 3, "list-3", 10})));
  CHECK_FALSE(must(lists.put({"edge", 3, "list-3", 11})));
  auto older = lists.put({"edge", 2, "list-2", 12});
  REQUIRE_FALSE(older);
  CHECK(older.error().code == Errc::rollback);
  CHECK(must(lists.get("edge"))->envelope == "list-3");
  CHECK(must(lists.put({"edge", 4, "list-4", 13})));
  CHECK(must(lists.get("edge"))->serial == 4);
  CHECK_FALSE(must(lists.get("lab")));
}
