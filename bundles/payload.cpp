#include "bundles/payload.hpp"

#include <algorithm>

namespace sovdev {
namespace {

Error zstd_error(std::string_view what, size_t code) {
  return make_error(Errc::invalid, std::string(what) + ": " + ZSTD_getErrorName(code));
}

void append_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

}  // namespace

// ------------------------------------------------------------------------------------ writer

PayloadWriter::PayloadWriter(const Options& options, Sink sink, CCtxPtr cctx)
    : options_(options), sink_(std::move(sink)), cctx_(std::move(cctx)) {
  out_buffer_.resize(ZSTD_CStreamOutSize());
}

Expected<PayloadWriter> PayloadWriter::create(const Options& options, Sink sink) {
  if (options.chunk_size < kMinChunkSize || options.chunk_size > kMaxChunkSize) {
    return make_error(Errc::usage, "chunk size must be between " + std::to_string(kMinChunkSize) +
                                       " and " + std::to_string(kMaxChunkSize) + " bytes");
  }
  if (options.window_log < 10 || options.window_log > kMaxWindowLog) {
    return make_error(Errc::usage,
                      "window log must be between 10 and " + std::to_string(kMaxWindowLog));
  }
  CCtxPtr cctx(ZSTD_createCCtx());
  if (!cctx) return make_error(Errc::internal, "out of memory creating a zstd compressor");
  const std::pair<ZSTD_cParameter, int> params[] = {
      {ZSTD_c_compressionLevel, options.level},
      {ZSTD_c_windowLog, static_cast<int>(options.window_log)},
      {ZSTD_c_checksumFlag, 1},
  };
  for (const auto& [param, value] : params) {
    const size_t rc = ZSTD_CCtx_setParameter(cctx.get(), param, value);
    if (ZSTD_isError(rc)) return zstd_error("configure zstd", rc);
  }
  return PayloadWriter(options, std::move(sink), std::move(cctx));
}

Status PayloadWriter::emit(std::string_view compressed) {
  payload_hash_.update(compressed);
  summary_.payload_size += compressed.size();
  // Chunk boundaries fall at fixed offsets of the compressed stream, wherever zstd flushes.
  while (!compressed.empty()) {
    const uint64_t room = options_.chunk_size - chunk_fill_;
    const size_t take = static_cast<size_t>(std::min<uint64_t>(room, compressed.size()));
    chunk_hash_.update(compressed.substr(0, take));
    chunk_fill_ += take;
    compressed.remove_prefix(take);
    if (chunk_fill_ == options_.chunk_size) {
      summary_.chunk_sha256.push_back(chunk_hash_.finish());
      chunk_hash_ = Sha256();
      chunk_fill_ = 0;
    }
  }
  return {};
}

Status PayloadWriter::compress(std::string_view input, ZSTD_EndDirective mode) {
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  for (;;) {
    ZSTD_outBuffer out{out_buffer_.data(), out_buffer_.size(), 0};
    const size_t remaining = ZSTD_compressStream2(cctx_.get(), &out, &in, mode);
    if (ZSTD_isError(remaining)) return zstd_error("compress payload", remaining);
    if (out.pos > 0) {
      const std::string_view produced(out_buffer_.data(), out.pos);
      SOVDEV_TRY(emit(produced));
      SOVDEV_TRY(sink_(produced));
    }
    const bool done = mode == ZSTD_e_continue ? in.pos == in.size : remaining == 0;
    if (done) return {};
  }
}

Status PayloadWriter::add(const pb::ResourceRecord& record) {
  record_buffer_.clear();
  const size_t size = record.ByteSizeLong();
  if (size > kMaxRecordSize) {
    return make_error(Errc::too_large, record.kind() + "/" + record.name() + " is " +
                                           std::to_string(size) + " bytes, over the " +
                                           std::to_string(kMaxRecordSize) + "-byte object limit");
  }
  append_varint(record_buffer_, size);
  const size_t header = record_buffer_.size();
  record_buffer_.resize(header + size);
  record.SerializeWithCachedSizesToArray(
      reinterpret_cast<uint8_t*>(record_buffer_.data() + header));
  uncompressed_hash_.update(record_buffer_);
  summary_.uncompressed_size += record_buffer_.size();
  summary_.resource_count++;
  summary_.max_record_size = std::max<uint64_t>(summary_.max_record_size, size);
  return compress(record_buffer_, ZSTD_e_continue);
}

Expected<PayloadSummary> PayloadWriter::finish() {
  SOVDEV_TRY(compress({}, ZSTD_e_end));
  if (chunk_fill_ > 0) {
    summary_.chunk_sha256.push_back(chunk_hash_.finish());
    chunk_fill_ = 0;
  }
  summary_.payload_sha256 = payload_hash_.finish();
  summary_.uncompressed_sha256 = uncompressed_hash_.finish();
  return std::move(summary_);
}

// ------------------------------------------------------------------------------------ reader

PayloadReader::PayloadReader(const Limits& limits, OnRecord on_record, DCtxPtr dctx)
    : limits_(limits), on_record_(std::move(on_record)), dctx_(std::move(dctx)) {
  out_buffer_.resize(ZSTD_DStreamOutSize());
}

PayloadReader::Limits PayloadReader::limits_for(const pb::BundleManifest& manifest) {
  Limits limits;
  limits.uncompressed_size = manifest.uncompressed_size();
  limits.window_log = manifest.window_log();
  limits.max_record_size = std::min<uint64_t>(kMaxRecordSize, manifest.max_record_size());
  return limits;
}

Expected<PayloadReader> PayloadReader::create(const Limits& limits, OnRecord on_record) {
  DCtxPtr dctx(ZSTD_createDCtx());
  if (!dctx) return make_error(Errc::internal, "out of memory creating a zstd decoder");
  // A frame asking for a larger window than the manifest declared is refused by zstd itself.
  const size_t rc =
      ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax, static_cast<int>(limits.window_log));
  if (ZSTD_isError(rc)) return zstd_error("configure zstd decoder", rc);
  return PayloadReader(limits, std::move(on_record), std::move(dctx));
}

Status PayloadReader::feed(std::string_view compressed) {
  ZSTD_inBuffer in{compressed.data(), compressed.size(), 0};
  while (in.pos < in.size) {
    if (frame_done_) {
      return make_error(Errc::invalid, "payload has data after the end of its zstd frame");
    }
    ZSTD_outBuffer out{out_buffer_.data(), out_buffer_.size(), 0};
    const size_t rc = ZSTD_decompressStream(dctx_.get(), &out, &in);
    if (ZSTD_isError(rc)) return zstd_error("decompress payload", rc);
    if (rc == 0) frame_done_ = true;
    if (out.pos > 0) SOVDEV_TRY(consume({out_buffer_.data(), out.pos}));
    // zstd may hold decoded bytes back when the output buffer was full; drain them.
    while (out.pos == out.size && !frame_done_) {
      out = ZSTD_outBuffer{out_buffer_.data(), out_buffer_.size(), 0};
      const size_t more = ZSTD_decompressStream(dctx_.get(), &out, &in);
      if (ZSTD_isError(more)) return zstd_error("decompress payload", more);
      if (more == 0) frame_done_ = true;
      if (out.pos > 0) SOVDEV_TRY(consume({out_buffer_.data(), out.pos}));
    }
  }
  return {};
}

Status PayloadReader::consume(std::string_view plain) {
  produced_ += plain.size();
  if (produced_ > limits_.uncompressed_size) {
    return make_error(Errc::too_large, "payload inflates past its declared size of " +
                                           std::to_string(limits_.uncompressed_size) +
                                           " bytes: refused");
  }
  if (!limits_.uncompressed_sha256.empty()) hash_.update(plain);
  while (!plain.empty()) {
    if (!have_length_) {
      const auto byte = static_cast<unsigned char>(plain.front());
      plain.remove_prefix(1);
      if (varint_shift_ > 56)
        return make_error(Errc::invalid, "payload record length is malformed");
      record_size_ |= static_cast<uint64_t>(byte & 0x7f) << varint_shift_;
      varint_shift_ += 7;
      if (byte & 0x80) continue;
      if (record_size_ > limits_.max_record_size) {
        return make_error(Errc::too_large, "payload record " + std::to_string(records_ + 1) +
                                               " declares " + std::to_string(record_size_) +
                                               " bytes, over the limit of " +
                                               std::to_string(limits_.max_record_size));
      }
      have_length_ = true;
      pending_.clear();
      // One allocation per size class rather than doubling appends: less peak memory.
      pending_.reserve(static_cast<size_t>(record_size_));
    }
    const size_t take =
        static_cast<size_t>(std::min<uint64_t>(record_size_ - pending_.size(), plain.size()));
    pending_.append(plain.substr(0, take));
    plain.remove_prefix(take);
    if (pending_.size() < record_size_) break;
    records_++;
    record_.Clear();
    if (!record_.ParseFromString(pending_) || record_.kind().empty() ||
        record_.api_version().empty() || record_.name().empty()) {
      return make_error(Errc::invalid,
                        "payload record " + std::to_string(records_) + " is not a valid object");
    }
    // A very large record (a 1 MiB ConfigMap) is held once, parsed, while the target handles
    // it; its raw bytes and then its parsed copy go back to the allocator rather than staying
    // as spare capacity. Below that (kube-prometheus' largest CRDs) the buffers are reused:
    // freeing them made small bundles cheaper but their peak no flatter.
    constexpr size_t kKeep = 768 * 1024;
    if (pending_.capacity() > kKeep) std::string().swap(pending_);
    SOVDEV_TRY(on_record_(record_));
    if (record_.json().capacity() > kKeep) record_ = pb::ResourceRecord();
    have_length_ = false;
    record_size_ = 0;
    varint_shift_ = 0;
  }
  return {};
}

Expected<uint32_t> PayloadReader::finish() {
  if (!frame_done_) return make_error(Errc::invalid, "payload ends before its zstd frame does");
  if (have_length_ || varint_shift_ != 0) {
    return make_error(Errc::invalid, "payload ends inside a record");
  }
  if (produced_ != limits_.uncompressed_size) {
    return make_error(Errc::invalid, "payload decompresses to " + std::to_string(produced_) +
                                         " bytes, the manifest declares " +
                                         std::to_string(limits_.uncompressed_size));
  }
  if (!limits_.uncompressed_sha256.empty() && hash_.finish() != limits_.uncompressed_sha256) {
    return make_error(Errc::signature, "decompressed payload does not match its signed hash");
  }
  return records_;
}

Expected<std::vector<pb::ResourceRecord>> read_all_records(const pb::BundleManifest& manifest,
                                                           std::string_view payload) {
  std::vector<pb::ResourceRecord> records;
  auto limits = PayloadReader::limits_for(manifest);
  limits.uncompressed_sha256 = manifest.uncompressed_sha256();
  SOVDEV_ASSIGN(auto reader, PayloadReader::create(limits, [&](pb::ResourceRecord& r) -> Status {
                  records.push_back(std::move(r));
                  return {};
                }));
  SOVDEV_TRY(reader.feed(payload));
  SOVDEV_TRY(reader.finish());
  return records;
}

}  // namespace sovdev
