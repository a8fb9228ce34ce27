// Sealed Secrets opened at apply time (issue #20 item 5, docs/design-secrets.md "On the agent"):
// the real Daemon applies bundles whose Secrets are sealed under a channel epoch key. The value
// reaches the target's own copy and nothing else; a version whose secrets cannot be opened is
// applied not at all, the last good one staying.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <random>

#include "agent/secret_keys.hpp"
#include "platform/store/epoch_keys.hpp"
#include "platform/target/dir.hpp"
#include "platform/target/exec.hpp"
#include "tests/sync/sealed_site.hpp"

using namespace sovdev;
using namespace sovdev::testing;
using nlohmann::json;

namespace {

std::string unique(const std::string& prefix) {
  std::random_device rd;
  std::string out = prefix;
  for (int i = 0; i < 16; ++i) out += "0123456789abcdef"[rd() % 16];
  return out;
}

// The file the dir target wrote for Secret app/db, "" when there is none.
std::string secret_file(const std::string& dir) {
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.find(".secret.app.db-") != std::string::npos) return e.path().string();
  }
  return "";
}

// That file parsed; null when there is none or it is empty.
json dir_secret(const std::string& dir) {
  const std::string path = secret_file(dir);
  if (path.empty()) return nullptr;
  const std::string text = read_text(path);
  return text.empty() ? json(nullptr) : json::parse(text);
}

std::vector<TestObject> app(const std::string& password, const std::string& mode) {
  return {{config_map_object("app", "settings", mode), {}},
          {secret_object("app", "db"), {{"password", password}, {"user", "edge-app"}}}};
}

void require_nowhere(const std::string& haystack, const std::string& value) {
  for (const auto& form : forms_of(value)) {
    INFO("the value, as " << form);
    REQUIRE(haystack.find(form) == std::string::npos);
  }
}

struct DirSite : SealedSite {
  std::string applied = ws.dir / "applied";
  DirSite() {
    std::filesystem::create_directories(applied);
    target::DirOptions options;
    options.prune_grace = std::chrono::seconds(0);
    use(target::make_dir_target(applied, options));
  }
};

}  // namespace

TEST_CASE("a sealed Secret reaches the dir target's 0600 file and nothing the agent keeps or says",
          "[sealed][dir]") {
  DirSite site;
  const auto epoch3 = seal::random_key();
  const std::string password = unique("pw-");
  site.import(write_sealed_bundle(site.ws, "v1.sdb", 1, app(password, "one"), {3, &epoch3}));
  site.give_key(3, epoch3);
  site.apply_cached();
  INFO(site.log());
  REQUIRE(site.last_good() == 1u);
  const json secret = dir_secret(site.applied);
  REQUIRE(secret["data"]["password"] == base64_of(password));
  REQUIRE(secret["data"]["user"] == base64_of("edge-app"));
  struct stat st {};
  REQUIRE(::stat(secret_file(site.applied).c_str(), &st) == 0);
  REQUIRE((st.st_mode & 0777) == 0600);
  require_nowhere(site.everything_kept_or_said(), password);
}

TEST_CASE("a sealed Secret reaches the exec command's stdin, and none of its output reaches errors",
          "[sealed][exec]") {
  SealedSite site;
  const std::string seen = site.ws.dir / "stdin.txt";
  site.use(std::move(*target::make_exec_target("sh -c 'cat > " + seen + "'")), "exec");
  const auto epoch3 = seal::random_key();
  const std::string password = unique("pw-");
  site.import(write_sealed_bundle(site.ws, "v1.sdb", 1, app(password, "one"), {3, &epoch3}));
  site.give_key(3, epoch3);
  site.apply_cached();
  INFO(site.log());
  REQUIRE(site.last_good() == 1u);
  REQUIRE(read_text(seen).find(base64_of(password)) != std::string::npos);
  require_nowhere(site.everything_kept_or_said(), password);

  // A command that refuses, quoting its whole input back (as a parser's error may).
  site.use(std::move(*target::make_exec_target("sh -c 'cat >&2; exit 3'")), "exec");
  const std::string second = unique("pw-");
  site.import(write_sealed_bundle(site.ws, "v2.sdb", 2, app(second, "two"), {3, &epoch3}));
  site.apply_cached();
  REQUIRE(site.last_good() == 1u);  // and the rollback, through the same command, failed too
  REQUIRE(site.failed_recorded(2));
  const std::string said = site.everything_kept_or_said();
  // A version with sealed Secrets: the command's output is left out of the error whole (a
  // value could be cut or escaped past any search for it).
  REQUIRE(said.find("its output is not shown") != std::string::npos);
  require_nowhere(said, "edge-app");
  require_nowhere(said, second);
  require_nowhere(said, password);
}

TEST_CASE(
    "a version whose epoch key is missing waits, the last good one staying, and is applied "
    "once the key is here",
    "[sealed][wait]") {
  DirSite site;
  const auto epoch3 = seal::random_key();
  const auto epoch4 = seal::random_key();
  site.import(write_sealed_bundle(site.ws, "v1.sdb", 1, app(unique("pw-"), "one"), {3, &epoch3}));
  site.give_key(3, epoch3);
  site.apply_cached();
  REQUIRE(site.last_good() == 1u);

  const std::string password = unique("pw-");
  site.import(write_sealed_bundle(site.ws, "v2.sdb", 2, app(password, "two"), {4, &epoch4}));
  site.apply_cached();
  INFO(site.log());
  REQUIRE(site.last_good() == 1u);
  REQUIRE(dir_secret(site.applied)["data"]["password"] != base64_of(password));
  REQUIRE(!site.failed_recorded(2));
  const std::string why = site.daemon->status().last_error();
  INFO(why);
  REQUIRE(why.find("kp@2") != std::string::npos);
  REQUIRE(why.find("no key for channel edge epoch 4") != std::string::npos);
  REQUIRE(why.find("sovdev-hub agents add site-a --pub agent.pub --channel edge") !=
          std::string::npos);
  // Waiting is not failing: `sync --once` goes on while the key is asked for, and says why.
  REQUIRE(!site.daemon->failure());
  REQUIRE(!site.daemon->settled());
  REQUIRE(site.daemon->unmet());
  REQUIRE(site.daemon->unmet()->message == why);

  // Not yet: tried again, still waiting.
  site.tick_after(1500);
  REQUIRE(site.last_good() == 1u);
  site.give_key(4, epoch4);
  // The retried fetch asked the hub (there is none here); at its request timeout it finds the
  // key in the cache and the version applies.
  site.tick_after(11000);
  REQUIRE(site.last_good() == 2u);
  REQUIRE(dir_secret(site.applied)["data"]["password"] == base64_of(password));
  REQUIRE(site.daemon->status().last_error().empty());
  require_nowhere(site.everything_kept_or_said(), password);
}

TEST_CASE("an agent without its own key waits and names keygen", "[sealed][wait]") {
  DirSite site;
  REQUIRE(std::filesystem::remove(agent::agent_key_path(site.state)));
  site.use(target::make_dir_target(site.applied));
  const auto epoch3 = seal::random_key();
  site.import(write_sealed_bundle(site.ws, "v1.sdb", 1, app(unique("pw-"), "one"), {3, &epoch3}));
  site.give_key(3, epoch3);
  site.apply_cached();
  REQUIRE(!site.last_good());
  REQUIRE(dir_secret(site.applied).is_null());
  REQUIRE(!site.failed_recorded(1));
  const std::string why = site.daemon->status().last_error();
  INFO(why);
  REQUIRE(why.find("sovdev-agent keygen") != std::string::npos);
  REQUIRE(why.find("restart the agent") != std::string::npos);
  REQUIRE(why.find("sovdev-hub agents add site-a") != std::string::npos);
}

TEST_CASE("an epoch key sealed to another agent is kept but asked for again; nothing applied",
          "[sealed][wait]") {
  DirSite site;
  const auto epoch3 = seal::random_key();
  const seal::AgentKey other = seal::generate_agent_key("other");
  site.import(write_sealed_bundle(site.ws, "v1.sdb", 1, app(unique("pw-"), "one"), {3, &epoch3}));
  site.give_key(3, epoch3, &other);
  site.apply_cached();
  REQUIRE(!site.last_good());
  REQUIRE(dir_secret(site.applied).is_null());
  REQUIRE(!site.failed_recorded(1));
  // Kept: only keys that opened are cached by a fetch, so this agent's key changed since.
  REQUIRE(*store::EpochKeyCache(*site.db).find("edge", 3));
  const std::string why = site.daemon->status().last_error();
  INFO(why);
  REQUIRE(why.find("does not open with this agent's key") != std::string::npos);
  REQUIRE(why.find("sovdev-hub agents rotate site-a") != std::string::npos);
  // The right key arrives: applied.
  site.give_key(3, epoch3);
  site.tick_after(1500);
  REQUIRE(site.last_good() == 1u);
}

TEST_CASE("a version whose sealed records do not fit is refused whole, the last good one staying",
          "[sealed][refused]") {
  DirSite site;
  const auto epoch3 = seal::random_key();
  const auto epoch4 = seal::random_key();
  const std::string first = unique("pw-");
  site.import(write_sealed_bundle(site.ws, "v1.sdb", 1, app(first, "one"), {3, &epoch3}));
  site.give_key(3, epoch3);
  site.give_key(4, epoch4);
  site.apply_cached();
  REQUIRE(site.last_good() == 1u);

  const std::string password = unique("pw-");
  std::vector<TestObject> objects = app(password, "two");
  SealPlan plan{3, &epoch3};
  std::string expected;
  SECTION("a sealed byte changed, and the bundle signed again") {
    plan.tamper = true;
    expected = "Secret app/db do not open with the key of channel edge epoch 3";
  }
  SECTION("the manifest names epoch 4; the records are sealed with epoch 3's key") {
    plan = {4, &epoch4, &epoch3};
    expected = "Secret app/db do not open with the key of channel edge epoch 4";
  }
  SECTION("the manifest declares one sealed Secret more than the payload holds") {
    plan.declared_off_by = 1;
    expected = "declares 2 sealed Secrets, its payload holds 1";
  }
  SECTION("a sealed ConfigMap") {
    objects.push_back({config_map_object("app", "sneaky", ""), {{"value", password}}});
    expected = "ConfigMap app/sneaky (v1) is sealed, but only v1 Secrets may be";
  }
  SECTION("a sealed Secret in a bundle whose manifest declares none") {
    plan.declared_off_by = -1;
    expected = "Secret app/db is sealed, but the manifest declares no sealed objects";
  }
  site.import(write_sealed_bundle(site.ws, "v2.sdb", 2, objects, plan));
  site.apply_cached();
  INFO(site.log());
  REQUIRE(site.last_good() == 1u);
  REQUIRE(site.failed_recorded(2));
  const json secret = dir_secret(site.applied);
  REQUIRE(secret["data"]["password"] == base64_of(first));
  for (const auto& e : std::filesystem::directory_iterator(site.applied)) {
    REQUIRE(read_text(e.path().string()).find("\"two\"") == std::string::npos);
  }
  const std::string why = site.daemon->status().last_error();
  INFO(why);
  REQUIRE(why.find("refused kp@2") != std::string::npos);
  REQUIRE(why.find(expected) != std::string::npos);
  REQUIRE(why.find("sovdev-hub build") != std::string::npos);
  require_nowhere(site.everything_kept_or_said(), password);
}

TEST_CASE("a rollback to a sealed last good version opens its Secrets again", "[sealed][dir]") {
  DirSite site;
  const auto epoch3 = seal::random_key();
  const std::string password = unique("pw-");
  site.import(write_sealed_bundle(site.ws, "v1.sdb", 1, app(password, "one"), {3, &epoch3}));
  site.give_key(3, epoch3);
  site.apply_cached();
  REQUIRE(site.last_good() == 1u);
  // Version 2 changes the value, then fails at the target after the Secret was written: the
  // dir target refuses an object that appears twice.
  std::vector<TestObject> objects = app(unique("pw-"), "two");
  objects.push_back({config_map_object("app", "settings", "again"), {}});
  site.import(write_sealed_bundle(site.ws, "v2.sdb", 2, objects, {3, &epoch3}));
  site.apply_cached();
  INFO(site.log());
  REQUIRE(site.last_good() == 1u);
  REQUIRE(dir_secret(site.applied)["data"]["password"] == base64_of(password));
  require_nowhere(site.everything_kept_or_said(), password);
}

TEST_CASE("a reconcile whose epoch key went missing applies nothing and waits for the key",
          "[sealed][reconcile]") {
  DirSite site;
  target::DirOptions options;
  options.prune_grace = std::chrono::seconds(0);
  site.use(target::make_dir_target(site.applied, options), "dir", 60000);
  const auto epoch3 = seal::random_key();
  const std::string password = unique("pw-");
  site.import(write_sealed_bundle(site.ws, "v1.sdb", 1, app(password, "one"), {3, &epoch3}));
  site.give_key(3, epoch3);
  site.apply_cached();
  REQUIRE(site.last_good() == 1u);
  // Someone edits the Secret on the box; the cached key is gone (dropped as not opening).
  write_text(secret_file(site.applied), "{}");
  REQUIRE(store::EpochKeyCache(*site.db).drop("edge", 3));
  site.tick_after(60000);
  INFO(site.log());
  REQUIRE(read_text(secret_file(site.applied)) == "{}");
  const std::string why = site.daemon->status().last_error();
  INFO(why);
  REQUIRE(why.find("reconcile: cannot open the sealed secrets of kp@1") != std::string::npos);
  REQUIRE(why.find("sovdev-hub agents add site-a") != std::string::npos);
  REQUIRE(!site.failed_recorded(1));
  // The key comes back: the version is fetched again (from the cache) and applied.
  site.give_key(3, epoch3);
  site.tick_after(1500);
  REQUIRE(dir_secret(site.applied)["data"]["password"] == base64_of(password));
  REQUIRE(site.daemon->status().last_error().empty());
  require_nowhere(site.everything_kept_or_said(), password);
}

TEST_CASE("sovdev-agent apply opens sealed Secrets with agent.key; verify shows them sealed",
          "[sealed][cli]") {
  SealedSite site;
  const std::string applied = site.ws.dir / "applied";
  std::filesystem::create_directories(applied);
  const std::string config = site.ws.dir / "agent.toml";
  write_text(config, "agent_id = \"site-a\"\nchannels = [\"edge\"]\nstate_dir = \"" + site.state +
                         "\"\ntrust_root = \"" + site.ws.trust +
                         "\"\n[broker]\nurls = [\"tcp://127.0.0.1:1\"]\n"
                         "[apply]\ntarget = \"dir\"\ndir = \"" +
                         applied + "\"\n");
  const auto epoch3 = seal::random_key();
  const std::string password = unique("pw-");
  const std::string bundle =
      write_sealed_bundle(site.ws, "v1.sdb", 1, app(password, "one"), {3, &epoch3});
  site.import(bundle);

  auto shown = run({agent_binary(), "verify", "--trust", site.ws.trust, bundle});
  INFO(shown.out << shown.err);
  REQUIRE(shown.exit_code == 0);
  REQUIRE_THAT(shown.out, Catch::Contains("1 sealed Secret(s) (channel edge epoch 3): values "
                                          "<sealed>"));

  auto waiting = run({agent_binary(), "apply", "--config", config});
  INFO(waiting.out << waiting.err);
  REQUIRE(waiting.exit_code != 0);
  REQUIRE_THAT(waiting.err, Catch::Contains("sovdev-hub agents add site-a --pub agent.pub "
                                            "--channel edge"));
  REQUIRE(secret_file(applied).empty());

  site.give_key(3, epoch3);
  auto done = run({agent_binary(), "apply", "--config", config});
  INFO(done.out << done.err);
  REQUIRE(done.exit_code == 0);
  REQUIRE(dir_secret(applied)["data"]["password"] == base64_of(password));
  for (const auto& said : {shown.out, shown.err, waiting.out, waiting.err, done.out, done.err}) {
    require_nowhere(said, password);
  }
  require_nowhere(site.everything_kept_or_said(), password);
}

TEST_CASE("a failed apply of a version holding an empty sealed value reports and does not hang",
          "[sealed][exec]") {
  SealedSite site;
  site.use(std::move(*target::make_exec_target("sh -c 'cat >/dev/null; exit 3'")), "exec");
  const auto epoch3 = seal::random_key();
  const std::string password = unique("pw-");
  std::vector<TestObject> objects = app(password, "one");
  objects.back().sealed["empty"] =
      "";  // `secret set` of empty stdin, or `x: ""` beside a reference
  site.import(write_sealed_bundle(site.ws, "v1.sdb", 1, objects, {3, &epoch3}));
  site.give_key(3, epoch3);
  // Every opened value is cut out of the target's error: an empty one matched everywhere and
  // the scrub never ended.
  site.apply_cached();
  INFO(site.log());
  REQUIRE(!site.last_good());
  REQUIRE(site.failed_recorded(1));
  REQUIRE_THAT(site.daemon->status().last_error(), Catch::Contains("exited with status 3"));
  require_nowhere(site.everything_kept_or_said(), password);
}
