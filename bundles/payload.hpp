// The payload: a zstd stream of length-delimited ResourceRecords, in apply order, cut into
// fixed-size chunks whose hashes the manifest signs. Writing and reading both stream.
#pragma once

#include <zstd.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bundles/hash.hpp"
#include "bundles/manifest_rules.hpp"
#include "common/error.hpp"
#include "sovdev.pb.h"

namespace sovdev {

struct ZstdDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};
using CCtxPtr = std::unique_ptr<ZSTD_CCtx, ZstdDeleter>;
using DCtxPtr = std::unique_ptr<ZSTD_DCtx, ZstdDeleter>;

struct PayloadSummary {
  uint64_t payload_size = 0;
  uint64_t uncompressed_size = 0;
  std::string payload_sha256;
  std::string uncompressed_sha256;
  std::vector<std::string> chunk_sha256;
  uint32_t resource_count = 0;
  uint64_t max_record_size = 0;
};

class PayloadWriter {
 public:
  struct Options {
    int level = 19;
    // 2 MiB: the agent's decoder holds one window; FACTS.md measured 21 within 3 % of 23.
    uint32_t window_log = 21;
    uint32_t chunk_size = kDefaultChunkSize;
  };
  // Receives the compressed bytes in order, in pieces of any size.
  using Sink = std::function<Status(std::string_view)>;

  static Expected<PayloadWriter> create(const Options& options, Sink sink);

  Status add(const pb::ResourceRecord& record);
  // Ends the stream; the writer cannot be used afterwards.
  Expected<PayloadSummary> finish();

 private:
  PayloadWriter(const Options& options, Sink sink, CCtxPtr cctx);
  Status compress(std::string_view input, ZSTD_EndDirective mode);
  Status emit(std::string_view compressed);

  Options options_;
  Sink sink_;
  CCtxPtr cctx_;
  std::string out_buffer_;
  std::string record_buffer_;
  Sha256 payload_hash_;
  Sha256 uncompressed_hash_;
  Sha256 chunk_hash_;
  PayloadSummary summary_;
  uint64_t chunk_fill_ = 0;
};

// Decodes a payload fed in compressed pieces, handing out one record at a time. Enforces the
// declared uncompressed size while decompressing (a bomb is refused, never buffered), the
// manifest's window, and the record size cap; memory stays at one window plus one record.
class PayloadReader {
 public:
  struct Limits {
    uint64_t uncompressed_size = 0;
    uint32_t window_log = 0;
    uint64_t max_record_size = kMaxRecordSize;
    std::string uncompressed_sha256;  // checked at finish when non-empty
  };
  // Records are handed over by reference and reused: move out what must be kept.
  using OnRecord = std::function<Status(pb::ResourceRecord& record)>;

  static Expected<PayloadReader> create(const Limits& limits, OnRecord on_record);
  static Limits limits_for(const pb::BundleManifest& manifest);

  Status feed(std::string_view compressed);
  // Checks the stream ended exactly where declared; returns the number of records.
  Expected<uint32_t> finish();

 private:
  PayloadReader(const Limits& limits, OnRecord on_record, DCtxPtr dctx);
  Status consume(std::string_view plain);

  Limits limits_;
  OnRecord on_record_;
  DCtxPtr dctx_;
  std::string out_buffer_;
  std::string pending_;       // the record being assembled
  uint64_t record_size_ = 0;  // of the record being assembled, once its length is read
  bool have_length_ = false;
  unsigned varint_shift_ = 0;
  uint64_t produced_ = 0;
  bool frame_done_ = false;
  uint32_t records_ = 0;
  pb::ResourceRecord record_;
  Sha256 hash_;
};

// Reads a whole payload held in memory (tests, tools): all records in order.
Expected<std::vector<pb::ResourceRecord>> read_all_records(const pb::BundleManifest& manifest,
                                                           std::string_view payload);

}  // namespace sovdev
