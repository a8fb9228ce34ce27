// The agent stays alive and truthful: a long apply does not starve the systemd watchdog, a
// failed version stays failed across a kill, `sync --once` says when it is not up to date, and
// a full disk is reported and waited out instead of ending the process.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "sovdev.pb.h"
#include "tests/sync/sync_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;
using Clock = std::chrono::steady_clock;

namespace {

// systemd's end of sd_notify: a datagram socket the test reads, noting when each ping came.
class FakeNotifySocket {
 public:
  explicit FakeNotifySocket(std::string path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    REQUIRE(path_.size() < sizeof sa.sun_path);
    std::memcpy(sa.sun_path, path_.data(), path_.size());
    REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
    reader_ = std::thread([this] { read(); });
  }
  ~FakeNotifySocket() {
    stop_ = true;
    reader_.join();
    ::close(fd_);
  }
  FakeNotifySocket(const FakeNotifySocket&) = delete;
  FakeNotifySocket& operator=(const FakeNotifySocket&) = delete;

  // The longest time between two WATCHDOG=1 within [from, to].
  std::chrono::milliseconds longest_gap(Clock::time_point from, Clock::time_point to) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::optional<Clock::time_point> last;
    Clock::duration longest{0};
    for (const auto at : pings_) {
      if (at < from) {
        last = at;
        continue;
      }
      if (last) longest = std::max(longest, std::min(at, to) - std::max(*last, from));
      last = at;
      if (at > to) break;
    }
    if (last && *last < to) longest = std::max(longest, to - std::max(*last, from));
    return std::chrono::duration_cast<std::chrono::milliseconds>(longest);
  }
  size_t pings() {
    std::lock_guard<std::mutex> lock(mutex_);
    return pings_.size();
  }

 private:
  void read() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) != 1) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) continue;
      const std::string text(buf, static_cast<size_t>(n));
      std::lock_guard<std::mutex> lock(mutex_);
      if (text.find("WATCHDOG=1") != std::string::npos) pings_.push_back(Clock::now());
    }
  }

  std::string path_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread reader_;
  std::mutex mutex_;
  std::vector<Clock::time_point> pings_;
};

// Sets environment variables for the children started while it lives.
class ScopedEnv {
 public:
  ScopedEnv(std::vector<std::pair<std::string, std::string>> vars) : vars_(std::move(vars)) {
    for (const auto& [k, v] : vars_) ::setenv(k.c_str(), v.c_str(), 1);
  }
  ~ScopedEnv() {
    for (const auto& [k, v] : vars_) ::unsetenv(k.c_str());
  }

 private:
  std::vector<std::pair<std::string, std::string>> vars_;
};

// A one-ConfigMap stack whose data says what the apply command should do with it.
std::string tiny_stack(const Fleet& fleet, const std::string& name, const std::string& data) {
  const std::string dir = fleet.ws.dir / ("src-" + name);
  write_manifest(dir + "/cm.yaml",
                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\n"
                 "  namespace: sovdev\ndata:\n  mode: " +
                     data + "\n");
  return dir;
}

int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) n++;
  return n;
}

}  // namespace

TEST_CASE(
    "a long exec apply keeps the watchdog fed, and the version it failed stays failed "
    "after a kill until a newer version or `retry`",
    "[sync][alive]") {
  Fleet fleet;
  const std::string calls = fleet.ws.dir / "calls.log";
  const std::string script = fleet.ws.dir / "apply.sh";
  // Each call logs the mode it was given; "slow-fail" takes 5 s and refuses (exit 1), as a
  // kubectl apply whose rollout never becomes healthy would.
  write_text(script,
             "in=$(cat)\nmode=$(printf '%s' \"$in\" | grep -o 'mode[^,}]*' | head -1)\n"
             "echo \"$mode\" >> " +
                 calls +
                 "\n"
                 "case \"$mode\" in *slow-fail*) sleep 5; exit 1;; esac\nexit 0\n");
  REQUIRE(
      fleet.ws.build(tiny_stack(fleet, "v1", "good-one"), fleet.ws.dir / "v1.sdb", 1).exit_code ==
      0);
  REQUIRE(
      fleet.ws.build(tiny_stack(fleet, "v2", "slow-fail"), fleet.ws.dir / "v2.sdb", 2).exit_code ==
      0);
  REQUIRE(
      fleet.ws.build(tiny_stack(fleet, "v3", "good-three"), fleet.ws.dir / "v3.sdb", 3).exit_code ==
      0);
  REQUIRE(fleet.publish(fleet.ws.dir / "v1.sdb").exit_code == 0);
  auto hub = fleet.serve("hub.log");
  fleet.agent_config("agent-a", 8, "",
                     "[apply]\ntarget = \"exec\"\ncommand = \"sh " + script +
                         "\"\nreconcile_interval_seconds = 10\n");
  FakeNotifySocket systemd(fleet.ws.dir / "notify.sock");
  // A 2 s watchdog: pings due every second, so a gap of 2 s is a kill under systemd.
  const auto interval = std::chrono::milliseconds(2000);
  std::unique_ptr<Child> agent;
  {
    ScopedEnv env({{"NOTIFY_SOCKET", fleet.ws.dir / "notify.sock"}, {"WATCHDOG_USEC", "2000000"}});
    agent = fleet.run_agent("agent-a", "agent-a.log");
  }
  const auto log = [&] { return read_text(fleet.ws.dir / "agent-a.log"); };
  REQUIRE(wait_until(
      [&] {
        return log().find("applied kp@1") != std::string::npos ||
               log().find("applied ") != std::string::npos;
      },
      std::chrono::seconds(30)));

  // Version 2 takes 5 s and fails: rolled back to 1.
  const auto apply_from = Clock::now();
  REQUIRE(fleet.publish_live(fleet.ws.dir / "v2.sdb").exit_code == 0);
  INFO("agent: " << log() << "\ncalls: " << read_text(calls));
  REQUIRE(wait_until([&] { return log().find("rolled back to") != std::string::npos; },
                     std::chrono::seconds(60)));
  const auto apply_to = Clock::now();
  const auto gap = systemd.longest_gap(apply_from, apply_to);
  WARN("longest gap between watchdog pings during a 5 s apply: "
       << gap.count() << " ms (watchdog interval " << interval.count() << " ms, " << systemd.pings()
       << " pings in all)");
  CHECK(gap < interval);
  CHECK(agent->running());
  CHECK(count_of(read_text(calls), "slow-fail") == 1);

  // Killed (as systemd would after a watchdog miss) and started again: not tried again.
  agent->kill_hard();
  agent->wait();
  auto synced = fleet.sync_once("agent-a", 60);
  INFO("sync: " << synced.out << synced.err);
  CHECK(synced.exit_code == 15);
  CHECK_THAT(synced.err, Catch::Contains("failed here"));
  CHECK(count_of(read_text(calls), "slow-fail") == 1);

  // `retry` clears it: the restarted agent tries version 2 again (and it fails again).
  auto retried = run({agent_binary(), "retry", "--config", fleet.ws.dir / "agent-agent-a.toml"});
  INFO("retry: " << retried.out << retried.err);
  CHECK(retried.exit_code == 0);
  CHECK_THAT(retried.out, Catch::Contains("kp@2"));
  agent = fleet.run_agent("agent-a", "agent-a-2.log");
  CHECK(wait_until([&] { return count_of(read_text(calls), "slow-fail") == 2; },
                   std::chrono::seconds(60)));

  // A newer version applies, and clears the failure of the older one.
  REQUIRE(fleet.publish_live(fleet.ws.dir / "v3.sdb").exit_code == 0);
  CHECK(wait_until([&] { return read_text(calls).find("good-three") != std::string::npos; },
                   std::chrono::seconds(60)));
  CHECK(wait_until(
      [&] {
        return read_text(fleet.ws.dir / "agent-a-2.log").find("applied kp@3") != std::string::npos;
      },
      std::chrono::seconds(30)));
  agent->kill_hard();
  agent->wait();
  auto none = run({agent_binary(), "retry", "--state", fleet.agent_state("agent-a")});
  CHECK_THAT(none.out, Catch::Contains("no failed bundles"));
  auto again = fleet.sync_once("agent-a", 60);
  INFO(again.out << again.err);
  CHECK(again.exit_code == 0);
}

TEST_CASE(
    "a forged manifest on the agent's data topic is ignored and counted, and the fetch "
    "goes on without waiting for the next catalog",
    "[sync][alive][hostile]") {
  Fleet fleet;
  REQUIRE(fleet.ws.build(tiny_stack(fleet, "v1", "one"), fleet.ws.dir / "v1.sdb", 1).exit_code ==
          0);
  REQUIRE(fleet.ws.build(tiny_stack(fleet, "v2", "two"), fleet.ws.dir / "v2.sdb", 2).exit_code ==
          0);
  REQUIRE(fleet.publish(fleet.ws.dir / "v1.sdb").exit_code == 0);
  fleet.agent_config("agent-a");
  auto watcher = fleet.client("sovdev-hub", "watcher");
  REQUIRE(watcher->subscribe("sovdev/v1/agent/agent-a/data", 1));
  REQUIRE(watcher->subscribe("sovdev/v1/fetch/agent-a", 1));
  REQUIRE(watcher->subscribe("sovdev/v1/catalog/edge", 1));
  auto hub = fleet.serve("hub.log");
  REQUIRE(fleet.sync_once("agent-a", 60).exit_code == 0);
  // Version 1's signed manifest, as the hub sent it: genuine, but not what a v2 fetch wants.
  pb::Signed old_manifest;
  std::string catalog_digest;
  size_t requests = 0;
  const auto drain = [&] {
    while (auto e = watcher->next(std::chrono::milliseconds(20))) {
      if (e->kind != mqtt::Event::Kind::message) continue;
      const std::string payload = e->message.payload.str();
      if (e->message.topic == "sovdev/v1/fetch/agent-a") requests++;
      pb::FetchResponse r;
      if (e->message.topic == "sovdev/v1/agent/agent-a/data" && r.ParseFromString(payload) &&
          r.has_manifest()) {
        old_manifest = r.manifest();
      }
      pb::Signed envelope;
      pb::Catalog catalog;
      if (e->message.topic == "sovdev/v1/catalog/edge" && envelope.ParseFromString(payload) &&
          catalog.ParseFromString(envelope.body()) && catalog.entries_size() == 1) {
        catalog_digest = catalog.entries(0).manifest_digest();
      }
    }
  };
  REQUIRE(wait_until(
      [&] {
        drain();
        return old_manifest.body().size() > 0;
      },
      std::chrono::seconds(20)));

  // No hub while version 2 is announced: the agent's manifest request stays unanswered, and
  // the forged answer is the only one.
  hub.reset();
  auto agent = fleet.run_agent("agent-a", "agent-a.log");
  const auto log = [&] { return read_text(fleet.ws.dir / "agent-a.log"); };
  REQUIRE(wait_until([&] { return log().find("connected to the broker") != std::string::npos; },
                     std::chrono::seconds(20)));
  const size_t before = requests;
  REQUIRE(fleet.publish_live(fleet.ws.dir / "v2.sdb").exit_code == 0);
  REQUIRE(wait_until(
      [&] {
        drain();
        return requests > before && !catalog_digest.empty() &&
               catalog_digest != std::string(32, '\0');
      },
      std::chrono::seconds(20)));
  auto evil = fleet.client("sovdev-hub", "evil");
  pb::FetchResponse forged;
  forged.set_schema(1);
  forged.set_manifest_digest(catalog_digest);
  *forged.mutable_manifest() = old_manifest;
  mqtt::Message m;
  m.topic = "sovdev/v1/agent/agent-a/data";
  m.payload = forged.SerializeAsString();
  REQUIRE(evil->publish(m));
  INFO("agent: " << log());
  CHECK(wait_until([&] { return log().find("sent for") != std::string::npos; },
                   std::chrono::seconds(20)));
  // The fetch goes on: it asks again after its timeout (the hub is still away, so this is not
  // a new catalog starting it over).
  drain();
  const size_t after_forgery = requests;
  CHECK(wait_until(
      [&] {
        drain();
        return requests >= after_forgery + 2;
      },
      std::chrono::seconds(20)));
  // The hub is back: version 2 arrives.
  hub = fleet.serve("hub-2.log");
  CHECK(wait_until([&] { return log().find("applied kp@2") != std::string::npos; },
                   std::chrono::seconds(30)));
  agent->kill_hard();
  agent->wait();
}

TEST_CASE(
    "`sync --once` exits 15 when the catalog's version is applied but its reconcile fails, "
    "and 0 once the reconcile passes again",
    "[sync][alive]") {
  Fleet fleet;
  // The cluster refuses every apply while the marker exists, as a cluster whose admission
  // webhook started refusing the stack's objects would.
  const std::string marker = fleet.ws.dir / "refuse";
  const std::string script = fleet.ws.dir / "apply.sh";
  write_text(script, "cat > /dev/null\nif [ -e " + marker +
                         " ]; then echo 'refused by the cluster' >&2; exit 1; fi\nexit 0\n");
  REQUIRE(fleet.ws.build(tiny_stack(fleet, "v1", "one"), fleet.ws.dir / "v1.sdb", 1).exit_code ==
          0);
  REQUIRE(fleet.publish(fleet.ws.dir / "v1.sdb").exit_code == 0);
  auto hub = fleet.serve("hub.log");
  fleet.agent_config("agent-a", 8, "",
                     "[apply]\ntarget = \"exec\"\ncommand = \"sh " + script +
                         "\"\nreconcile_interval_seconds = 600\n");
  auto first = fleet.sync_once("agent-a", 60);
  INFO("first sync: " << first.out << first.err);
  REQUIRE(first.exit_code == 0);

  // The catalog still lists version 1, which is applied: the only thing wrong is that the
  // reconcile every run starts with (the drift correction) is refused.
  write_text(marker, "");
  auto refused = fleet.sync_once("agent-a", 60);
  INFO("sync while the reconcile fails: " << refused.out << refused.err);
  CHECK(refused.exit_code == 15);
  CHECK_THAT(refused.err, Catch::Contains("reconcile"));
  CHECK_THAT(refused.err, !Catch::Contains("failed here"));  // no version failed
  auto retry = run({agent_binary(), "retry", "--state", fleet.agent_state("agent-a")});
  CHECK_THAT(retry.out, Catch::Contains("no failed bundles"));

  std::filesystem::remove(marker);
  auto clean = fleet.sync_once("agent-a", 60);
  INFO("sync once the reconcile passes: " << clean.out << clean.err);
  CHECK(clean.exit_code == 0);
}
