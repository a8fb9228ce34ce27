// Abuse (issue #19 §3): one agent floods the hub, through its own fetch topic, with 1.1 MB
// messages and with 256-chunk requests it never reads the answers of, while another agent pulls
// a 4 MiB bundle. Bars: the hub's RSS stays within 64 MiB of its idle figure, and the honest
// pull takes at most 2x its unloaded time, both measured in this run. Each pull is a fresh agent
// id: one id pulling the same chunks again within 60 s meets the hub's re-serve cap.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "bench/bench_data.hpp"
#include "bench/bench_support.hpp"
#include "bench/bench_sync_fleet.hpp"
#include "platform/mqtt/client.hpp"
#include "platform/store/hub_store.hpp"
#include "sovdev.pb.h"

namespace sovdev::bench {
namespace {

using namespace std::chrono_literals;
constexpr int kRuns = 3;

double honest_pull(const Context& ctx, const Hub& hub, int run) {
  const Agent a = make_agent(ctx, "honest-" + std::to_string(run), hub.prefix);
  const std::string log = ctx.dir + "/honest-" + std::to_string(run) + ".log";
  const auto s = run_process(
      {ctx.paths.agent(), "sync", "--once", "--config", a.config, "--timeout", "120"}, log);
  if (s.exit_code != 0 || !applied(a)) {
    throw std::runtime_error("sovdev-agent sync --once failed: " + read_text(log));
  }
  drop_agent(a);
  return fetch_figures(read_text(log)).seconds;
}

// Publishes as fast as the broker takes them: 1.1 MB junk, then a request for every chunk of the
// bundle, again and again, on the flooder's own fetch topic; nobody reads its data topic.
struct Flooder {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> junk{0}, requests{0};
  std::thread thread;

  Flooder(const Context& ctx, const Hub& hub, const std::string& digest, uint32_t chunks) {
    thread = std::thread([this, &ctx, prefix = hub.prefix, digest, chunks] {
      mqtt::Options o;
      o.servers = {ctx.url()};
      o.client_id = "sovdev-agent-flooder";
      o.max_pending_publishes = 64;
      auto client = mqtt::make_paho_client(o);
      if (!client->connect()) return;
      mqtt::Message junk_message;
      junk_message.topic = prefix + "/fetch/flooder";
      junk_message.payload = std::string(1100 * 1000, 'j');
      junk_message.qos = 0;
      pb::FetchRequest req;
      req.set_schema(1);
      req.set_agent_id("flooder");
      req.set_manifest_digest(digest);
      auto* range = req.add_chunks();
      range->set_first(0);
      range->set_count(chunks);
      mqtt::Message ask;
      ask.topic = junk_message.topic;
      ask.response_topic = prefix + "/agent/flooder/data";
      ask.qos = 0;
      for (uint64_t n = 0; !stop; n++) {
        req.set_request_id(n + 1);
        ask.payload = req.SerializeAsString();
        const bool big = n % 2 == 0;
        if (client->publish(big ? junk_message : ask)) {
          (big ? junk : requests)++;
        } else {
          (void)client->next(1ms);
        }
        (void)client->next(0ms);
      }
      (void)client->disconnect();
    });
  }
  ~Flooder() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
};

int run(int argc, char** argv) {
  Context ctx;
  ctx.paths.build_dir = SOVDEV_BENCH_BUILD_DIR;
  ctx.paths.shared_dir = SOVDEV_BENCH_SHARED_DIR;
  std::string data;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if ((a == "--build" || a == "--data") && i + 1 < argc) {
      (a == "--build" ? ctx.paths.build_dir : data) = argv[++i];
    } else {
      std::fprintf(stderr, "usage: bench_flood [--build DIR] [--data DIR]\n");
      return 2;
    }
  }
  std::optional<TempDir> temp;
  if (data.empty()) temp.emplace();
  ctx.dir = (data.empty() ? temp->path() : data) + "/flood";
  const ScratchDir scratch(ctx.dir);

  ctx.keys = make_keys(ctx.paths, ctx.dir);
  start_broker(ctx);
  const auto mid = make_random_bundle(4 * kMiB, ctx.keys.publisher_key, ctx.dir + "/random4");
  const Hub hub = start_hub(ctx, "flood", mid.bundle);
  std::string digest;
  uint32_t chunks = 0;
  {
    auto db = store::open_hub_reader(ctx.dir + "/hub-flood.db");
    if (!db) throw std::runtime_error(db.error().message);
    store::HubBundles bundles(*db);
    auto newest = bundles.newest_per_stack("edge");
    if (!newest || newest->empty()) throw std::runtime_error("the hub holds no bundle");
    digest = newest->front().digest;
    chunks = std::min<uint32_t>(newest->front().chunk_count, 256);
  }
  std::printf("== flood: one agent floods the hub while another pulls %s\n",
              mib(mid.payload_size).c_str());

  std::vector<double> unloaded, loaded;
  for (int r = 0; r < kRuns; r++) unloaded.push_back(honest_pull(ctx, hub, r));
  std::this_thread::sleep_for(500ms);  // a settled figure, not a synchronisation
  const uint64_t idle = read_mem(hub.pid).value_or(Mem{}).rss;

  std::atomic<bool> sampling{true};
  std::atomic<uint64_t> peak{idle};
  std::thread sampler([&] {
    while (sampling) {
      const uint64_t rss = read_mem(hub.pid).value_or(Mem{}).rss;
      if (rss > peak) peak = rss;
      std::this_thread::sleep_for(5ms);
    }
  });
  uint64_t junk = 0, requests = 0;
  {
    Flooder flooder(ctx, hub, digest, chunks);
    std::this_thread::sleep_for(1s);  // the flood under way before the first loaded pull
    for (int r = 0; r < kRuns; r++) loaded.push_back(honest_pull(ctx, hub, kRuns + r));
    junk = flooder.junk;
    requests = flooder.requests;
  }
  sampling = false;
  sampler.join();

  const double t0 = median(unloaded), t1 = median(loaded);
  note("flood: " + std::to_string(junk) + " messages of 1.1 MB and " + std::to_string(requests) +
       " requests for " + std::to_string(chunks) + " chunks, nobody reading their answers");
  note("honest pulls unloaded " + fixed(unloaded[0], 2) + " " + fixed(unloaded[1], 2) + " " +
       fixed(unloaded[2], 2) + " s, under the flood " + fixed(loaded[0], 2) + " " +
       fixed(loaded[1], 2) + " " + fixed(loaded[2], 2) + " s");
  const uint64_t grown = peak > idle ? peak - idle : 0;
  bool ok = verdict("hub RSS under a flood: peak " + mib(peak) + " vs idle " + mib(idle) + " (+" +
                        mib(grown) + ") bar <= +64 MiB",
                    grown <= 64 * kMiB);
  const double worst = *std::max_element(loaded.begin(), loaded.end());
  ok &= verdict("honest 4 MiB pull under a flood: " + fixed(t1, 2) + " s vs unloaded " +
                    fixed(t0, 2) + " s (" + fixed(t1 / t0, 2) + "x, slowest " + fixed(worst, 2) +
                    " s) bar <= 2x",
                t1 <= 2 * t0);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace sovdev::bench

int main(int argc, char** argv) {
  try {
    return sovdev::bench::run(argc, argv);
  } catch (const std::exception& e) {
    sovdev::bench::kill_all_children();
    std::fprintf(stderr, "bench_flood: %s\n", e.what());
    return 2;
  }
}
