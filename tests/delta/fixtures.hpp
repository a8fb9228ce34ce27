// Record streams of a real-world-shaped upgrade (the in-repo edge-stack fixture, v1 -> v2; the
// kube-prometheus corpus for the [realworld] case), signed bundles made of them, keys, and an
// agent cache holding a bundle, for the delta tests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bundles/delta.hpp"
#include "bundles/payload.hpp"
#include "bundles/sign_objects.hpp"
#include "bundles/trust.hpp"
#include "bundles/yaml/objects.hpp"
#include "platform/fs/files.hpp"
#include "platform/store/agent_cache.hpp"
#include "tests/bundles/fixtures.hpp"
#include "tests/store/test_support.hpp"
#include "tests/support/inputs.hpp"

namespace sovdev::delta_test {

using store::test::must;

// The manifests folders of the upgrade most cases use.
inline const std::string kOld = sovdev::testing::edge_stack("v1");
inline const std::string kNew = sovdev::testing::edge_stack("v2");

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The objects of one manifests folder as the hub packs them: parsed, in apply order.
inline std::vector<pb::ResourceRecord> load_records(const std::string& dir) {
  std::vector<yaml::Object> all;
  for (const auto& path : must(fs::list_files(dir, {".yaml", ".yml", ".json"}))) {
    const std::string shown = std::filesystem::path(path).lexically_relative(dir).string();
    for (auto& o : must(yaml::parse_manifests(shown, read_text(path)))) all.push_back(std::move(o));
  }
  std::vector<pb::ResourceRecord> records;
  for (auto& o : must(yaml::order_objects(std::move(all)))) {
    pb::ResourceRecord r;
    r.set_api_version(std::move(o.api_version));
    r.set_kind(std::move(o.kind));
    r.set_namespace_(std::move(o.namespace_));
    r.set_name(std::move(o.name));
    r.set_json(std::move(o.json));
    r.set_source(std::move(o.source));
    records.push_back(std::move(r));
  }
  return records;
}

// Loaded once per process: several test cases use the same folders.
inline const std::vector<pb::ResourceRecord>& records_of(const std::string& dir) {
  static std::map<std::string, std::vector<pb::ResourceRecord>> loaded;
  auto it = loaded.find(dir);
  if (it == loaded.end()) it = loaded.emplace(dir, load_records(dir)).first;
  return it->second;
}

// The record stream: each record preceded by its length as a varint, as PayloadWriter hashes it.
inline std::string record_stream(const std::vector<pb::ResourceRecord>& records) {
  std::string out;
  for (const auto& r : records) {
    uint64_t size = r.ByteSizeLong();
    while (size >= 0x80) {
      out.push_back(static_cast<char>((size & 0x7f) | 0x80));
      size >>= 7;
    }
    out.push_back(static_cast<char>(size));
    out += r.SerializeAsString();
  }
  return out;
}

struct Bundle {
  std::vector<pb::ResourceRecord> records;
  std::string stream;   // uncompressed
  std::string payload;  // compressed, as signed
  pb::BundleManifest manifest;
  SignedManifest signed_manifest;
};

// A signed bundle of `records` as stack "kp" version `version` on channel "edge".
inline Bundle make_bundle(std::vector<pb::ResourceRecord> records, uint64_t version,
                          const SecretKey& key, int level = 19) {
  Bundle b;
  b.records = std::move(records);
  PayloadWriter::Options options;
  options.level = level;
  auto writer = must(PayloadWriter::create(options, [&](std::string_view bytes) -> Status {
    b.payload.append(bytes);
    return {};
  }));
  for (const auto& r : b.records) REQUIRE_OK(writer.add(r));
  const PayloadSummary summary = must(writer.finish());
  b.stream = record_stream(b.records);
  REQUIRE(sha256(b.stream) == summary.uncompressed_sha256);
  const BundleInfo info{"kp", "edge", version, {"amd64", "arm64"}, "edge", "", 0};
  b.manifest = make_manifest(info, summary, options);
  REQUIRE(check_manifest_shape(b.manifest));
  b.signed_manifest = sign_manifest(b.manifest, {key});
  return b;
}

struct Trust {
  testing::Keys keys = testing::make_keys(1, 1);
  TrustPolicy policy = must(
      TrustPolicy::from_initial(testing::signed_root(testing::root_body(keys, 1, 1), keys.roots)));
  const SecretKey& publisher() const { return keys.publishers.front(); }
};

// Stores a bundle's signed chunks in the cache and marks it verified, as a full fetch does.
inline store::BundleInfo cache_signed(store::Database& db, const Bundle& b) {
  store::BundleCache cache(db);
  store::BundleMeta meta;
  meta.digest = b.signed_manifest.digest;
  meta.stack = b.manifest.stack();
  meta.channel = b.manifest.channel();
  meta.version = b.manifest.version();
  meta.envelope = b.signed_manifest.envelope;
  meta.chunk_count = static_cast<uint32_t>(b.manifest.chunk_sha256_size());
  meta.payload_size = b.manifest.payload_size();
  REQUIRE(must(cache.begin(meta)) == store::BundleState::partial);
  const std::string_view payload = b.payload;
  for (uint32_t i = 0; i < meta.chunk_count; i++) {
    const size_t at = size_t{i} * b.manifest.chunk_size();
    REQUIRE_OK(cache.put_chunk(meta.digest, i, payload.substr(at, b.manifest.chunk_size())));
  }
  REQUIRE_OK(cache.set_state(meta.digest, store::BundleState::complete));
  REQUIRE_OK(cache.set_state(meta.digest, store::BundleState::verified));
  return *must(cache.find(meta.digest));
}

// The names in a folder, dotfiles included: what a rebuild may leave behind.
inline std::vector<std::string> entries(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.push_back(e.path().filename().string());
  }
  return out;
}

inline void write_bytes(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

}  // namespace sovdev::delta_test
