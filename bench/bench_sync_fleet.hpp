// bench_sync's fleet: a mosquitto on loopback, hubs and agents as real processes, and the
// baseline data; every child started is killed by kill_all_children().
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_data.hpp"
#include "bench/bench_support.hpp"

namespace sovdev::bench {

using Clock = std::chrono::steady_clock;
inline constexpr uint64_t kMiB = 1 << 20;
inline constexpr size_t kLine = 65535;  // a baseline message: one line for mosquitto_pub -l

inline double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void kill_all_children();

// A run's working folder, emptied at start. At the end every child is killed and the folder
// removed; SOVDEV_BENCH_KEEP=1 keeps the logs and databases for a look afterwards.
class ScratchDir {
 public:
  explicit ScratchDir(std::string dir);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

 private:
  std::string dir_;
};
pid_t spawn(const std::vector<std::string>& argv, const std::string& log,
            const std::string& stdin_path = "");
std::optional<int> wait_child(pid_t pid, std::chrono::milliseconds timeout);
void stop_child(pid_t pid);

struct Mem {
  uint64_t anon = 0, rss = 0;
};

std::optional<Mem> read_mem(pid_t pid);
void write_file(const std::string& path, const std::string& text);
int free_port();
bool accepts(int port);

// ---- the fleet ------------------------------------------------------------------------------
struct Context {
  Paths paths;
  std::string dir;  // everything of this benchmark; removed at the end
  Keys keys;
  int port = 0;
  pid_t broker = -1;
  std::string url() const { return "tcp://127.0.0.1:" + std::to_string(port); }
};

void start_broker(Context& ctx);

// A hub serving one bundle under its own topic prefix (each scenario has its own, so their
// retained catalogs never meet).
struct Hub {
  pid_t pid = -1;
  std::string prefix;
};

Hub start_hub(const Context& ctx, const std::string& name, const std::string& bundle);

struct Agent {
  std::string config, state, applied;
};

Agent make_agent(const Context& ctx, const std::string& id, const std::string& prefix,
                 int keepalive = 900, int window = 0);
void drop_agent(const Agent& a);
bool applied(const Agent& a);

// The agent's own figures for its completed fetch, from its log line "fetched S@V in N ms: ...,
// C CPU-s" (the CPU of the whole agent process, MQTT threads included, over the fetch).
struct FetchFigures {
  double seconds = 0;
  double cpu_seconds = 0;
};
FetchFigures fetch_figures(const std::string& log);
// `lines` baseline messages of kLine random base64 characters, for mosquitto_pub -l.
std::string make_lines(const Context& ctx, const std::string& name, uint64_t lines);
uint64_t lines_for(uint64_t bytes);

// The broker-only baseline (bench_sync.cpp, which says how it is timed).
double broker_baseline(const Context& ctx, const std::string& lines_file, uint64_t count,
                       int subscribers, double* first_to_last = nullptr);
// The fan-out figure and its verdict (bench_sync_fanout.cpp).
bool bench_fanout(const Context& ctx, const GeneratedBundle& mid, const Hub& hub, int n,
                  const std::string& lines);

}  // namespace sovdev::bench
