// Publishing a built bundle file into hub.db: verified, stored content-addressed, and the
// channel's catalog advanced.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bundles/keys.hpp"
#include "bundles/trust.hpp"
#include "platform/store/hub_store.hpp"

namespace sovdev::hub {

struct PublishRequest {
  std::string file;
  std::vector<SecretKey> keys;       // sign the catalog
  std::optional<TrustPolicy> trust;  // when given, the bundle's signatures are checked
  int64_t now = 0;
  int64_t catalog_ttl = 0;
  // Hold the stack at the version current before this one (unless held already): the catalog
  // keeps listing it, and `rollout start` takes the new version out in waves.
  bool hold = false;
};

struct PublishResult {
  pb::BundleManifest manifest;
  std::string digest;
  bool already_published = false;
  std::optional<uint64_t> held_at;  // with `hold`: the version the stack is held at
  store::HubCatalog catalog;
};

Expected<PublishResult> publish_bundle(store::Database& db, const PublishRequest& request);

}  // namespace sovdev::hub
