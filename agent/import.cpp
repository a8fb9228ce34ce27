#include "agent/import.hpp"

#include <algorithm>
#include <vector>

#include "bundles/hash.hpp"
#include "bundles/verify.hpp"
#include "platform/fs/bundle_reader.hpp"
#include "platform/store/agent_cache.hpp"
#include "platform/store/transaction.hpp"

namespace sovdev::agent {
namespace {

// Chunks are committed in batches: one fsync per chunk would make a 4096-chunk import crawl,
// and a batch lost to a crash is simply fetched or read again.
constexpr uint64_t kCommitBytes = 4u << 20;

struct Opened {
  fs::BundleFileReader reader;
  VerifyResult result;
};

Expected<Opened> open_verified(const std::string& path, const TrustPolicy& trust) {
  SOVDEV_ASSIGN(fs::BundleFileReader reader, fs::BundleFileReader::open(path));
  VerifyResult result;
  SOVDEV_ASSIGN(result.manifest, trust.verify_manifest(reader.manifest_envelope(), &result.digest));
  SOVDEV_TRY(reader.check_size(result.manifest));
  return Opened{std::move(reader), std::move(result)};
}

PayloadReader::OnRecord count_only() {
  return [](pb::ResourceRecord&) -> Status { return {}; };
}

Expected<std::optional<HeldVersion>> held(const std::optional<store::BundleInfo>& info) {
  if (!info) return std::optional<HeldVersion>();
  return std::optional<HeldVersion>(HeldVersion{info->version, info->digest});
}

// A bundle of a channel the agent does not follow would be applied by the next `apply`.
Status check_followed(const pb::BundleManifest& m, const std::vector<std::string>& channels) {
  if (std::find(channels.begin(), channels.end(), m.channel()) != channels.end()) return {};
  std::string followed;
  for (const auto& c : channels) followed += (followed.empty() ? "'" : ", '") + c + "'";
  return make_error(Errc::wrong_target, describe(m) + " is for channel '" + m.channel() +
                                            "', this agent follows " + followed + ": not imported");
}

}  // namespace

Expected<VerifyResult> verify_bundle_file(const std::string& path, const TrustPolicy& trust,
                                          const InstallTarget& target) {
  SOVDEV_ASSIGN(Opened opened, open_verified(path, trust));
  auto& m = opened.result.manifest;
  SOVDEV_TRY(check_installable(m, opened.result.digest, target, std::nullopt, std::nullopt));
  SOVDEV_ASSIGN(auto verifier, PayloadVerifier::create(m, count_only()));
  for (uint32_t i = 0; i < chunk_count(m); i++) {
    SOVDEV_ASSIGN(std::string_view chunk, opened.reader.next_chunk(m));
    SOVDEV_TRY(verifier.add_chunk(i, chunk));
  }
  SOVDEV_ASSIGN(opened.result.records, verifier.finish());
  return std::move(opened.result);
}

Expected<ImportResult> import_bundle(const std::string& path, const TrustPolicy& trust,
                                     store::Database& db, const ImportScope& scope) {
  if (scope.channels.empty()) {
    return make_error(Errc::usage,
                      "no channel to import for: give the agent's --config, or the "
                      "--channel it follows");
  }
  SOVDEV_ASSIGN(Opened opened, open_verified(path, trust));
  ImportResult out;
  out.bundle = std::move(opened.result);
  const pb::BundleManifest& m = out.bundle.manifest;
  const std::string& digest = out.bundle.digest;
  SOVDEV_TRY(check_followed(m, scope.channels));

  store::BundleCache cache(db);
  SOVDEV_ASSIGN(auto highest_info, cache.highest_verified(m.channel(), m.stack()));
  SOVDEV_ASSIGN(auto same_info, cache.find_version(m.stack(), m.version()));
  SOVDEV_ASSIGN(auto highest, held(highest_info));
  SOVDEV_ASSIGN(auto same, held(same_info));
  SOVDEV_TRY(check_installable(m, digest, {m.channel(), scope.arch}, highest, same));
  if (same_info && same_info->state == store::BundleState::verified) {
    out.already_present = true;
    out.bundle.records = m.resource_count();
    return out;
  }

  store::BundleMeta meta;
  meta.digest = digest;
  meta.stack = m.stack();
  meta.channel = m.channel();
  meta.version = m.version();
  meta.envelope = opened.reader.manifest_envelope();
  meta.chunk_count = chunk_count(m);
  meta.payload_size = m.payload_size();
  meta.chunk_size = m.chunk_size();
  SOVDEV_TRY(cache.begin(meta));
  // An import interrupted by a power cut may hold rows whose bytes never reached the disk.
  SOVDEV_ASSIGN(const uint32_t damaged,
                cache.drop_damaged(digest, [&m](uint32_t index, std::string_view data) {
                  return static_cast<bool>(verify_chunk(m, index, data));
                }));
  (void)damaged;
  SOVDEV_ASSIGN(std::vector<uint32_t> missing, cache.missing_chunks(digest));

  SOVDEV_ASSIGN(auto verifier, PayloadVerifier::create(m, count_only()));
  SOVDEV_ASSIGN(store::Transaction tx, store::Transaction::begin(db));
  uint64_t batch = 0;
  auto stored = [&](uint32_t i) { return !std::binary_search(missing.begin(), missing.end(), i); };
  Status payload_ok;
  for (uint32_t i = 0; i < chunk_count(m) && payload_ok; i++) {
    SOVDEV_ASSIGN(std::string_view chunk, opened.reader.next_chunk(m));
    payload_ok = verifier.add_chunk(i, chunk);
    if (!payload_ok || stored(i)) continue;
    SOVDEV_TRY(cache.put_chunk(digest, i, chunk));
    out.chunks_stored++;
    batch += chunk.size();
    if (batch >= kCommitBytes) {
      SOVDEV_TRY(tx.commit());
      SOVDEV_ASSIGN(tx, store::Transaction::begin(db));
      batch = 0;
    }
  }
  if (payload_ok) {
    auto records = verifier.finish();
    if (records) {
      out.bundle.records = *records;
    } else {
      payload_ok = std::move(records).error();
    }
  }
  if (!payload_ok) {
    // Signed but undecodable content is worth nothing: drop what was stored of it.
    tx.rollback();
    (void)cache.remove(digest);
    return std::move(payload_ok).error().context("bundle " + describe(m));
  }
  SOVDEV_TRY(cache.set_state(digest, store::BundleState::complete));
  SOVDEV_TRY(cache.set_state(digest, store::BundleState::verified));
  SOVDEV_TRY(tx.commit());
  return out;
}

}  // namespace sovdev::agent
