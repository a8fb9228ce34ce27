// The hub's image blobs: stored once per digest in their wire form, read back chunk by chunk,
// named by bundles, and nothing left behind by a write that fails.
#include "platform/store/hub_images.hpp"

#include "bundles/blob_wire.hpp"
#include "bundles/hash.hpp"
#include "common/hex.hpp"
#include "platform/store/hub_store.hpp"
#include "tests/store/test_support.hpp"

using namespace sovdev;
using namespace sovdev::store;
using namespace sovdev::store::test;

namespace {

constexpr std::string_view kLayerType = "application/vnd.oci.image.layer.v1.tar";
constexpr std::string_view kConfigType = "application/vnd.oci.image.config.v1+json";

// Bytes zstd does not shrink much, so a blob of a few hundred KiB spans several chunks.
std::string layer_bytes(std::uint32_t seed, std::size_t size) {
  return chunk_bytes(seed, 0, size);
}

// The blob the stored wire form decodes to, every chunk checked against its manifest.
std::string decode_stored(HubImages& images, const ImageBlobRow& row) {
  pb::BlobManifest manifest;
  REQUIRE(manifest.ParseFromString(row.blob_manifest));
  std::string out;
  auto decoder = must(blobwire::BlobDecoder::create(row.digest, row.size, [&](std::string_view b) {
    out.append(b);
    return Status{};
  }));
  std::string chunk;
  for (std::uint32_t i = 0; i < row.chunk_count; ++i) {
    REQUIRE_OK(images.read_chunk(row.digest, i, chunk));
    CHECK(blobwire::chunk_matches(manifest, i, chunk));
    REQUIRE_OK(decoder.write(chunk));
  }
  REQUIRE_OK(decoder.finish());
  return out;
}

std::int64_t image_rows(Database& db) {
  return must(query_int64(db, "SELECT count(*) FROM image_blobs")) +
         must(query_int64(db, "SELECT count(*) FROM image_chunks"));
}

void store_named_bundle(Database& db, std::uint8_t n, std::uint64_t version) {
  HubBundles bundles(db);
  HubBundle row{digest(n), "edge", "sovdev", version, "m", 1, 10, 10, 1};
  REQUIRE(must(bundles.put_bundle(
      row, [](std::uint32_t) -> Expected<std::string> { return std::string(10, 'x'); })));
}

}  // namespace

TEST_CASE("an image layer written in pieces is stored in its wire form and reads back whole") {
  auto db = must(open_hub_database(":memory:"));
  HubImages images(db);
  const std::string layer = layer_bytes(7, 300 * 1024);
  auto writer = must(images.begin(sha256(layer), kLayerType, 3));
  for (std::size_t at = 0; at < layer.size(); at += 10000) {
    REQUIRE_OK(writer->write(std::string_view(layer).substr(at, 10000)));
  }
  const ImageBlobRow row = must(writer->commit(layer.size()));
  CHECK(row.chunk_count >= 4);
  CHECK(row.wire_digest == sha256(row.blob_manifest));

  const auto found = must(images.find(sha256(layer)));
  REQUIRE(found);
  CHECK(found->media_type == kLayerType);
  CHECK(found->size == layer.size());
  CHECK(found->blob_manifest == row.blob_manifest);
  const auto by_wire = must(images.find_by_wire(row.wire_digest));
  REQUIRE(by_wire);
  CHECK(by_wire->digest == row.digest);
  CHECK(by_wire->blob_manifest.empty());  // the counts only, unless asked
  CHECK(must(images.find_by_wire(row.wire_digest, true))->blob_manifest == row.blob_manifest);
  CHECK(decode_stored(images, *found) == layer);
  std::string chunk;
  CHECK(images.read_chunk(row.digest, row.chunk_count, chunk).error().code == Errc::not_found);
  CHECK_FALSE(must(images.find(digest(9))));
}

TEST_CASE("a blob two bundles name is stored once, and neither bundle's blob can be removed") {
  auto db = must(open_hub_database(":memory:"));
  HubImages images(db);
  const std::string config = R"({"architecture":"arm64","rootfs":{"diff_ids":[]}})";
  const ImageBlobRow first = must(images.put(kConfigType, config));
  const ImageBlobRow again = must(images.put(kConfigType, config));
  CHECK(again.wire_digest == first.wire_digest);
  CHECK(must(query_int64(db, "SELECT count(*) FROM image_blobs")) == 1);
  CHECK(images.begin(first.digest, kConfigType).error().code == Errc::conflict);

  store_named_bundle(db, 1, 1);
  store_named_bundle(db, 2, 2);
  REQUIRE_OK(images.name_blobs(digest(1), {first.digest}));
  REQUIRE_OK(images.name_blobs(digest(2), {first.digest}));
  CHECK(must(images.blobs_of(digest(2))) == std::vector<std::string>{first.digest});
  CHECK(must(images.named_by_a_bundle(first.digest)));
  // The database itself refuses to drop a blob a bundle names.
  CHECK_FALSE(db.exec("DELETE FROM image_blobs"));
  CHECK(must(query_int64(db, "SELECT count(*) FROM image_blobs")) == 1);
  // Gone with the bundles that named it: no longer named, so a later clean-up may remove it.
  HubBundles bundles(db);
  CHECK(must(bundles.remove(digest(1))));
  CHECK(must(bundles.remove(digest(2))));
  CHECK_FALSE(must(images.named_by_a_bundle(first.digest)));
  REQUIRE_OK(db.exec("DELETE FROM image_blobs"));
  CHECK(must(query_int64(db, "SELECT count(*) FROM image_chunks")) == 0);
}

TEST_CASE("a bundle cannot be recorded as naming a blob the hub does not hold") {
  auto db = must(open_hub_database(":memory:"));
  HubImages images(db);
  store_named_bundle(db, 1, 1);
  const ImageBlobRow held = must(images.put(kConfigType, "{}"));
  const auto refused = images.name_blobs(digest(1), {held.digest, digest(5)});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::not_found);
  CHECK(refused.error().message.find(to_hex(digest(5).substr(0, 6))) != std::string::npos);
  CHECK(must(images.blobs_of(digest(1))).empty());
  CHECK(must(images.missing({held.digest, digest(5)})) == std::vector<std::string>{digest(5)});
}

TEST_CASE("a blob write that fails or is dropped leaves nothing in the database") {
  auto db = must(open_hub_database(":memory:"));
  HubImages images(db);
  const std::string layer = layer_bytes(3, 200 * 1024);

  SECTION("bytes that do not match the digest") {
    auto writer = must(images.begin(digest(1), kLayerType, 1));
    REQUIRE_OK(writer->write(layer));
    const auto failed = writer->commit(layer.size());
    REQUIRE_FALSE(failed);
    CHECK(failed.error().code == Errc::signature);
  }
  SECTION("fewer bytes than the source declared") {
    auto writer = must(images.begin(sha256(layer), kLayerType, 1));
    REQUIRE_OK(writer->write(layer));
    const auto failed = writer->commit(layer.size() + 1);
    REQUIRE_FALSE(failed);
    CHECK(failed.error().code == Errc::invalid);
  }
  SECTION("a writer dropped half way, as when the download breaks") {
    auto writer = must(images.begin(sha256(layer), kLayerType, 1));
    REQUIRE_OK(writer->write(std::string_view(layer).substr(0, 150 * 1024)));
    writer.reset();
  }
  CHECK(image_rows(db) == 0);
  CHECK(db.autocommit());
  // And the same blob is stored afterwards as if nothing had happened.
  auto writer = must(images.begin(sha256(layer), kLayerType, 1));
  REQUIRE_OK(writer->write(layer));
  CHECK(decode_stored(images, must(writer->commit(layer.size()))) == layer);
}
