// The build's image step with a resolver the test controls, and publish: a bundle naming image
// blobs hub.db lacks is refused (naming the blob and the command that stores it); once they are
// stored it is published and hub.db records which blobs it names.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>

#include "bundles/hash.hpp"
#include "bundles/image_rules.hpp"
#include "common/hex.hpp"
#include "hub/build.hpp"
#include "hub/images/build_images.hpp"
#include "hub/publish.hpp"
#include "platform/store/hub_images.hpp"
#include "platform/store/hub_store.hpp"
#include "tests/cli/cli_fixture.hpp"
#include "tests/support/process.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

// Resolves every reference to one image whose blobs it stores in its own scratch database
// (so their wire digests are real), counting how often it is asked.
class ScratchResolver final : public hub::images::ImageResolver {
 public:
  store::Database scratch = std::move(store::open_hub_database(":memory:")).value();
  std::vector<std::pair<std::string, std::string>> stored;  // media type, bytes
  int asked = 0;

  Expected<hub::images::ResolvedImage> resolve(const std::string& reference,
                                               const std::vector<std::string>& arches) override {
    asked++;
    if (reference.find("missing") != std::string::npos) {
      return make_error(Errc::not_found, "no source has it");
    }
    hub::images::ResolvedImage out;
    store::HubImages images(scratch);
    auto add = [&](std::string_view type, const std::string& bytes, const std::string& arch,
                   uint32_t layer) {
      const store::ImageBlobRow row = std::move(images.put(type, bytes, 1)).value();
      stored.emplace_back(std::string(type), bytes);
      pb::ImageBlob b;
      b.set_digest(row.digest);
      b.set_size(row.size);
      b.set_media_type(std::string(type));
      b.set_arch(arch);
      b.set_wire_digest(row.wire_digest);
      b.set_wire_size(row.wire_size);
      if (layer) {
        b.set_repository("example.org/app");
        b.set_layer(layer);
      }
      out.blobs.push_back(b);
      return row.digest;
    };
    out.index_digest = add(kMediaIndex, R"({"manifests":[]})", "", 0);
    for (const auto& arch : arches) {
      add(kMediaConfig, R"({"architecture":")" + arch + "\"}", arch, 0);
      add(kMediaLayer, "layer shared by every arch", arch, 1);
    }
    out.pinned = "example.org/app@sha256:" + to_hex(out.index_digest);
    out.layers_downloaded = 1;
    return out;
  }
};

const char* kPublishDeployment = R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "example.org/app:1"}]
      initContainers: [{name: init, image: "example.org/app:1"}]
)";

}  // namespace

TEST_CASE("publish refuses a bundle naming image blobs hub.db lacks, and records them once held",
          "[hub][images]") {
  Workspace ws;
  const TempDir& dir = ws.dir;
  write_manifest(dir / "src/web.yaml", kPublishDeployment);
  ScratchResolver resolver;
  hub::images::BuildImages images(resolver);
  hub::BuildRequest req;
  req.source_dir = dir / "src";
  req.out_path = dir / "web.sdb";
  req.info = {"web", "edge", 1, {"amd64", "arm64"}, "", "", 1700000000};
  req.keys = {std::move(parse_secret_key(read_text(ws.key("pub1")))).value()};
  req.images = &images;
  auto built = hub::build_bundle(req);
  REQUIRE(built);
  CHECK(resolver.asked == 1);  // one reference, named twice
  REQUIRE(built->manifest.images_size() == 1);
  CHECK(built->manifest.images(0).reference() == "example.org/app:1");
  // index + per arch a config and the layer (listed for each arch).
  CHECK(built->manifest.image_blobs_size() == 5);
  const auto records = unpack_bundle(dir / "web.sdb", ws.trust);
  REQUIRE(records.size() == 1);
  CHECK(records[0].json().find(built->manifest.images(0).pinned()) != std::string::npos);
  CHECK(records[0].json().find("example.org/app:1") == std::string::npos);

  auto db = std::move(store::open_hub_database(dir / "hub.db")).value();
  const hub::PublishRequest publish{
      dir / "web.sdb", {generate_key("online")}, std::nullopt, 1700000000, 3600};
  auto refused = hub::publish_bundle(db, publish);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::not_found);
  INFO(refused.error().message);
  CHECK(refused.error().message.find("sha256:" + to_hex(built->manifest.image_blobs(0).digest())) !=
        std::string::npos);
  CHECK(refused.error().message.find("--images --db") != std::string::npos);
  CHECK_FALSE(std::move(store::HubBundles(db).latest("edge", "web")).value());

  // Stored (as `build --images --db` does): published, and hub.db knows what it names.
  store::HubImages held(db);
  for (const auto& [type, bytes] : resolver.stored) REQUIRE(held.put(type, bytes, 1));
  auto published = hub::publish_bundle(db, publish);
  INFO((published ? "" : published.error().message));
  REQUIRE(published);
  const auto named = std::move(held.blobs_of(published->digest)).value();
  CHECK(named.size() == 4);  // the layer once
  for (const auto& blob : built->manifest.image_blobs()) {
    CHECK(std::find(named.begin(), named.end(), blob.digest()) != named.end());
  }
}

TEST_CASE("a build names the object that uses an image no source has", "[hub][images]") {
  TempDir dir;
  write_manifest(dir / "src/web.yaml", R"(apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: job, image: "example.org/missing:2"}]
)");
  ScratchResolver resolver;
  hub::images::BuildImages images(resolver);
  hub::BuildRequest req;
  req.source_dir = dir / "src";
  req.out_path = dir / "web.sdb";
  req.info = {"web", "edge", 1, {"amd64"}, "", "", 1700000000};
  req.keys = {generate_key("targets")};
  req.images = &images;
  auto built = hub::build_bundle(req);
  REQUIRE_FALSE(built);
  CHECK(built.error().code == Errc::not_found);
  CHECK(built.error().message.find("web.yaml:1: spec.jobTemplate.spec.template.spec."
                                   "containers[0].image: image example.org/missing:2: no source "
                                   "has it") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "web.sdb"));
}
