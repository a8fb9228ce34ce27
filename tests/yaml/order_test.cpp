// Apply order: what must exist before what, and duplicates refused.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "bundles/yaml/objects.hpp"

using sovdev::Errc;
using sovdev::yaml::apply_rank;
using sovdev::yaml::Object;
using sovdev::yaml::order_objects;

namespace {

constexpr const char* kRbac = "rbac.authorization.k8s.io";

Object make(const std::string& api_version, const std::string& kind, const std::string& name,
            const std::string& ns = "", const std::string& source = "") {
  Object o;
  o.api_version = api_version;
  o.kind = kind;
  o.name = name;
  o.namespace_ = ns;
  o.source = source.empty() ? "f.yaml:" + name : source;
  return o;
}

std::vector<std::string> names(const std::vector<Object>& objects) {
  std::vector<std::string> out;
  for (const Object& o : objects) out.push_back(o.name);
  return out;
}

}  // namespace

TEST_CASE("CRDs, then Namespaces, then cluster-wide RBAC come first", "[yaml][order]") {
  int crd = apply_rank("apiextensions.k8s.io", "CustomResourceDefinition");
  int ns = apply_rank("", "Namespace");
  CHECK(crd < ns);
  CHECK(ns < apply_rank(kRbac, "ClusterRole"));
  CHECK(apply_rank(kRbac, "ClusterRole") < apply_rank(kRbac, "ClusterRoleBinding"));
  CHECK(apply_rank(kRbac, "ClusterRoleBinding") < apply_rank("", "ServiceAccount"));
  CHECK(apply_rank(kRbac, "ClusterRoleBinding") < apply_rank("", "ResourceQuota"));
}

TEST_CASE("built-in kinds follow Helm's install order", "[yaml][order]") {
  const std::pair<const char*, const char*> chain[] = {
      {"policy", "PodDisruptionBudget"},
      {"", "ServiceAccount"},
      {"", "Secret"},
      {"", "ConfigMap"},
      {"storage.k8s.io", "StorageClass"},
      {"", "PersistentVolume"},
      {"", "PersistentVolumeClaim"},
      {kRbac, "Role"},
      {kRbac, "RoleBinding"},
      {"", "Service"},
      {"apps", "DaemonSet"},
      {"apps", "Deployment"},
      {"autoscaling", "HorizontalPodAutoscaler"},
      {"apps", "StatefulSet"},
      {"batch", "Job"},
      {"batch", "CronJob"},
      {"networking.k8s.io", "IngressClass"},
      {"networking.k8s.io", "Ingress"},
  };
  for (size_t i = 1; i < std::size(chain); ++i) {
    INFO(chain[i - 1].second << " before " << chain[i].second);
    CHECK(apply_rank(chain[i - 1].first, chain[i - 1].second) <
          apply_rank(chain[i].first, chain[i].second));
  }
}

TEST_CASE("custom resources come after built-in kinds, webhooks and APIService last",
          "[yaml][order]") {
  int ingress = apply_rank("networking.k8s.io", "Ingress");
  int other_builtin = apply_rank("discovery.k8s.io", "EndpointSlice");
  int custom = apply_rank("monitoring.coreos.com", "ServiceMonitor");
  CHECK(ingress < other_builtin);
  CHECK(other_builtin < custom);
  CHECK(apply_rank("example.com", "Widget") == custom);
  // A custom kind that shares a built-in kind's name is still a custom resource.
  CHECK(apply_rank("serving.knative.dev", "Service") == custom);
  int mutating = apply_rank("admissionregistration.k8s.io", "MutatingWebhookConfiguration");
  int validating = apply_rank("admissionregistration.k8s.io", "ValidatingWebhookConfiguration");
  int policy = apply_rank("admissionregistration.k8s.io", "ValidatingAdmissionPolicy");
  int binding = apply_rank("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding");
  int api_service = apply_rank("apiregistration.k8s.io", "APIService");
  CHECK(custom < mutating);
  CHECK(mutating < validating);
  CHECK(validating < policy);
  CHECK(policy < binding);
  CHECK(binding < api_service);
}

TEST_CASE("order_objects sorts by rank and keeps input order within a rank", "[yaml][order]") {
  std::vector<Object> input = {
      make("apps/v1", "Deployment", "d1", "ns"),
      make("monitoring.coreos.com/v1", "ServiceMonitor", "sm", "ns"),
      make("v1", "ConfigMap", "c2", "ns"),
      make("apiregistration.k8s.io/v1", "APIService", "v1beta1.metrics.k8s.io"),
      make("apps/v1", "Deployment", "d0", "ns"),
      make("v1", "Namespace", "ns"),
      make("v1", "ConfigMap", "c1", "ns"),
      make("apiextensions.k8s.io/v1", "CustomResourceDefinition", "servicemonitors.x.io"),
      make("v1", "ConfigMap", "c3", "ns"),
  };
  auto ordered = order_objects(input);
  REQUIRE(ordered);
  CHECK(names(*ordered) == std::vector<std::string>{"servicemonitors.x.io", "ns", "c2", "c1", "c3",
                                                    "d1", "d0", "sm", "v1beta1.metrics.k8s.io"});
  CHECK(ordered->at(2).source == "f.yaml:c2");
}

TEST_CASE("order_objects keeps input order among many objects of one rank", "[yaml][order]") {
  // Enough equal ranks that an unstable sort would shuffle them.
  std::vector<Object> input;
  std::vector<std::string> expected_maps;
  for (int i = 0; i < 200; ++i) {
    std::string n = "c" + std::to_string((i * 37) % 200);
    input.push_back(make("v1", i % 3 == 0 ? "Secret" : "ConfigMap", n, "ns"));
    if (i % 3 != 0) expected_maps.push_back(n);
  }
  auto ordered = order_objects(input);
  REQUIRE(ordered);
  std::vector<std::string> maps;
  for (const Object& o : *ordered) {
    if (o.kind == "ConfigMap") maps.push_back(o.name);
  }
  CHECK(maps == expected_maps);
  CHECK(ordered->front().kind == "Secret");
}

TEST_CASE("duplicate objects are refused naming both sources", "[yaml][order]") {
  std::vector<Object> input = {
      make("apps/v1", "Deployment", "web", "prod", "a.yaml:3"),
      make("v1", "Service", "web", "prod", "a.yaml:20"),
      make("apps/v1beta2", "Deployment", "web", "prod", "b.yaml:7"),
  };
  auto ordered = order_objects(input);
  REQUIRE_FALSE(ordered);
  CHECK(ordered.error().code == Errc::conflict);
  CHECK(ordered.error().message ==
        "duplicate object apps/Deployment prod/web: at a.yaml:3 and at b.yaml:7");

  auto cluster = order_objects(
      {make("v1", "Namespace", "n", "", "x.yaml:1"), make("v1", "Namespace", "n", "", "y.yaml:1")});
  REQUIRE_FALSE(cluster);
  CHECK(cluster.error().message == "duplicate object Namespace n: at x.yaml:1 and at y.yaml:1");
}

TEST_CASE("the same name in another namespace, kind or group is not a duplicate", "[yaml][order]") {
  auto ordered = order_objects({
      make("v1", "ConfigMap", "x", "a"),
      make("v1", "ConfigMap", "x", "b"),
      make("v1", "Secret", "x", "a"),
      make("example.com/v1", "ConfigMap", "x", "a"),
  });
  REQUIRE(ordered);
  CHECK(ordered->size() == 4);
}
