// Role separation over the real wire: the serving hub holds only the online key, so whoever
// takes it can sign catalogs and delta manifests but never get content installed; and each of
// the online and targets keys rotates with the root key alone.
#include <catch2/catch.hpp>

#include <filesystem>

#include "bundles/bundle_file.hpp"
#include "bundles/trust.hpp"
#include "hub/key_files.hpp"
#include "tests/sync/sync_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

// v1 built with the targets key, published, and synced by agent-a through a serving hub.
struct SyncedFleet {
  Fleet fleet;
  std::unique_ptr<Child> hub;

  SyncedFleet() {
    REQUIRE(fleet.ws.build(edge_stack("v1"), fleet.ws.dir / "v1.sdb", 1).exit_code == 0);
    REQUIRE(fleet.publish(fleet.ws.dir / "v1.sdb").exit_code == 0);
    hub = fleet.serve("hub.log");
    fleet.agent_config("agent-a");
    auto synced = fleet.sync_once("agent-a");
    INFO(synced.out << synced.err);
    REQUIRE(synced.exit_code == 0);
    REQUIRE(applied() == v1_objects());
  }

  std::multiset<std::string> applied() const { return applied_objects(fleet.agent_dir("agent-a")); }
  std::multiset<std::string> v1_objects() const {
    return bundle_objects(fleet.ws.dir / "v1.sdb", fleet.ws.trust);
  }
  std::string agent_status() const {
    return run({agent_binary(), "status", "--state", fleet.agent_state("agent-a"), "--json"}).out;
  }

  // What a taken hub can do: store any bundle file in its own database without the trust
  // check, sign a catalog naming it with the online key it holds, and serve it.
  void publish_as_taken_hub(const std::string& file) {
    hub.reset();
    // Retained on the broker before the agent looks, so it cannot see the old catalog instead.
    auto stored = run({hub_binary(), "publish", file, "--db", fleet.hub_db, "--key",
                       fleet.ws.online_key(), "--broker", fleet.broker->url(), "--username",
                       "sovdev-hub", "--password-file", fleet.password_file("sovdev-hub")});
    INFO(stored.err);
    REQUIRE(stored.exit_code == 0);
    hub = fleet.serve("hub-taken.log");
  }

  // The agent's refusal, from its own output and its log of the attempt.
  std::string refused_sync() const {
    auto r = fleet.sync_once("agent-a", 20);
    return r.out + r.err;
  }
};

SecretKey load_key(const std::string& path) {
  auto key = hub::load_secret_key(path);
  REQUIRE(key);
  return *key;
}

// Writes the next trust root over the file the agent's config names (the agent rotates to it at
// its next start) and `new_key` over the key file `replaced` (what the operator hands the hub or
// the build machine). Signed by the root key alone.
void rotate(const Fleet& fleet, const std::string& role_flag, const std::string& replaced) {
  const std::string next = fleet.ws.dir / "keys/next";
  REQUIRE(run({hub_binary(), "keygen", "--out", next, "--name", "next"}).exit_code == 0);
  std::vector<std::string> argv = {hub_binary(),
                                   "trust",
                                   "rotate",
                                   "--current",
                                   fleet.ws.trust,
                                   "--root",
                                   fleet.ws.dir / "keys/root1.pub",
                                   "--sign",
                                   fleet.ws.key("root1"),
                                   "--out",
                                   fleet.ws.dir / "v2.root"};
  for (const std::string flag : {"--targets", "--online"}) {
    const std::string kept = flag == "--targets" ? "keys/pub1.pub" : "keys/online1.pub";
    argv.insert(argv.end(), {flag, flag == role_flag ? next + "/next.pub" : fleet.ws.dir / kept});
  }
  auto rotated = run(argv);
  INFO(rotated.out << rotated.err);
  REQUIRE(rotated.exit_code == 0);
  std::filesystem::copy_file(fleet.ws.dir / "v2.root", fleet.ws.trust,
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(next + "/next.key", replaced,
                             std::filesystem::copy_options::overwrite_existing);
}

}  // namespace

TEST_CASE("a hub holding only the online key cannot get a bundle it signed installed",
          "[sync][roles]") {
  SyncedFleet s;
  // The taken hub signs a v2 manifest with its online key: agents must refuse it.
  RawBundle forged = make_raw_bundle(load_key(s.fleet.ws.online_key()), 2, 3, 10);
  write_text(s.fleet.ws.dir / "forged.sdb", forged.bytes());

  // An honest publish checks the bundle against the trust root and refuses it first.
  auto honest = s.fleet.publish(s.fleet.ws.dir / "forged.sdb");
  CHECK(honest.exit_code != 0);
  CHECK_THAT(honest.err, Catch::Contains("targets keys") && Catch::Contains("is an online key"));

  s.publish_as_taken_hub(s.fleet.ws.dir / "forged.sdb");
  const std::string out = s.refused_sync();
  INFO(out << read_text(s.fleet.ws.dir / "hub-taken.log"));
  CHECK_THAT(out, Catch::Contains("bundle manifest: signature threshold not met: 0 of 1 required "
                                  "valid signature(s) by targets keys"));
  CHECK_THAT(out, Catch::Contains("is an online key, and a bundle manifest counts only targets "
                                  "keys"));
  // Nothing of it was applied or kept: v1 still runs.
  CHECK(s.applied() == s.v1_objects());
  CHECK_THAT(s.agent_status(), !Catch::Contains("\"version\": 2"));
}

TEST_CASE(
    "a catalog the online key signed, naming a manifest no targets key signed, installs "
    "nothing",
    "[sync][roles]") {
  SyncedFleet s;
  // A manifest with no signature at all: the catalog's online signature is all it has.
  RawBundle unsigned_bundle = make_raw_bundle(load_key(s.fleet.ws.online_key()), 2, 3, 10);
  {
    const std::string& header = unsigned_bundle.header_and_manifest;
    pb::Signed envelope;
    REQUIRE(envelope.ParseFromString(header.substr(kBundleHeaderSize)));
    envelope.clear_signatures();
    const std::string body = envelope.SerializeAsString();
    unsigned_bundle.header_and_manifest =
        encode_bundle_header(static_cast<uint32_t>(body.size())) + body;
  }
  write_text(s.fleet.ws.dir / "unsigned.sdb", unsigned_bundle.bytes());

  s.publish_as_taken_hub(s.fleet.ws.dir / "unsigned.sdb");
  const std::string out = s.refused_sync();
  INFO(out);
  CHECK_THAT(out, Catch::Contains("bundle manifest has no signatures (1 of the targets keys "
                                  "must sign it)"));
  CHECK(s.applied() == s.v1_objects());
  CHECK_THAT(s.agent_status(), !Catch::Contains("\"version\": 2"));
}

TEST_CASE("rotating the online key needs only the root key and keeps bundles valid",
          "[sync][roles]") {
  SyncedFleet s;
  // Built before the rotation, by the targets key that stays.
  REQUIRE(s.fleet.ws.build(edge_stack("v2"), s.fleet.ws.dir / "v2.sdb", 2).exit_code == 0);
  const std::string old_online = s.fleet.ws.dir / "keys/online-old.key";
  std::filesystem::copy_file(s.fleet.ws.online_key(), old_online);
  rotate(s.fleet, "--online", s.fleet.ws.online_key());

  // The old online key is refused by serve before it signs anything.
  auto stale = run({hub_binary(), "serve", "--db", s.fleet.hub_db, "--key", old_online, "--trust",
                    s.fleet.ws.trust, "--broker", "tcp://127.0.0.1:1"});
  CHECK(stale.exit_code != 0);
  CHECK_THAT(stale.err, Catch::Contains("is not an online key of trust root v2"));

  s.hub.reset();
  REQUIRE(s.fleet.publish_live(s.fleet.ws.dir / "v2.sdb").exit_code == 0);
  s.hub = s.fleet.serve("hub-v2.log");
  auto synced = s.fleet.sync_once("agent-a");
  INFO(synced.out << synced.err);
  REQUIRE(synced.exit_code == 0);
  CHECK(s.applied() == bundle_objects(s.fleet.ws.dir / "v2.sdb", s.fleet.ws.trust));
  CHECK_THAT(s.agent_status(), Catch::Contains("\"trust_root_version\": 2"));
}

TEST_CASE("rotating the targets key: bundles by the new key install, by the old key not",
          "[sync][roles]") {
  SyncedFleet s;
  const std::string old_targets = s.fleet.ws.dir / "keys/pub-old.key";
  std::filesystem::copy_file(s.fleet.ws.key("pub1"), old_targets);
  rotate(s.fleet, "--targets", s.fleet.ws.key("pub1"));

  // The old targets key can no longer sign a bundle the agents take.
  RawBundle stale = make_raw_bundle(load_key(old_targets), 3, 3, 10);
  write_text(s.fleet.ws.dir / "stale.sdb", stale.bytes());
  auto refused = s.fleet.publish(s.fleet.ws.dir / "stale.sdb");
  CHECK(refused.exit_code != 0);
  CHECK_THAT(refused.err, Catch::Contains("by targets keys"));

  REQUIRE(s.fleet.ws.build(edge_stack("v2"), s.fleet.ws.dir / "v2.sdb", 2).exit_code == 0);
  s.hub.reset();
  REQUIRE(s.fleet.publish_live(s.fleet.ws.dir / "v2.sdb").exit_code == 0);
  s.hub = s.fleet.serve("hub-v2.log");
  auto synced = s.fleet.sync_once("agent-a");
  INFO(synced.out << synced.err);
  REQUIRE(synced.exit_code == 0);
  CHECK(s.applied() == bundle_objects(s.fleet.ws.dir / "v2.sdb", s.fleet.ws.trust));
}
