#include "platform/target/target.hpp"

#include "platform/target/dir.hpp"

namespace sovdev::target {

Expected<std::unique_ptr<Target>> make_target(const TargetConfig& config) {
  if (config.kind == TargetKind::dir) return make_dir_target(config.dir);
  return make_error(Errc::invalid,
                    "apply target '" + std::string(target_kind_name(config.kind)) +
                        "' is not supported yet in this build: use target = \"dir\"");
}

}  // namespace sovdev::target
