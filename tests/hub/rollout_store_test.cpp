// hub.db's rollout tables (migration 006): one active rollout per stack, progress written back
// as the gates move it, holds, windows per channel, revocation serials that only grow, and the
// change counter serve polls, which every catalog-shaping write moves and nothing else does.
#include <catch2/catch.hpp>

#include <filesystem>

#include "platform/store/catalog_inputs.hpp"
#include "platform/store/hub_store.hpp"
#include "platform/store/rollout_store.hpp"

using namespace sovdev;
using namespace sovdev::store;

namespace {

struct TempDb {
  std::filesystem::path dir;
  Database db;
  TempDb()
      : dir(std::filesystem::temp_directory_path() /
            ("rollout_store_" + std::to_string(::getpid()) + "_" +
             std::to_string(reinterpret_cast<std::uintptr_t>(this)))),
        db(open()) {}
  ~TempDb() { std::filesystem::remove_all(dir); }
  Database open() {
    std::filesystem::create_directories(dir);
    auto opened = open_hub_database((dir / "hub.db").string());
    REQUIRE(opened);
    return std::move(*opened);
  }
};

RolloutRow row(const std::string& stack) {
  RolloutRow r;
  r.channel = "prod";
  r.stack = stack;
  r.version = 5;
  r.digest = std::string(32, 'n');
  r.base_version = 4;
  r.base_digest = std::string(32, 'b');
  r.waves = {{"canary", "site=lab", 10}, {"all", "", 100}};
  r.success_permille = 900;
  r.within_seconds = 1800;
  r.abort_permille = 100;
  r.wave_opened_at = 100;
  r.created_at = 100;
  r.updated_at = 100;
  return r;
}

std::int64_t changes(Database& db, const std::string& channel) {
  auto count = catalog_change_count(db, channel);
  REQUIRE(count);
  return *count;
}

}  // namespace

TEST_CASE("a rollout is stored with its waves and only one per stack is active") {
  TempDb t;
  Rollouts rollouts(t.db);
  auto id = rollouts.insert(row("kp"));
  REQUIRE(id);
  auto found = rollouts.find(*id);
  REQUIRE(found);
  REQUIRE(found->has_value());
  const RolloutRow& r = **found;
  CHECK(r.waves.size() == 2);
  CHECK(r.waves[0].selector == "site=lab");
  CHECK(r.waves[0].percent == 10);
  CHECK(r.abort_permille == 100);
  CHECK(r.state == RolloutState::running);
  CHECK_FALSE(r.gate_met_at.has_value());

  auto second = rollouts.insert(row("kp"));
  REQUIRE_FALSE(second);
  CHECK(second.error().code == Errc::conflict);
  CHECK(second.error().message.find("abort it first") != std::string::npos);
  CHECK(rollouts.insert(row("other")));  // another stack is free

  RolloutRow stopped = r;
  stopped.state = RolloutState::aborted;
  stopped.reason = "wave canary: 1 of 2 healthy after 30m, 90 % needed";
  stopped.gate_met_at = 150;
  REQUIRE(rollouts.update_progress(stopped));
  auto again = rollouts.find(*id);
  REQUIRE(again);
  CHECK((*again)->reason == stopped.reason);
  CHECK((*again)->gate_met_at == 150);
  // Aborted: a new rollout of the stack may start, and it is the newest.
  auto next = rollouts.insert(row("kp"));
  REQUIRE(next);
  auto newest = rollouts.newest("prod", "kp");
  REQUIRE(newest);
  CHECK((*newest)->id == *next);
  auto running = rollouts.running();
  REQUIRE(running);
  CHECK(running->size() == 2);
}

TEST_CASE("the change counter moves with what the catalog shows, not with the gates' timers") {
  TempDb t;
  Rollouts rollouts(t.db);
  const auto start = changes(t.db, "prod");
  auto id = rollouts.insert(row("kp"));
  REQUIRE(id);
  const auto after_insert = changes(t.db, "prod");
  CHECK(after_insert > start);
  CHECK(changes(t.db, "dev") == 0);

  RolloutRow r = **rollouts.find(*id);
  r.gate_met_at = 500;
  REQUIRE(rollouts.update_progress(r));
  CHECK(changes(t.db, "prod") == after_insert);  // a timer only
  r.current_wave = 1;
  REQUIRE(rollouts.update_progress(r));
  CHECK(changes(t.db, "prod") > after_insert);

  auto before = changes(t.db, "prod");
  StackHolds holds(t.db);
  REQUIRE(holds.set({"prod", "kp", 4, 1}));
  CHECK(changes(t.db, "prod") > before);
  before = changes(t.db, "prod");
  REQUIRE(holds.set({"prod", "kp", 4, 2}));  // the same version: no change
  CHECK(changes(t.db, "prod") == before);

  // A window for every channel moves every channel's count.
  HubWindows windows(t.db);
  const auto dev_before = changes(t.db, "dev");
  REQUIRE(windows.add({0, "", "site=lab", false, "0 2 * * *", "2h", "UTC", 1}));
  CHECK(changes(t.db, "dev") > dev_before);
  CHECK(changes(t.db, "prod") > before);
}

TEST_CASE("holds, windows per channel and revocation serials") {
  TempDb t;
  StackHolds holds(t.db);
  REQUIRE(holds.set({"prod", "kp", 4, 1}));
  REQUIRE(holds.set({"prod", "kp", 6, 2}));
  auto held = holds.get("prod", "kp");
  REQUIRE(held);
  CHECK((*held)->version == 6);
  CHECK(*holds.release("prod", "kp"));
  CHECK_FALSE(*holds.release("prod", "kp"));
  CHECK_FALSE(holds.get("prod", "kp")->has_value());

  HubWindows windows(t.db);
  auto all = windows.add({0, "", "", true, "0 8 * * 1-5", "9h", "Europe/Berlin", 1});
  auto prod = windows.add({0, "prod", "site=lab", false, "0 2 * * *", "2h", "UTC", 1});
  REQUIRE(windows.add({0, "dev", "", false, "0 2 * * *", "2h", "UTC", 1}));
  REQUIRE(all);
  REQUIRE(prod);
  auto for_prod = windows.for_channel("prod");
  REQUIRE(for_prod);
  REQUIRE(for_prod->size() == 2);
  CHECK((*for_prod)[0].deny);
  CHECK((*for_prod)[1].selector == "site=lab");
  CHECK(*windows.remove(*prod));
  CHECK(windows.for_channel("prod")->size() == 1);

  RevocationLists lists(t.db);
  REQUIRE(lists.put({"prod", 1, 10, "one"}));
  REQUIRE(lists.put({"prod", 2, 20, "two"}));
  auto stale = lists.put({"prod", 2, 30, "other"});
  REQUIRE_FALSE(stale);
  CHECK(stale.error().code == Errc::rollback);
  auto newest = lists.newest("prod");
  REQUIRE(newest);
  CHECK((*newest)->envelope == "two");
  CHECK_FALSE(lists.newest("dev")->has_value());
}
