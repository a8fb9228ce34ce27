#include "hub/delta_cache.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "bundles/delta.hpp"
#include "bundles/hash.hpp"

namespace sovdev::hub {

DeltaCache::DeltaCache(MakeDelta make, std::vector<SecretKey> keys, Limits limits,
                       SteadyClock clock)
    : keys_(std::move(keys)),
      limits_(limits),
      clock_(std::move(clock)),
      worker_(std::move(make), limits.max_pending) {}

void DeltaCache::drop(const std::string& key) {
  if (auto it = entries_.find(key); it != entries_.end()) {
    bytes_ -= it->second.bytes.size();
    entries_.erase(it);
  }
  order_.remove(key);
}

void DeltaCache::evict(const std::string& owner) {
  // First the newest entry's owner's other deltas nobody else used, oldest first, down to its
  // share: one agent asking for many pairs only pushes out its own.
  const auto owned = [&] {
    uint64_t n = 0;
    for (const auto& [key, entry] : entries_) {
      if (!owner.empty() && entry.owner == owner) n += entry.bytes.size();
    }
    return n;
  };
  // Oldest first, from a copy: drop() edits order_.
  const std::vector<std::string> oldest_first(order_.rbegin(), order_.rend());
  const std::string newest = order_.empty() ? std::string() : order_.front();
  for (const auto& key : oldest_first) {
    if (owner.empty() || owned() <= limits_.max_bytes_per_agent) break;
    if (key != newest && entries_.count(key) && entries_.at(key).owner == owner) drop(key);
  }
  // Then the whole cache to its size: deltas only their own agent used go before the fleet's.
  for (const bool shared : {false, true}) {
    for (const auto& key : oldest_first) {
      if (bytes_ <= limits_.max_bytes) return;
      if (entries_.count(key) && entries_.at(key).owner.empty() == shared) drop(key);
    }
  }
}

void DeltaCache::refuse(const std::string& key, Error e) {
  if (refused_.size() > 4096) refused_.clear();
  refused_[key] = std::move(e);
}

void DeltaCache::collect() {
  for (auto& done : worker_.take_finished()) {
    std::string owner;
    if (auto it = making_.find(done.key); it != making_.end()) {
      owner = std::move(it->second);
      making_.erase(it);
    }
    const auto& target = done.target;
    if (!done.delta) {
      spdlog::info("no delta {}@{} from v{} ({} ms): {}", target.stack, target.version,
                   done.base_version, done.took.count(), done.delta.error().message);
      refuse(done.key, std::move(done.delta).error());
      continue;
    }
    made_++;
    const std::string_view base_digest = std::string_view(done.key).substr(target.digest.size());
    DeltaEntry entry;
    entry.manifest = make_delta_manifest(target.digest, base_digest, *done.delta);
    entry.envelope = sign_delta_manifest(entry.manifest, keys_);
    if (done.delta->bytes.size() <= kMaxInlineDelta) {
      entry.inline_envelope =
          sign_delta_offer(make_delta_manifest(target.digest, base_digest, *done.delta, 0), keys_);
    }
    entry.bytes = std::move(done.delta->bytes);
    entry.owner = owner;
    spdlog::info("delta {}@{} from v{}: {} bytes (full payload {} bytes), made in {} ms",
                 target.stack, target.version, done.base_version, entry.bytes.size(),
                 target.payload_size, done.took.count());
    if (entry.bytes.size() > limits_.max_bytes) {
      refuse(done.key, make_error(Errc::too_large, "delta larger than the cache"));
      continue;
    }
    bytes_ += entry.bytes.size();
    order_.push_front(done.key);
    entries_[done.key] = std::move(entry);
    evict(owner);
  }
}

Expected<DeltaOffer> DeltaCache::offer(store::Database& db, const store::HubBundle& target,
                                       std::string_view base_digest, const std::string& agent) {
  collect();
  const std::string key = target.digest + std::string(base_digest);
  DeltaOffer out;
  if (auto it = entries_.find(key); it != entries_.end()) {
    if (it->second.owner != agent) it->second.owner.clear();  // the fleet's now
    order_.remove(key);
    order_.push_front(key);
    out.entry = &it->second;
    return out;
  }
  if (auto it = refused_.find(key); it != refused_.end()) {
    out.refusal = it->second;
    return out;
  }
  if (making_.count(key)) {
    out.preparing = true;
    return out;
  }
  // Checked here rather than by the worker: a lookup by primary key, and a base the hub does
  // not hold is answered at once.
  store::HubBundles bundles(db);
  SOVDEV_ASSIGN(auto base, bundles.find(base_digest));
  if (!base || base->stack != target.stack || base->channel != target.channel ||
      base->version >= target.version) {
    out.refusal = make_error(Errc::not_found, "the hub holds no earlier bundle " +
                                                  short_hex(base_digest) + " of this stack");
    refuse(key, out.refusal);
    return out;
  }
  if (auto why = over_share(agent); !why.empty()) {
    refused_to_agents_++;
    out.refusal = make_error(Errc::unavailable, why);
    return out;
  }
  if (!worker_.submit({key, target, *base})) {
    out.refusal =
        make_error(Errc::unavailable, "the hub is busy making " +
                                          std::to_string(limits_.max_pending) + " other deltas");
    return out;
  }
  making_.emplace(key, agent);
  out.preparing = true;
  return out;
}

Expected<std::string> DeltaCache::chunk(const DeltaEntry& entry, uint32_t index) {
  if (index >= delta_chunk_count(entry.manifest)) {
    return make_error(Errc::not_found, "no delta chunk " + std::to_string(index));
  }
  const uint64_t start = uint64_t{index} * entry.manifest.chunk_size();
  return entry.bytes.substr(start, delta_chunk_length(entry.manifest, index));
}

}  // namespace sovdev::hub

namespace sovdev::hub {

std::string DeltaCache::over_share(const std::string& agent) {
  size_t mine = 0;
  for (const auto& [key, who] : making_) mine += who == agent ? 1 : 0;
  if (mine >= limits_.max_pending_per_agent) {
    return "this agent already has " + std::to_string(mine) + " deltas being made";
  }
  const auto now = clock_();
  auto it = new_pairs_.find(agent);
  if (it == new_pairs_.end()) {
    // Forgetting the buckets gives everybody a fresh share: only a fleet of thousands asking
    // at once gets here, and each of them is then held to its own anyway.
    if (new_pairs_.size() >= 4096) new_pairs_.clear();
    const double rate =
        1.0 / static_cast<double>(std::max<int64_t>(limits_.new_pair_every.count(), 1));
    it = new_pairs_.emplace(agent, TokenBucket(rate, static_cast<double>(limits_.new_pairs), now))
             .first;
  }
  if (!it->second.take(1, now)) return "this agent asked for too many new deltas lately";
  return {};
}

}  // namespace sovdev::hub
