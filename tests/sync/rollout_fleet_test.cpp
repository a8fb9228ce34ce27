// Issue #21 end to end, with real processes only: a broker with the repo's ACLs, `sovdev-hub
// serve` running the gates, `sovdev-agent run` for every agent, and the rollout commands as an
// operator types them. Versions are told apart by what the agents report (their retained
// statuses, watched the whole time), never by asking the hub what it planned.
#include <catch2/catch.hpp>

#include <algorithm>
#include <ctime>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "sovdev.pb.h"
#include "tests/sync/sealed_fleet.hpp"
#include "tests/sync/sync_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

// The newest status of every agent, from their retained status topics.
class FleetWatch {
 public:
  explicit FleetWatch(const Fleet& fleet) : client_(fleet.client("sovdev-hub", "fleet-watch")) {
    REQUIRE(client_->subscribe("sovdev/v1/status/+", 1));
  }
  const std::map<std::string, pb::AgentStatus>& latest() {
    while (auto e = client_->next(std::chrono::milliseconds(10))) {
      if (e->kind != mqtt::Event::Kind::message) continue;
      pb::AgentStatus s;
      if (s.ParseFromString(e->message.payload.str()) && !s.agent_id().empty()) {
        latest_[s.agent_id()] = s;
        if (s.applied_version() == 2) ever_on_v2_.insert(s.agent_id());
      }
    }
    return latest_;
  }
  uint64_t version(const std::string& agent) {
    auto it = latest().find(agent);
    return it == latest_.end() ? 0 : it->second.applied_version();
  }
  // Agents any status of which reported version 2 applied.
  const std::set<std::string>& ever_on_v2() const { return ever_on_v2_; }

 private:
  std::unique_ptr<mqtt::Client> client_;
  std::map<std::string, pb::AgentStatus> latest_;
  std::set<std::string> ever_on_v2_;
};

std::string stack_source(const Fleet& fleet, const std::string& name, const std::string& mode) {
  const std::string dir = fleet.ws.dir / ("src-" + name);
  write_manifest(dir + "/cm.yaml",
                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\n"
                 "  namespace: sovdev\ndata:\n  mode: " +
                     mode + "\n");
  return dir;
}

// An exec target that refuses any version whose manifests say BREAKME, as a group of sites
// whose clusters cannot run it would.
std::string refusing_target(const Fleet& fleet, const std::string& agent) {
  const std::string script = fleet.ws.dir / "refuse-breakme.sh";
  write_text(script,
             "data=$(cat)\n"
             "case \"$data\" in *BREAKME*) echo 'this cluster refuses it' >&2; exit 1;; esac\n"
             "printf '%s\\n' \"$data\" > \"$1/applied.yaml\"\n");
  return "[apply]\ntarget = \"exec\"\ncommand = \"sh " + script + " " + fleet.agent_dir(agent) +
         "\"\n";
}

// Version 1 of the stack built and published, and a hub serving it: where every case starts.
std::unique_ptr<Child> serve_v1(const Fleet& fleet) {
  REQUIRE(fleet.ws.build(stack_source(fleet, "v1", "one"), fleet.ws.dir / "v1.sdb", 1).exit_code ==
          0);
  REQUIRE(fleet.publish(fleet.ws.dir / "v1.sdb").exit_code == 0);
  return fleet.serve("hub.log");
}

// Version `version` (its ConfigMap saying `mode`) built and published held: the agents stay
// where they are until a rollout or a release.
void publish_held(const Fleet& fleet, int version, const std::string& mode) {
  const std::string v = "v" + std::to_string(version);
  REQUIRE(fleet.ws
              .build(stack_source(fleet, v, mode), fleet.ws.dir / (v + ".sdb"),
                     static_cast<uint64_t>(version))
              .exit_code == 0);
  auto published = run({hub_binary(), "publish", fleet.ws.dir / (v + ".sdb"), "--db", fleet.hub_db,
                        "--key", fleet.ws.online_key(), "--trust", fleet.ws.trust, "--hold"});
  INFO(published.err);
  REQUIRE(published.exit_code == 0);
}

RunResult hub_cmd(const Fleet& fleet, std::vector<std::string> args) {
  args.insert(args.begin(), hub_binary());
  args.push_back("--db");
  args.push_back(fleet.hub_db);
  return run(args);
}

}  // namespace

TEST_CASE(
    "30 agents in three waves: a wave starts only after the one before met its gate, a failing "
    "group aborts the rollout, and with --rollback-on-abort its agents return to their own last "
    "good while the untouched ones never leave it",
    "[sync][rollout][fleet]") {
  std::vector<std::string> canary, early, rest, all;
  for (int i = 1; i <= 3; ++i) canary.push_back("canary-" + std::to_string(i));
  for (int i = 1; i <= 9; ++i) early.push_back("early-" + std::to_string(i));
  for (int i = 1; i <= 18; ++i) rest.push_back("rest-" + std::to_string(i));
  for (const auto* g : {&canary, &early, &rest}) all.insert(all.end(), g->begin(), g->end());
  const std::set<std::string> bad = {"early-7", "early-8", "early-9"};
  Fleet fleet(broker_users(all));

  auto hub = serve_v1(fleet);
  FleetWatch watch(fleet);
  std::vector<std::unique_ptr<Child>> agents;
  for (const auto* g : {&canary, &early, &rest}) {
    const std::string ring = g == &canary ? "canary" : g == &early ? "early" : "rest";
    for (const auto& a : *g) {
      fleet.agent_config(a, 8, "[labels]\nring = \"" + ring + "\"\n",
                         bad.count(a) ? refusing_target(fleet, a) : "");
      agents.push_back(fleet.run_agent(a, a + ".log"));
    }
  }
  const auto count_on = [&](const std::vector<std::string>& group, uint64_t v) {
    return std::count_if(group.begin(), group.end(),
                         [&](const std::string& a) { return watch.version(a) == v; });
  };
  REQUIRE(wait_until([&] { return count_on(all, 1) == 30; }, std::chrono::seconds(120)));

  // Version 2 is published held: every agent stays on 1 until the rollout admits it.
  publish_held(fleet, 2, "two-BREAKME");
  auto started = hub_cmd(fleet, {"rollout",
                                 "start",
                                 "--channel",
                                 "edge",
                                 "--stack",
                                 "kp",
                                 "--version",
                                 "2",
                                 "--wave",
                                 "canary:ring=canary",
                                 "--wave",
                                 "early:ring=early",
                                 "--wave",
                                 "rest:ring=rest",
                                 "--success",
                                 "100%",
                                 "--within",
                                 "2m",
                                 "--abort-failed",
                                 "2",
                                 "--rollback-on-abort"});
  INFO(started.out << started.err);
  REQUIRE(started.exit_code == 0);

  // Watched the whole time: no early agent before every canary is on 2, no rest agent ever.
  bool early_before_gate = false;
  const auto canaries_all_seen_on_v2 = [&] {
    return std::all_of(canary.begin(), canary.end(),
                       [&](const std::string& a) { return watch.ever_on_v2().count(a) > 0; });
  };
  const auto rollout_state = [&] {
    auto list =
        nlohmann::json::parse(hub_cmd(fleet, {"rollout", "list", "--json"}).out, nullptr, false);
    if (list.is_discarded() || list["rollouts"].empty()) return std::string();
    return list["rollouts"].back()["state"].get<std::string>();
  };
  const bool aborted_and_back = wait_until(
      [&] {
        watch.latest();
        for (const auto& a : early) {
          if (watch.ever_on_v2().count(a) && !canaries_all_seen_on_v2()) early_before_gate = true;
        }
        return rollout_state() == "aborted" && count_on(all, 1) == 30;
      },
      std::chrono::seconds(180));
  const std::string rollout = hub_cmd(fleet, {"rollout", "status"}).out;
  INFO(rollout);
  INFO("hub: " << read_text(fleet.ws.dir / "hub.log"));
  REQUIRE(aborted_and_back);
  CHECK_FALSE(early_before_gate);
  for (const auto& a : canary) CHECK(watch.ever_on_v2().count(a));
  size_t early_on_v2 = 0;
  for (const auto& a : early) early_on_v2 += watch.ever_on_v2().count(a);
  CHECK(early_on_v2 >= 1);  // the wave opened; its good agents took 2 before the abort
  for (const auto& a : bad) {
    CHECK_FALSE(watch.ever_on_v2().count(a));
    CHECK(watch.latest().at(a).failed_version() == 2);
  }
  for (const auto& a : rest) CHECK_FALSE(watch.ever_on_v2().count(a));
  CHECK_THAT(rollout, Catch::Contains("abort"));
  for (auto& a : agents) a->kill_hard();
}

TEST_CASE(
    "an agent offline during its wave applies on reconnect while the rollout runs, and not after "
    "an abort",
    "[sync][rollout][fleet]") {
  const std::vector<std::string> names = {"on-1", "late-1", "late-2"};
  Fleet fleet(broker_users(names));
  auto hub = serve_v1(fleet);
  FleetWatch watch(fleet);
  std::map<std::string, std::unique_ptr<Child>> agents;
  for (const auto& a : names) {
    fleet.agent_config(a, 8, "[labels]\nsite = \"lab\"\n");
    agents[a] = fleet.run_agent(a, a + ".log");
  }
  REQUIRE(wait_until(
      [&] {
        return watch.version("on-1") == 1 && watch.version("late-1") == 1 &&
               watch.version("late-2") == 1;
      },
      std::chrono::seconds(60)));
  agents["late-1"]->kill_hard();
  agents["late-2"]->kill_hard();

  publish_held(fleet, 2, "two");
  auto started = hub_cmd(
      fleet, {"rollout", "start", "--channel", "edge", "--stack", "kp", "--version", "2", "--wave",
              "lab:site=lab", "--success", "100%", "--within", "10m", "--abort-failed", "5"});
  INFO(started.err);
  REQUIRE(started.exit_code == 0);
  REQUIRE(wait_until([&] { return watch.version("on-1") == 2; }, std::chrono::seconds(60)));

  // Back while the rollout still runs: it applies.
  agents["late-1"] = fleet.run_agent("late-1", "late-1-again.log");
  REQUIRE(wait_until([&] { return watch.version("late-1") == 2; }, std::chrono::seconds(60)));

  // After an abort: it stays on 1.
  auto list = nlohmann::json::parse(hub_cmd(fleet, {"rollout", "list", "--json"}).out);
  REQUIRE(list["rollouts"].size() == 1);
  const std::string id = std::to_string(list["rollouts"][0]["id"].get<uint64_t>());
  REQUIRE(hub_cmd(fleet, {"rollout", "abort", id}).exit_code == 0);
  // serve re-signs the catalog within a tick of the change (1 s); give it three.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  agents["late-2"] = fleet.run_agent("late-2", "late-2-again.log");
  REQUIRE(wait_until([&] { return watch.version("late-2") == 1 && watch.latest().count("late-2"); },
                     std::chrono::seconds(30)));
  std::this_thread::sleep_for(std::chrono::seconds(5));  // time to (wrongly) take version 2
  CHECK(watch.version("late-2") == 1);
  CHECK_FALSE(watch.ever_on_v2().count("late-2"));
  CHECK(watch.version("on-1") == 2);  // no revert without --rollback-on-abort
  for (auto& [name, a] : agents) a->kill_hard();
}

TEST_CASE(
    "outside its maintenance window an agent fetches a new version and waits, saying when the "
    "window opens; a rollout with --ignore-windows applies at once",
    "[sync][rollout][fleet][windows]") {
  Fleet fleet;
  auto hub = serve_v1(fleet);
  FleetWatch watch(fleet);
  // An allow window opening two hours from now (UTC), an hour long: closed for at least an hour.
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const int64_t hour = (now / 3600 + 2) % 24;
  const int64_t opens = (now / 3600 + 2) * 3600;
  // Applied before the window is set: the first version is not a change.
  fleet.agent_config("agent-a");
  auto agent = fleet.run_agent("agent-a", "agent-a.log");
  REQUIRE(wait_until([&] { return watch.version("agent-a") == 1; }, std::chrono::seconds(60)));
  agent->kill_hard();
  fleet.agent_config("agent-a", 8,
                     "[[window]]\nkind = \"allow\"\nschedule = \"0 " + std::to_string(hour) +
                         " * * *\"\nduration = \"1h\"\nzone = \"UTC\"\n");
  agent = fleet.run_agent("agent-a", "agent-a-windowed.log");

  REQUIRE(fleet.ws.build(stack_source(fleet, "v2", "two"), fleet.ws.dir / "v2.sdb", 2).exit_code ==
          0);
  REQUIRE(fleet.publish_live(fleet.ws.dir / "v2.sdb").exit_code == 0);
  const bool waits = wait_until(
      [&] {
        auto it = watch.latest().find("agent-a");
        return it != watch.latest().end() && it->second.window_opens_at() != 0;
      },
      std::chrono::seconds(60));
  INFO(read_text(fleet.ws.dir / "agent-a-windowed.log"));
  REQUIRE(waits);
  const pb::AgentStatus st = watch.latest().at("agent-a");
  CHECK(st.window_opens_at() == opens);
  CHECK_THAT(st.state(), Catch::StartsWith("waiting for window (opens "));
  CHECK(st.applied_version() == 1);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  CHECK(watch.version("agent-a") == 1);

  // An emergency: version 3 rolled out to everyone, windows ignored.
  publish_held(fleet, 3, "three");
  auto started = hub_cmd(fleet, {"rollout", "start", "--channel", "edge", "--stack", "kp",
                                 "--version", "3", "--wave", "all:*", "--success", "100%",
                                 "--within", "10m", "--abort-failed", "1", "--ignore-windows"});
  INFO(started.err);
  REQUIRE(started.exit_code == 0);
  CHECK(wait_until([&] { return watch.version("agent-a") == 3; }, std::chrono::seconds(60)));
  agent->kill_hard();
}

TEST_CASE(
    "a version revoked with `sovdev-hub revoke` is never applied, even once it is current, and a "
    "newer one is",
    "[sync][rollout][fleet][revoke]") {
  Fleet fleet;
  auto hub = serve_v1(fleet);
  FleetWatch watch(fleet);
  fleet.agent_config("agent-a");
  auto agent = fleet.run_agent("agent-a", "agent-a.log");
  REQUIRE(wait_until([&] { return watch.version("agent-a") == 1; }, std::chrono::seconds(60)));

  // Version 2 published held, revoked with the targets key, then released: the catalog now
  // lists it as current, and the agent still does not take it.
  publish_held(fleet, 2, "two");
  auto revoked = hub_cmd(
      fleet, {"revoke", "--channel", "edge", "--stack", "kp", "--version", "2", "--reason",
              "breaks the cluster", "--trust", fleet.ws.trust, "--key", fleet.ws.key("pub1")});
  INFO(revoked.out << revoked.err);
  REQUIRE(revoked.exit_code == 0);
  REQUIRE(hub_cmd(fleet, {"rollout", "release", "--channel", "edge", "--stack", "kp"}).exit_code ==
          0);
  const bool told = wait_until(
      [&] {
        auto it = watch.latest().find("agent-a");
        return it != watch.latest().end() &&
               it->second.last_error().find("revoked") != std::string::npos;
      },
      std::chrono::seconds(30));
  INFO(read_text(fleet.ws.dir / "agent-a.log"));
  CHECK(told);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  CHECK(watch.version("agent-a") == 1);
  CHECK_FALSE(watch.ever_on_v2().count("agent-a"));

  REQUIRE(
      fleet.ws.build(stack_source(fleet, "v3", "three"), fleet.ws.dir / "v3.sdb", 3).exit_code ==
      0);
  REQUIRE(fleet.publish_live(fleet.ws.dir / "v3.sdb").exit_code == 0);
  CHECK(wait_until([&] { return watch.version("agent-a") == 3; }, std::chrono::seconds(60)));
  agent->kill_hard();
}
