// What a child program gets from the agent's environment, and how remote text is made safe for
// one log line.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/text.hpp"
#include "platform/proc/spawn.hpp"

namespace sovdev::proc {

TEST_CASE("a child's environment has no systemd notify, watchdog or socket-activation entry",
          "[spawn][hygiene]") {
  std::vector<std::string> given = {"PATH=/usr/bin",          "NOTIFY_SOCKET=/run/systemd/notify",
                                    "WATCHDOG_USEC=30000000", "WATCHDOG_PID=17",
                                    "LISTEN_FDS=1",           "HOME=/root"};
  std::vector<char*> env = c_strings(given);
  const auto out = child_environment(env.data(), {{"HOME", "/var/lib/sovdev"}, {"EXTRA", "1"}});
  CHECK(out == std::vector<std::string>{"PATH=/usr/bin", "HOME=/var/lib/sovdev", "EXTRA=1"});
  // Nor can a plugin's own env entries bring them back.
  CHECK(child_environment(env.data(), {{"NOTIFY_SOCKET", "/x"}}) ==
        std::vector<std::string>{"PATH=/usr/bin", "HOME=/root"});
}

TEST_CASE("remote text keeps to one log line: control characters are escaped", "[text][hygiene]") {
  CHECK(escape_control("no such bundle\r\n2026-12-07 [info] forged line") ==
        "no such bundle\\r\\n2026-12-07 [info] forged line");
  CHECK(escape_control("tab\there, bell\a, esc\x1b[31m") == "tab\\there, bell\\x07, esc\\x1b[31m");
  CHECK(escape_control("ünïcode and C:\\path stay") == "ünïcode and C:\\path stay");
}

}  // namespace sovdev::proc
