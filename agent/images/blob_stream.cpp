#include "agent/images/blob_stream.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "common/hex.hpp"

namespace sovdev::agent::images {
namespace {

// Compressed bytes read from the file per system call: small beside the decoder's window, and
// zstd keeps a partial block in its own buffer.
constexpr size_t kInputSize = 32 * 1024;

}  // namespace

BlobStream::BlobStream(int fd, std::string path, std::uint64_t size, std::string digest)
    : fd_(fd),
      path_(std::move(path)),
      size_(size),
      digest_(std::move(digest)),
      dctx_(ZSTD_createDCtx()),
      in_(new char[kInputSize]) {}

BlobStream::BlobStream(BlobStream&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      size_(other.size_),
      digest_(std::move(other.digest_)),
      dctx_(std::move(other.dctx_)),
      hash_(std::move(other.hash_)),
      in_(std::move(other.in_)),
      in_len_(other.in_len_),
      in_pos_(other.in_pos_),
      eof_(other.eof_),
      frame_open_(other.frame_open_),
      delivered_(other.delivered_) {}

BlobStream& BlobStream::operator=(BlobStream&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    size_ = other.size_;
    digest_ = std::move(other.digest_);
    dctx_ = std::move(other.dctx_);
    hash_ = std::move(other.hash_);
    in_ = std::move(other.in_);
    in_len_ = other.in_len_;
    in_pos_ = other.in_pos_;
    eof_ = other.eof_;
    frame_open_ = other.frame_open_;
    delivered_ = other.delivered_;
  }
  return *this;
}

BlobStream::~BlobStream() {
  if (fd_ >= 0) ::close(fd_);
}

Expected<BlobStream> BlobStream::open(const HeldBlob& blob, std::string_view digest) {
  const int fd = ::open(blob.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return make_error(err == ENOENT ? Errc::not_found : Errc::io,
                      "blob file " + blob.path + ": " + std::strerror(err));
  }
  BlobStream stream(fd, blob.path, blob.size, std::string(digest));
  if (!stream.dctx_) return make_error(Errc::internal, "blob file " + blob.path + ": no memory");
  const size_t rc =
      ZSTD_DCtx_setParameter(stream.dctx_.get(), ZSTD_d_windowLogMax, kBlobWindowLogMax);
  if (ZSTD_isError(rc)) {
    return make_error(Errc::internal, std::string("zstd window limit: ") + ZSTD_getErrorName(rc));
  }
  return stream;
}

Error BlobStream::fail(std::string_view why) const {
  return make_error(Errc::invalid, "blob sha256:" + to_hex(digest_) + " (" + path_ + "): " +
                                       std::string(why) + " after " + std::to_string(delivered_) +
                                       " of " + std::to_string(size_) + " bytes");
}

Status BlobStream::refill() {
  in_pos_ = 0;
  in_len_ = 0;
  for (;;) {
    const ssize_t n = ::read(fd_, in_.get(), kInputSize);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::io, "read " + path_ + ": " + std::strerror(errno));
    if (n == 0) eof_ = true;
    in_len_ = static_cast<size_t>(n);
    return {};
  }
}

Expected<size_t> BlobStream::read(char* out, size_t max) {
  const std::uint64_t left = size_ - delivered_;
  ZSTD_outBuffer ob{out, static_cast<size_t>(std::min<std::uint64_t>(max, left)), 0};
  while (ob.pos < ob.size) {
    if (in_pos_ == in_len_ && !eof_) SOVDEV_TRY(refill());
    const size_t out_before = ob.pos;
    ZSTD_inBuffer ib{in_.get(), in_len_, in_pos_};
    const size_t rc = ZSTD_decompressStream(dctx_.get(), &ob, &ib);
    const bool progress = ib.pos != in_pos_ || ob.pos != out_before;
    in_pos_ = ib.pos;
    if (ZSTD_isError(rc)) return fail(std::string("damaged zstd stream: ") + ZSTD_getErrorName(rc));
    // Without progress the decoder only hints at the next frame's header: nothing changed.
    if (progress) frame_open_ = rc != 0;
    if (!progress && in_pos_ == in_len_ && eof_) {
      return fail(frame_open_ ? "the zstd stream is cut short" : "the blob ends short");
    }
  }
  hash_.update(std::string_view(out, ob.pos));
  delivered_ += ob.pos;
  if (ob.pos != 0 && delivered_ == size_) SOVDEV_TRY(check_end());
  return ob.pos;
}

// After the blob's last byte: the file must hold nothing more to decode, and the digest must
// match. Runs before those last bytes are handed out.
Status BlobStream::check_end() {
  char extra = 0;
  for (;;) {
    if (in_pos_ == in_len_ && !eof_) SOVDEV_TRY(refill());
    if (in_pos_ == in_len_ && eof_ && !frame_open_) break;
    ZSTD_outBuffer ob{&extra, 1, 0};
    ZSTD_inBuffer ib{in_.get(), in_len_, in_pos_};
    const size_t rc = ZSTD_decompressStream(dctx_.get(), &ob, &ib);
    const bool progress = ib.pos != in_pos_ || ob.pos != 0;
    in_pos_ = ib.pos;
    if (ZSTD_isError(rc)) return fail(std::string("damaged zstd stream: ") + ZSTD_getErrorName(rc));
    if (progress) frame_open_ = rc != 0;
    if (ob.pos != 0) return fail("the file holds more than the blob's size");
    if (!progress && in_pos_ == in_len_ && eof_ && frame_open_) {
      return fail("the zstd stream is cut short");
    }
  }
  if (hash_.finish() != digest_) return fail("the decoded bytes do not match the digest");
  return {};
}

}  // namespace sovdev::agent::images
