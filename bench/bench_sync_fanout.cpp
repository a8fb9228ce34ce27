// bench_sync's fan-out: N agents pulling one bundle through one hub, against N mosquitto_sub,
// with the MQTT library's own share and the CPU floor of the figure printed beside it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_data.hpp"
#include "bench/bench_support.hpp"
#include "bench/bench_sync_fleet.hpp"
#include "bundles/hash.hpp"

namespace sovdev::bench {
namespace {

using namespace std::chrono_literals;

// ---- 3. fan-out -----------------------------------------------------------------------------
// CPU seconds (user + system) of every child reaped so far.
double children_cpu() {
  rusage u{};
  ::getrusage(RUSAGE_CHILDREN, &u);
  const auto s = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return s(u.ru_utime) + s(u.ru_stime);
}

// "<id>: healthy, stack kp v1, <N> bytes received, ..." lines of `sync --once`: N's median.
uint64_t median_received(const std::string& log) {
  std::vector<double> got;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find(" bytes received");
    const size_t comma = line.rfind(", ", at);
    if (at == std::string::npos || comma == std::string::npos) continue;
    got.push_back(std::stod(line.substr(comma + 2, at - comma - 2)));
  }
  return got.empty() ? 0 : static_cast<uint64_t>(median(got));
}

// The MQTT library's share: `n` of the agent's MQTT clients spread over the harness's processes
// as its agents are (the harness's bare mode) receive the baseline's `count` messages from
// mosquitto_pub, publisher start to the harness's exit, as the baseline is timed. Printed beside
// the figure, not gated.
double bare_clients(const Context& ctx, const std::string& lines, uint64_t count, int n,
                    std::string* said) {
  static int round = 0;
  const std::string topic = "bare/" + std::to_string(++round);
  const std::string log = ctx.dir + "/bare-" + std::to_string(round) + ".log";
  const pid_t h =
      spawn({ctx.paths.harness(), "--broker", ctx.url(), "--bare-topic", topic, "--bare-count",
             std::to_string(count), "--agents", std::to_string(n), "--timeout", "170"},
            log);
  const auto wait_start = Clock::now();
  while (read_text(log).find("subscribed") == std::string::npos) {
    if (wait_child(h, 0ms) || since(wait_start) > 60) {
      throw std::runtime_error("bare harness did not subscribe: " + read_text(log));
    }
    std::this_thread::sleep_for(20ms);
  }
  const auto start = Clock::now();
  const pid_t pub = spawn({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(ctx.port), "-q",
                           "1", "-t", topic, "-l"},
                          ctx.dir + "/bare-pub.out", lines);
  if (wait_child(h, 180s).value_or(-1) != 0) {
    throw std::runtime_error("bare harness failed: " + read_text(log));
  }
  const double seconds = since(start);
  wait_child(pub, 30s);
  const std::string text = read_text(log);
  const size_t done = text.find("done ");
  *said = done == std::string::npos ? text : text.substr(done, text.find('\n', done) - done);
  return seconds;
}

// CPU seconds (user + system) a running process has used so far; 0 when it cannot be read.
double process_cpu(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; i++) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// CPU seconds this thread needs to check `copies` copies of the payload against chunk hashes,
// 64 KiB at a time, as every agent does with every chunk it keeps.
double hashing_cpu(const std::string& payload_file, int copies) {
  const std::string bytes = read_text(payload_file);
  const auto thread_cpu = [] {
    timespec t{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
  };
  const double start = thread_cpu();
  size_t sink = 0;
  for (int c = 0; c < copies; c++) {
    for (size_t at = 0; at < bytes.size(); at += 65536) {
      sink += static_cast<unsigned char>(sha256(std::string_view(bytes).substr(at, 65536))[0]);
    }
  }
  const double used = thread_cpu() - start;
  return sink == SIZE_MAX ? 0 : used;  // sink keeps the hashing from being optimised away
}

// One run of bench_fleet_harness against the hub with `extra` options; its log is printed. Returns
// its own figure (subscribing to the last agent complete) and the broker's and the hub's CPU
// seconds while it ran.
struct HarnessRun {
  double seconds = 0, broker_cpu = 0, hub_cpu = 0;
};

// Each run has a hub of its own: a hub broadcasts each chunk of a bundle once, and answers a later
// fleet's requests for it one by one (hub/broadcast.hpp), so a run after another would measure
// unicast instead.
HarnessRun run_harness(const Context& ctx, const GeneratedBundle& bundle, int n,
                       const std::vector<std::string>& extra, const std::string& name) {
  const std::string log = ctx.dir + "/" + name + ".log";
  std::string hub_name = "fan-" + name;
  std::replace(hub_name.begin(), hub_name.end(), ' ', '-');
  const Hub hub = start_hub(ctx, hub_name, bundle.bundle);
  HarnessRun r;
  const double broker_before = process_cpu(ctx.broker), hub_before = process_cpu(hub.pid);
  std::vector<std::string> argv = {
      ctx.paths.harness(), "--broker",          ctx.url(),   "--prefix", hub.prefix,
      "--trust",           ctx.keys.trust_root, "--channel", "edge",     "--agents",
      std::to_string(n),   "--timeout",         "170"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const pid_t h = spawn(argv, log);
  if (wait_child(h, 180s).value_or(-1) != 0) {
    throw std::runtime_error("fleet harness (" + name + ") failed: " + read_text(log));
  }
  r.broker_cpu = process_cpu(ctx.broker) - broker_before;
  r.hub_cpu = process_cpu(hub.pid) - hub_before;
  stop_child(hub.pid);
  const std::string said = read_text(log);
  const size_t in = said.find(" agents in ");
  if (in == std::string::npos) throw std::runtime_error("fleet harness said: " + said);
  r.seconds = std::stod(said.substr(in + 11));
  std::istringstream lines_said(said);
  for (std::string line; std::getline(lines_said, line);) note(name + ": " + line);
  return r;
}

}  // namespace

bool bench_fanout(const Context& ctx, const GeneratedBundle& mid, const Hub& hub, int n,
                  const std::string& lines) {
  std::printf("== fan-out: %d agents, %s payload, one hub\n", n, mib(mid.payload_size).c_str());
  // The figure: N lite agents (bench/lite_fleet.hpp: the sync protocol and nothing more, over
  // libmosquitto, the baseline's library) in one process per core, from subscribing to the last
  // agent holding every chunk. What is measured is the hub and the broker serving a fleet; in a
  // fleet each agent checks and stores its chunks on a machine of its own, and here 200 of them
  // would share this machine's cores with the broker and the hub (the state machines' run below).
  const HarnessRun lite = run_harness(ctx, mid, n, {"--lite", "1"}, "lite agents");
  const double th = lite.seconds;
  // The same, each lite agent also checking every chunk's SHA-256 against the signed manifest.
  const HarnessRun checked =
      run_harness(ctx, mid, n, {"--lite", "1", "--check-chunks", "1"}, "lite agents checking");
  // The agent's own state machine (agent::Daemon: catalog, broadcast fetch, every chunk verified
  // and committed to SQLite) for each of the N, over the agent's MQTT client (Paho), in one
  // process per core: what 200 whole agents cost when they share 2 cores with the broker.
  const HarnessRun machines = run_harness(ctx, mid, n, {}, "state machines");
  const double broker_cpu = machines.broker_cpu, hub_cpu = machines.hub_cpu;
  std::vector<Agent> agents;
  for (int i = 0; i < n; i++)
    agents.push_back(make_agent(ctx, "fan-" + std::to_string(i), hub.prefix));
  std::vector<pid_t> pids;
  const double cpu_before = children_cpu();
  const auto start = Clock::now();
  for (int i = 0; i < n; i++) {
    pids.push_back(spawn(
        {ctx.paths.agent(), "sync", "--once", "--config", agents[i].config, "--timeout", "170"},
        ctx.dir + "/fan.log"));
  }
  int failed = 0;
  for (pid_t p : pids) {
    if (wait_child(p, 180s).value_or(-1) != 0) failed++;
  }
  const double t = since(start);
  const double agents_cpu = children_cpu() - cpu_before;
  for (const auto& a : agents) {
    if (!applied(a)) failed++;
    drop_agent(a);
  }
  if (failed) throw std::runtime_error(std::to_string(failed) + " fan-out agents failed");
  const uint64_t count = lines_for(mid.payload_size);
  const double base_cpu_before = children_cpu();
  const double b = broker_baseline(ctx, lines, count, n);
  const double base_cpu = children_cpu() - base_cpu_before;
  note("lite agents also checking every chunk's SHA-256: " + fixed(checked.seconds, 2) + " s, " +
       fixed(checked.seconds / b, 2) + "x the baseline (not gated)");
  note("the agent's state machines: " + fixed(machines.seconds, 2) + " s, " +
       fixed(machines.seconds / b, 2) +
       "x the baseline (not gated: 200 agents' checks, SQLite commits and Paho clients share the "
       "cores with the broker and the hub; the floor below)");
  std::string bare_said;
  const double bare = bare_clients(ctx, lines, count, n, &bare_said);
  note("the MQTT library alone: " + std::to_string(n) +
       " of the agent's MQTT clients in one process per core (bench_fleet_harness --bare-topic) "
       "receiving the baseline's messages: " +
       fixed(bare, 2) + " s, " + fixed(bare / b, 2) + "x the baseline (" + bare_said + ")");
  // A floor for the state machines, or any agents that use this MQTT library and check every
  // chunk on these cores: the
  // CPU the bare clients, the hashes, the broker and the hub need, shared by this machine's
  // cores (the connections are made before either clock starts).
  const size_t cpu_at = bare_said.find("harness CPU ");
  const double clients_cpu =
      cpu_at == std::string::npos ? 0 : std::stod(bare_said.substr(cpu_at + 12));
  const double hash_cpu = hashing_cpu(mid.payload, n);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const double floor = (clients_cpu + hash_cpu + broker_cpu + hub_cpu) / cores;
  note("CPU floor on " + std::to_string(cores) + " cores: MQTT clients " + fixed(clients_cpu, 2) +
       " s + chunk hashes " + fixed(hash_cpu, 2) + " s + broker " + fixed(broker_cpu, 2) +
       " s + hub " + fixed(hub_cpu, 2) + " s (during the state machines) = " + fixed(floor, 2) +
       " s of wall time at best, " + fixed(floor / b, 2) + "x the baseline");
  // Where the time goes: the figure includes every agent's whole life (start, SQLite, pull,
  // apply with its fsyncs, exit) on this machine's cores, the baseline only receiving.
  note("agents' CPU (user+system): " + fixed(agents_cpu, 1) + " s, " +
       fixed(agents_cpu / n * 1000, 0) + " ms each; on " + std::to_string(cores) +
       " cores that alone needs >= " + fixed(agents_cpu / cores, 2) + " s; the " +
       std::to_string(n) + " mosquitto_sub + mosquitto_pub used " + fixed(base_cpu, 1) +
       " s of CPU");
  note("median bytes received per agent: " +
       std::to_string(median_received(read_text(ctx.dir + "/fan.log"))) + " for a " +
       std::to_string(mid.payload_size) + "-byte payload");
  note(std::to_string(n) +
       " sovdev-agent sync --once processes (fresh state each, spawn of the "
       "first to exit of the last, dir target): " +
       fixed(t, 2) + " s, " + fixed(t / b, 2) +
       "x the baseline (not gated: bound by the processes' own CPU, above)");
  note("figure: " + std::to_string(n) +
       " lite agents in bench_fleet_harness --lite (the sync protocol over libmosquitto, one "
       "connection each, in one process per core; catalog and manifest checked), from "
       "subscribing to the last agent holding every chunk; baseline: " +
       std::to_string(n) + " mosquitto_sub -q 1 -C " + std::to_string(count) +
       ", publisher start to last subscriber exit");
  return verdict("fan-out " + std::to_string(n) + " agents x " + mib(mid.payload_size) + ": " +
                     fixed(th, 2) + " s (" + std::to_string(n) + " mosquitto_sub " + fixed(b, 2) +
                     " s, " + fixed(th / b, 2) + "x) bar <= 1.5x",
                 th <= 1.5 * b);
}

}  // namespace sovdev::bench
