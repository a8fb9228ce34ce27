// `sovdev-hub secret`: values go in on stdin or from a file, are sealed in hub.db, and never come
// back out: not on stdout or stderr, not in a listing, not in hub.db or its WAL.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "bundles/seal.hpp"
#include "hub/secrets/values.hpp"
#include "platform/store/hub_store.hpp"
#include "tests/cli/cli_fixture.hpp"

using namespace sovdev::testing;

namespace {

RunResult shell(const std::string& line) {
  return run({"/bin/sh", "-c", line});
}

std::string q(const std::string& s) {
  return "'" + s + "'";
}

}  // namespace

TEST_CASE("secret set, generate, list and rm: the value never comes back out", "[cli][secrets]") {
  TempDir dir;
  const std::string hub = q(hub_binary()), db = q(dir / "hub.db"), key = q(dir / "store.key");
  REQUIRE(run({hub_binary(), "secret", "init", "--store-key", dir / "store.key"}).exit_code == 0);
  const std::string planted = "PLANTED-5e1b-value";

  auto set = shell("printf '%s\\n' " + q(planted) + " | " + hub + " secret set --db " + db +
                   " --store-key " + key + " --env edge postgresql password");
  INFO(set.err);
  REQUIRE(set.exit_code == 0);
  // One trailing newline (what echo adds) is dropped.
  CHECK_THAT(set.out, Catch::Contains("edge/postgresql/password (" +
                                      std::to_string(planted.size()) + " bytes"));

  write_text(dir / "value.txt", planted + "\n");
  auto from_file =
      run({hub_binary(), "secret", "set", "--db", dir / "hub.db", "--store-key", dir / "store.key",
           "--env", "edge", "postgresql", "replication", "--from-file", dir / "value.txt"});
  REQUIRE(from_file.exit_code == 0);
  CHECK_THAT(from_file.out, Catch::Contains("(" + std::to_string(planted.size() + 1) + " bytes"));

  auto generated = run({hub_binary(), "secret", "generate", "--db", dir / "hub.db", "--store-key",
                        dir / "store.key", "--env", "edge", "grafana", "admin-password", "--length",
                        "40", "--charset", "hex"});
  REQUIRE(generated.exit_code == 0);
  CHECK_THAT(generated.out, Catch::Contains("(40 bytes"));

  auto listed = run({hub_binary(), "secret", "list", "--db", dir / "hub.db", "--json"});
  REQUIRE(listed.exit_code == 0);
  CHECK_THAT(listed.out, Catch::Contains("\"admin-password\"") &&
                             Catch::Contains("\"replication\"") &&
                             Catch::Contains("\"bytes\": 40"));
  for (const auto& r : {set, from_file, generated, listed}) {
    CHECK(r.out.find(planted) == std::string::npos);
    CHECK(r.err.find(planted) == std::string::npos);
  }
  CHECK(read_database_files(dir / "hub.db").find(planted) == std::string::npos);

  auto removed =
      run({hub_binary(), "secret", "rm", "--db", dir / "hub.db", "--env", "edge", "postgresql"});
  REQUIRE(removed.exit_code == 0);
  CHECK_THAT(removed.out, Catch::Contains("removed 2 value(s)"));
  auto again =
      run({hub_binary(), "secret", "rm", "--db", dir / "hub.db", "--env", "edge", "postgresql"});
  CHECK(again.exit_code != 0);
  CHECK_THAT(again.err, Catch::Contains("no secret value edge/postgresql"));
}

TEST_CASE("secret set says what is missing: a store key, a safe key file, a valid name",
          "[cli][secrets]") {
  TempDir dir;
  const std::string hub = q(hub_binary()), db = q(dir / "hub.db");
  auto no_key = shell("echo v | env -u CREDENTIALS_DIRECTORY " + hub + " secret set --db " + db +
                      " --env edge a b");
  CHECK(no_key.exit_code == 2);
  CHECK_THAT(no_key.err, Catch::Contains("--store-key") && Catch::Contains("secret init"));

  REQUIRE(run({hub_binary(), "secret", "init", "--store-key", dir / "store.key"}).exit_code == 0);
  auto replace = run({hub_binary(), "secret", "init", "--store-key", dir / "store.key"});
  CHECK(replace.exit_code != 0);
  REQUIRE(::chmod((dir / "store.key").c_str(), 0644) == 0);
  auto open_key = shell("echo v | " + hub + " secret set --db " + db + " --store-key " +
                        q(dir / "store.key") + " --env edge a b");
  CHECK(open_key.exit_code != 0);
  CHECK_THAT(open_key.err, Catch::Contains("chmod 600"));
  REQUIRE(::chmod((dir / "store.key").c_str(), 0600) == 0);

  // Under systemd the key comes from the credentials folder.
  auto from_credentials = shell("cp " + q(dir / "store.key") + " " + q(dir / "secret-store.key") +
                                " && echo v | CREDENTIALS_DIRECTORY=" + q(dir.path()) + " " + hub +
                                " secret set --db " + db + " --env edge a b");
  INFO(from_credentials.err);
  CHECK(from_credentials.exit_code == 0);

  auto bad_name = shell("echo v | " + hub + " secret set --db " + db + " --store-key " +
                        q(dir / "store.key") + " --env edge Bad_Name b");
  CHECK(bad_name.exit_code == 2);
  CHECK_THAT(bad_name.err, Catch::Contains("Kubernetes object name"));
}

TEST_CASE("agents add, list, rotate and remove move the channel's epochs", "[cli][secrets]") {
  TempDir dir;
  REQUIRE(run({hub_binary(), "secret", "init", "--store-key", dir / "store.key"}).exit_code == 0);
  const auto agents = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{hub_binary(), "agents"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--db", dir / "hub.db"});
    if (args[0] != "list") argv.insert(argv.end(), {"--store-key", dir / "store.key"});
    return run(argv);
  };
  for (const char* id : {"edge-01", "edge-02"}) {
    const auto key = sovdev::seal::generate_agent_key(id);
    write_text(dir / (std::string(id) + ".pub"), sovdev::seal::encode_agent_public(key));
  }
  auto first = agents({"add", "edge-01", "--pub", dir / "edge-01.pub", "--channel", "edge",
                       "--label", "site=plant-7"});
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  CHECK_THAT(first.out, Catch::Contains("granted epoch 1"));
  REQUIRE(agents({"add", "edge-02", "--pub", dir / "edge-02.pub", "--channel", "edge"}).exit_code ==
          0);
  auto twice = agents({"add", "edge-02", "--pub", dir / "edge-02.pub", "--channel", "edge"});
  CHECK(twice.exit_code != 0);
  CHECK_THAT(twice.err, Catch::Contains("enrolled already"));

  auto removed = agents({"remove", "edge-01"});
  REQUIRE(removed.exit_code == 0);
  CHECK_THAT(removed.out, Catch::Contains("epoch 2"));
  auto rotated = agents({"rotate", "edge-02", "--pub", dir / "edge-01.pub"});
  REQUIRE(rotated.exit_code == 0);
  CHECK_THAT(rotated.out, Catch::Contains("epoch 3"));

  auto listed = agents({"list", "--json"});
  REQUIRE(listed.exit_code == 0);
  CHECK_THAT(listed.out, Catch::Contains("\"id\": \"edge-02\"") &&
                             !Catch::Contains("\"id\": \"edge-01\"") &&
                             Catch::Contains("\"reason\": \"removed edge-01\"") &&
                             Catch::Contains("\"epoch\": 3"));

  // A signing key is not an agent key.
  auto signing = run({hub_binary(), "keygen", "--out", dir / "keys", "--name", "k"});
  REQUIRE(signing.exit_code == 0);
  auto wrong_kind = agents({"add", "edge-03", "--pub", dir / "keys/k.pub", "--channel", "edge"});
  CHECK(wrong_kind.exit_code != 0);
  CHECK_THAT(wrong_kind.err, Catch::Contains("not a sovdev agent key file"));
}

TEST_CASE("secret list and agents list never create a hub.db: a mistyped --db is an error",
          "[cli][secrets]") {
  TempDir dir;
  const std::string missing = dir / "typo-hub.db";
  for (const char* what : {"secret", "agents"}) {
    INFO(what);
    auto listed = run({hub_binary(), what, "list", "--db", missing});
    CHECK(listed.exit_code != 0);
    CHECK_THAT(listed.err, Catch::Contains("typo-hub.db"));
    CHECK_FALSE(std::filesystem::exists(missing));
  }
}

TEST_CASE("secret generate --charset safe-symbols draws from RFC 3986's unreserved characters",
          "[cli][secrets]") {
  TempDir dir;
  REQUIRE(run({hub_binary(), "secret", "init", "--store-key", dir / "store.key"}).exit_code == 0);
  auto generated = run({hub_binary(), "secret", "generate", "--db", dir / "hub.db", "--store-key",
                        dir / "store.key", "--env", "edge", "pg", "password", "--length", "4096",
                        "--charset", "safe-symbols"});
  INFO(generated.err);
  REQUIRE(generated.exit_code == 0);
  auto help = run({hub_binary(), "secret", "generate", "--help"});
  CHECK_THAT(help.out, Catch::Contains("RFC 3986 unreserved"));

  // Read back in this process, as build would: every character fits in a URL's userinfo.
  auto key = sovdev::hub::secrets::load_store_key(dir / "store.key");
  REQUIRE(key);
  auto db = sovdev::store::open_hub_database(dir / "hub.db");
  REQUIRE(db);
  auto value = sovdev::hub::secrets::SecretValues(*db, *key).get("edge", "pg", "password");
  REQUIRE(value);
  const std::string_view text = value->view();
  REQUIRE(text.size() == 4096);
  const std::string_view unreserved =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
  size_t outside = 0;
  for (char c : text) outside += unreserved.find(c) == std::string_view::npos ? 1 : 0;
  CHECK(outside == 0);
}

TEST_CASE("agents add refuses ids and channels an agent could not ask its key with",
          "[cli][secrets]") {
  TempDir dir;
  REQUIRE(run({hub_binary(), "secret", "init", "--store-key", dir / "store.key"}).exit_code == 0);
  const auto key = sovdev::seal::generate_agent_key("edge-01");
  write_text(dir / "edge.pub", sovdev::seal::encode_agent_public(key));
  const auto add = [&](const std::string& id, const std::string& channel) {
    return run({hub_binary(), "agents", "add", id, "--pub", dir / "edge.pub", "--channel", channel,
                "--db", dir / "hub.db", "--store-key", dir / "store.key"});
  };
  auto long_id = add(std::string(65, 'a'), "edge");
  CHECK(long_id.exit_code == 2);
  CHECK_THAT(long_id.err, Catch::Contains("1-64"));
  for (const char* channel : {"Edge", "edge/eu", "edge+"}) {
    INFO(channel);
    auto bad = add("edge-01", channel);
    CHECK(bad.exit_code == 2);
    CHECK_THAT(bad.err, Catch::Contains("a channel is 1-63"));
  }
  auto good = add(std::string(64, 'a'), "edge.eu-1");
  INFO(good.err);
  CHECK(good.exit_code == 0);

  // A row changed by another process (a taken serve): list with the store key says so.
  {
    auto db = sovdev::store::open_hub_database(dir / "hub.db");
    REQUIRE(db);
    REQUIRE(db->exec("UPDATE enrolled_agents SET public_key = zeroblob(32)"));
  }
  auto checked = run(
      {hub_binary(), "agents", "list", "--db", dir / "hub.db", "--store-key", dir / "store.key"});
  CHECK(checked.exit_code == 0);
  CHECK_THAT(checked.out, Catch::Contains("row: CHANGED outside sovdev-hub agents"));
  auto unchecked = run({hub_binary(), "agents", "list", "--db", dir / "hub.db", "--json"});
  CHECK_THAT(unchecked.out, Catch::Contains("not checked (give --store-key)"));
}
