// The dir target against a real folder: what k3s's auto-deploy folder would see.
#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>

#include "tests/target/helpers.hpp"

using namespace sovdev;
using namespace sovdev::target;
using namespace sovdev::target::test;
using sovdev::testing::read_text;
using sovdev::testing::TempDir;
using sovdev::testing::write_text;

namespace {

const std::string kInventory = ".sovdev-sovdev.inventory";

// A folder, a target with a clock the test moves, and the v1 objects.
struct Fixture {
  TempDir dir;
  int64_t now = 1'800'000'000;
  std::unique_ptr<Target> target;
  std::vector<pb::ResourceRecord> v1 = {
      record("v1", "Namespace", "", "web"),
      config_map("settings"),
      record("apps/v1", "Deployment", "web", "api", ",\"spec\":{\"replicas\":2}"),
  };

  explicit Fixture(std::chrono::seconds grace = std::chrono::seconds(600)) {
    target = make_dir_target(dir.path(), {grace, [this] { return now; }});
  }
  std::string file_of(const pb::ResourceRecord& o) const {
    return dir / object_file_name("sovdev", o);
  }
  bool exists(const pb::ResourceRecord& o) const { return std::filesystem::exists(file_of(o)); }
};

// Sets a file's mtime far in the past, so a rewrite cannot hide within the clock's resolution.
void age(const std::string& path) {
  const struct timespec times[2] = {{1'000'000'000, 0}, {1'000'000'000, 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}

}  // namespace

TEST_CASE("the first apply writes one file per object, holding the object's JSON") {
  Fixture f;
  const ApplyResult r = apply_all(*f.target, "sovdev", 1, f.v1);
  CHECK(r.applied == 3);
  CHECK(r.unchanged == 0);
  CHECK(r.pruned == 0);
  std::map<std::string, std::string> expected;
  for (const auto& o : f.v1) expected[object_file_name("sovdev", o)] = o.json();
  auto files = folder(f.dir.path());
  REQUIRE(files.count(kInventory) == 1);
  files.erase(kInventory);
  CHECK(files == expected);
}

TEST_CASE("files are private to root: a bundle may carry Secrets") {
  Fixture f;
  apply_all(*f.target, "sovdev", 1, f.v1);
  struct stat st {};
  REQUIRE(::stat(f.file_of(f.v1[1]).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("re-applying identical content leaves every file untouched") {
  Fixture f;
  apply_all(*f.target, "sovdev", 1, f.v1);
  std::vector<Identity> before;
  for (const auto& o : f.v1) {
    age(f.file_of(o));
    before.push_back(identity(f.file_of(o)));
  }
  const ApplyResult r = apply_all(*f.target, "sovdev", 2, f.v1);
  CHECK(r.applied == 0);
  CHECK(r.unchanged == 3);
  CHECK(r.changed.empty());
  CHECK(drift_summary(r, 3) == "0 of 3 drifted");
  for (size_t i = 0; i < f.v1.size(); ++i) CHECK(identity(f.file_of(f.v1[i])) == before[i]);
}

TEST_CASE("a changed object is rewritten and only that one") {
  Fixture f;
  apply_all(*f.target, "sovdev", 1, f.v1);
  for (const auto& o : f.v1) age(f.file_of(o));
  const Identity namespace_before = identity(f.file_of(f.v1[0]));
  const Identity settings_before = identity(f.file_of(f.v1[1]));
  auto v2 = f.v1;
  v2[1] = config_map("settings", "changed");
  const ApplyResult r = apply_all(*f.target, "sovdev", 2, v2);
  CHECK(r.applied == 1);
  CHECK(r.unchanged == 2);
  CHECK(r.changes_known);
  CHECK(r.changed == std::vector<std::string>{"ConfigMap default/settings"});
  CHECK(identity(f.file_of(v2[0])) == namespace_before);
  CHECK_FALSE(identity(f.file_of(v2[1])) == settings_before);
  CHECK(read_text(f.file_of(v2[1])) == v2[1].json());
}

TEST_CASE("a version that drops objects empties exactly their files, and a foreign file survives") {
  Fixture f;
  write_text(f.dir / "traefik-config.yaml", "operator's own");
  write_text(f.dir / "sovdev.configmap.default.settings-000000000000.json", "looks like ours");
  apply_all(*f.target, "sovdev", 1, f.v1);
  age(f.file_of(f.v1[0]));
  const Identity kept = identity(f.file_of(f.v1[0]));

  const ApplyResult r = apply_all(*f.target, "sovdev", 2, {f.v1[0]});
  CHECK(r.pruned == 2);
  CHECK(r.unchanged == 1);
  // k3s deletes a file's objects when the file turns empty, not when it disappears (#1971).
  CHECK(read_text(f.file_of(f.v1[1])).empty());
  CHECK(read_text(f.file_of(f.v1[2])).empty());
  CHECK(identity(f.file_of(f.v1[0])) == kept);
  CHECK(read_text(f.dir / "traefik-config.yaml") == "operator's own");
  CHECK(read_text(f.dir / "sovdev.configmap.default.settings-000000000000.json") ==
        "looks like ours");
}

TEST_CASE("an emptied file is removed by the first commit after the grace period") {
  Fixture f;
  apply_all(*f.target, "sovdev", 1, f.v1);
  apply_all(*f.target, "sovdev", 2, {f.v1[0]});
  REQUIRE(f.exists(f.v1[1]));

  f.now += 599;  // k3s may not have rescanned yet
  CHECK(apply_all(*f.target, "sovdev", 2, {f.v1[0]}).pruned == 0);
  CHECK(f.exists(f.v1[1]));
  CHECK(read_text(f.file_of(f.v1[1])).empty());

  f.now += 1;
  CHECK(apply_all(*f.target, "sovdev", 2, {f.v1[0]}).pruned == 0);
  CHECK_FALSE(f.exists(f.v1[1]));
  CHECK_FALSE(f.exists(f.v1[2]));
  CHECK(f.exists(f.v1[0]));
  CHECK(read_text(f.dir / kInventory).find(object_file_name("sovdev", f.v1[1])) ==
        std::string::npos);
}

TEST_CASE("with no grace period a pruned file is emptied and removed in the same commit") {
  Fixture f(std::chrono::seconds(0));
  apply_all(*f.target, "sovdev", 1, f.v1);
  CHECK(apply_all(*f.target, "sovdev", 2, {f.v1[0]}).pruned == 2);
  CHECK_FALSE(f.exists(f.v1[1]));
  CHECK_FALSE(f.exists(f.v1[2]));
  CHECK(f.exists(f.v1[0]));
}

TEST_CASE("an object dropped and brought back before removal gets its content back") {
  Fixture f;
  apply_all(*f.target, "sovdev", 1, f.v1);
  apply_all(*f.target, "sovdev", 2, {f.v1[0]});
  f.now += 3600;
  const ApplyResult r = apply_all(*f.target, "sovdev", 3, f.v1);
  CHECK(r.applied == 2);
  for (const auto& o : f.v1) CHECK(read_text(f.file_of(o)) == o.json());
  f.now += 3600;
  apply_all(*f.target, "sovdev", 3, f.v1);
  for (const auto& o : f.v1) CHECK(read_text(f.file_of(o)) == o.json());
}

TEST_CASE("no dotfile temps are left behind, and a crash's stale temps are cleared") {
  Fixture f;
  apply_all(*f.target, "sovdev", 1, f.v1);
  apply_all(*f.target, "sovdev", 2, {f.v1[0], config_map("other")});
  CHECK(dotfiles(f.dir.path()) == std::vector<std::string>{kInventory});

  const std::string stale = "." + object_file_name("sovdev", f.v1[1]) + ".tmp-123456";
  write_text(f.dir / stale, "half");
  write_text(f.dir / ("." + kInventory + ".tmp-42"), "half");
  write_text(f.dir / ".operator-notes", "keep");
  apply_all(*f.target, "sovdev", 3, f.v1);
  CHECK(dotfiles(f.dir.path()) == std::vector<std::string>{".operator-notes", kInventory});
}

TEST_CASE("abort then a full apply gives exactly the new version's folder") {
  Fixture f;
  apply_all(*f.target, "sovdev", 1, f.v1);
  std::vector<pb::ResourceRecord> v2 = {f.v1[0], config_map("settings", "2"), config_map("new")};

  REQUIRE(f.target->begin({"sovdev", 2, "d2", {}}));
  REQUIRE(f.target->apply(v2[1]));
  REQUIRE(f.target->apply(v2[2]));
  f.target->abort();
  // The previous version's files plus some of the new ones: usable, not yet whole.
  CHECK(read_text(f.file_of(v2[1])) == v2[1].json());
  CHECK(f.exists(v2[2]));
  CHECK(read_text(f.file_of(f.v1[2])) == f.v1[2].json());

  SECTION("the next apply of the same version") {
    const ApplyResult r = apply_all(*f.target, "sovdev", 2, v2);
    CHECK(r.applied == 0);
    CHECK(r.unchanged == 3);
    CHECK(r.pruned == 1);
    CHECK(read_text(f.file_of(f.v1[2])).empty());
  }
  SECTION("rolling back to the previous version prunes what the aborted apply added") {
    const ApplyResult r = apply_all(*f.target, "sovdev", 1, f.v1);
    CHECK(r.pruned == 1);
    CHECK(read_text(f.file_of(v2[2])).empty());
    for (const auto& o : f.v1) CHECK(read_text(f.file_of(o)) == o.json());
  }
  f.now += 3600;
  apply_all(*f.target, "sovdev", 9, v2);
  f.now += 3600;  // past the grace period of anything the line above emptied
  apply_all(*f.target, "sovdev", 9, v2);
  auto files = folder(f.dir.path());
  files.erase(kInventory);
  std::map<std::string, std::string> expected;
  for (const auto& o : v2) expected[object_file_name("sovdev", o)] = o.json();
  CHECK(files == expected);
}

TEST_CASE("a torn append from a crash is dropped and later appends start on a new line") {
  Fixture f;
  apply_all(*f.target, "sovdev", 1, f.v1);
  {
    std::string inventory = read_text(f.dir / kInventory);
    write_text(f.dir / kInventory, inventory + "pending sovdev.configmap.def");
  }
  apply_all(*f.target, "sovdev", 2, {f.v1[0], config_map("new")});
  const std::string inventory = read_text(f.dir / kInventory);
  CHECK(inventory.find("configmap.def\n") == std::string::npos);
  CHECK(inventory.find("live " + object_file_name("sovdev", config_map("new")) + "\n") !=
        std::string::npos);
  CHECK(read_text(f.file_of(f.v1[1])).empty());
}

TEST_CASE("a damaged inventory line is refused with its line, and nothing is touched") {
  Fixture f;
  apply_all(*f.target, "sovdev", 1, f.v1);
  write_text(f.dir / kInventory, "# x\nlive ../../etc/passwd\n");
  auto began = f.target->begin({"sovdev", 2, "d", {}});
  REQUIRE_FALSE(began);
  CHECK(began.error().code == Errc::invalid);
  CHECK(began.error().message.find(f.dir / kInventory + ":2: unreadable entry") == 0);
}

TEST_CASE("two stacks share a folder without pruning each other") {
  Fixture f;
  apply_all(*f.target, "sovdev", 1, f.v1);
  apply_all(*f.target, "monitoring", 1, {config_map("settings")});
  apply_all(*f.target, "monitoring", 2, {});
  for (const auto& o : f.v1) CHECK(read_text(f.file_of(o)) == o.json());
  CHECK(read_text(f.dir / object_file_name("monitoring", config_map("settings"))).empty());
}

TEST_CASE("an object that appears twice in one version is refused") {
  Fixture f;
  REQUIRE(f.target->begin({"sovdev", 1, "d", {}}));
  REQUIRE(f.target->apply(config_map("a")));
  auto again = f.target->apply(config_map("a", "other"));
  REQUIRE_FALSE(again);
  CHECK(again.error().code == Errc::conflict);
  f.target->abort();
}

TEST_CASE("apply outside begin and commit is refused") {
  Fixture f;
  CHECK_FALSE(f.target->apply(config_map("a")));
  CHECK_FALSE(f.target->commit());
  REQUIRE(f.target->begin({"sovdev", 1, "d", {}}));
  CHECK_FALSE(f.target->begin({"sovdev", 2, "d", {}}));
  f.target->abort();
  CHECK(f.target->begin({"sovdev", 2, "d", {}}));
  f.target->abort();
}

TEST_CASE("a missing folder is refused at begin with what to do") {
  auto target = make_dir_target("/nonexistent/manifests");
  auto began = target->begin({"sovdev", 1, "d", {}});
  REQUIRE_FALSE(began);
  CHECK(began.error().code == Errc::io);
  CHECK(began.error().message.find("/nonexistent/manifests does not exist") != std::string::npos);
}

TEST_CASE("a stack name that could escape the folder is refused") {
  Fixture f;
  const std::string stack = GENERATE(std::string("../x"), std::string("a/b"), std::string(""));
  CHECK_FALSE(f.target->begin({stack, 1, "d", {}}));
}

TEST_CASE("make_target leaves kube to the agent, which builds it with its credentials") {
  TargetConfig config;
  config.kind = TargetKind::kube;
  auto made = make_target(config);
  REQUIRE_FALSE(made);
  CHECK(made.error().code == Errc::internal);
  config.kind = TargetKind::dir;
  CHECK(make_target(config));
}
