// Test support: a real mosquitto on free loopback ports, configured from
// deploy/mosquitto/mosquitto.conf (and its acl) with the paths, ports and logging of a
// temporary folder. Failures throw std::runtime_error carrying mosquitto's own log.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace sovdev::testing {

struct BrokerUser {
  std::string name;
  std::string password;
};

struct BrokerOptions {
  bool tls = false;  // also open the TLS listener (client certificate required, CN = user)
  bool acl = false;  // enforce deploy/mosquitto/acl; without it every user may do anything
  // Users of the password file.
  std::vector<BrokerUser> users = {
      {"sovdev-hub", "hub-secret"}, {"agent-a", "secret-a"}, {"agent-b", "secret-b"}};
  // With tls: client certificates made by make-certs.sh, one per CN.
  std::vector<std::string> cert_names = {"sovdev-hub", "agent-a", "agent-b"};
  std::vector<std::string> extra_config;  // lines appended to the configuration
};

class Broker {
 public:
  // Starts mosquitto and returns once its listeners accept connections.
  static std::unique_ptr<Broker> start(BrokerOptions options = {});
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  int port() const { return port_; }
  int tls_port() const { return tls_port_; }
  std::string url() const;      // tcp://127.0.0.1:<port>
  std::string tls_url() const;  // ssl://127.0.0.1:<tls_port>
  // ca.crt, server.crt/.key and <cn>.crt/.key for each of options.cert_names.
  std::string cert_dir() const { return dir_ / "certs"; }
  const std::string& dir() const { return dir_.path(); }
  const BrokerOptions& options() const { return options_; }

  void stop();       // SIGTERM, then SIGKILL if it has not exited within a few seconds
  void kill_hard();  // SIGKILL: no goodbye to the clients
  void restart();    // stop, then start again on the same ports
  void pause();      // SIGSTOP: connections stay open but nothing is answered
  void resume();     // SIGCONT
  bool running();
  std::string log() const;  // mosquitto's log so far

 private:
  explicit Broker(BrokerOptions options);
  void write_files();
  void write_config();
  bool launch();  // false when a port was taken
  void wait_stopped();

  BrokerOptions options_;
  TempDir dir_;
  int port_ = 0;
  int tls_port_ = 0;
  std::unique_ptr<Child> child_;
};

// A loopback TCP port nothing listens on right now.
int free_port();

}  // namespace sovdev::testing
