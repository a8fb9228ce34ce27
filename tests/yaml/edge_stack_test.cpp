// The in-repo edge-stack fixture, both versions: real-world-shaped input (CRDs with custom
// resources, cluster-scoped RBAC, a List of dashboards, hundreds of objects) must parse, validate
// and order as kubectl would, and the upgrade must change just what it claims to.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
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
std::vector<Object> load(const std::string& version) {
  return sovdev::yaml::test::load_manifests(sovdev::testing::edge_stack(version), 137);
}

using Key = std::tuple<std::string, std::string, std::string>;  // kind, namespace, name

std::map<Key, nlohmann::json> by_key(const std::vector<Object>& objects) {
  std::map<Key, nlohmann::json> out;
  for (const Object& o : objects) {
    out[{o.kind, o.namespace_, o.name}] = nlohmann::json::parse(o.json);
  }
  return out;
}

const Object& find(const std::vector<Object>& objects, const std::string& kind,
                   const std::string& name) {
  auto it = std::find_if(objects.begin(), objects.end(),
                         [&](const Object& o) { return o.kind == kind && o.name == name; });
  REQUIRE(it != objects.end());
  return *it;
}

}  // namespace

TEST_CASE("the edge-stack fixture parses, validates and orders in both versions", "[yaml]") {
  for (const char* version : {"v1", "v2"}) {
    INFO("version " << version);
    std::vector<Object> objects = load(version);
    std::map<std::string, int> kinds;
    for (const Object& o : objects) ++kinds[o.kind];

    CHECK(objects.size() == 271);
    CHECK(kinds["CustomResourceDefinition"] == 9);
    CHECK(kinds["Namespace"] == 4);
    CHECK(kinds["ClusterRole"] == 10);
    CHECK(kinds["ClusterRoleBinding"] == 9);
    CHECK(kinds["Deployment"] == 8);
    CHECK(kinds["DaemonSet"] == 2);
    CHECK(kinds["StatefulSet"] == 2);
    CHECK(kinds["NetworkPolicy"] == 16);
    CHECK(kinds["APIService"] == 1);
    // The List files are expanded: 42 dashboards, 4 Roles and 4 RoleBindings.
    CHECK(kinds["ConfigMap"] == 10 + 42);
    CHECK(kinds["Role"] == 1 + 4);
    CHECK(kinds["RoleBinding"] == 2 + 4);
    CHECK(kinds.count("ConfigMapList") == 0);
    CHECK(kinds.count("RoleList") == 0);
    // Custom resources of the fixture's own CRDs.
    CHECK(kinds["MetricScrape"] == 15);
    CHECK(kinds["SiteProbe"] + kinds["DeviceGroup"] == 64);

    auto ordered = sovdev::yaml::order_objects(objects);
    REQUIRE(ordered);
    REQUIRE(ordered->size() == objects.size());
    for (size_t i = 0; i < 9; ++i) CHECK(ordered->at(i).kind == "CustomResourceDefinition");
    for (size_t i = 9; i < 13; ++i) CHECK(ordered->at(i).kind == "Namespace");
    CHECK(ordered->back().kind == "APIService");
    CHECK(last_of(*ordered, "ClusterRoleBinding") < first_of(*ordered, "ServiceAccount"));
    CHECK(last_of(*ordered, "StatefulSet") < first_of(*ordered, "MetricStore"));
    CHECK(last_of(*ordered, "Deployment") < first_of(*ordered, "SiteProbe"));
  }
}

TEST_CASE("edge-stack objects keep their values through JSON", "[yaml]") {
  std::vector<Object> objects = load("v1");

  const Object& collector = find(objects, "DaemonSet", "node-collector");
  CHECK(collector.namespace_ == "edge-observe");
  CHECK(collector.source == "manifests/node-collector-daemonset.yaml:1");
  auto daemonset = nlohmann::json::parse(collector.json);
  CHECK(daemonset["spec"]["template"]["spec"]["containers"][0]["image"] ==
        "registry.edgestack.example/edge/node-collector:v1.8.2");
  CHECK(daemonset["spec"]["template"]["spec"]["hostNetwork"] == true);

  auto adapter = nlohmann::json::parse(find(objects, "Deployment", "metrics-adapter").json);
  CHECK(adapter["spec"]["replicas"].is_number_integer());
  CHECK(adapter["spec"]["replicas"] == 2);

  // `quantile: '0.99'` is quoted in the file: it must stay a string, not become 0.99.
  auto rules = nlohmann::json::parse(find(objects, "AlertRuleSet", "platform-rules").json);
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
      find(objects, "CustomResourceDefinition", "metricstores.observe.edgestack.example");
  CHECK(crd.source == "manifests/setup/0metricstoreCustomResourceDefinition.yaml:1");
  auto schema = nlohmann::json::parse(crd.json)["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
  CHECK(schema["properties"]["spec"]["properties"]["containers"]["items"]["required"][0] == "name");

  // A dashboard from the ConfigMapList keeps its multi-line JSON document as one string.
  const Object& dashboard = find(objects, "ConfigMap", "dashboard-site-overview");
  auto data = nlohmann::json::parse(dashboard.json)["data"];
  REQUIRE(data.size() == 1);
  CHECK(nlohmann::json::parse(data.begin()->get<std::string>()).contains("panels"));
}

TEST_CASE(
    "the edge-stack upgrade bumps node-collector, changes one configuration, adds one object and "
    "removes one",
    "[yaml]") {
  const auto before = by_key(load("v1"));
  const auto after = by_key(load("v2"));
  std::set<Key> changed, added, removed;
  for (const auto& [key, json] : before) {
    auto it = after.find(key);
    if (it == after.end()) {
      removed.insert(key);
    } else if (it->second != json) {
      changed.insert(key);
    }
  }
  for (const auto& [key, json] : after) {
    if (!before.count(key)) added.insert(key);
  }
  const std::string ns = "edge-observe";
  CHECK(changed == std::set<Key>{{"ConfigMap", ns, "log-shipper"},
                                 {"AlertRuleSet", ns, "node-collector-rules"},
                                 {"ClusterRole", "", "node-collector"},
                                 {"ClusterRoleBinding", "", "node-collector"},
                                 {"DaemonSet", ns, "node-collector"},
                                 {"MetricScrape", ns, "node-collector"},
                                 {"NetworkPolicy", ns, "node-collector"},
                                 {"Service", ns, "node-collector"},
                                 {"ServiceAccount", ns, "node-collector"}});
  CHECK(added == std::set<Key>{{"SiteProbe", ns, "uplink-backup"}});
  CHECK(removed == std::set<Key>{{"DeviceGroup", "edge-devices", "line-17"}});
  const Key collector{"DaemonSet", ns, "node-collector"};
  CHECK(after.at(collector)["spec"]["template"]["spec"]["containers"][0]["image"] ==
        "registry.edgestack.example/edge/node-collector:v1.8.3");
}
