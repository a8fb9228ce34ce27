// Sync across a veth pair between two network namespaces: mosquitto and `sovdev-hub serve` in
// one, `sovdev-agent` in the other. The link is cut mid-transfer, or made to drop 5 % of the
// packets the agent receives (nftables; netem is not available on these kernels), or slowed
// down to 2 Mbit/s (tc's token bucket filter).
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/sync/sync_fixture.hpp"

using namespace sovdev::testing;
using namespace std::chrono_literals;

namespace {

std::string find_program(const std::string& name) {
  std::string dirs = std::getenv("PATH") ? std::getenv("PATH") : "";
  dirs += ":/usr/sbin:/usr/local/sbin:/sbin:/usr/bin:/bin";
  std::stringstream ss(dirs);
  for (std::string dir; std::getline(ss, dir, ':');) {
    const std::string path = dir + "/" + name;
    if (!dir.empty() && ::access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

std::string describe(const std::vector<std::string>& argv, const RunResult& r) {
  std::string s;
  for (const auto& a : argv) s += a + " ";
  return s + "-> exit " + std::to_string(r.exit_code) + ": " + r.out + r.err;
}

// Two namespaces joined by a veth pair, deleted (with the veth) on destruction. The processes
// started inside must be gone first: declare this before them.
class NetnsPair {
 public:
  NetnsPair() {
    static std::atomic<int> counter{0};
    const std::string tag = std::to_string(::getpid()) + "x" + std::to_string(counter++);
    ip_ = find_program("ip");
    if (ip_.empty()) {
      skip_reason_ = "the `ip` program (iproute2) is not installed";
      return;
    }
    hub_ns_ = "sovdev-h" + tag;
    agent_ns_ = "sovdev-a" + tag;
    // Interface names are at most 15 characters; they only live in the root namespace for a
    // moment, but must not clash there with a concurrent run.
    hub_veth_ = "svh" + tag;  // at most 3 + 7 + 1 + 2 characters
    agent_veth_ = "sva" + tag;
    // Each pair has namespaces of its own, so the addresses never clash with another run.
    hub_ip_ = "10.77.7.1";
    agent_ip_ = "10.77.7.2";

    remove_stale();
    const RunResult first = run({ip_, "netns", "add", hub_ns_});
    if (first.exit_code != 0) {
      skip_reason_ = "cannot create a network namespace (`ip netns add` failed: " + first.err +
                     first.out + "); needs root or CAP_SYS_ADMIN";
      return;
    }
    made_hub_ = true;
    must({ip_, "netns", "add", agent_ns_});
    made_agent_ = true;
    must({ip_, "link", "add", hub_veth_, "type", "veth", "peer", "name", agent_veth_});
    must({ip_, "link", "set", hub_veth_, "netns", hub_ns_});
    must({ip_, "link", "set", agent_veth_, "netns", agent_ns_});
    must({ip_, "-n", hub_ns_, "addr", "add", hub_ip_ + "/30", "dev", hub_veth_});
    must({ip_, "-n", agent_ns_, "addr", "add", agent_ip_ + "/30", "dev", agent_veth_});
    for (const auto& [ns, dev] :
         {std::pair{hub_ns_, hub_veth_}, std::pair{agent_ns_, agent_veth_}}) {
      must({ip_, "-n", ns, "link", "set", "lo", "up"});
      must({ip_, "-n", ns, "link", "set", dev, "up"});
    }
  }
  ~NetnsPair() {
    // Deleting a namespace deletes the veth end inside it, and with it the pair.
    if (made_agent_) run({ip_, "netns", "del", agent_ns_});
    if (made_hub_) run({ip_, "netns", "del", hub_ns_});
  }
  NetnsPair(const NetnsPair&) = delete;
  NetnsPair& operator=(const NetnsPair&) = delete;

  bool usable() const { return skip_reason_.empty(); }
  const std::string& skip_reason() const { return skip_reason_; }
  const std::string& hub_ip() const { return hub_ip_; }

  // argv run inside the hub's or the agent's namespace.
  std::vector<std::string> in_hub(std::vector<std::string> argv) const {
    return inside(hub_ns_, std::move(argv));
  }
  std::vector<std::string> in_agent(std::vector<std::string> argv) const {
    return inside(agent_ns_, std::move(argv));
  }
  // The agent's end of the link down or up.
  void agent_link(bool up) const {
    must({ip_, "-n", agent_ns_, "link", "set", agent_veth_, up ? "up" : "down"});
  }
  // One MSS-sized packet per skb on both ends, so a dropped "packet" is one segment on the
  // wire rather than a 64 KiB segmentation-offload batch.
  void no_segmentation_offload() const {
    must({ip_, "-n", hub_ns_, "link", "set", hub_veth_, "gso_max_segs", "1"});
    must({ip_, "-n", agent_ns_, "link", "set", agent_veth_, "gso_max_segs", "1"});
  }
  // Everything the hub's side sends the agent goes through a token bucket of `rate` (tc's
  // units, e.g. "2mbit"): a slow link, as an edge box on a weak LTE signal has.
  void limit_to_agent(const std::string& rate) const {
    const std::string tc = find_program("tc");
    if (tc.empty()) throw std::runtime_error("tc not found: install the iproute2 package");
    must(inside(hub_ns_, {tc, "qdisc", "add", "dev", hub_veth_, "root", "tbf", "rate", rate,
                          "burst", "32kb", "latency", "4s"}));
  }
  void must(const std::vector<std::string>& argv) const {
    const RunResult r = run(argv);
    if (r.exit_code != 0) throw std::runtime_error(describe(argv, r));
  }

 private:
  // A run killed outright (SIGKILL, a ctest timeout) leaves its namespaces behind: delete
  // those whose process is gone.
  void remove_stale() const {
    std::stringstream names(run({ip_, "netns", "list"}).out);
    for (std::string line; std::getline(names, line);) {
      const std::string name = line.substr(0, line.find(' '));
      if (name.rfind("sovdev-h", 0) != 0 && name.rfind("sovdev-a", 0) != 0) continue;
      const auto x = name.find('x', 8);
      if (x == std::string::npos) continue;
      const std::string pid = name.substr(8, x - 8);
      if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
      if (::kill(static_cast<pid_t>(std::stol(pid)), 0) != 0 && errno == ESRCH) {
        // Its mosquitto, hub and agent outlived it: they are that run's children.
        std::stringstream pids(run({ip_, "netns", "pids", name}).out);
        for (std::string p; std::getline(pids, p);) {
          if (!p.empty() && p.find_first_not_of("0123456789") == std::string::npos)
            ::kill(static_cast<pid_t>(std::stol(p)), SIGKILL);
        }
        run({ip_, "netns", "del", name});
      }
    }
  }

  std::vector<std::string> inside(const std::string& ns, std::vector<std::string> argv) const {
    argv.insert(argv.begin(), {ip_, "netns", "exec", ns});
    return argv;
  }

  std::string ip_, skip_reason_;
  std::string hub_ns_, agent_ns_, hub_veth_, agent_veth_, hub_ip_, agent_ip_;
  bool made_hub_ = false, made_agent_ = false;
};

// The fleet's files (keys, hub.db, passwords, broker config) with mosquitto and the hub run
// inside the hub's namespace, listening on the veth address instead of loopback.
struct NetFleet {
  const NetnsPair& net;
  Fleet fleet;
  std::unique_ptr<Child> broker;
  std::unique_ptr<Child> hub;
  std::string url;

  explicit NetFleet(const NetnsPair& n) : net(n) {
    // The fixture's loopback broker is of no use across namespaces: reuse its files only.
    fleet.broker->stop();
    url = "tcp://" + net.hub_ip() + ":1883";
    const std::string dir = fleet.broker->dir();
    std::string conf = read_text(dir + "/mosquitto.conf");
    const std::string loopback = "listener " + std::to_string(fleet.broker->port()) + " 127.0.0.1";
    const auto at = conf.find(loopback);
    if (at == std::string::npos) throw std::runtime_error("broker config has no " + loopback);
    conf.replace(at, loopback.size(), "listener 1883 " + net.hub_ip());
    write_text(dir + "/netns.conf", conf);
    const std::string mosquitto = find_program("mosquitto");
    if (mosquitto.empty()) throw std::runtime_error("mosquitto not found");
    broker = std::make_unique<Child>(net.in_hub({mosquitto, "-c", dir + "/netns.conf"}),
                                     fleet.ws.dir / "mosquitto-netns.out");
    const bool listening = wait_until(
        [&] {
          return !broker->running() ||
                 read_text(dir + "/mosquitto.log").find("listen socket on port 1883") !=
                     std::string::npos;
        },
        15s);
    if (!listening || !broker->running()) {
      throw std::runtime_error("mosquitto in the namespace did not start:\n" +
                               read_text(fleet.ws.dir / "mosquitto-netns.out") +
                               read_text(dir + "/mosquitto.log"));
    }
  }

  std::string broker_log() const { return read_text(fleet.broker->dir() + "/mosquitto.log"); }

  void serve() {
    hub = std::make_unique<Child>(
        net.in_hub({hub_binary(), "serve", "--db", fleet.hub_db, "--key", fleet.ws.online_key(),
                    "--trust", fleet.ws.trust, "--broker", url, "--username", "sovdev-hub",
                    "--password-file", fleet.password_file("sovdev-hub"), "--group", "hubs"}),
        fleet.ws.dir / "hub.log");
  }

  // Fleet::agent_config's format with the broker on the veth address.
  std::string agent_config(const std::string& agent, uint32_t window) const {
    const std::string path = fleet.ws.dir / ("agent-" + agent + ".toml");
    write_text(path, "agent_id = \"" + agent + "\"\n" + "channels = [\"edge\"]\n" +
                         "state_dir = \"" + fleet.agent_state(agent) + "\"\n" + "trust_root = \"" +
                         fleet.ws.trust + "\"\n" + "[broker]\n" + "urls = [\"" + url + "\"]\n" +
                         "password_file = \"" + fleet.password_file(agent) + "\"\n" + "[sync]\n" +
                         "window = " + std::to_string(window) + "\n" +
                         "request_timeout_seconds = 2\n" + "backoff_min_seconds = 1\n" +
                         "backoff_max_seconds = 4\n" + "[apply]\n" + "target = \"dir\"\n" +
                         "dir = \"" + fleet.agent_dir(agent) + "\"\n");
    std::filesystem::create_directories(fleet.agent_dir(agent));
    return path;
  }

  // `sovdev-agent sync --once` in the agent's namespace, and how long it took.
  std::pair<RunResult, std::chrono::seconds> sync_once(const std::string& agent) const {
    const auto t0 = std::chrono::steady_clock::now();
    RunResult r =
        run(net.in_agent({agent_binary(), "sync", "--once", "--config",
                          fleet.ws.dir / ("agent-" + agent + ".toml"), "--timeout", "120"}));
    return {std::move(r), std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::steady_clock::now() - t0)};
  }

  std::string status(const std::string& agent) const {
    return run({agent_binary(), "status", "--state", fleet.agent_state(agent), "--json"}).out;
  }
  bool in_state(const std::string& agent, const std::string& state) const {
    return status(agent).find("\"state\": \"" + state + "\"") != std::string::npos;
  }

  // ~8 MiB of noise, published (hub.db only; serve announces the catalog).
  uint64_t publish_noise(int mib) {
    write_noise_stack(fleet.ws.dir / "noise", mib, 11);
    const std::string file = fleet.ws.dir / "noise.sdb";
    auto built = fleet.ws.build(fleet.ws.dir / "noise", file, 1, {"--level", "1"});
    if (built.exit_code != 0) throw std::runtime_error("build: " + built.out + built.err);
    auto published = fleet.publish(file);
    if (published.exit_code != 0)
      throw std::runtime_error("publish: " + published.out + published.err);
    return std::filesystem::file_size(file);
  }
};

}  // namespace

TEST_CASE("a transfer survives the link to the broker going down for seconds mid-transfer",
          "[netns][sync][fault]") {
  NetnsPair net;
  if (!net.usable()) {
    WARN("skipped: " << net.skip_reason());
    return;
  }
  NetFleet nf(net);
  const uint64_t size = nf.publish_noise(8);
  nf.serve();
  nf.agent_config("agent-a", 4);
  auto agent = std::make_unique<Child>(
      net.in_agent({agent_binary(), "run", "--config", nf.fleet.ws.dir / "agent-agent-a.toml"}),
      nf.fleet.ws.dir / "agent-a.log");

  // Cut as soon as the first chunk reaches the payload file: watched directly, because asking
  // `sovdev-agent status` takes long enough (under ASan) for the whole pull to end first.
  const std::filesystem::path payloads =
      std::filesystem::path(nf.fleet.agent_state("agent-a")) / "payloads";
  REQUIRE(wait_until(
      [&] {
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(payloads, ec)) {
          if (entry.is_regular_file(ec) && entry.file_size(ec) > 0) return true;
        }
        return false;
      },
      60s));
  net.agent_link(false);
  const auto cut_at = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(5s);  // the outage itself: fault injection, not synchronisation
  const std::string during = nf.status("agent-a");
  net.agent_link(true);
  {
    INFO("status at the end of the outage: " << during);
    // The cut really was mid-transfer.
    CHECK_THAT(during, !Catch::Contains("\"state\": \"verified\""));
  }

  const bool verified = wait_until([&] { return nf.in_state("agent-a", "verified"); }, 120s);
  const auto took =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - cut_at);
  {
    INFO("agent log:\n" << read_text(nf.fleet.ws.dir / "agent-a.log"));
    INFO("hub log:\n" << read_text(nf.fleet.ws.dir / "hub.log"));
    CHECK(verified);
  }
  WARN("link down 5 s mid-transfer of a " << size << "-byte bundle: verified " << took.count()
                                          << " s after the cut");
}

TEST_CASE("a transfer completes when 5 % of the agent's incoming packets are dropped",
          "[netns][sync][fault]") {
  NetnsPair net;
  if (!net.usable()) {
    WARN("skipped: " << net.skip_reason());
    return;
  }
  const std::string nft = find_program("nft");
  if (nft.empty()) FAIL("nft not found: install the nftables package");
  NetFleet nf(net);
  const uint64_t size = nf.publish_noise(8);
  nf.serve();
  nf.agent_config("agent-a", 4);

  net.no_segmentation_offload();
  net.must(net.in_agent({nft, "add", "table", "inet", "f"}));
  net.must(net.in_agent(
      {nft, "add", "chain", "inet", "f", "in", "{ type filter hook input priority 0; }"}));
  net.must(net.in_agent({nft, "add", "rule", "inet", "f", "in", "numgen", "random", "mod", "100",
                         "<", "5", "counter", "drop"}));

  const auto [synced, took] = nf.sync_once("agent-a");
  const RunResult counters = run(net.in_agent({nft, "list", "ruleset"}));
  // The rule really dropped packets (its counter reads "counter packets N bytes M").
  const auto at = counters.out.find("counter packets ");
  REQUIRE(at != std::string::npos);
  const uint64_t dropped = std::stoull(counters.out.substr(at + 16));
  {
    INFO(synced.out << synced.err);
    INFO("hub log:\n" << read_text(nf.fleet.ws.dir / "hub.log"));
    INFO(counters.out);
    CHECK(synced.exit_code == 0);
    CHECK(nf.in_state("agent-a", "verified"));
    CHECK(dropped > 0);
  }
  WARN("5 % inbound loss: a " << size << "-byte bundle verified in " << took.count() << " s, "
                              << dropped << " packets dropped");
}

TEST_CASE("on a link slower than a window per request timeout nothing is asked for twice",
          "[netns][sync]") {
  NetnsPair net;
  if (!net.usable()) {
    WARN("skipped: " << net.skip_reason());
    return;
  }
  NetFleet nf(net);
  const uint64_t size = nf.publish_noise(3);
  nf.serve();
  // 16 chunks of 64 KiB are 1 MiB, 4.2 s at 2 Mbit/s: the last chunks of every window arrive
  // long after the 2 s request timeout, while chunks keep coming all the time.
  nf.agent_config("agent-a", 16);
  net.no_segmentation_offload();
  net.limit_to_agent("2mbit");

  const auto [synced, took] = nf.sync_once("agent-a");
  const std::string log = synced.out + synced.err;
  // "fetched <stack>@<version> in <ms> ms: <bytes> bytes received"
  const auto fetched = log.find("fetched ");
  const auto at = log.find(" bytes received", fetched == std::string::npos ? 0 : fetched);
  const auto from = fetched == std::string::npos || at == std::string::npos ? std::string::npos
                                                                            : log.rfind(": ", at);
  INFO(log);
  INFO("hub log:\n" << read_text(nf.fleet.ws.dir / "hub.log"));
  REQUIRE(synced.exit_code == 0);
  REQUIRE(from != std::string::npos);
  const uint64_t received = std::stoull(log.substr(from + 2, at - from - 2));
  CHECK(nf.in_state("agent-a", "verified"));
  // The link really was the bottleneck (what 2 Mbit/s allows, less a margin for the bucket).
  CHECK(took.count() >= static_cast<int64_t>(size * 8 / 2'000'000 * 8 / 10));
  CHECK_THAT(log, !Catch::Contains("hub silent"));
  CHECK(received < size + size / 20);
  WARN("2 Mbit/s link, window 16, 2 s request timeout: a "
       << size << "-byte bundle in " << took.count() << " s, " << received << " bytes received");
}
