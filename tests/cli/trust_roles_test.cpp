// The hub's commands keep each key to its role: build signs with targets keys, serve and publish
// with online keys, and trust init refuses a root that mixes them. Legacy (publisher) roots
// still work until rotated.
#include <catch2/catch.hpp>

#include <filesystem>

#include "bundles/trust.hpp"
#include "hub/key_files.hpp"
#include "tests/cli/cli_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

RunResult serve_with(const Workspace& ws, const std::string& key) {
  // A broker nobody listens on: the key check comes before any connection.
  return run({hub_binary(), "serve", "--db", ws.dir / "hub.db", "--key", key, "--trust", ws.trust,
              "--broker", "tcp://127.0.0.1:1"});
}

// A schema 1 root as agents pinned before roles were split: pub1 is its publisher.
std::string write_legacy_root(const Workspace& ws) {
  auto root = hub::load_secret_key(ws.key("root1"));
  auto pub = hub::load_secret_key(ws.key("pub1"));
  REQUIRE(root);
  REQUIRE(pub);
  TrustRootSpec spec;
  spec.root_keys = {{root->name, root->public_key()}};
  spec.publisher_keys = {{pub->name, pub->public_key()}};
  auto body = make_trust_root(spec);
  REQUIRE(body);
  const std::string path = ws.dir / "legacy.root";
  write_text(path, *sign_trust_root(*body, {*root}));
  return path;
}

}  // namespace

TEST_CASE("serve refuses a targets or root key and names the role the key holds", "[cli][roles]") {
  Workspace ws;
  auto targets = serve_with(ws, ws.key("pub1"));
  CHECK(targets.exit_code == 5);
  CHECK_THAT(targets.err, Catch::Contains("serve: key 'pub1'") &&
                              Catch::Contains("is not an online key of trust root v1 (it is a "
                                              "targets key)"));
  auto root = serve_with(ws, ws.key("root1"));
  CHECK(root.exit_code == 5);
  CHECK_THAT(root.err, Catch::Contains("(it is a root key)"));
  auto no_trust = run({hub_binary(), "serve", "--db", ws.dir / "hub.db", "--key", ws.online_key(),
                       "--broker", "tcp://127.0.0.1:1"});
  CHECK(no_trust.exit_code == 2);
  CHECK_THAT(no_trust.err, Catch::Contains("--trust"));
}

TEST_CASE("build refuses the online key and publish refuses the targets key", "[cli][roles]") {
  Workspace ws;
  auto online_build = run({hub_binary(), "build", edge_stack("v1"), "--stack", "kp", "--channel",
                           "edge", "--version", "1", "--arch", "amd64", "--key", ws.online_key(),
                           "--trust", ws.trust, "--out", ws.dir / "x.sdb", "--quiet"});
  CHECK(online_build.exit_code == 5);
  CHECK_THAT(online_build.err,
             Catch::Contains("build: key 'online1'") &&
                 Catch::Contains("is not a targets key of trust root v1 (it is an online key)"));
  CHECK_FALSE(std::filesystem::exists(ws.dir / "x.sdb"));

  REQUIRE(ws.build(edge_stack("v1"), ws.dir / "a.sdb", 1, {"--trust", ws.trust}).exit_code == 0);
  auto targets_publish = run({hub_binary(), "publish", ws.dir / "a.sdb", "--db", ws.dir / "hub.db",
                              "--key", ws.key("pub1"), "--trust", ws.trust});
  CHECK(targets_publish.exit_code == 5);
  CHECK_THAT(targets_publish.err,
             Catch::Contains("publish: key 'pub1'") && Catch::Contains("is not an online key"));
  auto published = run({hub_binary(), "publish", ws.dir / "a.sdb", "--db", ws.dir / "hub.db",
                        "--key", ws.online_key(), "--trust", ws.trust});
  INFO(published.err);
  CHECK(published.exit_code == 0);
}

TEST_CASE("trust init refuses one key in both the targets and the online role", "[cli][roles]") {
  Workspace ws;
  auto r = run({hub_binary(), "trust", "init", "--root", ws.dir / "keys/root1.pub", "--targets",
                ws.dir / "keys/pub1.pub", "--online", ws.dir / "keys/pub1.pub", "--sign",
                ws.key("root1"), "--out", ws.dir / "mixed.root"});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains("both the online and the targets role"));
  CHECK_FALSE(std::filesystem::exists(ws.dir / "mixed.root"));

  auto help = run({hub_binary(), "trust", "init", "--help"});
  CHECK_THAT(help.out, Catch::Contains("--targets") && Catch::Contains("--online") &&
                           Catch::Contains("--online-threshold") &&
                           Catch::Contains("--targets-threshold"));
  auto shown = run({hub_binary(), "inspect", ws.trust, "--json"});
  INFO(shown.err);
  CHECK_THAT(shown.out, Catch::Contains("\"online\"") && Catch::Contains("\"targets\"") &&
                            !Catch::Contains("legacy"));
}

TEST_CASE("an agent pinned to a legacy publisher root keeps working and rotates to split roles",
          "[cli][roles]") {
  Workspace ws;
  const std::string legacy = write_legacy_root(ws);
  auto shown = run({hub_binary(), "inspect", legacy});
  CHECK_THAT(shown.out, Catch::Contains("legacy") && Catch::Contains("publisher keys hold both"));

  // The publisher key signs bundles and (with a warning) serves: both roles, as before.
  REQUIRE(ws.build(edge_stack("v1"), ws.dir / "a.sdb", 1, {"--trust", legacy}).exit_code == 0);
  auto imported = run({agent_binary(), "import", "--state", ws.state(), "--trust", legacy,
                       "--channel", "edge", ws.dir / "a.sdb"});
  INFO(imported.err);
  REQUIRE(imported.exit_code == 0);
  auto publish = run({hub_binary(), "publish", ws.dir / "a.sdb", "--db", ws.dir / "hub.db", "--key",
                      ws.key("pub1"), "--trust", legacy});
  CHECK(publish.exit_code == 0);
  CHECK_THAT(publish.err, Catch::Contains("legacy root"));

  // Rotation by the root key alone: pub1 becomes the targets key, online1 the hub's.
  auto rotated =
      run({hub_binary(), "trust", "rotate", "--current", legacy, "--root",
           ws.dir / "keys/root1.pub", "--targets", ws.dir / "keys/pub1.pub", "--online",
           ws.dir / "keys/online1.pub", "--sign", ws.key("root1"), "--out", ws.dir / "v2.root"});
  INFO(rotated.err);
  REQUIRE(rotated.exit_code == 0);
  CHECK_THAT(rotated.out, Catch::Contains("replaces legacy v1"));
  REQUIRE(ws.build(edge_stack("v2"), ws.dir / "b.sdb", 2).exit_code == 0);
  auto upgraded = run({agent_binary(), "import", "--state", ws.state(), "--trust",
                       ws.dir / "v2.root", "--channel", "edge", ws.dir / "b.sdb"});
  INFO(upgraded.err);
  REQUIRE(upgraded.exit_code == 0);
  auto status = run({agent_binary(), "status", "--state", ws.state(), "--json"});
  CHECK_THAT(status.out, Catch::Contains("\"trust_root_version\": 2"));
  // After the rotation the publisher key is a targets key only: serve refuses it.
  auto serve = run({hub_binary(), "serve", "--db", ws.dir / "hub.db", "--key", ws.key("pub1"),
                    "--trust", ws.dir / "v2.root", "--broker", "tcp://127.0.0.1:1"});
  CHECK(serve.exit_code == 5);
  CHECK_THAT(serve.err, Catch::Contains("it is a targets key"));
}
