#include "tests/sync/sync_fixture.hpp"

#include <filesystem>
#include <random>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "bundles/payload.hpp"

namespace sovdev::testing {

Fleet::Fleet(BrokerOptions options) {
  options.acl = true;
  broker = Broker::start(options);
  hub_db = ws.dir / "hub.db";
  for (const auto& u : broker->options().users)
    write_text(password_file(u.name), u.password + "\n");
}

std::string Fleet::password_file(const std::string& user) const {
  return ws.dir / ("password-" + user);
}

RunResult Fleet::publish(const std::string& file) const {
  return run({hub_binary(), "publish", file, "--db", hub_db, "--key", ws.online_key(), "--trust",
              ws.trust});
}

RunResult Fleet::publish_live(const std::string& file) const {
  return run({hub_binary(), "publish", file, "--db", hub_db, "--key", ws.online_key(), "--trust",
              ws.trust, "--broker", broker->url(), "--username", "sovdev-hub", "--password-file",
              password_file("sovdev-hub")});
}

std::unique_ptr<Child> Fleet::serve(const std::string& log_name, const std::string& group) const {
  return std::make_unique<Child>(
      std::vector<std::string>{hub_binary(), "serve", "--db", hub_db, "--key", ws.online_key(),
                               "--trust", ws.trust, "--broker", broker->url(), "--username",
                               "sovdev-hub", "--password-file", password_file("sovdev-hub"),
                               "--group", group},
      ws.dir / log_name);
}

std::string Fleet::agent_config(const std::string& agent, uint32_t window, const std::string& extra,
                                const std::string& apply) const {
  const std::string path = ws.dir / ("agent-" + agent + ".toml");
  write_text(path,
             "agent_id = \"" + agent + "\"\n" +
                 "channels = [\"edge\"]\n"
                 "state_dir = \"" +
                 agent_state(agent) + "\"\n" + "trust_root = \"" + ws.trust + "\"\n" + extra +
                 "[broker]\n"
                 "urls = [\"" +
                 broker->url() + "\"]\n" + "password_file = \"" + password_file(agent) + "\"\n" +
                 "[sync]\n"
                 "window = " +
                 std::to_string(window) + "\n" +
                 "request_timeout_seconds = 2\n"
                 "backoff_min_seconds = 1\n"
                 "backoff_max_seconds = 4\n" +
                 (apply.empty() ? "[apply]\ntarget = \"dir\"\ndir = \"" + agent_dir(agent) + "\"\n"
                                : apply));
  std::filesystem::create_directories(agent_dir(agent));
  return path;
}

RunResult Fleet::sync_once(const std::string& agent, int timeout_s) const {
  return run({agent_binary(), "sync", "--once", "--config", ws.dir / ("agent-" + agent + ".toml"),
              "--timeout", std::to_string(timeout_s)});
}

std::unique_ptr<Child> Fleet::run_agent(const std::string& agent,
                                        const std::string& log_name) const {
  return std::make_unique<Child>(std::vector<std::string>{agent_binary(), "run", "--config",
                                                          ws.dir / ("agent-" + agent + ".toml")},
                                 ws.dir / log_name);
}

std::unique_ptr<mqtt::Client> Fleet::client(const std::string& user,
                                            const std::string& client_id) const {
  mqtt::Options o;
  o.servers = {broker->url()};
  o.client_id = client_id;
  o.username = user;
  for (const auto& u : broker->options().users) {
    if (u.name == user) o.password = u.password;
  }
  o.queue_capacity = 100000;
  auto c = mqtt::make_paho_client(o);
  auto connected = c->connect();
  if (!connected) throw std::runtime_error("test client: " + connected.error().message);
  return c;
}

// Several counters may watch at once: each needs its own client id.
static int next_id() {
  static int id = 0;
  return ++id;
}

WireCounter::WireCounter(const Fleet& fleet, const std::string& filter)
    : client_(fleet.client("sovdev-hub", "wire-counter-" + std::to_string(next_id()))) {
  auto sub = client_->subscribe(filter, 1);
  if (!sub) throw std::runtime_error("wire counter: " + sub.error().message);
}

uint64_t WireCounter::bytes() {
  while (auto e = client_->next(std::chrono::milliseconds(50))) {
    if (e->kind == mqtt::Event::Kind::message) bytes_ += e->message.payload.size();
  }
  return bytes_;
}

void build_noise_upgrade(const Fleet& fleet) {
  write_noise_stack(fleet.ws.dir / "v1", 12, 11);
  write_noise_stack(fleet.ws.dir / "v2", 16, 11);
  for (const uint64_t v : {1, 2}) {
    const std::string name = "v" + std::to_string(v);
    const auto built =
        fleet.ws.build(fleet.ws.dir / name, fleet.ws.dir / (name + ".sdb"), v, {"--level", "1"});
    if (built.exit_code != 0) throw std::runtime_error("build " + name + ": " + built.err);
  }
}

void write_noise_stack(const std::string& dir, int mib, unsigned seed) {
  std::mt19937 rng(seed);
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  for (int f = 0; f < mib; f++) {
    std::string text;
    for (int d = 0; d < 4; d++) {
      std::string data(256 * 1024, 'x');
      for (auto& c : data) c = alphabet[rng() % 62];
      text += "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: noise-" +
              std::to_string(f) + "-" + std::to_string(d) +
              "\n  namespace: noise\ndata:\n  blob: " + data + "\n";
    }
    std::filesystem::create_directories(dir);
    write_text(dir + "/noise-" + std::to_string(f) + ".yaml", text);
  }
}

std::multiset<std::string> applied_objects(const std::string& dir) {
  std::multiset<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name[0] == '.' || e.path().extension() != ".json") continue;
    // An empty file is a pruned object the dir target keeps empty until k3s has seen it so
    // (k3s #1971): nothing applied.
    const std::string text = read_text(e.path().string());
    if (text.empty()) continue;
    // Canonical form, whatever the target's formatting.
    out.insert(nlohmann::json::parse(text).dump());
  }
  return out;
}

std::multiset<std::string> bundle_objects(const std::string& file, const std::string& trust_path) {
  std::multiset<std::string> out;
  for (const auto& r : unpack_bundle(file, trust_path))
    out.insert(nlohmann::json::parse(r.json()).dump());
  return out;
}

}  // namespace sovdev::testing
