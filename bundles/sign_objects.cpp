#include "bundles/sign_objects.hpp"

#include "bundles/hash.hpp"

namespace sovdev {
namespace {

std::string sign_body(std::string_view type, std::string body, const std::vector<SecretKey>& keys) {
  pb::Signed envelope = make_signed(type, std::move(body));
  for (const auto& key : keys) add_signature(envelope, key);
  return envelope.SerializeAsString();
}

}  // namespace

pb::BundleManifest make_manifest(const BundleInfo& info, const PayloadSummary& summary,
                                 const PayloadWriter::Options& options) {
  pb::BundleManifest m;
  m.set_schema(kSchema);
  m.set_stack(info.stack);
  m.set_channel(info.channel);
  m.set_version(info.version);
  for (const auto& a : info.arch) m.add_arch(a);
  m.set_created_at(info.created_at);
  m.set_compression("zstd");
  m.set_chunk_size(options.chunk_size);
  m.set_payload_size(summary.payload_size);
  m.set_uncompressed_size(summary.uncompressed_size);
  m.set_payload_sha256(summary.payload_sha256);
  for (const auto& h : summary.chunk_sha256) m.add_chunk_sha256(h);
  m.set_uncompressed_sha256(summary.uncompressed_sha256);
  m.set_resource_count(summary.resource_count);
  m.set_window_log(options.window_log);
  m.set_environment(info.environment);
  m.set_source_revision(info.source_revision);
  m.set_max_record_size(summary.max_record_size);
  return m;
}

SignedManifest sign_manifest(const pb::BundleManifest& manifest,
                             const std::vector<SecretKey>& keys) {
  std::string body = manifest.SerializeAsString();
  std::string digest = sha256(body);
  return {sign_body(kTypeManifest, std::move(body), keys), std::move(digest)};
}

std::string sign_catalog(const pb::Catalog& catalog, const std::vector<SecretKey>& keys) {
  return sign_body(kTypeCatalog, catalog.SerializeAsString(), keys);
}

std::string sign_revocations(const pb::RevocationList& list, const std::vector<SecretKey>& keys) {
  return sign_body(kTypeRevocations, list.SerializeAsString(), keys);
}

}  // namespace sovdev
