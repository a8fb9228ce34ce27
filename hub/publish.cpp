#include "hub/publish.hpp"

#include "bundles/hash.hpp"
#include "bundles/verify.hpp"
#include "hub/catalog.hpp"
#include "hub/rollout/operations.hpp"
#include "platform/fs/bundle_reader.hpp"

namespace sovdev::hub {
namespace {

struct OpenedBundle {
  pb::BundleManifest manifest;
  std::string digest;
  std::string envelope;
};

Expected<OpenedBundle> read_manifest(const PublishRequest& req) {
  SOVDEV_ASSIGN(fs::BundleFileReader reader, fs::BundleFileReader::open(req.file));
  OpenedBundle out;
  out.envelope = reader.manifest_envelope();
  if (req.trust) {
    SOVDEV_ASSIGN(out.manifest, req.trust->verify_manifest(out.envelope, &out.digest));
  } else {
    SOVDEV_ASSIGN(pb::Signed env, parse_signed(out.envelope, kTypeManifest, kMaxManifestBytes));
    if (!out.manifest.ParseFromString(env.body())) {
      return make_error(Errc::invalid, "bundle manifest body is not a valid BundleManifest");
    }
    SOVDEV_TRY(check_manifest_shape(out.manifest));
    out.digest = sha256(env.body());
  }
  SOVDEV_TRY(reader.check_size(out.manifest));
  // The whole payload is checked before anything is stored: the hub never serves a bundle
  // that agents would refuse.
  SOVDEV_ASSIGN(auto verifier, PayloadVerifier::create(
                                   out.manifest, [](pb::ResourceRecord&) -> Status { return {}; }));
  for (uint32_t i = 0; i < chunk_count(out.manifest); i++) {
    SOVDEV_ASSIGN(std::string_view chunk, reader.next_chunk(out.manifest));
    SOVDEV_TRY(verifier.add_chunk(i, chunk));
  }
  SOVDEV_TRY(verifier.finish());
  return out;
}

}  // namespace

Expected<PublishResult> publish_bundle(store::Database& db, const PublishRequest& req) {
  SOVDEV_ASSIGN(OpenedBundle bundle, read_manifest(req));
  const auto& m = bundle.manifest;
  store::HubBundle row;
  row.digest = bundle.digest;
  row.channel = m.channel();
  row.stack = m.stack();
  row.version = m.version();
  row.envelope = bundle.envelope;
  row.chunk_count = chunk_count(m);
  row.payload_size = m.payload_size();
  row.uncompressed_size = m.uncompressed_size();
  row.created_at = req.now;

  SOVDEV_ASSIGN(fs::BundleFileReader reader, fs::BundleFileReader::open(req.file));
  PublishResult result;
  if (req.hold) {
    // Before the bundle is stored: no catalog ever lists the new version as current.
    SOVDEV_ASSIGN(result.held_at, rollout::hold_current(db, m.channel(), m.stack(), req.now));
  }
  store::HubBundles bundles(db);
  SOVDEV_ASSIGN(bool stored, bundles.put_bundle(row, [&](uint32_t index) -> Expected<std::string> {
    SOVDEV_ASSIGN(std::string_view chunk, reader.next_chunk(m));
    // The file could have changed since it was checked: check again as it is stored.
    SOVDEV_TRY(verify_chunk(m, index, chunk));
    return std::string(chunk);
  }));
  result.manifest = m;
  result.digest = bundle.digest;
  result.already_published = !stored;
  SOVDEV_ASSIGN(result.catalog,
                refresh_catalog(db, m.channel(), req.keys, req.now, req.catalog_ttl));
  return result;
}

}  // namespace sovdev::hub
