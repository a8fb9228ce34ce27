// retry: forgets that bundles failed here, so the agent tries them again.
#include <cstdio>

#include "agent/commands.hpp"
#include "agent/config.hpp"
#include "common/hex.hpp"
#include "common/text.hpp"
#include "platform/store/agent_cache.hpp"
#include "platform/store/failed_bundles.hpp"

namespace sovdev::agent {
namespace {

struct RetryOptions {
  std::string config;
  std::string state;
  std::string stack;
};

Status retry(const RetryOptions& o) {
  std::string state = o.state;
  if (state.empty()) {
    SOVDEV_ASSIGN(AgentConfig config, load_config(o.config));
    state = config.state_dir;
  }
  SOVDEV_ASSIGN(store::Database db, open_state(state, false));
  store::FailedBundles failed(db);
  SOVDEV_ASSIGN(auto list, failed.list());
  size_t named = 0;
  for (const auto& f : list) {
    if (!o.stack.empty() && f.stack != o.stack) continue;
    named++;
    std::printf("%s@%llu (%s) failed at %s: %s\n", f.stack.c_str(),
                static_cast<unsigned long long>(f.version), to_hex(f.digest).substr(0, 16).c_str(),
                utc_time(f.failed_at).c_str(), f.reason.c_str());
  }
  SOVDEV_ASSIGN(const int64_t cleared, failed.clear(o.stack));
  if (named == 0) {
    std::printf("no failed bundles%s: nothing to retry\n",
                o.stack.empty() ? "" : (" of stack " + o.stack).c_str());
    return {};
  }
  std::printf(
      "cleared %lld; a running agent tries them again at its next catalog or reconcile, "
      "`sovdev-agent sync --once` or a restart at once\n",
      static_cast<long long>(cleared));
  return {};
}

}  // namespace

void add_retry(CLI::App& app, cli::Commands& commands) {
  auto o = std::make_shared<RetryOptions>();
  auto* cmd = app.add_subcommand(
      "retry",
      "Forget that bundles failed here (refused, or rolled back from after a failed health "
      "gate), so the agent applies them again. The agent never retries a failed version by "
      "itself, across restarts too; a newer version clears the older failures on its own");
  auto* config = cmd->add_option("--config", o->config, "Agent configuration file (TOML)")
                     ->check(CLI::ExistingFile);
  auto* state = cmd->add_option("--state", o->state, "Agent state folder (instead of --config)");
  config->excludes(state);
  cmd->add_option("--stack", o->stack, "Only this stack's failures (default: every stack)");
  commands.push_back({cmd, [o] {
                        if (o->config.empty() && o->state.empty()) {
                          return Status(make_error(Errc::usage, "retry needs --config or --state"));
                        }
                        return retry(*o);
                      }});
}

}  // namespace sovdev::agent
