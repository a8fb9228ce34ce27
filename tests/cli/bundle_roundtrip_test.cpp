#include <catch2/catch.hpp>
#include <filesystem>

#include "bundles/payload.hpp"
#include "bundles/trust.hpp"
#include "bundles/yaml/objects.hpp"
#include "platform/fs/bundle_reader.hpp"
#include "platform/fs/files.hpp"
#include "tests/cli/cli_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

// What the hub should have packed: the folder parsed and ordered by the library directly.
std::vector<yaml::Object> expected_objects(const std::string& dir) {
  std::vector<yaml::Object> all;
  auto files = fs::list_files(dir, {".yaml", ".yml", ".json"});
  REQUIRE(files);
  for (const auto& f : *files) {
    auto objects = yaml::parse_manifests(f, read_text(f));
    REQUIRE(objects);
    for (auto& o : *objects) all.push_back(std::move(o));
  }
  auto ordered = yaml::order_objects(std::move(all));
  REQUIRE(ordered);
  return std::move(*ordered);
}

// Builds, verifies, imports and unpacks each source folder in turn (versions 1, 2 ...), checking
// the bundle holds the folder's objects in apply order, CRDs first and the APIService last.
void check_roundtrip(const std::vector<std::string>& sources, const std::string& files_built) {
  Workspace ws;
  uint64_t version = 1;
  for (const std::string& source : sources) {
    INFO(source);
    const std::string file = ws.dir / ("v" + std::to_string(version) + ".sdb");
    auto built = ws.build(source, file, version++);
    REQUIRE(built.exit_code == 0);
    CHECK_THAT(built.out, Catch::Contains(files_built));

    auto verified = ws.verify(file);
    CHECK(verified.exit_code == 0);
    CHECK_THAT(verified.out, Catch::StartsWith("valid kp@"));

    auto imported = ws.import(file);
    INFO(imported.err);
    REQUIRE(imported.exit_code == 0);
    CHECK_THAT(imported.out, Catch::Contains("state verified"));

    const auto expected = expected_objects(source);
    const auto records = unpack_bundle(file, ws.trust);
    REQUIRE(records.size() == expected.size());
    for (size_t i = 0; i < records.size(); i++) {
      INFO("object " << i << ": " << expected[i].kind << "/" << expected[i].name);
      CHECK(records[i].kind() == expected[i].kind);
      CHECK(records[i].name() == expected[i].name);
      CHECK(records[i].namespace_() == expected[i].namespace_);
      CHECK(records[i].json() == expected[i].json);
    }
    // CRDs and the Namespaces lead; the APIService (an aggregated API) comes last.
    CHECK(records.front().kind() == "CustomResourceDefinition");
    CHECK(records.back().kind() == "APIService");
  }
  auto status = run({agent_binary(), "status", "--state", ws.state(), "--json"});
  REQUIRE(status.exit_code == 0);
  CHECK_THAT(status.out, Catch::Contains("\"newest_verified\": " + std::to_string(version - 1)));
}

}  // namespace

TEST_CASE(
    "both edge-stack versions build, verify, import and unpack to the same objects in apply order",
    "[cli]") {
  check_roundtrip({edge_stack("v1"), edge_stack("v2")}, "objects from 137 files");
}

TEST_CASE(
    "both kube-prometheus versions build, verify, import and unpack to the same objects in apply "
    "order",
    "[cli][realworld]") {
  SOVDEV_SKIP_WITHOUT_REALWORLD();
  check_roundtrip({kube_prometheus("81570cb1"), kube_prometheus("f214874c")},
                  "objects from 95 files");
}

TEST_CASE("building twice from the same input gives the same payload", "[cli]") {
  Workspace ws;
  REQUIRE(ws.build(edge_stack("v1"), ws.dir / "a.sdb", 1).exit_code == 0);
  REQUIRE(ws.build(edge_stack("v1"), ws.dir / "b.sdb", 1).exit_code == 0);
  const auto a = unpack_bundle(ws.dir / "a.sdb", ws.trust);
  const auto b = unpack_bundle(ws.dir / "b.sdb", ws.trust);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); i++) CHECK(a[i].SerializeAsString() == b[i].SerializeAsString());
}

TEST_CASE("every command answers --help and a wrong option with usage", "[cli]") {
  for (const auto& argv :
       std::vector<std::vector<std::string>>{{hub_binary(), "--help"},
                                             {hub_binary(), "build", "--help"},
                                             {hub_binary(), "keygen", "--help"},
                                             {hub_binary(), "trust", "init", "--help"},
                                             {hub_binary(), "trust", "rotate", "--help"},
                                             {hub_binary(), "inspect", "--help"},
                                             {agent_binary(), "--help"},
                                             {agent_binary(), "verify", "--help"},
                                             {agent_binary(), "import", "--help"},
                                             {agent_binary(), "status", "--help"}}) {
    auto r = run(argv);
    INFO(argv[1]);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("Usage"));
  }
  auto bad = run({hub_binary(), "build", "--no-such-option"});
  CHECK(bad.exit_code == 2);
  auto none = run({agent_binary()});
  CHECK(none.exit_code == 2);
}

TEST_CASE("keygen writes a 0600 secret key and refuses to overwrite it", "[cli]") {
  TempDir dir;
  REQUIRE(run({hub_binary(), "keygen", "--out", dir.path(), "--name", "k"}).exit_code == 0);
  const auto perms = std::filesystem::status(dir / "k.key").permissions();
  CHECK((perms & std::filesystem::perms::all) ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
  auto again = run({hub_binary(), "keygen", "--out", dir.path(), "--name", "k"});
  CHECK(again.exit_code == 7);
  CHECK_THAT(again.err, Catch::Contains("refusing to overwrite"));
}

TEST_CASE("a secret key readable by others is refused", "[cli]") {
  Workspace ws;
  std::filesystem::permissions(ws.key("pub1"), std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  auto r = ws.build(edge_stack("v1"), ws.dir / "x.sdb", 1);
  CHECK(r.exit_code == 4);
  CHECK_THAT(r.err, Catch::Contains("chmod 600"));
}

TEST_CASE("trust rotate writes a root the agent accepts and the import pins it", "[cli]") {
  Workspace ws;
  REQUIRE(run({hub_binary(), "keygen", "--out", ws.dir / "keys", "--name", "root2"}).exit_code ==
          0);
  auto refused =
      run({hub_binary(), "trust", "rotate", "--current", ws.trust, "--root",
           ws.dir / "keys/root2.pub", "--targets", ws.dir / "keys/pub1.pub", "--online",
           ws.dir / "keys/online1.pub", "--sign", ws.key("root2"), "--out", ws.dir / "v2.root"});
  CHECK(refused.exit_code == 5);
  CHECK_THAT(refused.err, Catch::Contains("current root keys"));
  CHECK_FALSE(std::filesystem::exists(ws.dir / "v2.root"));

  REQUIRE(ws.build(edge_stack("v1"), ws.dir / "a.sdb", 1).exit_code == 0);
  REQUIRE(ws.import(ws.dir / "a.sdb").exit_code == 0);  // pins v1
  auto rotated = run({hub_binary(), "trust", "rotate", "--current", ws.trust, "--root",
                      ws.dir / "keys/root2.pub", "--targets", ws.dir / "keys/pub1.pub", "--online",
                      ws.dir / "keys/online1.pub", "--sign", ws.key("root1"), "--sign",
                      ws.key("root2"), "--out", ws.dir / "v2.root"});
  REQUIRE(rotated.exit_code == 0);
  REQUIRE(ws.build(edge_stack("v2"), ws.dir / "b.sdb", 2).exit_code == 0);
  auto imported = run({agent_binary(), "import", "--state", ws.state(), "--trust",
                       ws.dir / "v2.root", "--channel", "edge", ws.dir / "b.sdb"});
  INFO(imported.err);
  REQUIRE(imported.exit_code == 0);
  auto status = run({agent_binary(), "status", "--state", ws.state(), "--json"});
  CHECK_THAT(status.out, Catch::Contains("\"trust_root_version\": 2"));
}
