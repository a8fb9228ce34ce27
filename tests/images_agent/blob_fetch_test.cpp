// BlobFetch against the hub double over a real broker: a full fetch, every refusal (tampered,
// foreign chunks, a manifest the bundle does not name, chunks that match but do not decode to
// the signed blob), resume after SIGKILL of a real agent process, and what the registry sees.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>

#include "agent/images/store_blob_source.hpp"
#include "bundles/hash.hpp"
#include "tests/images_agent/blob_site.hpp"

using namespace sovdev;
using namespace sovdev::testing;

TEST_CASE("an agent fetches a whole blob, checks it and keeps it for the registry", "[images]") {
  BlobSite site;
  const ServedBlob blob = make_served_blob(300 * 1024, 1);
  site.hub.serve(blob);
  site.hub.start();
  site.need(blob, bundle_digest(1));
  REQUIRE(site.fetch(blob) == "");
  CHECK(site.held(blob) == blob.data);
  CHECK(site.counters.bad_chunks == 0);
  store::ImageBlobs blobs(*site.db);
  CHECK_FALSE(std::filesystem::exists(blobs.partial_path(blob.listing.wire_digest())));
  // A second fetch of a held blob asks nothing.
  const uint64_t requests = site.hub.requests();
  REQUIRE(site.fetch(blob) == "");
  CHECK(site.hub.requests() == requests);
}

TEST_CASE("a tampered chunk is refused and asked for again", "[images][security]") {
  BlobSite site;
  const ServedBlob blob = make_served_blob(200 * 1024, 2);
  site.hub.tamper_once = {3, 7};
  site.hub.serve(blob);
  site.hub.start();
  site.need(blob, bundle_digest(1));
  REQUIRE(site.fetch(blob) == "");
  CHECK(site.counters.bad_chunks == 2);
  CHECK(site.held(blob) == blob.data);
}

TEST_CASE("a chunk of another blob at the same index is refused", "[images][security]") {
  BlobSite site;
  const ServedBlob blob = make_served_blob(200 * 1024, 3);
  const ServedBlob other = make_served_blob(200 * 1024, 4);
  site.hub.foreign = &other;
  site.hub.foreign_once = {0, 5};
  site.hub.serve(blob);
  site.hub.start();
  site.need(blob, bundle_digest(1));
  REQUIRE(site.fetch(blob) == "");
  CHECK(site.counters.bad_chunks == 2);
  CHECK(site.held(blob) == blob.data);
}

TEST_CASE("a blob manifest the bundle does not name is ignored and asked for again",
          "[images][security]") {
  BlobSite site;
  const ServedBlob blob = make_served_blob(100 * 1024, 5);
  const ServedBlob other = make_served_blob(100 * 1024, 6);
  site.hub.wrong_manifest_first = &other;
  site.hub.serve(blob);
  site.hub.start();
  site.need(blob, bundle_digest(1));
  REQUIRE(site.fetch(blob) == "");
  CHECK(site.counters.ignored_responses == 1);
  CHECK(site.counters.last_ignored.find("does not name") != std::string::npos);
  CHECK(site.hub.manifests_sent() >= 2);
  CHECK(site.held(blob) == blob.data);
}

TEST_CASE("chunks that match their hashes but do not decode to the signed blob are refused",
          "[images][security]") {
  BlobSite site;
  ServedBlob blob = make_served_blob(100 * 1024, 7);
  const ServedBlob other = make_served_blob(100 * 1024, 8);
  // A listing whose BlobManifest names other's digest over this blob's chunks: every chunk
  // matches, the whole is not what the digest says.
  pb::BlobManifest forged;
  REQUIRE(forged.ParseFromString(blob.manifest));
  forged.set_digest(other.listing.digest());
  blob.manifest = forged.SerializeAsString();
  blob.listing.set_digest(other.listing.digest());
  blob.listing.set_wire_digest(sha256(blob.manifest));
  site.hub.serve(blob);
  site.hub.start();
  site.need(blob, bundle_digest(1));
  const std::string error = site.fetch(blob);
  CHECK(error.find("do not decode to its signed digest") != std::string::npos);
  CHECK(site.held(blob).empty());
  agent::images::StoreBlobSource source(*site.db);
  CHECK_FALSE(*source.find(blob.listing.digest()));
}

TEST_CASE("an agent killed with SIGKILL mid-blob again and again resumes and pays < 1.2x the wire",
          "[images][fault]") {
  BlobSite site;
  // 8 MiB in 4 KiB chunks: a kill costs at most the window in flight and the burst not yet
  // committed (32 chunks), 2 % of the blob each.
  const ServedBlob blob = make_served_blob(8 * 1024 * 1024, 9);
  site.hub.serve(blob);
  site.hub.start();
  site.need(blob, bundle_digest(1));
  const std::string listing = site.dir / "blob.pb";
  std::ofstream(listing, std::ios::binary) << blob.listing.SerializeAsString();
  const std::string child =
      std::string(SOVDEV_BINARY_DIR) + "/tests/images_agent/images_agent_fetch_child";
  std::mt19937 rng(std::random_device{}());
  int kills = 0;
  for (int round = 0; round < 6; ++round) {
    // A point at random within the blob's 2,000-odd chunks.
    const uint64_t until =
        site.hub.chunks_sent() + std::uniform_int_distribution<uint64_t>(40, 320)(rng);
    Child agent({child, site.dir.path(), site.broker->url(), "edge-kill", listing},
                site.dir / ("child" + std::to_string(round) + ".log"));
    const bool reached =
        wait_until([&] { return site.hub.chunks_sent() >= until || !agent.running(); },
                   std::chrono::seconds(60));
    REQUIRE(reached);
    if (!agent.running()) break;  // finished before the kill point
    agent.kill_hard();
    agent.wait();
    kills++;
  }
  CHECK(kills >= 5);
  Child last({child, site.dir.path(), site.broker->url(), "edge-kill", listing},
             site.dir / "child-last.log");
  CHECK(last.wait() == 0);
  CHECK(site.held(blob) == blob.data);
  const double ratio =
      static_cast<double>(site.hub.bytes_sent()) / static_cast<double>(blob.listing.wire_size());
  WARN("SIGKILL " << kills << " times: " << site.hub.bytes_sent() << " bytes sent for "
                  << blob.listing.wire_size() << " on the wire (" << ratio << "x)");
  CHECK(ratio < 1.2);
}

TEST_CASE("the registry's blob source answers only verified blobs, from a read-only open",
          "[images]") {
  BlobSite site;
  const ServedBlob blob = make_served_blob(64 * 1024, 10);
  const ServedBlob absent = make_served_blob(64 * 1024, 11);
  site.hub.serve(blob);
  site.hub.start();
  site.need(blob, bundle_digest(1));
  site.need(absent, bundle_digest(1));
  REQUIRE(site.fetch(blob) == "");
  auto source = agent::images::StoreBlobSource::open(site.dir.path());
  REQUIRE(source);
  auto found = (*source)->find(blob.listing.digest());
  REQUIRE(found);
  REQUIRE(*found);
  CHECK((*found)->size == blob.listing.size());
  CHECK((*found)->media_type == blob.listing.media_type());
  auto missing = (*source)->find(absent.listing.digest());
  REQUIRE(missing);
  CHECK_FALSE(*missing);
}
