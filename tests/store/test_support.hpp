// Helpers shared by the store tests: a temporary folder and deterministic test data.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include <catch2/catch.hpp>

#include "common/error.hpp"

namespace sovdev::store::test {

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/sovdev-store-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A 32-byte digest that differs for each `n`.
inline std::string digest(std::uint8_t n) {
  return std::string(31, '\xab') + static_cast<char>(n);
}

// Bytes that identify their bundle and index, so a torn or misplaced chunk cannot pass.
inline std::string chunk_bytes(std::uint32_t bundle, std::uint32_t index, std::size_t size) {
  std::string out(size, '\0');
  std::uint64_t x = (std::uint64_t{bundle} << 32 | index) * 0x9e3779b97f4a7c15ULL + 1;
  for (auto& c : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x & 0xff);
  }
  return out;
}

// "code: message", so a failed REQUIRE shows why.
inline std::string describe(const Error& error) {
  return std::string(errc_name(error.code)) + ": " + error.message;
}

// The value of a successful Expected; fails the test with the error otherwise.
template <class T>
T must(Expected<T> result) {
  if (!result) FAIL(describe(result.error()));
  return std::move(result).value();
}

}  // namespace sovdev::store::test

// Fails the test with the error's code and message when a Status is not ok.
#define REQUIRE_OK(expr)                                                                \
  do {                                                                                  \
    const auto& sovdev_status_ = (expr);                                                \
    if (!sovdev_status_) FAIL(::sovdev::store::test::describe(sovdev_status_.error())); \
  } while (false)
