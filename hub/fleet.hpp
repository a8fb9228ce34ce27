// The fleet as agents last reported it: one row per agent, and the service availability
// matrix (service × environment) built from the health each agent reports per service, never
// from what was planned.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "platform/store/hub_store.hpp"
#include "sovdev.pb.h"

namespace sovdev::hub {

// A bundle the hub published, as its own store holds it: the only source of an agent's
// environment, stack and version in the fleet view. An agent's status can claim anything (a
// broker account is all it takes to publish on its own topic); the digest it reports either
// names a bundle the hub published, whose signed manifest then says the rest, or it does not.
struct PublishedBundle {
  std::string channel;
  std::string stack;
  std::uint64_t version = 0;
  std::string environment;  // the manifest's, else its channel
};
using BundleLookup = std::function<std::optional<PublishedBundle>(std::string_view digest)>;

// The environment column of an agent whose digest names no bundle the hub published, and of
// one that reports no digest at all (nothing applied yet).
inline constexpr std::string_view kUnknownBundle = "unknown bundle";
inline constexpr std::string_view kNoBundle = "no bundle";

struct AgentView {
  pb::AgentStatus status;  // as reported: print its strings through visible_text()
  std::string agent_id;    // the hub's record: the id of the topic the status came on
  std::string channel;     // the hub's record: the channel the agent reports it follows
  std::string digest;      // the applied digest the view went by (a last will's: the prior one)
  bool known_bundle = false;
  std::string environment;    // of the published bundle; else kUnknownBundle or kNoBundle
  std::string stack;          // of the published bundle; else empty
  std::uint64_t version = 0;  // of the published bundle; else 0, whatever the agent claims
  int64_t last_seen = 0;      // unix seconds by the hub's clock when it stored the status
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
FleetView make_fleet_view(const std::vector<store::AgentRecord>& records,
                          const BundleLookup& published);
[[nodiscard]] Expected<FleetView> load_fleet_view(store::Database& db);

// The bundle the hub published under `digest`, from hub.db; nullopt when there is none.
[[nodiscard]] Expected<std::optional<PublishedBundle>> find_published(store::Database& db,
                                                                      std::string_view digest);

// Whether a reported service state counts as available.
bool is_good_state(const std::string& state);

}  // namespace sovdev::hub
