// What a command the exec target starts may inherit from the agent, and what its failures let
// out: no descriptor but 0, 1 and 2, no systemd notify or watchdog variables, no argument of
// the command line in an error (they may hold tokens), no raw control characters.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "platform/target/exec.hpp"
#include "tests/support/process.hpp"
#include "tests/target/helpers.hpp"

namespace sovdev::target {
namespace {

using Catch::Matchers::Contains;
using testing::read_text;
using testing::TempDir;

// Descriptors opened the way Paho C opens its sockets: without close-on-exec.
struct InheritableDescriptors {
  int listener = -1, client = -1, file = -1;
  InheritableDescriptors() {
    listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener, 1) == 0);
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    client = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    file = ::open("/proc/self/status", O_RDONLY);
    REQUIRE(file > 2);
  }
  ~InheritableDescriptors() {
    for (int fd : {listener, client, file}) ::close(fd);
  }
  InheritableDescriptors(const InheritableDescriptors&) = delete;
  InheritableDescriptors& operator=(const InheritableDescriptors&) = delete;
};

// systemd's variables set for the test process, as they are for the agent under systemd.
struct SystemdEnvironment {
  SystemdEnvironment() {
    ::setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
    ::setenv("WATCHDOG_USEC", "30000000", 1);
    ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  }
  ~SystemdEnvironment() {
    for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}) ::unsetenv(name);
  }
  SystemdEnvironment(const SystemdEnvironment&) = delete;
  SystemdEnvironment& operator=(const SystemdEnvironment&) = delete;
};

std::set<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::set<std::string> out;
  for (std::string w; in >> w;) out.insert(w);
  return out;
}

std::string apply_and_fail(const std::string& command) {
  auto target = make_exec_target(command);
  REQUIRE(target.has_value());
  auto began = (*target)->begin({"sovdev", 1, "d1", {}});
  REQUIRE(began.has_value());
  REQUIRE((*target)->apply(test::config_map("a")).has_value());
  auto committed = (*target)->commit();
  REQUIRE_FALSE(committed.has_value());
  return committed.error().message;
}

}  // namespace

TEST_CASE(
    "a command the exec target starts holds no descriptor of the agent's and no systemd "
    "variable",
    "[exec][hygiene]") {
  const InheritableDescriptors open_in_agent;
  const SystemdEnvironment systemd;
  TempDir tmp;
  const std::string fds = tmp / "fds", env = tmp / "env";
  // `ls` lists the shell's descriptors (the shell waits for it), not its own; the subshell
  // keeps the redirection out of the shell (dash parks stdout on fd 10 while it redirects).
  auto target = make_exec_target("sh -c 'cat > /dev/null; (ls /proc/$$/fd) > \"" + fds +
                                 "\"; (env) > \"" + env + "\"; exit 0'");
  REQUIRE(target.has_value());
  test::apply_all(**target, "sovdev", 1, {test::config_map("a")});

  INFO("descriptors of the command: " << read_text(fds));
  CHECK(words(read_text(fds)) == std::set<std::string>{"0", "1", "2"});
  const std::string environment = read_text(env);
  CHECK_THAT(environment, !Contains("NOTIFY_SOCKET"));
  CHECK_THAT(environment, !Contains("WATCHDOG_USEC"));
  CHECK_THAT(environment, !Contains("WATCHDOG_PID"));
  CHECK_THAT(environment, Contains("PATH="));  // the rest of the environment still passes
}

TEST_CASE("the exec target's errors name the program and its exit status, never its arguments",
          "[exec][hygiene]") {
  const std::string token = "tok-7f3a9c2e5b8d41";
  // A command that echoes its token on failure, over two lines, as CLIs' usage errors do.
  const std::string e =
      apply_and_fail("sh -c 'cat > /dev/null; printf \"denied: bad token %s\\nsecond line\\n\" " +
                     token + " >&2; exit 3' sh --token=" + token);
  INFO(e);
  CHECK_THAT(e, Contains("through sh"));
  CHECK_THAT(e, Contains("exited with status 3"));
  CHECK_THAT(e, Contains("denied: bad token ***"));
  CHECK_THAT(e, !Contains(token));
  CHECK_THAT(e, !Contains("--token"));
  // One line: what the command printed cannot start a forged line of the agent's log.
  CHECK(e.find('\n') == std::string::npos);
  CHECK_THAT(e, Contains("\\nsecond line"));
}

TEST_CASE("a command line the exec target cannot split is refused without being echoed",
          "[exec][hygiene]") {
  const std::string token = "tok-0c1d2e3f4a5b6c";
  for (const std::string& command :
       {"kubectl --token=" + token + " 'apply", "kubectl --token=" + token + " \"apply",
        "kubectl --token=" + token + " apply | tee"}) {
    auto words_of = split_command(command);
    REQUIRE_FALSE(words_of.has_value());
    CHECK_THAT(words_of.error().message, !Contains(token));
    CHECK_THAT(words_of.error().message, Contains("at character"));
  }
}

}  // namespace sovdev::target
