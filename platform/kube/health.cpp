#include "platform/kube/health.hpp"

namespace sovdev::kube {
namespace {

using nlohmann::json;

int64_t int_at(const json& j, const json::json_pointer& at, int64_t fallback) {
  if (!j.contains(at)) return fallback;
  const json& v = j.at(at);
  return v.is_number_integer() ? v.get<int64_t>() : fallback;
}

std::string str_at(const json& j, const json::json_pointer& at) {
  if (!j.contains(at)) return {};
  const json& v = j.at(at);
  return v.is_string() ? v.get<std::string>() : std::string();
}

// The condition of that type, or null.
const json* condition(const json& object, const std::string& type) {
  static const json::json_pointer at("/status/conditions");
  if (!object.contains(at) || !object.at(at).is_array()) return nullptr;
  for (const json& c : object.at(at)) {
    if (c.is_object() && c.value("type", "") == type) return &c;
  }
  return nullptr;
}

bool condition_is(const json& object, const std::string& type, const std::string& status) {
  const json* c = condition(object, type);
  return c != nullptr && c->value("status", "") == status;
}

std::string condition_text(const json& c) {
  std::string text = c.value("reason", "");
  const std::string message = c.value("message", "");
  if (!message.empty()) text += (text.empty() ? "" : ": ") + message;
  return text;
}

HealthResult progressing(std::string message) {
  return {Health::in_progress, std::move(message)};
}

HealthResult deployment(const json& o) {
  if (const json* c = condition(o, "Progressing");
      c != nullptr && c->value("reason", "") == "ProgressDeadlineExceeded") {
    return {Health::failed, "rollout failed: " + condition_text(*c)};
  }
  const int64_t want = int_at(o, json::json_pointer("/spec/replicas"), 1);
  const int64_t updated = int_at(o, json::json_pointer("/status/updatedReplicas"), 0);
  const int64_t ready = int_at(o, json::json_pointer("/status/readyReplicas"), 0);
  const int64_t available = int_at(o, json::json_pointer("/status/availableReplicas"), 0);
  const int64_t total = int_at(o, json::json_pointer("/status/replicas"), 0);
  if (updated < want) {
    return progressing(std::to_string(updated) + " of " + std::to_string(want) +
                       " replicas updated");
  }
  if (total > updated) {
    return progressing(std::to_string(total - updated) + " old replicas pending termination");
  }
  if (available < want || ready < want) {
    return progressing(std::to_string(ready) + " of " + std::to_string(want) + " replicas ready");
  }
  return {};
}

HealthResult stateful_set(const json& o) {
  const int64_t want = int_at(o, json::json_pointer("/spec/replicas"), 1);
  const int64_t ready = int_at(o, json::json_pointer("/status/readyReplicas"), 0);
  const int64_t current = int_at(o, json::json_pointer("/status/currentReplicas"), want);
  const int64_t updated = int_at(o, json::json_pointer("/status/updatedReplicas"), want);
  if (ready < want) {
    return progressing(std::to_string(ready) + " of " + std::to_string(want) + " replicas ready");
  }
  const std::string strategy = str_at(o, json::json_pointer("/spec/updateStrategy/type"));
  if (strategy.empty() || strategy == "RollingUpdate") {
    if (updated < want) {
      return progressing(std::to_string(updated) + " of " + std::to_string(want) +
                         " replicas updated");
    }
    const std::string cur = str_at(o, json::json_pointer("/status/currentRevision"));
    const std::string upd = str_at(o, json::json_pointer("/status/updateRevision"));
    if (!upd.empty() && cur != upd) return progressing("rolling out revision " + upd);
    (void)current;
  }
  return {};
}

HealthResult daemon_set(const json& o) {
  const int64_t desired = int_at(o, json::json_pointer("/status/desiredNumberScheduled"), -1);
  if (desired < 0) return progressing("not scheduled yet");
  const int64_t updated = int_at(o, json::json_pointer("/status/updatedNumberScheduled"), 0);
  const int64_t ready = int_at(o, json::json_pointer("/status/numberReady"), 0);
  const int64_t available = int_at(o, json::json_pointer("/status/numberAvailable"), 0);
  if (updated < desired) {
    return progressing(std::to_string(updated) + " of " + std::to_string(desired) +
                       " pods updated");
  }
  if (ready < desired || available < desired) {
    return progressing(std::to_string(ready) + " of " + std::to_string(desired) + " pods ready");
  }
  return {};
}

HealthResult job(const json& o) {
  if (const json* c = condition(o, "Failed"); c != nullptr && c->value("status", "") == "True") {
    return {Health::failed, "job failed: " + condition_text(*c)};
  }
  if (condition_is(o, "Complete", "True")) return {};
  return progressing("job not complete");
}

HealthResult crd(const json& o) {
  if (condition_is(o, "Established", "True")) return {};
  if (const json* c = condition(o, "NamesAccepted");
      c != nullptr && c->value("status", "") == "False") {
    return {Health::failed, "names not accepted: " + condition_text(*c)};
  }
  return progressing("not established yet");
}

}  // namespace

HealthResult assess(const json& o) {
  if (!o.is_object()) return {Health::failed, "not an object"};
  // A controller that has not seen the newest spec has not acted on it yet.
  const json::json_pointer generation("/metadata/generation"),
      observed("/status/observedGeneration");
  if (o.contains(generation) && o.contains(observed) &&
      int_at(o, observed, 0) < int_at(o, generation, 0)) {
    return progressing("generation " + std::to_string(int_at(o, generation, 0)) +
                       " not observed yet");
  }
  const std::string api_version = o.value("apiVersion", "");
  const std::string kind = o.value("kind", "");
  const std::string group =
      api_version.substr(0, api_version.find('/') == std::string::npos ? 0 : api_version.find('/'));
  if (group == "apps" && kind == "Deployment") return deployment(o);
  if (group == "apps" && kind == "StatefulSet") return stateful_set(o);
  if (group == "apps" && kind == "DaemonSet") return daemon_set(o);
  if (group == "batch" && kind == "Job") return job(o);
  if (group == "apiextensions.k8s.io" && kind == "CustomResourceDefinition") return crd(o);
  // Everything else is current once the API server has accepted it.
  return {};
}

}  // namespace sovdev::kube
