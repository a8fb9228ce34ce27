// The image blob store (migration 008): partial files and their chunk rows, the rename to a
// verified blob, the needs of bundles, collection order and the sweep of stray files.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "platform/store/agent_cache.hpp"
#include "platform/store/image_blobs.hpp"
#include "tests/store/test_support.hpp"

using namespace sovdev;
using namespace sovdev::store;
using namespace sovdev::store::test;

namespace {

constexpr std::uint32_t kBlobChunk = 4096;

ImageBlobMeta meta_of(std::uint8_t n, std::uint64_t wire_size) {
  ImageBlobMeta m;
  m.digest = digest(n);
  m.wire_digest = digest(static_cast<std::uint8_t>(n + 100));
  m.media_type = "application/vnd.oci.image.layer.v1.tar";
  m.size = wire_size * 3;
  m.wire_size = wire_size;
  return m;
}

std::uint32_t chunks_of(std::uint64_t wire_size) {
  return static_cast<std::uint32_t>((wire_size + kBlobChunk - 1) / kBlobChunk);
}

std::string chunk_of(std::uint8_t n, std::uint32_t index, std::uint64_t wire_size) {
  const std::uint64_t at = std::uint64_t{index} * kBlobChunk;
  return chunk_bytes(n, index,
                     static_cast<std::size_t>(std::min<std::uint64_t>(kBlobChunk, wire_size - at)));
}

void fill(ImageBlobs& blobs, std::uint8_t n, std::uint64_t wire_size) {
  REQUIRE_OK(blobs.set_manifest(digest(n), "manifest", kBlobChunk, chunks_of(wire_size)));
  for (std::uint32_t i = 0; i < chunks_of(wire_size); ++i) {
    REQUIRE_OK(blobs.put_chunk(digest(n), i, chunk_of(n, i, wire_size)));
  }
}

}  // namespace

TEST_CASE("a blob's chunks go to its partial file and the whole becomes blobs/<digest>.zst") {
  TempDir dir;
  auto db = must(open_agent_database(dir.file("agent.db")));
  ImageBlobs blobs(db);
  const std::uint64_t size = 3 * kBlobChunk + 100;
  REQUIRE_OK(blobs.need(digest(1), {meta_of(7, size)}, 1000));
  REQUIRE_OK(blobs.set_manifest(digest(7), "manifest", kBlobChunk, chunks_of(size)));
  CHECK(must(blobs.missing_chunks(digest(7))) == std::vector<std::uint32_t>{0, 1, 2, 3});
  REQUIRE_OK(blobs.put_chunk(digest(7), 2, chunk_of(7, 2, size)));
  REQUIRE_OK(blobs.put_chunk(digest(7), 2, chunk_of(7, 2, size)));  // again: no-op
  CHECK(blobs.put_chunk(digest(7), 2, chunk_of(8, 2, size)).error().code == Errc::conflict);
  CHECK(blobs.put_chunk(digest(7), 3, chunk_of(7, 0, size)).error().code == Errc::invalid);
  CHECK(must(blobs.missing_chunks(digest(7))) == std::vector<std::uint32_t>{0, 1, 3});
  CHECK(blobs.mark_verified(digest(7)).error().code == Errc::invalid);
  for (std::uint32_t i : {0u, 1u, 3u})
    REQUIRE_OK(blobs.put_chunk(digest(7), i, chunk_of(7, i, size)));
  REQUIRE_OK(blobs.mark_verified(digest(7)));
  const auto info = must(blobs.find(digest(7)));
  REQUIRE(info);
  CHECK(info->state == BlobState::verified);
  CHECK(std::filesystem::file_size(blobs.blob_path(digest(7))) == size);
  CHECK_FALSE(std::filesystem::exists(blobs.partial_path(info->wire_digest)));
  std::ifstream in(blobs.blob_path(digest(7)), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(bytes.substr(2 * kBlobChunk, kBlobChunk) == chunk_of(7, 2, size));
}

TEST_CASE("held chunks whose bytes did not reach the file are dropped and fetched again") {
  TempDir dir;
  auto db = must(open_agent_database(dir.file("agent.db")));
  ImageBlobs blobs(db);
  const std::uint64_t size = 4 * kBlobChunk;
  REQUIRE_OK(blobs.need(digest(1), {meta_of(7, size)}, 1000));
  fill(blobs, 7, size);
  // A power cut took the file's tail back.
  std::filesystem::resize_file(blobs.partial_path(meta_of(7, size).wire_digest),
                               2 * kBlobChunk + 5);
  const auto dropped =
      must(blobs.drop_damaged(digest(7), [&](std::uint32_t i, std::string_view data) {
        return data == chunk_of(7, i, size);
      }));
  CHECK(dropped == 2);
  CHECK(must(blobs.missing_chunks(digest(7))) == std::vector<std::uint32_t>{2, 3});
}

TEST_CASE("a digest listed again with another wire form is refused") {
  TempDir dir;
  auto db = must(open_agent_database(dir.file("agent.db")));
  ImageBlobs blobs(db);
  REQUIRE_OK(blobs.need(digest(1), {meta_of(7, 5000)}, 1000));
  auto other = meta_of(7, 5000);
  other.wire_digest = digest(250);
  CHECK(blobs.need(digest(2), {other}, 1000).error().code == Errc::conflict);
  CHECK(must(blobs.needed_by(digest(2))).empty());
}

TEST_CASE("collection offers blobs no kept bundle needs, partial ones first, then the oldest") {
  TempDir dir;
  auto db = must(open_agent_database(dir.file("agent.db")));
  ImageBlobs blobs(db);
  REQUIRE_OK(blobs.need(digest(1), {meta_of(10, 5000), meta_of(11, 5000)}, 100));  // old bundle
  REQUIRE_OK(blobs.need(digest(2), {meta_of(11, 5000), meta_of(12, 5000)}, 200));  // kept bundle
  REQUIRE_OK(blobs.need(digest(3), {meta_of(13, 5000)}, 300));
  REQUIRE_OK(blobs.need(digest(4), {meta_of(14, 5000)}, 50));
  fill(blobs, 10, 5000);
  REQUIRE_OK(blobs.mark_verified(digest(10)));
  fill(blobs, 14, 5000);
  REQUIRE_OK(blobs.mark_verified(digest(14)));
  const auto offered = must(blobs.collectable({digest(2)}));
  std::vector<std::string> order;
  for (const auto& b : offered) order.push_back(b.digest);
  // 13 is partial (first), then the verified ones by age: 14 (used at 50), 10 (100).
  CHECK(order == std::vector<std::string>{digest(13), digest(14), digest(10)});
  CHECK(must(blobs.bytes_reserved()) == 10000);
  CHECK(must(blobs.remove(digest(10))));
  CHECK_FALSE(std::filesystem::exists(blobs.blob_path(digest(10))));
  CHECK(must(blobs.bytes_reserved()) == 5000);
}

TEST_CASE("the sweep removes blob files no row owns and needs of bundles no longer cached") {
  TempDir dir;
  auto db = must(open_agent_database(dir.file("agent.db")));
  ImageBlobs blobs(db);
  REQUIRE_OK(blobs.need(digest(1), {meta_of(7, 5000)}, 100));
  fill(blobs, 7, 5000);
  REQUIRE_OK(blobs.mark_verified(digest(7)));
  std::ofstream(blobs.folder() + "/blobs/stray.zst") << "x";
  std::ofstream(blobs.folder() + "/partial/" + std::string(64, 'a')) << "x";
  CHECK(must(blobs.sweep()) == 2);
  CHECK(std::filesystem::exists(blobs.blob_path(digest(7))));
  // Bundle 1 is not in the bundles table: its need is forgotten, the blob becomes collectable.
  CHECK(must(blobs.collectable({digest(1)})).size() == 1);
}
