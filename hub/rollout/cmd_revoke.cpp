// `sovdev-hub revoke` (a version refused everywhere, signed by the targets role) and
// `sovdev-hub window` (the hub's maintenance windows). Both only write hub.db: `serve` puts them
// in the channel's catalog within a tick.
#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

#include "common/hex.hpp"
#include "common/text.hpp"
#include "hub/commands.hpp"
#include "hub/key_files.hpp"
#include "hub/rollout/operations.hpp"
#include "hub/rollout/options.hpp"
#include "platform/store/hub_store.hpp"

namespace sovdev::hub {
namespace {

using namespace rollout;

struct RevokeOptions {
  std::string db, channel, stack, reason, trust;
  std::uint64_t version = 0;
  std::vector<std::string> keys;
};

Status revoke(const RevokeOptions& o) {
  RevokeRequest req{o.channel, o.stack, o.version, o.reason, {}};
  if (o.trust.empty()) {
    SOVDEV_ASSIGN(req.keys, load_secret_keys(o.keys));
  } else {
    SOVDEV_ASSIGN(const TrustPolicy trust, load_trust_file(o.trust));
    SOVDEV_ASSIGN(req.keys, load_role_keys(o.keys, trust, TrustRole::targets, "revoke"));
  }
  SOVDEV_ASSIGN(store::Database db, store::open_hub_database(o.db));
  SOVDEV_ASSIGN(const pb::RevocationList list, revoke_version(db, req, unix_now()));
  std::printf(
      "revoked %s/%s@%llu: revocation list of %s serial %llu, %d version(s); serve "
      "publishes it with the channel's catalog within a tick\n",
      o.channel.c_str(), o.stack.c_str(), static_cast<unsigned long long>(o.version),
      o.channel.c_str(), static_cast<unsigned long long>(list.serial()), list.revoked_size());
  return {};
}

struct WindowOptions {
  std::string db;
  store::HubWindow window;
  std::string kind = "allow";
  std::uint64_t id = 0;
  bool as_json = false;
};

Status window_add(WindowOptions o) {
  o.window.deny = o.kind == "deny";
  SOVDEV_ASSIGN(store::Database db, store::open_hub_database(o.db));
  SOVDEV_ASSIGN(const std::uint64_t id, rollout::add_window(db, o.window, unix_now()));
  std::printf("window %llu added: %s \"%s\" for %s, agents %s; serve publishes it within a tick\n",
              static_cast<unsigned long long>(id), o.kind.c_str(), o.window.schedule.c_str(),
              o.window.duration.c_str(),
              o.window.selector.empty() ? "all" : ("matching " + o.window.selector).c_str());
  return {};
}

Status window_list(const WindowOptions& o) {
  SOVDEV_ASSIGN(store::Database db, store::open_hub_database(o.db));
  SOVDEV_ASSIGN(const auto windows, store::HubWindows(db).list());
  if (o.as_json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& w : windows) {
      out.push_back({{"id", w.id},
                     {"channel", w.channel.empty() ? "*" : w.channel},
                     {"selector", w.selector},
                     {"kind", w.deny ? "deny" : "allow"},
                     {"schedule", w.schedule},
                     {"duration", w.duration},
                     {"zone", w.zone},
                     {"created_at", utc_time(w.created_at)}});
    }
    std::printf("%s\n", nlohmann::json{{"windows", out}}.dump(2).c_str());
    return {};
  }
  std::printf("%-5s %-12s %-6s %-18s %-9s %-18s %s\n", "ID", "CHANNEL", "KIND", "SCHEDULE",
              "DURATION", "ZONE", "SELECTOR");
  for (const auto& w : windows) {
    std::printf("%-5llu %-12s %-6s %-18s %-9s %-18s %s\n", static_cast<unsigned long long>(w.id),
                w.channel.empty() ? "*" : w.channel.c_str(), w.deny ? "deny" : "allow",
                w.schedule.c_str(), w.duration.c_str(), w.zone.c_str(),
                w.selector.empty() ? "*" : w.selector.c_str());
  }
  if (windows.empty()) std::printf("(no window: agents follow their own config)\n");
  return {};
}

Status window_remove(const WindowOptions& o) {
  SOVDEV_ASSIGN(store::Database db, store::open_hub_database(o.db));
  SOVDEV_ASSIGN(const bool removed, store::HubWindows(db).remove(o.id));
  if (!removed) {
    return make_error(Errc::not_found,
                      "no window " + std::to_string(o.id) + " (sovdev-hub window list shows them)");
  }
  std::printf("window %llu removed; serve publishes the change within a tick\n",
              static_cast<unsigned long long>(o.id));
  return {};
}

}  // namespace

void add_revoke(CLI::App& app, cli::Commands& commands) {
  auto o = std::make_shared<RevokeOptions>();
  auto* cmd = app.add_subcommand(
      "revoke",
      "Revoke a published version: agents never fetch, apply or roll back to it. Signs the "
      "channel's next revocation list (targets key) into hub.db");
  cmd->add_option("--db", o->db, "Hub database")->required()->check(CLI::ExistingFile);
  cmd->add_option("--channel", o->channel, "Channel")->required();
  cmd->add_option("--stack", o->stack, "Stack")->required();
  cmd->add_option("--version", o->version, "The published version to revoke")
      ->required()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--reason", o->reason, "Why, shown to operators and in agents' statuses")
      ->required();
  cmd->add_option("--key", o->keys,
                  "Targets secret key file(s): agents take a revocation list signed by the "
                  "targets role only")
      ->required();
  cmd->add_option("--trust", o->trust,
                  "Check first that the keys are targets keys of this trust root")
      ->check(CLI::ExistingFile);
  commands.push_back({cmd, [o] { return revoke(*o); }});
}

void add_window(CLI::App& app, cli::Commands& commands) {
  auto* window = app.add_subcommand(
      "window", "The hub's maintenance windows: when matching agents may change version");
  window->require_subcommand(1);

  auto a = std::make_shared<WindowOptions>();
  auto* add_cmd = window->add_subcommand("add", "Add an allow or deny window");
  add_cmd->add_option("--db", a->db, "Hub database")->required()->check(CLI::ExistingFile);
  add_cmd->add_option("--channel", a->window.channel, "Channel (default: every channel)");
  add_cmd->add_option("--selector", a->window.selector,
                      "Agents it applies to, e.g. site=plant-7 (default: all)");
  add_cmd->add_option("--kind", a->kind, "allow or deny (deny wins)")
      ->capture_default_str()
      ->check(CLI::IsMember({"allow", "deny"}));
  add_cmd
      ->add_option("--schedule", a->window.schedule,
                   "When it opens, as cron: minute hour day-of-month month day-of-week, e.g. "
                   "\"0 2 * * 6\"")
      ->required();
  add_cmd->add_option("--duration", a->window.duration, "How long it stays open, e.g. 4h, 1h30m")
      ->required();
  add_cmd
      ->add_option("--zone", a->window.zone, "IANA time zone of the schedule, e.g. Europe/Berlin")
      ->required();
  commands.push_back({add_cmd, [a] { return window_add(*a); }});

  auto l = std::make_shared<WindowOptions>();
  auto* list_cmd = window->add_subcommand("list", "The hub's windows");
  list_cmd->add_option("--db", l->db, "Hub database")->required()->check(CLI::ExistingFile);
  list_cmd->add_flag("--json", l->as_json, "Machine-readable output");
  commands.push_back({list_cmd, [l] { return window_list(*l); }});

  auto r = std::make_shared<WindowOptions>();
  auto* rm_cmd = window->add_subcommand("remove", "Remove a window by id");
  rm_cmd->add_option("--db", r->db, "Hub database")->required()->check(CLI::ExistingFile);
  rm_cmd->add_option("id", r->id, "Window id (sovdev-hub window list)")->required();
  commands.push_back({rm_cmd, [r] { return window_remove(*r); }});
}

}  // namespace sovdev::hub
