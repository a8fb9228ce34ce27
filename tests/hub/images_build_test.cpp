// `sovdev-hub build --images` end to end against a real docker-registry holding test images
// made with umoci (tests/support/registry.hpp): the images resolved for both arches, their
// blobs stored in hub.db, the workloads pinned, the manifest listing every blob; a second build
// downloads no layer; an image no source has, or without an arch of the bundle, is refused
// naming the object.
#include <catch2/catch.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "bundles/blob_wire.hpp"
#include "bundles/hash.hpp"
#include "bundles/image_rules.hpp"
#include "bundles/messages.hpp"
#include "common/hex.hpp"
#include "platform/fs/bundle_reader.hpp"
#include "platform/store/hub_images.hpp"
#include "platform/store/hub_store.hpp"
#include "tests/cli/cli_fixture.hpp"
#include "tests/support/registry.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

// test/app:v1 (amd64: base + app layer; arm64: the same and one more) and test/app:v2-amd64 (a
// single amd64 manifest) in a real registry.
struct BuildImageWorld {
  Workspace ws;
  std::string layout = ws.dir / "layout";
  std::unique_ptr<Registry> registry;
  std::string db = ws.dir / "hub.db";

  BuildImageWorld() {
    make_layout(layout);
    make_image(
        layout, "v1-amd64", "amd64",
        {{{"usr/lib/base.bin", noise_bytes(256 * 1024, 1)}}, {{"etc/app.conf", "version = 1\n"}}});
    make_image(layout, "v1-arm64", "arm64", {{{"usr/lib/arm.bin", noise_bytes(4096, 2)}}},
               "v1-amd64");
    make_index(layout, "v1", {"v1-amd64", "v1-arm64"});
    make_image(layout, "v2-amd64", "amd64", {{{"etc/app.conf", "version = 2\n"}}}, "v1-amd64");
    registry = Registry::start();
    push_image(layout, "v1", *registry, "test/app:v1");
    push_image(layout, "v2-amd64", *registry, "test/app:v2-amd64");
  }

  std::string image(const std::string& tag) const { return registry->host() + "/test/app:" + tag; }

  RunResult build(const std::string& src, const std::string& out, uint64_t version) const {
    return ws.build(src, out, version,
                    {"--images", "--db", db, "--image-source",
                     registry->host() + "/=" + registry->url(), "--image-level", "3"});
  }
};

std::string app_manifests(const std::string& image) {
  return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app, namespace: demo}\n"
         "spec:\n  selector: {matchLabels: {app: app}}\n  template:\n"
         "    metadata: {labels: {app: app}}\n    spec:\n"
         "      containers: [{name: app, image: \"" +
         image +
         "\"}]\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: note, namespace: demo}\n"
         "data: {image: \"" +
         image + "\"}\n";
}

pb::BundleManifest manifest_of(const std::string& file) {
  auto reader = fs::BundleFileReader::open(file);
  REQUIRE(reader);
  pb::Signed envelope;
  REQUIRE(envelope.ParseFromString(reader->manifest_envelope()));
  pb::BundleManifest m;
  REQUIRE(m.ParseFromString(envelope.body()));
  return m;
}

// A blob as hub.db serves it: its wire chunks, each checked, decoded back.
std::string served_bytes(store::Database& db, const pb::ImageBlob& blob) {
  store::HubImages images(db);
  auto row = images.find_by_wire(blob.wire_digest(), true);
  REQUIRE(row);
  REQUIRE(*row);
  auto manifest = blobwire::parse_blob_manifest((*row)->blob_manifest, blob);
  REQUIRE(manifest);
  std::string out;
  auto decoder = blobwire::BlobDecoder::create(blob.digest(), blob.size(), [&](std::string_view b) {
    out.append(b);
    return Status{};
  });
  REQUIRE(decoder);
  std::string chunk;
  for (uint32_t i = 0; i < blobwire::chunk_count(*manifest); i++) {
    REQUIRE(images.read_chunk(blob.digest(), i, chunk));
    REQUIRE(blobwire::chunk_matches(*manifest, i, chunk));
    REQUIRE(decoder->write(chunk));
  }
  REQUIRE(decoder->finish());
  return out;
}

}  // namespace

TEST_CASE("build --images pins the workloads to images it stores in hub.db, once per blob",
          "[hub][images][registry]") {
  BuildImageWorld world;
  const std::string src = world.ws.dir / "src";
  write_manifest(src + "/app.yaml", app_manifests(world.image("v1")));
  const std::string v1 = world.ws.dir / "v1.sdb";
  auto first = world.build(src, v1, 1);
  INFO(first.out << first.err);
  REQUIRE(first.exit_code == 0);

  const pb::BundleManifest m = manifest_of(v1);
  REQUIRE(m.images_size() == 1);
  const pb::ImageRef& ref = m.images(0);
  CHECK(ref.reference() == world.image("v1"));
  CHECK(ref.pinned() == world.registry->host() + "/test/app@sha256:" + to_hex(ref.index_digest()));
  CHECK(first.out.find(world.image("v1") + " -> " + ref.pinned() +
                       ": 3 layer(s) downloaded, 2 reused") != std::string::npos);
  // The index; per arch its manifest and config; amd64's two layers and arm64's three.
  REQUIRE(m.image_blobs_size() == 1 + 2 * 2 + 2 + 3);
  CHECK(check_image_fields(m));
  auto db = std::move(store::open_hub_database(world.db)).value();
  for (const auto& blob : m.image_blobs()) {
    INFO(blob.media_type() << " " << blob.arch());
    CHECK(served_bytes(db, blob).size() == blob.size());
    if (blob.media_type() == kMediaLayer) {
      CHECK(blob.repository() == world.registry->host() + "/test/app");
      CHECK(blob.layer() >= 1);
    }
  }
  const pb::ImageBlob& index = m.image_blobs(0);
  CHECK(index.media_type() == kMediaIndex);
  CHECK(sha256(served_bytes(db, index)) == ref.index_digest());
  // Three distinct layers plus index, two manifests and two configs: each stored once.
  CHECK(std::move(store::query_int64(db, "SELECT count(*) FROM image_blobs")).value() == 8);

  // The Deployment runs the pinned image; the ConfigMap's `image` is only text and stays.
  for (const auto& record : unpack_bundle(v1, world.ws.trust)) {
    INFO(record.json());
    if (record.kind() == "Deployment") {
      CHECK(record.json().find("\"image\":\"" + ref.pinned() + "\"") != std::string::npos);
    } else {
      CHECK(record.json().find("\"image\":\"" + world.image("v1") + "\"") != std::string::npos);
    }
  }

  // inspect says what each arch's agent fetches.
  auto shown = run({hub_binary(), "inspect", v1, "--json"});
  REQUIRE(shown.exit_code == 0);
  const auto j = nlohmann::json::parse(shown.out);
  CHECK(j["images"][0]["pinned"] == ref.pinned());
  CHECK(j["image_blobs"]["amd64"]["blobs"] == 1 + 2 + 2);
  CHECK(j["image_blobs"]["arm64"]["blobs"] == 1 + 2 + 3);
  auto human = run({hub_binary(), "inspect", v1});
  CHECK(human.out.find(world.image("v1") + " -> " + ref.pinned()) != std::string::npos);

  // The next version of the same sources downloads no layer: hub.db holds them all.
  auto second = world.build(src, world.ws.dir / "v2.sdb", 2);
  INFO(second.out << second.err);
  REQUIRE(second.exit_code == 0);
  CHECK(second.out.find(": 0 layer(s) downloaded, 5 reused") != std::string::npos);
  CHECK(manifest_of(world.ws.dir / "v2.sdb").image_blobs_size() == m.image_blobs_size());
  CHECK(std::move(store::query_int64(db, "SELECT count(*) FROM image_blobs")).value() == 8);
}

TEST_CASE("build --images refuses an image no source has and one without an arch of the bundle",
          "[hub][images][registry]") {
  BuildImageWorld world;
  const std::string missing_src = world.ws.dir / "missing";
  write_manifest(missing_src + "/app.yaml", app_manifests(world.image("nothing")));
  auto missing = world.build(missing_src, world.ws.dir / "m.sdb", 1);
  INFO(missing.out << missing.err);
  CHECK(missing.exit_code != 0);
  CHECK(missing.err.find("app.yaml:1: spec.template.spec.containers[0].image: image " +
                         world.image("nothing") + ": registry") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(world.ws.dir / "m.sdb"));

  // test/app:v2-amd64 has no arm64, and the bundle is for amd64 and arm64.
  const std::string one_arch = world.ws.dir / "one-arch";
  write_manifest(one_arch + "/app.yaml", app_manifests(world.image("v2-amd64")));
  auto no_arm = world.build(one_arch, world.ws.dir / "a.sdb", 1);
  INFO(no_arm.out << no_arm.err);
  CHECK(no_arm.exit_code != 0);
  CHECK(no_arm.err.find("app.yaml:1:") != std::string::npos);
  CHECK(no_arm.err.find("arm64") != std::string::npos);
  // Nothing of the refused image was stored.
  auto db = std::move(store::open_hub_database(world.db)).value();
  CHECK(std::move(store::query_int64(db, "SELECT count(*) FROM image_blobs")).value() == 0);
}
