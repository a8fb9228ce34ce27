#include "platform/target/exec.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>

#include "common/text.hpp"
#include "platform/proc/spawn.hpp"

namespace sovdev::target {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kStderrTail = 8 * 1024;
constexpr size_t kStdoutTail = 2 * 1024;
// How long a command that stopped reading its input gets to exit before it is killed.
constexpr auto kExitGrace = std::chrono::seconds(5);

std::string trim_right(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// Keeps the last `max` bytes; true when some were dropped.
bool keep_tail(std::string& s, size_t max) {
  if (s.size() <= max) return false;
  s.erase(0, s.size() - max);
  return true;
}

// An output cut at the front may begin with the end of a word cut in two: a Secret's value the
// command echoed (base64 in the JSON it was sent), a token of its own command line. Neither the
// agent's scrub nor hide_arguments recognises a part of one, so the cut word goes too: the
// characters of base64, hex and tokens up to the first other byte.
void drop_cut_word(std::string& s) {
  size_t i = 0;
  while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) != 0 ||
                          std::string_view("+/=_-").find(s[i]) != std::string_view::npos)) {
    ++i;
  }
  s.erase(0, i);
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

// Blocks SIGPIPE in this thread while writing to the command, and discards the one a write to a
// closed pipe raises: the write then fails with EPIPE instead of killing the agent, whether or
// not the process ignores SIGPIPE.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~SigpipeGuard() {
    if (!was_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        const timespec zero{0, 0};
        sigtimedwait(&set_, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t set_{}, old_{};
  bool was_pending_ = false;
};

class ExecTarget final : public Target {
 public:
  ExecTarget(std::vector<std::string> argv, ExecOptions options)
      : argv_(std::move(argv)), options_(options) {}
  ~ExecTarget() override { abort(); }
  ExecTarget(const ExecTarget&) = delete;
  ExecTarget& operator=(const ExecTarget&) = delete;

  Status begin(const ApplyBegin& version) override;
  Status apply(const pb::ResourceRecord& object) override;
  Expected<ApplyResult> commit() override;
  void abort() override;

 private:
  // Names the program only: the arguments may hold a token, and this text reaches the
  // agent's log, its retained status and the hub's database.
  std::string what() const {
    return "apply " + version_.stack + "@" + std::to_string(version_.version) + " through " +
           argv_[0];
  }
  Status write_all(std::string_view data);
  void read_output(int& fd, std::string& sink, size_t max, bool& cut);
  // Waits for the command to exit until `until`, draining its output; false on timeout.
  bool wait_exit(Clock::time_point until);
  Error failure(const std::string& why);
  Error timed_out();

  std::vector<std::string> argv_;
  ExecOptions options_;
  ApplyBegin version_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
  int in_ = -1, out_ = -1, err_ = -1;
  std::string stdout_tail_, stderr_tail_;
  bool stdout_cut_ = false, stderr_cut_ = false;  // their beginnings were dropped
  Clock::time_point deadline_{};
  uint32_t applied_ = 0;
};

Status ExecTarget::begin(const ApplyBegin& version) {
  if (pid_ > 0) {
    return make_error(Errc::internal, "begin " + version.stack + " while " + what() +
                                          " is still open: commit or abort it first");
  }
  version_ = version;
  applied_ = 0;
  exited_ = false;
  status_ = 0;
  stdout_tail_.clear();
  stderr_tail_.clear();
  stdout_cut_ = stderr_cut_ = false;
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    const int e = errno;
    for (int* p : {in, out, err}) {
      close_fd(p[0]);
      close_fd(p[1]);
    }
    return make_error(Errc::internal, what() + ": pipe: " + std::strerror(e));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  const int closing = proc::close_other_descriptors(&actions);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);  // the agent ignores SIGPIPE; the command should not inherit that
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group: abort() kills what it started too
  posix_spawnattr_setflags(
      &attr,
      static_cast<short>(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP));
  std::vector<char*> argv = proc::c_strings(argv_);
  std::vector<std::string> env_strings = proc::child_environment();
  std::vector<char*> env = proc::c_strings(env_strings);
  const int rc = closing != 0
                     ? closing
                     : ::posix_spawnp(&pid_, argv[0], &actions, &attr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close_fd(in[0]);
  close_fd(out[1]);
  close_fd(err[1]);
  in_ = in[1];
  out_ = out[0];
  err_ = err[0];
  if (rc != 0) {
    pid_ = -1;
    close_fd(in_);
    close_fd(out_);
    close_fd(err_);
    return make_error(rc == ENOENT || rc == EACCES ? Errc::invalid : Errc::internal,
                      what() + ": cannot start " + argv_[0] + ": " + std::strerror(rc) +
                          (rc == ENOENT ? " (not installed, or not in PATH?)" : ""));
  }
  for (int fd : {in_, out_, err_}) ::fcntl(fd, F_SETFL, O_NONBLOCK);
  deadline_ = Clock::now() + options_.timeout;
  return {};
}

void ExecTarget::read_output(int& fd, std::string& sink, size_t max, bool& cut) {
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      sink.append(buf, static_cast<size_t>(n));
      if (keep_tail(sink, max)) cut = true;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    close_fd(fd);  // end of file or an error: nothing more will come
    return;
  }
}

// Writes while draining the command's stdout and stderr, so neither side can block the other.
Status ExecTarget::write_all(std::string_view data) {
  const SigpipeGuard guard;
  while (!data.empty()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
    if (left.count() <= 0) return timed_out();
    pollfd fds[3] = {{in_, POLLOUT, 0}, {out_, POLLIN, 0}, {err_, POLLIN, 0}};
    const int n = ::poll(fds, 3, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n < 0) {
      if (errno == EINTR) continue;
      return failure(std::string("poll: ") + std::strerror(errno));
    }
    if (fds[1].revents != 0) read_output(out_, stdout_tail_, kStdoutTail, stdout_cut_);
    if (fds[2].revents != 0) read_output(err_, stderr_tail_, kStderrTail, stderr_cut_);
    if (fds[0].revents == 0) {
      beat();  // the command is busy and not reading: the agent's loop runs meanwhile
      continue;
    }
    const ssize_t w = ::write(in_, data.data(), data.size());
    if (w > 0) {
      data.remove_prefix(static_cast<size_t>(w));
      continue;
    }
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    const int e = errno;
    close_fd(in_);
    if (!wait_exit(std::min(deadline_, Clock::now() + kExitGrace))) {
      abort();
      return make_error(Errc::unavailable,
                        what() + ": the command stopped reading its input after " +
                            std::to_string(applied_) + " objects and did not exit; killed");
    }
    return failure(e == EPIPE ? "stopped reading its input after " + std::to_string(applied_) +
                                    " objects and " + describe_status(status_)
                              : std::string("write: ") + std::strerror(e));
  }
  return {};
}

bool ExecTarget::wait_exit(Clock::time_point until) {
  for (;;) {
    const bool open = out_ >= 0 || err_ >= 0;
    if (exited_ && !open) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    if (left.count() <= 0) return exited_;
    pollfd fds[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
    // Once it exited, whatever it left running may keep the pipes open: take what is there.
    const int wait_ms =
        exited_ ? 0 : static_cast<int>(std::min<int64_t>(left.count(), open ? 200 : 5));
    const int n = ::poll(fds, 2, wait_ms);
    if (n > 0) {
      if (fds[0].revents != 0) read_output(out_, stdout_tail_, kStdoutTail, stdout_cut_);
      if (fds[1].revents != 0) read_output(err_, stderr_tail_, kStderrTail, stderr_cut_);
    }
    if (exited_ && n <= 0) return true;
    if (!exited_ && ::waitpid(pid_, &status_, WNOHANG) == pid_) exited_ = true;
    beat();  // at most every 200 ms: a command applying for minutes keeps the agent alive
  }
}

Error ExecTarget::failure(const std::string& why) {
  std::string msg = what() + ": " + argv_[0] + " " + why;
  // Escaped, then cut again: a control byte takes four characters once escaped.
  std::string err = trim_right(stderr_tail_), out = trim_right(stdout_tail_);
  if (stderr_cut_) drop_cut_word(err);
  if (stdout_cut_) drop_cut_word(out);
  err = escape_control(proc::hide_arguments(std::move(err), argv_));
  out = escape_control(proc::hide_arguments(std::move(out), argv_));
  if (keep_tail(err, kStderrTail)) drop_cut_word(err);
  if (keep_tail(out, kStdoutTail)) drop_cut_word(out);
  if (!output_in_errors()) {
    if (!err.empty() || !out.empty()) {
      msg +=
          "; its output is not shown (the version carries sealed Secrets: see the command's "
          "own log)";
    }
  } else if (!err.empty()) {
    msg += "; stderr: " + err;
  } else if (!out.empty()) {
    msg += "; stdout: " + out;
  }
  abort();
  return make_error(Errc::unavailable, msg);
}

Error ExecTarget::timed_out() {
  return failure("did not finish within " + std::to_string(options_.timeout.count()) +
                 " ms and was killed");
}

Status ExecTarget::apply(const pb::ResourceRecord& object) {
  if (pid_ <= 0 || in_ < 0) {
    return make_error(Errc::internal, "apply " + object.kind() + " " + object.name() +
                                          " to the exec target before begin");
  }
  if (object.json().empty()) {
    return make_error(Errc::invalid,
                      what() + ": " + object.kind() + " " + object.name() + " has no JSON");
  }
  SOVDEV_TRY(write_all("---\n"));
  SOVDEV_TRY(write_all(object.json()));
  SOVDEV_TRY(write_all("\n"));
  ++applied_;
  return {};
}

Expected<ApplyResult> ExecTarget::commit() {
  if (pid_ <= 0) return make_error(Errc::internal, "commit to the exec target before begin");
  close_fd(in_);  // end of input: the command applies and exits
  if (!wait_exit(deadline_)) return timed_out();
  if (!WIFEXITED(status_) || WEXITSTATUS(status_) != 0) {
    return failure(describe_status(status_) + " after reading " + std::to_string(applied_) +
                   " objects");
  }
  ApplyResult result;
  result.applied = applied_;
  result.changes_known = false;  // the command reads objects and does not say what it changed
  abort();                       // only closes what is left: the command has been reaped
  return result;
}

void ExecTarget::abort() {
  if (pid_ > 0 && !exited_) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
    }
  }
  exited_ = true;
  pid_ = -1;
  close_fd(in_);
  close_fd(out_);
  close_fd(err_);
}

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n';
}

}  // namespace

Expected<std::vector<std::string>> split_command(std::string_view command) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < command.size(); ++i) {
    const char c = command[i];
    if (is_blank(c)) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\\') {
      if (++i == command.size()) return make_error(Errc::invalid, "command ends in a backslash");
      if (command[i] != '\n') word += command[i];
    } else if (c == '\'') {
      const size_t end = command.find('\'', i + 1);
      if (end == std::string_view::npos) {
        return make_error(Errc::invalid, "unterminated ' in the command (at character " +
                                             std::to_string(i + 1) + ")");
      }
      word.append(command.substr(i + 1, end - i - 1));
      i = end;
    } else if (c == '"') {
      const size_t start = i;
      for (++i;; ++i) {
        if (i == command.size()) {
          return make_error(Errc::invalid, "unterminated \" in the command (at character " +
                                               std::to_string(start + 1) + ")");
        }
        if (command[i] == '"') break;
        if (command[i] == '$' || command[i] == '`') {
          return make_error(Errc::invalid,
                            "command has an unescaped '" + std::string(1, command[i]) +
                                "' in double quotes, but it runs without a shell: nothing is "
                                "expanded; escape it, or run a shell explicitly (sh -c '...')");
        }
        if (command[i] == '\\' && i + 1 < command.size() &&
            std::string_view("\\\"$`\n").find(command[i + 1]) != std::string_view::npos) {
          ++i;
          if (command[i] == '\n') continue;
        }
        word += command[i];
      }
    } else if (std::string_view("|&;<>()$`").find(c) != std::string_view::npos) {
      return make_error(Errc::invalid,
                        std::string("command has an unquoted '") + c +
                            "', but it runs without a shell: quote it, or run a shell "
                            "explicitly (sh -c '...'); at character " +
                            std::to_string(i + 1));
    } else {
      word += c;
    }
  }
  if (in_word) words.push_back(std::move(word));
  if (words.empty()) return make_error(Errc::invalid, "the exec target's command is empty");
  return words;
}

Expected<std::unique_ptr<Target>> make_exec_target(const std::string& command,
                                                   ExecOptions options) {
  auto argv = split_command(command);
  if (!argv) return std::move(argv).error().context("apply.command");
  return std::unique_ptr<Target>(std::make_unique<ExecTarget>(std::move(*argv), options));
}

}  // namespace sovdev::target
