#include "platform/target/target.hpp"

#include "platform/target/dir.hpp"
#include "platform/target/exec.hpp"

namespace sovdev::target {

void ApplyResult::add_changed(std::string name) {
  applied++;
  if (changed.size() < kNamedChanges) changed.push_back(std::move(name));
}

std::string object_name(const pb::ResourceRecord& object) {
  return object.kind() + " " +
         (object.namespace_().empty() ? object.name() : object.namespace_() + "/" + object.name());
}

std::string drift_summary(const ApplyResult& result, uint32_t objects) {
  std::string out;
  if (!result.changes_known) {
    out = std::to_string(objects) +
          " objects handed to the command again; whether any drifted is unknown (the exec "
          "target cannot tell)";
  } else {
    out = std::to_string(result.applied) + " of " + std::to_string(objects) + " drifted";
    for (size_t i = 0; i < result.changed.size(); i++) {
      out += (i == 0 ? ": " : ", ") + result.changed[i];
    }
    if (result.applied > result.changed.size()) {
      out += " and " + std::to_string(result.applied - result.changed.size()) + " more";
    }
  }
  if (result.pruned > 0) out += ", " + std::to_string(result.pruned) + " pruned";
  return out;
}

Expected<std::unique_ptr<Target>> make_target(const TargetConfig& config) {
  if (config.kind == TargetKind::dir) return make_dir_target(config.dir);
  if (config.kind == TargetKind::exec) return make_exec_target(config.command);
  // kube needs credentials and the agent's cache: agent/apply_target.cpp builds it.
  return make_error(Errc::internal, "apply target '" + std::string(target_kind_name(config.kind)) +
                                        "' is built by the agent, not by make_target");
}

}  // namespace sovdev::target
