// Tests that check what a user without write access sees run a child as nobody (65534) when the
// suite runs as root. Inside a user namespace that maps root alone (the arm64 stage runs its
// tests under `unshare --map-root-user` for a private binfmt_misc), there is no nobody to
// become: setuid(65534) fails with EINVAL. Such a case is reported SKIPPED with that reason.
// Header only, like inputs.hpp.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <string>

#include "inputs.hpp"

namespace sovdev::testing {

inline constexpr unsigned kNobody = 65534;

// Whether id `id` is mapped in this user namespace, per /proc/self/{uid,gid}_map.
inline bool id_mapped(const char* map_file, unsigned id) {
  std::ifstream in(map_file);
  unsigned long inside = 0, outside = 0, count = 0;
  while (in >> inside >> outside >> count) {
    if (id >= inside && id - inside < count) return true;
  }
  return false;
}

// True when a child can run without root's powers: the suite is not root, or it is root and can
// become nobody. Otherwise prints the skip line; the caller returns without asserting.
inline bool can_drop_root() {
  if (::geteuid() != 0) return true;
  if (id_mapped("/proc/self/uid_map", kNobody) && id_mapped("/proc/self/gid_map", kNobody)) {
    return true;
  }
  std::cout << SOVDEV_SKIP_MARKER
            << " running as root in a user namespace that maps no uid/gid 65534: no unprivileged"
               " user to become"
            << std::endl;
  return false;
}

// Runs `body` in a forked child that is nobody when the suite is root, and returns what the body
// returned (sent back through a pipe); nullopt when the child could not drop root or died.
inline std::optional<std::string> as_nobody(const std::function<std::string()>& body) {
  int fds[2];
  if (::pipe(fds) != 0) return std::nullopt;
  const pid_t pid = ::fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    ::close(fds[0]);
    if (::geteuid() == 0 && (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0)) ::_exit(3);
    const std::string result = body();
    (void)!::write(fds[1], result.data(), result.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string result;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) {
    result.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return result;
}

}  // namespace sovdev::testing

#define SOVDEV_SKIP_WITHOUT_NOBODY() \
  if (!::sovdev::testing::can_drop_root()) return
