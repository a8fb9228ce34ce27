// Issue #22 end to end: `sovdev-hub build --images` from a real docker-registry, `sovdev-hub
// serve` answering blob requests, and a real `sovdev-agent` killed with SIGKILL mid-image again
// and again: it resumes from agent.db and its partial blob files, applies the version only once
// every blob of its arch is held, and pays less than 1.2x what it needed on the wire. Then the
// hand-over: `sovdev-agent images serve` (hub gone) and a real skopeo pulling the pinned image.
#include <catch2/catch.hpp>

#include <filesystem>
#include <random>

#include "bundles/hash.hpp"
#include "bundles/image_rules.hpp"
#include "common/hex.hpp"
#include "platform/fs/bundle_reader.hpp"
#include "platform/store/image_blobs.hpp"
#include "platform/store/sqlite.hpp"
#include "tests/support/registry.hpp"
#include "tests/sync/sync_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

// One query on the agent's database while the agent may be writing it (WAL: readers never
// wait for the writer). -1 when it cannot be read yet.
int64_t agent_count(const std::string& state, const std::string& sql) {
  store::OpenOptions options;
  options.create = false;
  options.read_only = true;
  auto db = store::Database::open(state + "/agent.db", options);
  if (!db) return -1;
  auto select = db->prepare(sql);
  if (!select) return -1;
  auto row = select->step();
  if (!row || !*row) return -1;
  return select->int64(0);
}

pb::BundleManifest manifest_in(const std::string& file) {
  auto reader = fs::BundleFileReader::open(file);
  REQUIRE(reader);
  pb::Signed envelope;
  REQUIRE(envelope.ParseFromString(reader->manifest_envelope()));
  pb::BundleManifest m;
  REQUIRE(m.ParseFromString(envelope.body()));
  return m;
}

std::string sha256_text(const std::string& raw) {
  return "sha256:" + to_hex(raw);
}

}  // namespace

TEST_CASE(
    "an agent killed with SIGKILL mid-image 20 times resumes from its blob store and applies the "
    "version once its images are held",
    "[images][crash]") {
  Fleet fleet;
  const std::string layout = fleet.ws.dir / "layout";
  make_layout(layout);
  make_image(layout, "v1-amd64", "amd64", {{{"usr/lib/big.bin", noise_bytes(64 << 20, 1)}}});
  make_image(layout, "v1-arm64", "arm64", {{{"usr/lib/arm.bin", noise_bytes(4096, 2)}}});
  make_index(layout, "v1", {"v1-amd64", "v1-arm64"});
  auto registry = Registry::start();
  push_image(layout, "v1", *registry, "test/app:v1");
  const std::string image = registry->host() + "/test/app:v1";
  write_manifest(fleet.ws.dir / "src/app.yaml",
                 "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app, namespace: demo}\n"
                 "spec:\n  selector: {matchLabels: {app: app}}\n  template:\n"
                 "    metadata: {labels: {app: app}}\n    spec:\n"
                 "      containers: [{name: app, image: \"" +
                     image + "\"}]\n");
  const std::string file = fleet.ws.dir / "app.sdb";
  auto built = fleet.ws.build(fleet.ws.dir / "src", file, 1,
                              {"--images", "--db", fleet.hub_db, "--image-source",
                               registry->host() + "/=" + registry->url(), "--image-level", "1"});
  INFO(built.out << built.err);
  REQUIRE(built.exit_code == 0);
  REQUIRE(fleet.publish(file).exit_code == 0);
  auto hub = fleet.serve("hub.log");
  fleet.agent_config("agent-a", 4, "arch = \"amd64\"\n");
  const std::string state = fleet.agent_state("agent-a");

  WireCounter wire(fleet, "sovdev/v1/agent/agent-a/data");
  WireCounter blob(fleet, "sovdev/v1/blob/+");
  std::mt19937 rng(std::random_device{}());
  int64_t last = 0;
  int kills = 0;
  for (int i = 0; i < 20; i++) {
    auto agent = fleet.run_agent("agent-a", "agent-a-" + std::to_string(i) + ".log");
    // Killed once its image chunks passed what the run before left, by a random step: mid-blob
    // by construction, wherever that falls.
    const int64_t until = last + static_cast<int64_t>(rng() % 12) + 4;
    const bool reached = wait_until(
        [&] {
          return agent_count(state, "SELECT count(*) FROM image_chunks") >= until ||
                 !agent->running();
        },
        std::chrono::seconds(120));
    INFO(read_text(fleet.ws.dir / ("agent-a-" + std::to_string(i) + ".log")));
    REQUIRE(reached);
    REQUIRE(agent->running());
    agent->kill_hard();
    agent->wait();
    kills++;
    last = std::max<int64_t>(0, agent_count(state, "SELECT count(*) FROM image_chunks"));
  }
  CHECK(kills == 20);
  // Nothing was applied while the images were not all held.
  CHECK(applied_objects(fleet.agent_dir("agent-a")).empty());
  auto finished = fleet.sync_once("agent-a");
  INFO(finished.out << finished.err);
  REQUIRE(finished.exit_code == 0);
  CHECK(applied_objects(fleet.agent_dir("agent-a")) == bundle_objects(file, fleet.ws.trust));
  const int64_t blobs = agent_count(state, "SELECT count(*) FROM image_blobs");
  CHECK(blobs == 4);  // the index, and the amd64 manifest, config and layer
  CHECK(agent_count(state, "SELECT count(*) FROM image_blobs WHERE state != 'verified'") == 0);
  const int64_t needed = agent_count(state, "SELECT sum(wire_size) FROM image_blobs") +
                         static_cast<int64_t>(std::filesystem::file_size(file));
  const uint64_t fetched = wire.bytes() + blob.bytes();
  WARN("20 kills mid-image: " << fetched << " bytes fetched for " << needed << " needed ("
                              << (100 * fetched / static_cast<uint64_t>(needed)) << " %)");
  CHECK(fetched < static_cast<uint64_t>(needed) * 12 / 10);
}

TEST_CASE(
    "with the hub gone, skopeo pulls the bundle's pinned image from the agent's registry with "
    "every digest the bundle names, and nothing the agent does not hold",
    "[images][skopeo]") {
  Fleet fleet;
  const std::string layout = fleet.ws.dir / "layout";
  make_layout(layout);
  make_image(layout, "v1-amd64", "amd64",
             {{{"usr/lib/base.bin", noise_bytes(300 << 10, 3)}}, {{"etc/app.conf", "v = 1\n"}}});
  make_image(layout, "v1-arm64", "arm64", {{{"usr/lib/arm.bin", noise_bytes(4096, 4)}}});
  make_index(layout, "v1", {"v1-amd64", "v1-arm64"});
  auto registry = Registry::start();
  push_image(layout, "v1", *registry, "test/app:v1");
  write_manifest(fleet.ws.dir / "src/app.yaml",
                 "apiVersion: v1\nkind: Pod\nmetadata: {name: app, namespace: demo}\n"
                 "spec:\n  containers: [{name: app, image: \"" +
                     registry->host() + "/test/app:v1\"}]\n");
  const std::string file = fleet.ws.dir / "app.sdb";
  auto built = fleet.ws.build(fleet.ws.dir / "src", file, 1,
                              {"--images", "--db", fleet.hub_db, "--image-source",
                               registry->host() + "/=" + registry->url(), "--image-level", "3"});
  INFO(built.out << built.err);
  REQUIRE(built.exit_code == 0);
  REQUIRE(fleet.publish(file).exit_code == 0);
  const pb::BundleManifest m = manifest_in(file);
  REQUIRE(m.images_size() == 1);
  {
    auto hub = fleet.serve("hub.log");
    fleet.agent_config("agent-a", 4, "arch = \"amd64\"\n");
    auto synced = fleet.sync_once("agent-a");
    INFO(synced.out << synced.err);
    REQUIRE(synced.exit_code == 0);
  }
  // The hub has stopped, and the source registry goes too: what follows needs only the
  // agent's state folder.
  registry.reset();

  const std::string state = fleet.agent_state("agent-a");
  const int port = free_port();
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  Child serve({agent_binary(), "images", "serve", "--state", state, "--listen", listen},
              fleet.ws.dir / "images-serve.log");
  const bool serving = wait_until(
      [&] {
        return run({"/usr/bin/curl", "-sf", "http://" + listen + "/v2/"}).exit_code == 0;
      },
      std::chrono::seconds(20));
  INFO(read_text(fleet.ws.dir / "images-serve.log"));
  REQUIRE(serving);

  // The pinned reference, its registry replaced by the agent's: as containerd's mirror asks.
  const std::string pinned = m.images(0).pinned();
  const std::string repository =
      pinned.substr(pinned.find('/'), pinned.find('@') - pinned.find('/'));
  const std::string ref =
      "docker://" + listen + repository + "@" + sha256_text(m.images(0).index_digest());
  write_text(fleet.ws.dir / "policy.json", R"({"default":[{"type":"insecureAcceptAnything"}]})");
  const RunResult copied = run({"/usr/bin/skopeo", "--policy", fleet.ws.dir / "policy.json",
                                "--override-arch", "amd64", "copy", "--preserve-digests",
                                "--src-tls-verify=false", ref, "oci:" + fleet.ws.dir / "pulled"});
  INFO(copied.out << copied.err << read_text(fleet.ws.dir / "images-serve.log"));
  REQUIRE(copied.exit_code == 0);
  size_t checked = 0;
  for (const pb::ImageBlob* blob : blobs_for_arch(m, "amd64")) {
    if (blob->media_type() == kMediaIndex) continue;  // skopeo keeps the arch's manifest only
    const std::string path = fleet.ws.dir / ("pulled/blobs/sha256/" + to_hex(blob->digest()));
    INFO(blob->media_type());
    REQUIRE(std::filesystem::exists(path));
    CHECK(sha256(read_text(path)) == blob->digest());
    checked++;
  }
  CHECK(checked == 2 + 2);  // manifest, config and the two layers

  // The arm64 blobs were never fetched: asking for every arch fails rather than serving them.
  const RunResult all =
      run({"/usr/bin/skopeo", "--policy", fleet.ws.dir / "policy.json", "copy", "--all",
           "--src-tls-verify=false", ref, "oci:" + fleet.ws.dir / "pulled-all"});
  CHECK(all.exit_code != 0);

  // The runtime's mirror configuration names the image's registry.
  const RunResult hosts = run({agent_binary(), "images", "hosts", "--state", state, "--out",
                               fleet.ws.dir / "certs.d", "--mirror", "http://" + listen});
  INFO(hosts.out << hosts.err);
  REQUIRE(hosts.exit_code == 0);
  const std::string registry_host = pinned.substr(0, pinned.find('/'));
  const std::string toml = read_text(fleet.ws.dir / ("certs.d/" + registry_host + "/hosts.toml"));
  CHECK(toml.find("http://" + listen) != std::string::npos);
}
