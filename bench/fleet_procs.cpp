#include "bench/fleet_procs.hpp"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace sovdev::bench {
namespace {

// A child process and its two pipes, seen from the parent.
struct Child {
  pid_t pid = -1;
  FILE* report = nullptr;  // the child's lines
  int go = -1;             // one byte starts it
};

// Forks a child running `body` on its two pipe ends. The child first closes what it inherited
// of its elder siblings' pipes (or a sibling's end of file would never come), and dies with
// the parent (a harness killed on timeout leaves no agents behind).
Expected<Child> fork_child(const std::function<int(int report, int go)>& body,
                           const std::vector<Child>& elders) {
  int report[2], go[2];
  if (::pipe(report) != 0)
    return make_error(Errc::io, std::string("pipe: ") + std::strerror(errno));
  if (::pipe(go) != 0) {
    const int e = errno;
    ::close(report[0]);
    ::close(report[1]);
    return make_error(Errc::io, std::string("pipe: ") + std::strerror(e));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    for (int fd : {report[0], report[1], go[0], go[1]}) ::close(fd);
    return make_error(Errc::io, std::string("fork: ") + std::strerror(e));
  }
  if (pid == 0) {
    (void)::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) std::_Exit(1);  // the parent was gone before the line above
    for (const Child& elder : elders) {
      ::close(::fileno(elder.report));
      ::close(elder.go);
    }
    ::close(report[0]);
    ::close(go[1]);
    std::_Exit(body(report[1], go[0]));
  }
  ::close(report[1]);
  ::close(go[0]);
  Child c;
  c.pid = pid;
  c.report = ::fdopen(report[0], "r");
  c.go = go[1];
  if (!c.report) std::abort();  // fdopen on a fresh pipe fails only without memory
  return c;
}

std::string read_line(FILE* in) {
  char buffer[1024];
  if (!std::fgets(buffer, sizeof buffer, in)) return "fail the process ended without a word";
  std::string line = buffer;
  if (!line.empty() && line.back() == '\n') line.pop_back();
  return line;
}

}  // namespace

double cpu_seconds() {
  rusage self{};
  ::getrusage(RUSAGE_SELF, &self);
  return static_cast<double>(self.ru_utime.tv_sec + self.ru_stime.tv_sec) +
         static_cast<double>(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;
}

int64_t monotonic_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

void say(int fd, const std::string& line) {
  const std::string text = line + "\n";
  (void)!::write(fd, text.data(), text.size());  // the parent reads it or is gone
}

bool wait_for_go(int fd) {
  char byte = 0;
  return ::read(fd, &byte, 1) == 1;
}

std::string done_line(const Report& r) {
  char text[160];
  std::snprintf(text, sizeof text, "done %lld %lld %llu %llu %.3f",
                static_cast<long long>(r.first_ms), static_cast<long long>(r.last_ms),
                static_cast<unsigned long long>(r.received),
                static_cast<unsigned long long>(r.dropped), r.cpu);
  return text;
}

Expected<std::vector<Report>> run_children(int agents, int procs_wanted,
                                           const std::function<int(Share, int, int)>& body,
                                           int64_t* go_ms) {
  const int procs = std::max(1, std::min(procs_wanted, agents));
  std::vector<Child> children;
  std::string failure;
  for (int k = 0; k < procs && failure.empty(); k++) {
    const Share share{agents * k / procs, agents * (k + 1) / procs - agents * k / procs};
    auto child =
        fork_child([&, share](int report, int go) { return body(share, report, go); }, children);
    if (!child) {
      failure = child.error().message;
      break;
    }
    children.push_back(*child);
  }
  for (auto& c : children) {
    const std::string line = failure.empty() ? read_line(c.report) : "";
    if (failure.empty() && line != "ready") failure = line.substr(line.find(' ') + 1);
  }
  std::vector<Report> reports;
  if (failure.empty()) {
    std::printf("subscribed\n");
    std::fflush(stdout);
    *go_ms = monotonic_ms();
    for (auto& c : children) (void)!::write(c.go, "g", 1);
    for (auto& c : children) {
      const std::string line = read_line(c.report);
      Report r;
      long long first = 0, last = 0;
      unsigned long long received = 0, dropped = 0;
      if (std::sscanf(line.c_str(), "done %lld %lld %llu %llu %lf", &first, &last, &received,
                      &dropped, &r.cpu) != 5) {
        if (failure.empty()) failure = line.substr(line.find(' ') + 1);
        continue;
      }
      r.first_ms = first;
      r.last_ms = last;
      r.received = received;
      r.dropped = dropped;
      reports.push_back(r);
    }
  }
  // Every go pipe closed first: a child still waiting for its go gives up.
  for (auto& c : children) ::close(c.go);
  for (auto& c : children) {
    std::fclose(c.report);
    int status = 0;
    ::waitpid(c.pid, &status, 0);
    if (failure.empty() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
      failure = "harness process " + std::to_string(c.pid) + " ended with status " +
                std::to_string(status);
    }
  }
  if (!failure.empty()) return make_error(Errc::unavailable, failure);
  return reports;
}

}  // namespace sovdev::bench
