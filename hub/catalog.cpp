#include "hub/catalog.hpp"

#include "bundles/manifest_rules.hpp"
#include "bundles/sign_objects.hpp"
#include "platform/store/transaction.hpp"

namespace sovdev::hub {

Expected<store::HubCatalog> refresh_catalog(store::Database& db, const std::string& channel,
                                            const std::vector<SecretKey>& keys, int64_t now,
                                            int64_t ttl_seconds) {
  return store::transaction(db, [&]() -> Expected<store::HubCatalog> {
    store::HubBundles bundles(db);
    store::HubCatalogs catalogs(db);
    SOVDEV_ASSIGN(auto previous, catalogs.catalog(channel));
    SOVDEV_ASSIGN(auto newest, bundles.newest_per_stack(channel));
    pb::Catalog catalog;
    catalog.set_schema(kSchema);
    catalog.set_channel(channel);
    catalog.set_serial(previous ? previous->serial + 1 : 1);
    catalog.set_issued_at(now);
    catalog.set_expires_at(now + ttl_seconds);
    for (const auto& b : newest) {
      pb::Signed envelope;
      pb::BundleManifest m;
      if (!envelope.ParseFromString(b.envelope) || !m.ParseFromString(envelope.body())) {
        return make_error(Errc::store, "stored manifest of " + b.stack + "@" +
                                           std::to_string(b.version) + " is unreadable");
      }
      auto* e = catalog.add_entries();
      e->set_stack(b.stack);
      e->set_version(b.version);
      e->set_manifest_digest(b.digest);
      e->set_manifest_size(b.envelope.size());
      e->set_payload_size(b.payload_size);
      e->set_uncompressed_size(b.uncompressed_size);
      for (const auto& a : m.arch()) e->add_arch(a);
    }
    const std::string envelope = sign_catalog(catalog, keys);
    SOVDEV_TRY(catalogs.put_catalog(channel, catalog.serial(), catalog.expires_at(), envelope));
    return store::HubCatalog{channel, catalog.serial(), catalog.expires_at(), envelope};
  });
}

std::string catalog_topic(const std::string& prefix, const std::string& channel) {
  return prefix + "/catalog/" + channel;
}

}  // namespace sovdev::hub
