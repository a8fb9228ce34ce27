// stacks/sovdev as each environment gets it: the differences the environment table promises,
// checked on the rendered objects the hub would pack.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>

#include "hub/render.hpp"
#include "tests/stack/stack_objects.hpp"
#include "tests/support/process.hpp"

namespace sovdev {
namespace {

using nlohmann::json;

std::vector<json> render(const std::string& env_name) {
  return testing::render_sovdev(env_name);
}

std::string service(const json& o) {
  return testing::service_of(o);
}

using testing::of_kind;

std::set<std::string> ingress_hosts(const std::vector<json>& objects) {
  std::set<std::string> hosts;
  for (const auto& i : of_kind(objects, "Ingress")) {
    for (const auto& rule : i["spec"]["rules"]) hosts.insert(rule["host"].get<std::string>());
  }
  return hosts;
}

const std::vector<std::string>& kEnvs = testing::kSovdevEnvs;

}  // namespace

TEST_CASE("every environment renders, and every workload is labelled, limited and probed",
          "[stack]") {
  const std::set<std::string> services = {"traefik",   "postgresql",  "redis",
                                          "authentik", "ai-platform", "grafana"};
  for (const auto& env : kEnvs) {
    const auto objects = render(env);
    INFO(env);
    CHECK(objects.size() > 20);
    std::set<std::string> seen;
    for (const auto& o : objects) {
      INFO(o["kind"] << " " << o["metadata"]["name"]);
      CHECK(o["metadata"]["labels"].value("app.kubernetes.io/part-of", "") == "sovdev");
      if (o["kind"] == "Namespace") continue;
      CHECK(services.count(service(o)) == 1);
      seen.insert(service(o));
    }
    CHECK(seen == services);
    for (const auto* kind : {"Deployment", "StatefulSet"}) {
      for (const auto& w : of_kind(objects, kind)) {
        const json& pod = w["spec"]["template"]["spec"];
        for (const auto* list : {"containers", "initContainers"}) {
          for (const auto& c : pod.value(list, json::array())) {
            INFO(env << " " << kind << " " << w["metadata"]["name"] << " " << c["name"]);
            const json limits =
                c.value("resources", json::object()).value("limits", json::object());
            CHECK(limits.contains("cpu"));
            CHECK(limits.contains("memory"));
            const std::string image = c.value("image", "");
            CHECK(image.find(':') != std::string::npos);
            CHECK(image.find(":latest") == std::string::npos);
            if (std::string(list) == "containers") CHECK(c.contains("readinessProbe"));
          }
        }
        // Credentials come from Secrets: no literal password in an env var.
        for (const auto& c : pod["containers"]) {
          for (const auto& e : c.value("env", json::array())) {
            const std::string name = e.value("name", "");
            if (name.find("PASSWORD") != std::string::npos ||
                name.find("SECRET") != std::string::npos) {
              INFO(name);
              CHECK_FALSE(e.contains("value"));
            }
          }
        }
      }
    }
    // Every credential comes sealed through the hub: each Secret's values are references only,
    // and every Secret a workload or an Ingress needs is one the environment's bundle carries.
    std::map<std::string, std::set<std::string>> provided;  // Secret name -> keys
    for (const auto& secret : of_kind(objects, "Secret")) {
      auto& keys = provided[secret["metadata"]["name"].get<std::string>()];
      for (const auto* field : {"data", "stringData"}) {
        if (!secret.contains(field)) continue;
        for (const auto& [key, value] : secret[field].items()) {
          INFO(env << " Secret " << secret["metadata"]["name"] << " " << key);
          CHECK(value.get<std::string>().find("${secret:") != std::string::npos);
          keys.insert(key);
        }
      }
    }
    CHECK(provided.size() >= 6);
    for (const auto& o : objects) {
      const std::string text = o.dump();
      for (size_t at = text.find("\"secretKeyRef\""); at != std::string::npos;
           at = text.find("\"secretKeyRef\"", at + 1)) {
        const size_t open = text.find('{', at);
        const json ref = json::parse(text.substr(open, text.find('}', open) - open + 1));
        if (ref.value("optional", false)) continue;
        INFO(env << " " << o["kind"] << " " << o["metadata"]["name"] << " needs " << ref.dump());
        REQUIRE(provided.count(ref["name"].get<std::string>()) == 1);
        CHECK(provided[ref["name"].get<std::string>()].count(ref["key"].get<std::string>()) == 1);
      }
      if (o["kind"] == "Ingress" && o["spec"].contains("tls")) {
        for (const auto& tls : o["spec"]["tls"]) {
          INFO(env << " Ingress " << o["metadata"]["name"]);
          CHECK(provided.count(tls["secretName"].get<std::string>()) == 1);
        }
      }
    }
  }
}

TEST_CASE("PostgreSQL: 8 Gi in dev, 20 Gi replicated in staging, external in prod, 4 Gi on edge",
          "[stack]") {
  auto claim = [](const json& sts) {
    return sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"];
  };
  const auto dev = of_kind(render("dev"), "StatefulSet", "postgresql");
  REQUIRE(dev.size() == 1);
  CHECK(claim(dev[0]) == "8Gi");
  CHECK_THAT(dev[0].dump(), Catch::Contains("pgvector/pgvector"));

  const auto staging = of_kind(render("staging"), "StatefulSet", "postgresql");
  REQUIRE(staging.size() == 1);
  CHECK(claim(staging[0]) == "20Gi");
  CHECK(staging[0]["spec"]["replicas"].get<int>() > 1);

  const auto edge = of_kind(render("edge"), "StatefulSet", "postgresql");
  REQUIRE(edge.size() == 1);
  CHECK(claim(edge[0]) == "4Gi");

  const auto prod = render("prod");
  for (const auto* svc : {"postgresql", "redis"}) {
    INFO(svc);
    CHECK(of_kind(prod, "StatefulSet", svc).empty());
    CHECK(of_kind(prod, "Deployment", svc).empty());
    CHECK(of_kind(prod, "PersistentVolumeClaim", svc).empty());
    const auto external = of_kind(prod, "Service", svc);
    REQUIRE(external.size() == 1);
    CHECK(external[0]["spec"]["type"] == "ExternalName");
    CHECK(external[0]["metadata"]["labels"]["sovdev.io/external"] == "true");
  }
}

TEST_CASE("Redis: in memory in dev, persistent in staging, small on edge", "[stack]") {
  const auto dev = render("dev");
  CHECK(of_kind(dev, "StatefulSet", "redis").empty());
  REQUIRE(of_kind(dev, "Deployment", "redis").size() == 1);
  const auto staging = of_kind(render("staging"), "StatefulSet", "redis");
  REQUIRE(staging.size() == 1);
  CHECK(staging[0]["spec"].contains("volumeClaimTemplates"));
  const auto edge = of_kind(render("edge"), "Deployment", "redis");
  REQUIRE(edge.size() == 1);
  CHECK_THAT(edge[0].dump(), Catch::Contains("64mb"));
}

TEST_CASE("hosts follow the environment table; prod serves TLS", "[stack]") {
  CHECK(ingress_hosts(render("dev")) ==
        std::set<std::string>{"authentik.localhost", "grafana.localhost", "litellm.localhost",
                              "openwebui.localhost"});
  for (const auto& h : ingress_hosts(render("staging")))
    CHECK_THAT(h, Catch::StartsWith("staging."));
  for (const auto& h : ingress_hosts(render("edge"))) CHECK_THAT(h, Catch::StartsWith("edge."));
  const auto prod = render("prod");
  CHECK(ingress_hosts(prod) == std::set<std::string>{"service.company.com", "auth.company.com",
                                                     "ai.company.com", "monitoring.company.com"});
  for (const auto& i : of_kind(prod, "Ingress")) {
    INFO(i["metadata"]["name"]);
    REQUIRE(i["spec"].contains("tls"));
    CHECK(i["spec"]["tls"][0]["secretName"] == "sovdev-tls");
  }
}

TEST_CASE("the AI platform scales out in prod and is small on edge; edge builds for arm64",
          "[stack]") {
  const auto prod = render("prod");
  const auto hpas = of_kind(prod, "HorizontalPodAutoscaler", "ai-platform");
  REQUIRE(hpas.size() >= 2);
  for (const auto& h : hpas) CHECK(h["spec"]["minReplicas"].get<int>() >= 3);
  CHECK(of_kind(render("edge"), "HorizontalPodAutoscaler").empty());

  auto memory_limit_mi = [](const json& deployment) {
    const std::string m =
        deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"];
    const double n = std::stod(m);
    return m.find("Gi") != std::string::npos ? n * 1024 : n;
  };
  for (const auto& d : of_kind(render("edge"), "Deployment", "ai-platform")) {
    INFO(d["metadata"]["name"]);
    for (const auto& p : of_kind(prod, "Deployment", "ai-platform")) {
      if (p["metadata"]["name"] == d["metadata"]["name"])
        CHECK(memory_limit_mi(d) < memory_limit_mi(p));
    }
  }
  auto edge = hub::load_stack_env(testing::source_dir() + "/stacks/sovdev", "edge");
  REQUIRE(edge);
  CHECK(edge->arch == std::vector<std::string>{"arm64"});
  for (const auto* env : {"dev", "staging", "prod"}) {
    auto e = hub::load_stack_env(testing::source_dir() + "/stacks/sovdev", env);
    REQUIRE(e);
    CHECK(e->arch == std::vector<std::string>{"amd64"});
  }
}

TEST_CASE("Grafana provisions a datasource and a dashboard of the fleet's own metrics", "[stack]") {
  for (const auto& env : kEnvs) {
    const auto maps = of_kind(render(env), "ConfigMap", "grafana");
    std::string all;
    for (const auto& m : maps) all += m.dump();
    INFO(env);
    CHECK_THAT(all, Catch::Contains("datasources"));
    for (const auto* metric :
         {"sovdev_agents", "sovdev_service_healthy", "sovdev_hub_bytes_served_total",
          "sovdev_agent_last_fetch_seconds", "sovdev_agent_private_memory_bytes",
          "sovdev_hub_rollout_agents", "sovdev_hub_rollout_state"}) {
      CHECK_THAT(all, Catch::Contains(metric));
    }
  }
}

}  // namespace sovdev
