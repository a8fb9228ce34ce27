// One held blob read back for a client: its zstd file decoded in bounded pieces, never the
// whole blob in memory, and checked as it goes. The registry endpoint hands each piece to the
// connection; a failure means the connection must be cut, never that a body ends quietly.
#pragma once

#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "agent/images/blob_source.hpp"
#include "bundles/hash.hpp"
#include "common/error.hpp"

namespace sovdev::agent::images {

// The decoder's window limit: what the hub writes (docs/design-images.md, "How a blob travels"),
// so one decoding stream holds ~2.4 MiB at most.
inline constexpr int kBlobWindowLogMax = 21;

class BlobStream {
 public:
  // Opens `blob.path`; `digest` is the raw SHA-256 the decoded bytes must have.
  [[nodiscard]] static Expected<BlobStream> open(const HeldBlob& blob, std::string_view digest);
  BlobStream(BlobStream&&) noexcept;
  BlobStream& operator=(BlobStream&&) noexcept;
  BlobStream(const BlobStream&) = delete;
  BlobStream& operator=(const BlobStream&) = delete;
  ~BlobStream();

  // Decodes the next bytes into `out` (at most `max`): as many as fit, fewer only at the end.
  // The call that would complete the blob first checks that the stream ends there and that the
  // SHA-256 matches, and returns an error instead of those last bytes when it does not: a
  // client never receives a whole wrong body. Errc::invalid: damaged, short or long file, wrong
  // digest, a window over 2 MiB; Errc::io: the file cannot be read.
  [[nodiscard]] Expected<size_t> read(char* out, size_t max);

  std::uint64_t size() const { return size_; }
  std::uint64_t delivered() const { return delivered_; }

 private:
  struct Freer {
    void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
  };
  BlobStream(int fd, std::string path, std::uint64_t size, std::string digest);
  [[nodiscard]] Status refill();
  [[nodiscard]] Status check_end();
  Error fail(std::string_view why) const;

  int fd_ = -1;
  std::string path_;
  std::uint64_t size_ = 0;
  std::string digest_;  // raw, 32 bytes
  std::unique_ptr<ZSTD_DCtx, Freer> dctx_;
  Sha256 hash_;
  std::unique_ptr<char[]> in_;  // compressed bytes read from the file, kInputSize
  size_t in_len_ = 0;
  size_t in_pos_ = 0;
  bool eof_ = false;
  bool frame_open_ = false;  // the decoder is inside a frame (its last call returned non-zero)
  std::uint64_t delivered_ = 0;
};

}  // namespace sovdev::agent::images
