// The memory baseline: a process linking what sovdev-agent links (the agent library and, through
// it, SQLite, zstd, libsodium, protobuf), doing nothing for 200 ms while bench_import samples it.
// With `--connect URL` (bench_sync) it also holds one MQTT connection and one subscription, as
// an idle agent does, for 2 s.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "agent/commands.hpp"
#include "platform/mqtt/client.hpp"

int main(int argc, char** argv) {
  // Referenced, never called: keeps the whole agent (and its shared libraries) linked in, as in
  // sovdev-agent, instead of letting the linker drop the unused static library.
  int (*volatile agent_main)(int, char**) = &sovdev::agent::main;
  (void)agent_main;
  if (argc == 3 && std::string(argv[1]) == "--connect") {
    sovdev::mqtt::Options o;
    o.servers = {argv[2]};
    o.client_id = "bench-bare";
    auto client = sovdev::mqtt::make_paho_client(o);
    if (!client->connect() || !client->subscribe("bench-bare/#", 1)) {
      std::puts("cannot connect");
      return 1;
    }
    std::puts("connected");
    std::fflush(stdout);
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < end) client->next(std::chrono::milliseconds(100));
    return 0;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  return 0;
}
