// status: the fleet as agents last reported it, from hub.db: the service availability matrix
// (service × environment) and one row per agent.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/hex.hpp"
#include "common/text.hpp"
#include "hub/agent_text.hpp"
#include "hub/commands.hpp"
#include "hub/fleet.hpp"

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

json agent_json(const AgentView& a) {
  const pb::AgentStatus& st = a.status;
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
          {"private_bytes", st.private_bytes()},
          {"rss_bytes", st.rss_bytes()},
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
  SOVDEV_ASSIGN(store::Database db, store::open_hub_database(o.db));
  SOVDEV_ASSIGN(FleetView view, load_fleet_view(db));
  if (o.as_json) {
    json agents = json::array();
    for (const auto& a : view.agents) agents.push_back(agent_json(a));
    std::printf("%s\n", json{{"matrix", matrix_json(view)}, {"agents", agents}}.dump(2).c_str());
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
  return {};
}

}  // namespace

void add_fleet_status(CLI::App& app, cli::Commands& commands) {
  auto o = std::make_shared<FleetOptions>();
  auto* cmd = app.add_subcommand(
      "status",
      "The fleet: service availability per environment (from what agents report), then one "
      "row per agent: environment, applied version (both from the published bundle whose "
      "digest the agent reports), state, last seen (the hub's clock), last error");
  cmd->add_option("--db", o->db, "Hub database")->required()->check(CLI::ExistingFile);
  cmd->add_flag("--json", o->as_json,
                "Machine-readable output: {\"matrix\": {environments, services[{service, "
                "title, cells{env: {state, agents, available, message}}}]}, \"agents\": [...]}");
  commands.push_back({cmd, [o] { return fleet_status(*o); }});
}

}  // namespace sovdev::hub
