// apply: the newest verified bundle in the cache onto the configured target, with no broker —
// after `sovdev-agent import` on a box that has never seen the hub, or to re-apply by hand.
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>

#include <spdlog/spdlog.h>

#include "agent/apply_target.hpp"
#include "agent/commands.hpp"
#include "agent/config.hpp"
#include "agent/daemon.hpp"
#include "agent/trust_pin.hpp"
#include "platform/mqtt/offline_client.hpp"
#include "platform/store/agent_cache.hpp"

namespace sovdev::agent {
namespace {

struct ApplyOptions {
  std::string config;
};

// Every stack the cache holds a bundle of → its last good version, if any.
using LastGoods = std::map<std::string, std::optional<store::LastGood>>;

Expected<LastGoods> last_goods(store::Database& db) {
  store::BundleCache cache(db);
  store::ApplyLog log(db);
  SOVDEV_ASSIGN(auto bundles, cache.list());
  LastGoods out;
  for (const auto& b : bundles) {
    if (out.count(b.stack) != 0) continue;
    SOVDEV_ASSIGN(out[b.stack], log.last_good(b.stack));
  }
  return out;
}

std::string version_name(const store::LastGood& good) {
  return "v" + std::to_string(good.version);
}

// One line per stack: what this apply changed, or that nothing was due and what runs.
void report(const std::string& agent, const LastGoods& before, const LastGoods& after) {
  if (after.empty()) {
    std::printf(
        "%s: nothing applied, nothing due: the cache holds no bundle (`sovdev-agent import` "
        "carries one in by hand; `sovdev-agent run` fetches them from the hub)\n",
        agent.c_str());
    return;
  }
  for (const auto& [stack, good] : after) {
    const auto it = before.find(stack);
    const std::optional<store::LastGood> was = it == before.end() ? std::nullopt : it->second;
    if (!good) {
      std::printf(
          "%s: %s: nothing applied, nothing due: the cache holds no verified bundle of it\n",
          agent.c_str(), stack.c_str());
    } else if (!was || was->digest != good->digest) {
      std::printf("%s: %s %s applied (%s)\n", agent.c_str(), stack.c_str(),
                  version_name(*good).c_str(),
                  was ? ("before: " + version_name(*was)).c_str() : "nothing was applied before");
    } else {
      std::printf("%s: %s %s is applied; nothing was due (no newer verified bundle in the cache)\n",
                  agent.c_str(), stack.c_str(), version_name(*good).c_str());
    }
  }
}

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
  // As `run` does: a key file that cannot be used stops only the versions with sealed secrets.
  if (auto loaded = shared_agent_key(config.state_dir); !loaded) {
    spdlog::error("{}; bundles with sealed secrets cannot be applied", loaded.error().message);
  } else {
    settings.agent_key = std::move(*loaded);
  }
  Daemon daemon(db, trust, *offline, *target, settings);
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  // A bundle of a channel this agent does not follow is never applied, nor kept as a fallback.
  SOVDEV_ASSIGN(auto forgotten, store::BundleCache(db).forget_other_channels(config.channels));
  for (const auto& f : forgotten) {
    std::printf("%s: forgot cached %s: not a channel this agent follows\n", config.agent_id.c_str(),
                f.c_str());
  }
  SOVDEV_ASSIGN(const LastGoods before, last_goods(db));
  SOVDEV_TRY(daemon.apply_cached(now));
  // A failed apply, or a version waiting for its epoch key (offline, nothing will bring it).
  if (auto unmet = daemon.unmet()) return *unmet;
  SOVDEV_ASSIGN(const LastGoods after, last_goods(db));
  report(config.agent_id, before, after);
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
