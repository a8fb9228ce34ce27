// Channels: a bundle of a channel the agent does not follow is never imported, never applied
// and never sets the rollback floor of the channel it does follow.
#include <catch2/catch.hpp>

#include <filesystem>

#include "agent/trust_pin.hpp"
#include "platform/fs/bundle_reader.hpp"
#include "platform/store/agent_cache.hpp"
#include "tests/sync/bundle_digest.hpp"
#include "tests/sync/sync_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

// Workspace::build fixes the channel at edge; the case needs a dev bundle too.
std::string build_bundle(const Workspace& ws, const std::string& channel, uint64_t version) {
  const std::string out = ws.dir / (channel + "-v" + std::to_string(version) + ".sdb");
  auto built = run({hub_binary(), "build", edge_stack(version % 2 == 0 ? "v2" : "v1"), "--stack",
                    "kp", "--channel", channel, "--version", std::to_string(version), "--arch",
                    "amd64,arm64", "--key", ws.key("pub1"), "--out", out, "--quiet"});
  INFO(built.err);
  REQUIRE(built.exit_code == 0);
  return out;
}

size_t files_in(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) n++;
  }
  return n;
}

}  // namespace

TEST_CASE("import refuses a bundle of a channel the agent does not follow, and needs to know it",
          "[sync][channel]") {
  Fleet fleet;
  const std::string config = fleet.agent_config("agent-a");
  const std::string dev10 = build_bundle(fleet.ws, "dev", 10);
  const std::string state = fleet.agent_state("agent-a");

  auto by_config = run({agent_binary(), "import", "--config", config, dev10});
  INFO(by_config.err);
  CHECK(by_config.exit_code == 9);
  CHECK_THAT(by_config.err, Catch::Contains("is for channel 'dev', this agent follows 'edge'"));

  auto by_channel = run({agent_binary(), "import", "--state", state, "--trust", fleet.ws.trust,
                         "--channel", "edge", dev10});
  CHECK(by_channel.exit_code == 9);

  auto unscoped =
      run({agent_binary(), "import", "--state", state, "--trust", fleet.ws.trust, dev10});
  CHECK(unscoped.exit_code == 2);
  CHECK_THAT(unscoped.err, Catch::Contains("--config") && Catch::Contains("--channel"));

  auto db = store::open_agent_database(state + "/agent.db");
  REQUIRE(db);
  auto held = store::BundleCache(*db).list();
  REQUIRE(held);
  CHECK(held->empty());

  // Its own channel goes in by --config alone (state, trust root and channel from the file).
  auto edge1 =
      run({agent_binary(), "import", "--config", config, build_bundle(fleet.ws, "edge", 1)});
  INFO(edge1.err);
  CHECK(edge1.exit_code == 0);
}

TEST_CASE(
    "a dev v10 bundle in an edge agent's cache is not applied and does not refuse edge v3 as a "
    "rollback",
    "[sync][channel]") {
  Fleet fleet;
  const std::string config = fleet.agent_config("agent-a");
  const std::string state = fleet.agent_state("agent-a");
  const std::string target = fleet.agent_dir("agent-a");
  const std::string dev10 = build_bundle(fleet.ws, "dev", 10);

  // The state: dev v10 imported (as the old import allowed) and applied, so it is the
  // stack's last good bundle.
  auto imported = run({agent_binary(), "import", "--state", state, "--trust", fleet.ws.trust,
                       "--channel", "dev", dev10});
  INFO(imported.err);
  REQUIRE(imported.exit_code == 0);
  {
    auto db = store::open_agent_database(state + "/agent.db");
    REQUIRE(db);
    REQUIRE(store::ApplyLog(*db).set_last_good("kp", 10, bundle_digest(dev10, fleet.ws.trust)));
  }

  // Offline apply: the dev bundle is forgotten, and nothing of it reaches the edge folder.
  auto applied = run({agent_binary(), "apply", "--config", config});
  INFO(applied.out << applied.err);
  REQUIRE(applied.exit_code == 0);
  CHECK_THAT(applied.out, Catch::Contains("forgot cached kp@10 (channel dev)"));
  CHECK(files_in(target) == 0);

  // Edge v3 from the hub is installed, not refused as a rollback below v10.
  const std::string edge3 = build_bundle(fleet.ws, "edge", 3);
  REQUIRE(fleet.publish(edge3).exit_code == 0);
  auto hub = fleet.serve("hub.log");
  auto synced = fleet.sync_once("agent-a");
  INFO("agent: " << synced.out << synced.err);
  REQUIRE(synced.exit_code == 0);
  CHECK_THAT(synced.err, !Catch::Contains("rollback refused"));
  CHECK(applied_objects(target) == bundle_objects(edge3, fleet.ws.trust));
}
