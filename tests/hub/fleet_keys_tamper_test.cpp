// hub/secrets/fleet_keys against a taken `serve`: it may write hub.db but holds no store key, so
// an agent or epoch row it changed fails its MAC and nothing is sealed to it or built with it.
// Also: rotate keeps the agent's older epochs open to its new key; ids and channels follow the
// wire's rules.
#include <catch2/catch.hpp>
#include <string>

#include "hub/secrets/fleet_keys.hpp"
#include "platform/store/hub_store.hpp"
#include "tests/hub/fleet_fixture.hpp"
#include "tests/support/process.hpp"

using namespace sovdev;
using namespace sovdev::hub::secrets;
using sovdev::testing::TempDir;
namespace fleet = sovdev::testing::fleet;
using fleet::opened_by;
using fleet::site;
using fleet::Site;

namespace {

struct TamperHub : fleet::Hub {
  // What a taken `serve` can do: write hub.db directly.
  void tamper(const std::string& sql) { REQUIRE(db.exec(sql)); }
  std::string hex(const std::string& bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) out += {digits[c >> 4], digits[c & 15]};
    return out;
  }
  uint64_t epochs(const std::string& channel) { return keys.epochs(channel)->size(); }
};

}  // namespace

TEST_CASE("an agent key swapped in hub.db by the serving hub gets no epoch key sealed to it",
          "[secrets]") {
  TamperHub hub;
  Site a = site("edge-01", "edge"), b = site("edge-02", "edge"), c = site("edge-03", "edge");
  const seal::AgentKey attacker = seal::generate_agent_key("edge-02");
  REQUIRE(hub.keys.add(a.enrolled, 1));
  REQUIRE(hub.keys.add(b.enrolled, 2));
  hub.tamper("UPDATE enrolled_agents SET public_key = x'" + hub.hex(attacker.public_key) +
             "' WHERE agent_id = 'edge-02'");

  // Each change that would seal the next epoch to edge-02's row is refused whole.
  for (auto refused : {hub.keys.remove("edge-01", 3),
                       hub.keys.rotate("edge-01", seal::generate_agent_key("x").public_key, 4),
                       hub.keys.rotate("edge-02", attacker.public_key, 5)}) {
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == Errc::signature);
    CHECK_THAT(refused.error().message,
               Catch::Contains("agent edge-02's row in hub.db was changed outside sovdev-hub "
                               "agents (its key no longer matches its MAC)") &&
                   Catch::Contains("agents remove edge-02"));
  }
  CHECK(hub.epochs("edge") == 1);
  const auto listed = hub.keys.list();  // edge-01 is still there: the transaction rolled back
  REQUIRE(listed->size() == 2);
  CHECK(listed->at(0).row == RowCheck::verified);
  CHECK(listed->at(1).row == RowCheck::changed);
  const StoreKey none;
  CHECK(FleetKeys(hub.db, none).list()->at(1).row == RowCheck::not_checked);
  CHECK(opened_by(hub.keys, "edge", 2, attacker).empty());

  // A row the serving hub added with its own key, with or without a MAC copied from another
  // row, is refused the same way.
  hub.tamper("UPDATE enrolled_agents SET public_key = x'" + hub.hex(b.key.public_key) +
             "' WHERE agent_id = 'edge-02'");
  REQUIRE(hub.keys.add(c.enrolled, 6));
  hub.tamper(
      "INSERT INTO enrolled_agents (agent_id, channel, public_key, labels, added_at, "
      "row_mac) SELECT 'evil', channel, x'" +
      hub.hex(attacker.public_key) +
      "', labels, 7, row_mac FROM enrolled_agents WHERE agent_id = 'edge-03'");
  auto with_copied_mac = hub.keys.remove("edge-01", 8);
  REQUIRE_FALSE(with_copied_mac);
  CHECK_THAT(with_copied_mac.error().message, Catch::Contains("agent evil's row"));
  hub.tamper("UPDATE enrolled_agents SET row_mac = NULL WHERE agent_id = 'evil'");
  auto without_mac = hub.keys.remove("edge-01", 9);
  REQUIRE_FALSE(without_mac);
  CHECK_THAT(without_mac.error().message, Catch::Contains("agent evil's row in hub.db has no MAC"));

  // The operator removes the planted row (no sealing to it); then the change goes through.
  REQUIRE(hub.keys.remove("evil", 10));
  REQUIRE(hub.keys.remove("edge-01", 11));
  CHECK(opened_by(hub.keys, "edge", hub.epochs("edge"), b.key) ==
        std::string((*hub.keys.current("edge"))->key.view()));
}

TEST_CASE("rows from before the MAC are unverified until the agent is enrolled again",
          "[secrets]") {
  TamperHub hub;
  Site a = site("edge-01", "edge"), b = site("edge-02", "edge");
  REQUIRE(hub.keys.add(a.enrolled, 1));
  REQUIRE(hub.keys.add(b.enrolled, 2));
  // What migration 005 leaves: no MAC on any row.
  hub.tamper("UPDATE enrolled_agents SET row_mac = NULL");
  hub.tamper("UPDATE channel_epochs SET row_mac = NULL");
  const auto listed = hub.keys.list();
  REQUIRE(listed);
  for (const auto& agent : *listed) CHECK(agent.row == RowCheck::no_mac);

  auto refused = hub.keys.remove("edge-01", 3);
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error().message,
             Catch::Contains("agent edge-02's row in hub.db has no MAC") &&
                 Catch::Contains("agents add edge-02 --pub FILE --channel edge"));
  // Enrolled again from its key file: the row gets its MAC and the change goes through. An
  // epoch from before the MAC opens (its sealed key and key id check) and gets its MAC.
  CHECK(*hub.keys.add(b.enrolled, 4) == 1);
  CHECK(hub.keys.list()->at(1).row == RowCheck::verified);
  CHECK(*hub.keys.remove("edge-01", 5) == 2);
  hub.tamper("UPDATE channel_epochs SET row_mac = NULL");  // build opens it: the MAC comes back
  REQUIRE(hub.keys.current("edge"));
  auto macs = hub.db.prepare("SELECT count(*) FROM channel_epochs WHERE row_mac IS NOT NULL");
  REQUIRE(macs);
  REQUIRE(*macs->step());
  CHECK(macs->int64(0) == 1);  // the newest, which current() opened
  // A verified agent is still refused a second enrolment.
  CHECK(hub.keys.add(b.enrolled, 6).error().code == Errc::conflict);
}

TEST_CASE("an epoch row swapped in from another channel is refused by build's current()",
          "[secrets]") {
  TamperHub hub;
  REQUIRE(hub.keys.add(site("edge-01", "edge").enrolled, 1));
  REQUIRE(hub.keys.add(site("lab-01", "lab").enrolled, 2));
  hub.tamper(
      "UPDATE channel_epochs SET (key_id, sealed_key, row_mac) = (SELECT key_id, sealed_key, "
      "row_mac FROM channel_epochs WHERE channel = 'edge') WHERE channel = 'lab'");
  auto swapped = hub.keys.current("lab");
  REQUIRE_FALSE(swapped);
  CHECK(swapped.error().code == Errc::signature);
  CHECK_THAT(swapped.error().message,
             Catch::Contains("epoch 1 of channel lab's row in hub.db was changed outside"));
  CHECK(hub.keys.current("edge"));
}

TEST_CASE("rotate re-seals the older epochs the agent held to its new key", "[secrets]") {
  TamperHub hub;
  Site a = site("edge-01", "edge"), b = site("edge-02", "edge");
  REQUIRE(hub.keys.add(a.enrolled, 1));
  REQUIRE(hub.keys.add(b.enrolled, 2));
  const std::string epoch1((*hub.keys.current("edge"))->key.view());
  REQUIRE(*hub.keys.remove("edge-01", 3) == 2);
  const std::string epoch2((*hub.keys.current("edge"))->key.view());

  // `sovdev-agent keygen --force` on edge-02, then rotate.
  const seal::AgentKey b_new = seal::generate_agent_key("edge-02");
  REQUIRE(*hub.keys.rotate("edge-02", b_new.public_key, 4) == 3);
  CHECK(opened_by(hub.keys, "edge", 1, b_new) == epoch1);
  CHECK(opened_by(hub.keys, "edge", 2, b_new) == epoch2);
  CHECK(opened_by(hub.keys, "edge", 3, b_new) ==
        std::string((*hub.keys.current("edge"))->key.view()));
  // The grants to the old key are replaced, and the removed agent gains nothing.
  for (uint64_t e : {1u, 2u, 3u}) CHECK(opened_by(hub.keys, "edge", e, b.key).empty());
  CHECK(opened_by(hub.keys, "edge", 2, a.key).empty());
  CHECK(hub.keys.epochs("edge")->at(0).grants == 2);  // edge-01's grant of epoch 1 stays
}

TEST_CASE("agent ids and channels follow the fetch request's rules", "[secrets]") {
  CHECK(check_agent_id(std::string(64, 'a')).empty());
  CHECK_THAT(check_agent_id(std::string(65, 'a')), Catch::Contains("1-64"));
  CHECK(check_channel("edge-eu.1_a").empty());
  for (const char* bad : {"", "Edge", "edge/1", "edge 1", "edge#"}) {
    INFO(bad);
    CHECK_FALSE(check_channel(bad).empty());
  }
  CHECK_FALSE(check_channel(std::string(64, 'a')).empty());

  TamperHub hub;
  CHECK(hub.keys.add(site(std::string(65, 'a'), "edge").enrolled, 1).error().code == Errc::usage);
  CHECK(hub.keys.add(site("edge-01", "Edge/1").enrolled, 1).error().code == Errc::usage);
  CHECK(hub.keys.list()->empty());
}
