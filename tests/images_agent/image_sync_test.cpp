// The images of a bundle (agent/images/image_sync.hpp) against the hub double: every blob of
// the agent's arch fetched, the index and manifests checked against the signed listing, the
// status figures, and the quota: collection keeps the last good and newest versions' blobs,
// and a fetch that still does not fit fails with the disk-full error, losing nothing.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "agent/images/image_sync.hpp"
#include "agent/images/store_blob_source.hpp"
#include "bundles/image_rules.hpp"
#include "bundles/messages.hpp"
#include "common/hex.hpp"
#include "tests/images_agent/blob_site.hpp"

using namespace sovdev;
using namespace sovdev::testing;
using agent::images::ImageSync;

namespace {

std::string oci(const ServedBlob& b) {
  return "sha256:" + to_hex(b.listing.digest());
}

nlohmann::json descriptor(const ServedBlob& b) {
  return {{"mediaType", b.listing.media_type()}, {"digest", oci(b)}, {"size", b.listing.size()}};
}

// One image for amd64: index → manifest → config + layers.
struct Image {
  ServedBlob config, manifest, index;
  std::vector<ServedBlob> layers;
  Image(std::vector<ServedBlob> layer_list, const std::string& extra_layer_digest = "")
      : layers(std::move(layer_list)) {
    config = served_blob_of(R"({"architecture":"amd64","os":"linux"})",
                            "application/vnd.oci.image.config.v1+json", "amd64");
    nlohmann::json m = {{"schemaVersion", 2}, {"config", descriptor(config)}};
    m["layers"] = nlohmann::json::array();
    for (const auto& l : layers) m["layers"].push_back(descriptor(l));
    if (!extra_layer_digest.empty()) {
      m["layers"].push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
                             {"digest", extra_layer_digest},
                             {"size", 1}});
    }
    manifest = served_blob_of(m.dump(), "application/vnd.oci.image.manifest.v1+json", "amd64");
    nlohmann::json i = {{"schemaVersion", 2}};
    i["manifests"] = nlohmann::json::array({descriptor(manifest)});
    index = served_blob_of(i.dump(), "application/vnd.oci.image.index.v1+json", "");
  }
  std::vector<const ServedBlob*> all() const {
    std::vector<const ServedBlob*> out{&index, &manifest, &config};
    for (const auto& l : layers) out.push_back(&l);
    return out;
  }
};

pb::BundleManifest bundle_of(uint64_t version, const std::vector<const Image*>& images) {
  pb::BundleManifest m;
  m.set_stack("sovdev");
  m.set_channel("edge");
  m.set_version(version);
  m.add_arch("amd64");
  for (const Image* image : images) {
    for (const ServedBlob* b : image->all()) {
      if (find_image_blob(m, b->listing.digest()) == nullptr) *m.add_image_blobs() = b->listing;
    }
  }
  return m;
}

// The bundle is in the cache, verified (its payload does not matter here).
void cache_bundle(BlobSite& site, const pb::BundleManifest& m, const std::string& digest) {
  store::BundleCache cache(*site.db);
  store::BundleMeta meta;
  meta.digest = digest;
  meta.stack = m.stack();
  meta.channel = m.channel();
  meta.version = m.version();
  meta.envelope = "envelope";
  REQUIRE(cache.begin(meta));
  REQUIRE(cache.set_state(digest, store::BundleState::verified));
}

struct Outcome {
  ImageSync::Phase phase;
  std::string error;
  Errc code;
  pb::AgentStatus status;
};

Outcome sync_images(BlobSite& site, const agent::images::ImageSettings& images,
                    const pb::BundleManifest& m, const std::string& digest) {
  site.settings.install.arch = "amd64";
  ImageSync sync(*site.db, *site.client, site.settings, images, site.counters, m, digest);
  const auto start = std::chrono::steady_clock::now();
  auto now_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start)
        .count();
  };
  auto guard = [&](Status s) {
    if (!s && (s.error().code == Errc::io || s.error().code == Errc::store)) {
      (void)sync.storage_failed(s.error());
    } else if (!s) {
      FAIL(s.error().message);
    }
  };
  guard(sync.start(now_ms()));
  const std::string data = site.settings.prefix + "/agent/edge-1/data";
  while (sync.phase() == ImageSync::Phase::fetching && now_ms() < 60000) {
    auto event = site.client->next(std::chrono::milliseconds(20));
    while (event) {
      if (event->kind == mqtt::Event::Kind::message && event->message.topic == data) {
        auto resp = parse_fetch_response(event->message.payload);
        if (resp && !resp->blob().empty()) guard(sync.on_response(*resp, now_ms()));
      }
      event = site.client->next(std::chrono::milliseconds(0));
    }
    guard(sync.flush(now_ms()));
    guard(sync.on_tick(now_ms()));
  }
  Outcome out{sync.phase(), sync.error(), sync.error_code(), {}};
  sync.fill_status(out.status);
  return out;
}

bool held(BlobSite& site, const ServedBlob& b) {
  agent::images::StoreBlobSource source(*site.db);
  auto found = source.find(b.listing.digest());
  return found && *found;
}

}  // namespace

TEST_CASE("every blob of the agent's arch is fetched before the version counts as ready",
          "[images]") {
  BlobSite site;
  const Image image({make_served_blob(150 * 1024, 21), make_served_blob(90 * 1024, 22)});
  for (const ServedBlob* b : image.all()) site.hub.serve(*b);
  site.hub.start();
  pb::BundleManifest m = bundle_of(1, {&image});
  // A blob of another arch is listed too: this agent never asks for it.
  ServedBlob arm = make_served_blob(10 * 1024, 23);
  arm.listing.set_arch("arm64");
  m.add_arch("arm64");
  *m.add_image_blobs() = arm.listing;
  CHECK_FALSE(*agent::images::images_held(*site.db, m, bundle_digest(1), "amd64", 1));
  const Outcome out = sync_images(site, {}, m, bundle_digest(1));
  REQUIRE(out.error == "");
  CHECK(out.phase == ImageSync::Phase::done);
  for (const ServedBlob* b : image.all()) CHECK(held(site, *b));
  CHECK_FALSE(held(site, arm));
  CHECK(out.status.image_blobs_needed() == 5);
  CHECK(out.status.image_blobs_held() == 5);
  CHECK(out.status.image_bytes_held() == out.status.image_bytes_needed());
  CHECK(*agent::images::images_held(*site.db, m, bundle_digest(1), "amd64", 1));
  // Held: a second sync asks the hub nothing.
  const uint64_t requests = site.hub.requests();
  CHECK(sync_images(site, {}, m, bundle_digest(1)).phase == ImageSync::Phase::done);
  CHECK(site.hub.requests() == requests);
}

TEST_CASE("a bundle without images needs no blob", "[images]") {
  BlobSite site;
  CHECK(*agent::images::images_held(*site.db, bundle_of(1, {}), bundle_digest(1), "amd64", 1));
}

TEST_CASE("an image manifest naming a blob the signed bundle does not list refuses its images",
          "[images][security]") {
  BlobSite site;
  const std::string stranger = "sha256:" + std::string(64, 'e');
  const Image image({make_served_blob(20 * 1024, 31)}, stranger);
  for (const ServedBlob* b : image.all()) site.hub.serve(*b);
  site.hub.start();
  const Outcome out = sync_images(site, {}, bundle_of(1, {&image}), bundle_digest(1));
  CHECK(out.phase == ImageSync::Phase::failed);
  CHECK(out.code == Errc::signature);
  CHECK(out.error.find("does not list") != std::string::npos);
}

TEST_CASE("collection keeps exactly the blobs of the last good and the newest version",
          "[images][gc]") {
  BlobSite site;
  const ServedBlob shared = make_served_blob(100 * 1024, 41);
  const Image v1({shared, make_served_blob(100 * 1024, 42)});
  const Image v2({shared, make_served_blob(100 * 1024, 43)});
  const Image v3({shared, make_served_blob(100 * 1024, 44)});
  for (const Image* image : {&v1, &v2, &v3}) {
    for (const ServedBlob* b : image->all()) site.hub.serve(*b);
  }
  site.hub.start();
  const auto m1 = bundle_of(1, {&v1});
  const auto m2 = bundle_of(2, {&v2});
  const auto m3 = bundle_of(3, {&v3});
  cache_bundle(site, m1, bundle_digest(1));
  REQUIRE(sync_images(site, {}, m1, bundle_digest(1)).phase == ImageSync::Phase::done);
  REQUIRE(store::ApplyLog(*site.db).set_last_good("sovdev", 1, bundle_digest(1)));
  cache_bundle(site, m2, bundle_digest(2));
  REQUIRE(sync_images(site, {}, m2, bundle_digest(2)).phase == ImageSync::Phase::done);
  // v3 arrives; the quota holds exactly v1's and v3's blobs, not v2's as well.
  uint64_t kept = 0;
  for (const Image* image : {&v1, &v3}) {
    for (const ServedBlob* b : image->all()) kept += b->listing.wire_size();
  }
  kept -= shared.listing.wire_size();
  agent::images::ImageSettings tight;
  tight.quota = kept;
  cache_bundle(site, m3, bundle_digest(3));
  const Outcome out = sync_images(site, tight, m3, bundle_digest(3));
  REQUIRE(out.error == "");
  for (const Image* image : {&v1, &v3}) {
    for (const ServedBlob* b : image->all()) CHECK(held(site, *b));
  }
  CHECK_FALSE(held(site, v2.layers[1]));
  CHECK_FALSE(held(site, v2.manifest));
  CHECK_FALSE(held(site, v2.index));
}

TEST_CASE("a version whose images pass the quota fails with the disk-full error, losing nothing",
          "[images][gc]") {
  BlobSite site;
  const Image v1({make_served_blob(100 * 1024, 51)});
  const Image v2({make_served_blob(200 * 1024, 52)});
  for (const Image* image : {&v1, &v2}) {
    for (const ServedBlob* b : image->all()) site.hub.serve(*b);
  }
  site.hub.start();
  const auto m1 = bundle_of(1, {&v1});
  cache_bundle(site, m1, bundle_digest(1));
  REQUIRE(sync_images(site, {}, m1, bundle_digest(1)).phase == ImageSync::Phase::done);
  REQUIRE(store::ApplyLog(*site.db).set_last_good("sovdev", 1, bundle_digest(1)));
  agent::images::ImageSettings tight;
  tight.quota = 150 * 1024;
  const auto m2 = bundle_of(2, {&v2});
  cache_bundle(site, m2, bundle_digest(2));
  const Outcome out = sync_images(site, tight, m2, bundle_digest(2));
  CHECK(out.phase == ImageSync::Phase::failed);
  CHECK(out.code == Errc::io);
  CHECK(out.error.find("disk full") != std::string::npos);
  CHECK(out.error.find("[images] quota") != std::string::npos);
  for (const ServedBlob* b : v1.all()) CHECK(held(site, *b));
}
