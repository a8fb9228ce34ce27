// The memory baseline: a process linking what sovdev-agent links (the agent library and, through
// it, SQLite, zstd, libsodium, protobuf), doing nothing for 200 ms while bench_import samples it.
#include <chrono>
#include <thread>

#include "agent/commands.hpp"

int main() {
  // Referenced, never called: keeps the whole agent (and its shared libraries) linked in, as in
  // sovdev-agent, instead of letting the linker drop the unused static library.
  int (*volatile agent_main)(int, char**) = &sovdev::agent::main;
  (void)agent_main;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  return 0;
}
