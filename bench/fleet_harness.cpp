// bench_fleet_harness: N agents for the fan-out benchmark, spread over P processes (one per
// core by default), as N agent processes would spread over the machine's cores. Each agent is
// the agent's own state machine (agent::Daemon: catalog, fetch requests with the broadcast
// flag, every chunk checked against the signed manifest and committed to its own SQLite cache)
// over its own MQTT connection, up to the moment the pull is complete and the apply would
// begin. The process start and the apply are left out, so the figure measures the hub and the
// broker serving a fleet's pull rather than 200 process starts on 2 cores.
//
//   bench_fleet_harness --broker URL --prefix P --trust FILE --channel CH --agents N
//                       [--window W] [--timeout S] [--procs P] [--threads T]
// Prints "done N agents in S s" and exits 0 when every agent has pulled the bundle.
//   bench_fleet_harness --broker URL --bare-topic T --bare-count C [--agents N] ...
// The MQTT library alone: N of the agent's MQTT clients receive C messages on T each.
//   bench_fleet_harness --lite 1 [--check-chunks 1] --broker tcp://HOST:PORT ... (as the first)
// N simulated agents that speak the sync protocol and nothing more (bench/lite_fleet.hpp).
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "agent/daemon.hpp"
#include "bench/fleet_procs.hpp"
#include "bench/lite_fleet.hpp"
#include "bundles/trust.hpp"
#include "platform/fs/files.hpp"
#include "platform/mqtt/client.hpp"
#include "platform/proc/memory.hpp"
#include "platform/store/agent_cache.hpp"

namespace {

using namespace sovdev;
using bench::cpu_seconds;
using bench::done_line;
using bench::monotonic_ms;
using bench::Report;
using bench::run_children;
using bench::say;
using bench::Share;
using bench::wait_for_go;

struct Args {
  std::string broker, prefix, trust, channel;
  // Bare mode: N connections of the agent's MQTT client (mqtt::Client over Paho) in this
  // process, each subscribed to `bare_topic` and counting `bare_count` messages, nothing
  // else: what the MQTT library alone costs the harness, beside the same broker baseline.
  std::string bare_topic;
  uint64_t bare_count = 0;
  bool bare() const { return !bare_topic.empty() && bare_count > 0; }
  bool lite = false, check_chunks = false;
  int agents = 200;
  std::string state;     // each agent's state folder goes under it; empty: caches in memory
  std::string work_dir;  // the agents' folder for temporary files (made empty by run())
  uint32_t window = agent::FetchSettings{}.window;  // the agent's default
  int timeout_s = 170;
  // Processes the fleet is spread over (one per core by default), and driving threads in each.
  int procs = static_cast<int>(cores());
  unsigned threads = 1;
  static unsigned cores() { return std::max(1u, std::thread::hardware_concurrency()); }
};

// Where the pull ends: the daemon calls begin() once every chunk of the bundle has been
// verified against the signed manifest and committed. What follows (decoding and applying) is
// not the fan-out's business (bench_apply measures it), so the apply stops there.
class PullEnd final : public target::Target {
 public:
  Status begin(const target::ApplyBegin&) override {
    pulled = true;
    return make_error(Errc::internal, "the harness applies nothing");
  }
  Status apply(const pb::ResourceRecord&) override { return {}; }
  Expected<target::ApplyResult> commit() override { return target::ApplyResult{}; }
  void abort() override {}
  bool pulled = false;
};

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

struct Member {
  explicit Member(store::Database database) : db(std::move(database)) {}
  std::string id;
  store::Database db;
  std::unique_ptr<mqtt::Client> client;
  PullEnd target;
  std::unique_ptr<agent::Daemon> daemon;
};

mqtt::Options client_options(const Args& a, const std::string& id) {
  mqtt::Options o;
  o.servers = {a.broker};
  o.client_id = "sovdev-agent-" + id;
  o.username = id;
  o.keepalive = std::chrono::seconds(900);
  // One thread serves many members here, so each waits longer between reads than an agent
  // with its own thread: a deeper queue stands in for that.
  o.queue_capacity = a.window * 8 + 16;
  o.max_pending_publishes = a.window + 8;
  return o;
}

Expected<std::unique_ptr<Member>> make_member(const Args& a, const TrustPolicy& trust, int i) {
  const std::string id = "harness-" + std::to_string(i);
  std::string path = ":memory:";
  if (!a.state.empty()) {
    path = a.state + "/" + id;
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) return make_error(Errc::io, "create " + path + ": " + ec.message());
    path += "/agent.db";
  }
  SOVDEV_ASSIGN(store::Database db, store::open_agent_database(path));
  auto m = std::make_unique<Member>(std::move(db));
  m->id = id;
  m->client = mqtt::make_paho_client(client_options(a, m->id));
  SOVDEV_TRY(m->client->connect());
  agent::DaemonSettings s;
  s.fetch.agent_id = m->id;
  s.fetch.prefix = a.prefix;
  s.fetch.window = a.window;
  s.fetch.install = {a.channel, host_arch()};
  // An empty folder of the harness's own: at start every agent clears stale temporary files
  // from it, and a folder like /tmp would make that scan part of the figure.
  s.fetch.work_dir = a.work_dir;
  s.channels = {a.channel};
  s.reconcile_interval_ms = 0;
  s.status_interval_ms = 3600 * 1000;
  s.target_kind = "none";
  // 200 agents share this heap: a trim by each would walk all of it, 200 times.
  s.trim_heap_when_idle = false;
  m->daemon = std::make_unique<agent::Daemon>(m->db, trust, *m->client, m->target, s);
  return m;
}

bool done(const Member& m) {
  return m.target.pulled;
}

// One thread's share of the fleet, driven as cmd_run drives one agent.
Status drive(const Args& a, std::vector<std::unique_ptr<Member>>& members, int total,
             std::atomic<int>& finished, int64_t deadline) {
  std::vector<bool> counted(members.size(), false);
  int64_t last_tick = 0;
  while (now_ms() < deadline) {
    bool any = false;
    for (size_t i = 0; i < members.size(); i++) {
      Member& m = *members[i];
      for (uint32_t k = 0; k < a.window * 2; k++) {
        auto event = m.client->next(std::chrono::milliseconds(0));
        if (!event) break;
        any = true;
        SOVDEV_TRY(m.daemon->handle(*event, now_ms()));
      }
      SOVDEV_TRY(m.daemon->flush(now_ms()));
      if (!counted[i] && done(m)) {
        counted[i] = true;
        finished++;
      }
    }
    if (now_ms() - last_tick >= 100) {
      last_tick = now_ms();
      for (auto& m : members) SOVDEV_TRY(m->daemon->tick(last_tick));
    }
    if (finished.load() >= total) return {};
    if (!any) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return make_error(Errc::unavailable, "not every agent applied the bundle in time");
}

// Makes `n` things at once, one thread each (Paho takes a new connection into its shared
// threads only when they wake, ~2 s apart: one after the other, 200 would take minutes).
// Returns "" or the first failure as "<i>: <message>".
template <class T, class Make>
std::string make_all(int n, std::vector<T>& out, Make make) {
  out.resize(static_cast<size_t>(n));
  std::vector<std::string> failures(out.size());
  std::vector<std::thread> threads;
  for (int i = 0; i < n; i++) {
    threads.emplace_back([&, i] {
      auto made = make(i);
      if (made)
        out[static_cast<size_t>(i)] = std::move(*made);
      else
        failures[static_cast<size_t>(i)] = made.error().message;
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < failures.size(); i++) {
    if (!failures[i].empty()) return std::to_string(i) + ": " + failures[i];
  }
  return "";
}

// Bare mode in one child: its clients receive bare_count messages each, driven as drive()
// drives the agents. first_ms: the first message; last_ms: the last client complete.
int run_bare_share(const Args& a, Share share, int report, int go) {
  std::vector<std::unique_ptr<mqtt::Client>> clients;
  const std::string failed =
      make_all(share.count, clients, [&](int i) -> Expected<std::unique_ptr<mqtt::Client>> {
        auto c =
            mqtt::make_paho_client(client_options(a, "bare-" + std::to_string(share.first + i)));
        SOVDEV_TRY(c->connect());
        SOVDEV_TRY(c->subscribe(a.bare_topic, 1));
        return c;
      });
  if (!failed.empty()) return say(report, "fail client " + failed), 1;
  say(report, "ready");
  if (!wait_for_go(go)) return 1;
  const double cpu_before = cpu_seconds();
  std::atomic<int64_t> first{0};
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  const int64_t deadline = now_ms() + a.timeout_s * 1000;
  for (unsigned t = 0; t < a.threads; t++) {
    threads.emplace_back([&, t] {
      std::vector<uint64_t> got(clients.size(), 0);
      while (now_ms() < deadline && finished.load() < share.count) {
        bool any = false;
        for (size_t i = t; i < clients.size(); i += a.threads) {
          if (got[i] >= a.bare_count) continue;
          while (auto event = clients[i]->next(std::chrono::milliseconds(0))) {
            if (event->kind != mqtt::Event::Kind::message) continue;
            any = true;
            int64_t zero = 0;
            first.compare_exchange_strong(zero, monotonic_ms());
            if (++got[i] == a.bare_count) finished++;
          }
        }
        if (!any) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  for (auto& t : threads) t.join();
  if (finished.load() < share.count) {
    say(report, "fail " + std::to_string(share.count - finished.load()) + " of " +
                    std::to_string(share.count) + " clients did not get every message");
    return 1;
  }
  Report r;
  r.first_ms = first.load();
  r.last_ms = monotonic_ms();
  r.cpu = cpu_seconds() - cpu_before;
  say(report, done_line(r));
  // The connections are dropped with the process, as mosquitto_sub's are at its exit.
  std::_Exit(0);
}

// The agents of one child. first_ms: the go; last_ms: its last agent holding the bundle.
int run_agent_share(const Args& a, const TrustPolicy& trust, Share share, int report, int go) {
  std::vector<std::unique_ptr<Member>> members;
  const std::string failed =
      make_all(share.count, members, [&](int i) { return make_member(a, trust, share.first + i); });
  if (!failed.empty()) return say(report, "fail agent " + failed), 1;
  say(report, "ready");
  if (!wait_for_go(go)) return 1;
  const double cpu_before = cpu_seconds();
  Report r;
  r.first_ms = monotonic_ms();
  // The clock starts when the agents subscribe: the retained catalog reaches each at once.
  std::vector<std::vector<std::unique_ptr<Member>>> shares(a.threads);
  for (size_t i = 0; i < members.size(); i++) {
    if (auto ok = members[i]->daemon->start(now_ms()); !ok) {
      say(report, "fail agent " + members[i]->id + ": " + ok.error().message);
      return 1;
    }
    shares[i % a.threads].push_back(std::move(members[i]));
  }
  std::atomic<int> finished{0};
  std::vector<std::string> errors(a.threads);
  std::vector<std::thread> threads;
  const int64_t deadline = now_ms() + a.timeout_s * 1000;
  for (unsigned t = 0; t < a.threads; t++) {
    threads.emplace_back([&, t] {
      auto ok = drive(a, shares[t], share.count, finished, deadline);
      if (!ok) errors[t] = ok.error().message;
    });
  }
  for (auto& t : threads) t.join();
  r.last_ms = monotonic_ms();
  r.cpu = cpu_seconds() - cpu_before;
  for (const auto& e : errors) {
    if (!e.empty()) return say(report, "fail " + e), 1;
  }
  for (auto& part : shares) {
    for (auto& m : part) {
      r.received += m->daemon->counters().bytes_received;
      r.dropped += m->client->stats().dropped;
      (void)m->client->disconnect();
    }
  }
  say(report, done_line(r));
  return 0;
}

// The lite agents of one child (bench/lite_fleet.hpp). first_ms: the go; last_ms: its last
// agent holding every chunk.
int run_lite_share(const Args& a, const TrustPolicy& trust, Share share, int report, int go) {
  bench::LiteOptions o;
  const std::string scheme = "tcp://";
  const size_t colon = a.broker.rfind(':');
  if (a.broker.rfind(scheme, 0) != 0 || colon == std::string::npos || colon < scheme.size()) {
    return say(report, "fail --lite needs a tcp://HOST:PORT broker"), 1;
  }
  o.host = a.broker.substr(scheme.size(), colon - scheme.size());
  o.port = std::atoi(a.broker.c_str() + colon + 1);
  o.prefix = a.prefix;
  o.channel = a.channel;
  o.window = a.window;
  o.check_chunks = a.check_chunks;
  bench::LiteFleet fleet(trust, o);
  if (auto ok = fleet.connect(share.first, share.count, monotonic_ms() + 60 * 1000); !ok) {
    return say(report, "fail " + ok.error().message), 1;
  }
  say(report, "ready");
  if (!wait_for_go(go)) return 1;
  const double cpu_before = cpu_seconds();
  Report r;
  r.first_ms = monotonic_ms();
  if (auto ok = fleet.pull(monotonic_ms() + a.timeout_s * 1000); !ok) {
    return say(report, "fail " + ok.error().message), 1;
  }
  r.last_ms = monotonic_ms();
  r.cpu = cpu_seconds() - cpu_before;
  r.received = fleet.bytes_received();
  std::fprintf(stderr, "lite agents %d-%d: %s\n", share.first, share.first + share.count - 1,
               fleet.counts().c_str());
  say(report, done_line(r));
  std::_Exit(0);  // the connections go with the process, as mosquitto_sub's do
}

int run(Args a) {
  // The agent's allocator settings (agent/main.cpp), in both modes, so the heaps behave here as
  // in an agent; inherited by the children.
  proc::tune_allocator();
  // A child gone between its "ready" and the go must not kill the parent writing to it.
  (void)std::signal(SIGPIPE, SIG_IGN);
  char work[] = "/tmp/sovdev-harness-XXXXXX";
  if (!::mkdtemp(work)) return std::fprintf(stderr, "mkdtemp: %s\n", std::strerror(errno)), 2;
  a.work_dir = work;
  struct Removed {
    std::string path;
    ~Removed() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } removed{work};
  int64_t go_ms = 0;
  if (a.bare()) {
    auto reports = run_children(
        a.agents, a.procs,
        [&](Share share, int report, int go) { return run_bare_share(a, share, report, go); },
        &go_ms);
    if (!reports) return std::fprintf(stderr, "bare: %s\n", reports.error().message.c_str()), 1;
    int64_t first = INT64_MAX, last = 0;
    double cpu = 0;
    for (const auto& r : *reports) {
      first = std::min(first, r.first_ms);
      last = std::max(last, r.last_ms);
      cpu += r.cpu;
    }
    std::printf("done %d clients in %.3f s, harness CPU %.1f s\n", a.agents,
                static_cast<double>(last - first) / 1000.0, cpu);
    return 0;
  }
  // The daemons log the harness's refusal to apply: quiet unless asked.
  spdlog::set_level(std::getenv("SOVDEV_HARNESS_DEBUG") ? spdlog::level::info : spdlog::level::off);
  auto bytes = fs::read_file(a.trust, 512 * 1024);
  if (!bytes) return std::fprintf(stderr, "%s\n", bytes.error().message.c_str()), 2;
  auto trust = TrustPolicy::from_initial(*bytes);
  if (!trust) return std::fprintf(stderr, "%s\n", trust.error().message.c_str()), 2;
  // Connected first, in parallel, like the baseline's subscribers, which are connected before
  // its clock starts; the clock starts at the go.
  auto reports = run_children(
      a.agents, a.procs,
      [&](Share share, int report, int go) {
        return a.lite ? run_lite_share(a, *trust, share, report, go)
                      : run_agent_share(a, *trust, share, report, go);
      },
      &go_ms);
  if (!reports) return std::fprintf(stderr, "harness: %s\n", reports.error().message.c_str()), 1;
  int64_t last = go_ms;
  uint64_t received = 0, dropped = 0;
  double cpu = 0;
  for (const auto& r : *reports) {
    last = std::max(last, r.last_ms);
    received += r.received;
    dropped += r.dropped;
    cpu += r.cpu;
  }
  std::printf(
      "done %d agents in %.3f s, %llu bytes received in all, %llu messages dropped by full "
      "queues, harness CPU %.1f s (%d processes)\n",
      a.agents, static_cast<double>(last - go_ms) / 1000.0,
      static_cast<unsigned long long>(received), static_cast<unsigned long long>(dropped), cpu,
      std::max(1, std::min(a.procs, a.agents)));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--broker")
      a.broker = v;
    else if (k == "--prefix")
      a.prefix = v;
    else if (k == "--trust")
      a.trust = v;
    else if (k == "--channel")
      a.channel = v;
    else if (k == "--agents")
      a.agents = std::stoi(v);
    else if (k == "--window")
      a.window = static_cast<uint32_t>(std::stoul(v));
    else if (k == "--timeout")
      a.timeout_s = std::stoi(v);
    else if (k == "--bare-topic")
      a.bare_topic = v;
    else if (k == "--bare-count")
      a.bare_count = std::stoull(v);
    else if (k == "--state")
      a.state = v;
    else if (k == "--procs")
      a.procs = std::stoi(v);
    else if (k == "--lite")
      a.lite = v == "1";
    else if (k == "--check-chunks")
      a.check_chunks = v == "1";
    else if (k == "--threads")
      a.threads = static_cast<unsigned>(std::stoul(v));
    else
      return std::fprintf(stderr, "bench_fleet_harness: unknown option %s\n", k.c_str()), 2;
  }
  if (a.broker.empty() || a.agents < 1 || a.procs < 1 || a.threads < 1 ||
      (!a.bare() && (a.prefix.empty() || a.trust.empty() || a.channel.empty()))) {
    std::fprintf(stderr,
                 "usage: bench_fleet_harness --broker URL --prefix P --trust FILE --channel CH "
                 "[--agents N] [--window W] [--timeout S] [--procs P] [--threads T]\n"
                 "                           [--lite 1 [--check-chunks 1]]\n"
                 "       bench_fleet_harness --broker URL --bare-topic T --bare-count C "
                 "[--agents N] [--procs P] [--threads T]\n");
    return 2;
  }
  return run(a);
}
