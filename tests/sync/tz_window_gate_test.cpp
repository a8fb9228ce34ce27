// The gate the running agent uses: its config's windows and the catalog's, evaluated by
// platform/windows with the agent's clock.
#include "agent/rollout/tz_window_gate.hpp"

#include <catch2/catch.hpp>

using namespace sovdev;

namespace {

constexpr int64_t kWed0 = 1799193600;  // 2027-01-06 00:00 UTC, a Wednesday

agent::WindowConfig own_window(const std::string& kind, const std::string& schedule,
                               const std::string& duration) {
  agent::WindowConfig w;
  w.kind = kind;
  w.schedule = schedule;
  w.duration = duration;
  w.zone = "UTC";
  return w;
}

pb::MaintenanceWindow catalog_window(bool deny, const std::string& schedule,
                                     const std::string& duration) {
  pb::MaintenanceWindow w;
  w.set_deny(deny);
  w.set_schedule(schedule);
  w.set_duration(duration);
  w.set_zone("UTC");
  return w;
}

}  // namespace

TEST_CASE("the agent's gate opens with its own allow window and says when it opens next",
          "[rollout][windows]") {
  auto gate = agent::rollout::TzWindowGate::make({own_window("allow", "0 2 * * *", "2h")});
  REQUIRE(gate);
  const auto inside = (*gate)->at(kWed0 + 3 * 3600, {});
  CHECK(inside.open);
  const auto outside = (*gate)->at(kWed0 + 5 * 3600, {});
  CHECK_FALSE(outside.open);
  CHECK(outside.opens_at == kWed0 + 86400 + 2 * 3600);
}

TEST_CASE("a deny window of the catalog closes the agent's own allow window",
          "[rollout][windows]") {
  auto gate = agent::rollout::TzWindowGate::make({own_window("allow", "0 0 * * *", "1d")});
  REQUIRE(gate);
  CHECK((*gate)->at(kWed0 + 9 * 3600, {}).open);
  const auto denied = (*gate)->at(kWed0 + 9 * 3600, {catalog_window(true, "0 8 * * *", "2h")});
  CHECK_FALSE(denied.open);
  CHECK(denied.opens_at == kWed0 + 10 * 3600);
  // An agent without windows of its own still keeps the catalog's.
  auto bare = agent::rollout::TzWindowGate::make({});
  REQUIRE(bare);
  CHECK_FALSE((*bare)->at(kWed0 + 9 * 3600, {catalog_window(true, "0 8 * * *", "2h")}).open);
  CHECK((*bare)->at(kWed0 + 9 * 3600, {}).open);
}

TEST_CASE("a catalog window the agent cannot read closes the gate, opening unknown",
          "[rollout][windows]") {
  auto gate = agent::rollout::TzWindowGate::make({});
  REQUIRE(gate);
  const auto v = (*gate)->at(kWed0, {catalog_window(true, "0 2 * * * *", "1h")});
  CHECK_FALSE(v.open);
  CHECK(v.opens_at == 0);
  CHECK_FALSE(agent::rollout::TzWindowGate::make({own_window("deny", "0 2 * *", "1h")}));
}
