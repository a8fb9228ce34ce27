#include "platform/oci/decompress.hpp"

#include <zlib.h>
#include <zstd.h>

#include <string>

namespace sovdev::oci::detail {
namespace {

constexpr size_t kOutChunk = 128 * 1024;

class PlainDecoder final : public LayerDecoder {
 public:
  explicit PlainDecoder(ByteSink out) : out_(std::move(out)) {}
  Status feed(std::string_view in) override { return out_(in); }
  Status finish() override { return {}; }

 private:
  ByteSink out_;
};

class GzipDecoder final : public LayerDecoder {
 public:
  explicit GzipDecoder(ByteSink out) : out_(std::move(out)), buf_(kOutChunk, '\0') {}
  ~GzipDecoder() override {
    if (ready_) inflateEnd(&z_);
  }
  GzipDecoder(const GzipDecoder&) = delete;
  GzipDecoder& operator=(const GzipDecoder&) = delete;

  Status init() {
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) {
      return make_error(Errc::internal, "zlib: inflateInit2 failed");
    }
    ready_ = true;
    return {};
  }

  Status feed(std::string_view in) override {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    while (z_.avail_in > 0) {
      if (ended_) {  // another gzip member follows the last one
        if (inflateReset(&z_) != Z_OK) return make_error(Errc::internal, "zlib: reset failed");
        ended_ = false;
      }
      z_.next_out = reinterpret_cast<Bytef*>(buf_.data());
      z_.avail_out = static_cast<uInt>(buf_.size());
      const int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
        return make_error(Errc::invalid, std::string("the layer is not valid gzip: ") +
                                             (z_.msg != nullptr ? z_.msg : "inflate failed"));
      }
      const size_t produced = buf_.size() - z_.avail_out;
      if (produced > 0) SOVDEV_TRY(out_(std::string_view(buf_.data(), produced)));
      if (rc == Z_STREAM_END) ended_ = true;
      // Drain what inflate holds back even when no input is left.
      while (z_.avail_in == 0 && !ended_ && z_.avail_out == 0) {
        z_.next_out = reinterpret_cast<Bytef*>(buf_.data());
        z_.avail_out = static_cast<uInt>(buf_.size());
        const int more = inflate(&z_, Z_NO_FLUSH);
        if (more != Z_OK && more != Z_STREAM_END && more != Z_BUF_ERROR) {
          return make_error(Errc::invalid, "the layer is not valid gzip");
        }
        const size_t n = buf_.size() - z_.avail_out;
        if (n > 0) SOVDEV_TRY(out_(std::string_view(buf_.data(), n)));
        if (more == Z_STREAM_END) ended_ = true;
        if (n == 0) break;
      }
    }
    return {};
  }

  Status finish() override {
    if (!ended_) return make_error(Errc::invalid, "the layer's gzip stream is truncated");
    return {};
  }

 private:
  ByteSink out_;
  std::string buf_;
  z_stream z_{};
  bool ready_ = false;
  bool ended_ = false;
};

class ZstdDecoder final : public LayerDecoder {
 public:
  explicit ZstdDecoder(ByteSink out)
      : out_(std::move(out)), buf_(kOutChunk, '\0'), d_(ZSTD_createDStream()) {}
  ~ZstdDecoder() override { ZSTD_freeDStream(d_); }
  ZstdDecoder(const ZstdDecoder&) = delete;
  ZstdDecoder& operator=(const ZstdDecoder&) = delete;

  Status init() {
    if (d_ == nullptr) return make_error(Errc::internal, "zstd: cannot create a decoder");
    return {};
  }

  Status feed(std::string_view in) override {
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    // Until the input is used up and the decoder has nothing more to flush for it.
    while (true) {
      ZSTD_outBuffer output{buf_.data(), buf_.size(), 0};
      const size_t rc = ZSTD_decompressStream(d_, &output, &input);
      if (ZSTD_isError(rc)) {
        return make_error(Errc::invalid,
                          std::string("the layer is not valid zstd: ") + ZSTD_getErrorName(rc));
      }
      if (output.pos > 0) SOVDEV_TRY(out_(std::string_view(buf_.data(), output.pos)));
      frame_done_ = rc == 0;
      if (input.pos == input.size && output.pos < output.size) break;
    }
    return {};
  }

  Status finish() override {
    if (!frame_done_) return make_error(Errc::invalid, "the layer's zstd stream is truncated");
    return {};
  }

 private:
  ByteSink out_;
  std::string buf_;
  ZSTD_DStream* d_;
  bool frame_done_ = false;
};

}  // namespace

Expected<std::unique_ptr<LayerDecoder>> make_decoder(media::Compression compression, ByteSink out) {
  switch (compression) {
    case media::Compression::none:
      return std::unique_ptr<LayerDecoder>(std::make_unique<PlainDecoder>(std::move(out)));
    case media::Compression::gzip: {
      auto d = std::make_unique<GzipDecoder>(std::move(out));
      SOVDEV_TRY(d->init());
      return std::unique_ptr<LayerDecoder>(std::move(d));
    }
    case media::Compression::zstd: {
      auto d = std::make_unique<ZstdDecoder>(std::move(out));
      SOVDEV_TRY(d->init());
      return std::unique_ptr<LayerDecoder>(std::move(d));
    }
    default: break;
  }
  return make_error(Errc::invalid, "not a layer compression we decode");
}

}  // namespace sovdev::oci::detail
