#include "hub/catalog.hpp"

#include <limits>

#include "bundles/manifest_rules.hpp"
#include "bundles/sign_objects.hpp"
#include "bundles/trust.hpp"
#include "platform/store/catalog_inputs.hpp"
#include "platform/store/rollout_store.hpp"
#include "platform/store/transaction.hpp"

namespace sovdev::hub {
namespace {

// Room for the envelope around the body: its type and up to this many signatures (key id,
// Ed25519 signature, framing), more than any role's threshold in use.
constexpr size_t kSignaturesReserved = 8;
constexpr size_t kBytesPerSignature = 112;
constexpr size_t kEnvelopeOverhead = 32;

Expected<pb::BundleManifest> stored_manifest(const store::HubBundle& b) {
  pb::Signed envelope;
  pb::BundleManifest m;
  if (!envelope.ParseFromString(b.envelope) || !m.ParseFromString(envelope.body())) {
    return make_error(Errc::store, "stored manifest of " + b.stack + "@" +
                                       std::to_string(b.version) + " is unreadable");
  }
  return m;
}

// The bundle the entry lists: the held version when the stack is held, else the newest.
Expected<store::HubBundle> current_bundle(store::Database& db, const store::HubBundle& newest) {
  SOVDEV_ASSIGN(auto hold, store::StackHolds(db).get(newest.channel, newest.stack));
  if (!hold || hold->version == newest.version) return newest;
  store::HubBundles bundles(db);
  SOVDEV_ASSIGN(auto versions, bundles.versions(newest.channel, newest.stack));
  for (const auto& v : versions) {
    if (v.version != hold->version) continue;
    SOVDEV_ASSIGN(auto held, bundles.find(v.digest));
    if (held) return std::move(*held);
  }
  return make_error(Errc::not_found, newest.channel + "/" + newest.stack + " is held at version " +
                                         std::to_string(hold->version) +
                                         ", which is not published: publish it again, or run "
                                         "sovdev-hub rollout release --channel " +
                                         newest.channel + " --stack " + newest.stack);
}

// The stack's newest rollout while agents must still hear of it: running, paused, or aborted
// (until a newer rollout replaces it or the entry's version passes it), so that a revert
// reaches the agents that were offline when it was decided.
Status add_rollout(store::Database& db, pb::CatalogEntry& entry, const std::string& channel) {
  SOVDEV_ASSIGN(auto rollout, store::Rollouts(db).newest(channel, entry.stack()));
  if (!rollout || rollout->state == store::RolloutState::completed) return {};
  if (rollout->version <= entry.version()) return {};
  SOVDEV_ASSIGN(auto bundle, store::HubBundles(db).find(rollout->digest));
  if (!bundle) {
    return make_error(Errc::not_found, "rollout " + std::to_string(rollout->id) + " names " +
                                           entry.stack() + "@" + std::to_string(rollout->version) +
                                           ", which is not published any more");
  }
  SOVDEV_ASSIGN(const pb::BundleManifest m, stored_manifest(*bundle));
  pb::CatalogRollout* r = entry.mutable_rollout();
  r->set_id(rollout->id);
  r->set_version(rollout->version);
  r->set_manifest_digest(rollout->digest);
  r->set_manifest_size(bundle->envelope.size());
  r->set_payload_size(bundle->payload_size);
  r->set_uncompressed_size(bundle->uncompressed_size);
  for (const auto& a : m.arch()) r->add_arch(a);
  for (size_t i = 0; i <= rollout->current_wave && i < rollout->waves.size(); ++i) {
    pb::RolloutWave* w = r->add_admitted();
    w->set_name(rollout->waves[i].name);
    w->set_selector(rollout->waves[i].selector);
    w->set_percent(rollout->waves[i].percent);
  }
  switch (rollout->state) {
    case store::RolloutState::paused: r->set_state(pb::CatalogRollout::PAUSED); break;
    case store::RolloutState::aborted: r->set_state(pb::CatalogRollout::ABORTED); break;
    default: r->set_state(pb::CatalogRollout::RUNNING); break;
  }
  r->set_revert(rollout->state == store::RolloutState::aborted && rollout->rollback_on_abort);
  r->set_ignore_windows(rollout->ignore_windows);
  return {};
}

}  // namespace

Expected<pb::Catalog> catalog_content(store::Database& db, const std::string& channel) {
  store::HubBundles bundles(db);
  SOVDEV_ASSIGN(auto newest, bundles.newest_per_stack(channel));
  pb::Catalog catalog;
  catalog.set_schema(kSchema);
  catalog.set_channel(channel);
  for (const auto& latest : newest) {
    SOVDEV_ASSIGN(const store::HubBundle b, current_bundle(db, latest));
    SOVDEV_ASSIGN(const pb::BundleManifest m, stored_manifest(b));
    auto* e = catalog.add_entries();
    e->set_stack(b.stack);
    e->set_version(b.version);
    e->set_manifest_digest(b.digest);
    e->set_manifest_size(b.envelope.size());
    e->set_payload_size(b.payload_size);
    e->set_uncompressed_size(b.uncompressed_size);
    for (const auto& a : m.arch()) e->add_arch(a);
    SOVDEV_TRY(add_rollout(db, *e, channel));
  }
  // As `window add` checked them with platform/windows.
  SOVDEV_ASSIGN(auto windows, store::HubWindows(db).for_channel(channel));
  for (const auto& w : windows) {
    auto* mw = catalog.add_windows();
    mw->set_selector(w.selector);
    mw->set_deny(w.deny);
    mw->set_schedule(w.schedule);
    mw->set_duration(w.duration);
    mw->set_zone(w.zone);
  }
  SOVDEV_ASSIGN(auto revocations, store::RevocationLists(db).newest(channel));
  if (revocations) catalog.set_revocations(revocations->envelope);
  return catalog;
}

Status check_catalog_fits(const pb::Catalog& content, const std::string& what) {
  pb::Catalog dated = content;
  // The largest varints the times and serial take.
  dated.set_serial(std::numeric_limits<uint64_t>::max());
  dated.set_issued_at(std::numeric_limits<int64_t>::max());
  dated.set_expires_at(std::numeric_limits<int64_t>::max());
  const size_t size =
      dated.ByteSizeLong() + kEnvelopeOverhead + kSignaturesReserved * kBytesPerSignature;
  if (size <= kMaxCatalogBytes) return {};
  return make_error(Errc::too_large,
                    what + " would make channel " + content.channel() + "'s signed catalog about " +
                        std::to_string(size) + " bytes, over the " +
                        std::to_string(kMaxCatalogBytes) +
                        " agents accept: use fewer or shorter windows and selectors");
}

Expected<store::HubCatalog> refresh_catalog(store::Database& db, const std::string& channel,
                                            const std::vector<SecretKey>& keys, int64_t now,
                                            int64_t ttl_seconds) {
  return store::transaction(db, [&]() -> Expected<store::HubCatalog> {
    store::HubCatalogs catalogs(db);
    SOVDEV_ASSIGN(auto previous, catalogs.catalog(channel));
    SOVDEV_ASSIGN(pb::Catalog catalog, catalog_content(db, channel));
    catalog.set_serial(previous ? previous->serial + 1 : 1);
    catalog.set_issued_at(now);
    catalog.set_expires_at(now + ttl_seconds);
    const std::string envelope = sign_catalog(catalog, keys);
    if (envelope.size() > kMaxCatalogBytes) {
      return make_error(Errc::too_large, "the catalog of " + channel + " would be " +
                                             std::to_string(envelope.size()) +
                                             " bytes signed, over the " +
                                             std::to_string(kMaxCatalogBytes) + " agents accept");
    }
    SOVDEV_TRY(catalogs.put_catalog(channel, catalog.serial(), catalog.expires_at(), envelope));
    return store::HubCatalog{channel, catalog.serial(), catalog.expires_at(), envelope};
  });
}

std::string catalog_topic(const std::string& prefix, const std::string& channel) {
  return prefix + "/catalog/" + channel;
}

}  // namespace sovdev::hub
