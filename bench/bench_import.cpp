// bench_import throughput|memory|size: the agent's import and the hub's bundle size against
// baselines measured in the same run, on the in-repo edge-stack fixture (and, for size, on the
// kube-prometheus corpus when it is beside the repository; SKIPPED otherwise). Exit 0 when every
// bar holds, 1 when one is missed, 2 when the benchmark itself could not run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_data.hpp"
#include "bench/bench_support.hpp"
#include "platform/fs/files.hpp"

namespace sovdev::bench {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kBigContent = 256 * kMiB;
constexpr uint64_t kSmallContent = 1 * kMiB;
constexpr const char* kEdgeVersions[] = {"v1", "v2"};
constexpr const char* kCorpusVersions[] = {"81570cb1", "f214874c"};

struct Context {
  Paths paths;
  std::string data;  // generated files; shared between modes when --data is given
  Keys keys;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string describe(const GeneratedBundle& g) {
  std::string copies;
  if (g.copies > 0) copies = ", " + std::to_string(g.copies) + "x edge-stack";
  return mib(g.uncompressed) + " of records (" + std::to_string(g.records) + " objects" + copies +
         ") -> " + mib(g.payload_size) + " payload";
}

GeneratedBundle kube_bundle(const Context& ctx, uint64_t content, const std::string& name) {
  static std::optional<std::vector<yaml::Object>> objects;
  const auto start = std::chrono::steady_clock::now();
  if (!objects) objects = load_objects(ctx.paths.edge_stack(kEdgeVersions[0]));
  auto g = make_repeated_bundle(*objects, content, ctx.keys.publisher_key, ctx.data + "/" + name);
  note("bundle " + name + ": " + describe(g) + " (ready in " + fixed(seconds_since(start), 1) +
       " s)");
  return g;
}

// `sovdev-agent import` of `bundle` into a new, empty state folder.
ProcessStats import(const Context& ctx, const std::string& bundle, double sample_ms) {
  const std::string state = ctx.data + "/state";
  std::filesystem::remove_all(state);
  const std::string log = ctx.data + "/import.log";
  std::filesystem::remove(log);
  auto stats = run_process({ctx.paths.agent(), "import", "--state", state, "--trust",
                            ctx.keys.trust_root, "--channel", "edge", bundle},
                           log, sample_ms);
  if (stats.exit_code != 0) {
    throw std::runtime_error("sovdev-agent import " + bundle + " failed (exit " +
                             std::to_string(stats.exit_code) + "): " + read_text(log));
  }
  std::filesystem::remove_all(state);
  return stats;
}

std::string mb_per_s(uint64_t bytes, double seconds) {
  return fixed(static_cast<double>(bytes) / 1e6 / seconds, 0) + " MB/s";
}

// The wall time of `sh -c command`.
double shell_seconds(const Context& ctx, const std::string& command) {
  const auto b = run_process({"/bin/sh", "-c", command}, ctx.data + "/baseline.log");
  if (b.exit_code != 0) throw std::runtime_error("baseline failed: " + command);
  return b.seconds;
}

bool throughput(const Context& ctx) {
  const auto g = kube_bundle(ctx, kBigContent, "kp-256m");
  const std::string payload = "'" + g.payload + "'";
  std::vector<double> imports, baselines;
  for (int run = 0; run < 3; run++) {  // interleaved, so a noisy moment hits both sides
    imports.push_back(import(ctx, g.bundle, 0).seconds);
    baselines.push_back(shell_seconds(ctx, "zstd -dc -q " + payload + " | sha256sum >/dev/null"));
    note("run " + std::to_string(run + 1) + ": import " + fixed(imports.back(), 2) +
         " s, baseline " + fixed(baselines.back(), 2) + " s");
  }
  // For the reader: how much of the baseline is sha256sum rather than zstd.
  const double t_zstd = median({shell_seconds(ctx, "zstd -dc -q " + payload + " >/dev/null"),
                                shell_seconds(ctx, "zstd -dc -q " + payload + " >/dev/null"),
                                shell_seconds(ctx, "zstd -dc -q " + payload + " >/dev/null")});
  note("for reference, zstd -dc >/dev/null alone: " + mb_per_s(g.uncompressed, t_zstd) + " (" +
       fixed(t_zstd, 2) + " s)");
  const double t_import = median(imports), t_base = median(baselines);
  const double ratio = t_base / t_import;
  return verdict(
      "import throughput: " + mb_per_s(g.uncompressed, t_import) + " in " + fixed(t_import, 2) +
          " s (baseline zstd -dc | sha256sum: " + mb_per_s(g.uncompressed, t_base) + " in " +
          fixed(t_base, 2) + " s; medians of 3) ratio " + fixed(ratio, 2) + " >= 0.50",
      ratio >= 0.5);
}

bool memory(const Context& ctx) {
  constexpr double kSampleMs = 2;
  constexpr uint64_t kBar = 12 * kMiB, kFlat = 2 * kMiB;
  const auto small = kube_bundle(ctx, kSmallContent, "kp-1m");
  const auto big = kube_bundle(ctx, kBigContent, "kp-256m");
  const auto start = std::chrono::steady_clock::now();
  const auto random = make_random_bundle(256 * kMiB, ctx.keys.publisher_key, ctx.data + "/random");
  note("bundle random: " + describe(random) + " (ready in " + fixed(seconds_since(start), 1) +
       " s)");

  const auto bare = run_process({ctx.paths.bare()}, ctx.data + "/bare.log", kSampleMs);
  if (bare.exit_code != 0) throw std::runtime_error("bench_bare failed");
  note(
      "baseline: bench_bare links what sovdev-agent links, opens nothing, sleeps 200 ms: "
      "RssAnon " +
      mib(bare.peak_anon) + ", VmRSS " + mib(bare.peak_rss));
  const std::string base =
      "(baseline bare: RssAnon " + mib(bare.peak_anon) + ", VmRSS " + mib(bare.peak_rss) + ")";
  auto measure = [&](const std::string& what, const GeneratedBundle& g) {
    // The highest of several runs: a 2 ms sample can miss a short peak in any one of them, so
    // a quick import runs until at least 100 samples are taken.
    ProcessStats peak;
    int runs = 0;
    for (; runs < 3 || (peak.samples < 100 && runs < 30); runs++) {
      const auto s = import(ctx, g.bundle, kSampleMs);
      peak.peak_anon = std::max(peak.peak_anon, s.peak_anon);
      peak.peak_rss = std::max(peak.peak_rss, s.peak_rss);
      peak.seconds = std::max(peak.seconds, s.seconds);
      peak.samples += s.samples;
    }
    const bool ok = verdict("import memory " + what + ": peak RssAnon " + mib(peak.peak_anon) +
                                ", peak VmRSS " + mib(peak.peak_rss) + " " + base + " <= 12.0 MiB",
                            peak.peak_anon <= kBar);
    note(std::to_string(peak.samples) + " samples in " + std::to_string(runs) + " runs of up to " +
         fixed(peak.seconds, 2) + " s; VmRSS " +
         fixed(static_cast<double>(peak.peak_rss) / static_cast<double>(bare.peak_rss), 2) +
         "x the bare process's");
    return std::make_pair(ok, peak.peak_anon);
  };
  const auto [small_ok, small_peak] = measure("1 MiB", small);
  const auto [big_ok, big_peak] = measure("256 MiB", big);
  const uint64_t spread = big_peak > small_peak ? big_peak - small_peak : small_peak - big_peak;
  const bool flat_ok = verdict(
      "import memory flat: the 256 MiB and 1 MiB peaks differ by " + mib(spread) + " <= 2.0 MiB",
      spread <= kFlat);
  const auto [random_ok, random_peak] = measure("random 256 MiB payload", random);
  return small_ok && big_ok && flat_ok && random_ok;
}

// sovdev-hub build of one manifests folder against gzip -9 of the same YAML.
bool size_of(const Context& ctx, const std::string& name, const std::string& dir) {
  const std::string out = ctx.data + "/" + name + ".sdb";
  const std::string log = ctx.data + "/build.log";
  const auto b = run_process(
      {ctx.paths.hub(), "build", dir, "--stack", "kp", "--channel", "edge", "--version", "1",
       "--arch", "amd64,arm64", "--key", ctx.keys.publisher_key, "--out", out, "--quiet"},
      log);
  if (b.exit_code != 0) throw std::runtime_error("sovdev-hub build failed: " + read_text(log));
  // The same files, in the same order as the hub reads them, as one YAML stream.
  auto files = fs::list_files(dir, {".yaml", ".yml", ".json"});
  if (!files) throw std::runtime_error(files.error().message);
  const std::string yaml = ctx.data + "/" + name + ".yaml";
  std::string cat = "cat";
  for (const auto& f : *files) cat += " '" + f + "'";
  (void)shell_output(cat + " > '" + yaml + "'");
  const uint64_t bundle = file_size(out);
  const uint64_t gz = std::stoull(shell_output("gzip -9 -c '" + yaml + "' | wc -c"));
  const uint64_t gz64 = std::stoull(shell_output("gzip -9 -c '" + yaml + "' | base64 -w0 | wc -c"));
  const double ratio = static_cast<double>(bundle) / static_cast<double>(gz);
  note(name + ": " + std::to_string(files->size()) + " files, " + mib(file_size(yaml)) +
       " of YAML");
  return verdict("bundle size " + name + ": sovdev-hub build " + std::to_string(bundle) +
                     " B (baseline gzip -9: " + std::to_string(gz) + " B; gzip+base64: " +
                     std::to_string(gz64) + " B) ratio " + fixed(ratio, 2) + " < 1.00",
                 ratio < 1.0);
}

bool size(const Context& ctx) {
  bool ok = true;
  for (const char* version : kEdgeVersions) {
    ok &= size_of(ctx, "edge-stack " + std::string(version), ctx.paths.edge_stack(version));
  }
  for (const char* version : kCorpusVersions) {
    const std::string name = "kube-prometheus " + std::string(version);
    if (ctx.paths.has_kube_prometheus()) {
      ok &= size_of(ctx, name, ctx.paths.kube_prometheus(version));
    } else {
      skipped("bundle size " + name, ctx.paths.realworld_dir() + "/kube-prometheus not found");
    }
  }
  return ok;
}

int usage() {
  std::fprintf(stderr,
               "usage: bench_import throughput|memory|size [--build DIR] [--shared DIR] "
               "[--data DIR]\n"
               "  --build   build folder holding the programs (default %s)\n"
               "  --shared  folder holding realworld/kube-prometheus, an extra (default %s;\n"
               "            SOVDEV_REALWORLD_DIR names the realworld folder itself)\n"
               "  --data    keep generated bundles there for the next mode (default: a "
               "temporary folder, removed at the end)\n",
               SOVDEV_BENCH_BUILD_DIR, SOVDEV_BENCH_SHARED_DIR);
  return 2;
}

int run(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string mode = argv[1];
  Context ctx{{SOVDEV_BENCH_BUILD_DIR, SOVDEV_BENCH_SHARED_DIR}, "", {}};
  if (argc % 2 != 0) return usage();
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    std::string* value = flag == "--build"    ? &ctx.paths.build_dir
                         : flag == "--shared" ? &ctx.paths.shared_dir
                         : flag == "--data"   ? &ctx.data
                                              : nullptr;
    if (value == nullptr) return usage();
    *value = argv[i + 1];
  }
  const auto bench = mode == "throughput" ? throughput
                     : mode == "memory"   ? memory
                     : mode == "size"     ? size
                                          : nullptr;
  if (bench == nullptr) return usage();
  std::optional<TempDir> temp;
  if (ctx.data.empty()) ctx.data = temp.emplace().path();
  std::filesystem::create_directories(ctx.data);
  ctx.keys = make_keys(ctx.paths, ctx.data);
  return bench(ctx) ? 0 : 1;
}

}  // namespace
}  // namespace sovdev::bench

int main(int argc, char** argv) {
  try {
    return sovdev::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_import: %s\n", e.what());
    return 2;
  }
}
