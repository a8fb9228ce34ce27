#include "bundles/blob_wire.hpp"

#include <algorithm>

#include "bundles/image_rules.hpp"
#include "bundles/manifest_rules.hpp"

namespace sovdev::blobwire {
namespace {

constexpr uint32_t kStep = 4 * 1024;

Error wire_error(Errc code, const pb::ImageBlob& blob, const std::string& what) {
  return Error{code, "blob " + short_hex(blob.digest()) + ": " + what};
}

Error zstd_error(const char* what, size_t code) {
  return Error{Errc::invalid, std::string(what) + ": " + ZSTD_getErrorName(code)};
}

}  // namespace

uint32_t chunk_size_for(uint64_t wire_size) {
  const uint64_t needed = (wire_size + kMaxChunks - 1) / kMaxChunks;
  const uint64_t size = std::max<uint64_t>(kChunkSize, (needed + kStep - 1) / kStep * kStep);
  return static_cast<uint32_t>(std::min<uint64_t>(size, kMaxChunkSize));
}

Expected<BlobEncoder> BlobEncoder::create(const Options& options, ChunkSink sink) {
  if (options.chunk_size < kMinChunkSize || options.chunk_size > kMaxChunkSize) {
    return make_error(Errc::invalid, "blob chunk size out of range");
  }
  if (options.window_log < 10 || options.window_log > kWindowLog) {
    return make_error(Errc::invalid,
                      "blob window log out of range (10.." + std::to_string(kWindowLog) + ")");
  }
  BlobEncoder e;
  e.options_ = options;
  e.sink_ = std::move(sink);
  e.cctx_.reset(ZSTD_createCCtx());
  if (!e.cctx_) return make_error(Errc::internal, "zstd: out of memory");
  ZSTD_CCtx* c = e.cctx_.get();
  for (const auto& [param, value] :
       {std::pair{ZSTD_c_compressionLevel, options.level},
        std::pair{ZSTD_c_windowLog, static_cast<int>(options.window_log)},
        std::pair{ZSTD_c_checksumFlag, 0}}) {
    const size_t rc = ZSTD_CCtx_setParameter(c, param, value);
    if (ZSTD_isError(rc)) return zstd_error("zstd parameter", rc);
  }
  e.out_.resize(ZSTD_CStreamOutSize());
  e.chunk_.reserve(options.chunk_size);
  return e;
}

Status BlobEncoder::emit() {
  const auto index = static_cast<uint32_t>(manifest_.chunk_sha256_size());
  if (index >= kMaxChunks) {
    return make_error(Errc::too_large, "blob over " + std::to_string(kMaxChunks) + " chunks of " +
                                           std::to_string(options_.chunk_size) + " bytes");
  }
  manifest_.add_chunk_sha256(sha256(chunk_));
  SOVDEV_TRY(sink_(index, chunk_));
  chunk_.clear();
  return {};
}

Status BlobEncoder::drain(std::string_view input, ZSTD_EndDirective mode) {
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  for (;;) {
    ZSTD_outBuffer out{out_.data(), out_.size(), 0};
    const size_t left = ZSTD_compressStream2(cctx_.get(), &out, &in, mode);
    if (ZSTD_isError(left)) return zstd_error("zstd compress", left);
    std::string_view produced(out_.data(), out.pos);
    wire_size_ += produced.size();
    while (!produced.empty()) {
      const size_t take = std::min(produced.size(), options_.chunk_size - chunk_.size());
      chunk_.append(produced.substr(0, take));
      produced.remove_prefix(take);
      if (chunk_.size() == options_.chunk_size) SOVDEV_TRY(emit());
    }
    const bool input_done = in.pos == in.size;
    if (mode == ZSTD_e_continue ? input_done : left == 0) return {};
  }
}

Status BlobEncoder::write(std::string_view bytes) {
  blob_hash_.update(bytes);
  size_ += bytes.size();
  return drain(bytes, ZSTD_e_continue);
}

Expected<pb::BlobManifest> BlobEncoder::finish() {
  SOVDEV_TRY(drain({}, ZSTD_e_end));
  if (!chunk_.empty()) SOVDEV_TRY(emit());
  manifest_.set_schema(kSchema);
  manifest_.set_digest(blob_hash_.finish());
  manifest_.set_size(size_);
  manifest_.set_compression("zstd");
  manifest_.set_chunk_size(options_.chunk_size);
  manifest_.set_wire_size(wire_size_);
  manifest_.set_window_log(options_.window_log);
  return std::move(manifest_);
}

uint32_t chunk_count(const pb::BlobManifest& m) {
  if (m.chunk_size() == 0) return 0;
  // Not (size + chunk - 1) / chunk: that wraps for a wire_size near 2^64.
  const uint64_t count = m.wire_size() / m.chunk_size() + (m.wire_size() % m.chunk_size() != 0);
  return static_cast<uint32_t>(std::min<uint64_t>(count, UINT32_MAX));
}

uint32_t chunk_length(const pb::BlobManifest& m, uint32_t index) {
  const uint64_t start = uint64_t{index} * m.chunk_size();
  if (start >= m.wire_size()) return 0;
  return static_cast<uint32_t>(std::min<uint64_t>(m.chunk_size(), m.wire_size() - start));
}

bool chunk_matches(const pb::BlobManifest& m, uint32_t index, std::string_view data) {
  if (index >= static_cast<uint32_t>(m.chunk_sha256_size())) return false;
  if (data.size() != chunk_length(m, index)) return false;
  return sha256(data) == m.chunk_sha256(static_cast<int>(index));
}

Expected<pb::BlobManifest> parse_blob_manifest(std::string_view bytes, const pb::ImageBlob& blob) {
  if (bytes.size() > kMaxBlobManifestBytes) {
    return wire_error(Errc::too_large, blob, "blob manifest over 1 MiB");
  }
  if (sha256(bytes) != blob.wire_digest()) {
    return wire_error(Errc::signature, blob, "blob manifest is not the one the bundle names");
  }
  pb::BlobManifest m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return wire_error(Errc::invalid, blob, "blob manifest unreadable");
  }
  if (m.schema() != kSchema) return wire_error(Errc::invalid, blob, "blob manifest schema");
  if (m.compression() != "zstd") return wire_error(Errc::invalid, blob, "not zstd");
  if (m.digest() != blob.digest() || m.size() != blob.size() || m.wire_size() != blob.wire_size()) {
    return wire_error(Errc::invalid, blob, "blob manifest disagrees with the bundle's listing");
  }
  if (m.chunk_size() < kMinChunkSize || m.chunk_size() > kMaxChunkSize) {
    return wire_error(Errc::invalid, blob, "chunk size out of range");
  }
  if (m.window_log() > kWindowLog) {
    return wire_error(Errc::invalid, blob, "zstd window over 2 MiB");
  }
  const uint32_t count = chunk_count(m);
  if (count == 0 || count > kMaxChunks || static_cast<uint32_t>(m.chunk_sha256_size()) != count) {
    return wire_error(Errc::invalid, blob, "chunk list does not fit the wire size");
  }
  for (const auto& h : m.chunk_sha256()) {
    if (h.size() != kDigestSize) return wire_error(Errc::invalid, blob, "a chunk hash length");
  }
  return m;
}

Expected<BlobDecoder> BlobDecoder::create(std::string digest, uint64_t size, Sink sink,
                                          uint32_t window_log_max) {
  BlobDecoder d;
  d.digest_ = std::move(digest);
  d.size_ = size;
  d.sink_ = std::move(sink);
  d.dctx_.reset(ZSTD_createDCtx());
  if (!d.dctx_) return make_error(Errc::internal, "zstd: out of memory");
  const size_t rc =
      ZSTD_DCtx_setParameter(d.dctx_.get(), ZSTD_d_windowLogMax, static_cast<int>(window_log_max));
  if (ZSTD_isError(rc)) return zstd_error("zstd parameter", rc);
  d.out_.resize(ZSTD_DStreamOutSize());
  return d;
}

Status BlobDecoder::write(std::string_view compressed) {
  ZSTD_inBuffer in{compressed.data(), compressed.size(), 0};
  while (in.pos < in.size) {
    if (frame_left_ == 0) return make_error(Errc::invalid, "bytes after the blob's zstd frame");
    ZSTD_outBuffer out{out_.data(), out_.size(), 0};
    frame_left_ = ZSTD_decompressStream(dctx_.get(), &out, &in);
    if (ZSTD_isError(frame_left_)) return zstd_error("blob stream", frame_left_);
    produced_ += out.pos;
    if (produced_ > size_) {
      return make_error(Errc::too_large,
                        "blob longer than its " + std::to_string(size_) + " bytes");
    }
    const std::string_view piece(out_.data(), out.pos);
    hash_.update(piece);
    if (!piece.empty()) SOVDEV_TRY(sink_(piece));
  }
  return {};
}

Status BlobDecoder::finish() {
  // Output the decoder still holds comes out when it is called with no more input.
  for (;;) {
    if (frame_left_ == 0) break;
    ZSTD_inBuffer in{nullptr, 0, 0};
    ZSTD_outBuffer out{out_.data(), out_.size(), 0};
    frame_left_ = ZSTD_decompressStream(dctx_.get(), &out, &in);
    if (ZSTD_isError(frame_left_)) return zstd_error("blob stream", frame_left_);
    if (out.pos == 0) break;
    produced_ += out.pos;
    if (produced_ > size_) return make_error(Errc::too_large, "blob longer than declared");
    const std::string_view piece(out_.data(), out.pos);
    hash_.update(piece);
    SOVDEV_TRY(sink_(piece));
  }
  if (frame_left_ != 0) return make_error(Errc::invalid, "blob stream truncated");
  if (produced_ != size_) {
    return make_error(Errc::invalid, "blob is " + std::to_string(produced_) + " bytes, not " +
                                         std::to_string(size_));
  }
  if (hash_.finish() != digest_) return make_error(Errc::signature, "blob digest mismatch");
  return {};
}

}  // namespace sovdev::blobwire
