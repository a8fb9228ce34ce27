// The systemd notification protocol (sd_notify(3)) without libsystemd: one datagram per
// message to the AF_UNIX socket named by $NOTIFY_SOCKET ("@name" = abstract namespace).
// Outside systemd (no NOTIFY_SOCKET) everything here does nothing and succeeds.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace sovdev::proc {

// Sends `state` ("READY=1", "STATUS=...", "WATCHDOG=1", "STOPPING=1", or several joined by
// '\n') to $NOTIFY_SOCKET. Ok and nothing sent when the variable is unset or empty.
[[nodiscard]] Status notify(std::string_view state);

// The same to a given socket address: a path, or "@name" for an abstract socket.
[[nodiscard]] Status notify_socket(std::string_view address, std::string_view state);

// How often systemd expects WATCHDOG=1: $WATCHDOG_USEC, when it is set for this process
// ($WATCHDOG_PID unset or equal to getpid()). None when the watchdog is off.
std::optional<std::chrono::microseconds> watchdog_interval();

// The rule above, on given values (nullptr = unset), for tests.
std::optional<std::chrono::microseconds> parse_watchdog(const char* usec, const char* pid,
                                                        long self_pid);

// What a daemon's main loop tells systemd: READY=1 once, a STATUS= line whenever its text
// changes, WATCHDOG=1 at half the watchdog interval, STOPPING=1 at the end. Failures do not
// stop the daemon: the first one is passed to `warn`, later ones are dropped.
class ServiceNotifier {
 public:
  using Clock = std::chrono::steady_clock;

  // From the environment.
  explicit ServiceNotifier(std::function<void(const std::string&)> warn = {});
  // For tests: this socket address ("" = not under systemd) and watchdog interval.
  ServiceNotifier(std::string address, std::optional<std::chrono::microseconds> watchdog,
                  std::function<void(const std::string&)> warn = {});

  bool enabled() const { return !address_.empty(); }
  void ready(std::string_view status);
  void status(std::string_view status);  // sent only when it differs from the last one
  void tick(Clock::time_point now);      // feeds the watchdog when it is due
  // When tick() next has something to send, so the owner can sleep until then and no longer:
  // none when the watchdog is off (nothing is ever due).
  std::optional<Clock::time_point> next_due() const;
  void stopping();

 private:
  void send(std::string_view state);

  std::string address_;
  std::optional<std::chrono::microseconds> watchdog_;
  std::function<void(const std::string&)> warn_;
  std::string last_status_;
  std::optional<Clock::time_point> last_ping_;
  bool warned_ = false;
};

}  // namespace sovdev::proc
