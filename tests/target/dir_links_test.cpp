// The dir target's folder is often writable by others (k3s's manifests folder by root's
// tools, a shared mount): a symbolic link planted there must not lead the agent's reads or
// writes out of it.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "platform/target/dir.hpp"
#include "platform/target/dir_inventory.hpp"
#include "tests/support/process.hpp"
#include "tests/target/helpers.hpp"

namespace sovdev::target {
namespace {

using Catch::Matchers::Contains;
using testing::read_text;
using testing::TempDir;

}  // namespace

TEST_CASE(
    "the dir target refuses an inventory that is a planted link and writes nothing "
    "outside its folder",
    "[dir][hygiene]") {
  TempDir tmp;
  const std::string dir = tmp / "manifests";
  std::filesystem::create_directory(dir);
  const std::string outside = tmp / "outside-file";
  // Dangling: the agent's first append would create the file it points to.
  REQUIRE(::symlink(outside.c_str(), inventory_path(dir, "sovdev").c_str()) == 0);

  auto target = make_dir_target(dir);
  auto began = target->begin({"sovdev", 1, "d1", {}});
  if (began) {
    auto applied = target->apply(test::config_map("a"));
    if (applied) (void)target->commit();
  }
  CHECK_FALSE(std::filesystem::exists(outside));
  REQUIRE_FALSE(began.has_value());
  CHECK_THAT(began.error().message, Contains("symbolic link"));
}

TEST_CASE("the dir target refuses an object file replaced by a link instead of following it",
          "[dir][hygiene]") {
  TempDir tmp;
  const std::string dir = tmp / "manifests";
  std::filesystem::create_directory(dir);
  auto target = make_dir_target(dir);
  const auto object = test::config_map("a");
  test::apply_all(*target, "sovdev", 1, {object});

  // The same bytes outside, and the agent's file swapped for a link to them.
  const std::string path = dir + "/" + object_file_name("sovdev", object);
  const std::string outside = tmp / "outside.json";
  std::filesystem::copy_file(path, outside);
  std::filesystem::remove(path);
  REQUIRE(::symlink(outside.c_str(), path.c_str()) == 0);

  REQUIRE(target->begin({"sovdev", 2, "d2", {}}).has_value());
  auto applied = target->apply(object);
  target->abort();
  REQUIRE_FALSE(applied.has_value());
  CHECK_THAT(applied.error().message, Contains("symbolic link"));
  CHECK(read_text(outside) == object.json());
}

}  // namespace sovdev::target
