#include "platform/kube/token_source.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include <nlohmann/json.hpp>

#include "common/text.hpp"
#include "platform/fs/files.hpp"
#include "platform/proc/spawn.hpp"

namespace sovdev::kube {
namespace {

constexpr size_t kMaxBearerTokenFile = 64 * 1024;
constexpr size_t kMaxPluginStdout = 1024 * 1024;
constexpr size_t kStderrTail = 8 * 1024;

std::string trim_right(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) {
    s.pop_back();
  }
  return s;
}

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

// The plugin's program only: kubeconfig args and env may carry tokens (`--token=...`), and
// these messages reach the agent's log and its status.
std::string command_name(const ExecPlugin& plugin) {
  return plugin.command;
}

// Its stderr, made one safe line: the plugin may relay an identity provider's text, or echo
// its arguments.
std::string stderr_text(const std::string& err, const ExecPlugin& plugin) {
  std::vector<std::string> argv{plugin.command};
  argv.insert(argv.end(), plugin.args.begin(), plugin.args.end());
  return escape_control(proc::hide_arguments(trim_right(err), argv));
}

// The ExecCredential the plugin finds in KUBERNETES_EXEC_INFO.
std::string exec_info(const Credentials& c) {
  nlohmann::json spec = {{"interactive", false}};
  if (c.exec->provide_cluster_info) {
    nlohmann::json cluster = {{"server", c.server}};
    if (!c.tls_server_name.empty()) cluster["tls-server-name"] = c.tls_server_name;
    if (c.insecure_skip_tls_verify) cluster["insecure-skip-tls-verify"] = true;
    if (!c.ca_pem.empty()) cluster["certificate-authority-data"] = base64_encode(c.ca_pem);
    if (!c.proxy_url.empty()) cluster["proxy-url"] = c.proxy_url;
    spec["cluster"] = std::move(cluster);
  }
  const nlohmann::json info = {
      {"apiVersion", c.exec->api_version}, {"kind", "ExecCredential"}, {"spec", std::move(spec)}};
  return info.dump();
}

// The agent's environment (less systemd's notify and watchdog entries) with
// KUBERNETES_EXEC_INFO and the plugin's entries set over it.
std::vector<std::string> plugin_env(const Credentials& c) {
  std::vector<std::pair<std::string, std::string>> set = c.exec->env;
  set.emplace_back("KUBERNETES_EXEC_INFO", exec_info(c));
  return proc::child_environment(set);
}

// Runs the plugin to its end: stdout (bounded) and the tail of stderr.
struct PluginRun {
  int status = 0;
  std::string out, err;
};

Expected<PluginRun> run(const Credentials& c, std::chrono::milliseconds timeout) {
  const ExecPlugin& plugin = *c.exec;
  const std::string what = "exec credential plugin '" + command_name(plugin) + "'";
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return make_error(Errc::internal, what + ": pipe failed");
  Fd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return make_error(Errc::internal, what + ": pipe failed");
  Fd err_r(err_pipe[0]), err_w(err_pipe[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_w.fd, STDERR_FILENO);
  const int closing = proc::close_other_descriptors(&actions);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);  // the agent ignores SIGPIPE; the plugin should not inherit that
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group, so a timeout kills its children too
  posix_spawnattr_setflags(
      &attr,
      static_cast<short>(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP));
  std::vector<std::string> argv_s{plugin.command};
  argv_s.insert(argv_s.end(), plugin.args.begin(), plugin.args.end());
  std::vector<std::string> env_s = plugin_env(c);
  auto argv = proc::c_strings(argv_s);
  auto envp = proc::c_strings(env_s);
  pid_t pid = -1;
  const int rc = closing != 0
                     ? closing
                     : ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    std::string msg = what + " could not be started: " + std::strerror(rc);
    if (!plugin.install_hint.empty()) msg += "\n" + plugin.install_hint;
    return make_error(Errc::unavailable, msg);
  }
  out_w.reset();
  err_w.reset();
  ::fcntl(out_r.fd, F_SETFL, O_NONBLOCK);
  ::fcntl(err_r.fd, F_SETFL, O_NONBLOCK);

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  PluginRun result;
  bool exited = false;
  // Only before the reap: afterwards the pid, and so the group id, may belong to another process.
  auto kill_all = [&] {
    if (!exited) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &result.status, 0);
    }
    exited = true;
  };
  char buf[16384];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill_all();
      return make_error(
          Errc::unavailable,
          what + " did not finish within " + std::to_string(timeout.count()) +
              " ms and was killed" +
              (result.err.empty() ? "" : "; stderr: " + stderr_text(result.err, plugin)));
    }
    pollfd fds[2] = {{out_r.fd, POLLIN, 0}, {err_r.fd, POLLIN, 0}};
    const bool open = out_r.fd >= 0 || err_r.fd >= 0;
    const int wait_ms =
        exited ? 0 : static_cast<int>(std::min<int64_t>(left.count(), open ? 100 : 5));
    const int n = ::poll(fds, 2, wait_ms);
    if (n < 0 && errno != EINTR) {
      kill_all();
      return make_error(Errc::internal, what + ": poll failed: " + std::strerror(errno));
    }
    bool got = false;
    for (int i = 0; i < 2 && n > 0; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      Fd& fd = i == 0 ? out_r : err_r;
      const ssize_t r = ::read(fd.fd, buf, sizeof buf);
      if (r > 0) {
        got = true;
        std::string& sink = i == 0 ? result.out : result.err;
        sink.append(buf, static_cast<size_t>(r));
        if (i == 0 && sink.size() > kMaxPluginStdout) {
          kill_all();
          return make_error(
              Errc::too_large,
              what + " wrote more than " + std::to_string(kMaxPluginStdout) + " bytes to stdout");
        }
        if (i == 1 && sink.size() > kStderrTail) sink.erase(0, sink.size() - kStderrTail);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        fd.reset();
      }
    }
    if (!exited && ::waitpid(pid, &result.status, WNOHANG) == pid) exited = true;
    // Done once it exited and nothing more is readable (a child it left behind may hold the
    // pipes open; its output does not count).
    if (exited && (!got || (out_r.fd < 0 && err_r.fd < 0))) break;
  }
  return result;
}

int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

}  // namespace

std::optional<int64_t> parse_rfc3339(const std::string& text) {
  size_t pos = 0;
  auto digits = [&](size_t count, int64_t& out) {
    if (pos + count > text.size()) return false;
    out = 0;
    for (size_t i = 0; i < count; ++i) {
      const char c = text[pos + i];
      if (c < '0' || c > '9') return false;
      out = out * 10 + (c - '0');
    }
    pos += count;
    return true;
  };
  auto expect = [&](std::string_view chars) {
    if (pos >= text.size() || chars.find(text[pos]) == std::string_view::npos) return false;
    ++pos;
    return true;
  };
  int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!digits(4, y) || !expect("-") || !digits(2, mo) || !expect("-") || !digits(2, d) ||
      !expect("Tt ") || !digits(2, h) || !expect(":") || !digits(2, mi) || !expect(":") ||
      !digits(2, s)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    if (pos == start) return std::nullopt;
  }
  int64_t offset = 0;
  if (expect("Zz")) {
    offset = 0;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int64_t sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int64_t oh = 0, om = 0;
    if (!digits(2, oh) || !expect(":") || !digits(2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = sign * (oh * 3600 + om * 60);
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset;
}

Expected<ExecCredential> run_exec_plugin(const Credentials& credentials,
                                         std::chrono::milliseconds timeout) {
  if (!credentials.exec) return make_error(Errc::internal, "no exec plugin configured");
  const ExecPlugin& plugin = *credentials.exec;
  const std::string what =
      "exec credential plugin '" + command_name(plugin) + "' (" + credentials.source + ")";
  SOVDEV_ASSIGN(PluginRun done, run(credentials, timeout));
  const std::string err = stderr_text(done.err, plugin);
  if (WIFSIGNALED(done.status)) {
    return make_error(Errc::unavailable, what + " was killed by signal " +
                                             std::to_string(WTERMSIG(done.status)) +
                                             (err.empty() ? "" : ": " + err));
  }
  if (WEXITSTATUS(done.status) != 0) {
    return make_error(Errc::unavailable, what + " exited with status " +
                                             std::to_string(WEXITSTATUS(done.status)) +
                                             (err.empty() ? "" : ": " + err));
  }
  auto bad = [&](const std::string& why) {
    return make_error(Errc::invalid, what + " printed " + why);
  };
  const nlohmann::json json = nlohmann::json::parse(done.out, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return bad("no JSON object on stdout");
  auto text = [&](const nlohmann::json& obj, const char* key) -> std::optional<std::string> {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::string();
    if (!it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  const auto kind = text(json, "kind");
  const auto api_version = text(json, "apiVersion");
  if (!kind || *kind != "ExecCredential") return bad("a JSON object that is not an ExecCredential");
  if (!api_version || *api_version != plugin.api_version) {
    return bad("apiVersion '" + api_version.value_or("?") + "', but the kubeconfig asks for '" +
               plugin.api_version + "'");
  }
  const auto status = json.find("status");
  if (status == json.end() || !status->is_object()) return bad("an ExecCredential with no status");
  ExecCredential out;
  const auto token = text(*status, "token");
  const auto cert = text(*status, "clientCertificateData");
  const auto key = text(*status, "clientKeyData");
  const auto expiry = text(*status, "expirationTimestamp");
  if (!token || !cert || !key || !expiry)
    return bad("an ExecCredential status with a non-string field");
  out.token = *token;
  out.client_cert_pem = *cert;
  out.client_key_pem = *key;
  if (out.client_cert_pem.empty() != out.client_key_pem.empty()) {
    return bad("only one of clientCertificateData and clientKeyData");
  }
  if (out.token.empty() && out.client_cert_pem.empty()) {
    return bad("neither a token nor a client certificate");
  }
  if (!expiry->empty()) {
    out.expires_at = parse_rfc3339(*expiry);
    if (!out.expires_at) return bad("expirationTimestamp '" + *expiry + "', not RFC 3339");
  }
  return out;
}

TokenSource::TokenSource(const Credentials& credentials, TokenSourceOptions options)
    : credentials_(credentials), options_(std::move(options)) {}

int64_t TokenSource::now() const {
  return options_.now ? options_.now() : static_cast<int64_t>(std::time(nullptr));
}

Expected<std::string> TokenSource::token() {
  std::lock_guard lock(mutex_);
  if (credentials_.exec) return exec_token();
  if (!credentials_.token_file.empty()) return file_token();
  return credentials_.token;
}

// As client-go does: the last token read successfully wins; the static token stands in until
// the file can be read.
Expected<std::string> TokenSource::file_token() {
  const std::string& path = credentials_.token_file;
  auto fallback = [&](Error error) -> Expected<std::string> {
    if (!file_token_.empty()) return file_token_;
    if (!credentials_.token.empty()) return credentials_.token;
    return std::move(error).context(credentials_.source + ": bearer token file");
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fallback(fs::errno_error("stat", path, errno));
  const FileVersion version{
      static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size),
      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
  if (file_version_ && *file_version_ == version) return file_token_;
  auto read = fs::read_file(path, kMaxBearerTokenFile);
  if (!read) return fallback(std::move(read).error());
  std::string token = trim_right(std::move(*read));
  if (token.empty()) return fallback(make_error(Errc::invalid, path + " is empty"));
  file_token_ = std::move(token);
  file_version_ = version;
  return file_token_;
}

Expected<std::string> TokenSource::exec_token() {
  const int64_t t = now();
  if (exec_ && (!exec_->expires_at || t < exec_valid_until_)) return exec_->token;
  exec_.reset();
  SOVDEV_ASSIGN(ExecCredential fresh, run_exec_plugin(credentials_, options_.exec_timeout));
  exec_ = std::move(fresh);
  if (exec_->expires_at) {
    // A credential handed out already inside the margin (a plugin that caches tokens itself)
    // is kept until its real expiry, or every request would run the plugin again.
    exec_valid_until_ = *exec_->expires_at - options_.expiry_margin.count();
    if (exec_valid_until_ <= t) exec_valid_until_ = *exec_->expires_at;
  }
  return exec_->token;
}

void TokenSource::invalidate() {
  std::lock_guard lock(mutex_);
  exec_.reset();
  file_version_.reset();
}

std::string TokenSource::client_cert_pem() const {
  std::lock_guard lock(mutex_);
  return exec_ && !exec_->client_cert_pem.empty() ? exec_->client_cert_pem
                                                  : credentials_.client_cert_pem;
}

std::string TokenSource::client_key_pem() const {
  std::lock_guard lock(mutex_);
  return exec_ && !exec_->client_key_pem.empty() ? exec_->client_key_pem
                                                 : credentials_.client_key_pem;
}

}  // namespace sovdev::kube
