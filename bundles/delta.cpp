// The frame header reader and the decoder's checksum switch are in zstd's static-only section;
// the program links the system libzstd of the same version, which exports them.
#define ZSTD_STATIC_LINKING_ONLY
#include "bundles/delta.hpp"

#include <sodium.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>

#include "bundles/hash.hpp"

namespace sovdev {
namespace {

constexpr uint32_t kMinWindowLog = 10;  // ZSTD_WINDOWLOG_MIN

Error zstd_error(Errc code, std::string_view what, size_t rc) {
  return make_error(code, std::string(what) + ": " + ZSTD_getErrorName(rc));
}

Status set_param(ZSTD_CCtx* cctx, ZSTD_cParameter param, int value) {
  const size_t rc = ZSTD_CCtx_setParameter(cctx, param, value);
  if (ZSTD_isError(rc)) return zstd_error(Errc::internal, "configure zstd", rc);
  return {};
}

Status set_param(ZSTD_DCtx* dctx, ZSTD_dParameter param, int value) {
  const size_t rc = ZSTD_DCtx_setParameter(dctx, param, value);
  if (ZSTD_isError(rc)) return zstd_error(Errc::internal, "configure zstd decoder", rc);
  return {};
}

uint32_t window_log_for(uint64_t bytes) {
  uint32_t log = kMinWindowLog;
  while (log < 63 && (uint64_t{1} << log) < bytes) log++;
  return log;
}

Error delta_invalid(const std::string& what) {
  return make_error(Errc::invalid, "malformed delta manifest: " + what);
}

// Gives each signature sent without its key id the id of the online key it verifies with
// (none when no key does: the threshold check then refuses it as unknown).
void name_signing_keys(const TrustPolicy& trust, pb::Signed& envelope) {
  if (sodium_init() < 0) return;  // idempotent; the threshold check then reports it
  std::string input;
  for (auto& signature : *envelope.mutable_signatures()) {
    if (!signature.key_id().empty() || signature.signature().size() != crypto_sign_BYTES) continue;
    if (input.empty()) input = signing_input(envelope.type(), envelope.body());
    for (const auto& id : trust.role(TrustRole::online).key_ids()) {
      for (const auto& key : trust.root().keys()) {
        if (key.key_id() != id || key.ed25519().size() != crypto_sign_PUBLICKEYBYTES) continue;
        const auto* sig = reinterpret_cast<const unsigned char*>(signature.signature().data());
        const auto* msg = reinterpret_cast<const unsigned char*>(input.data());
        const auto* pk = reinterpret_cast<const unsigned char*>(key.ed25519().data());
        if (crypto_sign_verify_detached(sig, msg, input.size(), pk) == 0) {
          signature.set_key_id(id);
        }
      }
      if (!signature.key_id().empty()) break;
    }
  }
}

}  // namespace

Expected<Delta> make_delta(std::string_view old_stream, std::string_view new_stream,
                           const DeltaOptions& options) {
  const uint64_t reach = uint64_t{old_stream.size()} + new_stream.size();
  const uint32_t window_log = window_log_for(reach);
  if (window_log > options.max_window_log) {
    return make_error(Errc::too_large, "base and new record streams together are " +
                                           std::to_string(reach) + " bytes, more than the " +
                                           std::to_string(uint64_t{1} << options.max_window_log) +
                                           "-byte window a delta may use: send the full bundle");
  }
  CCtxPtr cctx(ZSTD_createCCtx());
  if (!cctx) return make_error(Errc::internal, "out of memory creating a zstd compressor");
  SOVDEV_TRY(set_param(cctx.get(), ZSTD_c_compressionLevel, options.level));
  SOVDEV_TRY(set_param(cctx.get(), ZSTD_c_windowLog, static_cast<int>(window_log)));
  SOVDEV_TRY(set_param(cctx.get(), ZSTD_c_checksumFlag, 1));
  SOVDEV_TRY(set_param(cctx.get(), ZSTD_c_contentSizeFlag, 1));
  // Long-distance matching finds the base's copies wherever they are in the window; the level's
  // own match finder covers only about 2^23 positions at level 19. `zstd --patch-from` turns it
  // on for large inputs; here it also shaves 3 % off the kube-prometheus upgrade's delta.
  SOVDEV_TRY(set_param(cctx.get(), ZSTD_c_enableLongDistanceMatching, 1));
  // By reference: the prefix is read in place, never copied (unlike `zstd --patch-from`).
  const size_t rc = ZSTD_CCtx_refPrefix(cctx.get(), old_stream.data(), old_stream.size());
  if (ZSTD_isError(rc)) return zstd_error(Errc::internal, "reference the base stream", rc);

  size_t capacity = ZSTD_compressBound(new_stream.size());
  const bool capped = options.max_size > 0 && options.max_size - 1 < capacity;
  if (capped) capacity = static_cast<size_t>(options.max_size - 1);
  Delta delta;
  delta.window_log = window_log;
  delta.bytes.resize(capacity);
  // One shot: the content size is pledged in the frame header.
  const size_t n = ZSTD_compress2(cctx.get(), delta.bytes.data(), delta.bytes.size(),
                                  new_stream.data(), new_stream.size());
  if (ZSTD_isError(n)) {
    if (capped && ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall) {
      return make_error(Errc::too_large, "a delta would not be smaller than " +
                                             std::to_string(options.max_size) +
                                             " bytes: send the full bundle");
    }
    return zstd_error(Errc::internal, "compress the delta", n);
  }
  delta.bytes.resize(n);
  delta.bytes.shrink_to_fit();
  return delta;
}

Expected<std::string> decode_record_stream(const pb::BundleManifest& manifest,
                                           std::string_view payload) {
  if (manifest.uncompressed_size() > (uint64_t{1} << kMaxDeltaWindowLog)) {
    return make_error(Errc::too_large, "record stream of " +
                                           std::to_string(manifest.uncompressed_size()) +
                                           " bytes is larger than a delta can cover");
  }
  DCtxPtr dctx(ZSTD_createDCtx());
  if (!dctx) return make_error(Errc::internal, "out of memory creating a zstd decoder");
  SOVDEV_TRY(set_param(dctx.get(), ZSTD_d_windowLogMax, static_cast<int>(manifest.window_log())));
  std::string stream(static_cast<size_t>(manifest.uncompressed_size()), '\0');
  ZSTD_inBuffer in{payload.data(), payload.size(), 0};
  ZSTD_outBuffer out{stream.data(), stream.size(), 0};
  for (;;) {
    const size_t before_in = in.pos, before_out = out.pos;
    const size_t rc = ZSTD_decompressStream(dctx.get(), &out, &in);
    if (ZSTD_isError(rc)) return zstd_error(Errc::invalid, "decompress payload", rc);
    if (rc == 0) break;
    if (in.pos == before_in && out.pos == before_out) {
      return make_error(out.pos == out.size ? Errc::too_large : Errc::invalid,
                        out.pos == out.size ? "payload inflates past its declared size"
                                            : "payload ends before its zstd frame does");
    }
  }
  if (in.pos != in.size) {
    return make_error(Errc::invalid, "payload has data after the end of its zstd frame");
  }
  if (out.pos != out.size) {
    return make_error(Errc::invalid, "payload decompresses to " + std::to_string(out.pos) +
                                         " bytes, the manifest declares " +
                                         std::to_string(out.size));
  }
  if (!manifest.uncompressed_sha256().empty() && sha256(stream) != manifest.uncompressed_sha256()) {
    return make_error(Errc::signature, "decompressed payload does not match its signed hash");
  }
  return stream;
}

pb::DeltaManifest make_delta_manifest(std::string_view target_digest, std::string_view base_digest,
                                      const Delta& delta, uint32_t chunk_size) {
  pb::DeltaManifest m;
  m.set_schema(kSchema);
  m.set_manifest_digest(std::string(target_digest));
  m.set_base_digest(std::string(base_digest));
  m.set_chunk_size(chunk_size);
  m.set_delta_size(delta.bytes.size());
  m.set_delta_sha256(sha256(delta.bytes));
  const std::string_view bytes = delta.bytes;
  for (size_t at = 0; at < bytes.size() && chunk_size > 0; at += chunk_size) {
    m.add_chunk_sha256(sha256(bytes.substr(at, chunk_size)));
  }
  m.set_window_log(delta.window_log);
  return m;
}

std::string sign_delta_manifest(const pb::DeltaManifest& manifest,
                                const std::vector<SecretKey>& keys) {
  pb::Signed envelope = make_signed(kTypeDelta, manifest.SerializeAsString());
  for (const auto& key : keys) add_signature(envelope, key);
  return envelope.SerializeAsString();
}

std::string sign_delta_offer(const pb::DeltaManifest& manifest,
                             const std::vector<SecretKey>& keys) {
  pb::Signed envelope = make_signed(kTypeDelta, manifest.SerializeAsString());
  for (const auto& key : keys) add_signature(envelope, key);
  pb::DeltaManifest sent = manifest;
  sent.clear_manifest_digest();
  sent.clear_base_digest();
  if (is_inline_delta(manifest)) {
    sent.clear_delta_size();
    sent.clear_delta_sha256();
    envelope.clear_type();
    // The agent finds the key among its few online keys by trying them.
    for (auto& signature : *envelope.mutable_signatures()) signature.clear_key_id();
  }
  envelope.set_body(sent.SerializeAsString());
  return envelope.SerializeAsString();
}

bool is_inline_delta(const pb::DeltaManifest& m) {
  return m.chunk_size() == 0 && m.chunk_sha256_size() == 0;
}

Status check_delta_shape(const pb::DeltaManifest& m) {
  if (m.schema() == 0 || m.schema() > kSchema) {
    return delta_invalid("schema " + std::to_string(m.schema()) +
                         " is not understood by this program");
  }
  if (m.manifest_digest().size() != kDigestSize || m.base_digest().size() != kDigestSize) {
    return delta_invalid("a bundle digest is not 32 bytes");
  }
  if (m.manifest_digest() == m.base_digest()) {
    return delta_invalid("the target and the base are the same bundle");
  }
  if (m.window_log() < kMinWindowLog) {
    return delta_invalid("zstd window log " + std::to_string(m.window_log()) + " out of range");
  }
  if (m.window_log() > kMaxDeltaWindowLog) {
    return make_error(Errc::too_large, "delta asks for a zstd window of 2^" +
                                           std::to_string(m.window_log()) +
                                           " bytes, over the cap of 2^" +
                                           std::to_string(kMaxDeltaWindowLog) + ": refused");
  }
  if (m.delta_size() == 0) return delta_invalid("empty delta");
  if (is_inline_delta(m)) {
    if (m.delta_size() > kMaxInlineDelta) {
      return delta_invalid("an inline delta of " + std::to_string(m.delta_size()) +
                           " bytes is over the " + std::to_string(kMaxInlineDelta) + "-byte cap");
    }
    if (m.delta_sha256().size() != kDigestSize) return delta_invalid("delta hash is not 32 bytes");
    return {};
  }
  if (m.chunk_size() < kMinChunkSize || m.chunk_size() > kMaxChunkSize) {
    return delta_invalid("chunk size " + std::to_string(m.chunk_size()) + " out of range");
  }
  // A delta of content that fits the window cannot honestly be larger than this.
  const uint64_t bound = ZSTD_compressBound(size_t{1} << m.window_log());
  if (m.delta_size() > bound) {
    return make_error(Errc::too_large, "delta declares " + std::to_string(m.delta_size()) +
                                           " bytes, more than a window of 2^" +
                                           std::to_string(m.window_log()) + " can need");
  }
  const uint64_t chunks = (m.delta_size() + m.chunk_size() - 1) / m.chunk_size();
  if (chunks != static_cast<uint64_t>(m.chunk_sha256_size())) {
    return delta_invalid("lists " + std::to_string(m.chunk_sha256_size()) + " chunk hashes for " +
                         std::to_string(chunks) + " chunks");
  }
  for (const auto& h : m.chunk_sha256()) {
    if (h.size() != kDigestSize) return delta_invalid("a chunk hash is not 32 bytes");
  }
  if (m.delta_sha256().size() != kDigestSize) return delta_invalid("delta hash is not 32 bytes");
  return {};
}

Expected<pb::DeltaManifest> verify_delta_manifest(const TrustPolicy& trust,
                                                  std::string_view signed_delta) {
  return trust.verify_delta(signed_delta);
}

Expected<pb::DeltaManifest> verify_delta_manifest(const TrustPolicy& trust,
                                                  const pb::Signed& envelope) {
  return trust.verify_delta(envelope);
}

Expected<pb::DeltaManifest> verify_offered_delta(const TrustPolicy& trust,
                                                 const pb::Signed& envelope,
                                                 std::string_view target_digest,
                                                 std::string_view base_digest,
                                                 std::string_view inline_data) {
  if (envelope.body().size() > kMaxDeltaManifestBytes) {
    return make_error(Errc::too_large, "delta manifest over the size cap");
  }
  pb::DeltaManifest body;
  if (!body.ParseFromString(envelope.body())) {
    return make_error(Errc::invalid, "delta manifest body is not a valid DeltaManifest");
  }
  pb::Signed whole = envelope;
  if (whole.type().empty()) whole.set_type(std::string(kTypeDelta));
  bool restored = false;
  if (body.manifest_digest().empty() && body.base_digest().empty()) {
    body.set_manifest_digest(std::string(target_digest));
    body.set_base_digest(std::string(base_digest));
    restored = true;
  }
  if (is_inline_delta(body) && body.delta_size() == 0 && body.delta_sha256().empty() &&
      !inline_data.empty()) {
    body.set_delta_size(inline_data.size());
    body.set_delta_sha256(sha256(inline_data));
    restored = true;
  }
  if (restored) whole.set_body(body.SerializeAsString());
  name_signing_keys(trust, whole);
  SOVDEV_ASSIGN(pb::DeltaManifest verified, verify_delta_manifest(trust, whole));
  if (verified.manifest_digest() != target_digest || verified.base_digest() != base_digest) {
    return make_error(Errc::signature, "the delta manifest is for another pair of bundles");
  }
  return verified;
}

Status verify_inline_delta(const pb::DeltaManifest& m, std::string_view data) {
  if (!is_inline_delta(m)) return delta_invalid("not an inline delta");
  if (data.size() != m.delta_size()) {
    return make_error(Errc::invalid, "inline delta of " + std::to_string(data.size()) +
                                         " bytes, its manifest says " +
                                         std::to_string(m.delta_size()));
  }
  if (sha256(data) != m.delta_sha256()) {
    return make_error(Errc::signature, "inline delta: hash mismatch (the delta was altered)");
  }
  return {};
}

uint32_t delta_chunk_count(const pb::DeltaManifest& m) {
  return static_cast<uint32_t>(m.chunk_sha256_size());
}

uint64_t delta_chunk_length(const pb::DeltaManifest& m, uint32_t index) {
  const uint64_t start = uint64_t{index} * m.chunk_size();
  if (start >= m.delta_size()) return 0;
  return std::min<uint64_t>(m.chunk_size(), m.delta_size() - start);
}

Status verify_delta_chunk(const pb::DeltaManifest& m, uint32_t index, std::string_view data) {
  const std::string where =
      "delta chunk " + std::to_string(index) + " of " + std::to_string(delta_chunk_count(m));
  if (index >= delta_chunk_count(m)) return make_error(Errc::invalid, where + ": no such chunk");
  if (data.size() != delta_chunk_length(m, index)) {
    return make_error(Errc::invalid, where + ": " + std::to_string(data.size()) +
                                         " bytes, expected " +
                                         std::to_string(delta_chunk_length(m, index)));
  }
  if (sha256(data) != m.chunk_sha256(static_cast<int>(index))) {
    return make_error(Errc::signature, where + ": hash mismatch (the chunk was altered)");
  }
  return {};
}

Status apply_delta(std::string_view base_stream, std::string_view delta, uint32_t window_log,
                   std::span<char> out) {
  if (window_log > kMaxDeltaWindowLog) {
    return make_error(Errc::too_large, "delta window 2^" + std::to_string(window_log) +
                                           " is over the cap of 2^" +
                                           std::to_string(kMaxDeltaWindowLog) + ": refused");
  }
  ZSTD_frameHeader header{};
  const size_t got = ZSTD_getFrameHeader(&header, delta.data(), delta.size());
  if (ZSTD_isError(got)) return zstd_error(Errc::invalid, "delta is not a zstd frame", got);
  if (got > 0 || header.frameType != ZSTD_frame) {
    return make_error(Errc::invalid, "delta is not a complete zstd frame");
  }
  if (header.frameContentSize != out.size()) {
    return make_error(Errc::invalid, header.frameContentSize == ZSTD_CONTENTSIZE_UNKNOWN
                                         ? std::string("delta does not declare its content size")
                                         : "delta rebuilds " +
                                               std::to_string(header.frameContentSize) +
                                               " bytes, the signed manifest declares " +
                                               std::to_string(out.size()));
  }
  if (header.windowSize > (uint64_t{1} << window_log)) {
    return make_error(Errc::too_large,
                      "delta frame asks for a window of " + std::to_string(header.windowSize) +
                          " bytes, more than its manifest's 2^" + std::to_string(window_log));
  }
  const size_t frame = ZSTD_findFrameCompressedSize(delta.data(), delta.size());
  if (ZSTD_isError(frame)) return zstd_error(Errc::invalid, "delta frame is damaged", frame);
  if (frame != delta.size()) {
    return make_error(Errc::invalid, "delta has " + std::to_string(delta.size() - frame) +
                                         " bytes after the end of its zstd frame");
  }

  DCtxPtr dctx(ZSTD_createDCtx());
  if (!dctx) return make_error(Errc::internal, "out of memory creating a zstd decoder");
  SOVDEV_TRY(set_param(dctx.get(), ZSTD_d_windowLogMax, static_cast<int>(window_log)));
  SOVDEV_TRY(set_param(dctx.get(), ZSTD_d_forceIgnoreChecksum, ZSTD_d_ignoreChecksum));
  const size_t rc = ZSTD_DCtx_refPrefix(dctx.get(), base_stream.data(), base_stream.size());
  if (ZSTD_isError(rc)) return zstd_error(Errc::internal, "reference the base stream", rc);
  const size_t n =
      ZSTD_decompressDCtx(dctx.get(), out.data(), out.size(), delta.data(), delta.size());
  if (ZSTD_isError(n)) {
    return zstd_error(Errc::invalid, "delta does not decode against this base", n);
  }
  if (n != out.size()) {
    return make_error(Errc::invalid, "delta decoded to " + std::to_string(n) + " bytes, expected " +
                                         std::to_string(out.size()));
  }
  return {};
}

Expected<uint32_t> check_record_stream(std::string_view stream, uint64_t max_record_size) {
  pb::ResourceRecord record;
  uint32_t records = 0;
  while (!stream.empty()) {
    uint64_t size = 0;
    unsigned shift = 0;
    for (;;) {
      if (stream.empty() || shift > 56) {
        return make_error(Errc::invalid, "record stream: length of record " +
                                             std::to_string(records + 1) + " is malformed");
      }
      const auto byte = static_cast<unsigned char>(stream.front());
      stream.remove_prefix(1);
      size |= static_cast<uint64_t>(byte & 0x7f) << shift;
      shift += 7;
      if ((byte & 0x80) == 0) break;
    }
    if (size > max_record_size) {
      return make_error(Errc::too_large, "record stream: record " + std::to_string(records + 1) +
                                             " declares " + std::to_string(size) +
                                             " bytes, over the limit of " +
                                             std::to_string(max_record_size));
    }
    if (size > stream.size()) {
      return make_error(Errc::invalid,
                        "record stream ends inside record " + std::to_string(records + 1));
    }
    records++;
    record.Clear();
    if (!record.ParseFromArray(stream.data(), static_cast<int>(size)) || record.kind().empty() ||
        record.api_version().empty() || record.name().empty()) {
      return make_error(Errc::invalid, "record stream: record " + std::to_string(records) +
                                           " is not a valid object");
    }
    stream.remove_prefix(static_cast<size_t>(size));
  }
  return records;
}

Expected<uint64_t> compress_record_stream(std::string_view stream, int level, uint32_t window_log,
                                          const PayloadWriter::Sink& sink) {
  CCtxPtr cctx(ZSTD_createCCtx());
  if (!cctx) return make_error(Errc::internal, "out of memory creating a zstd compressor");
  SOVDEV_TRY(set_param(cctx.get(), ZSTD_c_compressionLevel, level));
  SOVDEV_TRY(set_param(cctx.get(), ZSTD_c_windowLog, static_cast<int>(window_log)));
  SOVDEV_TRY(set_param(cctx.get(), ZSTD_c_checksumFlag, 1));
  const size_t pledged = ZSTD_CCtx_setPledgedSrcSize(cctx.get(), stream.size());
  if (ZSTD_isError(pledged)) return zstd_error(Errc::internal, "configure zstd", pledged);
  std::string buffer(ZSTD_CStreamOutSize(), '\0');
  ZSTD_inBuffer in{stream.data(), stream.size(), 0};
  uint64_t total = 0;
  for (;;) {
    ZSTD_outBuffer out{buffer.data(), buffer.size(), 0};
    const size_t remaining = ZSTD_compressStream2(cctx.get(), &out, &in, ZSTD_e_end);
    if (ZSTD_isError(remaining)) {
      return zstd_error(Errc::internal, "compress the record stream", remaining);
    }
    if (out.pos > 0) {
      SOVDEV_TRY(sink(std::string_view(buffer.data(), out.pos)));
      total += out.pos;
    }
    if (remaining == 0) return total;
  }
}

}  // namespace sovdev
