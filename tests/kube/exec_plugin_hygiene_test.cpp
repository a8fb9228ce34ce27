// What a kubeconfig exec credential plugin inherits from the agent (issue #19): descriptors 0,
// 1 and 2 and nothing else (not the agent's MQTT socket, not its database), and no systemd
// notify or watchdog variable. The plugin runs the way the agent runs it: from a kubeconfig,
// through the API client, for a request to the (fake) API server that needs its token.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "platform/kube/api_client.hpp"
#include "platform/kube/kubeconfig.hpp"
#include "tests/kube/fake_kube.hpp"
#include "tests/support/process.hpp"

namespace sovdev::testing {
namespace {

using Catch::Matchers::Contains;

// Descriptors open in the agent the way Paho C opens its socket and SQLite its files: without
// close-on-exec.
struct InheritableDescriptors {
  int pair[2] = {-1, -1};
  int file = -1;
  InheritableDescriptors() {
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    file = ::open("/proc/self/status", O_RDONLY);
    REQUIRE(file > 2);
  }
  ~InheritableDescriptors() {
    for (int fd : {pair[0], pair[1], file}) ::close(fd);
  }
  InheritableDescriptors(const InheritableDescriptors&) = delete;
  InheritableDescriptors& operator=(const InheritableDescriptors&) = delete;
};

// systemd's variables, as the agent has them under its unit.
struct SystemdEnvironment {
  SystemdEnvironment() {
    ::setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
    ::setenv("WATCHDOG_USEC", "60000000", 1);
    ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  }
  ~SystemdEnvironment() {
    for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}) ::unsetenv(name);
  }
  SystemdEnvironment(const SystemdEnvironment&) = delete;
  SystemdEnvironment& operator=(const SystemdEnvironment&) = delete;
};

// The descriptor numbers in `ls -l /proc/PID/fd` output ("lrwx------ ... 3 -> socket:[...]").
std::set<std::string> descriptors(const std::string& listing) {
  std::set<std::string> out;
  std::istringstream lines(listing);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string previous;
    for (std::string w; words >> w; previous = w) {
      if (w == "->") out.insert(previous);
    }
  }
  return out;
}

TEST_CASE(
    "a kubeconfig exec credential plugin holds no descriptor of the agent's and no systemd "
    "variable",
    "[kube][token][hygiene]") {
  FakeKube kube;
  const std::string fds = kube.file("plugin-fds"), env = kube.file("plugin-env");
  // `sh -c` rather than a script file: a shell running a file keeps it open on a descriptor of
  // its own. `ls` lists the shell's descriptors (the subshells keep the redirections out of it).
  const std::string script = "(ls -l /proc/$$/fd) > '" + fds + "'; (env) > '" + env +
                             "'; printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
                             "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"" +
                             FakeKube::kToken + "\"}}'";
  const std::string kubeconfig = kube.file("kubeconfig-exec");
  // The script as a YAML block scalar: its quotes and braces need no escaping there.
  write_text(kubeconfig,
             "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
             "clusters:\n- name: fake\n  cluster:\n    server: " +
                 kube.server() + "\n    certificate-authority: " + kube.file("ca.crt") +
                 "\nusers:\n- name: agent\n  user:\n    exec:\n"
                 "      apiVersion: client.authentication.k8s.io/v1\n"
                 "      interactiveMode: Never\n      command: /bin/sh\n      args:\n"
                 "      - -c\n      - |-\n        " +
                 script + "\n" +
                 "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: agent\n");
  auto credentials = kube::load_kubeconfig(kubeconfig);
  REQUIRE(credentials.has_value());
  REQUIRE(credentials->exec.has_value());

  const InheritableDescriptors open_in_agent;
  const SystemdEnvironment systemd;
  auto api = kube::ApiClient::create(*credentials);
  REQUIRE(api.has_value());
  auto answer = (*api)->get("/api/v1");
  REQUIRE(answer.has_value());
  CHECK(answer->code == 200);  // the plugin's credential was accepted: it really ran

  const std::string listing = read_text(fds);
  INFO("descriptors of the plugin:\n" << listing);
  CHECK(descriptors(listing) == std::set<std::string>{"0", "1", "2"});
  const std::string environment = read_text(env);
  CHECK_THAT(environment, !Contains("NOTIFY_SOCKET"));
  CHECK_THAT(environment, !Contains("WATCHDOG_USEC"));
  CHECK_THAT(environment, !Contains("WATCHDOG_PID"));
  CHECK_THAT(environment, Contains("KUBERNETES_EXEC_INFO="));  // what it should get, it gets
  CHECK_THAT(environment, Contains("PATH="));
}

}  // namespace
}  // namespace sovdev::testing
