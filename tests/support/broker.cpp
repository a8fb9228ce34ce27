#include "tests/support/broker.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace sovdev::testing {
namespace {

using namespace std::chrono_literals;

bool accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

std::string find_program(const std::string& name) {
  std::string dirs = std::getenv("PATH") ? std::getenv("PATH") : "";
  dirs += ":/usr/sbin:/usr/local/sbin:/sbin:/usr/bin";
  std::stringstream ss(dirs);
  for (std::string dir; std::getline(ss, dir, ':');) {
    const std::string path = dir + "/" + name;
    if (!dir.empty() && ::access(path.c_str(), X_OK) == 0) return path;
  }
  throw std::runtime_error(name + " not found: install mosquitto and mosquitto-clients");
}

void check_run(const std::vector<std::string>& argv) {
  const RunResult r = run(argv);
  if (r.exit_code != 0) {
    throw std::runtime_error(argv[0] + " failed (" + std::to_string(r.exit_code) + "): " + r.out +
                             r.err);
  }
}

// The directives of deploy/mosquitto/mosquitto.conf that the tests rewrite. Each must be
// found, so a change there that the tests do not know about fails loudly here.
class ConfigEditor {
 public:
  explicit ConfigEditor(const std::string& text) {
    std::stringstream ss(text);
    for (std::string line; std::getline(ss, line);) lines_.push_back(line);
  }
  // Replaces every line that is `directive` or starts with `directive `.
  void set(const std::string& directive, const std::string& replacement) {
    bool found = false;
    for (auto& line : lines_) {
      if (line == directive || line.rfind(directive + " ", 0) == 0) {
        line = replacement;
        found = true;
      }
    }
    if (!found) throw std::runtime_error("mosquitto.conf has no '" + directive + "' line");
  }
  // Removes the line `directive` and the rest of its section (up to the next "# ---").
  void drop_section_from(const std::string& directive) {
    set(directive, "#drop-from-here");
    bool dropping = false;
    std::vector<std::string> kept;
    for (auto& line : lines_) {
      if (line == "#drop-from-here") dropping = true;
      if (dropping && line.rfind("# ---", 0) == 0) dropping = false;
      if (!dropping) kept.push_back(line);
    }
    lines_ = std::move(kept);
  }
  void replace_in_all(const std::string& from, const std::string& to) {
    bool found = false;
    for (auto& line : lines_) {
      for (size_t at = line.find(from); at != std::string::npos; at = line.find(from, at)) {
        line.replace(at, from.size(), to);
        at += to.size();
        found = true;
      }
    }
    if (!found) throw std::runtime_error("mosquitto.conf never mentions " + from);
  }
  void append(const std::string& line) { lines_.push_back(line); }
  std::string text() const {
    std::string out;
    for (const auto& line : lines_) out += line + "\n";
    return out;
  }

 private:
  std::vector<std::string> lines_;
};

}  // namespace

Broker::Broker(BrokerOptions options) : options_(std::move(options)) {}

Broker::~Broker() {
  if (child_ && child_->running()) {
    child_->kill_hard();
    child_->wait();
  }
}

std::unique_ptr<Broker> Broker::start(BrokerOptions options) {
  std::unique_ptr<Broker> broker(new Broker(std::move(options)));
  broker->write_files();
  for (int tries = 0; tries < 5; tries++) {
    broker->port_ = free_port();
    do {
      broker->tls_port_ = broker->options_.tls ? free_port() : 0;
    } while (broker->tls_port_ == broker->port_);
    broker->write_config();
    if (broker->launch()) return broker;
  }
  throw std::runtime_error("mosquitto found no free port in 5 tries:\n" + broker->log());
}

std::string Broker::url() const {
  return "tcp://127.0.0.1:" + std::to_string(port_);
}

std::string Broker::tls_url() const {
  return "ssl://127.0.0.1:" + std::to_string(tls_port_);
}

void Broker::write_files() {
  const std::string deploy = source_dir() + "/deploy/mosquitto/";
  write_text(dir_ / "acl", read_text(deploy + "acl"));
  const std::string passwd = dir_ / "passwd";
  write_text(passwd, "");
  const std::string tool = find_program("mosquitto_passwd");
  for (const auto& user : options_.users) {
    check_run({tool, "-b", passwd, user.name, user.password});
  }
  if (options_.tls) {
    std::vector<std::string> argv = {"/bin/sh", deploy + "make-certs.sh", cert_dir()};
    argv.insert(argv.end(), options_.cert_names.begin(), options_.cert_names.end());
    check_run(argv);
  }
}

void Broker::write_config() {
  const std::string text = read_text(source_dir() + "/deploy/mosquitto/mosquitto.conf");
  if (text.empty()) throw std::runtime_error("cannot read deploy/mosquitto/mosquitto.conf");
  ConfigEditor conf(text);
  conf.replace_in_all("/etc/mosquitto/sovdev", dir());
  conf.set("persistence_location", "persistence_location " + dir() + "/");
  conf.set("log_dest", "log_dest file " + (dir_ / "mosquitto.log"));
  conf.set("log_type", "log_type all");
  conf.set("listener 1883", "listener " + std::to_string(port_) + " 127.0.0.1");
  if (options_.tls) {
    conf.set("listener 8883", "listener " + std::to_string(tls_port_) + " 127.0.0.1");
  } else {
    conf.drop_section_from("listener 8883");
  }
  if (!options_.acl) conf.set("acl_file", "# no acl_file: every user may do anything");
  // As root mosquitto drops to the "mosquitto" user, which cannot read our temporary folder.
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwuid(::geteuid());
    conf.append(std::string("user ") + (pw ? pw->pw_name : "root"));
  }
  for (const auto& line : options_.extra_config) conf.append(line);
  write_text(dir_ / "mosquitto.conf", conf.text());
}

bool Broker::launch() {
  child_ = std::make_unique<Child>(
      std::vector<std::string>{find_program("mosquitto"), "-c", dir_ / "mosquitto.conf"},
      dir_ / "mosquitto.out");
  const bool ready = wait_until(
      [&] {
        return !child_->running() || (accepts(port_) && (!options_.tls || accepts(tls_port_)));
      },
      15s);
  if (!child_->running()) {
    if (log().find("Address already in use") != std::string::npos) return false;
    throw std::runtime_error("mosquitto exited at start:\n" + log());
  }
  if (!ready) {
    child_->kill_hard();
    child_->wait();
    throw std::runtime_error("mosquitto did not accept connections within 15 s:\n" + log());
  }
  return true;
}

void Broker::wait_stopped() {
  if (!wait_until([&] { return !child_->running(); }, 5s)) {
    child_->kill_hard();
    child_->wait();
  }
}

void Broker::stop() {
  if (!child_ || !child_->running()) return;
  ::kill(child_->pid(), SIGTERM);
  ::kill(child_->pid(), SIGCONT);  // a paused broker must run to act on SIGTERM
  wait_stopped();
}

void Broker::kill_hard() {
  if (!child_ || !child_->running()) return;
  child_->kill_hard();
  child_->wait();
}

void Broker::restart() {
  stop();
  // mosquitto sets SO_REUSEADDR, so its ports are free again at once, unless another process
  // took one meanwhile; then the test cannot go on.
  if (!launch()) {
    throw std::runtime_error("mosquitto could not listen on its ports again:\n" + log());
  }
}

void Broker::pause() {
  if (child_ && child_->running()) ::kill(child_->pid(), SIGSTOP);
}

void Broker::resume() {
  if (child_ && child_->running()) ::kill(child_->pid(), SIGCONT);
}

bool Broker::running() {
  return child_ && child_->running();
}

std::string Broker::log() const {
  return read_text(dir_ / "mosquitto.out") + read_text(dir_ / "mosquitto.log");
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

}  // namespace sovdev::testing
