// `sovdev-agent check-config FILE`: validates a config without starting the agent.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "agent/commands.hpp"
#include "agent/config.hpp"

namespace sovdev::agent {
namespace {

Status check_config(const std::string& file) {
  auto config = load_config(file);
  if (!config) {
    if (config.error().code != Errc::invalid) return std::move(config).error();
    // One "FILE:LINE: what" line per problem, as compilers print them, then the verdict.
    const std::string& problems = config.error().message;
    std::fprintf(stderr, "%s\n", problems.c_str());
    const auto count = 1 + std::count(problems.begin(), problems.end(), '\n');
    return make_error(Errc::invalid, file + " is not valid (" + std::to_string(count) +
                                         (count == 1 ? " problem" : " problems") +
                                         "): the agent would refuse to start");
  }
  std::printf("%s%s", describe_config(*config).c_str(), describe_rollout_config(*config).c_str());
  const auto& target = config->apply.target;
  std::error_code ec;
  if (target.kind == target::TargetKind::dir && !std::filesystem::is_directory(target.dir, ec)) {
    std::fprintf(stderr,
                 "note: apply.dir %s does not exist yet: the agent caches bundles but cannot "
                 "apply them until it does (k3s and RKE2 create it on server nodes)\n",
                 target.dir.c_str());
  }
  return {};
}

}  // namespace

void add_check_config(CLI::App& app, cli::Commands& commands) {
  auto file = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "check-config",
      "Validate an agent config file without starting the agent, and print the effective "
      "settings with every default filled in");
  cmd->add_option("file", *file, "The agent's TOML config file")->required();
  commands.push_back({cmd, [file] { return check_config(*file); }});
}

}  // namespace sovdev::agent
