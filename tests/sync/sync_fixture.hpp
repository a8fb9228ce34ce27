// A whole fleet in miniature for sync tests: a real mosquitto with the repo's ACLs, hub.db,
// `sovdev-hub serve` processes and `sovdev-agent` processes with their own config and state.
#pragma once

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "platform/mqtt/client.hpp"
#include "tests/cli/cli_fixture.hpp"
#include "tests/support/broker.hpp"

namespace sovdev::testing {

struct Fleet {
  Workspace ws;
  std::unique_ptr<Broker> broker;
  std::string hub_db;

  explicit Fleet(BrokerOptions options = {});

  std::string password_file(const std::string& user) const;
  // sovdev-hub publish FILE into hub.db (without a broker: serve publishes the catalog).
  RunResult publish(const std::string& file) const;
  // Also pushes the new catalog to the broker.
  RunResult publish_live(const std::string& file) const;
  std::unique_ptr<Child> serve(const std::string& log_name,
                               const std::string& group = "hubs") const;
  // Writes the agent's config; returns its path.
  // `apply` replaces the [apply] section (default: a dir target in agent_dir()).
  std::string agent_config(const std::string& agent, uint32_t window = 8,
                           const std::string& extra = "", const std::string& apply = "") const;
  std::string agent_state(const std::string& agent) const { return ws.dir / ("state-" + agent); }
  std::string agent_dir(const std::string& agent) const { return ws.dir / ("applied-" + agent); }
  RunResult sync_once(const std::string& agent, int timeout_s = 120) const;
  std::unique_ptr<Child> run_agent(const std::string& agent, const std::string& log_name) const;
  // A client with the hub's rights, for watching and for misbehaving.
  std::unique_ptr<mqtt::Client> client(const std::string& user, const std::string& client_id) const;
};

// Counts the bytes the broker delivers on a topic filter, for "bytes on the wire" figures.
class WireCounter {
 public:
  WireCounter(const Fleet& fleet, const std::string& filter);
  // Drains what has arrived so far; returns the total.
  uint64_t bytes();

 private:
  std::unique_ptr<mqtt::Client> client_;
  uint64_t bytes_ = 0;
};

// The objects a dir target wrote, and those a bundle file holds, each in one canonical JSON
// form: equal when the agent applied exactly the bundle.
std::multiset<std::string> applied_objects(const std::string& dir);
std::multiset<std::string> bundle_objects(const std::string& file, const std::string& trust_path);

// An upgrade worth a delta: v1.sdb holds 12 MiB of noise, v2.sdb the same and 4 MiB more (a
// delta of about a quarter of the full bundle, ~50 chunks), both built at zstd 1 in ws.dir.
void build_noise_upgrade(const Fleet& fleet);

// ~`mib` MiB of barely compressible ConfigMaps under `dir`, so a transfer spans many chunks.
void write_noise_stack(const std::string& dir, int mib, unsigned seed);

}  // namespace sovdev::testing
