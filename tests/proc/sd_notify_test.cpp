// sd_notify without libsystemd: a real AF_UNIX datagram socket stands in for systemd.
#include "platform/proc/sd_notify.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace sovdev::proc {
namespace {

using namespace std::chrono_literals;

// systemd's end of the protocol: a bound datagram socket, at a path or an abstract name.
class FakeSystemd {
 public:
  explicit FakeSystemd(std::string address) : address_(std::move(address)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    REQUIRE(address_.size() < sizeof sa.sun_path);
    std::memcpy(sa.sun_path, address_.data(), address_.size());
    if (address_.front() == '@') sa.sun_path[0] = '\0';
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() +
                                               (address_.front() == '/' ? 1 : 0));
    REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&sa), length) == 0);
  }
  ~FakeSystemd() { ::close(fd_); }
  FakeSystemd(const FakeSystemd&) = delete;
  FakeSystemd& operator=(const FakeSystemd&) = delete;

  const std::string& address() const { return address_; }

  // The next datagram; fails the test when none arrives within the deadline.
  std::string receive() {
    pollfd p{fd_, POLLIN, 0};
    INFO("no datagram reached " << address_ << " within 5 s");
    REQUIRE(::poll(&p, 1, 5000) == 1);
    return take().value();
  }

  // A datagram already queued. AF_UNIX delivers during sendto(), so after a notify call
  // returns, "nothing queued" means nothing was sent: no waiting needed.
  std::optional<std::string> take() {
    std::vector<char> buf(4096);
    const ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) return std::nullopt;
    return std::string(buf.data(), static_cast<size_t>(n));
  }

 private:
  std::string address_;
  int fd_ = -1;
};

std::string unique_abstract_name() {
  static int counter = 0;
  return "@sovdev-test-notify-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

// Sets or clears an environment variable for one test, restoring it after.
class EnvVar {
 public:
  EnvVar(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~EnvVar() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  EnvVar(const EnvVar&) = delete;
  EnvVar& operator=(const EnvVar&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST_CASE("notify sends the state as one datagram to a socket at a path", "[proc]") {
  testing::TempDir dir;
  FakeSystemd systemd(dir / "notify");
  REQUIRE(notify_socket(systemd.address(), "READY=1\nSTATUS=connected"));
  CHECK(systemd.receive() == "READY=1\nSTATUS=connected");
  CHECK_FALSE(systemd.take());
}

TEST_CASE("notify reaches an abstract socket given as @name", "[proc]") {
  FakeSystemd systemd(unique_abstract_name());
  REQUIRE(notify_socket(systemd.address(), "WATCHDOG=1"));
  CHECK(systemd.receive() == "WATCHDOG=1");
}

TEST_CASE("notify sends to the socket named by NOTIFY_SOCKET", "[proc]") {
  FakeSystemd systemd(unique_abstract_name());
  EnvVar env("NOTIFY_SOCKET", systemd.address().c_str());
  REQUIRE(notify("STATUS=fetching"));
  CHECK(systemd.receive() == "STATUS=fetching");
}

TEST_CASE("notify does nothing and succeeds outside systemd", "[proc]") {
  EnvVar env("NOTIFY_SOCKET", nullptr);
  CHECK(notify("READY=1"));
  EnvVar empty("NOTIFY_SOCKET", "");
  CHECK(notify("READY=1"));
}

TEST_CASE("a notify socket nobody listens on is an error naming the socket", "[proc]") {
  testing::TempDir dir;
  auto sent = notify_socket(dir / "absent", "READY=1");
  REQUIRE_FALSE(sent);
  CHECK(sent.error().code == Errc::unavailable);
  CHECK_THAT(sent.error().message, Catch::Contains(dir / "absent"));
}

TEST_CASE("notify refuses addresses that are neither a path nor @name, or too long", "[proc]") {
  auto vsock = notify_socket("vsock:2:1234", "READY=1");
  REQUIRE_FALSE(vsock);
  CHECK(vsock.error().code == Errc::invalid);
  auto long_path = notify_socket("/" + std::string(200, 'x'), "READY=1");
  REQUIRE_FALSE(long_path);
  CHECK_THAT(long_path.error().message, Catch::Contains("too long"));
}

TEST_CASE("the watchdog interval comes from WATCHDOG_USEC when WATCHDOG_PID is this process",
          "[proc]") {
  CHECK(parse_watchdog("30000000", nullptr, 42) == std::chrono::microseconds(30000000));
  CHECK(parse_watchdog("30000000", "42", 42) == std::chrono::microseconds(30000000));
  CHECK_FALSE(parse_watchdog("30000000", "43", 42));  // meant for another process
  CHECK_FALSE(parse_watchdog(nullptr, "42", 42));
  CHECK_FALSE(parse_watchdog("", nullptr, 42));
  CHECK_FALSE(parse_watchdog("0", nullptr, 42));
  CHECK_FALSE(parse_watchdog("-5", nullptr, 42));
  CHECK_FALSE(parse_watchdog("30s", nullptr, 42));

  EnvVar usec("WATCHDOG_USEC", "2000000");
  EnvVar pid("WATCHDOG_PID", std::to_string(::getpid()).c_str());
  CHECK(watchdog_interval() == std::chrono::microseconds(2000000));
}

TEST_CASE("the service notifier says READY once, and STATUS only when the text changes", "[proc]") {
  FakeSystemd systemd(unique_abstract_name());
  ServiceNotifier n(systemd.address(), std::nullopt);
  REQUIRE(n.enabled());
  n.ready("connected, idle");
  CHECK(systemd.receive() == "READY=1\nSTATUS=connected, idle");
  n.status("connected, idle");
  CHECK_FALSE(systemd.take());
  n.status("fetching sovdev v3");
  CHECK(systemd.receive() == "STATUS=fetching sovdev v3");
  n.stopping();
  CHECK(systemd.receive() == "STOPPING=1");
}

TEST_CASE("the service notifier feeds the watchdog at half its interval", "[proc]") {
  FakeSystemd systemd(unique_abstract_name());
  ServiceNotifier n(systemd.address(), std::chrono::microseconds(10s));
  const auto t0 = ServiceNotifier::Clock::time_point{} + 1h;
  n.tick(t0);
  CHECK(systemd.receive() == "WATCHDOG=1");
  n.tick(t0 + 4s);
  CHECK_FALSE(systemd.take());
  n.tick(t0 + 5s);
  CHECK(systemd.receive() == "WATCHDOG=1");
  n.tick(t0 + 6s);
  CHECK_FALSE(systemd.take());
}

TEST_CASE("without a watchdog or outside systemd the service notifier sends nothing", "[proc]") {
  FakeSystemd systemd(unique_abstract_name());
  ServiceNotifier no_watchdog(systemd.address(), std::nullopt);
  no_watchdog.tick(ServiceNotifier::Clock::now());
  CHECK_FALSE(systemd.take());

  int warnings = 0;
  ServiceNotifier outside("", std::chrono::microseconds(1s),
                          [&](const std::string&) { warnings++; });
  CHECK_FALSE(outside.enabled());
  outside.ready("idle");
  outside.tick(ServiceNotifier::Clock::now());
  outside.stopping();
  CHECK(warnings == 0);
}

TEST_CASE("a failing notify socket is reported once, and the daemon goes on", "[proc]") {
  testing::TempDir dir;
  std::vector<std::string> warnings;
  ServiceNotifier n(dir / "gone", std::chrono::microseconds(1s),
                    [&](const std::string& w) { warnings.push_back(w); });
  n.ready("idle");
  n.status("fetching");
  n.tick(ServiceNotifier::Clock::now());
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::Contains(dir / "gone"));
}

}  // namespace
}  // namespace sovdev::proc
