#include "platform/target/target.hpp"

#include "platform/target/dir.hpp"
#include "platform/target/exec.hpp"

namespace sovdev::target {

Expected<std::unique_ptr<Target>> make_target(const TargetConfig& config) {
  if (config.kind == TargetKind::dir) return make_dir_target(config.dir);
  if (config.kind == TargetKind::exec) return make_exec_target(config.command);
  // kube needs credentials and the agent's cache: agent/apply_target.cpp builds it.
  return make_error(Errc::internal, "apply target '" + std::string(target_kind_name(config.kind)) +
                                        "' is built by the agent, not by make_target");
}

}  // namespace sovdev::target
