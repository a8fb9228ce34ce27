// The hub's serving loop: answers agents' fetch requests with manifests, chunks and deltas,
// keeps the retained catalogs fresh, and records the status agents report.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bundles/keys.hpp"
#include "hub/broadcast.hpp"
#include "hub/delta_cache.hpp"
#include "platform/mqtt/client.hpp"
#include "platform/store/hub_store.hpp"

namespace sovdev::hub {

struct ServeOptions {
  std::string prefix = "sovdev/v1";
  std::string group = "sovdev-hubs";  // replicas in one group share the fetch requests
  int64_t catalog_ttl = 24 * 3600;
  std::vector<SecretKey> keys;  // publisher keys: catalogs and delta manifests
  DeltaCache::Limits deltas;
  // While a delta is being made the agent is told to ask again after this long: about the
  // time a small delta takes, so most agents ask once or twice, and a fleet waiting for a big
  // one sends each a request a second, not a stream of them.
  uint32_t delta_retry_ms = 1000;
};

struct ServeStats {
  uint64_t requests = 0;
  uint64_t rejected = 0;
  uint64_t manifests_sent = 0;
  uint64_t chunks_sent = 0;
  uint64_t delta_chunks_sent = 0;
  uint64_t chunks_broadcast = 0;     // of chunks_sent and delta_chunks_sent: on a blob topic
  uint64_t chunks_on_their_way = 0;  // asked for while already on their way: not sent again
  uint64_t bytes_sent = 0;
  uint64_t statuses = 0;
  uint64_t send_failures = 0;
};

class Server {
 public:
  using Clock = std::function<int64_t()>;
  Server(store::Database& db, mqtt::Client& client, ServeOptions options, Clock now);

  // Subscribes and publishes the retained catalog of every channel (renewed when due).
  Status start();
  // Handles one event from the client. Errors in what agents send are counted, never fatal.
  Status handle(const mqtt::Event& event);
  // Renews catalogs that would expire within half their lifetime.
  Status tick();
  // Takes in the deltas made since the last turn (the serve loop calls it on every turn).
  void poll() { deltas_.collect(); }
  const ServeStats& stats() const { return stats_; }

 private:
  Status on_fetch(const std::string& agent_id, const mqtt::Message& message);
  Status on_status(const std::string& agent_id, const mqtt::Message& message);
  Status publish_catalog(const store::HubCatalog& catalog);
  Status send(const std::string& agent_id, const std::string& correlation,
              const pb::FetchResponse& response);
  // Publishes a chunk on its object's blob topic as the stream's next number.
  Status broadcast(BroadcastStream& stream, pb::FetchResponse& response);
  void reject(const std::string& what);

  store::Database& db_;
  mqtt::Client& client_;
  ServeOptions options_;
  Clock now_;
  DeltaCache deltas_;
  BroadcastStreams streams_;
  uint64_t dropped_ = 0;  // messages the client's full queue dropped, as last reported
  ServeStats stats_;
};

}  // namespace sovdev::hub
