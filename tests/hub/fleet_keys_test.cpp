// hub/secrets/fleet_keys: enrolled agents and their channels' epoch keys.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "hub/secrets/fleet_keys.hpp"
#include "platform/store/hub_store.hpp"
#include "tests/hub/fleet_fixture.hpp"
#include "tests/support/process.hpp"

using namespace sovdev;
using namespace sovdev::hub::secrets;
using sovdev::testing::TempDir;

using namespace sovdev::testing::fleet;

TEST_CASE("adding agents shares the channel's epoch; removing or rotating one starts the next",
          "[secrets]") {
  Hub hub;
  auto& [dir, store_key, db, keys] = hub;
  Site a = site("edge-01", "edge"), b = site("edge-02", "edge"), c = site("lab-01", "lab");

  CHECK(*keys.add(a.enrolled, 10) == 1);  // the channel's first agent makes epoch 1
  CHECK(*keys.add(b.enrolled, 11) == 1);
  CHECK(*keys.add(c.enrolled, 12) == 1);  // another channel, its own epoch 1
  const auto first = keys.current("edge");
  REQUIRE(first);
  REQUIRE(*first);
  const std::string epoch1((*first)->key.view());
  CHECK((*first)->key_id == seal::epoch_key_id("edge", 1, (*first)->key));
  CHECK(opened_by(keys, "edge", 1, a.key) == epoch1);
  CHECK(opened_by(keys, "edge", 1, b.key) == epoch1);
  CHECK(opened_by(keys, "edge", 1, c.key).empty());  // not of the channel: no grant
  CHECK(std::string((*keys.current("lab"))->key.view()) != epoch1);

  // Removing edge-01: epoch 2, which edge-01 cannot open.
  CHECK(*keys.remove("edge-01", 20) == 2);
  const std::string epoch2((*keys.current("edge"))->key.view());
  CHECK(epoch2 != epoch1);
  CHECK(opened_by(keys, "edge", 2, b.key) == epoch2);
  CHECK(opened_by(keys, "edge", 2, a.key).empty());

  // Rotating edge-02's key: epoch 3, for the new key only.
  const seal::AgentKey b_new = seal::generate_agent_key("edge-02");
  CHECK(*keys.rotate("edge-02", b_new.public_key, 30) == 3);
  const std::string epoch3((*keys.current("edge"))->key.view());
  CHECK(opened_by(keys, "edge", 3, b_new) == epoch3);
  CHECK(opened_by(keys, "edge", 3, b.key).empty());

  const auto epochs = keys.epochs("edge");
  REQUIRE(epochs);
  REQUIRE(epochs->size() == 3);
  CHECK((*epochs)[0].reason == "first agent edge-01");
  CHECK((*epochs)[0].grants == 2);
  CHECK((*epochs)[1].reason == "removed edge-01");
  CHECK((*epochs)[2].grants == 1);
  const auto listed = keys.list();
  REQUIRE(listed);
  REQUIRE(listed->size() == 2);
  CHECK((*listed)[0].agent_id == "edge-02");
  CHECK((*listed)[0].rotated_at == 30);
  CHECK((*listed)[1].labels.at("site") == "lab-01");

  // No epoch key is in hub.db in the clear.
  const std::string stored = sovdev::testing::read_database_files(dir / "hub.db");
  for (const auto& key : {epoch1, epoch2, epoch3}) CHECK(stored.find(key) == std::string::npos);
}

TEST_CASE("enrolment refuses duplicates, unknown agents, bad ids and a missing store key",
          "[secrets]") {
  Hub hub;
  auto& [dir, store_key, db, keys] = hub;
  Site a = site("edge-01", "edge");
  REQUIRE(keys.add(a.enrolled, 1));
  auto twice = keys.add(a.enrolled, 2);
  REQUIRE_FALSE(twice);
  CHECK(twice.error().code == Errc::conflict);
  CHECK_THAT(twice.error().message, Catch::Contains("agents rotate"));
  CHECK(keys.remove("edge-09", 3).error().code == Errc::not_found);
  Site bad = site("edge/01", "edge");
  CHECK(keys.add(bad.enrolled, 4).error().code == Errc::usage);

  const StoreKey none;
  FleetKeys reader(db, none);
  CHECK(reader.remove("edge-01", 5).error().code == Errc::usage);
  CHECK(reader.list()->size() == 1);  // reading needs no key
  CHECK(reader.grant("edge", 1, "edge-01")->has_value());

  // Another store key cannot open the channel's epoch, and says so.
  REQUIRE(create_store_key(dir / "other.key"));
  const StoreKey other = *load_store_key(dir / "other.key");
  auto wrong = FleetKeys(db, other).current("edge");
  REQUIRE_FALSE(wrong);
  CHECK_THAT(wrong.error().message, Catch::Contains("another secret-store key"));
}
