// Whether an applied object is healthy, by the kstatus rules (sigs.k8s.io/cli-utils): the
// controller has seen the newest generation, and the kinds with a rollout have finished it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace sovdev::kube {

enum class Health { current, in_progress, failed };

struct HealthResult {
  Health state = Health::current;
  std::string message;  // why it is not current, for the status and the rollback reason
};

// `object` as the API server returns it (metadata, spec, status).
HealthResult assess(const nlohmann::json& object);

}  // namespace sovdev::kube
