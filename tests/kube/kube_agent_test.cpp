// The agent with a kube target, end to end: real mosquitto, hub and agent processes, and the
// fake API server. Rollback on failure, completion after kill -9 without the hub, drift.
#include <csignal>
#include <filesystem>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/kube/agent_stack.hpp"
#include "tests/kube/fake_kube.hpp"
#include "tests/sync/sync_fixture.hpp"

namespace sovdev::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

json hub_status(const Fleet& fleet, const std::string& agent) {
  auto st = run({hub_binary(), "status", "--db", fleet.hub_db, "--json"});
  auto all = json::parse(st.out, nullptr, false);
  if (!all.is_object() || !all["agents"].is_array()) return nullptr;
  for (const auto& a : all["agents"]) {
    if (a.value("agent", "") == agent) return a;
  }
  return nullptr;
}

TEST_CASE("a version that fails its health check or gets a 422 is rolled back, status says why",
          "[kube]") {
  Fleet fleet;
  FakeKube kube;
  publish_stack(fleet, write_stack(fleet.ws, "v1", "nginx:1", {"base"}), 1, false);
  auto hub = fleet.serve("hub.log");
  fleet.agent_config("agent-a", 8, "", kube_apply(kube, 3));
  auto first = fleet.sync_once("agent-a");
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  REQUIRE(image_of(kube) == "nginx:1");

  std::string expect;
  std::string broken;  // the service the failure is reported against
  bool job = false;
  SECTION("health") {
    // v2 brings a migration Job that fails; v1 has none, so the rollback is healthy.
    kube.control("health-default", {{"kind", "Job"}, {"mode", "failed"}});
    expect = "job failed";
    broken = "migrate";
    job = true;
  }
  SECTION("422") {
    kube.control("inject", {{"method", "PATCH"},
                            {"path_regex", "/configmaps/extra$"},
                            {"action", "status"},
                            {"code", 422},
                            {"count", -1},
                            {"message", "data.image: Invalid value: \"x\": refused by the test"}});
    expect = "refused by the test";
    broken = "settings";
  }
  publish_stack(fleet, write_stack(fleet.ws, "v2", "nginx:2", {"base", "extra"}, job), 2, true);
  auto second = fleet.sync_once("agent-a");
  INFO(second.err);
  CHECK(second.exit_code != 0);
  CHECK_THAT(second.err, Catch::Contains(expect));
  // The cluster is back at the last good version: v1's image, and v2's addition pruned.
  CHECK(image_of(kube) == "nginx:1");
  CHECK(kube.object("ConfigMap", "app", "extra").is_null());
  CHECK(kube.object("Job", "app", "migrate").is_null());
  CHECK_FALSE(kube.object("ConfigMap", "app", "base").is_null());
  auto local = run({agent_binary(), "status", "--state", fleet.agent_state("agent-a"), "--json"});
  CHECK_THAT(local.out, Catch::Contains("rolled_back"));
  REQUIRE(wait_until(
      [&] {
        const json a = hub_status(fleet, "agent-a");
        return !a.is_null() && a.dump().find("rolled_back") != std::string::npos;
      },
      30s));
  const json reported = hub_status(fleet, "agent-a");
  CHECK_THAT(reported.dump(), Catch::Contains(expect));
  // Per service: the one whose object failed is degraded, saying why; the rest run v1.
  const json services = reported["services"];
  INFO(services.dump());
  CHECK(services[broken]["state"] == "degraded");
  CHECK_THAT(services[broken]["message"].get<std::string>(), Catch::Contains(expect));
  CHECK(services["web"]["state"] == "healthy");
  CHECK(services["kubernetes"]["state"] == "healthy");
}

TEST_CASE("an agent killed during an apply completes it from its cache without the hub", "[kube]") {
  Fleet fleet;
  FakeKube kube;
  publish_stack(fleet, write_stack(fleet.ws, "v1", "nginx:1", {"a"}), 1, false);
  auto hub = fleet.serve("hub.log");
  fleet.agent_config("agent-a", 8, "", kube_apply(kube, 20));
  REQUIRE(fleet.sync_once("agent-a").exit_code == 0);
  publish_stack(fleet, write_stack(fleet.ws, "v2", "nginx:2", {"a", "b", "c", "d"}), 2, true);
  // Every write is slow now, so the kill lands in the middle of the apply.
  kube.control("inject", {{"method", "PATCH"},
                          {"path_regex", "/namespaces/app/"},
                          {"action", "delay"},
                          {"delay_ms", 700},
                          {"count", -1}});
  const std::string log = fleet.ws.dir / "agent-run1.log";
  {
    auto agent = fleet.run_agent("agent-a", "agent-run1.log");
    REQUIRE(wait_until([&] { return !kube.object("ConfigMap", "app", "b").is_null(); }, 60s));
    agent->kill_hard();
  }
  CHECK(image_of(kube) != "");
  CHECK(kube.object("ConfigMap", "app", "d").is_null());  // not reached before the kill
  hub->kill_hard();
  fleet.broker->stop();
  kube.control("clear-injections", json::object());
  auto agent = fleet.run_agent("agent-a", "agent-run2.log");
  INFO(read_text(fleet.ws.dir / "agent-run2.log"));
  CHECK(wait_until(
      [&] {
        return image_of(kube) == "nginx:2" && !kube.object("ConfigMap", "app", "d").is_null();
      },
      60s));
  CHECK(wait_until(
      [&] {
        auto st =
            run({agent_binary(), "status", "--state", fleet.agent_state("agent-a"), "--json"});
        auto j = json::parse(st.out, nullptr, false);
        return j.is_object() && j["stacks"]["kp"]["last_good"].is_object() &&
               j["stacks"]["kp"]["last_good"]["version"] == 2;
      },
      30s));
}

TEST_CASE("drift on the cluster is corrected at the next reconcile, without the hub", "[kube]") {
  Fleet fleet;
  FakeKube kube;
  publish_stack(fleet, write_stack(fleet.ws, "v1", "nginx:1", {"a"}), 1, false);
  auto hub = fleet.serve("hub.log");
  fleet.agent_config("agent-a", 8, "", kube_apply(kube, 20, 10));
  REQUIRE(fleet.sync_once("agent-a").exit_code == 0);
  hub->kill_hard();
  const std::string log = fleet.ws.dir / "agent-run.log";
  auto agent = fleet.run_agent("agent-a", "agent-run.log");
  // The pass at start re-applies what is applied already: the server changes nothing, and the
  // log says so rather than counting every object as corrected.
  REQUIRE(wait_until([&] { return read_text(log).find("drifted") != std::string::npos; }, 40s));
  INFO(read_text(log));
  CHECK_THAT(read_text(log),
             Catch::Contains("reconcile kp@1 (channel edge, amd64, arm64): 0 of 3 drifted\n"));
  const std::string rv =
      kube.object("ConfigMap", "app", "a")["metadata"]["resourceVersion"].get<std::string>();

  // Someone edits the cluster by hand.
  kube.control("mutate", {{"apiVersion", "v1"},
                          {"kind", "ConfigMap"},
                          {"namespace", "app"},
                          {"name", "a"},
                          {"patch", {{"data", {{"image", "edited by hand"}}}}}});
  REQUIRE(kube.object("ConfigMap", "app", "a")["data"]["image"] == "edited by hand");
  CHECK(wait_until(
      [&] { return kube.object("ConfigMap", "app", "a")["data"]["image"] == "nginx:1"; }, 40s));
  CHECK(kube.object("ConfigMap", "app", "a")["metadata"]["resourceVersion"] != rv);
  // The next pass names what it put back, and the apply history keeps it.
  CHECK(wait_until(
      [&] { return read_text(log).find("1 of 3 drifted: ConfigMap app/a\n") != std::string::npos; },
      20s));
  auto st = run({agent_binary(), "status", "--state", fleet.agent_state("agent-a"), "--json"});
  const json recent = json::parse(st.out, nullptr, false)["stacks"]["kp"]["recent"];
  INFO(recent.dump());
  CHECK(recent.dump().find("1 of 3 drifted: ConfigMap app/a") != std::string::npos);
}

// `sovdev-agent apply`, offline: what it applied, or which version runs and that nothing was due.
TEST_CASE("apply says which version of which stack it applied, or that nothing was due", "[kube]") {
  Workspace ws;
  FakeKube kube;
  const std::string config = ws.dir / "agent.toml";
  write_text(config, "agent_id = \"site-1\"\nchannels = [\"edge\"]\nstate_dir = \"" + ws.state() +
                         "\"\ntrust_root = \"" + ws.trust +
                         "\"\n[broker]\nurls = [\"tcp://127.0.0.1:1\"]\n" + kube_apply(kube, 20));
  auto apply = [&] {
    auto r = run({agent_binary(), "apply", "--config", config});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    return r.out;
  };
  auto import_version = [&](const std::string& image, uint64_t version) {
    const std::string file = ws.dir / ("v" + std::to_string(version) + ".sdb");
    REQUIRE(ws.build(write_stack(ws, "v" + std::to_string(version), image, {"a"}), file, version)
                .exit_code == 0);
    auto imported = ws.import(file);
    INFO(imported.err);
    REQUIRE(imported.exit_code == 0);
  };

  CHECK(apply() ==
        "site-1: nothing applied, nothing due: the cache holds no bundle (`sovdev-agent import` "
        "carries one in by hand; `sovdev-agent run` fetches them from the hub)\n");
  import_version("nginx:1", 1);
  CHECK(apply() == "site-1: kp v1 applied (nothing was applied before)\n");
  CHECK(image_of(kube) == "nginx:1");
  CHECK(apply() ==
        "site-1: kp v1 is applied; nothing was due (no newer verified bundle in the cache)\n");
  import_version("nginx:2", 2);
  CHECK(apply() == "site-1: kp v2 applied (before: v1)\n");
  CHECK(image_of(kube) == "nginx:2");
  CHECK(apply() ==
        "site-1: kp v2 is applied; nothing was due (no newer verified bundle in the cache)\n");
}

}  // namespace
}  // namespace sovdev::testing
