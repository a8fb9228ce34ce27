// Deltas the hub has made, kept in memory for the agents that ask next: one upgrade is asked
// for by a whole fleet, and a level-19 delta costs seconds to make.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <string>
#include <vector>

#include "bundles/keys.hpp"
#include "platform/store/hub_store.hpp"
#include "sovdev.pb.h"

namespace sovdev::hub {

struct DeltaEntry {
  std::string envelope;  // the signed DeltaManifest
  pb::DeltaManifest manifest;
  std::string bytes;  // the delta itself
};

class DeltaCache {
 public:
  explicit DeltaCache(store::Database& db, uint64_t max_bytes = 256u << 20);

  // The delta from `base_digest` to `target`, made on first use. Errc::not_found when the hub
  // does not hold the base, Errc::too_large when a delta would not be smaller than the
  // bundle: the agent then fetches in full (the answer is remembered too).
  Expected<const DeltaEntry*> get(const store::HubBundle& target, std::string_view base_digest,
                                  const std::vector<SecretKey>& keys);
  Expected<std::string> chunk(const store::HubBundle& target, std::string_view base_digest,
                              uint32_t index, const std::vector<SecretKey>& keys);

  uint64_t made() const { return made_; }

 private:
  Expected<std::string> record_stream(const store::HubBundle& bundle);
  void evict();

  store::Database& db_;
  uint64_t max_bytes_;
  uint64_t bytes_ = 0;
  uint64_t made_ = 0;
  std::list<std::string> order_;  // keys, most recently used first
  std::map<std::string, DeltaEntry> entries_;
  std::map<std::string, Error> refused_;  // pairs for which no delta is offered
};

}  // namespace sovdev::hub
