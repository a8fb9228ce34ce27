// The kube apply target against tests/fake-kube-apiserver: order, idempotence, upgrades, prune,
// health and API failures, and every way of holding credentials.
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "bundles/hash.hpp"
#include "platform/kube/kube_target.hpp"
#include "platform/kube/kubeconfig.hpp"
#include "platform/store/agent_cache.hpp"
#include "tests/cli/cli_fixture.hpp"
#include "tests/kube/fake_kube.hpp"
#include "tests/kube/sovdev_secrets.hpp"

namespace sovdev::testing {
namespace {

using nlohmann::json;

template <class T>
T must(Expected<T> e) {
  if (!e) FAIL(e.error().message);
  return std::move(*e);
}

struct Site {
  FakeKube kube;
  TempDir state;
  store::Database db = must(store::open_agent_database(state / "agent.db"));

  std::unique_ptr<target::Target> target(
      std::chrono::milliseconds health = std::chrono::seconds(20)) {
    kube::KubeTargetOptions options;
    options.health_timeout = health;
    options.poll_interval = std::chrono::milliseconds(100);
    return must(kube::make_kube_target(db, must(kube::ApiClient::create(kube.cert_credentials())),
                                       options));
  }
};

pb::ResourceRecord record(const json& object) {
  pb::ResourceRecord r;
  r.set_api_version(object["apiVersion"]);
  r.set_kind(object["kind"]);
  r.set_namespace_(object["metadata"].value("namespace", ""));
  r.set_name(object["metadata"]["name"]);
  r.set_json(object.dump());
  r.set_source("test:" + r.name());
  return r;
}

json config_map(const std::string& ns, const std::string& name, const std::string& value) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"data", {{"value", value}}}};
}

json name_space(const std::string& name) {
  return {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
}

json deployment(const std::string& ns, const std::string& name, const std::string& image) {
  const json labels = {{"app", name}};
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec",
           {{"replicas", 1},
            {"selector", {{"matchLabels", labels}}},
            {"template",
             {{"metadata", {{"labels", labels}}},
              {"spec", {{"containers", {{{"name", name}, {"image", image}}}}}}}}}}};
}

Expected<target::ApplyResult> apply_all(target::Target& t, const std::string& stack,
                                        uint64_t version,
                                        const std::vector<pb::ResourceRecord>& records) {
  const std::string digest = sha256(stack + std::to_string(version));
  SOVDEV_TRY(t.begin({stack, version, short_hex(digest), digest}));
  for (const auto& r : records) {
    if (auto ok = t.apply(r); !ok) {
      t.abort();
      return std::move(ok).error();
    }
  }
  auto result = t.commit();
  if (!result) t.abort();
  return result;
}

std::string key_of(const pb::ResourceRecord& r) {
  return r.api_version().substr(0, r.api_version().find('/')) + "|" + r.kind() + "|" +
         r.namespace_() + "|" + r.name();
}

TEST_CASE("kube-prometheus applies in a valid order, again unchanged, and upgrades what changed") {
  Site site;
  Workspace ws;
  const std::string v1 = ws.dir / "v1.sdb", v2 = ws.dir / "v2.sdb";
  REQUIRE(ws.build(edge_stack("v1"), v1, 1).exit_code == 0);
  REQUIRE(ws.build(edge_stack("v2"), v2, 2).exit_code == 0);
  const auto first = unpack_bundle(v1, ws.trust), second = unpack_bundle(v2, ws.trust);
  auto target = site.target();

  // The double refuses a custom resource before its CRD is Established and a namespaced object
  // before its Namespace: success means the bundle's order is one a real server accepts.
  auto applied = apply_all(*target, "kp", 1, first);
  REQUIRE(applied);
  CHECK(applied->applied == first.size());
  CHECK(applied->pruned == 0);
  for (const auto& r : first) {
    INFO(key_of(r));
    const json live = site.kube.object(r.kind(), r.namespace_(), r.name());
    REQUIRE_FALSE(live.is_null());
    CHECK(live["metadata"]["labels"][kube::kPartOfLabel] ==
          kube::applyset_id("applyset-kp", "sovdev-system"));
  }

  auto again = apply_all(*target, "kp", 1, first);
  REQUIRE(again);
  CHECK(again->applied == 0);
  CHECK(again->unchanged == first.size());

  std::map<std::string, std::string> before;
  for (const auto& r : first) before[key_of(r)] = r.json();
  uint32_t changed = 0;
  std::set<std::string> kept;
  for (const auto& r : second) {
    kept.insert(key_of(r));
    auto it = before.find(key_of(r));
    if (it == before.end() || json::parse(it->second) != json::parse(r.json())) changed++;
  }
  uint32_t dropped = 0;
  for (const auto& [key, text] : before) dropped += kept.count(key) ? 0 : 1;
  auto upgraded = apply_all(*target, "kp", 2, second);
  REQUIRE(upgraded);
  CHECK(upgraded->applied == changed);
  CHECK(upgraded->unchanged == second.size() - changed);
  CHECK(upgraded->pruned == dropped);
  CHECK(changed > 0);
  CHECK(changed < second.size() / 2);
}

// What drift counting rests on, as on a real API server: an apply that changes nothing keeps
// the resourceVersion; a change moves it; the generation moves only with the spec (and, for a
// Deployment, its annotations). The target counts and names what moved.
TEST_CASE("the server moves resourceVersion only for real changes, and the target names them") {
  Site site;
  auto target = site.target();
  json web = deployment("app", "web", "nginx:1");
  std::vector<pb::ResourceRecord> v1 = {record(name_space("app")),
                                        record(config_map("app", "a", "1")), record(web)};
  auto first = apply_all(*target, "s", 1, v1);
  REQUIRE(first);
  CHECK(first->changed ==
        std::vector<std::string>{"Namespace app", "ConfigMap app/a", "Deployment app/web"});
  auto meta = [&](const std::string& kind, const std::string& name) {
    return site.kube.object(kind, kind == "Namespace" ? "" : "app", name)["metadata"];
  };
  const json ns1 = meta("Namespace", "app"), a1 = meta("ConfigMap", "a"),
             web1 = meta("Deployment", "web");

  auto again = apply_all(*target, "s", 1, v1);
  REQUIRE(again);
  CHECK(again->applied == 0);
  CHECK(again->unchanged == 3);
  CHECK(again->changed.empty());
  CHECK(meta("Namespace", "app")["resourceVersion"] == ns1["resourceVersion"]);
  CHECK(meta("ConfigMap", "a")["resourceVersion"] == a1["resourceVersion"]);
  CHECK(meta("Deployment", "web")["resourceVersion"] == web1["resourceVersion"]);
  CHECK(meta("Deployment", "web")["generation"] == web1["generation"]);

  // A ConfigMap's data and a Deployment's labels: new resourceVersions, the same generation.
  web["metadata"]["labels"] = {{"tier", "front"}};
  std::vector<pb::ResourceRecord> v2 = {record(name_space("app")),
                                        record(config_map("app", "a", "2")), record(web)};
  auto changed = apply_all(*target, "s", 2, v2);
  REQUIRE(changed);
  CHECK(changed->unchanged == 1);
  CHECK(changed->changed == std::vector<std::string>{"ConfigMap app/a", "Deployment app/web"});
  CHECK(meta("ConfigMap", "a")["resourceVersion"] != a1["resourceVersion"]);
  CHECK_FALSE(meta("ConfigMap", "a").contains("generation"));
  CHECK(meta("Deployment", "web")["resourceVersion"] != web1["resourceVersion"]);
  CHECK(meta("Deployment", "web")["generation"] == web1["generation"]);

  // The spec: the generation moves too.
  v2[2] = record(deployment("app", "web", "nginx:2"));
  auto image = apply_all(*target, "s", 3, v2);
  REQUIRE(image);
  CHECK(image->changed == std::vector<std::string>{"Deployment app/web"});
  CHECK(meta("Deployment", "web")["generation"] == web1["generation"].get<int>() + 1);
}

TEST_CASE("prune removes what a version drops, never an unlabelled object, honours the opt-out") {
  Site site;
  auto target = site.target();
  const std::vector<pb::ResourceRecord> v1 = {
      record(name_space("app")), record(config_map("app", "a", "1")),
      record(config_map("app", "b", "1")), record(config_map("app", "c", "1")),
      record(config_map("app", "d", "1"))};
  REQUIRE(apply_all(*target, "s", 1, v1));
  site.kube.control(
      "mutate",
      {{"apiVersion", "v1"},
       {"kind", "ConfigMap"},
       {"namespace", "app"},
       {"name", "c"},
       {"patch", {{"metadata", {{"annotations", {{kube::kPruneAnnotation, "disabled"}}}}}}}});
  site.kube.control("mutate",
                    {{"apiVersion", "v1"},
                     {"kind", "ConfigMap"},
                     {"namespace", "app"},
                     {"name", "d"},
                     {"patch", {{"metadata", {{"labels", {{kube::kPartOfLabel, nullptr}}}}}}}});
  const std::vector<pb::ResourceRecord> v2 = {record(name_space("app")),
                                              record(config_map("app", "a", "2"))};
  auto applied = apply_all(*target, "s", 2, v2);
  REQUIRE(applied);
  CHECK(applied->pruned == 1);
  CHECK(applied->applied == 1);  // a's new value
  CHECK(site.kube.object("ConfigMap", "app", "b").is_null());
  CHECK_FALSE(site.kube.object("ConfigMap", "app", "c").is_null());
  CHECK_FALSE(site.kube.object("ConfigMap", "app", "d").is_null());
  // The double's own ConfigMap in every namespace was never ours.
  CHECK_FALSE(site.kube.object("ConfigMap", "app", "kube-root-ca.crt").is_null());
  CHECK(site.kube.object("ConfigMap", "app", "a")["data"]["value"] == "2");
}

TEST_CASE("an unhealthy rollout and a 422 stop the apply, naming the object and the cause") {
  Site site;
  SECTION("health") {
    site.kube.control("health-default", {{"kind", "Deployment"}, {"mode", "failed"}});
    auto target = site.target(std::chrono::seconds(10));
    auto applied = apply_all(
        *target, "s", 1, {record(name_space("app")), record(deployment("app", "web", "nginx:1"))});
    REQUIRE_FALSE(applied);
    CHECK(applied.error().code == Errc::unhealthy);
    CHECK(applied.error().message.find("Deployment app/web") != std::string::npos);
    CHECK(applied.error().message.find("ProgressDeadlineExceeded") != std::string::npos);
  }
  SECTION("health timeout") {
    site.kube.control("health-default", {{"kind", "Deployment"}, {"mode", "progressing"}});
    auto target = site.target(std::chrono::seconds(2));
    auto applied = apply_all(
        *target, "s", 1, {record(name_space("app")), record(deployment("app", "web", "nginx:1"))});
    REQUIRE_FALSE(applied);
    CHECK(applied.error().code == Errc::unhealthy);
    CHECK(applied.error().message.find("not healthy within 2 s") != std::string::npos);
    CHECK(applied.error().message.find("Deployment app/web") != std::string::npos);
  }
  SECTION("422") {
    site.kube.control("inject", {{"method", "PATCH"},
                                 {"path_regex", "/configmaps/bad$"},
                                 {"action", "status"},
                                 {"code", 422},
                                 {"message", "data.value: Invalid value: \"v\": too silly"}});
    auto target = site.target();
    auto applied = apply_all(*target, "s", 1,
                             {record(name_space("app")), record(config_map("app", "bad", "x"))});
    REQUIRE_FALSE(applied);
    CHECK(applied.error().code == Errc::invalid);
    CHECK(applied.error().message.find("ConfigMap app/bad (test:bad)") != std::string::npos);
    CHECK(applied.error().message.find("422") != std::string::npos);
    CHECK(applied.error().message.find("too silly") != std::string::npos);
  }
  SECTION("a 500 or a dropped connection now and then is tried again, not a failure") {
    site.kube.control("inject", {{"method", "PATCH"},
                                 {"path_regex", "/configmaps/x$"},
                                 {"action", "status"},
                                 {"code", 500},
                                 {"count", 2}});
    site.kube.control(
        "inject",
        {{"method", "PATCH"}, {"path_regex", "/configmaps/y$"}, {"action", "drop"}, {"count", 1}});
    auto target = site.target();
    auto applied = apply_all(*target, "s", 1,
                             {record(name_space("app")), record(config_map("app", "x", "1")),
                              record(config_map("app", "y", "1"))});
    INFO((applied ? std::string() : applied.error().message));
    REQUIRE(applied);
    CHECK(applied->applied == 3);
    const json rules = site.kube.control("injections");
    for (const auto& rule : rules["items"])
      CHECK(rule["fired"] == (rule["action"] == "status" ? 2 : 1));
  }
  SECTION("403 names the missing permission") {
    site.kube.control("inject", {{"method", "PATCH"},
                                 {"path_regex", "/configmaps/"},
                                 {"action", "status"},
                                 {"code", 403},
                                 {"count", -1}});
    auto target = site.target();
    auto applied = apply_all(*target, "s", 1,
                             {record(name_space("app")), record(config_map("app", "x", "1"))});
    REQUIRE_FALSE(applied);
    CHECK(applied.error().code == Errc::denied);
    CHECK(applied.error().message.find("forbidden") != std::string::npos);
    CHECK(applied.error().message.find("RBAC") != std::string::npos);
  }
}

Expected<long> discovery_status(const kube::Credentials& credentials) {
  SOVDEV_ASSIGN(auto client, kube::ApiClient::create(credentials));
  SOVDEV_ASSIGN(auto response, client->get("/api/v1"));
  if (response.code != 200) return kube::api_error("GET", "/api/v1", response);
  return response.code;
}

TEST_CASE("credentials: certificate, token, kubeconfig, exec plugin, in-cluster, and refusals") {
  FakeKube kube;
  CHECK(must(discovery_status(kube.cert_credentials())) == 200);
  CHECK(must(discovery_status(kube.token_credentials())) == 200);
  CHECK(must(discovery_status(must(kube::load_kubeconfig(kube.write_kubeconfig())))) == 200);

  auto refused = discovery_status(kube.token_credentials("wrong"));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::denied);
  CHECK(refused.error().message.find("401") != std::string::npos);

  const std::string plugin = kube.file("plugin.sh");
  write_text(plugin,
             std::string("#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
                         "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"") +
                 FakeKube::kToken + "\"}}'\n");
  std::filesystem::permissions(plugin, std::filesystem::perms::owner_all);
  kube::Credentials exec = kube.token_credentials("");
  exec.exec =
      kube::ExecPlugin{plugin, {}, {}, "client.authentication.k8s.io/v1", "Never", false, ""};
  CHECK(must(discovery_status(exec)) == 200);

  // In-cluster: the service account's files, and a token rotated under the agent's feet.
  const std::string sa = kube.file("serviceaccount");
  std::filesystem::create_directories(sa);
  write_text(sa + "/token", FakeKube::kToken);
  write_text(sa + "/ca.crt", read_text(kube.file("ca.crt")));
  write_text(sa + "/namespace", "sovdev-system");
  const std::string port = kube.server().substr(kube.server().rfind(':') + 1);
  ::setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", port.c_str(), 1);
  auto in_cluster = must(kube::load_in_cluster({sa}));
  auto client = must(kube::ApiClient::create(in_cluster));
  CHECK(must(client->get("/api/v1")).code == 200);
  kube.control("tokens", {{"add", {"rotated"}}, {"remove", {FakeKube::kToken}}});
  write_text(sa + "/token.new", "rotated");
  REQUIRE(std::rename((sa + "/token.new").c_str(), (sa + "/token").c_str()) == 0);
  CHECK(must(client->get("/api/v1")).code == 200);
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
}

}  // namespace
}  // namespace sovdev::testing

namespace sovdev::testing {
namespace {

TEST_CASE(
    "the repo's RBAC and in-cluster Deployment for the agent are accepted by the API server") {
  Site site;
  Workspace ws;
  const std::string file = ws.dir / "deploy.sdb";
  auto built = ws.build(source_dir() + "/deploy/kube", file, 1);
  INFO(built.err);
  REQUIRE(built.exit_code == 0);
  auto target = site.target();
  auto applied = apply_all(*target, "sovdev-agent", 1, unpack_bundle(file, ws.trust));
  INFO((applied ? std::string() : applied.error().message));
  REQUIRE(applied);
  CHECK_FALSE(site.kube.object("ClusterRole", "", "sovdev-agent").is_null());
  CHECK_FALSE(site.kube.object("Deployment", "sovdev-system", "sovdev-agent").is_null());
}

}  // namespace
}  // namespace sovdev::testing

namespace sovdev::testing {

TEST_CASE("the SovDev stack of every environment applies to the API server and becomes healthy") {
  for (const auto* env : {"dev", "staging", "prod", "edge"}) {
    INFO(env);
    Site site;
    Workspace ws;
    const std::string file = ws.dir / "sovdev.sdb";
    // Every credential sealed by the hub, opened as the agent opens it.
    const SovdevSecrets secrets = sovdev_secrets(ws.dir.path(), env, "edge");
    std::vector<std::string> args = {"--env", env};
    args.insert(args.end(), secrets.build_args.begin(), secrets.build_args.end());
    auto built = ws.build(source_dir() + "/stacks/sovdev", file, 1, args);
    INFO(built.err);
    REQUIRE(built.exit_code == 0);
    auto records = unpack_bundle(file, ws.trust);
    size_t sealed = 0;
    for (const auto& r : records) sealed += r.sealed().empty() ? 0 : 1;
    CHECK(sealed >= 6);
    open_sealed(records, {"kp", 1, "edge", secrets.epoch}, secrets.epoch_key);
    auto target = site.target();
    auto applied = apply_all(*target, "sovdev", 1, records);
    INFO((applied ? "" : applied.error().message));
    REQUIRE(applied);
    CHECK(applied->applied == records.size());
    // Applied again, every kind of the stack comes back unchanged: nothing reads as drift.
    auto again = apply_all(*target, "sovdev", 1, records);
    REQUIRE(again);
    INFO(target::drift_summary(*again, static_cast<uint32_t>(records.size())));
    CHECK(again->applied == 0);
    CHECK(again->unchanged == records.size());
    for (const auto& r : records) {
      INFO(key_of(r));
      const json live = site.kube.object(r.kind(), r.namespace_(), r.name());
      REQUIRE_FALSE(live.is_null());
      if (r.kind() != "Namespace") CHECK(live["metadata"]["labels"].contains("sovdev.io/service"));
      if (r.kind() == "Secret") {
        for (const auto& [k, v] : live["data"].items()) CHECK(!v.get<std::string>().empty());
      }
    }
  }
}

}  // namespace sovdev::testing
