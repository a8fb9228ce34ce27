// status: the fleet as agents last reported it, from hub.db: the service availability matrix
// (service × environment) and one row per agent.
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/hex.hpp"
#include "common/text.hpp"
#include "hub/agent_text.hpp"
#include "hub/commands.hpp"
#include "hub/fleet.hpp"
#include "hub/rollout/view.hpp"
#include "platform/store/migrate.hpp"

namespace sovdev::hub {
namespace {

using nlohmann::json;

struct FleetOptions {
  std::string db;
  bool as_json = false;
};

// Every string an agent supplied goes out through visible_text(): a status is anyone's to
// write who holds the agent's broker account, and the operator's terminal must not obey it.
std::string shown(std::string_view agent_text) {
  return visible_text(agent_text);
}

// Read-only, like `sovdev-agent status`: it works on a read-only folder, on a copy or as another
// user (hub.db is its owner's alone), and never changes what it reports on. Only a hub.db an
// older hub left at an older schema is opened for writing, to migrate it; where that is not
// allowed the message says what to do.
Expected<store::Database> open_for_reading(const std::string& path) {
  auto db = store::open_hub_reader(path);
  if (!db) return std::move(db).error().context("open hub database");
  SOVDEV_ASSIGN(const int64_t version, store::schema_version(*db));
  const auto known = static_cast<int64_t>(store::migrations(store::Schema::hub).size());
  if (version == known) return db;
  if (version > known) {
    return make_error(Errc::store, path + " was written by a newer sovdev-hub (schema " +
                                       std::to_string(version) + ", this one reads up to " +
                                       std::to_string(known) + "): use that hub's status");
  }
  auto migrated = store::open_hub_database(path);
  if (!migrated) {
    return make_error(migrated.error().code,
                      path + " was written by an older sovdev-hub (schema " +
                          std::to_string(version) + ", this one reads " + std::to_string(known) +
                          ") and cannot be migrated here: " + migrated.error().message +
                          " (run `sovdev-hub status` once as the hub's user)");
  }
  return migrated;
}

json agent_json(const AgentView& a) {
  const pb::AgentStatus& st = a.status;
  json labels = json::object();
  for (const auto& [key, value] : st.labels()) labels[shown(key)] = shown(value);
  json services = json::object();
  for (const auto& s : st.services()) {
    services[shown(s.service())] = {{"state", shown(s.state())}, {"message", shown(s.message())}};
  }
  // Environment, stack and version are the published bundle's, never the agent's claim.
  return {{"agent", shown(st.agent_id())},
          {"channel", shown(st.channel())},
          {"environment", a.environment},
          {"stack", a.stack},
          {"applied_version", a.version},
          {"applied_digest", to_hex(a.digest)},
          {"bundle", a.known_bundle ? "published" : std::string(a.environment)},
          {"state", shown(st.state())},
          {"last_seen", utc_time(a.last_seen)},
          {"last_error", shown(st.last_error())},
          {"bytes_fetched", st.bytes_fetched()},
          {"last_fetch_ms", st.last_fetch_ms()},
          {"last_fetch_bytes", st.last_fetch_bytes()},
          {"last_fetch_delta", st.last_fetch_delta()},
          {"rejected_messages", st.rejected_messages()},
          {"dropped_messages", st.dropped_messages()},
          {"oversize_messages", st.oversize_messages()},
          {"private_bytes", st.private_bytes()},
          {"rss_bytes", st.rss_bytes()},
          {"labels", labels},
          {"rollout_id", st.rollout_id()},
          {"failed_version", st.failed_version()},
          {"window_opens_at", st.window_opens_at() ? json(utc_time(st.window_opens_at())) : json()},
          {"services", services}};
}

json matrix_json(const FleetView& view) {
  json rows = json::array();
  for (const auto& row : view.rows) {
    json cells = json::object();
    for (const auto& env : view.environments) {
      const auto it = row.cells.find(env);
      const Cell cell = it == row.cells.end() ? Cell{} : it->second;
      cells[env] = {{"state", cell.state.empty() ? "absent" : shown(cell.state)},
                    {"agents", cell.agents},
                    {"available", cell.good},
                    {"message", shown(cell.message)}};
    }
    rows.push_back(
        {{"service", shown(row.service)}, {"title", shown(row.title)}, {"cells", cells}});
  }
  return {{"environments", view.environments}, {"services", rows}};
}

void print_matrix(const FleetView& view) {
  if (view.rows.empty()) return;
  std::printf("%-13s", "SERVICE");
  for (const auto& env : view.environments) std::printf(" %-14s", env.c_str());
  std::printf("\n");
  for (const auto& row : view.rows) {
    std::printf("%-13s", shown(row.title).c_str());
    for (const auto& env : view.environments) {
      const auto it = row.cells.find(env);
      std::printf(" %-14s", it == row.cells.end() ? "-" : shown(it->second.text()).c_str());
    }
    std::printf("\n");
  }
  std::printf("\n");
}

Status fleet_status(const FleetOptions& o) {
  SOVDEV_ASSIGN(store::Database db, open_for_reading(o.db));
  SOVDEV_ASSIGN(FleetView view, load_fleet_view(db));
  SOVDEV_ASSIGN(const auto rollouts,
                rollout::load_current_rollouts(db, static_cast<int64_t>(std::time(nullptr))));
  if (o.as_json) {
    json agents = json::array();
    for (const auto& a : view.agents) agents.push_back(agent_json(a));
    json rollout_list = json::array();
    for (const auto& r : rollouts) rollout_list.push_back(rollout::rollout_json(r));
    std::printf("%s\n",
                json{{"matrix", matrix_json(view)}, {"agents", agents}, {"rollouts", rollout_list}}
                    .dump(2)
                    .c_str());
    return {};
  }
  print_matrix(view);
  std::printf("%-20s %-8s %-14s %-8s %-12s %-21s %-8s %s\n", "AGENT", "ENV", "STACK", "VERSION",
              "STATE", "LAST SEEN", "REJECTED", "LAST ERROR");
  for (const auto& a : view.agents) {
    const pb::AgentStatus& st = a.status;
    std::printf("%-20s %-8s %-14s %-8llu %-12s %-21s %-8llu %s\n", shown(st.agent_id()).c_str(),
                a.environment.c_str(), a.stack.c_str(), static_cast<unsigned long long>(a.version),
                shown(st.state()).c_str(), utc_time(a.last_seen).c_str(),
                static_cast<unsigned long long>(st.rejected_messages()),
                shown(st.last_error()).c_str());
  }
  if (view.agents.empty()) std::printf("(no agent has reported yet)\n");
  for (const auto& r : rollouts) {
    std::printf("\n");
    rollout::print_rollout(stdout, r);
  }
  return {};
}

}  // namespace

void add_fleet_status(CLI::App& app, cli::Commands& commands) {
  auto o = std::make_shared<FleetOptions>();
  auto* cmd = app.add_subcommand(
      "status",
      "The fleet: service availability per environment (from what agents report), then one "
      "row per agent: environment, applied version (both from the published bundle whose "
      "digest the agent reports), state, last seen (the hub's clock), last error; then each "
      "stack's newest rollout wave by wave");
  cmd->add_option("--db", o->db, "Hub database")->required()->check(CLI::ExistingFile);
  cmd->add_flag("--json", o->as_json,
                "Machine-readable output: {\"matrix\": {environments, services[{service, "
                "title, cells{env: {state, agents, available, message}}}]}, \"agents\": [...], "
                "\"rollouts\": [the newest of each stack, with its waves' counts]}");
  commands.push_back({cmd, [o] { return fleet_status(*o); }});
}

}  // namespace sovdev::hub
