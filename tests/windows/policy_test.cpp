// An agent's windows: its config's plus the catalog's that match its labels and id. (Unity
// builds put this file beside windows_test.cpp: its helpers have names of their own.)
#include "platform/windows/policy.hpp"

#include <catch2/catch.hpp>

using namespace sovdev;
using namespace std::chrono;

namespace {

pb::MaintenanceWindow hub_window(bool deny, const std::string& schedule,
                                 const std::string& duration, const std::string& selector = "") {
  pb::MaintenanceWindow w;
  w.set_deny(deny);
  w.set_schedule(schedule);
  w.set_duration(duration);
  w.set_zone("UTC");
  w.set_selector(selector);
  return w;
}

windows::sys_seconds wed_at(int hour, int minute = 0) {  // 2027-01-06 is a Wednesday
  return sys_days{year{2027} / month{1} / day{6}} + hours{hour} + minutes{minute};
}

}  // namespace

TEST_CASE("an agent keeps the catalog's windows whose selector matches it", "[windows][policy]") {
  pb::Catalog catalog;
  catalog.set_channel("edge");
  *catalog.add_windows() = hub_window(false, "0 2 * * *", "2h", "site=plant-7");
  *catalog.add_windows() = hub_window(false, "0 12 * * *", "1h", "site=lab");
  const rollout::Labels plant{{"site", "plant-7"}};
  auto set = windows::agent_windows({}, &catalog, plant, "edge-01");
  REQUIRE(set);
  CHECK(set->windows().size() == 1);
  CHECK(set->open_at(wed_at(3)));
  CHECK_FALSE(set->open_at(wed_at(12, 30)));
  REQUIRE(set->next_open(wed_at(5)));
  CHECK(*set->next_open(wed_at(5)) == wed_at(2) + days{1});
  // Matched by id too.
  *catalog.add_windows() = hub_window(true, "0 2 * * *", "30m", "id=edge-01");
  set = windows::agent_windows({}, &catalog, plant, "edge-01");
  REQUIRE(set);
  CHECK_FALSE(set->open_at(wed_at(2, 15)));
  CHECK(set->open_at(wed_at(2, 45)));
}

TEST_CASE("a deny window in the config wins over the hub's allow window", "[windows][policy]") {
  pb::Catalog catalog;
  catalog.set_channel("edge");
  *catalog.add_windows() = hub_window(false, "0 0 * * *", "1d");
  auto set = windows::agent_windows({hub_window(true, "0 8 * * 1-5", "10h")}, &catalog, {}, "a1");
  REQUIRE(set);
  CHECK(set->open_at(wed_at(7)));
  CHECK_FALSE(set->open_at(wed_at(9)));
  CHECK(set->open_at(wed_at(18, 1)));
}

TEST_CASE("a window the agent cannot read is an error, never skipped", "[windows][policy]") {
  pb::Catalog catalog;
  catalog.set_channel("edge");
  *catalog.add_windows() = hub_window(true, "0 25 * * *", "1h");
  auto set = windows::agent_windows({}, &catalog, {}, "a1");
  REQUIRE_FALSE(set);
  CHECK_THAT(set.error().message, Catch::Contains("catalog edge window 1"));
  CHECK_THAT(set.error().message, Catch::Contains("hour"));
  catalog.mutable_windows(0)->set_schedule("0 2 * * *");
  catalog.mutable_windows(0)->set_selector("site in (");
  CHECK_FALSE(windows::agent_windows({}, &catalog, {}, "a1"));
  auto bad_config =
      windows::agent_windows({hub_window(false, "0 2 * * *", "9d")}, nullptr, {}, "a1");
  REQUIRE_FALSE(bad_config);
  CHECK_THAT(bad_config.error().message, Catch::Contains("config window 1"));
  // No windows at all: always open.
  auto none = windows::agent_windows({}, nullptr, {}, "a1");
  REQUIRE(none);
  CHECK(none->open_at(wed_at(13)));
}
