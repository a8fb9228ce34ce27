// The README's main job, in its short mode: broker with TLS and ACLs, hub, four agents, the
// matrix from what they report, and the edge agent catching up with a delta.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/kube/fake_kube.hpp"
#include "tests/support/process.hpp"

namespace sovdev::testing {

TEST_CASE("the demo brings four environments up, reports the matrix and catches edge up",
          "[demo]") {
  TempDir dir;
  const std::string report = dir / "status.json";
  setenv("SOVDEV_BUILD_DIR", SOVDEV_BINARY_DIR, 1);
  setenv("SOVDEV_DEMO_REPORT", report.c_str(), 1);
  // With KUBECONFIG set, the dev agent applies to that cluster (here the API server double).
  std::unique_ptr<FakeKube> kube;
  SECTION("dir targets") {
    unsetenv("KUBECONFIG");
  }
  SECTION("dev on a Kubernetes API server") {
    kube = std::make_unique<FakeKube>();
    setenv("KUBECONFIG", kube->write_kubeconfig().c_str(), 1);
  }
  auto demo = run({"/bin/bash", source_dir() + "/scripts/demo.sh", "--short"});
  unsetenv("SOVDEV_DEMO_REPORT");
  unsetenv("KUBECONFIG");
  INFO(demo.out << demo.err);
  REQUIRE(demo.exit_code == 0);
  CHECK_THAT(demo.out, Catch::Contains("caught up to version 2 with a delta"));
  // The hub's Prometheus endpoint says the same as its status.
  CHECK_THAT(demo.out, Catch::Contains("sovdev_agents{state=\"healthy\"} 4"));
  CHECK_THAT(demo.out, Catch::Contains("sovdev_agent_last_fetch_delta{agent=\"edge-1\"} 1"));

  const auto status = nlohmann::json::parse(read_text(report));
  const auto& matrix = status["matrix"];
  CHECK(matrix["environments"] == nlohmann::json({"dev", "staging", "prod", "edge"}));
  std::vector<std::string> titles;
  for (const auto& row : matrix["services"]) {
    titles.push_back(row["title"]);
    for (const auto& env : {"dev", "staging", "prod", "edge"}) {
      const std::string service = row["service"];
      const bool external =
          std::string(env) == "prod" && (service == "postgresql" || service == "redis");
      INFO(service << " in " << env << ": " << row["cells"][env].dump());
      CHECK(row["cells"][env]["state"] == (external ? "external" : "healthy"));
      CHECK(row["cells"][env]["agents"] == 1);
    }
  }
  CHECK(titles == std::vector<std::string>{"Kubernetes", "Traefik", "PostgreSQL", "Redis",
                                           "Authentik", "AI Platform", "Grafana"});
  for (const auto& a : status["agents"]) {
    INFO(a.dump());
    CHECK(a["state"] == "healthy");
    CHECK(a["applied_version"] == (a["agent"] == "edge-1" ? 2 : 1));
    if (a["agent"] == "edge-1") {
      CHECK(a["last_fetch_delta"] == true);
      CHECK(a["environment"] == "edge");
    }
  }
  CHECK(status["agents"].size() == 4);
  if (kube) {
    const auto grafana = kube->object("Deployment", "sovdev", "grafana");
    REQUIRE_FALSE(grafana.is_null());
    CHECK(grafana["metadata"]["labels"]["sovdev.io/service"] == "grafana");
    CHECK_THAT(demo.out, Catch::Contains("kube target"));
  }
  // Nothing of the demo is left running.
  CHECK(run({"/usr/bin/pgrep", "-f", "sovdev-demo-"}).exit_code == 1);
}

}  // namespace sovdev::testing
