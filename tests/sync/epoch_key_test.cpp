// Epoch keys delivered by `sovdev-hub serve` to the agents they are sealed to (#20 item 4): the
// real broker with the repo's ACLs, a serve process with no secret-store key anywhere, agents
// with keys made by `sovdev-agent keygen`, and a bundle whose signed manifest names sealed
// secrets of channel edge.
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>

#include "bundles/bundle_file.hpp"
#include "bundles/payload.hpp"
#include "bundles/sealed_record.hpp"
#include "bundles/sign_objects.hpp"
#include "hub/key_files.hpp"
#include "hub/secrets/fleet_keys.hpp"
#include "platform/store/agent_cache.hpp"
#include "platform/store/epoch_keys.hpp"
#include "tests/sync/sync_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

// hub.db as `sovdev-hub` made it.
store::Database open_hub_db(const std::string& path) {
  store::OpenOptions options;
  options.create = false;
  auto db = store::Database::open(path, options);
  REQUIRE(db);
  return std::move(*db);
}

struct SecretsFleet {
  Fleet fleet;
  std::string store_key = fleet.ws.dir / "store.key";
  uint64_t epoch = 0;
  std::string key_id;  // of channel edge's current epoch key
  seal::SecretBytes epoch_key;

  SecretsFleet() {
    for (const char* agent : {"agent-a", "agent-b"}) {
      fleet.agent_config(agent, 8);
      auto made = run({agent_binary(), "keygen", "--state", fleet.agent_state(agent)});
      INFO(made.err);
      REQUIRE(made.exit_code == 0);
    }
    REQUIRE(run({hub_binary(), "secret", "init", "--store-key", store_key}).exit_code == 0);
    // Only agent-a is enrolled: it gets epoch 1 of channel edge.
    auto added =
        run({hub_binary(), "agents", "add", "agent-a", "--db", fleet.hub_db, "--store-key",
             store_key, "--pub", fleet.agent_state("agent-a") + "/agent.pub", "--channel", "edge"});
    INFO(added.err);
    REQUIRE(added.exit_code == 0);
    {
      store::Database db = open_hub_db(fleet.hub_db);
      auto key = hub::secrets::load_store_key(store_key);
      REQUIRE(key);
      hub::secrets::FleetKeys keys(db, *key);
      auto current = keys.current("edge");
      REQUIRE(current);
      REQUIRE(current->has_value());
      epoch = (*current)->epoch;
      key_id = (*current)->key_id;
      epoch_key = seal::SecretBytes::copy_of((*current)->key.view());
    }
    // The serving hub never has it: it relays sealed boxes only.
    std::filesystem::remove(store_key);
  }

  // A bundle of three ConfigMaps and a Secret sealed under channel edge's epoch key (as the
  // manifest names it), signed with the targets key like `build` signs; published into hub.db.
  // Returns the file.
  std::string publish_secret_bundle(uint64_t version, const std::string& named_key_id,
                                    uint64_t named_epoch = 0) const {
    PayloadWriter::Options options;
    std::string payload;
    auto writer = PayloadWriter::create(options, [&](std::string_view b) -> Status {
      payload.append(b);
      return {};
    });
    REQUIRE(writer);
    for (int i = 0; i < 3; i++) {
      pb::ResourceRecord r;
      r.set_api_version("v1");
      r.set_kind("ConfigMap");
      r.set_namespace_("default");
      r.set_name("cm-" + std::to_string(i));
      r.set_json("{\"data\":{\"x\":\"" + std::to_string(i) + "\"}}");
      REQUIRE(writer->add(r));
    }
    const uint64_t manifest_epoch = named_epoch != 0 ? named_epoch : epoch;
    pb::ResourceRecord secret;
    secret.set_api_version("v1");
    secret.set_kind("Secret");
    secret.set_namespace_("default");
    secret.set_name("db");
    secret.set_json(R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"db",)"
                    R"("namespace":"default"},"data":{"password":""}})");
    std::map<std::string, seal::SecretBytes> values;
    values.emplace("password", seal::SecretBytes::copy_of("hunter2-epoch"));
    sealed::seal_record(secret, sealed::data_object(values), epoch_key,
                        {"kp", version, "edge", manifest_epoch});
    REQUIRE(writer->add(secret));
    auto summary = writer->finish();
    REQUIRE(summary);
    BundleInfo info{"kp", "edge", version, {"amd64", "arm64"}, "", "", 0};
    pb::BundleManifest m = make_manifest(info, *summary, options);
    m.set_secrets_channel("edge");
    m.set_secrets_epoch(manifest_epoch);
    m.set_secrets_key_id(named_key_id);
    m.set_sealed_objects(1);
    auto targets = hub::load_secret_key(fleet.ws.key("pub1"));
    REQUIRE(targets);
    auto signed_manifest = sign_manifest(m, {*targets});
    const std::string file = fleet.ws.dir / ("secret-v" + std::to_string(version) + ".sdb");
    write_text(file, encode_bundle_header(static_cast<uint32_t>(signed_manifest.envelope.size())) +
                         signed_manifest.envelope + payload);
    auto published = fleet.publish(file);
    INFO(published.err);
    REQUIRE(published.exit_code == 0);
    return file;
  }

  // The sealed key agent.db holds for channel edge's epoch, if any.
  std::optional<std::string> cached(const std::string& agent) const {
    auto db = store::open_agent_database(fleet.agent_state(agent) + "/agent.db");
    REQUIRE(db);
    store::EpochKeyCache cache(*db);
    auto found = cache.find("edge", epoch);
    REQUIRE(found);
    return *found;
  }

  std::string grant(const std::string& agent) const {
    store::Database db = open_hub_db(fleet.hub_db);
    const hub::secrets::StoreKey none;
    hub::secrets::FleetKeys keys(db, none);
    auto sealed = keys.grant("edge", epoch, agent);
    REQUIRE(sealed);
    REQUIRE(sealed->has_value());
    return **sealed;
  }
};

}  // namespace

TEST_CASE(
    "an enrolled agent caches its sealed epoch key after the fetch, from a hub without the "
    "store key",
    "[sync][secrets]") {
  SecretsFleet s;
  s.publish_secret_bundle(1, s.key_id);
  REQUIRE_FALSE(std::filesystem::exists(s.store_key));
  auto hub = s.fleet.serve("serve.log");
  auto synced = s.fleet.sync_once("agent-a", 60);
  INFO(synced.out << synced.err << read_text(s.fleet.ws.dir / "serve.log"));
  REQUIRE(synced.exit_code == 0);
  CHECK_THAT(synced.out, Catch::Contains("kp v1"));
  auto held = s.cached("agent-a");
  REQUIRE(held);
  // Kept as received: sealed to agent-a, exactly the grant hub.db holds.
  CHECK(*held == s.grant("agent-a"));
  CHECK(held->size() == 80);
}

TEST_CASE(
    "an agent with no grant is told which hub command grants it, and its fetch still ends "
    "done",
    "[sync][secrets]") {
  SecretsFleet s;
  s.publish_secret_bundle(1, s.key_id);
  auto hub = s.fleet.serve("serve.log");
  auto synced = s.fleet.sync_once("agent-b", 60);
  INFO(synced.out << synced.err << read_text(s.fleet.ws.dir / "serve.log"));
  // The payload is whole, the fetch done; the version waits for its key, nothing of it applied,
  // and `sync --once` stops at the hub's refusal (denied) instead of asking until its timeout.
  REQUIRE(synced.exit_code == 14);
  CHECK_THAT(synced.out, !Catch::Contains("kp v1"));
  CHECK_THAT(synced.err, Catch::Contains("cannot open the sealed secrets of kp@1"));
  CHECK_THAT(
      synced.err,
      Catch::Contains("agent agent-b has no key for channel edge epoch " + std::to_string(s.epoch) +
                      ": run sovdev-hub agents add agent-b --pub agent.pub --channel edge"));
  CHECK_FALSE(s.cached("agent-b"));
}

TEST_CASE("an enrolled agent asking for an epoch it holds no grant for is told to rotate its key",
          "[sync][secrets]") {
  SecretsFleet s;
  s.publish_secret_bundle(1, s.key_id, s.epoch + 1);
  auto hub = s.fleet.serve("serve.log");
  auto synced = s.fleet.sync_once("agent-a", 60);
  INFO(synced.out << synced.err << read_text(s.fleet.ws.dir / "serve.log"));
  REQUIRE(synced.exit_code == 14);
  CHECK_THAT(synced.err, Catch::Contains("agent agent-a has no key for channel edge epoch " +
                                         std::to_string(s.epoch + 1) +
                                         ": run sovdev-hub agents rotate agent-a --pub agent.pub"));
}

TEST_CASE("a grant that opens but is another key than the manifest names is ignored, not cached",
          "[sync][secrets]") {
  SecretsFleet s;
  // The manifest names a key id the hub's grant (the real epoch key) does not have: what a
  // taken hub sealing a key of its own to the agent looks like.
  s.publish_secret_bundle(1, std::string(32, '\x5a'));
  auto hub = s.fleet.serve("serve.log");
  auto synced = s.fleet.sync_once("agent-a", 60);
  INFO(synced.out << synced.err << read_text(s.fleet.ws.dir / "serve.log"));
  // No usable answer: the hub did not answer, as far as the agent can tell.
  REQUIRE(synced.exit_code == 13);
  CHECK_THAT(synced.out, !Catch::Contains("kp v1"));
  CHECK_THAT(synced.err, Catch::Contains("another key than the bundle names"));
  CHECK_THAT(synced.err, Catch::Contains("no usable answer from the hub"));
  CHECK_FALSE(s.cached("agent-a"));
}

TEST_CASE(
    "a bundle the cache holds verified (imported by hand) still gets its epoch key at the "
    "next sync, without its payload fetched again",
    "[sync][secrets]") {
  SecretsFleet s;
  const std::string file = s.publish_secret_bundle(1, s.key_id);
  // What the daemon's retry does when an apply finds the key missing: a fetch of a bundle
  // already whole in the cache.
  auto imported =
      run({agent_binary(), "import", "--config", s.fleet.ws.dir / "agent-agent-a.toml", file});
  INFO(imported.err);
  REQUIRE(imported.exit_code == 0);
  REQUIRE_FALSE(s.cached("agent-a"));
  auto hub = s.fleet.serve("serve.log");
  WireCounter chunks(s.fleet, "sovdev/v1/blob/#");
  auto synced = s.fleet.sync_once("agent-a", 60);
  INFO(synced.out << synced.err << read_text(s.fleet.ws.dir / "serve.log"));
  REQUIRE(synced.exit_code == 0);
  auto held = s.cached("agent-a");
  REQUIRE(held);
  CHECK(*held == s.grant("agent-a"));
  CHECK(chunks.bytes() == 0);
}
