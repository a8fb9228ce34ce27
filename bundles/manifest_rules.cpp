#include "bundles/manifest_rules.hpp"

#include <algorithm>

#include "bundles/hash.hpp"
#include "bundles/image_rules.hpp"

namespace sovdev {
namespace {

// seal::kKeyIdSize; bundles/seal.hpp is not needed for a length.
constexpr size_t kKeyIdSize = 32;

bool valid_stack_name(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
  });
}

Error invalid(const std::string& what) {
  return make_error(Errc::invalid, "malformed manifest: " + what);
}

// Sealed records name an epoch key: the manifest says which (channel, epoch, key id), so an
// agent knows what to ask for and refuses any other key. Nothing sealed, nothing named.
Status check_secrets_shape(const pb::BundleManifest& m) {
  if (m.sealed_objects() == 0) {
    if (!m.secrets_channel().empty() || m.secrets_epoch() != 0 || !m.secrets_key_id().empty()) {
      return invalid("names a secrets epoch but seals no object");
    }
    return {};
  }
  if (m.sealed_objects() > m.resource_count()) {
    return invalid("seals " + std::to_string(m.sealed_objects()) + " objects of " +
                   std::to_string(m.resource_count()));
  }
  if (!valid_stack_name(m.secrets_channel())) {
    return invalid("bad secrets channel name '" + m.secrets_channel() + "'");
  }
  if (m.secrets_epoch() == 0) return invalid("seals objects under no epoch (epoch 0)");
  if (m.secrets_key_id().size() != kKeyIdSize) return invalid("secrets key id is not 32 bytes");
  return {};
}

}  // namespace

Status check_manifest_shape(const pb::BundleManifest& m) {
  if (m.schema() == 0 || m.schema() > kSchema) {
    return invalid("schema " + std::to_string(m.schema()) + " is not understood by this program");
  }
  if (!valid_stack_name(m.stack())) return invalid("bad stack name '" + m.stack() + "'");
  if (!valid_stack_name(m.channel())) return invalid("bad channel name '" + m.channel() + "'");
  if (m.version() == 0) return invalid("version must be ≥ 1");
  if (m.arch_size() == 0) return invalid("no target architecture");
  if (m.compression() != "zstd") return invalid("unknown compression '" + m.compression() + "'");
  if (m.chunk_size() < kMinChunkSize || m.chunk_size() > kMaxChunkSize) {
    return invalid("chunk size " + std::to_string(m.chunk_size()) + " out of range");
  }
  if (m.window_log() < 10 || m.window_log() > kMaxWindowLog) {
    return invalid("zstd window log " + std::to_string(m.window_log()) + " out of range (10.." +
                   std::to_string(kMaxWindowLog) + ")");
  }
  if (m.payload_size() == 0) return invalid("empty payload");
  // Not (size + chunk - 1) / chunk: that wraps for a payload_size near 2^64.
  const uint64_t chunks =
      m.payload_size() / m.chunk_size() + (m.payload_size() % m.chunk_size() != 0 ? 1 : 0);
  if (chunks != static_cast<uint64_t>(m.chunk_sha256_size())) {
    return invalid("lists " + std::to_string(m.chunk_sha256_size()) + " chunk hashes for " +
                   std::to_string(chunks) + " chunks");
  }
  for (const auto& h : m.chunk_sha256()) {
    if (h.size() != kDigestSize) return invalid("a chunk hash is not 32 bytes");
  }
  if (m.payload_sha256().size() != kDigestSize) return invalid("payload hash is not 32 bytes");
  if (!m.uncompressed_sha256().empty() && m.uncompressed_sha256().size() != kDigestSize) {
    return invalid("uncompressed hash is not 32 bytes");
  }
  if (m.max_record_size() > kMaxRecordSize) {
    return invalid("declares a record of " + std::to_string(m.max_record_size()) + " bytes");
  }
  SOVDEV_TRY(check_image_fields(m));
  return check_secrets_shape(m);
}

std::string describe(const pb::BundleManifest& m) {
  std::string out = m.stack() + "@" + std::to_string(m.version()) + " (channel " + m.channel();
  for (const auto& a : m.arch()) out += ", " + a;
  return out + ")";
}

Status check_installable(const pb::BundleManifest& m, std::string_view digest,
                         const InstallTarget& target, const std::optional<HeldVersion>& highest,
                         const std::optional<HeldVersion>& same_version) {
  if (!target.channel.empty() && m.channel() != target.channel) {
    return make_error(Errc::wrong_target, describe(m) + " is for channel '" + m.channel() +
                                              "', this agent follows '" + target.channel + "'");
  }
  if (!target.arch.empty() &&
      std::find(m.arch().begin(), m.arch().end(), target.arch) == m.arch().end()) {
    return make_error(Errc::wrong_target,
                      describe(m) + " is not built for this machine's architecture " + target.arch);
  }
  if (same_version && same_version->digest != digest) {
    return make_error(Errc::conflict, describe(m) + " has other content (" + short_hex(digest) +
                                          ") than the version already held (" +
                                          short_hex(same_version->digest) +
                                          "): a publisher must never reuse a version number");
  }
  if (highest && m.version() < highest->version) {
    return make_error(Errc::rollback, describe(m) + " is older than version " +
                                          std::to_string(highest->version) +
                                          " already held: rollback refused");
  }
  return {};
}

Status check_catalog_fresh(const pb::Catalog& catalog, int64_t now) {
  if (catalog.expires_at() <= now) {
    // In unsigned arithmetic: now - expires_at overflows int64 for a far-past expiry.
    const uint64_t age = static_cast<uint64_t>(now) - static_cast<uint64_t>(catalog.expires_at());
    return make_error(Errc::expired, "catalog for channel '" + catalog.channel() + "' (serial " +
                                         std::to_string(catalog.serial()) + ") expired " +
                                         std::to_string(age) +
                                         " s ago: no new installs until the hub re-signs it");
  }
  return {};
}

std::string host_arch() {
#if defined(__aarch64__)
  return "arm64";
#elif defined(__x86_64__)
  return "amd64";
#elif defined(__arm__)
  return "armhf";
#else
  return "unknown";
#endif
}

}  // namespace sovdev
