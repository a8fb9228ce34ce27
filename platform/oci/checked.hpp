// Internal to platform/oci: a byte stream checked against the size and digest it was asked by,
// shared by the registry and layout backends.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bundles/hash.hpp"
#include "platform/oci/source.hpp"

namespace sovdev::oci::detail {

class CheckedStream {
 public:
  CheckedStream(std::string what, std::string_view raw_digest, uint64_t size, const ByteSink& sink)
      : what_(std::move(what)), digest_(raw_digest), size_(size), sink_(sink) {}

  // Passes `bytes` on, unless they take the stream past its size (then nothing more is passed).
  Status write(std::string_view bytes);
  // After the last byte: the size and the digest must be the ones asked for.
  Status finish();
  uint64_t received() const { return received_; }

 private:
  std::string what_;
  std::string digest_;
  uint64_t size_;
  const ByteSink& sink_;
  Sha256 hash_;
  uint64_t received_ = 0;
};

}  // namespace sovdev::oci::detail
