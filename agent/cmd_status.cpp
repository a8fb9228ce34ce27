#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "agent/commands.hpp"
#include "bundles/trust.hpp"
#include "common/hex.hpp"
#include "common/text.hpp"
#include "platform/store/agent_cache.hpp"
#include "platform/store/migrate.hpp"
#include "platform/store/rollout_marks.hpp"

namespace sovdev::agent {
namespace {

using nlohmann::json;

struct StatusOptions {
  std::string state;
  bool as_json = false;
};

// Read-only, so `status` works on a read-only state folder, on a copy, or as another user, and
// never changes what it reports on. Only a cache an older agent left at an older schema is
// opened for writing, to migrate it; where that is not allowed the message says what to do.
Expected<store::Database> open_for_reading(const std::string& state) {
  const std::string path = database_path(state);
  if (!std::filesystem::exists(path)) {
    return make_error(Errc::not_found,
                      "no agent state in " + state + " (import a bundle or run the agent first)");
  }
  store::OpenOptions options;
  options.create = false;
  options.read_only = true;
  auto db = store::Database::open(path, options);
  if (!db) return std::move(db).error().context("open agent cache");
  SOVDEV_ASSIGN(const int64_t version, store::schema_version(*db));
  const auto known = static_cast<int64_t>(store::migrations(store::Schema::agent).size());
  if (version == known) return db;
  if (version > known) {
    return make_error(Errc::store, path + " was written by a newer sovdev-agent (schema " +
                                       std::to_string(version) + ", this one reads up to " +
                                       std::to_string(known) + "): use that agent's status");
  }
  auto migrated = open_state(state, false);
  if (!migrated) {
    return make_error(migrated.error().code,
                      path + " was written by an older sovdev-agent (schema " +
                          std::to_string(version) + ", this one reads " + std::to_string(known) +
                          ") and cannot be migrated here: " + migrated.error().message +
                          " (run `sovdev-agent status` once as the agent's user)");
  }
  return migrated;
}

// A stack's figures within one channel: rollback protection and "newest held" are per
// (channel, stack), so a bundle of another channel (imported by hand, or left from before the
// agent's channel changed) never shows as this channel's newest. The entry of the channel of
// the stack's last good bundle, or of its only channel, is keyed by the stack's name, as
// before channels were told apart; any other is keyed "channel/stack" (a stack name holds no
// '/'). The apply log is kept per stack: an entry lists what was applied of its channel's
// bundles, and what is no longer cached.
Expected<json> per_channel(store::Database& db, const std::vector<store::BundleInfo>& bundles) {
  std::map<std::string, std::set<std::string>> channels;  // stack → the channels holding it
  std::map<std::string, std::string> channel_of;          // digest → channel
  for (const auto& b : bundles) {
    channels[b.stack].insert(b.channel);
    channel_of[b.digest] = b.channel;
  }
  store::BundleCache cache(db);
  store::ApplyLog log(db);
  json out = json::object();
  for (const auto& [stack, held] : channels) {
    SOVDEV_ASSIGN(auto good, log.last_good(stack));
    SOVDEV_ASSIGN(auto history, log.history(stack, 5));
    std::string home = held.size() == 1 ? *held.begin() : std::string();
    if (good && channel_of.count(good->digest)) home = channel_of[good->digest];
    for (const auto& channel : held) {
      SOVDEV_ASSIGN(auto highest, cache.highest_verified(channel, stack));
      const bool is_home = channel == home;
      json recent = json::array();
      for (const auto& e : history) {
        const auto c = channel_of.find(e.digest);
        if (c != channel_of.end() && c->second != channel) continue;
        recent.push_back({{"version", e.version},
                          {"result", e.result},
                          {"message", e.message},
                          {"at", utc_time(e.at)}});
      }
      out[is_home ? stack : channel + "/" + stack] = {
          {"stack", stack},
          {"channel", channel},
          {"last_good", good && is_home
                            ? json{{"version", good->version}, {"digest", to_hex(good->digest)}}
                            : json(nullptr)},
          {"newest_verified", highest ? json(highest->version) : json(nullptr)},
          {"recent", recent}};
    }
  }
  return out;
}

Expected<json> collect(store::Database& db) {
  json out;
  store::TrustHistory trust(db);
  SOVDEV_ASSIGN(auto root, trust.latest());
  out["trust_root_version"] = root ? json(root->version) : json(nullptr);

  store::BundleCache cache(db);
  SOVDEV_ASSIGN(auto bundles, cache.list());
  json list = json::array();
  for (const auto& b : bundles) {
    list.push_back({{"stack", b.stack},
                    {"channel", b.channel},
                    {"version", b.version},
                    {"digest", to_hex(b.digest)},
                    {"state", store::state_name(b.state)},
                    {"chunks", b.chunk_count},
                    {"payload_size", b.payload_size}});
  }
  out["bundles"] = list;
  SOVDEV_ASSIGN(out["stacks"], per_channel(db, bundles));
  // Staged rollouts: each version applied under a rollout, and the version before it (what an
  // aborted rollout with revert goes back to while the mark is open).
  SOVDEV_ASSIGN(auto marks, store::RolloutMarks(db).list());
  json rollouts = json::array();
  for (const auto& m : marks) {
    rollouts.push_back({{"stack", m.stack},
                        {"rollout", m.rollout_id},
                        {"version", m.version},
                        {"state", m.state},
                        {"before", m.prior ? json{{"version", m.prior->version},
                                                  {"digest", to_hex(m.prior->digest)}}
                                           : json(nullptr)}});
  }
  out["rollout_marks"] = rollouts;
  return out;
}

void print_human(const json& s) {
  std::printf("trust root: %s\n", s["trust_root_version"].is_null()
                                      ? "none pinned"
                                      : ("v" + s["trust_root_version"].dump()).c_str());
  if (s["bundles"].empty()) std::printf("bundles: none cached\n");
  for (const auto& b : s["bundles"]) {
    std::printf("bundle %s@%s  channel %-10s %-9s %s  %s\n", b["stack"].get<std::string>().c_str(),
                b["version"].dump().c_str(), b["channel"].get<std::string>().c_str(),
                b["state"].get<std::string>().c_str(),
                human_bytes(b["payload_size"].get<uint64_t>()).c_str(),
                b["digest"].get<std::string>().substr(0, 16).c_str());
  }
  for (const auto& [key, st] : s["stacks"].items()) {
    const std::string stack = st["stack"].get<std::string>();
    const std::string channel = st["channel"].get<std::string>();
    const std::string newest =
        st["newest_verified"].is_null() ? "none" : "v" + st["newest_verified"].dump();
    if (key != stack) {  // held, but not where the stack's last good bundle is
      std::printf(
          "stack %s (channel %s, not the channel of its last good bundle): newest "
          "verified %s\n",
          stack.c_str(), channel.c_str(), newest.c_str());
      continue;
    }
    std::printf("stack %s (channel %s): last good %s, newest verified %s\n", stack.c_str(),
                channel.c_str(),
                st["last_good"].is_null() ? "none (nothing applied yet)"
                                          : ("v" + st["last_good"]["version"].dump()).c_str(),
                newest.c_str());
  }
  for (const auto& m : s["rollout_marks"]) {
    std::printf("rollout %s: %s v%s applied under it (%s), before it %s\n",
                m["rollout"].dump().c_str(), m["stack"].get<std::string>().c_str(),
                m["version"].dump().c_str(), m["state"].get<std::string>().c_str(),
                m["before"].is_null() ? "nothing" : ("v" + m["before"]["version"].dump()).c_str());
  }
}

Status status(const StatusOptions& o) {
  SOVDEV_ASSIGN(store::Database db, open_for_reading(o.state));
  SOVDEV_ASSIGN(json s, collect(db));
  if (o.as_json) {
    std::printf("%s\n", s.dump(2).c_str());
  } else {
    print_human(s);
  }
  return {};
}

}  // namespace

void add_status(CLI::App& app, cli::Commands& commands) {
  auto o = std::make_shared<StatusOptions>();
  auto* cmd = app.add_subcommand("status",
                                 "Show what the cache holds and what is last good (works offline)");
  cmd->add_option("--state", o->state, "Agent state folder")->required();
  cmd->add_flag("--json", o->as_json, "Machine-readable output");
  commands.push_back({cmd, [o] { return status(*o); }});
}

}  // namespace sovdev::agent
