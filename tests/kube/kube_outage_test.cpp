// A Kubernetes API outage during an agent's first apply is the moment's fault, not the
// bundle's: the agent tries the same apply again with backoff, in the same process, and the
// version never lands in the failed set (issue #19). End to end: real mosquitto, hub and agent
// processes, the fake API server refusing every API request for a while.
#include <chrono>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/kube/agent_stack.hpp"
#include "tests/kube/fake_kube.hpp"
#include "tests/sync/sync_fixture.hpp"

namespace sovdev::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// How often the outage answered the API requests, from the fake's own count.
int fired(FakeKube& kube) {
  int n = 0;
  const json rules = kube.control("injections");
  for (const auto& rule : rules["items"]) n += rule.value("fired", 0);
  return n;
}

json last_good(const Fleet& fleet) {
  auto st = run({agent_binary(), "status", "--state", fleet.agent_state("agent-a"), "--json"});
  auto j = json::parse(st.out, nullptr, false);
  if (!j.is_object() || !j["stacks"]["kp"]["last_good"].is_object()) return nullptr;
  return j["stacks"]["kp"]["last_good"];
}

TEST_CASE(
    "an API server outage during the first apply is waited out: the same agent applies the "
    "version once the server is back, and never records it as failed",
    "[kube][outage]") {
  Fleet fleet;
  FakeKube kube;
  publish_stack(fleet, write_stack(fleet.ws, "v1", "nginx:1", {"a", "b"}), 1, false);
  auto hub = fleet.serve("hub.log");
  fleet.agent_config("agent-a", 8, "", kube_apply(kube, 20));

  // Every request to the Kubernetes API fails for 8 s from now: longer than the API client's
  // own retries of one request (~2 s) and than the agent's first backoffs (1 s, 2 s).
  std::string how;
  SECTION("503 Service Unavailable") {
    how = "503";
    kube.control("inject", {{"action", "status"}, {"code", 503}, {"for_ms", 8000}});
  }
  SECTION("connections closed without an answer") {
    how = "dropped";
    kube.control("inject", {{"action", "drop"}, {"for_ms", 8000}});
  }
  auto agent = fleet.run_agent("agent-a", "agent.log");
  const auto log = [&] { return read_text(fleet.ws.dir / "agent.log"); };

  // The same process applies it once the server answers again, having said why it waited.
  const bool applied =
      wait_until([&] { return log().find("applied kp@1") != std::string::npos; }, 60s);
  INFO("outage: " << how << "\nagent log:\n" << log());
  REQUIRE(fired(kube) > 0);  // the apply met the outage: else this test proves nothing
  CHECK(applied);
  CHECK_THAT(log(), Catch::Contains("not the bundle's fault: trying again"));
  CHECK(agent->running());
  CHECK(image_of(kube) == "nginx:1");
  CHECK_FALSE(kube.object("ConfigMap", "app", "b").is_null());
  CHECK(wait_until(
      [&] {
        const json good = last_good(fleet);
        return !good.is_null() && good["version"] == 1;
      },
      20s));
  CHECK(log().find("rolled back") == std::string::npos);
  agent->kill_hard();
  agent->wait();

  // Not in the failed set (store::FailedBundles): nothing for `retry` to clear, and a later
  // run is up to date rather than "failed here".
  auto retry = run({agent_binary(), "retry", "--state", fleet.agent_state("agent-a")});
  INFO("retry: " << retry.out << retry.err);
  CHECK(retry.exit_code == 0);
  CHECK_THAT(retry.out, Catch::Contains("no failed bundles"));
  auto again = fleet.sync_once("agent-a", 60);
  INFO("sync: " << again.out << again.err);
  CHECK(again.exit_code == 0);
}

TEST_CASE(
    "`sync --once` exits 13, not 15 or 0, when the reconcile of the applied version cannot reach "
    "the API server",
    "[kube][outage]") {
  Fleet fleet;
  FakeKube kube;
  publish_stack(fleet, write_stack(fleet.ws, "v1", "nginx:1", {"a"}), 1, false);
  auto hub = fleet.serve("hub.log");
  fleet.agent_config("agent-a", 8, "", kube_apply(kube, 20, 600));
  auto first = fleet.sync_once("agent-a", 60);
  INFO("first sync: " << first.out << first.err);
  REQUIRE(first.exit_code == 0);

  // The catalog's version is applied; the reconcile each run starts with meets an API server
  // that answers 503 to everything: the cluster was not reached, which is not the bundle's fault.
  kube.control("inject", {{"action", "status"}, {"code", 503}, {"count", -1}});
  auto down = fleet.sync_once("agent-a", 60);
  INFO("sync while the API server is down: " << down.out << down.err);
  CHECK(down.exit_code == 13);
  CHECK_THAT(down.err, Catch::Contains("reconcile"));
  CHECK_THAT(down.err, Catch::Contains("503"));
  auto retry = run({agent_binary(), "retry", "--state", fleet.agent_state("agent-a")});
  CHECK_THAT(retry.out, Catch::Contains("no failed bundles"));

  kube.control("clear-injections", json::object());
  auto back = fleet.sync_once("agent-a", 60);
  INFO("sync once it is back: " << back.out << back.err);
  CHECK(back.exit_code == 0);
}

}  // namespace
}  // namespace sovdev::testing
