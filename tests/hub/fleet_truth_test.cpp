// The fleet view tells the truth: an agent's status can claim any environment, version, time
// and text; the hub shows the environment and version of the bundle it published under the
// reported digest, last seen by its own clock, and every agent string with its control
// characters shown, not sent.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "agent/trust_pin.hpp"
#include "hub/agent_text.hpp"
#include "hub/metrics_text.hpp"
#include "platform/fs/bundle_reader.hpp"
#include "sovdev.pb.h"
#include "tests/sync/bundle_digest.hpp"
#include "tests/sync/sync_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

constexpr int64_t kYear2100 = 4102444800;

// What an agent with a broker account can put in its own status.
pb::AgentStatus lying_status(const std::string& agent, const std::string& digest) {
  pb::AgentStatus st;
  st.set_schema(1);
  st.set_agent_id(agent);
  st.set_channel("prod");
  st.set_environment("prod");
  st.set_stack("kp");
  st.set_applied_version(999);
  st.set_applied_digest(digest);
  st.set_updated_at(kYear2100);
  st.set_state("healthy");  // a closed set the hub checks; the free texts are not
  st.set_last_error(
      "\x1b]0;owned\x07\x1b[2Jcleared \xc2\x9b"
      "31mred");
  auto* s = st.add_services();
  s->set_service("postgresql");
  s->set_state("healthy");
  s->set_message("ok\x1b[2J");
  return st;
}

bool has_control(const std::string& text) {
  for (size_t i = 0; i < text.size(); i++) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c < 0x20 && c != '\n') || c == 0x7f) return true;
    if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE(
    "the fleet view takes environment and version from the published bundle, last seen from "
    "the hub's clock, and shows agent strings escaped",
    "[hub][fleet]") {
  Fleet fleet;
  const std::string file = fleet.ws.dir / "kp1.sdb";
  REQUIRE(fleet.ws.build(edge_stack("v1"), file, 1).exit_code == 0);
  REQUIRE(fleet.publish(file).exit_code == 0);
  auto hub = fleet.serve("hub.log");

  // agent-a names the bundle the hub published; agent-b one it never did.
  auto a = fleet.client("agent-a", "agent-a-liar");
  auto b = fleet.client("agent-b", "agent-b-liar");
  mqtt::Message ma;
  ma.topic = "sovdev/v1/status/agent-a";
  ma.payload = lying_status("agent-a", bundle_digest(file, fleet.ws.trust)).SerializeAsString();
  ma.retained = true;
  mqtt::Message mb;
  mb.topic = "sovdev/v1/status/agent-b";
  mb.payload = lying_status("agent-b", std::string(32, '\x42')).SerializeAsString();
  mb.retained = true;
  REQUIRE(a->publish(ma));
  REQUIRE(b->publish(mb));

  nlohmann::json all;
  const bool recorded = wait_until(
      [&] {
        auto st = run({hub_binary(), "status", "--db", fleet.hub_db, "--json"});
        all = nlohmann::json::parse(st.out, nullptr, false);
        return all.is_object() && all["agents"].size() == 2;
      },
      std::chrono::seconds(30));
  INFO("hub log: " << read_text(fleet.ws.dir / "hub.log"));
  REQUIRE(recorded);

  const auto& ja = all["agents"][0];
  const auto& jb = all["agents"][1];
  REQUIRE(ja["agent"] == "agent-a");
  CHECK(ja["environment"] == "edge");
  CHECK(ja["applied_version"] == 1);
  CHECK(jb["environment"] == "unknown bundle");
  CHECK(jb["applied_version"] == 0);
  for (const auto& j : {ja, jb}) {
    CHECK(j["last_seen"].get<std::string>().rfind("2100", 0) == std::string::npos);
    CHECK(j["state"] == "healthy");
    CHECK(j["last_error"] == "\\x1b]0;owned\\x07\\x1b[2Jcleared \\u{009b}31mred");
    CHECK(j["services"]["postgresql"]["message"] == "ok\\x1b[2J");
  }
  const auto envs = all["matrix"]["environments"].get<std::vector<std::string>>();
  CHECK(envs == std::vector<std::string>{"edge", "unknown bundle"});
  CHECK_FALSE(has_control(all.dump()));

  auto table = run({hub_binary(), "status", "--db", fleet.hub_db});
  INFO(table.out);
  CHECK_FALSE(has_control(table.out));
  CHECK_THAT(table.out, Catch::Contains("\\x1b]0;owned\\x07"));
  CHECK_THAT(table.out, !Catch::Contains("999") && !Catch::Contains("2100-"));
  CHECK_THAT(table.out, !Catch::Contains(" prod "));
}

TEST_CASE("agent strings are shown with their control characters visible", "[hub][fleet]") {
  CHECK(hub::visible_text("plain edge-01 ünïcode") == "plain edge-01 ünïcode");
  CHECK(hub::visible_text("\x1b]0;t\x07") == "\\x1b]0;t\\x07");
  CHECK(hub::visible_text("a\\x1b") == "a\\\\x1b");  // a forged escape stays visibly forged
  CHECK(hub::visible_text("\xc2\x9b"
                          "2J") == "\\u{009b}2J");
  CHECK(hub::visible_text("\xe2\x80\xae"
                          "txt") == "\\u{202e}txt");
  CHECK(hub::visible_text("bad \xff\xc3") == "bad \\xff\\xc3");
}

TEST_CASE("a metrics label shows an agent's control characters instead of sending them",
          "[hub][metrics]") {
  using hub::metrics::escape_label_value;
  CHECK(escape_label_value("\x1b[2J") == "\\\\x1b[2J");
  CHECK(escape_label_value("\xc2\x9b"
                           "31m") == "\\\\u{009b}31m");
  CHECK(escape_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  CHECK(escape_label_value("ü") == "ü");
}
