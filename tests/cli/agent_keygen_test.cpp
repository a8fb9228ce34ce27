// sovdev-agent keygen: the agent's X25519 identity for sealed secrets, as an operator (or the
// package's postinst) makes it.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "agent/secret_keys.hpp"
#include "bundles/seal.hpp"
#include "tests/support/inputs.hpp"
#include "tests/support/process.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

unsigned keygen_mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<unsigned>(st.st_mode & 07777);
}

}  // namespace

TEST_CASE("agent keygen writes agent.key 0600 and agent.pub 0644 in a new 0700 state folder",
          "[cli][keygen]") {
  TempDir dir;
  const std::string state = dir / "state";
  auto made = run({agent_binary(), "keygen", "--state", state});
  INFO(made.err);
  REQUIRE(made.exit_code == 0);
  CHECK(keygen_mode_of(state) == 0700);
  CHECK(keygen_mode_of(state + "/agent.key") == 0600);
  CHECK(keygen_mode_of(state + "/agent.pub") == 0644);
  // What it prints is the public file, which the hub enrols; the secret half opens what is
  // sealed to it.
  CHECK(made.out == read_text(state + "/agent.pub"));
  auto pub = seal::parse_agent_public(made.out);
  REQUIRE(pub);
  auto key = agent::load_agent_key(state);
  REQUIRE(key);
  REQUIRE(key->has_value());
  CHECK((*key)->public_key == pub->public_key);
  auto epoch = seal::random_key();
  auto opened = seal::open_sealed(seal::seal_to(pub->public_key, epoch), **key);
  REQUIRE(opened);
  CHECK(opened->view() == epoch.view());
}

TEST_CASE("agent keygen names the key after the config's agent id", "[cli][keygen]") {
  TempDir dir;
  const std::string config = dir / "agent.toml";
  write_text(dir / "trust.root", "root");
  write_text(config, "agent_id = \"edge-07\"\nchannels = [\"edge\"]\nstate_dir = \"" +
                         (dir / "state") + "\"\ntrust_root = \"" + (dir / "trust.root") +
                         "\"\n[broker]\nurls = [\"tcp://127.0.0.1:1\"]\n");
  auto made = run({agent_binary(), "keygen", "--config", config});
  INFO(made.err);
  REQUIRE(made.exit_code == 0);
  auto pub = seal::parse_agent_public(read_text(dir / "state/agent.pub"));
  REQUIRE(pub);
  CHECK(pub->name == "edge-07");
}

TEST_CASE("agent keygen refuses to replace a key unless --force, and says what replacing means",
          "[cli][keygen]") {
  TempDir dir;
  const std::string state = dir / "state";
  REQUIRE(run({agent_binary(), "keygen", "--state", state}).exit_code == 0);
  const std::string first = read_text(state + "/agent.key");

  auto again = run({agent_binary(), "keygen", "--state", state});
  CHECK(again.exit_code != 0);
  CHECK(again.out.empty());
  CHECK_THAT(again.err, Catch::Contains("--force") && Catch::Contains("agents rotate"));
  CHECK(read_text(state + "/agent.key") == first);

  auto forced = run({agent_binary(), "keygen", "--state", state, "--force"});
  INFO(forced.err);
  REQUIRE(forced.exit_code == 0);
  CHECK(read_text(state + "/agent.key") != first);
  CHECK(keygen_mode_of(state + "/agent.key") == 0600);
  CHECK(forced.out == read_text(state + "/agent.pub"));
  CHECK_THAT(forced.err, Catch::Contains("sovdev-hub agents rotate AGENT_ID --pub agent.pub"));
}

TEST_CASE("agent keygen --help says where the key goes; without a folder it says what it needs",
          "[cli][keygen]") {
  auto help = run({agent_binary(), "keygen", "--help"});
  CHECK(help.exit_code == 0);
  CHECK_THAT(help.out, Catch::Contains("agent.key") && Catch::Contains("--force") &&
                           Catch::Contains("--state") && Catch::Contains("agents add"));
  auto listed = run({agent_binary(), "--help"});
  CHECK_THAT(listed.out, Catch::Contains("keygen"));
  auto bare = run({agent_binary(), "keygen"});
  CHECK(bare.exit_code != 0);
  CHECK_THAT(bare.err, Catch::Contains("--config or --state"));
}

TEST_CASE("agent keygen writes agent.pub again from agent.key when a killed --force left it stale",
          "[cli][keygen]") {
  TempDir dir;
  const std::string state = dir / "state";
  REQUIRE(run({agent_binary(), "keygen", "--state", state}).exit_code == 0);
  const std::string current = read_text(state + "/agent.pub");
  // What a --force killed after writing the new key and before its public half leaves: the
  // old public key beside another secret key.
  write_text(state + "/agent.pub", seal::encode_agent_public(seal::generate_agent_key("stale")));
  auto repaired = run({agent_binary(), "keygen", "--state", state});
  INFO(repaired.err);
  REQUIRE(repaired.exit_code == 0);
  CHECK(read_text(state + "/agent.pub") == current);
  CHECK(repaired.out == current);
  CHECK_THAT(repaired.err, Catch::Contains("written again from the key"));
  // In agreement, it refuses as before.
  CHECK(run({agent_binary(), "keygen", "--state", state}).exit_code == 7);
}
