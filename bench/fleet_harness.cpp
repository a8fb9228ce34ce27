// bench_fleet_harness: N agents in one process, for the fan-out benchmark. Each is the agent's
// own state machine (agent::Daemon: catalog, fetch requests with the broadcast flag, every
// chunk checked against the signed manifest and committed to its own SQLite cache) over its
// own MQTT connection, up to the moment the pull is complete and the apply would begin. The
// process start and the apply are left out, so the figure measures the hub and the broker
// serving a fleet's pull rather than 200 process starts on 2 cores.
//
//   bench_fleet_harness --broker URL --prefix P --trust FILE --channel CH --agents N
//                       [--window W] [--timeout S] [--threads T]
// Prints "done N agents in S s" and exits 0 when every agent has pulled the bundle.
//   bench_fleet_harness --broker URL --bare-topic T --bare-count C [--agents N] ...
// The MQTT library alone: N of the agent's MQTT clients receive C messages on T each.
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "agent/daemon.hpp"
#include "bundles/trust.hpp"
#include "platform/fs/files.hpp"
#include "platform/mqtt/client.hpp"
#include "platform/proc/memory.hpp"
#include "platform/store/agent_cache.hpp"

namespace {

using namespace sovdev;

struct Args {
  std::string broker, prefix, trust, channel;
  // Bare mode: N connections of the agent's MQTT client (mqtt::Client over Paho) in this
  // process, each subscribed to `bare_topic` and counting `bare_count` messages, nothing
  // else: what the MQTT library alone costs the harness, beside the same broker baseline.
  std::string bare_topic;
  uint64_t bare_count = 0;
  bool bare() const { return !bare_topic.empty() && bare_count > 0; }
  int agents = 200;
  uint32_t window = 8;
  int timeout_s = 170;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
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
  SOVDEV_ASSIGN(store::Database db, store::open_agent_database(":memory:"));
  auto m = std::make_unique<Member>(std::move(db));
  m->id = "harness-" + std::to_string(i);
  m->client = mqtt::make_paho_client(client_options(a, m->id));
  SOVDEV_TRY(m->client->connect());
  agent::DaemonSettings s;
  s.fetch.agent_id = m->id;
  s.fetch.prefix = a.prefix;
  s.fetch.window = a.window;
  s.fetch.install = {a.channel, host_arch()};
  s.fetch.work_dir = "/tmp";
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
Status drive(const Args& a, std::vector<std::unique_ptr<Member>>& members,
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
    if (finished.load() >= a.agents) return {};
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

double cpu_seconds() {
  rusage self{};
  ::getrusage(RUSAGE_SELF, &self);
  return static_cast<double>(self.ru_utime.tv_sec + self.ru_stime.tv_sec) +
         static_cast<double>(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;
}

// Prints "subscribed" once every connection is subscribed (the caller then starts its
// publisher), and "done N clients in S s, harness CPU C s" (S: from the first message to the
// last) when every client has received bare_count messages. The threads drive the clients as
// drive() drives the agents.
int run_bare(const Args& a) {
  std::vector<std::unique_ptr<mqtt::Client>> clients;
  const std::string failed =
      make_all(a.agents, clients, [&](int i) -> Expected<std::unique_ptr<mqtt::Client>> {
        auto c = mqtt::make_paho_client(client_options(a, "bare-" + std::to_string(i)));
        SOVDEV_TRY(c->connect());
        SOVDEV_TRY(c->subscribe(a.bare_topic, 1));
        return c;
      });
  if (!failed.empty()) return std::fprintf(stderr, "client %s\n", failed.c_str()), 1;
  std::printf("subscribed\n");
  std::fflush(stdout);
  const double cpu_before = cpu_seconds();
  std::atomic<int64_t> first{0};
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  const int64_t deadline = now_ms() + a.timeout_s * 1000;
  for (unsigned t = 0; t < a.threads; t++) {
    threads.emplace_back([&, t] {
      std::vector<uint64_t> got(clients.size(), 0);
      while (now_ms() < deadline && finished.load() < a.agents) {
        bool any = false;
        for (size_t i = t; i < clients.size(); i += a.threads) {
          if (got[i] >= a.bare_count) continue;
          while (auto event = clients[i]->next(std::chrono::milliseconds(0))) {
            if (event->kind != mqtt::Event::Kind::message) continue;
            any = true;
            int64_t zero = 0;
            first.compare_exchange_strong(zero, now_ms());
            if (++got[i] == a.bare_count) finished++;
          }
        }
        if (!any) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  for (auto& t : threads) t.join();
  if (finished.load() < a.agents) {
    return std::fprintf(stderr, "bare: %d of %d clients got every message\n", finished.load(),
                        a.agents),
           1;
  }
  std::printf("done %d clients in %.3f s, harness CPU %.1f s\n", a.agents,
              static_cast<double>(now_ms() - first.load()) / 1000.0, cpu_seconds() - cpu_before);
  std::fflush(stdout);
  // The connections are dropped with the process, as mosquitto_sub's are at its exit.
  std::_Exit(0);
}

int run(const Args& a) {
  if (a.bare()) return run_bare(a);
  // The agent's allocator settings (agent/main.cpp), so its heap behaves here as it does there.
  proc::tune_allocator();
  // The daemons log the harness's refusal to apply: quiet unless asked.
  spdlog::set_level(std::getenv("SOVDEV_HARNESS_DEBUG") ? spdlog::level::info : spdlog::level::off);
  auto bytes = fs::read_file(a.trust, 512 * 1024);
  if (!bytes) return std::fprintf(stderr, "%s\n", bytes.error().message.c_str()), 2;
  auto trust = TrustPolicy::from_initial(*bytes);
  if (!trust) return std::fprintf(stderr, "%s\n", trust.error().message.c_str()), 2;

  // Connected first, in parallel, like the baseline's subscribers, which are connected before
  // its clock starts.
  const auto connect_start = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<Member>> members;
  const std::string failed =
      make_all(a.agents, members, [&](int i) { return make_member(a, *trust, i); });
  if (!failed.empty()) return std::fprintf(stderr, "agent %s\n", failed.c_str()), 1;
  std::fprintf(
      stderr, "harness: %d agents connected in %.3f s\n", a.agents,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - connect_start).count());
  // The clock starts when the agents subscribe: the retained catalog reaches each at once.
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::vector<std::unique_ptr<Member>>> shares(a.threads);
  for (size_t i = 0; i < members.size(); i++) {
    if (auto ok = members[i]->daemon->start(now_ms()); !ok) {
      return std::fprintf(stderr, "agent %zu: %s\n", i, ok.error().message.c_str()), 1;
    }
    shares[i % a.threads].push_back(std::move(members[i]));
  }
  std::atomic<int> finished{0};
  std::vector<std::string> errors(a.threads);
  std::vector<std::thread> threads;
  const int64_t deadline = now_ms() + a.timeout_s * 1000;
  for (unsigned t = 0; t < a.threads; t++) {
    threads.emplace_back([&, t] {
      auto ok = drive(a, shares[t], finished, deadline);
      if (!ok) errors[t] = ok.error().message;
    });
  }
  for (auto& t : threads) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  uint64_t received = 0, dropped = 0;
  for (auto& share : shares) {
    for (auto& m : share) {
      received += m->daemon->counters().bytes_received;
      dropped += m->client->stats().dropped;
      (void)m->client->disconnect();
    }
  }
  for (const auto& e : errors) {
    if (!e.empty()) return std::fprintf(stderr, "harness: %s\n", e.c_str()), 1;
  }
  const double cpu = cpu_seconds();
  std::printf(
      "done %d agents in %.3f s, %llu bytes received in all, %llu messages dropped by full "
      "queues, harness CPU %.1f s\n",
      a.agents, seconds, static_cast<unsigned long long>(received),
      static_cast<unsigned long long>(dropped), cpu);
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
    else if (k == "--threads")
      a.threads = static_cast<unsigned>(std::stoul(v));
    else
      return std::fprintf(stderr, "bench_fleet_harness: unknown option %s\n", k.c_str()), 2;
  }
  if (a.broker.empty() ||
      (!a.bare() && (a.prefix.empty() || a.trust.empty() || a.channel.empty()))) {
    std::fprintf(stderr,
                 "usage: bench_fleet_harness --broker URL --prefix P --trust FILE --channel CH "
                 "[--agents N] [--window W] [--timeout S] [--threads T]\n"
                 "       bench_fleet_harness --broker URL --bare-topic T --bare-count C "
                 "[--agents N] [--threads T]\n");
    return 2;
  }
  return run(a);
}
