// The agent's TOML config: defaults, required keys, and errors that name the file and line.
#include <filesystem>
#include <string>

#include "agent/config.hpp"
#include "bundles/manifest_rules.hpp"
#include "tests/support/process.hpp"

using namespace sovdev;
using namespace sovdev::agent;
using sovdev::testing::TempDir;
using sovdev::testing::write_text;

namespace {

// A folder holding a trust root, so configs naming it resolve.
struct Site {
  TempDir dir;
  Site() {
    write_text(dir / "trust.root", "root");
    write_text(dir / "password", "secret\n");
    write_text(dir / "ca.pem", "ca");
    write_text(dir / "agent.pem", "cert");
    write_text(dir / "agent.key", "key");
  }
  std::string config_path() const { return dir / "agent.toml"; }
  Expected<AgentConfig> parse(const std::string& text) const {
    return parse_config(text, config_path());
  }
};

// Lines numbered from 1; a test that adds a line before [broker] shifts those below it.
const std::string kMinimal =
    "agent_id = \"edge-01\"\n"              // 1
    "channels = [\"edge\"]\n"               // 2
    "trust_root = \"trust.root\"\n"         // 3
    "[broker]\n"                            // 4
    "urls = [\"tcp://127.0.0.1:1883\"]\n";  // 5

std::string without_line(const std::string& text, const std::string& prefix) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t eol = text.find('\n', pos);
    const std::string line = text.substr(pos, eol - pos + 1);
    if (line.rfind(prefix, 0) != 0) out += line;
    pos = eol + 1;
  }
  return out;
}

std::string error_of(const Expected<AgentConfig>& c) {
  REQUIRE_FALSE(c);
  CHECK(c.error().code == Errc::invalid);
  return c.error().message;
}

}  // namespace

TEST_CASE("a minimal config gets every default") {
  Site site;
  auto c = site.parse(kMinimal);
  REQUIRE(c);
  CHECK(c->agent_id == "edge-01");
  CHECK(c->channels == std::vector<std::string>{"edge"});
  CHECK(c->stacks.empty());
  CHECK(c->state_dir == "/var/lib/sovdev-agent");
  CHECK(c->trust_root == site.dir / "trust.root");
  CHECK(c->arch == host_arch());
  CHECK(c->broker.urls == std::vector<std::string>{"tcp://127.0.0.1:1883"});
  CHECK(c->broker.topic_prefix == "sovdev/v1");
  CHECK(c->broker.username == "edge-01");
  CHECK(c->broker.password_file.empty());
  CHECK(c->broker.keepalive == std::chrono::seconds(900));
  CHECK(c->sync.window == 16);
  CHECK(c->sync.request_timeout == std::chrono::seconds(10));
  CHECK(c->sync.backoff_min == std::chrono::seconds(1));
  CHECK(c->sync.backoff_max == std::chrono::seconds(300));
  CHECK(c->sync.status_interval == std::chrono::seconds(3600));
  CHECK(c->apply.target.kind == target::TargetKind::dir);
  CHECK(c->apply.target.dir == "/var/lib/rancher/k3s/server/manifests");
  CHECK(c->apply.reconcile_interval == std::chrono::seconds(600));
  CHECK(c->apply.health_timeout == std::chrono::seconds(300));
}

TEST_CASE("a full config sets every key") {
  Site site;
  auto c = site.parse(
      "agent_id = \"edge-01\"\n"
      "channels = [\"edge-canary\"]\n"
      "stacks = [\"sovdev\"]\n"
      "state_dir = \"/srv/agent\"\n"
      "trust_root = \"" +
      site.dir / "trust.root" +
      "\"\n"
      "arch = \"arm64\"\n"
      "[broker]\n"
      "urls = [\"ssl://hub.example:8883\", \"ssl://[fd00::1]:8883\"]\n"
      "topic_prefix = \"acme/sovdev\"\n"
      "username = \"site-7\"\n"
      "password_file = \"password\"\n"
      "ca_file = \"ca.pem\"\n"
      "cert_file = \"agent.pem\"\n"
      "key_file = \"agent.key\"\n"
      "keepalive_seconds = 120\n"
      "[sync]\n"
      "window = 64\n"
      "request_timeout_seconds = 20\n"
      "backoff_min_seconds = 2\n"
      "backoff_max_seconds = 600\n"
      "status_interval_seconds = 3600\n"
      "[apply]\n"
      "target = \"dir\"\n"
      "dir = \"/tmp/manifests\"\n"
      "command = \"\"\n"
      "kubeconfig = \"\"\n"
      "reconcile_interval_seconds = 0\n"
      "health_timeout_seconds = 60\n");
  REQUIRE(c);
  CHECK(c->channels == std::vector<std::string>{"edge-canary"});
  CHECK(c->stacks == std::vector<std::string>{"sovdev"});
  CHECK(c->state_dir == "/srv/agent");
  CHECK(c->arch == "arm64");
  CHECK(c->broker.urls.size() == 2);
  CHECK(c->broker.topic_prefix == "acme/sovdev");
  CHECK(c->broker.username == "site-7");
  CHECK(c->broker.password_file == site.dir / "password");
  CHECK(c->broker.cert_file == site.dir / "agent.pem");
  CHECK(c->broker.keepalive == std::chrono::seconds(120));
  CHECK(c->sync.window == 64);
  CHECK(c->sync.backoff_max == std::chrono::seconds(600));
  CHECK(c->sync.status_interval == std::chrono::seconds(3600));
  CHECK(c->apply.target.dir == "/tmp/manifests");
  CHECK(c->apply.reconcile_interval == std::chrono::seconds(0));
  CHECK(c->apply.health_timeout == std::chrono::seconds(60));
}

TEST_CASE("each required key, when missing, is named") {
  Site site;
  const auto [line, key] = GENERATE(table<std::string, std::string>({
      {"agent_id", "agent_id is required"},
      {"channels", "channels is required"},
      {"trust_root", "trust_root is required"},
      {"urls", "broker.urls is required"},
  }));
  CAPTURE(key);
  const std::string message = error_of(site.parse(without_line(kMinimal, line + " =")));
  CHECK(message.find(site.config_path() + ": " + key) != std::string::npos);
}

TEST_CASE("an agent follows exactly one channel: a stack from two would overwrite itself") {
  Site site;
  const std::string channels = GENERATE(std::string("[\"edge\", \"edge-canary\"]"),
                                        std::string("[\"dev\", \"edge\"]"), std::string("[]"));
  CAPTURE(channels);
  const std::string message =
      error_of(site.parse("channels = " + channels + "\n" + without_line(kMinimal, "channels")));
  CHECK(message.find(site.config_path() + ":1: channels: must name exactly one channel") == 0);
  CHECK(message.find("one stack from two channels would overwrite itself") != std::string::npos);
}

TEST_CASE("an unknown key is refused with its line and a hint") {
  Site site;
  const std::string message = error_of(site.parse(kMinimal + "[sync]\nwindw = 4\n"));
  CHECK(message == site.config_path() + ":7: unknown key 'sync.windw': did you mean 'window'?");
}

TEST_CASE("a key in the wrong table is refused with where it belongs") {
  Site site;
  const std::string message = error_of(site.parse("window = 4\n" + kMinimal));
  CHECK(message == site.config_path() + ":1: unknown key 'window': it belongs in [sync]");
}

TEST_CASE("a value of the wrong type is refused with its line") {
  Site site;
  const std::string message = error_of(site.parse(kMinimal + "keepalive_seconds = \"30\"\n"));
  CHECK(message ==
        site.config_path() + ":6: broker.keepalive_seconds: must be a whole number, not a string");
}

TEST_CASE("window must be 1 to 64") {
  Site site;
  const int window = GENERATE(0, 65, -1);
  const std::string message =
      error_of(site.parse(kMinimal + "[sync]\nwindow = " + std::to_string(window) + "\n"));
  CHECK(message == site.config_path() + ":7: sync.window: " + std::to_string(window) +
                       " is out of range 1..64");
}

TEST_CASE("broker URLs must be tcp:// or ssl:// with a host and port") {
  Site site;
  const auto [url, what] = GENERATE(table<std::string, std::string>({
      {"http://hub:1883", "scheme 'http://' is not supported: use tcp:// or ssl://"},
      {"mqtts://hub:8883", "scheme 'mqtts://' is not supported"},
      {"hub:1883", "is not a URL"},
      {"ssl://hub", "needs a port: ssl://hub:8883"},
      {"tcp://hub:99999", "bad port"},
      {"tcp://:1883", "has no host"},
      {"tcp://hub:1883/x", "must not have a path"},
  }));
  CAPTURE(url);
  const std::string message =
      error_of(site.parse(without_line(kMinimal, "urls") + "urls = [\"" + url + "\"]\n"));
  CHECK(message.find(site.config_path() + ":5: broker.urls: " + url + " ") == 0);
  CHECK(message.find(what) != std::string::npos);
}

TEST_CASE("a password_file that does not exist is refused with its line") {
  Site site;
  const std::string message = error_of(site.parse(kMinimal + "password_file = \"nope\"\n"));
  CHECK(message.find(site.config_path() + ":6: broker.password_file: " + site.dir / "nope" +
                     " does not exist") == 0);
}

TEST_CASE("a trust_root that does not exist is refused: the agent needs it to start") {
  Site site;
  std::filesystem::remove(site.dir / "trust.root");
  const std::string message = error_of(site.parse(kMinimal));
  CHECK(message.find(site.config_path() + ":3: trust_root: " + site.dir / "trust.root" +
                     " does not exist: copy the hub's trust root") == 0);
}

TEST_CASE("relative paths are resolved against the config file's folder") {
  Site site;
  std::filesystem::create_directories(site.dir / "keys");
  write_text(site.dir / "keys/pw", "x");
  auto c = site.parse(
      "agent_id = \"a\"\nchannels = [\"edge\"]\ntrust_root = \"./trust.root\"\n"
      "state_dir = \"state\"\n[broker]\nurls = [\"tcp://h:1\"]\npassword_file = "
      "\"keys/../keys/pw\"\n"
      "[apply]\ndir = \"out/manifests\"\n");
  REQUIRE(c);
  CHECK(c->trust_root == site.dir / "trust.root");
  CHECK(c->state_dir == site.dir / "state");
  CHECK(c->broker.password_file == site.dir / "keys/pw");
  CHECK(c->apply.target.dir == site.dir / "out/manifests");
}

TEST_CASE("load_config reads the file and resolves paths beside it") {
  Site site;
  write_text(site.config_path(), kMinimal);
  auto c = load_config(site.config_path());
  REQUIRE(c);
  CHECK(c->source == site.config_path());
  CHECK(c->trust_root == site.dir / "trust.root");
}

TEST_CASE("a config file that is missing is an I/O error, not a config error") {
  auto c = load_config("/nonexistent/agent.toml");
  REQUIRE_FALSE(c);
  CHECK(c.error().code == Errc::io);
  CHECK(c.error().message.find("/nonexistent/agent.toml") != std::string::npos);
}

TEST_CASE("target exec needs a command; kube takes a kubeconfig and a context") {
  Site site;
  const std::string message = error_of(site.parse(kMinimal + "[apply]\ntarget = \"exec\"\n"));
  CHECK(message.find(site.config_path() + ":7: apply.command: target = \"exec\" needs a command") ==
        0);
  auto exec =
      site.parse(kMinimal + "[apply]\ntarget = \"exec\"\ncommand = \"kubectl apply -f -\"\n");
  REQUIRE(exec);
  CHECK(exec->apply.target.kind == target::TargetKind::exec);
  CHECK(exec->apply.target.command == "kubectl apply -f -");
  auto kube = site.parse(
      kMinimal + "[apply]\ntarget = \"kube\"\nkubeconfig = \"kube.conf\"\ncontext = \"edge\"\n");
  REQUIRE(kube);
  CHECK(kube->apply.target.kind == target::TargetKind::kube);
  CHECK(kube->apply.target.context == "edge");
  CHECK(kube->apply.target.kubeconfig.find("/kube.conf") != std::string::npos);
}

TEST_CASE("an unknown target is refused with the choices") {
  Site site;
  const std::string message = error_of(site.parse(kMinimal + "[apply]\ntarget = \"helm\"\n"));
  CHECK(message == site.config_path() + ":7: apply.target: 'helm' is not one of dir, kube, exec");
}

TEST_CASE("cert_file and key_file must be given together") {
  Site site;
  const std::string message = error_of(site.parse(
      without_line(kMinimal, "urls") + "urls = [\"ssl://h:8883\"]\ncert_file = \"agent.pem\"\n"));
  CHECK(message ==
        site.config_path() +
            ":6: broker.cert_file: cert_file and key_file go together: set both or neither");
}

TEST_CASE("TLS files without any ssl:// URL are refused") {
  Site site;
  const std::string message = error_of(site.parse(kMinimal + "ca_file = \"ca.pem\"\n"));
  CHECK(message ==
        site.config_path() +
            ":6: broker.ca_file: is set but no broker URL uses ssl://: TLS would not be used");
}

TEST_CASE("agent_id must be usable in MQTT topics") {
  Site site;
  const std::string id =
      GENERATE(std::string("edge/01"), std::string("edge+"), std::string(""), std::string(65, 'a'));
  const std::string message =
      error_of(site.parse("agent_id = \"" + id + "\"\n" + without_line(kMinimal, "agent_id")));
  CHECK(message.find(site.config_path() + ":1: agent_id: '" + id + "' must be 1 to 64 of") == 0);
}

TEST_CASE("backoff_max below backoff_min is refused") {
  Site site;
  const std::string message = error_of(
      site.parse(kMinimal + "[sync]\nbackoff_min_seconds = 60\nbackoff_max_seconds = 30\n"));
  CHECK(message == site.config_path() +
                       ":8: sync.backoff_max_seconds: backoff_max_seconds (30) is below "
                       "backoff_min_seconds (60)");
}

TEST_CASE("every problem is reported, one line each") {
  Site site;
  const std::string message = error_of(site.parse(
      kMinimal + "color = 1\n[sync]\nwindow = 100\n[apply]\nreconcile_interval_seconds = 5\n"));
  CHECK(message == site.config_path() + ":6: unknown key 'broker.color'\n" + site.config_path() +
                       ":8: sync.window: 100 is out of range 1..64\n" + site.config_path() +
                       ":10: apply.reconcile_interval_seconds: must be 0 (never) or at least 10");
}

TEST_CASE("a TOML syntax error names the file and line") {
  Site site;
  const std::string message = error_of(site.parse(kMinimal + "[sync\n"));
  CHECK(message.find(site.config_path() + ":6: ") == 0);
}

TEST_CASE("the effective settings printed by describe_config read back the same") {
  Site site;
  auto c = site.parse(kMinimal +
                      "password_file = \"password\"\n[apply]\ndir = \"a \\\"quoted\\\" dir\"\n");
  REQUIRE(c);
  const std::string text = describe_config(*c);
  CHECK(text.find("window = 16\n") != std::string::npos);
  CHECK(text.find("username = \"edge-01\"") != std::string::npos);
  CHECK(text.find("secret") == std::string::npos);
  auto again = parse_config(text, site.config_path());
  REQUIRE(again);
  CHECK(describe_config(*again) == text);
  CHECK(again->apply.target.dir == site.dir / "a \"quoted\" dir");
}

TEST_CASE("the example config parses and shows every key") {
  Site site;
  std::string example =
      sovdev::testing::read_text(sovdev::testing::source_dir() + "/config/agent.example.toml");
  const std::string pinned = "trust_root = \"/etc/sovdev/trust.root\"";
  REQUIRE(example.find(pinned) != std::string::npos);
  example.replace(example.find(pinned), pinned.size(), "trust_root = \"trust.root\"");
  auto c = site.parse(example);
  REQUIRE(c);
  CHECK(c->broker.urls == std::vector<std::string>{"ssl://hub.example:8883"});
  // describe_config prints every key; each must be documented in the example.
  const std::string all = describe_config(*c);
  for (size_t pos = 0; pos < all.size();) {
    const size_t eol = all.find('\n', pos);
    const std::string line = all.substr(pos, eol - pos);
    pos = eol + 1;
    const size_t eq = line.find(" = ");
    if (eq == std::string::npos) continue;
    const std::string key = line.substr(0, eq);
    CAPTURE(key);
    CHECK((example.find("\n" + key + " = ") != std::string::npos ||
           example.find("\n# " + key + " = ") != std::string::npos));
  }
}
