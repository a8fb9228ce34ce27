// kube-prometheus, two real versions: every file must parse, validate and order as kubectl would.
// The corpus is an extra beside the repository: without it these cases report SKIPPED.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "bundles/yaml/objects.hpp"
#include "tests/support/inputs.hpp"
#include "tests/yaml/helpers.hpp"

namespace fs = std::filesystem;
using sovdev::yaml::Object;
using sovdev::yaml::test::first_of;
using sovdev::yaml::test::last_of;

namespace {

// Every object of one version's manifests/ (setup/ included), files in name order.
std::vector<Object> load_realworld(const std::string& version) {
  return sovdev::yaml::test::load_manifests(sovdev::testing::kube_prometheus(version), 95);
}

std::map<std::string, int> count_kinds(const std::vector<Object>& objects) {
  std::map<std::string, int> counts;
  for (const Object& o : objects) ++counts[o.kind];
  return counts;
}

const Object& find_realworld(const std::vector<Object>& objects, const std::string& kind,
                             const std::string& name) {
  auto it = std::find_if(objects.begin(), objects.end(),
                         [&](const Object& o) { return o.kind == kind && o.name == name; });
  REQUIRE(it != objects.end());
  return *it;
}

}  // namespace

TEST_CASE("kube-prometheus manifests parse, validate and order in both versions",
          "[yaml][realworld]") {
  SOVDEV_SKIP_WITHOUT_REALWORLD();
  for (const char* version : {"81570cb1", "f214874c"}) {
    INFO("version " << version);
    std::vector<Object> objects = load_realworld(version);
    std::map<std::string, int> kinds = count_kinds(objects);

    CHECK(objects.size() == 131);
    CHECK(kinds["CustomResourceDefinition"] == 10);
    CHECK(kinds["Namespace"] == 1);
    CHECK(kinds["APIService"] == 1);
    CHECK(kinds["ClusterRole"] == 8);
    CHECK(kinds["ClusterRoleBinding"] == 7);
    CHECK(kinds["Deployment"] == 5);
    CHECK(kinds["ServiceMonitor"] == 13);
    // The three List files are expanded: 33 dashboards, 3 Roles and 3 RoleBindings more.
    CHECK(kinds["ConfigMap"] == 3 + 33);
    CHECK(kinds["Role"] == 1 + 3);
    CHECK(kinds["RoleBinding"] == 2 + 3);
    CHECK(kinds.count("ConfigMapList") == 0);
    CHECK(kinds.count("RoleList") == 0);
    CHECK(kinds.count("RoleBindingList") == 0);

    auto ordered = sovdev::yaml::order_objects(objects);
    REQUIRE(ordered);
    REQUIRE(ordered->size() == objects.size());
    for (size_t i = 0; i < 10; ++i) CHECK(ordered->at(i).kind == "CustomResourceDefinition");
    CHECK(ordered->at(10).kind == "Namespace");
    CHECK(ordered->at(10).name == "monitoring");
    CHECK(ordered->back().kind == "APIService");
    CHECK(ordered->back().name == "v1beta1.metrics.k8s.io");
    // Cluster-wide RBAC before any namespaced object, custom resources after every Deployment.
    CHECK(last_of(*ordered, "ClusterRoleBinding") < first_of(*ordered, "ServiceAccount"));
    CHECK(last_of(*ordered, "Deployment") < first_of(*ordered, "ServiceMonitor"));
    CHECK(last_of(*ordered, "Deployment") < first_of(*ordered, "Prometheus"));
  }
}

TEST_CASE("kube-prometheus objects keep their values through JSON", "[yaml][realworld]") {
  SOVDEV_SKIP_WITHOUT_REALWORLD();
  std::vector<Object> objects = load_realworld("81570cb1");

  const Object& grafana = find_realworld(objects, "Deployment", "grafana");
  CHECK(grafana.namespace_ == "monitoring");
  CHECK(grafana.source == "manifests/grafana-deployment.yaml:1");
  auto deployment = nlohmann::json::parse(grafana.json);
  CHECK(deployment["spec"]["replicas"].is_number_integer());
  CHECK(deployment["spec"]["replicas"] == 1);
  CHECK(deployment["spec"]["template"]["spec"]["containers"][0]["image"] ==
        "grafana/grafana:13.0.1");
  CHECK(deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "13.0.1");

  auto adapter =
      nlohmann::json::parse(find_realworld(objects, "Deployment", "prometheus-adapter").json);
  CHECK(adapter["spec"]["replicas"] == 2);

  // `quantile: "0.99"` is quoted in the file: it must stay a string, not become 0.99.
  auto rules = nlohmann::json::parse(
      find_realworld(objects, "PrometheusRule", "kubernetes-monitoring-rules").json);
  bool saw_quoted_quantile = false;
  for (const auto& group : rules["spec"]["groups"]) {
    for (const auto& rule : group["rules"]) {
      if (rule.contains("labels") && rule["labels"].contains("quantile")) {
        CHECK(rule["labels"]["quantile"].is_string());
        saw_quoted_quantile = saw_quoted_quantile || rule["labels"]["quantile"] == "0.99";
      }
    }
  }
  CHECK(saw_quoted_quantile);

  const Object& crd =
      find_realworld(objects, "CustomResourceDefinition", "prometheuses.monitoring.coreos.com");
  CHECK(crd.source == "manifests/setup/0prometheusCustomResourceDefinition.yaml:1");
  CHECK(nlohmann::json::parse(crd.json)["spec"]["group"] == "monitoring.coreos.com");

  // A dashboard from the ConfigMapList keeps its multi-line JSON document as one string.
  const Object& dashboard = find_realworld(objects, "ConfigMap", "grafana-dashboard-apiserver");
  auto data = nlohmann::json::parse(dashboard.json)["data"];
  REQUIRE(data.size() == 1);
  CHECK(nlohmann::json::parse(data.begin()->get<std::string>()).contains("panels"));
}

TEST_CASE("the kube-prometheus upgrade changes the grafana image and nothing of the inventory",
          "[yaml][realworld]") {
  SOVDEV_SKIP_WITHOUT_REALWORLD();
  std::vector<Object> before = load_realworld("81570cb1");
  std::vector<Object> after = load_realworld("f214874c");
  REQUIRE(before.size() == after.size());
  for (size_t i = 0; i < before.size(); ++i) {
    CHECK(before[i].kind == after[i].kind);
    CHECK(before[i].name == after[i].name);
  }
  auto image = [](const std::vector<Object>& objects) {
    return nlohmann::json::parse(find_realworld(objects, "Deployment", "grafana")
                                     .json)["spec"]["template"]["spec"]["containers"][0]["image"];
  };
  CHECK(image(before) == "grafana/grafana:13.0.1");
  CHECK(image(after) == "grafana/grafana:13.0.2");
}
