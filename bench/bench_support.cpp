#include "bench/bench_support.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace sovdev::bench {
namespace {

using Clock = std::chrono::steady_clock;

// The value in bytes of a "Key:   1234 kB" line of /proc/<pid>/status, 0 when absent.
uint64_t status_field(const char* text, const char* key) {
  const char* at = std::strstr(text, key);
  if (at == nullptr) return 0;
  return std::strtoull(at + std::strlen(key), nullptr, 10) * 1024;
}

// One read of /proc/<pid>/status; false once the process is gone or a zombie.
bool sample(pid_t pid, ProcessStats& stats) {
  const std::string path = "/proc/" + std::to_string(pid) + "/status";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buffer[8192];
  const ssize_t n = ::read(fd, buffer, sizeof buffer - 1);
  ::close(fd);
  if (n <= 0) return false;
  buffer[n] = '\0';
  const uint64_t rss = status_field(buffer, "\nVmRSS:");
  if (rss == 0) return false;  // a zombie has no memory lines
  // VmHWM is the exact peak of the total; sampled VmRSS only adds the moment before exit.
  stats.peak_rss = std::max({stats.peak_rss, rss, status_field(buffer, "\nVmHWM:")});
  stats.peak_anon = std::max(stats.peak_anon, status_field(buffer, "\nRssAnon:"));
  stats.samples++;
  return true;
}

}  // namespace

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "sovdev-bench-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

ProcessStats run_process(const std::vector<std::string>& argv, const std::string& log_path,
                         double sample_ms) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);

  ProcessStats stats;
  const auto start = Clock::now();
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));

  int status = 0;
  if (sample_ms > 0) {
    const auto period = std::chrono::duration<double, std::milli>(sample_ms);
    for (;;) {
      sample(pid, stats);
      const pid_t done = ::waitpid(pid, &status, WNOHANG);
      if (done == pid) break;
      std::this_thread::sleep_for(period);
    }
  } else {
    ::waitpid(pid, &status, 0);
  }
  stats.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  stats.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return stats;
}

std::string shell_output(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) throw std::runtime_error("cannot run: " + command);
  std::string out;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe.get())) > 0) out.append(buffer, n);
  if (::pclose(pipe.release()) != 0) throw std::runtime_error("failed: " + command);
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

uint64_t file_size(const std::string& path) {
  return std::filesystem::file_size(path);
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  if (n == 0) return 0;
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

std::string mib(uint64_t bytes) {
  if (bytes < (1u << 20)) return fixed(static_cast<double>(bytes) / 1024, 0) + " KiB";
  return fixed(static_cast<double>(bytes) / (1 << 20), 1) + " MiB";
}

std::string fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

Keys make_keys(const Paths& paths, const std::string& dir) {
  Keys keys{dir + "/keys/pub1.key", dir + "/trust.root", dir + "/keys/online1.key"};
  // A root from before the roles were split names no online key: make the set again.
  if (std::filesystem::exists(keys.trust_root) && std::filesystem::exists(keys.online_key)) {
    return keys;
  }
  std::filesystem::remove_all(dir + "/keys");
  std::filesystem::remove(keys.trust_root);
  const std::string log = dir + "/keys.log";
  for (const char* name : {"root1", "pub1", "online1"}) {
    if (run_process({paths.hub(), "keygen", "--out", dir + "/keys", "--name", name}, log)
            .exit_code != 0) {
      throw std::runtime_error("sovdev-hub keygen failed: " + read_text(log));
    }
  }
  if (run_process({paths.hub(), "trust", "init", "--root", dir + "/keys/root1.pub", "--targets",
                   dir + "/keys/pub1.pub", "--online", dir + "/keys/online1.pub", "--sign",
                   dir + "/keys/root1.key", "--out", keys.trust_root},
                  log)
          .exit_code != 0) {
    throw std::runtime_error("sovdev-hub trust init failed: " + read_text(log));
  }
  return keys;
}

bool verdict(const std::string& line, bool ok) {
  std::printf("%s %s\n", line.c_str(), ok ? "OK" : "MISSED");
  std::fflush(stdout);
  return ok;
}

void skipped(const std::string& what, const std::string& why) {
  std::printf("%s: %s SKIPPED\n", what.c_str(), why.c_str());
  std::fflush(stdout);
}

std::string Paths::source_dir() const {
  // The bench targets are compiled with the build folder, not the source tree; the cache names
  // the tree it was configured from.
  std::ifstream cache(build_dir + "/CMakeCache.txt");
  const std::string key = "CMAKE_HOME_DIRECTORY:INTERNAL=";
  for (std::string line; std::getline(cache, line);) {
    if (line.rfind(key, 0) == 0) return line.substr(key.size());
  }
  throw std::runtime_error(build_dir + "/CMakeCache.txt names no source folder: configure first");
}

std::string Paths::realworld_dir() const {
  const char* env = std::getenv("SOVDEV_REALWORLD_DIR");
  if (env != nullptr && *env != '\0') return env;
  return shared_dir + "/realworld";
}

bool Paths::has_kube_prometheus() const {
  return std::filesystem::is_directory(kube_prometheus("81570cb1")) &&
         std::filesystem::is_directory(kube_prometheus("f214874c"));
}

void note(const std::string& line) {
  std::printf("  %s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace sovdev::bench
