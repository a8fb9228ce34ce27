// apply: the newest verified bundle in the cache onto the configured target, with no broker —
// after `sovdev-agent import` on a box that has never seen the hub, or to re-apply by hand.
#include <chrono>
#include <cstdio>

#include "agent/apply_target.hpp"
#include "agent/commands.hpp"
#include "agent/config.hpp"
#include "agent/daemon.hpp"
#include "agent/trust_pin.hpp"
#include "platform/mqtt/offline_client.hpp"

namespace sovdev::agent {
namespace {

struct ApplyOptions {
  std::string config;
};

Status apply(const ApplyOptions& o) {
  SOVDEV_ASSIGN(AgentConfig config, load_config(o.config));
  SOVDEV_ASSIGN(store::Database db, open_state(config.state_dir, true));
  SOVDEV_ASSIGN(TrustPolicy trust, pinned_trust(db, config.trust_root));
  SOVDEV_ASSIGN(auto target, make_apply_target(db, config.apply));
  auto offline = mqtt::make_offline_client();
  DaemonSettings settings;
  settings.fetch.agent_id = config.agent_id;
  settings.fetch.prefix = config.broker.topic_prefix;
  settings.fetch.install = {config.channels.size() == 1 ? config.channels.front() : std::string(),
                            config.arch};
  settings.fetch.work_dir = config.state_dir + "/work";
  settings.channels = config.channels;
  settings.stacks = config.stacks;
  settings.reconcile_interval_ms = 0;
  Daemon daemon(db, trust, *offline, *target, settings);
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  SOVDEV_TRY(daemon.apply_cached(now));
  if (daemon.failure()) return *daemon.failure();
  std::printf("%s: %s, stack %s v%llu\n", config.agent_id.c_str(), daemon.status().state().c_str(),
              daemon.status().stack().c_str(),
              static_cast<unsigned long long>(daemon.status().applied_version()));
  return {};
}

}  // namespace

void add_apply(CLI::App& app, cli::Commands& commands) {
  auto o = std::make_shared<ApplyOptions>();
  auto* cmd = app.add_subcommand(
      "apply",
      "Apply the newest verified cached bundle of each stack to the configured target, "
      "offline (no broker); rolls back to the last good one on failure");
  cmd->add_option("--config", o->config, "Agent configuration file (TOML)")
      ->required()
      ->check(CLI::ExistingFile);
  commands.push_back({cmd, [o] { return apply(*o); }});
}

}  // namespace sovdev::agent
