// The agent's MQTT client bounds each topic it hears: a message larger than its kind allows is
// dropped on arrival, counted, and the count reaches the agent's published status, while the
// agent goes on syncing.
#include <catch2/catch.hpp>

#include <string>

#include "sovdev.pb.h"
#include "tests/sync/sync_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

// The newest status the agent published, as the hub would read it.
class DropsStatusWatch {
 public:
  DropsStatusWatch(const Fleet& fleet, const std::string& agent)
      : client_(fleet.client("sovdev-hub", "status-watch")) {
    REQUIRE(client_->subscribe("sovdev/v1/status/" + agent, 1));
  }
  const pb::AgentStatus& latest() {
    while (auto e = client_->next(std::chrono::milliseconds(20))) {
      if (e->kind != mqtt::Event::Kind::message) continue;
      pb::AgentStatus s;
      if (s.ParseFromString(e->message.payload.str())) latest_ = s;
    }
    return latest_;
  }

 private:
  std::unique_ptr<mqtt::Client> client_;
  pb::AgentStatus latest_;
};

}  // namespace

TEST_CASE(
    "a flood of oversize messages on the agent's topics is dropped on arrival, reported in "
    "its status, and the agent keeps syncing",
    "[sync][oversize]") {
  Fleet fleet;
  // Noise stacks rather than edge_stack(): GCC 12 warns (a false -Warray-bounds) where that
  // inlines here.
  write_noise_stack(fleet.ws.dir / "v1", 1, 3);
  write_noise_stack(fleet.ws.dir / "v2", 1, 4);
  REQUIRE(fleet.ws.build(fleet.ws.dir / "v1", fleet.ws.dir / "v1.sdb", 1).exit_code == 0);
  REQUIRE(fleet.publish(fleet.ws.dir / "v1.sdb").exit_code == 0);
  auto hub = fleet.serve("hub.log");
  fleet.agent_config("agent-a");
  DropsStatusWatch watch(fleet, "agent-a");
  auto agent = fleet.run_agent("agent-a", "agent-a.log");
  const auto log = [&] { return read_text(fleet.ws.dir / "agent-a.log"); };
  REQUIRE(
      wait_until([&] { return watch.latest().applied_version() == 1; }, std::chrono::seconds(60)));

  // Under the 1.15 MiB packet size the agent takes from the broker, over what a data message
  // (a chunk or a manifest with its framing, 1 MiB + 4 KiB) or a catalog (64 KiB) can be: before
  // the limits, each was queued whole and parsed (and counted as rejected).
  auto evil = fleet.client("sovdev-hub", "evil");
  constexpr int kData = 24;
  constexpr int kCatalogs = 8;
  int sent = 0;
  for (int i = 0; i < kData + kCatalogs; i++) {
    mqtt::Message m;
    m.topic = i < kData ? "sovdev/v1/agent/agent-a/data" : "sovdev/v1/catalog/edge";
    m.payload = std::string(i < kData ? 1024 * 1024 + 64 * 1024 : 100 * 1024, 'x');
    const bool ok =
        wait_until([&] { return static_cast<bool>(evil->publish(m)); }, std::chrono::seconds(10));
    sent += ok ? 1 : 0;
  }
  REQUIRE(sent == kData + kCatalogs);
  const bool reported =
      wait_until([&] { return watch.latest().oversize_messages() >= uint64_t{kData + kCatalogs}; },
                 std::chrono::seconds(40));
  const pb::AgentStatus flooded = watch.latest();
  WARN("status after the flood: " << flooded.oversize_messages() << " oversize, "
                                  << flooded.dropped_messages() << " dropped, "
                                  << flooded.rejected_messages() << " rejected");
  INFO(log());
  CHECK(reported);
  CHECK(flooded.oversize_messages() == uint64_t{kData + kCatalogs});
  CHECK(flooded.rejected_messages() == 0);  // none reached the parser
  CHECK_THAT(log(), Catch::Contains("messages dropped on arrival for their size"));

  // Still syncing: the next version arrives and is applied.
  REQUIRE(fleet.ws.build(fleet.ws.dir / "v2", fleet.ws.dir / "v2.sdb", 2).exit_code == 0);
  REQUIRE(fleet.publish_live(fleet.ws.dir / "v2.sdb").exit_code == 0);
  CHECK(
      wait_until([&] { return watch.latest().applied_version() == 2; }, std::chrono::seconds(60)));
  CHECK(applied_objects(fleet.agent_dir("agent-a")) ==
        bundle_objects(fleet.ws.dir / "v2.sdb", fleet.ws.trust));
  REQUIRE(agent->running());
}
