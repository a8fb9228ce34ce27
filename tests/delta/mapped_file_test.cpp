// Files mapped whole: created at a size, written through memory, read back, refused with paths.
#include <sys/stat.h>

#include "platform/fs/mapped_file.hpp"
#include "tests/delta/fixtures.hpp"

using namespace sovdev;
using namespace sovdev::delta_test;
using store::test::TempDir;

TEST_CASE("a created mapping has the requested size and its bytes are in the file once dropped") {
  TempDir dir;
  const std::string path = dir.file("out");
  {
    auto map = must(fs::MappedFile::create(path, 10000));
    CHECK(map.size() == 10000);
    REQUIRE(map.writable().size() == 10000);
    std::fill(map.writable().begin(), map.writable().end(), 'z');
    map.writable()[9999] = '!';
    REQUIRE_OK(map.sync());
  }
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const auto read = must(fs::MappedFile::open(path));
  CHECK(read.view() == std::string(9999, 'z') + "!");
  CHECK(read.view() == read_text(path));
}

TEST_CASE("creating a mapping refuses to replace an existing file and leaves it untouched") {
  TempDir dir;
  const std::string path = dir.file("held");
  write_bytes(path, "precious");
  auto refused = fs::MappedFile::create(path, 100);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::conflict);
  CHECK_THAT(refused.error().message, Catch::Contains(path));
  CHECK(read_text(path) == "precious");
}

TEST_CASE("mapping a missing file or one in a missing folder fails naming the path") {
  TempDir dir;
  auto missing = fs::MappedFile::open(dir.file("nothing"));
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == Errc::io);
  CHECK_THAT(missing.error().message, Catch::Contains(dir.file("nothing")));
  auto no_folder = fs::MappedFile::create(dir.file("no/such/folder"), 10);
  REQUIRE_FALSE(no_folder);
  CHECK_THAT(no_folder.error().message, Catch::Contains(dir.file("no/such/folder")));
  auto folder = fs::MappedFile::open(dir.path().string());
  REQUIRE_FALSE(folder);
  CHECK_THAT(folder.error().message, Catch::Contains("not a regular file"));
}

TEST_CASE("a moved mapping keeps the bytes and the moved-from one is empty") {
  TempDir dir;
  write_bytes(dir.file("a"), "alpha");
  write_bytes(dir.file("b"), "beta");
  auto a = must(fs::MappedFile::open(dir.file("a")));
  fs::MappedFile moved(std::move(a));
  CHECK(moved.view() == "alpha");
  CHECK(a.view().empty());  // NOLINT(bugprone-use-after-move): the moved-from state is defined
  auto b = must(fs::MappedFile::open(dir.file("b")));
  moved = std::move(b);
  CHECK(moved.view() == "beta");
  CHECK(moved.path() == dir.file("b"));
  moved.close();
  CHECK(moved.view().empty());
}

TEST_CASE("an empty file maps to an empty view") {
  TempDir dir;
  { auto created = must(fs::MappedFile::create(dir.file("empty"), 0)); }
  const auto map = must(fs::MappedFile::open(dir.file("empty")));
  CHECK(map.view().empty());
  CHECK(map.size() == 0);
}
