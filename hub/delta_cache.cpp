#include "hub/delta_cache.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "bundles/delta.hpp"
#include "bundles/hash.hpp"
#include "bundles/payload.hpp"

namespace sovdev::hub {

DeltaCache::DeltaCache(store::Database& db, uint64_t max_bytes) : db_(db), max_bytes_(max_bytes) {}

Expected<std::string> DeltaCache::record_stream(const store::HubBundle& bundle) {
  store::HubBundles bundles(db_);
  pb::Signed envelope;
  pb::BundleManifest manifest;
  if (!envelope.ParseFromString(bundle.envelope) || !manifest.ParseFromString(envelope.body())) {
    return make_error(Errc::store, "stored manifest of " + bundle.stack + "@" +
                                       std::to_string(bundle.version) + " is unreadable");
  }
  std::string payload;
  payload.reserve(bundle.payload_size);
  std::string chunk;
  for (uint32_t i = 0; i < bundle.chunk_count; i++) {
    SOVDEV_TRY(bundles.read_chunk(bundle.digest, i, chunk));
    payload.append(chunk);
  }
  // Checked against the signed uncompressed hash: a delta is never made from damaged content.
  return decode_record_stream(manifest, payload);
}

void DeltaCache::evict() {
  while (bytes_ > max_bytes_ && !order_.empty()) {
    auto it = entries_.find(order_.back());
    if (it != entries_.end()) {
      bytes_ -= it->second.bytes.size();
      entries_.erase(it);
    }
    order_.pop_back();
  }
}

Expected<const DeltaEntry*> DeltaCache::get(const store::HubBundle& target,
                                            std::string_view base_digest,
                                            const std::vector<SecretKey>& keys) {
  const std::string key = target.digest + std::string(base_digest);
  if (auto it = entries_.find(key); it != entries_.end()) {
    order_.remove(key);
    order_.push_front(key);
    return &it->second;
  }
  if (auto it = refused_.find(key); it != refused_.end()) return it->second;

  auto refuse = [&](Error e) -> Expected<const DeltaEntry*> {
    if (refused_.size() > 4096) refused_.clear();
    refused_[key] = e;
    return e;
  };
  store::HubBundles bundles(db_);
  SOVDEV_ASSIGN(auto base, bundles.find(base_digest));
  if (!base || base->stack != target.stack || base->channel != target.channel ||
      base->version >= target.version) {
    return refuse(make_error(Errc::not_found, "the hub holds no earlier bundle " +
                                                  short_hex(base_digest) + " of this stack"));
  }
  SOVDEV_ASSIGN(std::string old_stream, record_stream(*base));
  SOVDEV_ASSIGN(std::string new_stream, record_stream(target));
  DeltaOptions options;
  options.max_size = target.payload_size;
  auto delta = make_delta(old_stream, new_stream, options);
  if (!delta) return refuse(std::move(delta).error());
  made_++;
  DeltaEntry entry;
  entry.manifest = make_delta_manifest(target.digest, base_digest, *delta);
  entry.envelope = sign_delta_manifest(entry.manifest, keys);
  entry.bytes = std::move(delta->bytes);
  spdlog::info("delta {}@{} from v{}: {} bytes (full payload {} bytes)", target.stack,
               target.version, base->version, entry.bytes.size(), target.payload_size);
  bytes_ += entry.bytes.size();
  order_.push_front(key);
  auto& stored = entries_[key] = std::move(entry);
  const DeltaEntry* result = &stored;
  evict();
  if (!entries_.count(key)) return make_error(Errc::too_large, "delta larger than the cache");
  return result;
}

Expected<std::string> DeltaCache::chunk(const store::HubBundle& target,
                                        std::string_view base_digest, uint32_t index,
                                        const std::vector<SecretKey>& keys) {
  SOVDEV_ASSIGN(const DeltaEntry* entry, get(target, base_digest, keys));
  if (index >= delta_chunk_count(entry->manifest)) {
    return make_error(Errc::not_found, "no delta chunk " + std::to_string(index));
  }
  const uint64_t start = uint64_t{index} * entry->manifest.chunk_size();
  return entry->bytes.substr(start, delta_chunk_length(entry->manifest, index));
}

}  // namespace sovdev::hub
