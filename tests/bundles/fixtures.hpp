// Keys and trust roots for tests.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "bundles/hash.hpp"
#include "bundles/sign_objects.hpp"
#include "bundles/trust.hpp"

namespace sovdev::testing {

struct Keys {
  std::vector<SecretKey> roots;
  std::vector<SecretKey> publishers;  // bundle signers: the publisher role, or targets (roles_body)
  std::vector<SecretKey> online;      // the serving hub's keys (roles_body only)
};

inline Keys make_keys(int roots, int publishers, int online = 1) {
  Keys k;
  for (int i = 0; i < roots; i++) k.roots.push_back(generate_key("root" + std::to_string(i)));
  for (int i = 0; i < publishers; i++) {
    k.publishers.push_back(generate_key("pub" + std::to_string(i)));
  }
  for (int i = 0; i < online; i++) k.online.push_back(generate_key("online" + std::to_string(i)));
  return k;
}

inline std::vector<PublicKeyInfo> publics(const std::vector<SecretKey>& keys) {
  std::vector<PublicKeyInfo> out;
  for (const auto& k : keys) out.push_back({k.name, k.public_key()});
  return out;
}

// A legacy (schema 1) root: k.publishers hold the publisher role, which signs manifests,
// catalogs and delta manifests alike. Agents still accept such roots (TrustPolicy::legacy).
inline pb::TrustRoot root_body(const Keys& k, uint64_t version, uint32_t root_threshold,
                               uint32_t publisher_threshold = 1) {
  TrustRootSpec spec;
  spec.version = version;
  spec.root_keys = publics(k.roots);
  spec.publisher_keys = publics(k.publishers);
  spec.root_threshold = root_threshold;
  spec.publisher_threshold = publisher_threshold;
  auto root = make_trust_root(spec);
  if (!root) throw std::runtime_error(root.error().message);
  return *root;
}

// A root with separate roles: k.publishers are the targets keys (manifests), k.online the
// hub's keys (catalogs and delta manifests).
inline pb::TrustRoot roles_body(const Keys& k, uint64_t version, uint32_t root_threshold = 1,
                                uint32_t targets_threshold = 1, uint32_t online_threshold = 1) {
  TrustRootSpec spec;
  spec.version = version;
  spec.root_keys = publics(k.roots);
  spec.targets_keys = publics(k.publishers);
  spec.online_keys = publics(k.online);
  spec.root_threshold = root_threshold;
  spec.targets_threshold = targets_threshold;
  spec.online_threshold = online_threshold;
  auto root = make_trust_root(spec);
  if (!root) throw std::runtime_error(root.error().message);
  return *root;
}

inline std::string signed_root(const pb::TrustRoot& root, const std::vector<SecretKey>& signers) {
  return *sign_trust_root(root, signers);
}

// A well-formed manifest for signature tests: its payload is never read.
inline pb::BundleManifest small_manifest() {
  pb::BundleManifest m;
  m.set_schema(1);
  m.set_stack("sovdev");
  m.set_channel("edge");
  m.set_version(3);
  m.add_arch("arm64");
  m.set_compression("zstd");
  m.set_chunk_size(65536);
  m.set_payload_size(10);
  m.set_uncompressed_size(20);
  m.set_payload_sha256(sha256("x"));
  m.add_chunk_sha256(sha256("y"));
  m.set_window_log(21);
  m.set_resource_count(1);
  return m;
}

inline std::string manifest_signed_by(const std::vector<SecretKey>& keys) {
  return sign_manifest(small_manifest(), keys).envelope;
}

}  // namespace sovdev::testing
