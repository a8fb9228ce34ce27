// status: the fleet as agents last reported it, from hub.db.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/text.hpp"
#include "hub/commands.hpp"
#include "platform/store/hub_store.hpp"
#include "sovdev.pb.h"

namespace sovdev::hub {
namespace {

struct FleetOptions {
  std::string db;
  bool as_json = false;
};

Status fleet_status(const FleetOptions& o) {
  SOVDEV_ASSIGN(store::Database db, store::open_hub_database(o.db));
  store::FleetStatus fleet(db);
  SOVDEV_ASSIGN(auto agents, fleet.list());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& a : agents) {
    pb::AgentStatus st;
    if (!st.ParseFromString(a.status)) continue;
    out.push_back({{"agent", a.agent_id},
                   {"channel", a.channel},
                   {"stack", st.stack()},
                   {"applied_version", st.applied_version()},
                   {"state", st.state()},
                   {"last_seen", utc_time(a.updated_at)},
                   {"last_error", st.last_error()},
                   {"bytes_fetched", st.bytes_fetched()},
                   {"last_fetch_ms", st.last_fetch_ms()},
                   {"last_fetch_bytes", st.last_fetch_bytes()},
                   {"last_fetch_delta", st.last_fetch_delta()},
                   {"rejected_messages", st.rejected_messages()},
                   {"private_bytes", st.private_bytes()}});
  }
  if (o.as_json) {
    std::printf("%s\n", out.dump(2).c_str());
    return {};
  }
  std::printf("%-20s %-10s %-14s %-8s %-12s %-21s %-8s %s\n", "AGENT", "CHANNEL", "STACK",
              "VERSION", "STATE", "LAST SEEN", "REJECTED", "LAST ERROR");
  for (const auto& a : out) {
    std::printf("%-20s %-10s %-14s %-8s %-12s %-21s %-8s %s\n",
                a["agent"].get<std::string>().c_str(), a["channel"].get<std::string>().c_str(),
                a["stack"].get<std::string>().c_str(), a["applied_version"].dump().c_str(),
                a["state"].get<std::string>().c_str(), a["last_seen"].get<std::string>().c_str(),
                a["rejected_messages"].dump().c_str(), a["last_error"].get<std::string>().c_str());
  }
  if (out.empty()) std::printf("(no agent has reported yet)\n");
  return {};
}

}  // namespace

void add_fleet_status(CLI::App& app, cli::Commands& commands) {
  auto o = std::make_shared<FleetOptions>();
  auto* cmd = app.add_subcommand(
      "status", "One row per agent: channel, applied version, state, last seen, last error");
  cmd->add_option("--db", o->db, "Hub database")->required()->check(CLI::ExistingFile);
  cmd->add_flag("--json", o->as_json, "Machine-readable output");
  commands.push_back({cmd, [o] { return fleet_status(*o); }});
}

}  // namespace sovdev::hub
