#include "agent/apply_target.hpp"

#include "platform/kube/kube_target.hpp"
#include "platform/kube/kubeconfig.hpp"

namespace sovdev::agent {

Expected<std::unique_ptr<target::Target>> make_apply_target(store::Database& db,
                                                            const ApplyConfig& apply) {
  if (apply.target.kind != target::TargetKind::kube) return target::make_target(apply.target);
  auto credentials = apply.target.kubeconfig.empty()
                         ? kube::load_in_cluster()
                         : kube::load_kubeconfig(apply.target.kubeconfig, apply.target.context);
  if (!credentials) return std::move(credentials).error().context("kube target");
  SOVDEV_ASSIGN(auto api, kube::ApiClient::create(*credentials));
  kube::KubeTargetOptions options;
  options.health_timeout = apply.health_timeout;
  return kube::make_kube_target(db, std::move(api), options);
}

}  // namespace sovdev::agent
