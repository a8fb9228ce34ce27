#include "agent/delta_rebuild.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <random>

#include "agent/payload_source.hpp"
#include "bundles/delta.hpp"
#include "bundles/hash.hpp"
#include "bundles/keys.hpp"
#include "bundles/trust.hpp"
#include "common/hex.hpp"
#include "platform/fs/files.hpp"
#include "platform/fs/mapped_file.hpp"

namespace sovdev::agent {
namespace {

// Every temporary file of a rebuild starts so (OutputFile's hidden names included).
constexpr std::string_view kTempPrefix = ".rebuild-";

// A name in the work folder, removed when dropped whatever became of the file meanwhile.
class TempPath {
 public:
  TempPath(const std::string& dir, std::string_view stem) {
    static std::atomic<uint64_t> counter{0};
    std::random_device random;
    path_ = dir + "/" + std::string(kTempPrefix) + std::string(stem) + "-" +
            std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
            std::to_string(random());
  }
  TempPath(const TempPath&) = delete;
  TempPath& operator=(const TempPath&) = delete;
  ~TempPath() { ::unlink(path_.c_str()); }
  const std::string& str() const { return path_; }

 private:
  std::string path_;
};

std::string name_of(std::string_view digest) {
  return to_hex(digest.substr(0, 6));
}

// The manifest of a cached bundle: stored after verification, so only its integrity is checked.
Expected<pb::BundleManifest> cached_manifest(const store::BundleInfo& info) {
  SOVDEV_ASSIGN(pb::Signed envelope, parse_signed(info.envelope, kTypeManifest, kMaxManifestBytes));
  if (sha256(envelope.body()) != info.digest) {
    return make_error(Errc::store, "the cached manifest of the base does not match its digest");
  }
  pb::BundleManifest manifest;
  if (!manifest.ParseFromString(envelope.body())) {
    return make_error(Errc::store, "the cached manifest of the base is not a BundleManifest");
  }
  SOVDEV_TRY(check_manifest_shape(manifest));
  return manifest;
}

Status check_inputs(const pb::BundleManifest& target, const std::string& target_envelope,
                    std::string_view target_digest, const store::BundleInfo& base,
                    const pb::DeltaManifest& delta) {
  SOVDEV_TRY(check_delta_shape(delta));
  if (delta.manifest_digest() != target_digest) {
    return make_error(Errc::invalid, "the delta builds bundle " + name_of(delta.manifest_digest()) +
                                         ", not " + name_of(target_digest));
  }
  if (delta.base_digest() != base.digest) {
    return make_error(Errc::invalid, "the delta starts from bundle " +
                                         name_of(delta.base_digest()) + ", the base given is " +
                                         name_of(base.digest));
  }
  if (base.state != store::BundleState::verified) {
    return make_error(Errc::invalid, std::string("the base bundle is ") +
                                         store::state_name(base.state) + ", not verified");
  }
  if (target.uncompressed_sha256().size() != kDigestSize) {
    return make_error(Errc::invalid,
                      "the target manifest signs no uncompressed hash, so a rebuilt payload could "
                      "not be checked: fetch the bundle in full");
  }
  SOVDEV_ASSIGN(pb::Signed envelope,
                parse_signed(target_envelope, kTypeManifest, kMaxManifestBytes));
  if (sha256(envelope.body()) != target_digest) {
    return make_error(Errc::invalid, "the target envelope is not the manifest of bundle " +
                                         name_of(target_digest));
  }
  return {};
}

// Every chunk against its signed hash, then the whole: the file is the caller's collection.
// An inline delta has no chunks: it is checked whole.
Status check_delta_bytes(const pb::DeltaManifest& delta, std::string_view bytes) {
  if (bytes.size() != delta.delta_size()) {
    return make_error(Errc::invalid, "the delta file holds " + std::to_string(bytes.size()) +
                                         " bytes, the delta manifest declares " +
                                         std::to_string(delta.delta_size()));
  }
  if (is_inline_delta(delta)) return verify_inline_delta(delta, bytes);
  Sha256 whole;
  for (uint32_t i = 0; i < delta_chunk_count(delta); i++) {
    const std::string_view piece =
        bytes.substr(static_cast<size_t>(uint64_t{i} * delta.chunk_size()),
                     static_cast<size_t>(delta_chunk_length(delta, i)));
    SOVDEV_TRY(verify_delta_chunk(delta, i, piece));
    whole.update(piece);
  }
  if (whole.finish() != delta.delta_sha256()) {
    return make_error(Errc::signature, "the delta does not match its signed hash");
  }
  return {};
}

// Steps 5 and 6 on the rebuilt record stream: check it, compress it, store it.
Expected<RebuildResult> store_rebuilt(store::Database& db, const pb::BundleManifest& target,
                                      const std::string& target_envelope,
                                      std::string_view target_digest, std::string_view stream,
                                      const std::string& work_dir) {
  if (sha256(stream) != target.uncompressed_sha256()) {
    return make_error(Errc::signature,
                      "the rebuilt record stream does not match the signed manifest's "
                      "uncompressed hash: the delta or the base is not what the hub used");
  }
  RebuildResult result;
  result.uncompressed_size = stream.size();
  SOVDEV_ASSIGN(result.records,
                check_record_stream(stream, std::min(kMaxRecordSize, target.max_record_size())));
  if (result.records != target.resource_count()) {
    return make_error(Errc::invalid, "the rebuilt record stream holds " +
                                         std::to_string(result.records) +
                                         " objects, the manifest declares " +
                                         std::to_string(target.resource_count()));
  }

  // Compressed into a file first: the store then takes the chunks in one short transaction.
  // Never committed, so dropping it removes it.
  SOVDEV_ASSIGN(fs::OutputFile payload, fs::OutputFile::create(work_dir + "/rebuild-payload"));
  SOVDEV_ASSIGN(result.payload_size,
                compress_record_stream(
                    stream, kRebuiltLevel, std::min(kRebuiltWindowLog, target.window_log()),
                    [&](std::string_view bytes) { return payload.write(bytes); }));
  const uint32_t chunk_size = target.chunk_size();
  result.chunk_count = static_cast<uint32_t>((result.payload_size + chunk_size - 1) / chunk_size);
  SOVDEV_ASSIGN(fs::InputFile in, fs::InputFile::open(payload.temp_path()));
  store::BundleMeta meta;
  meta.digest = std::string(target_digest);
  meta.stack = target.stack();
  meta.channel = target.channel();
  meta.version = target.version();
  meta.envelope = target_envelope;
  meta.chunk_count = result.chunk_count;
  meta.payload_size = result.payload_size;
  store::BundleCache cache(db);
  SOVDEV_TRY(cache.put_rebuilt(meta, [&](uint32_t, std::string& chunk) -> Status {
    SOVDEV_ASSIGN(std::string_view piece, in.read(chunk_size));
    chunk.assign(piece);
    return {};
  }));
  return result;
}

Expected<RebuildResult> rebuild(store::Database& db, const pb::BundleManifest& target,
                                const std::string& target_envelope, std::string_view target_digest,
                                const store::BundleInfo& base, const pb::DeltaManifest& delta,
                                const std::string& delta_file, const std::string& work_dir) {
  SOVDEV_TRY(check_inputs(target, target_envelope, target_digest, base, delta));
  SOVDEV_ASSIGN(const pb::BundleManifest base_manifest, cached_manifest(base));
  // What make_delta guarantees; it also bounds the disk the temporary files may take.
  const uint64_t reach = base_manifest.uncompressed_size() + target.uncompressed_size();
  if (reach > (uint64_t{1} << delta.window_log())) {
    return make_error(Errc::too_large, "base and target record streams together are " +
                                           std::to_string(reach) +
                                           " bytes, more than the delta's window of 2^" +
                                           std::to_string(delta.window_log()));
  }
  store::BundleCache cache(db);
  SOVDEV_ASSIGN(auto held, cache.find(target_digest));
  if (held && held->state == store::BundleState::verified) {
    RebuildResult result;
    result.already_present = true;
    result.records = target.resource_count();
    result.uncompressed_size = target.uncompressed_size();
    result.payload_size = held->payload_size;
    result.chunk_count = held->chunk_count;
    return result;
  }

  // Declared before the mappings, so each file is unmapped before its name is removed.
  const TempPath base_path(work_dir, "base");
  const TempPath out_path(work_dir, "target");

  SOVDEV_ASSIGN(fs::MappedFile delta_map, fs::MappedFile::open(delta_file));
  SOVDEV_TRY(check_delta_bytes(delta, delta_map.view()));
  SOVDEV_TRY(write_record_stream(db, base, base_manifest, base_path.str()));
  SOVDEV_ASSIGN(fs::MappedFile base_map, fs::MappedFile::open(base_path.str()));
  SOVDEV_ASSIGN(fs::MappedFile out,
                fs::MappedFile::create(out_path.str(), target.uncompressed_size()));
  SOVDEV_TRY(apply_delta(base_map.view(), delta_map.view(), delta.window_log(), out.writable()));
  base_map.close();
  delta_map.close();
  return store_rebuilt(db, target, target_envelope, target_digest, out.view(), work_dir);
}

}  // namespace

Status remove_stale_rebuild_files(const std::string& work_dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(work_dir, ec);
  if (ec == std::errc::no_such_file_or_directory) return {};
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (it->path().filename().string().rfind(kTempPrefix, 0) != 0) continue;
    if (!std::filesystem::remove(it->path(), ec) && ec) {
      return make_error(Errc::io, "remove " + it->path().string() + ": " + ec.message());
    }
  }
  if (ec) return make_error(Errc::io, "read folder " + work_dir + ": " + ec.message());
  return {};
}

Expected<RebuildResult> rebuild_from_delta(
    store::Database& db, const pb::BundleManifest& target, const std::string& target_envelope,
    std::string_view target_digest, const store::BundleInfo& base, const pb::DeltaManifest& delta,
    const std::string& delta_file, const std::string& work_dir) {
  auto rebuilt =
      rebuild(db, target, target_envelope, target_digest, base, delta, delta_file, work_dir);
  if (!rebuilt) {
    return std::move(rebuilt).error().context("rebuild " + describe(target) +
                                              " from a delta against version " +
                                              std::to_string(base.version));
  }
  return rebuilt;
}

}  // namespace sovdev::agent
