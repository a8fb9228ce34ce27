#include "agent/payload_source.hpp"

#include <unistd.h>

#include "bundles/hash.hpp"
#include "bundles/verify.hpp"
#include "platform/fs/mapped_file.hpp"

namespace sovdev::agent {
namespace {

std::string what_of(const store::BundleInfo& info, const pb::BundleManifest& manifest) {
  return "read bundle " + describe(manifest) + (info.rebuilt ? " (rebuilt from a delta)" : "");
}

// A signed payload's cached shape must be the signed one.
Status check_signed_shape(const store::BundleInfo& info, const pb::BundleManifest& manifest) {
  if (info.chunk_count == chunk_count(manifest) && info.payload_size == manifest.payload_size()) {
    return {};
  }
  return make_error(Errc::store, "the cache records " + std::to_string(info.chunk_count) +
                                     " chunks of " + std::to_string(info.payload_size) +
                                     " bytes, the manifest " +
                                     std::to_string(chunk_count(manifest)) + " of " +
                                     std::to_string(manifest.payload_size()));
}

// Without the signed uncompressed hash nothing vouches for a payload the agent compressed.
Status check_rebuilt_verifiable(const pb::BundleManifest& manifest) {
  if (manifest.uncompressed_sha256().size() == kDigestSize) return {};
  return make_error(Errc::signature,
                    "the payload was rebuilt, but the manifest signs no uncompressed hash to "
                    "check it against");
}

Status read_records(store::Database& db, const store::BundleInfo& info,
                    const pb::BundleManifest& manifest, PayloadReader::OnRecord on_record) {
  store::BundleCache cache(db);
  std::string chunk;
  if (!info.rebuilt) {
    SOVDEV_TRY(check_signed_shape(info, manifest));
    SOVDEV_ASSIGN(auto verifier, PayloadVerifier::create(manifest, std::move(on_record)));
    for (uint32_t i = 0; i < info.chunk_count; i++) {
      SOVDEV_TRY(cache.read_chunk(info.digest, i, chunk));
      SOVDEV_TRY(verifier.add_chunk(i, chunk));
    }
    SOVDEV_TRY(verifier.finish());
    return {};
  }
  SOVDEV_TRY(check_rebuilt_verifiable(manifest));
  auto limits = PayloadReader::limits_for(manifest);
  limits.uncompressed_sha256 = manifest.uncompressed_sha256();
  SOVDEV_ASSIGN(auto reader, PayloadReader::create(limits, std::move(on_record)));
  uint64_t total = 0;
  for (uint32_t i = 0; i < info.chunk_count; i++) {
    SOVDEV_TRY(cache.read_chunk(info.digest, i, chunk));
    total += chunk.size();
    auto fed = reader.feed(chunk);
    if (!fed) return std::move(fed).error().context("chunk " + std::to_string(i));
  }
  if (total != info.payload_size) {
    return make_error(Errc::store, "the cached chunks hold " + std::to_string(total) +
                                       " bytes, the cache records " +
                                       std::to_string(info.payload_size));
  }
  SOVDEV_ASSIGN(const uint32_t records, reader.finish());
  if (records != manifest.resource_count()) {
    return make_error(Errc::invalid, "payload holds " + std::to_string(records) +
                                         " objects, the manifest declares " +
                                         std::to_string(manifest.resource_count()));
  }
  return {};
}

// Decodes the payload's chunks straight into the mapped output file: zstd copies out of its
// window into the mapping, so nothing but the window is held.
class StreamDecoder {
 public:
  static Expected<StreamDecoder> create(const pb::BundleManifest& manifest, fs::MappedFile out) {
    DCtxPtr dctx(ZSTD_createDCtx());
    if (!dctx) return make_error(Errc::internal, "out of memory creating a zstd decoder");
    const size_t rc = ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax,
                                             static_cast<int>(manifest.window_log()));
    if (ZSTD_isError(rc)) {
      return make_error(Errc::internal,
                        std::string("configure zstd decoder: ") + ZSTD_getErrorName(rc));
    }
    return StreamDecoder(std::move(dctx), std::move(out));
  }

  Status feed(std::string_view compressed) {
    ZSTD_inBuffer in{compressed.data(), compressed.size(), 0};
    const std::span<char> target = out_.writable();
    while (in.pos < in.size) {
      if (done_) return make_error(Errc::invalid, "payload has data after the end of its frame");
      ZSTD_outBuffer out{target.data(), target.size(), produced_};
      const size_t consumed_before = in.pos;
      const size_t rc = ZSTD_decompressStream(dctx_.get(), &out, &in);
      if (ZSTD_isError(rc)) {
        return make_error(Errc::invalid,
                          std::string("decompress payload: ") + ZSTD_getErrorName(rc));
      }
      const bool progress = in.pos != consumed_before || out.pos != produced_;
      hash_.update(std::string_view(target.data() + produced_, out.pos - produced_));
      produced_ = out.pos;
      if (rc == 0) {
        done_ = true;
      } else if (!progress) {
        return inflates_too_far();
      }
    }
    return {};
  }

  Status finish(const pb::BundleManifest& manifest) {
    if (!done_) return make_error(Errc::invalid, "payload ends before its zstd frame does");
    if (produced_ != out_.size()) {
      return make_error(Errc::invalid, "payload decompresses to " + std::to_string(produced_) +
                                           " bytes, the manifest declares " +
                                           std::to_string(out_.size()));
    }
    if (!manifest.uncompressed_sha256().empty() &&
        hash_.finish() != manifest.uncompressed_sha256()) {
      return make_error(Errc::signature, "decompressed payload does not match its signed hash");
    }
    return {};
  }

 private:
  StreamDecoder(DCtxPtr dctx, fs::MappedFile out) : dctx_(std::move(dctx)), out_(std::move(out)) {}

  Error inflates_too_far() const {
    return make_error(Errc::too_large, "payload inflates past its declared size of " +
                                           std::to_string(out_.size()) + " bytes: refused");
  }

  DCtxPtr dctx_;
  fs::MappedFile out_;
  Sha256 hash_;
  size_t produced_ = 0;
  bool done_ = false;
};

// `created` tells the caller whether a file now exists at `path` that is this call's to remove.
Status write_stream(store::Database& db, const store::BundleInfo& info,
                    const pb::BundleManifest& manifest, const std::string& path, bool& created) {
  if (info.rebuilt) {
    SOVDEV_TRY(check_rebuilt_verifiable(manifest));
  } else {
    SOVDEV_TRY(check_signed_shape(info, manifest));
  }
  SOVDEV_ASSIGN(fs::MappedFile out, fs::MappedFile::create(path, manifest.uncompressed_size()));
  created = true;
  SOVDEV_ASSIGN(StreamDecoder decoder, StreamDecoder::create(manifest, std::move(out)));
  store::BundleCache cache(db);
  Sha256 payload_hash;
  std::string chunk;
  uint64_t total = 0;
  for (uint32_t i = 0; i < info.chunk_count; i++) {
    SOVDEV_TRY(cache.read_chunk(info.digest, i, chunk));
    if (!info.rebuilt) {
      SOVDEV_TRY(verify_chunk(manifest, i, chunk));
      payload_hash.update(chunk);
    }
    total += chunk.size();
    auto fed = decoder.feed(chunk);
    if (!fed) return std::move(fed).error().context("chunk " + std::to_string(i));
  }
  if (total != info.payload_size) {
    return make_error(Errc::store, "the cached chunks hold " + std::to_string(total) +
                                       " bytes, the cache records " +
                                       std::to_string(info.payload_size));
  }
  if (!info.rebuilt && payload_hash.finish() != manifest.payload_sha256()) {
    return make_error(Errc::signature, "payload hash does not match the signed manifest");
  }
  return decoder.finish(manifest);
}

}  // namespace

Status for_each_record(store::Database& db, const store::BundleInfo& info,
                       const pb::BundleManifest& manifest, PayloadReader::OnRecord on_record) {
  auto read = read_records(db, info, manifest, std::move(on_record));
  if (!read) return std::move(read).error().context(what_of(info, manifest));
  return {};
}

Status verify_cached_payload(store::Database& db, const store::BundleInfo& info,
                             const pb::BundleManifest& manifest,
                             const PayloadReader::OnRecord& check) {
  if (info.state != store::BundleState::verified) {
    return make_error(Errc::not_found, "the cached payload of " + describe(manifest) +
                                           " is not whole (" + store::state_name(info.state) +
                                           "): it is being fetched again");
  }
  auto whole = read_records(db, info, manifest, [&check](pb::ResourceRecord& r) -> Status {
    return check ? check(r) : Status{};
  });
  if (whole) return {};
  Error why = std::move(whole).error();
  std::string what = "the cached payload of " + describe(manifest) +
                     (info.rebuilt ? " (rebuilt from a delta)" : "") +
                     " is damaged; nothing of it was applied";
  // Out of memory says nothing about the bytes: keep them.
  if (why.code != Errc::internal) {
    store::BundleMeta signed_;
    signed_.digest = info.digest;
    signed_.chunk_count = chunk_count(manifest);
    signed_.payload_size = manifest.payload_size();
    signed_.chunk_size = manifest.chunk_size();
    auto dropped = store::BundleCache(db).drop_payload(signed_);
    what += dropped ? "; dropped from the cache, to be fetched again"
                    : "; dropping it failed too (" + dropped.error().message + ")";
  }
  why.message = what + ": " + why.message;
  return why;
}

Status write_record_stream(store::Database& db, const store::BundleInfo& info,
                           const pb::BundleManifest& manifest, const std::string& path) {
  bool created = false;
  auto written = write_stream(db, info, manifest, path, created);
  if (!written) {
    if (created) ::unlink(path.c_str());
    return std::move(written).error().context(what_of(info, manifest) + " into " + path);
  }
  return {};
}

}  // namespace sovdev::agent
