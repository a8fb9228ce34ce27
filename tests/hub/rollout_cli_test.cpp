// The rollout commands as an operator runs them, on the real sovdev-hub: build --hold keeps the
// agents on the current version, rollout start/status/pause/resume/abort/release, window
// add/list/remove and revoke write hub.db and say what they did; each refusal exits with its
// error's code.
#include <catch2/catch.hpp>

#include <array>
#include <nlohmann/json.hpp>

#include "tests/cli/cli_fixture.hpp"

using namespace sovdev::testing;

namespace {

struct RolloutHub {
  Workspace ws;
  std::string db = ws.dir / "hub.db";

  RunResult hub(std::vector<std::string> args) const {
    args.insert(args.begin(), hub_binary());
    args.insert(args.end(), {"--db", db});
    return run(args);
  }
  void build_and_publish(std::uint64_t version, const std::vector<std::string>& extra = {}) {
    const std::string file = ws.dir / ("v" + std::to_string(version) + ".sdb");
    auto built = ws.build(edge_stack(version % 2 == 0 ? "v2" : "v1"), file, version, extra);
    INFO(built.err);
    REQUIRE(built.exit_code == 0);
    auto published = run(
        {hub_binary(), "publish", file, "--db", db, "--key", ws.online_key(), "--trust", ws.trust});
    INFO(published.err);
    REQUIRE(published.exit_code == 0);
  }
};

nlohmann::json json_of(const RunResult& r) {
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.out);
}

}  // namespace

TEST_CASE("the rollout commands drive hub.db as the design says", "[cli][rollout]") {
  RolloutHub h;
  h.build_and_publish(1);
  h.build_and_publish(2, {"--hold", "--db", h.db});

  const std::vector<std::string> start = {"rollout",
                                          "start",
                                          "--channel",
                                          "edge",
                                          "--stack",
                                          "kp",
                                          "--version",
                                          "2",
                                          "--wave",
                                          "canary:site=lab:50",
                                          "--wave",
                                          "all:*",
                                          "--success",
                                          "90%",
                                          "--within",
                                          "30m",
                                          "--abort-failed",
                                          "1",
                                          "--rollback-on-abort"};
  auto started = h.hub(start);
  INFO(started.err);
  REQUIRE(started.exit_code == 0);
  CHECK_THAT(started.out, Catch::Contains("rollout 1 started: edge/kp 1 -> 2"));
  CHECK(h.hub(start).exit_code == 7);  // one rollout per stack: conflict

  auto status = json_of(h.hub({"rollout", "status", "--json"}));
  REQUIRE(status["rollouts"].size() == 1);
  const auto& r = status["rollouts"][0];
  CHECK(r["state"] == "running");
  CHECK(r["base_version"] == 1);
  CHECK(r["waves"][0]["admitted"] == true);
  CHECK(r["waves"][0]["percent"] == 50);
  CHECK(r["waves"][1]["admitted"] == false);
  CHECK(r["abort_failed_count"] == 1);

  REQUIRE(h.hub({"rollout", "pause", "1"}).exit_code == 0);
  CHECK(h.hub({"rollout", "pause", "1"}).exit_code == 7);
  REQUIRE(h.hub({"rollout", "resume", "1"}).exit_code == 0);
  CHECK(h.hub({"rollout", "release", "--channel", "edge", "--stack", "kp"}).exit_code == 7);
  auto aborted = h.hub({"rollout", "abort", "1"});
  REQUIRE(aborted.exit_code == 0);
  CHECK_THAT(aborted.out, Catch::Contains("go back"));
  CHECK(h.hub({"rollout", "abort", "9"}).exit_code == 12);

  auto fleet = json_of(h.hub({"status", "--json"}));
  REQUIRE(fleet["rollouts"].size() == 1);
  CHECK(fleet["rollouts"][0]["state"] == "aborted");
  CHECK(fleet["rollouts"][0]["reason"] == "aborted by the operator");

  auto listed = json_of(h.hub({"rollout", "list", "--json"}));
  CHECK(listed["holds"][0]["version"] == 1);
  REQUIRE(h.hub({"rollout", "release", "--channel", "edge", "--stack", "kp"}).exit_code == 0);
  CHECK(json_of(h.hub({"rollout", "list", "--json"}))["holds"].empty());
}

TEST_CASE("window and revoke commands write hub.db and refuse bad input", "[cli][rollout]") {
  RolloutHub h;
  h.build_and_publish(1);

  auto added =
      h.hub({"window", "add", "--channel", "edge", "--selector", "site=lab", "--kind", "deny",
             "--schedule", "0 8 * * 1-5", "--duration", "9h", "--zone", "Europe/Berlin"});
  INFO(added.err);
  REQUIRE(added.exit_code == 0);
  CHECK(h.hub({"window", "add", "--schedule", "0 8 * *", "--duration", "9h", "--zone", "UTC"})
            .exit_code == 2);
  // Refused with platform/windows' own parser, as the agents would read it: an hour that does
  // not exist, a zone not in tzdata, a duration over 7 days.
  for (const auto& [schedule, duration, zone, why] :
       std::vector<std::array<std::string, 4>>{{"0 25 * * *", "1h", "UTC", "hour"},
                                               {"0 2 * * *", "1h", "Mars/Olympus", "zone"},
                                               {"0 2 30 2 *", "1h", "UTC", "never"},
                                               {"0 2 * * *", "8d", "UTC", "duration"}}) {
    auto bad =
        h.hub({"window", "add", "--schedule", schedule, "--duration", duration, "--zone", zone});
    CHECK(bad.exit_code == 2);
    CHECK_THAT(bad.err, Catch::Contains(why));
  }
  auto windows = json_of(h.hub({"window", "list", "--json"}));
  REQUIRE(windows["windows"].size() == 1);
  CHECK(windows["windows"][0]["kind"] == "deny");
  REQUIRE(h.hub({"window", "remove", "1"}).exit_code == 0);
  CHECK(h.hub({"window", "remove", "1"}).exit_code == 12);

  const std::vector<std::string> revoke = {"revoke",     "--channel", "edge",     "--stack",
                                           "kp",         "--version", "1",        "--reason",
                                           "CVE-2026-1", "--trust",   h.ws.trust, "--key"};
  auto with = [&](std::vector<std::string> args, const std::string& key) {
    args.push_back(key);
    return h.hub(args);
  };
  // The online key cannot sign a revocation list: agents check it against the targets role.
  CHECK(with(revoke, h.ws.online_key()).exit_code != 0);
  auto revoked = with(revoke, h.ws.key("pub1"));
  INFO(revoked.err);
  REQUIRE(revoked.exit_code == 0);
  CHECK_THAT(revoked.out, Catch::Contains("serial 1"));
  CHECK(with(revoke, h.ws.key("pub1")).exit_code == 7);  // revoked already
  auto unpublished = revoke;
  unpublished[6] = "5";
  CHECK(with(unpublished, h.ws.key("pub1")).exit_code == 12);
}
