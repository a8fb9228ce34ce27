#include "agent/trust_pin.hpp"

#include <cstdio>

#include "platform/fs/files.hpp"
#include "platform/store/agent_cache.hpp"

namespace sovdev::agent {

Expected<TrustPolicy> trust_from_file(const std::string& path) {
  SOVDEV_ASSIGN(std::string bytes, fs::read_file(path, kMaxTrustRootBytes));
  auto policy = TrustPolicy::from_initial(bytes);
  if (!policy) return std::move(policy).error().context(path);
  return policy;
}

Expected<TrustPolicy> pinned_trust(store::Database& db,
                                   const std::optional<std::string>& trust_file) {
  store::TrustHistory history(db);
  SOVDEV_ASSIGN(auto latest, history.latest());
  if (!latest) {
    if (!trust_file) {
      return make_error(Errc::usage, "this agent has no trust root yet: give one with --trust");
    }
    SOVDEV_ASSIGN(TrustPolicy policy, trust_from_file(*trust_file));
    SOVDEV_TRY(history.add_root(policy.version(), policy.envelope()));
    return policy;
  }
  auto pinned = TrustPolicy::from_initial(latest->envelope);
  if (!pinned) return std::move(pinned).error().context("pinned trust root in the cache");
  if (!trust_file) return pinned;

  SOVDEV_ASSIGN(TrustPolicy offered, trust_from_file(*trust_file));
  if (offered.version() < pinned->version()) {
    // The cache already holds a newer root; an old file on the command line changes nothing.
    std::fprintf(stderr, "note: %s is trust root v%llu; keeping the pinned v%llu\n",
                 trust_file->c_str(), static_cast<unsigned long long>(offered.version()),
                 static_cast<unsigned long long>(pinned->version()));
    return pinned;
  }
  if (offered.version() == pinned->version()) {
    if (offered.envelope() != pinned->envelope() &&
        offered.root().SerializeAsString() != pinned->root().SerializeAsString()) {
      return make_error(Errc::conflict,
                        *trust_file + " is trust root v" + std::to_string(offered.version()) +
                            " but differs from the pinned v" + std::to_string(pinned->version()));
    }
    return pinned;
  }
  auto rotated = pinned->rotate(offered.envelope());
  if (!rotated) return std::move(rotated).error().context(*trust_file);
  SOVDEV_TRY(history.add_root(rotated->version(), rotated->envelope()));
  return rotated;
}

}  // namespace sovdev::agent
