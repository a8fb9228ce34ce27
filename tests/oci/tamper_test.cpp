// Think like an attacker: a registry, a layout or a source whose bytes are not what they claim
// must never get a layer committed or a blob served.
#include <sys/stat.h>
#include <zstd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/oci/oci_fixture.hpp"

using namespace sovdev;
using namespace sovdev::oci;
using namespace sovdev::oci::test;
using nlohmann::json;

namespace {

constexpr const char* kTar = "application/vnd.oci.image.layer.v1.tar";
constexpr const char* kManifestType = "application/vnd.oci.image.manifest.v1+json";

// Flips one byte of a file in place (the size stays, so only a digest check can tell).
void flip_byte(const std::string& path, size_t at) {
  std::filesystem::permissions(path, std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add);
  std::string bytes = testing::read_text(path);
  REQUIRE(at < bytes.size());
  bytes[at] = static_cast<char>(bytes[at] ^ 0x55);
  testing::write_text(path, bytes);
}

// Changes one hex digit of the config digest inside a manifest file: still valid JSON.
void retarget_config(const std::string& path) {
  std::filesystem::permissions(path, std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add);
  std::string bytes = testing::read_text(path);
  const size_t at = bytes.find("\"config\"");
  REQUIRE(at != std::string::npos);
  const size_t hex = bytes.find("sha256:", at) + 7;
  bytes[hex] = bytes[hex] == 'a' ? 'b' : 'a';
  testing::write_text(path, bytes);
}

struct FakeLayer {
  std::string media_type;
  std::string bytes;    // as served
  std::string diff_id;  // raw, as the config says
};

// An image of `layers` in `source`, tagged "t"; `arch` in its config.
std::string fake_image(MemorySource& source, const std::string& arch,
                       const std::vector<FakeLayer>& layers, json extra_layer_fields = {}) {
  json diff_ids = json::array();
  json descriptors = json::array();
  for (const auto& l : layers) {
    diff_ids.push_back(format_digest(l.diff_id));
    json d = {
        {"mediaType", l.media_type}, {"digest", source.put("", l.bytes)}, {"size", l.bytes.size()}};
    if (!extra_layer_fields.is_null()) d.update(extra_layer_fields);
    descriptors.push_back(d);
  }
  const std::string config = json{{"architecture", arch},
                                  {"os", "linux"},
                                  {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}}
                                 .dump();
  const std::string manifest = json{
      {"schemaVersion", 2},
      {"mediaType", kManifestType},
      {"config",
       {{"mediaType", "application/vnd.oci.image.config.v1+json"},
        {"digest", source.put("", config)},
        {"size", config.size()}}},
      {"layers", descriptors}}.dump();
  const std::string digest = source.put(kManifestType, manifest);
  source.tags["t"] = digest;
  return digest;
}

Reference fake_ref() {
  return parse_reference("fake.test/app:t").value();
}

}  // namespace

TEST_CASE("a layer tampered in the registry's storage is refused and never committed",
          "[oci][attack][registry]") {
  ImageWorld world;
  const std::string layer = world.layout_manifest("v1-amd64")["layers"][0]["digest"];
  flip_byte(world.registry->blob_file(layer), ImageWorld::kBaseSize / 2);
  MemoryLayers layers;
  auto source = open_source(world.rules(), world.ref("v1")).value();
  auto image = convert_image(*source, world.ref("v1"), {"amd64"}, layers);
  REQUIRE_FALSE(image);
  CHECK(image.error().code == Errc::signature);
  CHECK_THAT(image.error().message, Catch::Contains(layer));
  CHECK(layers.discarded == 1);
  CHECK(layers.layers.size() <= 1);  // the app layer may come first; never the base
  for (const auto& [diff_id, bytes] : layers.layers) CHECK(sha256(bytes) == diff_id);
}

TEST_CASE("a manifest asked by digest whose bytes do not match is refused",
          "[oci][attack][registry]") {
  ImageWorld world;
  const std::string manifest = testing::layout_digest(world.layout, "v1-arm64");
  SECTION("from the registry") {
    retarget_config(world.registry->blob_file(manifest));
    auto source = open_source(world.rules(), world.ref("v1")).value();
    auto direct = source->manifest(world.ref("v1"), manifest);
    REQUIRE_FALSE(direct);
    CHECK(direct.error().code == Errc::signature);
    MemoryLayers layers;
    auto image = convert_image(*source, world.ref("v1"), {"amd64", "arm64"}, layers);
    REQUIRE_FALSE(image);
    CHECK(image.error().code == Errc::signature);
    CHECK(layers.begun == 0);  // every manifest is checked before any layer is read
  }
  SECTION("from an OCI layout") {
    retarget_config(testing::layout_blob(world.layout, manifest));
    const std::vector<SourceRule> rules = {{"layout.test/app", "oci:" + world.layout}};
    const Reference ref = parse_reference("layout.test/app:v1").value();
    auto source = open_source(rules, ref).value();
    auto direct = source->manifest(ref, manifest);
    REQUIRE_FALSE(direct);
    CHECK(direct.error().code == Errc::signature);
    MemoryLayers layers;
    auto image = convert_image(*source, ref, {"arm64"}, layers);
    REQUIRE_FALSE(image);
    CHECK(image.error().code == Errc::signature);
    CHECK(layers.begun == 0);
  }
}

TEST_CASE("a layer whose uncompressed digest is not its diff_id is refused",
          "[oci][attack][convert]") {
  MemorySource source;
  fake_image(source, "amd64", {{kTar, "layer bytes", sha256("other bytes")}});
  MemoryLayers layers;
  auto image = convert_image(source, fake_ref(), {"amd64"}, layers);
  REQUIRE_FALSE(image);
  CHECK(image.error().code == Errc::signature);
  CHECK_THAT(image.error().message, Catch::Contains("diff_id"));
  CHECK(layers.begun == 1);
  CHECK(layers.discarded == 1);
  CHECK(layers.layers.empty());
}

TEST_CASE("zstd and plain tar layers are served uncompressed under their diff_ids",
          "[oci][convert]") {
  const std::string tar = testing::noise_bytes(300 * 1024, 7);
  std::string zst(ZSTD_compressBound(tar.size()), '\0');
  zst.resize(ZSTD_compress(zst.data(), zst.size(), tar.data(), tar.size(), 3));
  MemorySource source;
  fake_image(source, "arm64",
             {{"application/vnd.oci.image.layer.v1.tar+zstd", zst, sha256(tar)},
              {kTar, "plain", sha256("plain")}});
  MemoryLayers layers;
  auto image = convert_image(source, fake_ref(), {"arm64"}, layers);
  REQUIRE(image);
  CHECK(layers.layers.at(sha256(tar)) == tar);
  CHECK(layers.layers.at(sha256("plain")) == "plain");
  CHECK(image->bytes_downloaded > zst.size());
}

TEST_CASE("images the served form cannot carry are refused with the reason",
          "[oci][attack][convert]") {
  MemorySource source;
  MemoryLayers layers;
  SECTION("a Docker schema 1 manifest") {
    source.tags["t"] = source.put("application/vnd.docker.distribution.manifest.v1+prettyjws",
                                  R"({"schemaVersion":1,"name":"app","fsLayers":[]})");
    auto image = convert_image(source, fake_ref(), {"amd64"}, layers);
    REQUIRE_FALSE(image);
    CHECK(image.error().code == Errc::invalid);
    CHECK_THAT(image.error().message, Catch::Contains("schema 1"));
  }
  SECTION("a foreign layer") {
    fake_image(source, "amd64",
               {{"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "x", sha256("x")}});
    auto image = convert_image(source, fake_ref(), {"amd64"}, layers);
    REQUIRE_FALSE(image);
    CHECK_THAT(image.error().message, Catch::Contains("non-distributable"));
  }
  SECTION("a layer with URLs to fetch it from elsewhere") {
    fake_image(source, "amd64", {{kTar, "x", sha256("x")}},
               json{{"urls", json::array({"https://example.com/x"})}});
    auto image = convert_image(source, fake_ref(), {"amd64"}, layers);
    REQUIRE_FALSE(image);
    CHECK_THAT(image.error().message, Catch::Contains("non-distributable"));
  }
  SECTION("more than 256 layers") {
    std::vector<FakeLayer> many(257, FakeLayer{kTar, "x", sha256("x")});
    fake_image(source, "amd64", many);
    auto image = convert_image(source, fake_ref(), {"amd64"}, layers);
    REQUIRE_FALSE(image);
    CHECK(image.error().code == Errc::too_large);
    CHECK_THAT(image.error().message, Catch::Contains("256"));
  }
  SECTION("a config larger than 4 MiB") {
    const std::string manifest = json{
        {"schemaVersion", 2},
        {"mediaType", kManifestType},
        {"config",
         {{"mediaType", "application/vnd.oci.image.config.v1+json"},
          {"digest", format_digest(sha256("big"))},
          {"size", (4u << 20) + 1}}},
        {"layers", json::array()}}.dump();
    source.tags["t"] = source.put(kManifestType, manifest);
    auto image = convert_image(source, fake_ref(), {"amd64"}, layers);
    REQUIRE_FALSE(image);
    CHECK(image.error().code == Errc::too_large);
  }
  SECTION("an index entry whose config is of another architecture") {
    const std::string manifest = fake_image(source, "amd64", {{kTar, "x", sha256("x")}});
    const std::string index = json{{"schemaVersion", 2},
                                   {"manifests",
                                    {{{"mediaType", kManifestType},
                                      {"digest", manifest},
                                      {"size", source.blobs[manifest].bytes.size()},
                                      {"platform", {{"architecture", "arm64"}, {"os", "linux"}}}}}}}
                                  .dump();
    source.tags["t"] = source.put("application/vnd.oci.image.index.v1+json", index);
    auto image = convert_image(source, fake_ref(), {"arm64"}, layers);
    REQUIRE_FALSE(image);
    CHECK(image.error().code == Errc::invalid);
    CHECK_THAT(image.error().message, Catch::Contains("the index says linux/arm64"));
  }
  CHECK(layers.layers.empty());
}

namespace {

// A layout written by hand: image "t" of one plain layer; returns the config's digest.
std::string hand_layout(const std::string& dir, const json& extra_index_entry) {
  std::filesystem::create_directories(dir + "/blobs/sha256");
  const auto put = [&](const std::string& bytes) {
    const std::string d = format_digest(sha256(bytes));
    testing::write_text(testing::layout_blob(dir, d), bytes);
    return d;
  };
  const std::string layer = "plain layer";
  const std::string config =
      json{{"architecture", "amd64"},
           {"os", "linux"},
           {"rootfs", {{"type", "layers"}, {"diff_ids", {format_digest(sha256(layer))}}}}}
          .dump();
  const std::string manifest =
      json{{"schemaVersion", 2},
           {"config",
            {{"mediaType", "application/vnd.oci.image.config.v1+json"},
             {"digest", put(config)},
             {"size", config.size()}}},
           {"layers", {{{"mediaType", kTar}, {"digest", put(layer)}, {"size", layer.size()}}}}}
          .dump();
  json entries = {extra_index_entry,
                  {{"mediaType", kManifestType},
                   {"digest", put(manifest)},
                   {"size", manifest.size()},
                   {"annotations", {{"org.opencontainers.image.ref.name", "t"}}}}};
  testing::write_text(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  testing::write_text(dir + "/index.json",
                      json{{"schemaVersion", 2}, {"manifests", entries}}.dump());
  return format_digest(sha256(config));
}

Expected<ConvertedImage> convert_layout(const std::string& dir, MemoryLayers& layers) {
  const Reference ref = parse_reference("layout.test/app:t").value();
  SOVDEV_ASSIGN(auto source, open_source({{"layout.test/app", "oci:" + dir}}, ref));
  return convert_image(*source, ref, {"amd64"}, layers);
}

}  // namespace

TEST_CASE("a layout with mistyped JSON fields is read without throwing", "[oci][attack][layout]") {
  testing::TempDir dir;
  hand_layout(dir.path(), json{{"digest", 5}, {"mediaType", json::array()}, {"size", "big"}});
  const Reference ref = parse_reference("layout.test/app:t").value();
  auto source = open_source({{"layout.test/app", "oci:" + dir.path()}}, ref).value();
  const std::string manifest = testing::layout_digest(dir.path(), "t");
  auto fetched = source->manifest(ref, manifest);
  REQUIRE(fetched);
  CHECK(fetched->media_type == kManifestType);
  MemoryLayers layers;
  CHECK(convert_layout(dir.path(), layers));
}

TEST_CASE("a FIFO planted as a layout blob is refused instead of blocking the reader",
          "[oci][attack][layout]") {
  testing::TempDir dir;
  const std::string config = hand_layout(dir.path(), json::object());
  const std::string path = testing::layout_blob(dir.path(), config);
  std::filesystem::remove(path);
  REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  MemoryLayers layers;
  auto image = convert_layout(dir.path(), layers);
  REQUIRE_FALSE(image);
  CHECK_THAT(image.error().message, Catch::Contains("not a regular file"));
}

TEST_CASE("a multi-member gzip layer decodes whole and a truncated one is refused",
          "[oci][convert]") {
  testing::TempDir dir;
  const std::string part1 = testing::noise_bytes(70 * 1024, 11),
                    part2 = testing::noise_bytes(90 * 1024, 12);
  testing::write_text(dir / "a", part1);
  testing::write_text(dir / "b", part2);
  const std::string gz = testing::run({"/bin/gzip", "-c", dir / "a"}).out +
                         testing::run({"/bin/gzip", "-c", dir / "b"}).out;
  REQUIRE(gz.size() > 160 * 1024);
  const std::string gzip_type = "application/vnd.docker.image.rootfs.diff.tar.gzip";
  SECTION("two members") {
    MemorySource source;
    fake_image(source, "amd64", {{gzip_type, gz, sha256(part1 + part2)}});
    MemoryLayers layers;
    auto image = convert_image(source, fake_ref(), {"amd64"}, layers);
    if (!image) FAIL(image.error().message);
    CHECK(layers.layers.at(sha256(part1 + part2)) == part1 + part2);
  }
  SECTION("truncated, though the blob's digest is of the truncated bytes") {
    MemorySource source;
    const std::string cut = gz.substr(0, gz.size() - 100);
    fake_image(source, "amd64", {{gzip_type, cut, sha256(part1 + part2)}});
    MemoryLayers layers;
    auto image = convert_image(source, fake_ref(), {"amd64"}, layers);
    REQUIRE_FALSE(image);
    CHECK(image.error().code == Errc::invalid);
    CHECK_THAT(image.error().message, Catch::Contains("truncated"));
    CHECK(layers.layers.empty());
  }
}
