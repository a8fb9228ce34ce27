// One error channel for the project's own code: Expected<T> carrying an Error.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sovdev {

// Each code is also the exit status a CLI returns for it, so scripts can tell failures apart.
enum class Errc : int {
  internal = 1,
  usage = 2,
  io = 3,         // a file or folder could not be read or written (missing, permissions, disk full)
  invalid = 4,    // malformed input: bad YAML, bad bundle layout, truncated file, bad config
  signature = 5,  // a signature, key, threshold or hash does not verify
  rollback = 6,   // a version lower than the one already held
  conflict = 7,   // the same version with other content, or a duplicate object
  expired = 8,    // metadata past its expiry
  wrong_target = 9,  // a bundle for another channel or architecture
  too_large = 10,    // content larger than declared or allowed
  store = 11,        // the SQLite cache failed
  not_found = 12,    // asked for something that is not there
  unavailable = 13,  // a peer (broker, hub, API server) did not answer
  denied = 14,       // a peer refused our credentials or permissions (HTTP 401/403)
  unhealthy = 15,    // applied, but did not become healthy (failed, or not within its timeout)
};

const char* errc_name(Errc code);

struct [[nodiscard]] Error {
  Errc code = Errc::internal;
  std::string message;

  // Returns the error with `what` prepended: "fetch bundle sovdev@12: chunk 7: hash mismatch".
  [[nodiscard]] Error context(std::string_view what) const& {
    return Error{code, std::string(what) + ": " + message};
  }
  [[nodiscard]] Error context(std::string_view what) && {
    message.insert(0, std::string(what) + ": ");
    return std::move(*this);
  }
};

inline Error make_error(Errc code, std::string message) {
  return Error{code, std::move(message)};
}

template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Expected(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Expected<void> {
 public:
  Expected() = default;
  Expected(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Expected<void>;

}  // namespace sovdev

// Propagates the error of an Expected expression, adding nothing.
#define SOVDEV_TRY(expr)                                                   \
  do {                                                                     \
    auto sovdev_try_result_ = (expr);                                      \
    if (!sovdev_try_result_) return std::move(sovdev_try_result_).error(); \
  } while (false)

#define SOVDEV_CONCAT_INNER_(a, b) a##b
#define SOVDEV_CONCAT_(a, b) SOVDEV_CONCAT_INNER_(a, b)

// Declares `decl` from the value of an Expected expression, or returns its error.
#define SOVDEV_ASSIGN(decl, expr) \
  SOVDEV_ASSIGN_IMPL_(SOVDEV_CONCAT_(sovdev_assign_, __LINE__), decl, expr)
#define SOVDEV_ASSIGN_IMPL_(tmp, decl, expr) \
  auto tmp = (expr);                         \
  if (!tmp) return std::move(tmp).error();   \
  decl = std::move(tmp).value()
