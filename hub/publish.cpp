#include "hub/publish.hpp"

#include <set>

#include "common/hex.hpp"

#include "bundles/hash.hpp"
#include "bundles/verify.hpp"
#include "hub/catalog.hpp"
#include "hub/rollout/operations.hpp"
#include "platform/fs/bundle_reader.hpp"
#include "platform/store/hub_images.hpp"
#include "platform/store/transaction.hpp"

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

// The image blobs the manifest names, each once (a layer two arches share is listed twice).
std::vector<std::string> named_blobs(const pb::BundleManifest& m) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& b : m.image_blobs()) {
    if (seen.insert(b.digest()).second) out.push_back(b.digest());
  }
  return out;
}

// Agents would ask this hub for blobs it cannot serve and never apply the bundle: refused,
// naming the first missing blob and the build that stores them.
Status check_blobs_held(store::Database& db, const pb::BundleManifest& m,
                        const std::vector<std::string>& blobs) {
  store::HubImages images(db);
  SOVDEV_ASSIGN(const auto missing, images.missing(blobs));
  if (missing.empty()) return {};
  std::string named = "sha256:" + to_hex(missing.front());
  for (const auto& b : m.image_blobs()) {
    if (b.digest() != missing.front()) continue;
    named += " (" + b.media_type() + (b.arch().empty() ? "" : ", " + b.arch()) +
             (b.repository().empty() ? "" : ", " + b.repository()) + ")";
    break;
  }
  return make_error(Errc::not_found, "the bundle names " + std::to_string(missing.size()) +
                                         " image blob(s) " + db.path() + " does not hold, first " +
                                         named + ": build the bundle with --images --db " +
                                         db.path() + " (it stores them), then publish it again");
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

  const std::vector<std::string> blobs = named_blobs(m);
  SOVDEV_TRY(check_blobs_held(db, m, blobs));

  SOVDEV_ASSIGN(fs::BundleFileReader reader, fs::BundleFileReader::open(req.file));
  PublishResult result;
  if (req.hold) {
    // Before the bundle is stored: no catalog ever lists the new version as current.
    SOVDEV_ASSIGN(result.held_at, rollout::hold_current(db, m.channel(), m.stack(), req.now));
  }
  store::HubBundles bundles(db);
  // The bundle and the blobs it names in one transaction: a stored bundle always has them.
  SOVDEV_ASSIGN(bool stored, store::transaction(db, [&]() -> Expected<bool> {
                  SOVDEV_ASSIGN(
                      bool put,
                      bundles.put_bundle(row, [&](uint32_t index) -> Expected<std::string> {
                        SOVDEV_ASSIGN(std::string_view chunk, reader.next_chunk(m));
                        // The file could have changed since it was checked: check again as it is
                        // stored.
                        SOVDEV_TRY(verify_chunk(m, index, chunk));
                        return std::string(chunk);
                      }));
                  if (!blobs.empty())
                    SOVDEV_TRY(store::HubImages(db).name_blobs(bundle.digest, blobs));
                  return put;
                }));
  result.manifest = m;
  result.digest = bundle.digest;
  result.already_published = !stored;
  SOVDEV_ASSIGN(result.catalog,
                refresh_catalog(db, m.channel(), req.keys, req.now, req.catalog_ttl));
  return result;
}

}  // namespace sovdev::hub
