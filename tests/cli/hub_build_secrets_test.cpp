// `sovdev-hub build` with Secrets that name their values (${secret:NAME/KEY}): the values are
// sealed under the channel's epoch key, open to exactly what was set, and appear nowhere else:
// not in the bundle, its records, stdout or stderr. Every refusal names file, line and the fix.
#include <sodium.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "bundles/sealed_record.hpp"
#include "bundles/trust.hpp"
#include "hub/secrets/fleet_keys.hpp"
#include "platform/fs/bundle_reader.hpp"
#include "platform/store/hub_store.hpp"
#include "tests/cli/cli_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

const std::string kPassword = "PLANTED-pw-7c1d";
const std::string kToken = "PLANTED-tok-93ab";

std::string base64(std::string_view raw) {
  std::string out(sodium_base64_encoded_len(raw.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(raw.data()),
                    raw.size(), sodium_base64_VARIANT_ORIGINAL);
  out.pop_back();  // the NUL
  return out;
}

std::string single_quoted(const std::string& s) {
  return "'" + s + "'";
}

const char* kSecret = R"(apiVersion: v1
kind: Secret
metadata:
  name: postgresql
  namespace: apps
type: Opaque
stringData:
  password: ${secret:postgresql/password}
  url: postgresql://app:${secret:postgresql/password}@${DB_HOST}:5432/app
data:
  token: ${secret:postgresql/token}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: apps
data:
  mode: edge
)";

// A workspace with a secret-store key, a hub.db holding the values and one enrolled agent
// of channel edge, and a stack folder `kp` (base/ + env/edge.toml).
struct SecretsHub {
  Workspace ws;
  std::string db = ws.dir / "hub.db";
  std::string store_key = ws.dir / "store.key";
  std::string stack = ws.dir / "kp";

  SecretsHub() {
    REQUIRE(run({hub_binary(), "secret", "init", "--store-key", store_key}).exit_code == 0);
    write_manifest(stack + "/env/edge.toml", "[values]\nDB_HOST = \"db\"\n");
    write_manifest(stack + "/base/db.yaml", kSecret);
  }
  RunResult set(const std::string& name, const std::string& key, const std::string& value) {
    return run({"/bin/sh", "-c",
                "printf %s " + single_quoted(value) + " | " + single_quoted(hub_binary()) +
                    " secret set --db " + single_quoted(db) + " --store-key " +
                    single_quoted(store_key) + " --env edge " + name + " " + key});
  }
  void set_values() {
    REQUIRE(set("postgresql", "password", kPassword).exit_code == 0);
    REQUIRE(set("postgresql", "token", kToken).exit_code == 0);
  }
  RunResult agents(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {hub_binary(), "agents"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--db", db, "--store-key", store_key});
    return run(argv);
  }
  void enroll(const std::string& id) {
    const auto key = seal::generate_agent_key(id);
    write_text(ws.dir / (id + ".x25519.pub"), seal::encode_agent_public(key));
    auto r = agents({"add", id, "--pub", ws.dir / (id + ".x25519.pub"), "--channel", "edge"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }
  RunResult build(const std::string& source, const std::string& out, uint64_t version,
                  std::vector<std::string> extra = {"--env", "edge"}) {
    extra.insert(extra.end(), {"--db", db, "--store-key", store_key});
    return ws.build(source, out, version, extra);
  }
  // The channel's current epoch key, as the build took it.
  hub::secrets::EpochKey epoch_key() {
    auto key = hub::secrets::load_store_key(store_key);
    REQUIRE(key);
    auto database = store::open_hub_database(db);
    REQUIRE(database);
    auto current = hub::secrets::FleetKeys(*database, *key).current("edge");
    REQUIRE(current);
    REQUIRE(current->has_value());
    return std::move(**current);
  }
};

pb::BundleManifest manifest_of(const std::string& file, const std::string& trust) {
  auto policy = TrustPolicy::from_initial(read_text(trust));
  REQUIRE(policy);
  auto reader = fs::BundleFileReader::open(file);
  REQUIRE(reader);
  auto manifest = policy->verify_manifest(reader->manifest_envelope(), nullptr);
  REQUIRE(manifest);
  return *manifest;
}

const pb::ResourceRecord& record_named(const std::vector<pb::ResourceRecord>& records,
                                       const std::string& kind, const std::string& name) {
  for (const auto& r : records) {
    if (r.kind() == kind && r.name() == name) return r;
  }
  FAIL("no " + kind + "/" + name);
  throw std::logic_error("unreachable");
}

void check_nowhere(const std::string& where, const std::string& text) {
  INFO(where);
  for (const std::string& planted : {kPassword, kToken, base64(kPassword), base64(kToken)}) {
    CHECK(text.find(planted) == std::string::npos);
  }
}

}  // namespace

TEST_CASE(
    "build seals a stack's Secret under the channel's epoch key: it opens to exactly "
    "the values set, and they appear nowhere else",
    "[cli][secrets][build]") {
  SecretsHub hub;
  hub.enroll("site-1");
  hub.set_values();
  const std::string out = hub.ws.dir / "kp.sdb";
  auto built = hub.build(hub.stack, out, 1);
  INFO(built.err);
  REQUIRE(built.exit_code == 0);
  CHECK_THAT(built.out, Catch::Contains("sealed 1 Secret(s) for channel edge, epoch 1"));

  const auto manifest = manifest_of(out, hub.ws.trust);
  const auto key = hub.epoch_key();
  CHECK(manifest.secrets_channel() == "edge");
  CHECK(manifest.secrets_epoch() == key.epoch);
  CHECK(manifest.secrets_key_id() == seal::epoch_key_id("edge", key.epoch, key.key));
  CHECK(manifest.sealed_objects() == 1);

  const auto records = unpack_bundle(out, hub.ws.trust);
  const auto& secret = record_named(records, "Secret", "postgresql");
  const auto shown = nlohmann::json::parse(secret.json());
  CHECK(shown["data"] == nlohmann::json{{"password", ""}, {"token", ""}, {"url", ""}});
  CHECK_FALSE(shown.contains("stringData"));
  CHECK(record_named(records, "ConfigMap", "settings").sealed().empty());

  auto opened = sealed::open_record(secret, key.key, sealed::place_of(manifest));
  REQUIRE(opened);
  auto spliced = sealed::splice(secret.json(), *opened);
  REQUIRE(spliced);
  const auto data = nlohmann::json::parse(*spliced)["data"];
  CHECK(data["password"] == base64(kPassword));
  CHECK(data["token"] == base64(kToken));
  CHECK(data["url"] == base64("postgresql://app:" + kPassword + "@db:5432/app"));

  std::string all_records;
  for (const auto& r : records) all_records += r.SerializeAsString();
  check_nowhere("bundle file", read_text(out));
  check_nowhere("records", all_records);
  check_nowhere("build stdout", built.out);
  check_nowhere("build stderr", built.err);

  auto inspected = run({hub_binary(), "inspect", out, "--objects"});
  REQUIRE(inspected.exit_code == 0);
  CHECK_THAT(inspected.out, Catch::Contains("secrets_epoch") && Catch::Contains("sealed_objects") &&
                                Catch::Contains("(sealed: password, token, url)"));
  check_nowhere("inspect", inspected.out);
}

TEST_CASE(
    "build refuses a literal Secret value in a stack folder unless "
    "--allow-plaintext-secrets",
    "[cli][secrets][build]") {
  SecretsHub hub;
  hub.enroll("site-1");
  hub.set_values();
  write_manifest(hub.stack + "/base/literal.yaml", R"(apiVersion: v1
kind: Secret
metadata:
  name: grafana
  namespace: apps
stringData:
  admin-password: hunter2
---
apiVersion: v1
kind: Secret
metadata: {name: mixed, namespace: apps}
stringData:
  password: ${secret:postgresql/password}
  user: app-literal
data:
  password: Zm9v
  ca: Y2EtbGl0ZXJhbA==
)");
  auto refused = hub.build(hub.stack, hub.ws.dir / "a.sdb", 1);
  CHECK(refused.exit_code != 0);
  CHECK_THAT(refused.err, Catch::Contains("base/literal.yaml:7: Secret grafana: "
                                          "stringData.admin-password is a literal value") &&
                              Catch::Contains("${secret:grafana/admin-password}") &&
                              Catch::Contains("sovdev-hub secret set --env edge grafana "
                                              "admin-password") &&
                              Catch::Contains("--allow-plaintext-secrets"));

  auto allowed =
      hub.build(hub.stack, hub.ws.dir / "b.sdb", 1, {"--env", "edge", "--allow-plaintext-secrets"});
  INFO(allowed.err);
  REQUIRE(allowed.exit_code == 0);
  const auto records = unpack_bundle(hub.ws.dir / "b.sdb", hub.ws.trust);
  // A Secret with no reference stays as it was written; the one with references is sealed.
  const auto& literal = record_named(records, "Secret", "grafana");
  CHECK(literal.sealed().empty());
  CHECK_THAT(literal.json(), Catch::Contains("hunter2"));
  CHECK_FALSE(record_named(records, "Secret", "postgresql").sealed().empty());
  // The literal values of a Secret with references are sealed along with them: a data value
  // as the bytes it encodes, and stringData winning a key both name, as in Kubernetes.
  const auto& mixed = record_named(records, "Secret", "mixed");
  CHECK(mixed.json().find("app-literal") == std::string::npos);
  CHECK(mixed.json().find("Y2EtbGl0ZXJhbA==") == std::string::npos);
  const auto key = hub.epoch_key();
  auto opened = sealed::open_record(
      mixed, key.key, sealed::place_of(manifest_of(hub.ws.dir / "b.sdb", hub.ws.trust)));
  REQUIRE(opened);
  auto spliced = sealed::splice(mixed.json(), *opened);
  REQUIRE(spliced);
  const auto data = nlohmann::json::parse(*spliced)["data"];
  CHECK(data == nlohmann::json{{"ca", "Y2EtbGl0ZXJhbA=="},
                               {"password", base64(kPassword)},
                               {"user", base64("app-literal")}});
  CHECK_THAT(refused.err,
             Catch::Contains("base/literal.yaml:14: Secret mixed: stringData.user") &&
                 Catch::Contains("base/literal.yaml:16: Secret mixed: data.password") &&
                 Catch::Contains("base/literal.yaml:17: Secret mixed: data.ca"));
  CHECK_THAT(allowed.err, Catch::Contains("1 Secret(s) go into the bundle with their values in "
                                          "plaintext"));
}

TEST_CASE(
    "build of a plain folder keeps literal Secrets with one warning, and asks for "
    "--secrets-env only when it names secrets",
    "[cli][secrets][build]") {
  SecretsHub hub;
  const std::string plain = hub.ws.dir / "plain";
  write_manifest(plain + "/a.yaml", R"(apiVersion: v1
kind: Secret
metadata: {name: one, namespace: apps}
stringData: {k: literal-1}
---
apiVersion: v1
kind: Secret
metadata: {name: two, namespace: apps}
data: {k: bGl0ZXJhbC0y}
)");
  // No --db, no store key: nothing names a secret.
  auto built = hub.ws.build(plain, hub.ws.dir / "p.sdb", 1);
  INFO(built.err);
  REQUIRE(built.exit_code == 0);
  CHECK_THAT(built.err, Catch::Contains("warning: 2 Secret(s) go into the bundle with their "
                                        "values in plaintext"));
  for (const auto& r : unpack_bundle(hub.ws.dir / "p.sdb", hub.ws.trust)) {
    CHECK(r.sealed().empty());
  }

  write_manifest(plain + "/b.yaml", R"(apiVersion: v1
kind: Secret
metadata: {name: postgresql, namespace: apps}
stringData:
  password: ${secret:postgresql/password}
)");
  auto no_env = hub.ws.build(plain, hub.ws.dir / "q.sdb", 2, {"--db", hub.db});
  CHECK(no_env.exit_code != 0);
  CHECK_THAT(no_env.err, Catch::Contains("--secrets-env") && Catch::Contains("b.yaml:5"));

  auto no_db = hub.ws.build(plain, hub.ws.dir / "q.sdb", 2,
                            {"--secrets-env", "edge", "--db", hub.ws.dir / "none.db"});
  CHECK(no_db.exit_code != 0);
  CHECK_THAT(no_db.err, Catch::Contains("no hub database"));
  CHECK_FALSE(std::filesystem::exists(hub.ws.dir / "none.db"));

  hub.enroll("site-1");
  hub.set_values();
  auto sealed_plain = hub.build(plain, hub.ws.dir / "q.sdb", 2, {"--secrets-env", "edge"});
  INFO(sealed_plain.err);
  REQUIRE(sealed_plain.exit_code == 0);
  CHECK_THAT(sealed_plain.out, Catch::Contains("sealed 1 Secret(s)"));
  check_nowhere("plain build stderr", sealed_plain.err);
}

TEST_CASE(
    "build names every reference with no value, with its file, line and the command "
    "that sets it",
    "[cli][secrets][build]") {
  SecretsHub hub;
  hub.enroll("site-1");
  REQUIRE(hub.set("postgresql", "token", kToken).exit_code == 0);
  auto r = hub.build(hub.stack, hub.ws.dir / "m.sdb", 1);
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains("base/db.yaml:8: ${secret:postgresql/password} has no value "
                                    "for environment edge: sovdev-hub secret set --env edge "
                                    "postgresql password (or secret generate)") &&
                        Catch::Contains("base/db.yaml:9: ${secret:postgresql/password}"));
  CHECK(r.err.find("postgresql/token") == std::string::npos);
  check_nowhere("stderr", r.err);
  CHECK_FALSE(std::filesystem::exists(hub.ws.dir / "m.sdb"));

  // A long list is cut, saying how much was left out.
  std::string many =
      "apiVersion: v1\nkind: Secret\nmetadata: {name: many, namespace: a}\n"
      "stringData:\n";
  for (int i = 0; i < 25; i++) {
    many += "  k" + std::to_string(i) + ": ${secret:many/k" + std::to_string(i) + "}\n";
  }
  write_manifest(hub.stack + "/base/many.yaml", many);
  auto cut = hub.build(hub.stack, hub.ws.dir / "m.sdb", 1);
  CHECK(cut.exit_code != 0);
  CHECK_THAT(cut.err, Catch::Contains("27 secret reference(s) have no value") &&
                          Catch::Contains("\n  and 7 more"));
}

TEST_CASE(
    "build refuses a secret reference outside a Secret's data or stringData, and a "
    "malformed one",
    "[cli][secrets][build]") {
  SecretsHub hub;
  hub.enroll("site-1");
  hub.set_values();
  const std::string dir = hub.ws.dir / "bad";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: a}\ndata:\n"
       "  url: ${secret:postgresql/password}\n",
       "c.yaml:5: secret references are allowed only in a Secret's data or stringData"},
      {"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: a}\nspec:\n"
       "  template:\n    spec:\n      containers:\n      - name: x\n        image: x\n"
       "        env:\n        - name: P\n          value: ${secret:postgresql/password}\n",
       "c.yaml:12: secret references are allowed only in a Secret's data or stringData"},
      {"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: a\n  annotations:\n"
       "    x: ${secret:postgresql/password}\n",
       "c.yaml:7: secret references are allowed only in a Secret's data or stringData"},
      {"apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: a}\nstringData:\n"
       "  p: x${secret:postgresql}y\n",
       "c.yaml:5: '${secret:postgresql}' is not a secret reference"},
      {"apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: a}\nstringData:\n"
       "  p: ${secret:Bad_Name/k}\n",
       "c.yaml:5: '${secret:Bad_Name/k}' is not a secret reference"},
  };
  uint64_t version = 1;
  for (const auto& [text, expected] : cases) {
    write_manifest(dir + "/c.yaml", text);
    auto r = hub.build(dir, hub.ws.dir / "x.sdb", version++, {"--secrets-env", "edge"});
    INFO(text);
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.err, Catch::Contains(expected));
    check_nowhere("stderr", r.err);
  }
}

TEST_CASE(
    "build refuses to seal for a channel with no agents, and seals under the new epoch "
    "after an agent is removed",
    "[cli][secrets][build]") {
  SecretsHub hub;
  hub.set_values();
  auto none = hub.build(hub.stack, hub.ws.dir / "n.sdb", 1);
  CHECK(none.exit_code != 0);
  CHECK_THAT(none.err, Catch::Contains("sovdev-hub agents add ID --pub FILE --channel edge"));

  hub.enroll("site-1");
  hub.enroll("site-2");
  REQUIRE(hub.build(hub.stack, hub.ws.dir / "1.sdb", 1).exit_code == 0);
  CHECK(manifest_of(hub.ws.dir / "1.sdb", hub.ws.trust).secrets_epoch() == 1);

  REQUIRE(hub.agents({"remove", "site-2"}).exit_code == 0);
  auto second = hub.build(hub.stack, hub.ws.dir / "2.sdb", 2);
  INFO(second.err);
  REQUIRE(second.exit_code == 0);
  CHECK_THAT(second.out, Catch::Contains("for channel edge, epoch 2"));
  CHECK(manifest_of(hub.ws.dir / "2.sdb", hub.ws.trust).secrets_epoch() == 2);
  CHECK(second.err.find("granted to no agent") == std::string::npos);

  REQUIRE(hub.agents({"remove", "site-1"}).exit_code == 0);
  auto orphan = hub.build(hub.stack, hub.ws.dir / "3.sdb", 3);
  INFO(orphan.err);
  REQUIRE(orphan.exit_code == 0);
  CHECK_THAT(orphan.err, Catch::Contains("warning: epoch 3 of channel edge is granted to no "
                                         "agent"));
}

TEST_CASE("render shows <sealed> for every reference and needs no hub.db", "[cli][secrets]") {
  SecretsHub hub;
  auto r = run({hub_binary(), "render", hub.stack, "--env", "edge"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("password: <sealed>\n") &&
                        Catch::Contains("url: postgresql://app:<sealed>@db:5432/app\n") &&
                        Catch::Contains("token: <sealed>\n"));
  CHECK(r.out.find("${secret:") == std::string::npos);

  write_manifest(hub.stack + "/base/cm.yaml",
                 "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: a}\n"
                 "data:\n  url: ${secret:postgresql/password}\n");
  auto refused = run({hub_binary(), "render", hub.stack, "--env", "edge"});
  CHECK(refused.exit_code != 0);
  CHECK_THAT(refused.err, Catch::Contains("base/cm.yaml:5: secret references are allowed only"));
}
