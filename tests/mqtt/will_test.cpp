// The last will: published, retained, when a client dies without saying goodbye; not when it
// disconnects cleanly.
#include <catch2/catch.hpp>

#include "tests/mqtt/fixture.hpp"
#include "tests/support/process.hpp"

namespace sovdev::mqtt::testing {
namespace {

const std::string kStatus = "sovdev/v1/status/agent-a";

TEST_CASE("a killed agent's last will is published and retained", "[mqtt]") {
  auto broker = Broker::start(with(kAcl));
  auto hub = connected(user_options(*broker, "sovdev-hub"), *broker);
  subscribed(*hub, "sovdev/v1/status/+", *broker);

  sovdev::testing::TempDir dir;
  sovdev::testing::Child agent(
      {SOVDEV_MQTT_WILL_CHILD, broker->url(), "agent-a", "secret-a", "agent-a-child", kStatus},
      dir / "child.log");
  auto online = wait_message(*hub, kStatus, kWait);
  if (!online)
    FAIL("the child never said online\n" << sovdev::testing::read_text(dir / "child.log"));
  CHECK(online->payload == "online");

  agent.kill_hard();
  agent.wait();
  auto offline = wait_message(*hub, kStatus, kWait);
  REQUIRE(offline);
  CHECK(offline->payload == "offline");

  // Retained: a hub that starts later still learns the agent is offline.
  auto later = connected(user_options(*broker, "sovdev-hub"), *broker);
  subscribed(*later, "sovdev/v1/status/+", *broker);
  auto retained = wait_message(*later, kStatus, kWait);
  REQUIRE(retained);
  CHECK(retained->payload == "offline");
  CHECK(retained->retained);
}

TEST_CASE("a clean disconnect does not publish the last will", "[mqtt]") {
  auto broker = Broker::start();
  auto hub = connected(user_options(*broker, "sovdev-hub"), *broker);
  subscribed(*hub, "sovdev/v1/status/+", *broker);

  Options options = user_options(*broker, "agent-a");
  options.will = message(kStatus, "offline", true);
  auto agent = connected(options, *broker);
  published(*agent, message(kStatus, "stopping", true), *broker);
  REQUIRE(agent->disconnect());
  agent.reset();
  REQUIRE(sovdev::testing::wait_until(
      [&] {
        return broker->log().find("Client " + options.client_id + " disconnected") !=
               std::string::npos;
      },
      kWait));

  // The broker has handled the goodbye: a will would now come before the hub's marker.
  published(*hub, message("sovdev/v1/status/marker", "marker"), *broker);
  std::vector<Message> seen;
  REQUIRE(wait_message(*hub, "sovdev/v1/status/marker", kWait, &seen));
  for (const auto& m : seen) CHECK(m.payload != "offline");
  CHECK(seen.front().payload == "stopping");
}

}  // namespace
}  // namespace sovdev::mqtt::testing
