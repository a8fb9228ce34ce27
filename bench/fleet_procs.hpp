// The fan-out harness's processes: the fleet split over child processes that report to the
// parent on a pipe and start together on its go byte (bench/fleet_harness.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace sovdev::bench {

// CPU seconds (user + system) of this process so far.
double cpu_seconds();
// steady_clock is CLOCK_MONOTONIC, the same clock in every process of the machine: the
// children's times compare with the parent's.
int64_t monotonic_ms();

// One child process's part of the fleet: members [first, first + count).
struct Share {
  int first = 0, count = 0;
};

// What a child tells the parent, one line on its report pipe: "ready" once its members are
// connected (and, in bare mode, subscribed); then, after the parent's go byte, either
// "done FIRST_MS LAST_MS RECEIVED DROPPED CPU" (monotonic ms of its first and last event, CPU
// seconds since the go) or "fail MESSAGE".
struct Report {
  int64_t first_ms = 0, last_ms = 0;
  uint64_t received = 0, dropped = 0;
  double cpu = 0;
};

void say(int fd, const std::string& line);
// Waits for the parent's go byte; false when the parent went away instead.
bool wait_for_go(int fd);
std::string done_line(const Report& r);

// The fleet of `agents` in `procs` child processes (at most one per agent), each running
// `body(share, report_fd, go_fd)`, as real agents are processes of their own: each child has its
// own MQTT library threads, so the fleet uses the machine's cores as N agent processes would.
// Fork before any thread exists. Prints "subscribed" once every child is ready (in bare mode:
// the caller then starts its publisher), sets *go_ms and starts them, and returns the
// children's reports, or the first failure.
Expected<std::vector<Report>> run_children(int agents, int procs,
                                           const std::function<int(Share, int, int)>& body,
                                           int64_t* go_ms);

}  // namespace sovdev::bench
