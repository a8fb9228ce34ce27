#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>

#include "bundles/yaml/objects.hpp"

namespace sovdev::yaml {
namespace {

constexpr std::string_view kRbac = "rbac.authorization.k8s.io";
constexpr std::string_view kAdmission = "admissionregistration.k8s.io";

struct Ranked {
  std::string_view group;
  std::string_view kind;
};

// Apply order of the kinds known here, first to last.
//  - CRDs first: the apply engine must wait for each to be Established before its custom
//    resources, so the wait starts as early as possible. Namespaces next: everything else may
//    live in them.
//  - Cluster-wide RBAC before the workloads that run with it.
//  - Then Helm's install order (helm.sh/helm/v3/pkg/releaseutil InstallOrder).
constexpr Ranked kEarly[] = {
    {"apiextensions.k8s.io", "CustomResourceDefinition"},
    {"", "Namespace"},
    {kRbac, "ClusterRole"},
    {kRbac, "ClusterRoleBinding"},
    {"scheduling.k8s.io", "PriorityClass"},
    {"networking.k8s.io", "NetworkPolicy"},
    {"extensions", "NetworkPolicy"},
    {"", "ResourceQuota"},
    {"", "LimitRange"},
    {"policy", "PodSecurityPolicy"},
    {"extensions", "PodSecurityPolicy"},
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
    {"extensions", "DaemonSet"},
    {"", "Pod"},
    {"", "ReplicationController"},
    {"apps", "ReplicaSet"},
    {"extensions", "ReplicaSet"},
    {"apps", "Deployment"},
    {"extensions", "Deployment"},
    {"autoscaling", "HorizontalPodAutoscaler"},
    {"apps", "StatefulSet"},
    {"batch", "Job"},
    {"batch", "CronJob"},
    {"networking.k8s.io", "IngressClass"},
    {"networking.k8s.io", "Ingress"},
    {"extensions", "Ingress"},
};

// Last of all: an admission webhook or policy applied before the service behind it runs would
// stop the rest of the stack from applying, and an APIService without its backend breaks
// discovery for everyone.
constexpr Ranked kLate[] = {
    {kAdmission, "MutatingWebhookConfiguration"}, {kAdmission, "ValidatingWebhookConfiguration"},
    {kAdmission, "MutatingAdmissionPolicy"},      {kAdmission, "MutatingAdmissionPolicyBinding"},
    {kAdmission, "ValidatingAdmissionPolicy"},    {kAdmission, "ValidatingAdmissionPolicyBinding"},
    {"apiregistration.k8s.io", "APIService"},
};

constexpr int kEarlyCount = static_cast<int>(std::size(kEarly));
constexpr int kOtherBuiltinRank = kEarlyCount;
constexpr int kCustomResourceRank = kEarlyCount + 1;
constexpr int kLateStart = kEarlyCount + 2;

// API groups served by kube-apiserver itself; any other group is served through a CRD or an
// APIService, so its kinds are custom resources.
bool is_builtin_group(std::string_view group) {
  constexpr std::string_view kBuiltin[] = {
      "",
      "apps",
      "batch",
      "autoscaling",
      "policy",
      "extensions",
      "admissionregistration.k8s.io",
      "apiextensions.k8s.io",
      "apiregistration.k8s.io",
      "authentication.k8s.io",
      "authorization.k8s.io",
      "certificates.k8s.io",
      "coordination.k8s.io",
      "discovery.k8s.io",
      "events.k8s.io",
      "flowcontrol.apiserver.k8s.io",
      "internal.apiserver.k8s.io",
      "networking.k8s.io",
      "node.k8s.io",
      kRbac,
      "resource.k8s.io",
      "scheduling.k8s.io",
      "storage.k8s.io",
      "storagemigration.k8s.io",
  };
  return std::find(std::begin(kBuiltin), std::end(kBuiltin), group) != std::end(kBuiltin);
}

std::string describe(const Object& o) {
  std::string group = o.group();
  std::string what = group.empty() ? o.kind : group + "/" + o.kind;
  what += " ";
  if (!o.namespace_.empty()) what += o.namespace_ + "/";
  return what + o.name;
}

}  // namespace

int apply_rank(std::string_view group, std::string_view kind) {
  for (int i = 0; i < kEarlyCount; ++i) {
    if (kEarly[i].group == group && kEarly[i].kind == kind) return i;
  }
  for (int i = 0; i < static_cast<int>(std::size(kLate)); ++i) {
    if (kLate[i].group == group && kLate[i].kind == kind) return kLateStart + i;
  }
  return is_builtin_group(group) ? kOtherBuiltinRank : kCustomResourceRank;
}

Expected<std::vector<Object>> order_objects(std::vector<Object> objects) {
  // An object that appears twice would be applied twice, the second silently winning.
  std::unordered_map<std::string, size_t> seen;
  for (size_t i = 0; i < objects.size(); ++i) {
    const Object& o = objects[i];
    std::string key = o.group() + '\n' + o.kind + '\n' + o.namespace_ + '\n' + o.name;
    auto [it, inserted] = seen.emplace(std::move(key), i);
    if (!inserted) {
      return make_error(Errc::conflict, "duplicate object " + describe(o) + ": at " +
                                            objects[it->second].source + " and at " + o.source);
    }
  }
  std::vector<std::pair<int, size_t>> order;
  order.reserve(objects.size());
  for (size_t i = 0; i < objects.size(); ++i) {
    order.emplace_back(apply_rank(objects[i].group(), objects[i].kind), i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Object> sorted;
  sorted.reserve(objects.size());
  for (const auto& [rank, index] : order) sorted.push_back(std::move(objects[index]));
  return sorted;
}

}  // namespace sovdev::yaml
