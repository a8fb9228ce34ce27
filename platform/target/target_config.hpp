// Which apply target the agent drives and its settings. Kept apart from target.hpp so the
// config parser can name a target without pulling in the targets or the protobuf types.
#pragma once

#include <string>
#include <string_view>

namespace sovdev::target {

enum class TargetKind { dir, kube, exec };

constexpr std::string_view target_kind_name(TargetKind kind) {
  switch (kind) {
    case TargetKind::dir: return "dir";
    case TargetKind::kube: return "kube";
    case TargetKind::exec: return "exec";
  }
  return "unknown";
}

struct TargetConfig {
  TargetKind kind = TargetKind::dir;
  std::string dir = "/var/lib/rancher/k3s/server/manifests";  // for dir
  std::string command;                                        // for exec
  std::string kubeconfig;                                     // for kube; empty: in-cluster
  std::string context;                                        // for kube; empty: current
};

}  // namespace sovdev::target
