#include <catch2/catch.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "bundles/payload.hpp"
#include "bundles/trust.hpp"
#include "platform/fs/bundle_reader.hpp"
#include "tests/sync/sync_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

TEST_CASE("a hub publishes and serves a bundle and an agent syncs it into its dir target",
          "[sync]") {
  Fleet fleet;
  const std::string file = fleet.ws.dir / "kp1.sdb";
  REQUIRE(fleet.ws.build(edge_stack("v1"), file, 1).exit_code == 0);
  auto published = fleet.publish(file);
  INFO(published.err);
  REQUIRE(published.exit_code == 0);
  auto hub = fleet.serve("hub.log");
  fleet.agent_config("agent-a");

  auto synced = fleet.sync_once("agent-a");
  INFO("agent: " << synced.out << synced.err << "\nhub: " << read_text(fleet.ws.dir / "hub.log"));
  REQUIRE(synced.exit_code == 0);
  CHECK_THAT(synced.out, Catch::Contains("healthy"));
  CHECK(applied_objects(fleet.agent_dir("agent-a")) == bundle_objects(file, fleet.ws.trust));

  // Up to date: a second pass fetches nothing and exits 0.
  auto again = fleet.sync_once("agent-a");
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.out, Catch::Contains(" 0 bytes received"));

  // The hub recorded the agent's retained status.
  INFO("hub log: " << read_text(fleet.ws.dir / "hub.log"));
  REQUIRE(wait_until(
      [&] {
        auto st = run({hub_binary(), "status", "--db", fleet.hub_db, "--json"});
        return st.out.find("\"agent-a\"") != std::string::npos &&
               st.out.find("\"applied_version\": 1") != std::string::npos;
      },
      std::chrono::seconds(60)));
  auto table = run({hub_binary(), "status", "--db", fleet.hub_db});
  CHECK_THAT(table.out, Catch::Contains("agent-a"));
}

TEST_CASE("an agent offline while five versions are published fetches only the newest, as a delta",
          "[sync][delta]") {
  Fleet fleet;
  REQUIRE(fleet.ws.build(edge_stack("v1"), fleet.ws.dir / "v1.sdb", 1).exit_code == 0);
  REQUIRE(fleet.publish(fleet.ws.dir / "v1.sdb").exit_code == 0);
  auto hub = fleet.serve("hub.log");
  fleet.agent_config("agent-a");
  REQUIRE(fleet.sync_once("agent-a").exit_code == 0);

  // Offline: five versions, each a small edit of the stack (the last is the real upgrade).
  for (uint64_t v = 2; v <= 6; v++) {
    const std::string src = v == 6 ? edge_stack("v2") : edge_stack("v1");
    const std::string file = fleet.ws.dir / ("v" + std::to_string(v) + ".sdb");
    REQUIRE(fleet.ws.build(src, file, v).exit_code == 0);
    REQUIRE(fleet.publish_live(file).exit_code == 0);
  }
  WireCounter wire(fleet, "sovdev/v1/agent/agent-a/data");
  WireCounter blob(fleet, "sovdev/v1/blob/+");  // delta chunks come there
  auto synced = fleet.sync_once("agent-a");
  INFO(synced.out << synced.err << read_text(fleet.ws.dir / "hub.log"));
  REQUIRE(synced.exit_code == 0);
  CHECK_THAT(synced.out, Catch::Contains("v6"));
  const uint64_t on_wire = wire.bytes() + blob.bytes();
  const uint64_t full = std::filesystem::file_size(fleet.ws.dir / "v6.sdb");
  WARN("catch-up to v6 moved " << on_wire << " bytes on the wire; the full bundle is " << full);
  CHECK(on_wire < full / 4);
  CHECK(applied_objects(fleet.agent_dir("agent-a")) ==
        bundle_objects(fleet.ws.dir / "v6.sdb", fleet.ws.trust));
  // Only the newest was fetched: versions 2 to 5 never reached the cache.
  auto status = run({agent_binary(), "status", "--state", fleet.agent_state("agent-a"), "--json"});
  CHECK_THAT(status.out, !Catch::Contains("\"version\": 3"));
  CHECK_THAT(status.out, Catch::Contains("\"version\": 6"));
}
