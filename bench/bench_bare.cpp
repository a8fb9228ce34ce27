// The baseline of the agent's benchmarks: a process linking what sovdev-agent links (the agent
// library and, through it, SQLite, zstd, libsodium, protobuf), doing nothing for 200 ms while
// bench_import samples its memory.
// With `--connect URL` (bench_sync) it also holds one MQTT connection and one subscription, as
// an idle agent does: for 2 s, or `--hold SECONDS` with `--keepalive SECONDS` (the idle CPU
// baseline: one wait for the whole time, so what it costs is Paho's own threads).
#include <unistd.h>

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
  std::string url;
  int hold_s = 2, keepalive_s = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--connect") url = value;
    if (flag == "--hold") hold_s = std::stoi(value);
    if (flag == "--keepalive") keepalive_s = std::stoi(value);
  }
  if (!url.empty()) {
    sovdev::mqtt::Options o;
    o.servers = {url};
    o.client_id = "bench-bare-" + std::to_string(::getpid());
    if (keepalive_s > 0) o.keepalive = std::chrono::seconds(keepalive_s);
    auto client = sovdev::mqtt::make_paho_client(o);
    if (!client->connect() || !client->subscribe("bench-bare/#", 1)) {
      std::puts("cannot connect");
      return 1;
    }
    std::puts("connected");
    std::fflush(stdout);
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(hold_s);
    for (auto now = std::chrono::steady_clock::now(); now < end;
         now = std::chrono::steady_clock::now()) {
      client->next(std::chrono::duration_cast<std::chrono::milliseconds>(end - now));
    }
    return 0;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  return 0;
}
