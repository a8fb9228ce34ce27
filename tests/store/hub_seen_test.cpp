// The hub's own view of when it heard from an agent: its clock, never the agent's.
#include <catch2/catch.hpp>

#include <ctime>

#include "platform/store/hub_store.hpp"
#include "tests/store/test_support.hpp"

using namespace sovdev;
using namespace sovdev::store;
using namespace sovdev::store::test;

TEST_CASE("the hub records when it heard an agent by its own clock, whatever the agent dates") {
  auto db = must(open_hub_database(":memory:"));
  FleetStatus fleet(db);
  const std::int64_t now = 1'800'000'000;
  const std::int64_t year_2100 = 4'102'444'800;
  CHECK(must(fleet.upsert({"edge-01", "edge", "lying", year_2100}, now)));
  // The lie does not shut out the agent's next honest report.
  CHECK(must(fleet.upsert({"edge-01", "edge", "honest", now + 10}, now + 10)));
  auto agents = must(fleet.list());
  REQUIRE(agents.size() == 1);
  CHECK(agents[0].status == "honest");
  CHECK(agents[0].seen_at == now + 10);

  // A last will replaces it and keeps what it replaced.
  AgentRecord will{"edge-01", "edge", "offline", now};
  will.replaces_newer = true;
  CHECK(must(fleet.upsert(will, now + 20)));
  agents = must(fleet.list());
  CHECK(agents[0].status == "offline");
  CHECK(agents[0].prior_status == "honest");
  CHECK(agents[0].seen_at == now + 20);

  // Without a clock given, the system's.
  CHECK(must(fleet.upsert({"edge-02", "edge", "s", year_2100})));
  agents = must(fleet.list());
  CHECK(agents[1].seen_at <= static_cast<std::int64_t>(std::time(nullptr)));
}
