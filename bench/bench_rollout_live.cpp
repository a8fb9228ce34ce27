// bench_rollout part 3: a real `sovdev-hub serve` and lite agents with labels
// (bench/lite_fleet.hpp, follow()). The agents start on v1 (the catalog's version when they
// connect) and report healthy. Baseline: `sovdev-hub publish v2 --broker` (no rollout), from
// the command's start to the first fetch request the broker carries for v2; every agent then
// pulls v2. Then v3 is published held at v2 and `sovdev-hub rollout start` opens a 3-wave
// rollout; the lab's 10 agents pull v3 and report healthy; the figure runs from the last of
// those statuses to the first fetch request for v3 from an agent outside wave 1, both as a
// watcher subscribed on the broker sees them. Bar: ≤ baseline + 2 s (serve runs its gates once
// a second).
#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bench/bench_rollout.hpp"
#include "bench/fleet_procs.hpp"
#include "bench/lite_fleet.hpp"
#include "hub/key_files.hpp"
#include "platform/store/hub_store.hpp"
#include "sovdev.pb.h"

namespace sovdev::bench::roll {
namespace {

using namespace std::chrono_literals;

bool in_wave_one(const std::string& id) {
  for (int n = 0; n < kWaveOne; n++) {
    if (id == agent_id(n)) return true;
  }
  return false;
}

// Sees every status and fetch request on the broker, and when (monotonic ms).
class Watcher {
 public:
  Watcher(int port, const std::string& prefix) : prefix_(prefix) {
    mosquitto_lib_init();
    mosq_ = mosquitto_new("bench-rollout-watcher", true, this);
    if (!mosq_) throw std::runtime_error("mosquitto_new failed");
    mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_connect_callback_set(mosq_, [](mosquitto* m, void* self, int) {
      const std::string p = static_cast<Watcher*>(self)->prefix_;
      mosquitto_subscribe(m, nullptr, (p + "/status/+").c_str(), 1);
      mosquitto_subscribe(m, nullptr, (p + "/fetch/+").c_str(), 1);
    });
    mosquitto_subscribe_callback_set(mosq_, [](mosquitto*, void* self, int, int, const int*) {
      static_cast<Watcher*>(self)->subscribed_++;
    });
    mosquitto_message_callback_set(mosq_, [](mosquitto*, void* self, const mosquitto_message* m) {
      static_cast<Watcher*>(self)->on_message(*m);
    });
    if (mosquitto_connect(mosq_, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS ||
        mosquitto_loop_start(mosq_) != MOSQ_ERR_SUCCESS) {
      throw std::runtime_error("the watcher cannot connect");
    }
  }
  ~Watcher() {
    mosquitto_disconnect(mosq_);
    mosquitto_loop_stop(mosq_, true);
    mosquitto_destroy(mosq_);
    mosquitto_lib_cleanup();
  }
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  bool subscribed() const { return subscribed_ >= 2; }
  // Agents whose newest status names `digest`.
  int running(const std::string& digest) {
    const std::lock_guard lock(mu_);
    int n = 0;
    for (const auto& [id, d] : applied_) n += d == digest ? 1 : 0;
    return n;
  }
  struct FirstFetch {
    int64_t any_ms = 0;        // the first request for the digest, from anyone
    int64_t outside_ms = 0;    // the first from an agent outside wave 1
    int64_t wave_one_ms = 0;   // then: the last wave-1 status naming the digest
    int wave_one_healthy = 0;  // then: how many wave-1 agents had reported it
  };
  FirstFetch first_fetch(const std::string& digest) {
    const std::lock_guard lock(mu_);
    return fetches_[digest];
  }

 private:
  void on_message(const mosquitto_message& m) {
    const int64_t now = monotonic_ms();
    const std::string topic = m.topic;
    const std::string id = topic.substr(topic.rfind('/') + 1);
    const bool status = topic.compare(0, prefix_.size() + 8, prefix_ + "/status/") == 0;
    const std::lock_guard lock(mu_);
    if (status) {
      pb::AgentStatus st;
      if (!st.ParseFromArray(m.payload, m.payloadlen) || st.state() != "healthy") return;
      applied_[id] = st.applied_digest();
      if (in_wave_one(id)) {
        wave_one_ms_[st.applied_digest()] = now;
        wave_one_[st.applied_digest()].insert(id);
      }
      return;
    }
    pb::FetchRequest request;
    if (!request.ParseFromArray(m.payload, m.payloadlen)) return;
    FirstFetch& f = fetches_[request.manifest_digest()];
    if (f.any_ms == 0) f.any_ms = now;
    if (f.outside_ms == 0 && !in_wave_one(id)) {
      f.outside_ms = now;
      f.wave_one_ms = wave_one_ms_[request.manifest_digest()];
      f.wave_one_healthy = static_cast<int>(wave_one_[request.manifest_digest()].size());
    }
  }

  std::string prefix_;
  mosquitto* mosq_ = nullptr;
  std::atomic<int> subscribed_{0};
  std::mutex mu_;
  std::map<std::string, std::string> applied_;  // agent → digest of its newest healthy status
  std::map<std::string, int64_t> wave_one_ms_;  // digest → the last wave-1 status naming it
  std::map<std::string, std::set<std::string>> wave_one_;
  std::map<std::string, FirstFetch> fetches_;
};

// The lite fleet on a thread of its own until stop().
class Fleet {
 public:
  Fleet(const TrustPolicy& trust, LiteOptions options, int agents)
      : fleet_(trust, std::move(options)), thread_([this, agents] {
          const int64_t deadline = monotonic_ms() + 120'000;
          auto s = fleet_.connect(0, agents, monotonic_ms() + 30'000);
          if (s) s = fleet_.follow(deadline, [this] { return stop_.load(); });
          if (!s) {
            const std::lock_guard lock(mu_);
            failure_ = s.error().message;
          }
          done_ = true;
        }) {}
  ~Fleet() { stop(); }
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Throws when the fleet stopped with an error.
  void check() {
    if (!done_) return;
    const std::lock_guard lock(mu_);
    if (!failure_.empty()) throw std::runtime_error("lite agents: " + failure_);
  }

 private:
  LiteFleet fleet_;
  std::atomic<bool> stop_{false}, done_{false};
  std::mutex mu_;
  std::string failure_;
  std::thread thread_;
};

void wait_for(Fleet& fleet, const std::function<bool()>& done, double seconds,
              const std::string& what) {
  const auto start = Clock::now();
  while (!done()) {
    fleet.check();
    if (since(start) > seconds) throw std::runtime_error("timed out waiting for " + what);
    std::this_thread::sleep_for(2ms);
  }
}

std::string newest_digest(const std::string& db_path) {
  auto db = store::open_hub_reader(db_path);
  if (!db) throw std::runtime_error(db.error().message);
  auto newest = store::HubBundles(*db).newest_per_stack(kChannel);
  if (!newest || newest->empty()) throw std::runtime_error("the hub holds no bundle");
  return newest->front().digest;
}

struct Run {
  double baseline = 0, gate = 0;
  bool wave_one_first = false;
};

// One run on a hub of its own (its own hub.db and topic prefix).
Run live_run(const Context& ctx, const Bundles& bundles, int agents, int run) {
  const std::string name = "live-" + std::to_string(run);
  const std::string db = ctx.dir + "/hub-" + name + ".db", log = ctx.dir + "/hub-" + name + ".log";
  const std::string prefix = "bench-rollout-" + std::to_string(run) + "/v1";
  const std::vector<std::string> keys{
      "--db", db, "--key", ctx.keys.online_key, "--trust", ctx.keys.trust_root};
  auto publish = [&](const std::string& bundle, std::vector<std::string> extra) {
    std::vector<std::string> args{"publish", bundle};
    args.insert(args.end(), keys.begin(), keys.end());
    args.insert(args.end(), extra.begin(), extra.end());
    hub_command(ctx, args, ctx.dir + "/publish.log");
    return newest_digest(db);
  };
  const std::string d1 = publish(bundles.v1, {});
  const pid_t serve = spawn(
      {ctx.paths.hub(), "serve", "--db", db, "--broker", ctx.url(), "--key", ctx.keys.online_key,
       "--trust", ctx.keys.trust_root, "--group", "benchhubs", "--prefix", prefix},
      log);
  const pid_t sub = spawn({"mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(ctx.port), "-t",
                           prefix + "/catalog/" + kChannel, "-C", "1", "-W", "20", "-F", "%l"},
                          ctx.dir + "/catalog-" + name + ".out");
  if (wait_child(sub, 25s).value_or(-1) != 0) {
    throw std::runtime_error("hub published no catalog: " + read_text(log));
  }
  Watcher watcher(ctx.port, prefix);
  const auto trust = hub::load_trust_file(ctx.keys.trust_root);
  if (!trust) throw std::runtime_error(trust.error().message);
  LiteOptions o;
  o.host = "127.0.0.1";
  o.port = ctx.port;
  o.prefix = prefix;
  o.channel = kChannel;
  o.labels = labels_of;
  const auto start = Clock::now();
  while (!watcher.subscribed()) {
    if (since(start) > 10) throw std::runtime_error("the watcher did not subscribe");
    std::this_thread::sleep_for(2ms);
  }
  Fleet fleet(*trust, o, agents);
  wait_for(
      fleet, [&] { return watcher.running(d1) == agents; }, 60, "every agent on v1");
  const double connected = since(start);

  // Baseline: a new version published straight to the broker, no rollout.
  const int64_t published = monotonic_ms();
  const std::string d2 = publish(bundles.v2, {"--broker", ctx.url(), "--prefix", prefix});
  const int64_t publish_done = monotonic_ms();
  wait_for(
      fleet, [&] { return watcher.first_fetch(d2).any_ms != 0; }, 20, "a fetch of v2");
  const double baseline = static_cast<double>(watcher.first_fetch(d2).any_ms - published) / 1000;
  wait_for(
      fleet, [&] { return watcher.running(d2) == agents; }, 60, "every agent on v2");
  const double all_on_v2 = static_cast<double>(monotonic_ms() - published) / 1000;

  // The rollout: v3 held at v2, three waves; wave 1 is the lab's 10 agents.
  const std::string d3 = publish(bundles.v3, {"--hold"});
  std::vector<std::string> start_args{"rollout", "start",   "--db", db,          "--channel",
                                      kChannel,  "--stack", kStack, "--version", "3"};
  for (const auto& w : waves()) {
    start_args.push_back("--wave");
    start_args.push_back(w);
  }
  for (const char* a : {"--success", "100%", "--within", "30m", "--abort-failed", "10%"}) {
    start_args.emplace_back(a);
  }
  const int64_t started = monotonic_ms();
  hub_command(ctx, start_args, ctx.dir + "/rollout.log");
  wait_for(
      fleet, [&] { return watcher.first_fetch(d3).outside_ms != 0; }, 30,
      "a wave-2 agent's fetch of v3");
  const auto f = watcher.first_fetch(d3);
  fleet.stop();
  fleet.check();
  stop_child(serve);
  Run r;
  r.baseline = baseline;
  r.gate = static_cast<double>(f.outside_ms - f.wave_one_ms) / 1000;
  r.wave_one_first = f.wave_one_healthy == kWaveOne && f.wave_one_ms != 0;
  note("run " + std::to_string(run + 1) + ": connected and on v1 in " + fixed(connected, 1) +
       " s; publish --broker to first fetch " + fixed(baseline, 3) + " s (" +
       fixed(static_cast<double>(watcher.first_fetch(d2).any_ms - publish_done) / 1000, 3) +
       " s after the command ended), all on v2 in " + fixed(all_on_v2, 1) +
       " s; rollout start to wave 1's first fetch " +
       fixed(static_cast<double>(f.any_ms - started) / 1000, 3) + " s; " +
       std::to_string(f.wave_one_healthy) + " of " + std::to_string(kWaveOne) +
       " wave-1 agents healthy on v3, then wave 2's first fetch " + fixed(r.gate, 3) + " s later");
  return r;
}

}  // namespace

bool bench_live(const Context& ctx, const Bundles& bundles, int agents) {
  constexpr int kRuns = 3;
  std::printf(
      "== gate to the next wave's first fetch: a real serve, %d lite agents, median of %d\n",
      agents, kRuns);
  std::vector<double> baselines, gates;
  bool order = true;
  for (int run = 0; run < kRuns; run++) {
    const Run r = live_run(ctx, bundles, agents, run);
    baselines.push_back(r.baseline);
    gates.push_back(r.gate);
    order &= r.wave_one_first;
  }
  if (!order) {
    return verdict(
        "gate to next wave's first fetch: wave 2 fetched before all of wave 1 was "
        "healthy bar wave 1 healthy first",
        false);
  }
  const double gate = median(gates), baseline = median(baselines);
  return verdict("gate to next wave's first fetch: " + fixed(gate, 3) + " s with " +
                     std::to_string(agents) + " lite agents vs plain publish to first fetch " +
                     fixed(baseline, 3) + " s (medians of " + std::to_string(kRuns) +
                     ") bar <= baseline + 2 s",
                 gate <= baseline + 2);
}

}  // namespace sovdev::bench::roll
