// How an image blob travels (docs/design-images.md): a zstd stream of the blob, cut into chunks
// each named by its SHA-256 in a BlobManifest, which the signed bundle manifest names by digest
// (ImageBlob.wire_digest). Pure: bytes in, bytes out; the hub and the agent own the I/O.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "bundles/hash.hpp"
#include "bundles/payload.hpp"
#include "common/error.hpp"
#include "sovdev.pb.h"

namespace sovdev::blobwire {

inline constexpr uint32_t kChunkSize = 64 * 1024;
// The decoder's window is private memory on the agent and on its loopback registry: 2 MiB.
inline constexpr uint32_t kWindowLog = 21;
// A BlobManifest fits one answer (kMaxFetchResponseBytes): 34 bytes a chunk hash.
inline constexpr uint32_t kMaxChunks = 30000;
inline constexpr size_t kMaxBlobManifestBytes = 1024 * 1024;

// The chunk size for a blob of about `wire_size` compressed bytes: 64 KiB, or larger (in 4 KiB
// steps) when 64 KiB chunks would pass kMaxChunks.
uint32_t chunk_size_for(uint64_t wire_size);

// Each chunk of the wire form as soon as it is whole, in order from 0.
using ChunkSink = std::function<Status(uint32_t index, std::string_view chunk)>;

// Compresses a blob as it is written and hands out its chunks; finish() gives its manifest.
class BlobEncoder {
 public:
  struct Options {
    int level = 19;
    uint32_t chunk_size = kChunkSize;
    uint32_t window_log = kWindowLog;
  };
  [[nodiscard]] static Expected<BlobEncoder> create(const Options& options, ChunkSink sink);
  BlobEncoder(BlobEncoder&&) noexcept = default;
  BlobEncoder& operator=(BlobEncoder&&) noexcept = default;

  [[nodiscard]] Status write(std::string_view bytes);
  // Ends the stream: the manifest of everything written (digest and size of the blob).
  [[nodiscard]] Expected<pb::BlobManifest> finish();

 private:
  BlobEncoder() = default;
  [[nodiscard]] Status drain(std::string_view input, ZSTD_EndDirective mode);
  [[nodiscard]] Status emit();

  Options options_;
  ChunkSink sink_;
  CCtxPtr cctx_;
  Sha256 blob_hash_;
  uint64_t size_ = 0;
  uint64_t wire_size_ = 0;
  std::string out_;    // the zstd output buffer
  std::string chunk_;  // the chunk being filled
  pb::BlobManifest manifest_;
};

// Parses the BlobManifest an answer carried and checks it is the one `blob` names: its bytes'
// SHA-256 is the wire digest (else Errc::signature), and its digest, sizes, chunk count and
// window agree with the listing and the limits (else Errc::invalid).
[[nodiscard]] Expected<pb::BlobManifest> parse_blob_manifest(std::string_view bytes,
                                                             const pb::ImageBlob& blob);

uint32_t chunk_count(const pb::BlobManifest& manifest);
// The length chunk `index` must have.
uint32_t chunk_length(const pb::BlobManifest& manifest, uint32_t index);
// Whether `data` is chunk `index`: its length and its hash.
bool chunk_matches(const pb::BlobManifest& manifest, uint32_t index, std::string_view data);

// Turns a blob's zstd stream back into the blob, checking as it goes that it is no longer than
// `size` and, at finish(), that it is exactly `size` bytes with SHA-256 `digest`.
class BlobDecoder {
 public:
  using Sink = std::function<Status(std::string_view bytes)>;
  [[nodiscard]] static Expected<BlobDecoder> create(std::string digest, uint64_t size, Sink sink,
                                                    uint32_t window_log_max = kWindowLog);
  BlobDecoder(BlobDecoder&&) noexcept = default;
  BlobDecoder& operator=(BlobDecoder&&) noexcept = default;

  [[nodiscard]] Status write(std::string_view compressed);
  [[nodiscard]] Status finish();

 private:
  BlobDecoder() = default;

  std::string digest_;
  uint64_t size_ = 0;
  Sink sink_;
  DCtxPtr dctx_;
  Sha256 hash_;
  uint64_t produced_ = 0;
  size_t frame_left_ = 1;  // ZSTD_decompressStream's last hint: 0 once a frame ended
  std::string out_;
};

}  // namespace sovdev::blobwire
