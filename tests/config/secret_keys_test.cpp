// agent/secret_keys: the agent's X25519 key beside its state, and the epoch keys it was sent.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "agent/secret_keys.hpp"
#include "bundles/seal.hpp"
#include "platform/fs/files.hpp"
#include "platform/store/agent_cache.hpp"
#include "platform/store/epoch_keys.hpp"
#include "tests/support/process.hpp"

using namespace sovdev;

namespace {

pb::BundleManifest manifest_for(const std::string& channel, uint64_t epoch,
                                const seal::SecretBytes& key) {
  pb::BundleManifest m;
  m.set_stack("sovdev");
  m.set_version(4);
  m.set_secrets_channel(channel);
  m.set_secrets_epoch(epoch);
  m.set_secrets_key_id(seal::epoch_key_id(channel, epoch, key));
  return m;
}

}  // namespace

TEST_CASE("an agent key is found beside the state, and refused when others may read it",
          "[secret_keys]") {
  testing::TempDir dir;
  auto none = agent::load_agent_key(dir.path());
  REQUIRE(none);
  CHECK_FALSE(none->has_value());

  const seal::AgentKey key = seal::generate_agent_key("edge-1");
  REQUIRE(fs::write_file_exclusive(agent::agent_key_path(dir.path()),
                                   seal::encode_agent_secret(key), 0600));
  auto loaded = agent::load_agent_key(dir.path());
  REQUIRE(loaded);
  REQUIRE(loaded->has_value());
  CHECK((*loaded)->public_key == key.public_key);

  // A link planted where the key should be is refused, even to a well-kept key file.
  const std::string real = dir / "elsewhere.key";
  std::filesystem::rename(agent::agent_key_path(dir.path()), real);
  std::filesystem::create_symlink(real, agent::agent_key_path(dir.path()));
  auto linked = agent::load_agent_key(dir.path());
  REQUIRE_FALSE(linked);
  CHECK(linked.error().code == Errc::denied);
  CHECK_THAT(linked.error().message, Catch::Contains("symbolic link"));
  std::filesystem::remove(agent::agent_key_path(dir.path()));
  std::filesystem::rename(real, agent::agent_key_path(dir.path()));

  ::chmod(agent::agent_key_path(dir.path()).c_str(), 0640);
  auto open = agent::load_agent_key(dir.path());
  REQUIRE_FALSE(open);
  CHECK(open.error().code == Errc::denied);
  CHECK_THAT(open.error().message, Catch::Contains("chmod 600"));
}

TEST_CASE("an epoch key opens only when it was sealed to this agent and is the one named",
          "[secret_keys]") {
  auto db = store::open_agent_database(":memory:");
  REQUIRE(db);
  const seal::AgentKey self = seal::generate_agent_key("edge-1");
  const seal::AgentKey other = seal::generate_agent_key("edge-2");
  const seal::SecretBytes key = seal::random_key();
  const pb::BundleManifest m = manifest_for("edge", 3, key);
  store::EpochKeyCache cache(*db);

  auto missing = agent::open_epoch_key(*db, &self, "edge-1", m);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == Errc::not_found);

  auto no_key = agent::open_epoch_key(*db, nullptr, "edge-1", m);
  REQUIRE_FALSE(no_key);
  CHECK(no_key.error().code == Errc::denied);
  CHECK_THAT(no_key.error().message,
             Catch::Contains("sovdev-hub agents add edge-1 --pub agent.pub --channel edge"));

  REQUIRE(cache.put("edge", 3, seal::seal_to(self.public_key, key), 1));
  auto opened = agent::open_epoch_key(*db, &self, "edge-1", m);
  REQUIRE(opened);
  CHECK(opened->view() == key.view());

  // Sealed to another key (this agent's key was replaced since): refused but kept, so putting
  // the old agent.key back opens it again; the fetch asks for one sealed to the new key.
  REQUIRE(cache.put("edge", 3, seal::seal_to(other.public_key, key), 2));
  auto foreign = agent::open_epoch_key(*db, &self, "edge-1", m);
  REQUIRE_FALSE(foreign);
  CHECK(foreign.error().code == Errc::signature);
  CHECK_THAT(foreign.error().message, Catch::Contains("agents rotate edge-1"));
  CHECK(cache.find("edge", 3)->has_value());
  auto with_old_key = agent::open_epoch_key(*db, &other, "edge-2", m);
  REQUIRE(with_old_key);
  CHECK(with_old_key->view() == key.view());

  // A key sealed to this agent by anyone (a taken hub), but not the one the manifest names.
  REQUIRE(cache.put("edge", 3, seal::seal_to(self.public_key, seal::random_key()), 3));
  auto forged = agent::open_epoch_key(*db, &self, "edge-1", m);
  REQUIRE_FALSE(forged);
  CHECK(forged.error().code == Errc::signature);
  CHECK_THAT(forged.error().message, Catch::Contains("another key than the bundle names"));
  CHECK_FALSE(cache.find("edge", 3)->has_value());

  // Another epoch's key, even this agent's own, is not this epoch's.
  REQUIRE(cache.put("edge", 3, seal::seal_to(self.public_key, seal::random_key()), 4));
  CHECK_FALSE(agent::open_epoch_key(*db, &self, "edge-1", manifest_for("edge", 4, key)));

  CHECK_FALSE(cache.put("edge", 5, "short", 5));
  CHECK_FALSE(cache.put("edge", 0, std::string(80, 'x'), 5));
}
