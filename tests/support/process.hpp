// Test support: temporary folders and real child processes (run to completion, or started and
// killed with SIGKILL at a moment the test picks).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace sovdev::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

// Runs a program to completion, capturing its output.
RunResult run(const std::vector<std::string>& argv);
// The same, with `input` on its stdin (at most 64 KiB: written before the output is read).
RunResult run_with_input(const std::vector<std::string>& argv, const std::string& input);

// A started child whose output goes to files; kill() sends SIGKILL.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv, const std::string& log_path = "/dev/null");
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  void kill_hard();
  // Waits for exit; returns the exit code, or -1 when killed by a signal.
  int wait();
  bool running();

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

// Polls `condition` until it holds or `timeout` passes; never a bare sleep as synchronisation.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// Absolute paths of the built programs and the source tree (test inputs: tests/support/inputs.hpp).
std::string hub_binary();
std::string agent_binary();
std::string source_dir();

std::string read_text(const std::string& path);
// A SQLite database's bytes with its -wal and -shm files (those missing read as empty): what a
// test greps for a value that must never be stored in the clear.
std::string read_database_files(const std::string& path);
void write_text(const std::string& path, const std::string& text);

}  // namespace sovdev::testing
