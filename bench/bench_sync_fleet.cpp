// bench_sync's fleet: the processes it starts (mosquitto, hubs, agents) and the data it feeds them.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
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

#include "bench/bench_sync_fleet.hpp"

extern char** environ;

namespace sovdev::bench {

using namespace std::chrono_literals;

// ---- child processes: every one started is killed at the end, however we leave ----------------
namespace {
std::set<pid_t> g_children;
}  // namespace

ScratchDir::ScratchDir(std::string dir) : dir_(std::move(dir)) {
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
}

ScratchDir::~ScratchDir() {
  kill_all_children();
  if (std::getenv("SOVDEV_BENCH_KEEP") != nullptr) return;
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void kill_all_children() {
  for (pid_t pid : g_children) ::kill(pid, SIGKILL);
  for (pid_t pid : g_children) ::waitpid(pid, nullptr, 0);
  g_children.clear();
}

pid_t spawn(const std::vector<std::string>& argv, const std::string& log,
            const std::string& stdin_path) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(
      &fa, STDIN_FILENO, stdin_path.empty() ? "/dev/null" : stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  g_children.insert(pid);
  return pid;
}

// Exit code (-1 for a signal), or nullopt when still running after `timeout`.
std::optional<int> wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  const auto end = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      g_children.erase(pid);
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    if (Clock::now() >= end) return std::nullopt;
    std::this_thread::sleep_for(2ms);
  }
}

void stop_child(pid_t pid) {
  ::kill(pid, SIGTERM);
  if (!wait_child(pid, 5s)) {
    ::kill(pid, SIGKILL);
    wait_child(pid, 5s);
  }
}

std::optional<Mem> read_mem(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return std::nullopt;
  Mem m;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("RssAnon:", 0) == 0)
      m.anon = std::strtoull(line.c_str() + 8, nullptr, 10) * 1024;
    if (line.rfind("VmRSS:", 0) == 0) m.rss = std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  if (m.rss == 0) return std::nullopt;
  return m;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot find a free loopback port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

bool accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  if (fd >= 0) ::close(fd);
  return ok;
}

// mosquitto with the limits of deploy/mosquitto/mosquitto.conf, except: anonymous clients, no
// ACL, no persistence, and no per-client queue limit (the baseline publisher does not wait for
// its subscribers the way the hub waits for an agent's requests).
void start_broker(Context& ctx) {
  for (int tries = 0; tries < 5; tries++) {
    ctx.port = free_port();
    std::string conf =
        "per_listener_settings false\nallow_anonymous true\n"
        "message_size_limit 1114112\nmax_packet_size 1179648\n"
        "max_queued_messages 0\nmax_queued_bytes 0\nmax_inflight_messages 1000\n"
        "persistence false\nlog_dest file " +
        ctx.dir +
        "/mosquitto.log\nlog_type error\nlog_type warning\n"
        "max_connections -1\nset_tcp_nodelay true\nlistener " +
        std::to_string(ctx.port) + " 127.0.0.1\n";
    if (::geteuid() == 0) conf += "user root\n";
    write_file(ctx.dir + "/mosquitto.conf", conf);
    // The broker as deploy/mosquitto installs it: glibc keeps up to 8 MiB of freed heap
    // instead of trimming after every burst of chunks (with the default 128 KiB threshold a
    // full pull spent up to 1 s of broker CPU in brk and page faults on a 2-core VM; the
    // plain subscriber of the baseline goes through this same broker).
    ctx.broker = spawn({"env", "MALLOC_TRIM_THRESHOLD_=8388608", "MALLOC_TOP_PAD_=4194304",
                        "mosquitto", "-c", ctx.dir + "/mosquitto.conf"},
                       ctx.dir + "/mosquitto.out");
    const auto start = Clock::now();
    while (since(start) < 10) {
      if (accepts(ctx.port)) return;
      if (wait_child(ctx.broker, 0ms)) break;
      std::this_thread::sleep_for(20ms);
    }
    stop_child(ctx.broker);
  }
  throw std::runtime_error("mosquitto did not start: " + read_text(ctx.dir + "/mosquitto.out"));
}

Hub start_hub(const Context& ctx, const std::string& name, const std::string& bundle) {
  const std::string db = ctx.dir + "/hub-" + name + ".db";
  const std::string log = ctx.dir + "/hub-" + name + ".log";
  const auto p = run_process({ctx.paths.hub(), "publish", bundle, "--db", db, "--key",
                              ctx.keys.online_key, "--trust", ctx.keys.trust_root},
                             log);
  if (p.exit_code != 0) throw std::runtime_error("sovdev-hub publish failed: " + read_text(log));
  Hub hub{-1, "bench-" + name + "/v1"};
  hub.pid = spawn(
      {ctx.paths.hub(), "serve", "--db", db, "--broker", ctx.url(), "--key", ctx.keys.online_key,
       "--trust", ctx.keys.trust_root, "--group", "benchhubs", "--prefix", hub.prefix},
      log);
  // Ready once the retained catalog is on the broker.
  const std::string out = ctx.dir + "/catalog-" + name + ".out";
  const pid_t sub = spawn({"mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(ctx.port), "-t",
                           hub.prefix + "/catalog/edge", "-C", "1", "-W", "20", "-F", "%l"},
                          out);
  if (wait_child(sub, 25s).value_or(-1) != 0) {
    throw std::runtime_error("hub published no catalog: " + read_text(log));
  }
  return hub;
}

Agent make_agent(const Context& ctx, const std::string& id, const std::string& prefix,
                 int keepalive, int window) {
  Agent a{ctx.dir + "/agent-" + id + ".toml", ctx.dir + "/state-" + id, ctx.dir + "/applied-" + id};
  std::filesystem::remove_all(a.state);
  std::filesystem::remove_all(a.applied);
  std::filesystem::create_directories(a.applied);
  write_file(a.config, "agent_id = \"" + id + "\"\nchannels = [\"edge\"]\nstate_dir = \"" +
                           a.state + "\"\ntrust_root = \"" + ctx.keys.trust_root +
                           "\"\n[broker]\nurls = [\"" + ctx.url() + "\"]\ntopic_prefix = \"" +
                           prefix + "\"\nkeepalive_seconds = " + std::to_string(keepalive) +
                           "\n[sync]\n" +
                           (window > 0 ? "window = " + std::to_string(window) + "\n" : "") +
                           "status_interval_seconds = 3600\n[apply]\ntarget = \"dir\"\ndir = \"" +
                           a.applied + "\"\n");
  return a;
}

void drop_agent(const Agent& a) {
  std::filesystem::remove_all(a.state);
  std::filesystem::remove_all(a.applied);
}

bool applied(const Agent& a) {
  return std::filesystem::exists(a.applied + "/.sovdev-kp.inventory");
}

// `lines` baseline messages of kLine random base64 characters, for mosquitto_pub -l.
std::string make_lines(const Context& ctx, const std::string& name, uint64_t lines) {
  const std::string path = ctx.dir + "/" + name + ".lines";
  std::ofstream out(path, std::ios::binary);
  std::mt19937_64 rng(lines);
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string line(kLine + 1, '\n');
  for (uint64_t i = 0; i < lines; i++) {
    for (size_t k = 0; k < kLine; k += 10) {
      uint64_t bits = rng();
      for (size_t j = k; j < std::min(k + 10, kLine); j++, bits >>= 6)
        line[j] = kAlphabet[bits & 63];
    }
    out.write(line.data(), static_cast<std::streamsize>(line.size()));
  }
  if (!out) throw std::runtime_error("cannot write " + path);
  return path;
}

uint64_t lines_for(uint64_t bytes) {
  return (bytes + kLine - 1) / kLine;
}

FetchFigures fetch_figures(const std::string& log) {
  const std::string head = "fetched ";
  for (size_t at = log.find(head); at != std::string::npos; at = log.find(head, at + 1)) {
    const size_t in = log.find(" in ", at), ms = log.find(" ms:", at);
    const size_t eol = log.find('\n', at);
    if (in == std::string::npos || ms == std::string::npos || ms < in || ms > eol) continue;
    FetchFigures f;
    f.seconds = std::stod(log.substr(in + 4, ms - in - 4)) / 1000.0;
    const size_t cpu = log.rfind(", ", log.find(" CPU-s", at));
    if (cpu != std::string::npos && cpu > at && cpu < eol)
      f.cpu_seconds = std::stod(log.substr(cpu + 2));
    return f;
  }
  throw std::runtime_error("the agent's log names no completed fetch: " + log);
}

}  // namespace sovdev::bench
