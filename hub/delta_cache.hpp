// Deltas the hub has made, kept in memory for the agents that ask next: one upgrade is asked
// for by a whole fleet, and a level-19 delta costs seconds to make. They are made by a
// DeltaWorker; everything here runs on the serve loop's thread.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bundles/keys.hpp"
#include "hub/delta_worker.hpp"
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
  };
  // `make` runs on the worker's thread (delta_from_database in the hub).
  DeltaCache(MakeDelta make, std::vector<SecretKey> keys, Limits limits);

  // The delta from `base_digest` to `target`. The first ask for a pair queues it for the
  // worker and answers `preparing`, as do the asks until it is made. No delta is offered when
  // the hub does not hold the base, when a delta would not be smaller than the bundle (both
  // remembered), or when the worker's queue is full (not remembered: asked again later, the
  // pair may find room). Errors are the hub's own (its database).
  [[nodiscard]] Expected<DeltaOffer> offer(store::Database& db, const store::HubBundle& target,
                                           std::string_view base_digest);
  // Chunk `index` of a delta that is ready (entry from offer()).
  [[nodiscard]] static Expected<std::string> chunk(const DeltaEntry& entry, uint32_t index);

  // Takes the deltas the worker has finished into the cache. offer() does it too; the serve
  // loop calls it on every turn so that what is made is logged and counted within a turn.
  void collect();

  uint64_t made() const { return made_; }
  size_t pending() const { return worker_.pending(); }

 private:
  void evict();
  void refuse(const std::string& key, Error e);

  std::vector<SecretKey> keys_;
  Limits limits_;
  uint64_t bytes_ = 0;
  uint64_t made_ = 0;
  std::list<std::string> order_;  // keys, most recently used first
  std::map<std::string, DeltaEntry> entries_;
  std::map<std::string, Error> refused_;  // pairs for which no delta is offered
  std::set<std::string> making_;          // handed to the worker, not collected yet
  DeltaWorker worker_;                    // last: its thread stops before the rest goes
};

}  // namespace sovdev::hub
