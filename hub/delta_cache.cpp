#include "hub/delta_cache.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "bundles/delta.hpp"
#include "bundles/hash.hpp"

namespace sovdev::hub {

DeltaCache::DeltaCache(MakeDelta make, std::vector<SecretKey> keys, Limits limits)
    : keys_(std::move(keys)), limits_(limits), worker_(std::move(make), limits.max_pending) {}

void DeltaCache::evict() {
  while (bytes_ > limits_.max_bytes && !order_.empty()) {
    auto it = entries_.find(order_.back());
    if (it != entries_.end()) {
      bytes_ -= it->second.bytes.size();
      entries_.erase(it);
    }
    order_.pop_back();
  }
}

void DeltaCache::refuse(const std::string& key, Error e) {
  if (refused_.size() > 4096) refused_.clear();
  refused_[key] = std::move(e);
}

void DeltaCache::collect() {
  for (auto& done : worker_.take_finished()) {
    making_.erase(done.key);
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
    evict();
  }
}

Expected<DeltaOffer> DeltaCache::offer(store::Database& db, const store::HubBundle& target,
                                       std::string_view base_digest) {
  collect();
  const std::string key = target.digest + std::string(base_digest);
  DeltaOffer out;
  if (auto it = entries_.find(key); it != entries_.end()) {
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
  if (!worker_.submit({key, target, *base})) {
    out.refusal =
        make_error(Errc::unavailable, "the hub is busy making " +
                                          std::to_string(limits_.max_pending) + " other deltas");
    return out;
  }
  making_.insert(key);
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
