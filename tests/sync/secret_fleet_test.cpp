// Who can read a sealed version, with real processes (issue #20): a broker with the repo's ACLs,
// `sovdev-hub serve`, agents keyed by `sovdev-agent keygen`, enrolled, removed and rotated with
// `sovdev-hub agents`, values set with `sovdev-hub secret set`, bundles built with them sealed.
// Each agent applies to a dir target of its own, whose files show what reached the site.
#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/sync/sealed_fleet.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

constexpr auto kSecretFleetDeadline = std::chrono::seconds(30);

// What an agent's dir target holds of stack kp: the settings marker and the Secret's password
// ("" for an object it does not hold).
struct Site {
  std::string marker, password;
};

Site site_of(const Fleet& fleet, const std::string& agent) {
  Site site;
  for (const auto& [kind, object] : target_objects(fleet.agent_dir(agent))) {
    if (kind == "ConfigMap") site.marker = object["data"].value("marker", "");
    if (kind == "Secret") site.password = object["data"].value("password", "");
  }
  return site;
}

std::string b64(const std::string& value) {
  return leak_forms(value)[1];
}

// Every byte of every file of the agent's target folder.
std::string target_bytes(const Fleet& fleet, const std::string& agent) {
  std::string out;
  for (const auto& e : std::filesystem::directory_iterator(fleet.agent_dir(agent))) {
    if (e.is_regular_file()) out += read_text(e.path().string());
  }
  return out;
}

void write_plain_source(const std::string& dir, const std::string& marker) {
  write_manifest(dir + "/app.yaml",
                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
                 "  namespace: app\ndata:\n  marker: " +
                     marker + "\n");
}

// A sync that stops at the hub's refusal of the epoch key, naming the command that grants it.
void check_refused(const Fleet& fleet, const std::string& agent, uint64_t version) {
  auto synced = fleet.sync_once(agent, 30);
  INFO(agent << ": " << synced.out << synced.err);
  CHECK(synced.exit_code == 14);
  const std::string command = "sovdev-hub agents add " + agent + " --pub agent.pub --channel edge";
  CHECK_THAT(synced.err,
             Catch::Contains("cannot open the sealed secrets of kp@" + std::to_string(version)) &&
                 Catch::Contains(command));
  // The hub's view says why too, from the agent's retained status.
  nlohmann::json seen;
  CHECK(wait_until(
      [&] {
        seen = hub_agent_status(fleet, agent);
        return seen.value("last_error", "").find(command) != std::string::npos &&
               seen.value("last_error", "").find("kp@" + std::to_string(version)) !=
                   std::string::npos;
      },
      kSecretFleetDeadline));
  INFO(seen.dump());
  CHECK(seen.value("state", "") == "degraded");
}

void check_applied(const Fleet& fleet, const std::string& agent, uint64_t version) {
  auto synced = fleet.sync_once(agent, 30);
  INFO(agent << ": " << synced.out << synced.err);
  REQUIRE(synced.exit_code == 0);
  CHECK(last_good_version(fleet, agent) == version);
}

}  // namespace

TEST_CASE(
    "an agent never enrolled and one removed before the build cannot read the new version: "
    "they say which hub command grants it and keep their last good; the enrolled one applies it",
    "[sync][secrets][fleet]") {
  Fleet fleet(broker_users({"agent-a", "agent-b", "agent-c"}));
  SealedHub hub(fleet);
  for (const char* agent : {"agent-a", "agent-b", "agent-c"}) {
    fleet.agent_config(agent);
    hub.keygen(agent);
  }
  hub.add("agent-a");
  hub.add("agent-b");  // agent-c is never enrolled
  const std::string first = unique_value("first-"), second = unique_value("second-");
  hub.set("db", "password", first);

  // v1 seals nothing: agent-c has a last good version of its own.
  write_plain_source(fleet.ws.dir / "v1", "v1");
  hub.build_and_publish(fleet.ws.dir / "v1", 1, false);
  auto serve = fleet.serve("hub.log");
  check_applied(fleet, "agent-c", 1);

  write_secret_source(fleet.ws.dir / "v2", "v2");
  hub.build_and_publish(fleet.ws.dir / "v2", 2, true);
  check_applied(fleet, "agent-a", 2);
  check_applied(fleet, "agent-b", 2);
  check_refused(fleet, "agent-c", 2);

  // agent-b leaves; the next version, with a new value, is closed to it.
  CHECK_THAT(hub.remove("agent-b"), Catch::Contains("epoch 2"));
  hub.set("db", "password", second);
  write_secret_source(fleet.ws.dir / "v3", "v3");
  hub.build_and_publish(fleet.ws.dir / "v3", 3, true);
  check_applied(fleet, "agent-a", 3);
  check_refused(fleet, "agent-b", 3);
  check_refused(fleet, "agent-c", 3);

  const Site a = site_of(fleet, "agent-a"), b = site_of(fleet, "agent-b"),
             c = site_of(fleet, "agent-c");
  CHECK(a.marker == "v3");
  CHECK(a.password == b64(second));
  // Nothing of v3 reached the others: each runs its last good version, whole.
  CHECK(last_good_version(fleet, "agent-b") == 2);
  CHECK(b.marker == "v2");
  CHECK(b.password == b64(first));
  CHECK(last_good_version(fleet, "agent-c") == 1);
  CHECK(c.marker == "v1");
  CHECK(c.password.empty());
  for (const char* agent : {"agent-b", "agent-c"}) {
    INFO(agent);
    CHECK(target_bytes(fleet, agent).find(b64(second)) == std::string::npos);
    CHECK(read_database_files(fleet.agent_state(agent) + "/agent.db").find(second) ==
          std::string::npos);
  }
}

TEST_CASE("a value set again reaches the target with the next version, and the old one leaves it",
          "[sync][secrets][fleet]") {
  Fleet fleet;
  SealedHub hub(fleet);
  fleet.agent_config("agent-a");
  hub.keygen("agent-a");
  hub.add("agent-a");
  const std::string old_value = unique_value("old-"), new_value = unique_value("new-");
  hub.set("db", "password", old_value);
  write_secret_source(fleet.ws.dir / "v1", "v1");
  hub.build_and_publish(fleet.ws.dir / "v1", 1, false);
  auto serve = fleet.serve("hub.log");
  check_applied(fleet, "agent-a", 1);
  REQUIRE(site_of(fleet, "agent-a").password == b64(old_value));

  hub.set("db", "password", new_value);
  write_secret_source(fleet.ws.dir / "v2", "v2");
  hub.build_and_publish(fleet.ws.dir / "v2", 2, true);
  check_applied(fleet, "agent-a", 2);
  const Site a = site_of(fleet, "agent-a");
  CHECK(a.marker == "v2");
  CHECK(a.password == b64(new_value));
  for (const auto& form : leak_forms(old_value)) {
    CHECK(target_bytes(fleet, "agent-a").find(form) == std::string::npos);
  }
}

TEST_CASE("an agent's new key (keygen --force, agents rotate) opens the next version built",
          "[sync][secrets][fleet]") {
  Fleet fleet;
  SealedHub hub(fleet);
  fleet.agent_config("agent-a");
  hub.keygen("agent-a");
  hub.add("agent-a");
  const std::string value = unique_value("pw-");
  hub.set("db", "password", value);
  write_secret_source(fleet.ws.dir / "v1", "v1");
  hub.build_and_publish(fleet.ws.dir / "v1", 1, false);
  auto serve = fleet.serve("hub.log");
  check_applied(fleet, "agent-a", 1);

  const std::string old_public = read_text(fleet.agent_state("agent-a") + "/agent.pub");
  hub.keygen("agent-a", true);
  REQUIRE(read_text(fleet.agent_state("agent-a") + "/agent.pub") != old_public);
  // The channel's next epoch is sealed to the new key only.
  CHECK_THAT(hub.rotate("agent-a"), Catch::Contains("epoch 2"));
  write_secret_source(fleet.ws.dir / "v2", "v2");
  hub.build_and_publish(fleet.ws.dir / "v2", 2, true);
  check_applied(fleet, "agent-a", 2);
  const Site a = site_of(fleet, "agent-a");
  CHECK(a.marker == "v2");
  CHECK(a.password == b64(value));
}

TEST_CASE(
    "an agent enrolled while the channel runs gets its current epoch and applies the current "
    "version, without a rebuild or a restart",
    "[sync][secrets][fleet]") {
  Fleet fleet(broker_users({"agent-a", "agent-b", "agent-c"}));
  SealedHub hub(fleet);
  for (const char* agent : {"agent-a", "agent-b", "agent-c"}) {
    fleet.agent_config(agent);
    hub.keygen(agent);
  }
  hub.add("agent-a");
  hub.add("agent-b");
  CHECK_THAT(hub.remove("agent-b"), Catch::Contains("epoch 2"));  // the current one is 2
  const std::string value = unique_value("pw-");
  hub.set("db", "password", value);
  write_secret_source(fleet.ws.dir / "v1", "v1");
  hub.build_and_publish(fleet.ws.dir / "v1", 1, false);
  auto serve = fleet.serve("hub.log");
  check_applied(fleet, "agent-a", 1);

  // agent-c runs before it is enrolled: refused, it waits and asks again by itself.
  auto agent = fleet.run_agent("agent-c", "agent-c.log");
  const std::string log = fleet.ws.dir / "agent-c.log";
  REQUIRE(wait_until(
      [&] {
        return hub_agent_status(fleet, "agent-c")
                   .value("last_error", "")
                   .find("sovdev-hub agents add agent-c") != std::string::npos;
      },
      kSecretFleetDeadline));
  CHECK(site_of(fleet, "agent-c").marker.empty());
  CHECK_THAT(hub.add("agent-c"), Catch::Contains("granted epoch 2"));
  INFO(read_text(log));
  // The dir target writes object by object: the whole version is there when the hub hears of it.
  REQUIRE(wait_until(
      [&] {
        const auto st = hub_agent_status(fleet, "agent-c");
        return st.value("applied_version", 0) == 1 && st.value("state", "") == "healthy";
      },
      kSecretFleetDeadline));
  const Site c = site_of(fleet, "agent-c");
  CHECK(c.marker == "v1");
  CHECK(c.password == b64(value));
}
