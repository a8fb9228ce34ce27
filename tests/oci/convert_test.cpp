// The served form against a real docker-registry and the same images in an OCI layout.
#include <catch2/catch.hpp>

#include "tests/oci/oci_fixture.hpp"

using namespace sovdev;
using namespace sovdev::oci;
using namespace sovdev::oci::test;
using nlohmann::json;

namespace {

const ServedBlob& blob_named(const ConvertedImage& image, const std::string& digest) {
  for (const auto& b : image.blobs) {
    if (format_digest(b.digest) == digest) return b;
  }
  FAIL("no served blob " << digest);
  throw std::logic_error("unreachable");
}

Expected<ConvertedImage> convert_from(const std::vector<SourceRule>& rules, const Reference& ref,
                                      const std::vector<std::string>& arches,
                                      MemoryLayers& layers) {
  SOVDEV_ASSIGN(auto source, open_source(rules, ref));
  return convert_image(*source, ref, arches, layers);
}

}  // namespace

TEST_CASE("a two-arch image from the registry is served with layers named by their diff_ids",
          "[oci][convert][registry]") {
  ImageWorld world;
  MemoryLayers layers;
  auto image = convert_from(world.rules(), world.ref("v1"), {"arm64", "amd64"}, layers);
  REQUIRE(image);
  CHECK(image->reference.to_string() == world.ref("v1").to_string());
  // index; arm64: manifest, config, 3 layers; amd64: manifest, config, 2 layers
  REQUIRE(image->blobs.size() == 1 + 5 + 4);
  const ServedBlob& index_blob = image->blobs.front();
  CHECK(index_blob.media_type == "application/vnd.oci.image.index.v1+json");
  CHECK(index_blob.digest == image->index_digest);
  CHECK(sha256(index_blob.bytes) == image->index_digest);
  const json index = json::parse(index_blob.bytes);
  CHECK(index.dump() == index_blob.bytes);  // compact, keys sorted
  REQUIRE(index["manifests"].size() == 2);
  const std::vector<std::string> arches = {"arm64", "amd64"};
  for (size_t i = 0; i < arches.size(); i++) {
    const json& entry = index["manifests"][i];
    CHECK(entry["platform"] == json{{"architecture", arches[i]}, {"os", "linux"}});
    const ServedBlob& mblob = blob_named(*image, entry["digest"]);
    CHECK(mblob.arch == arches[i]);
    CHECK(entry["size"] == mblob.size);
    const json manifest = json::parse(mblob.bytes);
    CHECK(manifest.dump() == mblob.bytes);
    CHECK(manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json");
    CHECK(manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json");
    // The config is the source's, byte for byte.
    const ServedBlob& cblob = blob_named(*image, manifest["config"]["digest"]);
    const json source_manifest = world.layout_manifest("v1-" + arches[i]);
    CHECK(manifest["config"]["digest"] == source_manifest["config"]["digest"]);
    CHECK(cblob.bytes == testing::read_text(testing::layout_blob(
                             world.layout, source_manifest["config"]["digest"])));
    const json diff_ids = json::parse(cblob.bytes)["rootfs"]["diff_ids"];
    REQUIRE(manifest["layers"].size() == diff_ids.size());
    for (size_t l = 0; l < diff_ids.size(); l++) {
      const json& layer = manifest["layers"][l];
      CHECK(layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar");
      CHECK(layer["digest"] == diff_ids[l]);
      const std::string& held =
          layers.layers.at(parse_digest(diff_ids[l].get<std::string>()).value());
      CHECK(layer["size"] == held.size());
      const ServedBlob& lblob = blob_named(*image, layer["digest"]);
      CHECK(lblob.layer == l + 1);
      CHECK(lblob.bytes.empty());
    }
  }
  // Three distinct layers: amd64's two are arm64's first two.
  CHECK(image->layers_downloaded == 3);
  CHECK(image->layers_reused == 2);
  CHECK(layers.layers.size() == 3);
  CHECK(image->bytes_downloaded > ImageWorld::kBaseSize);

  SECTION("the same image read from the OCI layout gives the same index digest") {
    MemoryLayers fresh;
    const std::vector<SourceRule> rules = {{"layout.test/app", "oci:" + world.layout}};
    auto from_layout =
        convert_from(rules, parse_reference("layout.test/app:v1").value(), arches, fresh);
    REQUIRE(from_layout);
    CHECK(from_layout->index_digest == image->index_digest);
    CHECK(from_layout->layers_downloaded == 3);
    CHECK(fresh.layers == layers.layers);
  }
  SECTION("a second conversion from the registry gives the same digest and downloads no layer") {
    auto again = convert_from(world.rules(), world.ref("v1"), arches, layers);
    REQUIRE(again);
    CHECK(again->index_digest == image->index_digest);
    CHECK(again->layers_downloaded == 0);
    CHECK(again->layers_reused == 5);
    CHECK(again->bytes_downloaded < 16 * 1024);
  }
  SECTION("the index pinned by digest converts the same") {
    Reference pinned = world.ref("v1");
    pinned.digest = parse_digest(testing::layout_digest(world.layout, "v1")).value();
    auto by_digest = convert_from(world.rules(), pinned, arches, layers);
    REQUIRE(by_digest);
    CHECK(by_digest->index_digest == image->index_digest);
  }
}

TEST_CASE("a second version sharing base layers downloads only its changed layer",
          "[oci][convert][registry]") {
  ImageWorld world;
  MemoryLayers layers;
  auto v1 = convert_from(world.rules(), world.ref("v1"), {"amd64"}, layers);
  REQUIRE(v1);
  CHECK(v1->layers_downloaded == 2);
  auto v2 = convert_from(world.rules(), world.ref("v2-amd64"), {"amd64"}, layers);
  REQUIRE(v2);
  CHECK(v2->layers_downloaded == 1);
  CHECK(v2->layers_reused == 2);
  CHECK(layers.layers.size() == 3);
  const json changed = world.layout_manifest("v2-amd64")["layers"][2];
  WARN("v2 read " << v2->bytes_downloaded << " bytes from the registry; its changed layer is "
                  << changed["size"] << " bytes compressed, the base layer "
                  << ImageWorld::kBaseSize << " bytes");
  CHECK(v2->bytes_downloaded < changed["size"].get<uint64_t>() + 16 * 1024);
  // A single manifest (no index at the source) still gets an index of its own.
  CHECK(json::parse(v2->blobs.front().bytes)["manifests"].size() == 1);
}

TEST_CASE("an architecture the image lacks is a clear error naming the ones it has",
          "[oci][convert][registry]") {
  ImageWorld world;
  MemoryLayers layers;
  auto multi = convert_from(world.rules(), world.ref("v1"), {"amd64", "riscv64"}, layers);
  REQUIRE_FALSE(multi);
  CHECK(multi.error().code == Errc::not_found);
  CHECK_THAT(multi.error().message,
             Catch::Contains("has no linux/riscv64 (it has linux/amd64, linux/arm64)"));
  auto single = convert_from(world.rules(), world.ref("v2-amd64"), {"arm64"}, layers);
  REQUIRE_FALSE(single);
  CHECK(single.error().code == Errc::not_found);
  CHECK_THAT(single.error().message, Catch::Contains("test/app:v2-amd64 has no linux/arm64 (it "
                                                     "has linux/amd64)"));
  CHECK(layers.layers.empty());
}
