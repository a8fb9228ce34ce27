// `sovdev-agent status` tells channels apart: a stack's newest verified version is its channel's,
// as rollback protection has it, never a bundle of another channel held in the same cache.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "platform/store/agent_cache.hpp"
#include "tests/cli/cli_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;
using nlohmann::json;

namespace {

std::string build_in(const Workspace& ws, const std::string& channel, uint64_t version) {
  const std::string out = ws.dir / (channel + "-v" + std::to_string(version) + ".sdb");
  auto built = run({hub_binary(), "build", edge_stack(version % 2 == 0 ? "v2" : "v1"), "--stack",
                    "kp", "--channel", channel, "--version", std::to_string(version), "--arch",
                    "amd64,arm64", "--key", ws.key("pub1"), "--out", out, "--quiet"});
  INFO(built.err);
  REQUIRE(built.exit_code == 0);
  return out;
}

}  // namespace

TEST_CASE(
    "status reports a stack's newest verified version per channel, not a dev bundle's as "
    "an edge agent's",
    "[cli][status][channel]") {
  Workspace ws;
  // The cache: edge v3 applied (the last good), dev v10 imported by hand beside it.
  REQUIRE(ws.import(build_in(ws, "edge", 3)).exit_code == 0);
  auto dev = ws.import(build_in(ws, "dev", 10), {"--channel", "dev"});
  INFO(dev.err);
  REQUIRE(dev.exit_code == 0);
  {
    auto db = store::open_agent_database(ws.state() + "/agent.db");
    REQUIRE(db);
    auto edge3 = store::BundleCache(*db).find_version("kp", 3);
    REQUIRE(edge3);
    REQUIRE(*edge3);
    REQUIRE(store::ApplyLog(*db).set_last_good("kp", 3, (*edge3)->digest));
  }

  auto st = run({agent_binary(), "status", "--state", ws.state(), "--json"});
  INFO(st.out << st.err);
  REQUIRE(st.exit_code == 0);
  const json s = json::parse(st.out);
  // Keyed by the stack's name as before: the channel of its last good bundle.
  const json& edge = s["stacks"]["kp"];
  CHECK(edge["channel"] == "edge");
  CHECK(edge["stack"] == "kp");
  CHECK(edge["newest_verified"] == 3);  // was 10: the dev bundle's
  CHECK(edge["last_good"]["version"] == 3);
  // The dev bundle is shown for what it is: another channel's, never applied here.
  const json& other = s["stacks"]["dev/kp"];
  CHECK(other["channel"] == "dev");
  CHECK(other["newest_verified"] == 10);
  CHECK(other["last_good"].is_null());

  auto human = run({agent_binary(), "status", "--state", ws.state()});
  REQUIRE(human.exit_code == 0);
  CHECK_THAT(human.out,
             Catch::Contains("stack kp (channel edge): last good v3, newest verified v3"));
  CHECK_THAT(human.out,
             Catch::Contains("stack kp (channel dev, not the channel of its last good bundle): "
                             "newest verified v10"));
}

TEST_CASE("status keys a stack held in one channel by its name, before anything is applied",
          "[cli][status][channel]") {
  Workspace ws;
  REQUIRE(ws.import(build_in(ws, "edge", 1)).exit_code == 0);
  auto st = run({agent_binary(), "status", "--state", ws.state(), "--json"});
  REQUIRE(st.exit_code == 0);
  const json s = json::parse(st.out);
  REQUIRE(s["stacks"].size() == 1);
  CHECK(s["stacks"]["kp"]["channel"] == "edge");
  CHECK(s["stacks"]["kp"]["newest_verified"] == 1);
  CHECK(s["stacks"]["kp"]["last_good"].is_null());
}
