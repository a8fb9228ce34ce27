#include "platform/proc/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace sovdev::proc {
namespace {

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Status notify_socket(std::string_view address, std::string_view state) {
  if (address.empty()) return {};
  // systemd also understands "vsock:" addresses (VMs); a daemon on a host never gets one.
  if (address.front() != '/' && address.front() != '@') {
    return make_error(Errc::invalid, "NOTIFY_SOCKET '" + std::string(address) +
                                         "' is neither a path nor an abstract socket (@name)");
  }
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (address.size() >= sizeof sa.sun_path) {
    return make_error(Errc::invalid, "NOTIFY_SOCKET '" + std::string(address) + "' is too long");
  }
  std::memcpy(sa.sun_path, address.data(), address.size());
  if (address.front() == '@') sa.sun_path[0] = '\0';  // abstract: no trailing NUL counted
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() +
                                             (address.front() == '/' ? 1 : 0));
  Fd s{::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
  if (s.fd < 0) return make_error(Errc::io, std::string("socket: ") + std::strerror(errno));
  const ssize_t sent = ::sendto(s.fd, state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&sa), length);
  if (sent < 0) {
    return make_error(Errc::unavailable, "send to NOTIFY_SOCKET " + std::string(address) + ": " +
                                             std::strerror(errno));
  }
  if (static_cast<size_t>(sent) != state.size()) {
    return make_error(Errc::io, "send to NOTIFY_SOCKET " + std::string(address) + ": truncated");
  }
  return {};
}

Status notify(std::string_view state) {
  const char* address = std::getenv("NOTIFY_SOCKET");
  return notify_socket(address ? address : "", state);
}

std::optional<std::chrono::microseconds> parse_watchdog(const char* usec, const char* pid,
                                                        long self_pid) {
  if (!usec || !*usec) return std::nullopt;
  if (pid && *pid) {
    char* end = nullptr;
    errno = 0;
    const long p = std::strtol(pid, &end, 10);
    if (errno != 0 || *end != '\0' || p != self_pid) return std::nullopt;
  }
  char* end = nullptr;
  errno = 0;
  const unsigned long long us = std::strtoull(usec, &end, 10);
  if (errno != 0 || *end != '\0' || us == 0 || usec[0] == '-') return std::nullopt;
  return std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(us));
}

std::optional<std::chrono::microseconds> watchdog_interval() {
  return parse_watchdog(std::getenv("WATCHDOG_USEC"), std::getenv("WATCHDOG_PID"),
                        static_cast<long>(::getpid()));
}

ServiceNotifier::ServiceNotifier(std::function<void(const std::string&)> warn)
    : ServiceNotifier(std::getenv("NOTIFY_SOCKET") ? std::getenv("NOTIFY_SOCKET") : "",
                      watchdog_interval(), std::move(warn)) {}

ServiceNotifier::ServiceNotifier(std::string address,
                                 std::optional<std::chrono::microseconds> watchdog,
                                 std::function<void(const std::string&)> warn)
    : address_(std::move(address)), watchdog_(watchdog), warn_(std::move(warn)) {}

void ServiceNotifier::send(std::string_view state) {
  if (!enabled()) return;
  if (auto sent = notify_socket(address_, state); !sent && !warned_) {
    warned_ = true;
    if (warn_) warn_(sent.error().message);
  }
}

void ServiceNotifier::ready(std::string_view status) {
  last_status_ = status;
  send("READY=1\nSTATUS=" + last_status_);
}

void ServiceNotifier::status(std::string_view status) {
  if (status == last_status_) return;
  last_status_ = status;
  send("STATUS=" + last_status_);
}

void ServiceNotifier::tick(Clock::time_point now) {
  if (!watchdog_ || !enabled()) return;
  // Half the interval, as sd_watchdog_enabled(3) advises: one late loop turn is not a hang.
  if (last_ping_ && now - *last_ping_ < *watchdog_ / 2) return;
  last_ping_ = now;
  send("WATCHDOG=1");
}

std::optional<ServiceNotifier::Clock::time_point> ServiceNotifier::next_due() const {
  if (!watchdog_ || !enabled()) return std::nullopt;
  // Never pinged: due now (not time_point::min(), whose distance to now overflows).
  if (!last_ping_) return Clock::now();
  return *last_ping_ + std::chrono::duration_cast<Clock::duration>(*watchdog_ / 2);
}

void ServiceNotifier::stopping() {
  send("STOPPING=1");
}

}  // namespace sovdev::proc
