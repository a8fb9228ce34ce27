// Deltas the hub has made, kept in memory for the agents that ask next: one upgrade is asked
// for by a whole fleet, and a level-19 delta costs seconds to make. They are made by a
// DeltaWorker; everything here runs on the serve loop's thread.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bundles/keys.hpp"
#include "hub/delta_worker.hpp"
#include "hub/limits.hpp"
#include "platform/store/hub_store.hpp"
#include "sovdev.pb.h"

namespace sovdev::hub {

struct DeltaEntry {
  std::string envelope;  // the signed DeltaManifest, chunked form, for chunk requests
  pb::DeltaManifest manifest;
  std::string bytes;  // the delta itself
  // The same delta signed in the inline form, sent without what the agent derives
  // (sign_delta_offer), for the one-answer exchange; empty when over kMaxInlineDelta.
  std::string inline_envelope;
  // The agent whose ask had it made, while no other agent has used it ("" once one has): an
  // agent's own deltas are the first to go when it passes its share of the cache.
  std::string owner;
};

// What the hub can say about a delta right now: here it is, it is being made (ask again), or
// none is on offer (fetch in full; `refusal` says why).
struct DeltaOffer {
  const DeltaEntry* entry = nullptr;
  bool preparing = false;
  Error refusal;
};

class DeltaCache {
 public:
  struct Limits {
    uint64_t max_bytes = 256u << 20;
    size_t max_pending = 8;  // pairs queued or being made at once
    // Per agent (issue #19: any agent could ask for arbitrary (target, base) pairs, keep the
    // level-19 worker busy and evict the fleet's deltas): pairs queued for it at once, new
    // pairs it may have made (a bucket: `new_pairs` at once, one more per `new_pair_every`),
    // and the cache bytes its deltas nobody else used may hold.
    size_t max_pending_per_agent = 2;
    uint32_t new_pairs = 4;
    std::chrono::seconds new_pair_every{300};
    uint64_t max_bytes_per_agent = 32u << 20;
  };
  // `make` runs on the worker's thread (delta_from_database in the hub). `clock` paces the
  // agents' buckets.
  DeltaCache(MakeDelta make, std::vector<SecretKey> keys, Limits limits,
             SteadyClock clock = real_steady_clock());

  // The delta from `base_digest` to `target`. The first ask for a pair queues it for the
  // worker and answers `preparing`, as do the asks until it is made. No delta is offered when
  // the hub does not hold the base, when a delta would not be smaller than the bundle (both
  // remembered), or when the worker's queue is full (not remembered: asked again later, the
  // pair may find room) or `agent` has used up its share (Limits; not remembered either).
  // Errors are the hub's own (its database).
  [[nodiscard]] Expected<DeltaOffer> offer(store::Database& db, const store::HubBundle& target,
                                           std::string_view base_digest, const std::string& agent);
  // Chunk `index` of a delta that is ready (entry from offer()).
  [[nodiscard]] static Expected<std::string> chunk(const DeltaEntry& entry, uint32_t index);

  // Takes the deltas the worker has finished into the cache. offer() does it too; the serve
  // loop calls it on every turn so that what is made is logged and counted within a turn.
  void collect();

  uint64_t made() const { return made_; }
  size_t pending() const { return worker_.pending(); }
  // New pairs refused because the asking agent was over its share.
  uint64_t refused_to_agents() const { return refused_to_agents_; }
  uint64_t bytes() const { return bytes_; }

 private:
  void evict(const std::string& owner);
  void drop(const std::string& key);
  void refuse(const std::string& key, Error e);
  // Why `agent` may not have a new pair made now; empty when it may (a token is then taken).
  std::string over_share(const std::string& agent);

  std::vector<SecretKey> keys_;
  Limits limits_;
  uint64_t bytes_ = 0;
  uint64_t made_ = 0;
  std::list<std::string> order_;  // keys, most recently used first
  std::map<std::string, DeltaEntry> entries_;
  std::map<std::string, Error> refused_;       // pairs for which no delta is offered
  std::map<std::string, std::string> making_;  // handed to the worker, not collected: key → agent
  SteadyClock clock_;
  std::map<std::string, TokenBucket> new_pairs_;  // per agent; cleared when it grows past 4096
  uint64_t refused_to_agents_ = 0;
  DeltaWorker worker_;  // last: its thread stops before the rest goes
};

}  // namespace sovdev::hub
