// Keys and trust roots for tests.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

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

}  // namespace sovdev::testing
