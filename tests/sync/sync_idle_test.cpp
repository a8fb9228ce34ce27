// What an idle agent costs between events: its own thread sleeps until the next deadline.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/sync/sync_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

// Times the thread gave up the CPU of its own accord: every timed wait that ran out counts one.
uint64_t voluntary_switches(pid_t pid, pid_t tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
  const std::string key = "voluntary_ctxt_switches:";
  for (std::string line; std::getline(in, line);) {
    if (line.compare(0, key.size(), key) == 0) return std::stoull(line.substr(key.size()));
  }
  FAIL("no " << key << " for thread " << tid);
  return 0;
}

}  // namespace

TEST_CASE("an up-to-date agent's own thread sleeps until its next deadline instead of polling",
          "[sync][idle]") {
  Fleet fleet;
  write_noise_stack(fleet.ws.dir / "noise", 1, 3);
  const std::string file = fleet.ws.dir / "noise.sdb";
  REQUIRE(fleet.ws.build(fleet.ws.dir / "noise", file, 1, {"--level", "1"}).exit_code == 0);
  REQUIRE(fleet.publish(file).exit_code == 0);
  auto hub = fleet.serve("hub.log");
  fleet.agent_config("agent-a");
  auto agent = fleet.run_agent("agent-a", "agent-a.log");
  const auto log = [&] { return read_text(fleet.ws.dir / "agent-a.log"); };
  REQUIRE(wait_until([&] { return log().find("info applied ") != std::string::npos; },
                     std::chrono::milliseconds(60000)));
  // After the apply's status nothing is due for minutes (status every 300 s, reconcile every
  // 600 s): the main thread (tid = pid) has no reason to wake.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the apply's tail settles
  const uint64_t before = voluntary_switches(agent->pid(), agent->pid());
  std::this_thread::sleep_for(std::chrono::seconds(3));  // the measured window
  const uint64_t after = voluntary_switches(agent->pid(), agent->pid());
  WARN("the idle agent's main thread woke " << (after - before) << " times in 3 s");
  // Polling every 100 ms made it 30 or more.
  CHECK(after - before <= 3);
  REQUIRE(agent->running());
}
