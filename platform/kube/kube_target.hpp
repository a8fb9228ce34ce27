// The `kube` apply target: server-side apply of each object over the Kubernetes API, an
// ApplySet (kubectl's applyset.kubernetes.io spelling) per stack with its inventory in SQLite,
// pruning of what a version drops, and a health wait by the kstatus rules.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "platform/kube/api_client.hpp"
#include "platform/store/sqlite.hpp"
#include "platform/target/target.hpp"

namespace sovdev::kube {

struct KubeTargetOptions {
  std::string field_manager = "sovdev-agent";
  // Where each stack's ApplySet parent (a ConfigMap) lives; created when missing.
  std::string applyset_namespace = "sovdev-system";
  std::chrono::milliseconds health_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds crd_timeout{std::chrono::seconds(60)};  // until Established
  std::chrono::milliseconds poll_interval{1000};
};

// Labels and annotations of the ApplySet protocol (KEP-3659) and ours.
inline constexpr const char* kPartOfLabel = "applyset.kubernetes.io/part-of";
inline constexpr const char* kApplySetIdLabel = "applyset.kubernetes.io/id";
inline constexpr const char* kGroupKindsAnnotation = "applyset.kubernetes.io/contains-group-kinds";
inline constexpr const char* kNamespacesAnnotation = "applyset.kubernetes.io/additional-namespaces";
inline constexpr const char* kToolingAnnotation = "applyset.kubernetes.io/tooling";
// An object annotated `sovdev.io/prune: disabled` is left in place when a version drops it.
inline constexpr const char* kPruneAnnotation = "sovdev.io/prune";

// "applyset-<base64url(sha256(name.namespace.ConfigMap.))>-v1", as kubectl computes it.
std::string applyset_id(const std::string& parent_name, const std::string& parent_namespace);

Expected<std::unique_ptr<target::Target>> make_kube_target(store::Database& db,
                                                           std::unique_ptr<ApiClient> api,
                                                           KubeTargetOptions options = {});

}  // namespace sovdev::kube
