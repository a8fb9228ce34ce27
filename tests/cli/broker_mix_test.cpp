// A broker list that mixes TLS and plain URLs is a downgrade: Paho takes the first that
// answers, so whoever blocks the TLS port gets the connection, password included, in clear.
#include <catch2/catch.hpp>

#include "tests/cli/cli_fixture.hpp"

using namespace sovdev::testing;

TEST_CASE("the agent's config check refuses broker URLs that mix ssl:// and tcp://",
          "[cli][hygiene]") {
  TempDir dir;
  write_text(dir / "trust.root", "root");
  write_text(dir / "agent.toml",
             "agent_id = \"edge-01\"\nchannels = [\"edge\"]\ntrust_root = \"trust.root\"\n"
             "[broker]\nurls = [\"ssl://hub.example:8883\", \"tcp://hub.example:1883\"]\n"
             "[apply]\ndir = \"manifests\"\n");
  auto r = run({agent_binary(), "check-config", dir / "agent.toml"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 4);
  CHECK_THAT(r.err, Catch::Contains("agent.toml:5"));
  CHECK_THAT(r.err, Catch::Contains("mixes ssl:// and tcp://"));
}

TEST_CASE("the hub refuses --broker lists that mix ssl:// and tcp://", "[cli][hygiene]") {
  Workspace ws;
  auto r =
      run({hub_binary(), "serve", "--db", ws.dir / "hub.db", "--key", ws.online_key(), "--trust",
           ws.trust, "--broker", "ssl://127.0.0.1:1", "--broker", "tcp://127.0.0.1:1"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 4);
  CHECK_THAT(r.err, Catch::Contains("mix TLS (ssl://) and plain (tcp://)"));
}
