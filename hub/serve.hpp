// The hub's serving loop: answers agents' fetch requests with manifests, chunks and deltas,
// keeps the retained catalogs fresh, and records the status agents report. It also hands each
// agent its sealed copy of a channel's epoch key (docs/design-secrets.md) as hub.db holds it:
// it never holds the secret-store key and cannot open what it relays.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bundles/keys.hpp"
#include "hub/broadcast.hpp"
#include "hub/delta_cache.hpp"
#include "hub/images/serve_blobs.hpp"
#include "hub/limits.hpp"
#include "hub/rollout/serve_rollouts.hpp"
#include "hub/secrets/store_key.hpp"
#include "hub/transfer_slots.hpp"
#include "platform/mqtt/client.hpp"
#include "platform/store/hub_store.hpp"

namespace sovdev::hub {

struct ServeOptions {
  std::string prefix = "sovdev/v1";
  std::string group = "sovdev-hubs";  // replicas in one group share the fetch requests
  int64_t catalog_ttl = 24 * 3600;
  std::vector<SecretKey> keys;  // online keys: catalogs and delta manifests, never content
  DeltaCache::Limits deltas;
  // While a delta is being made the agent is told to ask again after this long: about the
  // time a small delta takes, so most agents ask once or twice, and a fleet waiting for a big
  // one sends each a request a second, not a stream of them.
  uint32_t delta_retry_ms = 1000;
  // An agent asking the one-answer way for a delta still being made gets its answer when the
  // delta is ready, if that is within this long: a small delta takes well under it, so the
  // first agent of a fleet pays no more on the wire than the others. Past it, it is told to
  // ask again. Well below the agents' request timeout (10 s by default, 2 s at the least
  // seen in use): an agent that times out first asks for the manifest again.
  uint32_t delta_hold_ms = 1000;
  // Per agent: requests, bytes served, re-serves of one chunk (hub/limits.hpp).
  AgentLimitSettings limits;
  // Full transfers of one stack served at once; the rest wait in order (hub/transfer_slots.hpp).
  TransferSlotSettings transfers;
  SteadyClock steady = real_steady_clock();  // the limits' clock; tests move it by hand
};

struct ServeStats {
  uint64_t requests = 0;
  uint64_t rejected = 0;
  uint64_t manifests_sent = 0;
  uint64_t chunks_sent = 0;
  uint64_t delta_chunks_sent = 0;
  uint64_t deltas_inline = 0;        // deltas sent whole in the answer to a manifest request
  uint64_t chunks_broadcast = 0;     // of chunks_sent and delta_chunks_sent: on a blob topic
  uint64_t chunks_on_their_way = 0;  // asked for while already on their way: not sent again
  uint64_t bytes_sent = 0;
  uint64_t epoch_keys_sent = 0;     // sealed epoch keys handed to the agents they are sealed to
  uint64_t epoch_keys_refused = 0;  // asked for by an agent hub.db holds no grant for
  uint64_t statuses = 0;
  uint64_t send_failures = 0;
  // Issue #19 §3: what agents were refused. See LimitCounts and DeltaCache::Counts.
  uint64_t requests_throttled = 0;
  uint64_t chunks_throttled = 0;
  uint64_t chunks_refused = 0;
  uint64_t deltas_refused = 0;  // new delta pairs refused to an agent over its share
  // Issue #21, pacing: full transfers served now and agents waiting for a slot, and the chunk
  // requests left unanswered while they waited.
  uint64_t transfers_in_use = 0;
  uint64_t transfers_waiting = 0;
  uint64_t transfer_waits = 0;
  // The MQTT client's incoming side, as last polled: messages dropped for a full queue or
  // for being larger than their topic allows, and the queue's bytes now and at its peak.
  uint64_t messages_dropped = 0;
  uint64_t messages_oversize = 0;
  uint64_t queue_bytes = 0;
  uint64_t queue_bytes_peak = 0;
  // Issue #22: image blob requests (hub/images/serve_blobs.hpp).
  images::BlobServeCounts blobs;
};

class Server {
 public:
  using Clock = std::function<int64_t()>;
  Server(store::Database& db, mqtt::Client& client, ServeOptions options, Clock now);

  // Subscribes and publishes the retained catalog of every channel (renewed when due).
  Status start();
  // Handles one event from the client. Errors in what agents send are counted, never fatal.
  Status handle(const mqtt::Event& event);
  // Runs the rollouts' gates, signs again the catalogs that rollouts, holds, windows or
  // revocations changed (hub/rollout/serve_rollouts.hpp), and renews catalogs that would expire
  // within half their lifetime.
  Status tick();
  // Takes in the deltas made since the last turn (the serve loop calls it on every turn).
  // Answers held for a delta that is now made (or waited for long enough).
  void poll();
  const ServeStats& stats() const { return stats_; }

 private:
  Status on_fetch(const std::string& agent_id, const mqtt::Message& message);
  Status on_status(const std::string& agent_id, const mqtt::Message& message);
  // FetchRequest.blob: an image blob's manifest or chunks (hub/images/serve_blobs.hpp).
  Status answer_blob(const std::string& agent_id, const std::string& correlation,
                     const pb::FetchRequest& req);
  // FetchRequest.epoch_key: the agent's grant from hub.db (one indexed read), or an error body
  // naming the `sovdev-hub agents` command that makes one.
  Status answer_epoch_key(const std::string& agent_id, const std::string& correlation,
                          const pb::FetchRequest& req);
  // The one-answer delta exchange (FetchRequest.inline_delta_max): the manifest (unless the
  // agent holds it) and the delta offer in one message, with the delta itself when it fits.
  // `may_hold`: a delta being made may be waited for (held_) rather than answered with a retry.
  Status answer_with_delta(const std::string& agent_id, const std::string& correlation,
                           const pb::FetchRequest& req, const store::HubBundle& bundle,
                           pb::FetchResponse& resp, bool may_hold);
  Status answer_held();
  // Signs and publishes the catalogs whose rollouts, holds, windows or revocations changed.
  Status sign_changed_catalogs(int64_t now);
  Status publish_catalog(const store::HubCatalog& catalog);
  Status send(const std::string& agent_id, const std::string& correlation,
              const pb::FetchResponse& response);
  // Publishes a chunk on its object's blob topic as the stream's next number.
  Status broadcast(BroadcastStream& stream, pb::FetchResponse& response);
  void reject(const std::string& what);
  // Copies the limits' and the MQTT client's counts into stats_.
  void refresh_counts();

  store::Database& db_;
  mqtt::Client& client_;
  ServeOptions options_;
  Clock now_;
  DeltaCache deltas_;
  AgentLimits limits_;
  TransferSlots transfers_;
  BroadcastStreams streams_;
  rollout::RolloutDriver rollouts_;
  struct HeldAnswer {
    std::string agent_id;
    std::string correlation;
    pb::FetchRequest request;
    std::chrono::steady_clock::time_point until;
  };
  std::vector<HeldAnswer> held_;  // bounded by kMaxHeldAnswers
  uint64_t dropped_ = 0;          // messages the client's full queue dropped, as last reported
  ServeStats stats_;
  // Empty: grants are read sealed, never opened (FleetKeys needs the key only for changes).
  const secrets::StoreKey no_store_key_;
};

}  // namespace sovdev::hub
