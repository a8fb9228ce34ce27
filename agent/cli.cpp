#include <filesystem>

#include "agent/commands.hpp"
#include "platform/fs/files.hpp"
#include "platform/store/agent_cache.hpp"

namespace sovdev::agent {

std::string database_path(const std::string& state_dir) {
  return state_dir + "/agent.db";
}

Expected<store::Database> open_state(const std::string& state_dir, bool create) {
  if (!create && !std::filesystem::exists(database_path(state_dir))) {
    return make_error(Errc::not_found, "no agent state in " + state_dir +
                                           " (import a bundle or run the agent first)");
  }
  if (create) SOVDEV_TRY(fs::make_dirs(state_dir, 0700));
  auto db = store::open_agent_database(database_path(state_dir));
  if (!db) return std::move(db).error().context("open agent cache");
  return db;
}

int main(int argc, char** argv) {
  auto app = std::make_unique<CLI::App>(
      "sovdev-agent: keeps one cluster on the SovDev stack its hub publishes, "
      "verifying and caching every bundle so the site runs offline.",
      "sovdev-agent");
  app->set_version_flag("--version", cli::version_line("sovdev-agent"));
  app->require_subcommand(1);
  cli::Commands commands;
  add_verify(*app, commands);
  add_import(*app, commands);
  add_status(*app, commands);
  add_run(*app, commands);
  add_check_config(*app, commands);
  add_apply(*app, commands);
  add_retry(*app, commands);
  add_keygen(*app, commands);
  add_images(*app, commands);
  return cli::run(std::move(app), std::move(commands), argc, argv);
}

}  // namespace sovdev::agent
