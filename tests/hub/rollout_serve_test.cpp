// A running `sovdev-hub serve` and the rollout commands (docs/design-rollouts.md): the catalog it
// signs lists the rollout within a tick of `rollout start`, opens the next wave once the
// canary reports the version healthy, and a change made while no hub ran reaches the catalog
// when the hub starts again (it goes on from hub.db).
#include <catch2/catch.hpp>
#include <ctime>

#include "platform/store/hub_store.hpp"
#include "sovdev.pb.h"
#include "tests/sync/bundle_digest.hpp"
#include "tests/sync/sync_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

// The catalog serve last signed for the channel, as hub.db holds it (empty before the first).
pb::Catalog signed_catalog(const std::string& db_path) {
  pb::Catalog out;
  auto db = store::open_hub_reader(db_path);
  if (!db) return out;
  auto held = store::HubCatalogs(*db).catalog("edge");
  if (!held || !*held) return out;
  pb::Signed envelope;
  if (envelope.ParseFromString((*held)->envelope)) (void)out.ParseFromString(envelope.body());
  return out;
}

pb::AgentStatus status_of(const std::string& agent, const std::string& digest) {
  pb::AgentStatus st;
  st.set_schema(1);
  st.set_agent_id(agent);
  st.set_channel("edge");
  st.set_state("healthy");
  st.set_applied_digest(digest);
  st.set_updated_at(static_cast<int64_t>(std::time(nullptr)));
  return st;
}

int admitted_waves(const pb::Catalog& c) {
  if (c.entries_size() != 1 || !c.entries(0).has_rollout()) return 0;
  return c.entries(0).rollout().admitted_size();
}

}  // namespace

TEST_CASE("serve lists a rollout within a tick, opens its waves and goes on after a restart",
          "[hub][rollout]") {
  Fleet fleet;
  const std::string v1 = fleet.ws.dir / "kp1.sdb", v2 = fleet.ws.dir / "kp2.sdb";
  REQUIRE(fleet.ws.build(edge_stack("v1"), v1, 1).exit_code == 0);
  REQUIRE(fleet.publish(v1).exit_code == 0);
  REQUIRE(fleet.ws.build(edge_stack("v2"), v2, 2, {"--hold", "--db", fleet.hub_db}).exit_code == 0);
  REQUIRE(fleet.publish(v2).exit_code == 0);
  // agent-b runs version 1: a member of the last wave, so the rollout stops there.
  auto agent_b = fleet.client("agent-b", "agent-b-status");
  mqtt::Message mb;
  mb.topic = "sovdev/v1/status/agent-b";
  mb.payload = status_of("agent-b", bundle_digest(v1, fleet.ws.trust)).SerializeAsString();
  mb.retained = true;
  REQUIRE(agent_b->publish(mb));
  auto hub = fleet.serve("hub.log");
  REQUIRE(wait_until(
      [&] {
        auto db = store::open_hub_reader(fleet.hub_db);
        if (!db) return false;
        auto agents = store::FleetStatus(*db).list();
        return agents && agents->size() == 1;
      },
      std::chrono::seconds(20)));

  auto started = run({hub_binary(),
                      "rollout",
                      "start",
                      "--db",
                      fleet.hub_db,
                      "--channel",
                      "edge",
                      "--stack",
                      "kp",
                      "--version",
                      "2",
                      "--wave",
                      "canary:id=agent-a",
                      "--wave",
                      "all:*",
                      "--success",
                      "100%",
                      "--within",
                      "30m",
                      "--abort-failed",
                      "1"});
  INFO(started.err);
  REQUIRE(started.exit_code == 0);
  pb::Catalog c;
  const bool listed = wait_until(
      [&] {
        c = signed_catalog(fleet.hub_db);
        return admitted_waves(c) == 1;
      },
      std::chrono::seconds(20));
  INFO("hub log: " << read_text(fleet.ws.dir / "hub.log"));
  REQUIRE(listed);
  CHECK(c.entries(0).version() == 1);  // held: everyone else stays on 1
  CHECK(c.entries(0).rollout().version() == 2);

  // The canary reports version 2 healthy: the next wave opens.
  auto agent = fleet.client("agent-a", "agent-a-status");
  mqtt::Message m;
  m.topic = "sovdev/v1/status/agent-a";
  m.payload = status_of("agent-a", bundle_digest(v2, fleet.ws.trust)).SerializeAsString();
  REQUIRE(agent->publish(m));
  REQUIRE(wait_until([&] { return admitted_waves(signed_catalog(fleet.hub_db)) == 2; },
                     std::chrono::seconds(20)));

  // Paused while no hub runs: the restarted hub signs it from hub.db.
  hub.reset();
  REQUIRE(run({hub_binary(), "rollout", "pause", "1", "--db", fleet.hub_db}).exit_code == 0);
  hub = fleet.serve("hub2.log");
  const bool paused = wait_until(
      [&] {
        c = signed_catalog(fleet.hub_db);
        return admitted_waves(c) == 2 &&
               c.entries(0).rollout().state() == pb::CatalogRollout::PAUSED;
      },
      std::chrono::seconds(20));
  INFO("hub2 log: " << read_text(fleet.ws.dir / "hub2.log"));
  CHECK(paused);
}
