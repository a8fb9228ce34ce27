// bench_rollout: issue #21's figures for a staged rollout over 1,000 agents, each beside a
// baseline of the same run (bench/README.md, "Staged rollouts"):
//  1. the signed catalog of a channel whose stack (v1, v2 held) has a 3-wave rollout with every
//     wave open, for 10 and for 1,000 agents' statuses in hub.db, signed as serve signs it
//     (hub::refresh_catalog). Baseline: the same catalog listing each open wave's agents by id
//     (selector "id in (...)") instead of its selector. Bar: the two sizes ≤ 64 B apart.
//  2. the hub's CPU for the gates: serve's tick (RolloutDriver::tick, then signing the catalogs
//     it names) over 1,000 agents' statuses, idle and over the ticks of one wave. Baseline:
//     recording the same 1,000 statuses as serve does (parse, FleetStatus::upsert). Bar: the
//     heaviest tick ≤ recording the fleet's statuses once.
//  3. (bench_rollout_live.cpp) a real serve and lite agents: from the last wave-1 healthy status
//     to the first wave-2 fetch, against a plain publish --broker to its first fetch.
// Exit 0 when every bar holds, 1 when one is missed, 2 when the benchmark could not run.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <optional>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "bench/bench_rollout.hpp"
#include "bench/bench_support.hpp"
#include "bundles/messages.hpp"
#include "hub/catalog.hpp"
#include "hub/key_files.hpp"
#include "hub/rollout/engine.hpp"
#include "hub/rollout/operations.hpp"
#include "hub/rollout/serve_rollouts.hpp"
#include "platform/store/hub_store.hpp"
#include "platform/store/rollout_store.hpp"
#include "sovdev.pb.h"

namespace sovdev::bench::roll {

rollout::Labels labels_of(int n) {
  return {{"site", n < kWaveOne ? "lab" : "plant-" + std::to_string(n % 20)},
          {"region", n % 2 == 1 ? "eu" : "us"}};
}

std::string agent_id(int n) {
  return "lite-" + std::to_string(n);
}

std::vector<std::string> waves() {
  return {"canary:site=lab", "eu:region=eu:50", "all:*"};
}

void hub_command(const Context& ctx, const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> argv{ctx.paths.hub()};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto p = run_process(argv, log);
  if (p.exit_code != 0) {
    throw std::runtime_error("sovdev-hub " + args.front() + " failed: " + read_text(log));
  }
}

Bundles build_bundles(const Context& ctx) {
  Bundles b{ctx.dir + "/es-1.sdb", ctx.dir + "/es-2.sdb", ctx.dir + "/es-3.sdb"};
  const std::pair<std::string, std::string> inputs[] = {{"v1", b.v1}, {"v2", b.v2}, {"v2", b.v3}};
  int version = 1;
  for (const auto& [fixture, out] : inputs) {
    hub_command(ctx,
                {"build", ctx.paths.edge_stack(fixture), "--stack", kStack, "--channel", kChannel,
                 "--version", std::to_string(version++), "--arch", "amd64", "--key",
                 ctx.keys.publisher_key, "--out", out, "--quiet"},
                ctx.dir + "/build.log");
  }
  return b;
}

namespace {

template <class T>
T must(Expected<T> e, const std::string& what) {
  if (!e) throw std::runtime_error(what + ": " + e.error().message);
  return std::move(*e);
}

void must(Status s, const std::string& what) {
  if (!s) throw std::runtime_error(what + ": " + s.error().message);
}

double thread_cpu() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

std::string ms(double seconds) {
  return fixed(seconds * 1000, 2) + " ms";
}

std::string status_bytes(int n, const std::string& digest, int64_t at) {
  pb::AgentStatus st;
  st.set_schema(1);
  st.set_agent_id(agent_id(n));
  st.set_channel(kChannel);
  st.set_state("healthy");
  st.set_applied_digest(digest);
  for (const auto& [k, v] : labels_of(n)) (*st.mutable_labels())[k] = v;
  st.set_updated_at(at);
  return st.SerializeAsString();
}

// What serve's on_status does with one status message.
void record(store::Database& db, const std::string& bytes) {
  const auto st = must(parse_agent_status(bytes), "status");
  must(store::FleetStatus(db).upsert(
           {st.agent_id(), st.channel(), bytes, st.updated_at(), st.state() == "offline"}),
       "record status");
}

// A hub.db with v1 published, v2 published and held at v1, the 3-wave rollout of v2 started
// and `n` agents' statuses (healthy on v1).
struct Prepared {
  store::Database db;
  store::RolloutRow row;
};

Prepared prepare(const Context& ctx, const Bundles& bundles, const std::string& name, int n,
                 int64_t now) {
  const std::string path = ctx.dir + "/" + name + ".db";
  const std::string log = ctx.dir + "/" + name + ".log";
  const std::vector<std::string> common{
      "--db", path, "--key", ctx.keys.online_key, "--trust", ctx.keys.trust_root};
  std::vector<std::string> args{"publish", bundles.v1};
  args.insert(args.end(), common.begin(), common.end());
  hub_command(ctx, args, log);
  args[1] = bundles.v2;
  args.push_back("--hold");
  hub_command(ctx, args, log);
  auto db = must(store::open_hub_database(path), "hub.db");
  hub::rollout::StartRequest r;
  r.channel = kChannel;
  r.stack = kStack;
  r.version = 2;
  r.waves = waves();
  r.success = "100%";
  r.within = "30m";
  r.abort_failed = "10%";
  auto row = must(hub::rollout::start_rollout(db, r, now), "rollout start");
  for (int i = 0; i < n; i++) record(db, status_bytes(i, row.base_digest, now));
  return {std::move(db), std::move(row)};
}

struct CatalogSize {
  size_t signed_bytes = 0, by_ids = 0, listed = 0;
};

// Every wave opened, the catalog signed as serve signs it; and the same with ids for selectors.
CatalogSize catalog_size(Prepared& p, const std::vector<SecretKey>& keys, int64_t now) {
  p.row.current_wave = static_cast<uint32_t>(p.row.waves.size() - 1);
  p.row.wave_opened_at = now;
  must(store::Rollouts(p.db).update_progress(p.row), "open every wave");
  const auto signed_catalog =
      must(hub::refresh_catalog(p.db, kChannel, keys, now, hub::kDefaultCatalogTtl), "sign");
  pb::Catalog content = must(hub::catalog_content(p.db, kChannel), "catalog");
  const size_t plain = content.ByteSizeLong();
  const auto agents =
      hub::rollout::samples_of(must(store::FleetStatus(p.db).list(), "list statuses"));
  CatalogSize out;
  if (content.entries_size() != 1 || !content.entries(0).has_rollout()) {
    throw std::runtime_error("the catalog lists no rollout");
  }
  for (auto& wave : *content.mutable_entries(0)->mutable_rollout()->mutable_admitted()) {
    std::string ids;
    for (const auto& a : agents) {
      const auto w = hub::rollout::wave_of(p.row, a);
      if (!w || p.row.waves[*w].name != wave.name()) continue;
      ids += (ids.empty() ? "" : ",") + a.agent_id;
      out.listed++;
    }
    wave.set_selector("id in (" + ids + ")");
    wave.set_percent(100);
  }
  out.signed_bytes = signed_catalog.envelope.size();
  out.by_ids = out.signed_bytes + content.ByteSizeLong() - plain;
  return out;
}

bool bench_catalog(const Context& ctx, const Bundles& bundles, const std::vector<SecretKey>& keys,
                   int64_t now) {
  std::printf("== catalog size: a 3-wave rollout, every wave open, 10 vs 1,000 agents\n");
  std::vector<CatalogSize> sizes;
  for (const int n : {10, 1000}) {
    Prepared p = prepare(ctx, bundles, "catalog-" + std::to_string(n), n, now);
    sizes.push_back(catalog_size(p, keys, now));
    note(std::to_string(n) + " agents: signed catalog " +
         std::to_string(sizes.back().signed_bytes) + " B; listing the " +
         std::to_string(sizes.back().listed) +
         " admitted agents by id: " + std::to_string(sizes.back().by_ids) + " B");
  }
  const size_t a = sizes[0].signed_bytes, b = sizes[1].signed_bytes;
  const size_t apart = a > b ? a - b : b - a;
  return verdict("rollout catalog size: " + std::to_string(b) + " B for 1,000 agents vs " +
                     std::to_string(a) + " B for 10 (" + std::to_string(apart) +
                     " B apart; by ids " + std::to_string(sizes[1].by_ids) + " B vs " +
                     std::to_string(sizes[0].by_ids) + " B) bar <= 64 B apart",
                 apart <= 64);
}

// serve's tick as Server::tick runs it for rollouts: the gates, then each catalog they name
// signed again. Returns the thread's CPU seconds.
double serve_tick(store::Database& db, hub::rollout::RolloutDriver& driver,
                  const std::vector<SecretKey>& keys, int64_t now) {
  const double t0 = thread_cpu();
  for (const auto& channel : must(driver.tick(now), "tick")) {
    must(hub::refresh_catalog(db, channel, keys, now, hub::kDefaultCatalogTtl), "sign");
    driver.signed_at(channel, driver.pending_count(channel));
  }
  return thread_cpu() - t0;
}

bool bench_cpu(const Context& ctx, const Bundles& bundles, const std::vector<SecretKey>& keys,
               int64_t now) {
  constexpr int kAgents = 1000;
  std::printf("== hub CPU per gate tick over %d agents' statuses\n", kAgents);
  Prepared p = prepare(ctx, bundles, "cpu", kAgents, now);
  hub::rollout::RolloutDriver driver(p.db);
  (void)serve_tick(p.db, driver, keys, now);  // signs the rollout's first catalog
  std::vector<double> idle;
  for (int i = 0; i < 21; i++) idle.push_back(serve_tick(p.db, driver, keys, now + 1 + i));
  int64_t t = now + 30;
  // Wave 1 healthy: the tick that opens wave 2.
  for (int i = 0; i < kWaveOne; i++) record(p.db, status_bytes(i, p.row.digest, t));
  driver.status_recorded();  // as serve's on_status does
  const double open2 = serve_tick(p.db, driver, keys, ++t);
  if (driver.steps_taken() != 1) throw std::runtime_error("wave 2 did not open");
  // Wave 2's agents report healthy in 5 batches, one tick after each; the last opens wave 3.
  const auto row = must(store::Rollouts(p.db).find(p.row.id), "rollout");
  if (!row) throw std::runtime_error("the rollout is gone");
  const auto agents =
      hub::rollout::samples_of(must(store::FleetStatus(p.db).list(), "list statuses"));
  std::vector<int> members;
  for (const auto& a : agents) {
    const auto w = hub::rollout::wave_of(*row, a);
    if (w && *w == 1) members.push_back(std::stoi(a.agent_id.substr(5)));
  }
  double wave = 0, heaviest = 0;
  for (int batch = 0; batch < 5; batch++) {
    for (size_t k = members.size() * batch / 5; k < members.size() * (batch + 1) / 5; k++) {
      record(p.db, status_bytes(members[k], p.row.digest, t));
    }
    driver.status_recorded();
    const double tick = serve_tick(p.db, driver, keys, ++t);
    wave += tick;
    heaviest = std::max(heaviest, tick);
  }
  if (driver.steps_taken() != 2) throw std::runtime_error("wave 3 did not open after wave 2");
  heaviest = std::max(heaviest, open2);
  // Baseline: the same 1,000 statuses recorded as serve records them.
  const double r0 = thread_cpu();
  for (int i = 0; i < kAgents; i++) record(p.db, status_bytes(i, p.row.digest, t + 1));
  const double recording = thread_cpu() - r0;
  const double idle_tick = median(idle);
  note("idle tick (no step; median of 21): " + ms(idle_tick) +
       "; tick opening wave 2: " + ms(open2) + "; wave 2 (" + std::to_string(members.size()) +
       " agents healthy over 5 ticks, " +
       "the last opening wave 3, its catalog signed): " + ms(wave) + " in all");
  note("at serve's 1 tick/s an hour of idle ticks is " + fixed(idle_tick * 3600, 2) +
       " CPU-s; 1,000 statuses an hour (status_interval 3600) cost " + fixed(recording, 3) +
       " CPU-s to record");
  return verdict("hub CPU per gate tick (1,000 agents): heaviest " + ms(heaviest) + ", idle " +
                     ms(idle_tick) + ", wave 2 " + ms(wave) + " vs recording 1,000 statuses " +
                     ms(recording) + " (" + fixed(heaviest / recording, 2) +
                     "x) bar heaviest tick <= 1x",
                 heaviest <= recording);
}

int run(int argc, char** argv) {
  Context ctx;
  ctx.paths.build_dir = SOVDEV_BENCH_BUILD_DIR;
  ctx.paths.shared_dir = SOVDEV_BENCH_SHARED_DIR;
  std::string data;
  int agents = 1000;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if ((a == "--build" || a == "--data") && i + 1 < argc) {
      (a == "--build" ? ctx.paths.build_dir : data) = argv[++i];
    } else if (a == "--agents" && i + 1 < argc) {
      agents = std::max(20, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: bench_rollout [--build DIR] [--data DIR] [--agents N]\n");
      return 2;
    }
  }
  std::optional<TempDir> temp;
  if (data.empty()) temp.emplace();
  ctx.dir = (data.empty() ? temp->path() : data) + "/rollout";
  const ScratchDir scratch(ctx.dir);
  ctx.keys = make_keys(ctx.paths, ctx.dir);
  // The hub code run in this process logs each wave it opens: the figures are what to read.
  spdlog::set_level(spdlog::level::warn);
  const Bundles bundles = build_bundles(ctx);
  const auto keys = must(hub::load_secret_keys({ctx.keys.online_key}), "online key");
  const auto now = static_cast<int64_t>(std::time(nullptr));
  bool ok = bench_catalog(ctx, bundles, keys, now);
  ok &= bench_cpu(ctx, bundles, keys, now);
  start_broker(ctx);
  ok &= bench_live(ctx, bundles, agents);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace sovdev::bench::roll

int main(int argc, char** argv) {
  try {
    return sovdev::bench::roll::run(argc, argv);
  } catch (const std::exception& e) {
    sovdev::bench::kill_all_children();
    std::fprintf(stderr, "bench_rollout: %s\n", e.what());
    return 2;
  }
}
