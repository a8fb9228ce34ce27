// hub/secrets: the secret-store key file and the values sealed in hub.db under it.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "hub/secrets/values.hpp"
#include "platform/store/hub_store.hpp"
#include "tests/support/nobody.hpp"
#include "tests/support/process.hpp"

using namespace sovdev;
using namespace sovdev::hub::secrets;
using sovdev::testing::TempDir;

namespace {

StoreKey new_key(const TempDir& dir, const std::string& name) {
  REQUIRE(create_store_key(dir / name));
  auto key = load_store_key(dir / name);
  REQUIRE(key);
  return std::move(*key);
}

}  // namespace

TEST_CASE("the store key file is made 0600, never replaced, and refused when others may read it",
          "[secrets]") {
  TempDir dir;
  const std::string path = dir / "store.key";
  REQUIRE(create_store_key(path));
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  auto again = create_store_key(path);
  CHECK_FALSE(again);

  auto first = load_store_key(path);
  REQUIRE(first);
  CHECK(first->key.size() == seal::kKeySize);
  CHECK(first->id.size() == seal::kKeyIdSize);

  REQUIRE(::chmod(path.c_str(), 0640) == 0);
  auto open_to_group = load_store_key(path);
  REQUIRE_FALSE(open_to_group);
  CHECK(open_to_group.error().code == Errc::denied);
  CHECK_THAT(open_to_group.error().message, Catch::Contains("chmod 600"));

  std::ofstream(dir / "bad.key") << "sovdev-secret-store 1234\n";
  REQUIRE(::chmod((dir / "bad.key").c_str(), 0600) == 0);
  auto bad = load_store_key(dir / "bad.key");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == Errc::invalid);
  auto missing = load_store_key(dir / "none.key");
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message, Catch::Contains("sovdev-hub secret init"));
}

TEST_CASE("the store key is read through one descriptor: no symlink, no other owner's file",
          "[secrets]") {
  TempDir dir;
  const std::string path = dir / "store.key";
  REQUIRE(create_store_key(path));
  // A link planted where the key should be is refused even when it points at a good key.
  REQUIRE(::symlink(path.c_str(), (dir / "link.key").c_str()) == 0);
  auto linked = load_store_key(dir / "link.key");
  REQUIRE_FALSE(linked);
  CHECK(linked.error().code == Errc::denied);
  CHECK_THAT(linked.error().message, Catch::Contains("symbolic link"));
  REQUIRE(::mkdir((dir / "folder.key").c_str(), 0700) == 0);
  auto folder = load_store_key(dir / "folder.key");
  REQUIRE_FALSE(folder);
  CHECK_THAT(folder.error().message, Catch::Contains("not a regular file"));

  // Owned by another user: refused to anyone but that user (and root).
  SOVDEV_SKIP_WITHOUT_NOBODY();
  if (::geteuid() != 0) return;  // only root can hand a file to another user
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
  REQUIRE(::chown(path.c_str(), sovdev::testing::kNobody, sovdev::testing::kNobody) == 0);
  CHECK(load_store_key(path));  // root reads an operator's key
  REQUIRE(create_store_key(dir / "root.key"));
  const auto as_nobody = sovdev::testing::as_nobody([&] {
    auto own = load_store_key(path);
    auto roots = load_store_key(dir / "root.key");
    return std::string(own ? "own:ok " : "own:refused ") +
           (roots ? "root:ok" : "root:" + roots.error().message);
  });
  REQUIRE(as_nobody);
  CHECK_THAT(*as_nobody, Catch::StartsWith("own:ok root:") && !Catch::Contains("root:ok"));
}

TEST_CASE(
    "a value is sealed in hub.db, opens with its store key and place only, and is listed "
    "without it",
    "[secrets]") {
  TempDir dir;
  const StoreKey key = new_key(dir, "store.key");
  const std::string db_path = dir / "hub.db";
  auto db = store::open_hub_database(db_path);
  REQUIRE(db);
  SecretValues values(*db, key);
  const std::string planted = "PLANTED-value-7f3a9c";
  REQUIRE(values.set("edge", "postgresql", "password", seal::SecretBytes::copy_of(planted), 100));
  REQUIRE(values.set("edge", "grafana", "admin", seal::SecretBytes::copy_of("x"), 101));

  auto got = values.get("edge", "postgresql", "password");
  REQUIRE(got);
  CHECK(got->view() == planted);
  CHECK(sovdev::testing::read_database_files(db_path).find(planted) == std::string::npos);

  auto listed = values.list("edge");
  REQUIRE(listed);
  REQUIRE(listed->size() == 2);
  CHECK((*listed)[1].name == "postgresql");
  CHECK((*listed)[1].size == planted.size());
  CHECK((*listed)[1].updated_at == 100);

  // A row moved to another place does not open there.
  REQUIRE(db->exec("UPDATE secret_values SET name = 'redis' WHERE name = 'postgresql'"));
  auto moved = values.get("edge", "redis", "password");
  REQUIRE_FALSE(moved);
  CHECK(moved.error().code == Errc::signature);

  // Another store key is named as such, not reported as damage.
  const StoreKey other = new_key(dir, "other.key");
  auto wrong = SecretValues(*db, other).get("edge", "grafana", "admin");
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error().code == Errc::signature);
  CHECK_THAT(wrong.error().message, Catch::Contains("another secret-store key"));

  auto missing = values.get("prod", "grafana", "admin");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == Errc::not_found);
  CHECK_THAT(missing.error().message, Catch::Contains("secret set --env prod grafana admin"));

  CHECK(*values.remove("edge", "grafana", "") == 1);
  CHECK(*values.remove("edge", "grafana", "") == 0);
}

TEST_CASE("names, keys and sizes outside the rules are refused before anything is stored",
          "[secrets]") {
  TempDir dir;
  const StoreKey key = new_key(dir, "store.key");
  auto db = store::open_hub_database(dir / "hub.db");
  REQUIRE(db);
  SecretValues values(*db, key);
  const auto one = seal::SecretBytes::copy_of("v");
  CHECK_FALSE(values.set("Edge", "a", "k", one, 1));
  CHECK_FALSE(values.set("edge", "-a", "k", one, 1));
  CHECK_FALSE(values.set("edge", "a/b", "k", one, 1));
  CHECK_FALSE(values.set("edge", "a", "k/..", one, 1));
  CHECK_FALSE(values.set("edge", "a", "", one, 1));
  auto big = values.set("edge", "a", "k", seal::SecretBytes(kMaxValueBytes + 1), 1);
  REQUIRE_FALSE(big);
  CHECK(big.error().code == Errc::too_large);
  CHECK(values.list("")->empty());
  CHECK(check_key("tls.crt").empty());
  CHECK(check_name("authentik-postgresql").empty());
}
