#include "hub/commands.hpp"

#include <sys/stat.h>
#include <unistd.h>

namespace sovdev::hub {

std::FILE* summary_stream(const std::string& out) {
  if (out == "-") return stderr;
  struct stat to {};
  struct stat standard {};
  const bool same = ::stat(out.c_str(), &to) == 0 && ::fstat(STDOUT_FILENO, &standard) == 0 &&
                    to.st_dev == standard.st_dev && to.st_ino == standard.st_ino;
  return same ? stderr : stdout;
}

int main(int argc, char** argv) {
  auto app = std::make_unique<CLI::App>(
      "sovdev-hub: builds, signs and publishes SovDev stack bundles for the fleet's agents.",
      "sovdev-hub");
  app->set_version_flag("--version", cli::version_line("sovdev-hub"));
  app->require_subcommand(1);
  cli::Commands commands;
  add_keygen(*app, commands);
  add_trust(*app, commands);
  add_build(*app, commands);
  add_render(*app, commands);
  add_inspect(*app, commands);
  add_publish(*app, commands);
  add_serve(*app, commands);
  add_fleet_status(*app, commands);
  add_secret(*app, commands);
  add_agents(*app, commands);
  add_rollout(*app, commands);
  add_revoke(*app, commands);
  add_window(*app, commands);
  return cli::run(std::move(app), std::move(commands), argc, argv);
}

}  // namespace sovdev::hub
