// The fleet as agents last reported it: one row per agent, and the service availability
// matrix (service × environment) built from the health each agent reports per service, never
// from what was planned.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "platform/store/hub_store.hpp"
#include "sovdev.pb.h"

namespace sovdev::hub {

struct AgentView {
  pb::AgentStatus status;
  std::string environment;  // status.environment, else the channel
  int64_t last_seen = 0;    // unix seconds the hub stored the status
};

struct Cell {
  std::string
      state;       // worst of the environment's agents: healthy, external, degraded, offline, ...
                   // "" when no agent there runs the service
  int agents = 0;  // agents of the environment that report the service (or are offline)
  int good = 0;    // of them, healthy or external
  std::string message;       // the first non-good agent's message, else the first message
  std::string text() const;  // "healthy", "healthy 3/3", "degraded 1/3", "-"
};

struct ServiceRow {
  std::string service;                // label value: postgresql
  std::string title;                  // PostgreSQL
  std::map<std::string, Cell> cells;  // by environment
};

struct FleetView {
  std::vector<AgentView> agents;          // by agent id
  std::vector<std::string> environments;  // dev, staging, prod, edge first, then the others
  std::vector<ServiceRow> rows;           // Kubernetes, Traefik, ... Grafana, then the others
};

// Statuses that no longer parse are skipped (a newer agent's format is still read: protobuf).
FleetView make_fleet_view(const std::vector<store::AgentRecord>& records);
[[nodiscard]] Expected<FleetView> load_fleet_view(store::Database& db);

// The environment an agent counts in: what it reports (from its bundle), else its channel.
const std::string& environment_of(const pb::AgentStatus& status, const std::string& channel);

// Whether a reported service state counts as available.
bool is_good_state(const std::string& state);

}  // namespace sovdev::hub
