// bench_apply: the agent's private memory while it applies a bundle through the `kube` target
// to tests/fake-kube-apiserver (the in-repo edge-stack bundle, and 1 MiB and 256 MiB bundles of
// 1 MiB ConfigMaps), against the bars: ≤ 12 MiB during the apply, and flat (≤ 2 MiB apart)
// across the 1 MiB and the 256 MiB bundle. The kube-prometheus
// bundle is applied too when the corpus is beside the repository (SKIPPED otherwise).
// Exit 0 when every bar holds, 1 when one is missed, 2 when the benchmark could not run.
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>

#include "bench/bench_data.hpp"
#include "bench/bench_support.hpp"
#include "bench/bench_sync_fleet.hpp"

namespace sovdev::bench {
namespace {

using namespace std::chrono_literals;

struct FakeKube {
  pid_t pid = -1;
  int port = 0;
  std::string certs;
};

FakeKube start_fake(const std::string& dir) {
  const std::string tool = std::string(SOVDEV_BENCH_SOURCE_DIR) + "/tests/fake-kube-apiserver";
  FakeKube f;
  f.certs = dir + "/kube-certs";
  std::filesystem::create_directories(f.certs);
  shell_output("'" + tool + "/make-certs.sh' '" + f.certs + "' >/dev/null && echo ok");
  const std::string log = dir + "/fake-kube.log";
  f.pid = spawn({"/usr/bin/python3", tool + "/fake_kube_apiserver.py", "--port", "0", "--cert",
                 f.certs + "/server.crt", "--key", f.certs + "/server.key", "--client-ca",
                 f.certs + "/ca.crt"},
                log);
  const std::regex listening("LISTENING ([0-9]+)");
  const auto start = Clock::now();
  while (since(start) < 20) {
    std::smatch m;
    const std::string text = read_text(log);
    if (std::regex_search(text, m, listening)) {
      f.port = std::stoi(m[1]);
      return f;
    }
    std::this_thread::sleep_for(50ms);
  }
  throw std::runtime_error("the fake API server did not start: " + read_text(log));
}

std::string write_agent(const std::string& dir, const std::string& name, const FakeKube& kube,
                        const Keys& keys) {
  const std::string kubeconfig = dir + "/kubeconfig";
  write_file(kubeconfig,
             "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n"
             "  cluster:\n    server: https://127.0.0.1:" +
                 std::to_string(kube.port) + "\n    certificate-authority: " + kube.certs +
                 "/ca.crt\nusers:\n- name: agent\n  user:\n    client-certificate: " + kube.certs +
                 "/client.crt\n    client-key: " + kube.certs +
                 "/client.key\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n"
                 "    user: agent\n");
  const std::string config = dir + "/" + name + ".toml";
  write_file(config, "agent_id = \"" + name + "\"\nchannels = [\"edge\"]\nstate_dir = \"" + dir +
                         "/state-" + name + "\"\ntrust_root = \"" + keys.trust_root +
                         "\"\n[broker]\nurls = [\"tcp://127.0.0.1:1\"]\n[apply]\ntarget = "
                         "\"kube\"\nkubeconfig = \"" +
                         kubeconfig + "\"\nhealth_timeout_seconds = 600\n");
  return config;
}

// Imports `bundle` into a fresh state and applies it with `sovdev-agent apply`, sampled.
ProcessStats apply_bundle(const Paths& paths, const std::string& dir, const std::string& name,
                          const FakeKube& kube, const Keys& keys, const std::string& bundle) {
  const std::string config = write_agent(dir, name, kube, keys);
  const std::string state = dir + "/state-" + name;
  std::filesystem::remove_all(state);
  auto imported = run_process({paths.agent(), "import", "--state", state, "--trust",
                               keys.trust_root, "--channel", "edge", bundle},
                              dir + "/import-" + name + ".log");
  if (imported.exit_code != 0) {
    throw std::runtime_error("import failed: " + read_text(dir + "/import-" + name + ".log"));
  }
  const std::string log = dir + "/apply-" + name + ".log";
  auto stats = run_process({paths.agent(), "apply", "--config", config}, log, 2);
  if (stats.exit_code != 0) {
    throw std::runtime_error("sovdev-agent apply failed (exit " + std::to_string(stats.exit_code) +
                             "): " + read_text(log));
  }
  return stats;
}

int run(int argc, char** argv) {
  Paths paths{SOVDEV_BENCH_BUILD_DIR, SOVDEV_BENCH_SHARED_DIR};
  std::string data;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--build") {
      paths.build_dir = argv[i + 1];
    } else if (flag == "--data") {
      data = argv[i + 1];
    } else {
      std::fprintf(stderr, "usage: bench_apply [--build DIR] [--data DIR]\n");
      return 2;
    }
  }
  TempDir temp;
  const std::string dir = data.empty() ? temp.path() : data + "/apply";
  std::filesystem::create_directories(dir);
  const Keys keys = make_keys(paths, dir);
  std::printf("== kube apply: agent private memory while applying to the fake API server\n");
  const FakeKube kube = start_fake(dir);
  struct Done {
    ~Done() { kill_all_children(); }
  } done;

  auto build = [&](const std::string& source, const std::string& out) {
    (void)shell_output("'" + paths.hub() + "' build '" + source +
                       "' --stack kp --channel edge --version 1 --arch amd64,arm64 --key '" +
                       keys.publisher_key + "' --out '" + out + "' --quiet && echo ok");
    return out;
  };
  const std::string edge = build(paths.edge_stack("v1"), dir + "/edge.sdb");
  // Flat means the same for a small and a big bundle of the same objects (1 MiB ConfigMaps):
  // the peak follows the largest object, not the bundle's size.
  const auto tiny = make_random_bundle(1 * kMiB, keys.publisher_key, dir + "/random-1m");
  const auto big = make_random_bundle(256 * kMiB, keys.publisher_key, dir + "/random-256m");
  note("bundles: edge-stack v1 (" + mib(file_size(edge)) + "), random ConfigMaps " +
       mib(tiny.payload_size) + " and " + mib(big.payload_size) + " payload, " +
       std::to_string(tiny.records) + " and " + std::to_string(big.records) + " objects");

  const auto one = apply_bundle(paths, dir, "tiny", kube, keys, tiny.bundle);
  note("1 MiB bundle applied in " + fixed(one.seconds, 1) + " s: peak " + mib(one.peak_anon) +
       " private, " + mib(one.peak_rss) + " total (" + std::to_string(one.samples) + " samples)");

  const auto small = apply_bundle(paths, dir, "edge", kube, keys, edge);
  note("edge-stack applied in " + fixed(small.seconds, 1) + " s: peak " + mib(small.peak_anon) +
       " private, " + mib(small.peak_rss) + " total (" + std::to_string(small.samples) +
       " samples)");
  // The real-world corpus, when it is beside the repository: an extra figure, before the big
  // bundle (whose apply prunes what the earlier ones left).
  std::optional<ProcessStats> kp;
  if (paths.has_kube_prometheus()) {
    kp = apply_bundle(paths, dir, "kp", kube, keys,
                      build(paths.kube_prometheus("81570cb1"), dir + "/kp.sdb"));
    note("kube-prometheus 81570cb1 applied in " + fixed(kp->seconds, 1) + " s: peak " +
         mib(kp->peak_anon) + " private");
  }
  const auto large = apply_bundle(paths, dir, "big", kube, keys, big.bundle);
  note("256 MiB bundle applied in " + fixed(large.seconds, 1) + " s: peak " + mib(large.peak_anon) +
       " private, " + mib(large.peak_rss) + " total (" + std::to_string(large.samples) +
       " samples)");

  bool ok = true;
  ok &= verdict("private during kube apply, edge-stack: " + mib(small.peak_anon) + " bar <= 12 MiB",
                small.peak_anon <= 12 * kMiB);
  ok &= verdict("private during kube apply, 256 MiB: " + mib(large.peak_anon) + " bar <= 12 MiB",
                large.peak_anon <= 12 * kMiB);
  const uint64_t apart = large.peak_anon > one.peak_anon ? large.peak_anon - one.peak_anon
                                                         : one.peak_anon - large.peak_anon;
  ok &= verdict("private kube apply 1 MiB vs 256 MiB: " + mib(apart) + " apart bar <= 2 MiB",
                apart <= 2 * kMiB);
  if (kp) {
    ok &= verdict(
        "private during kube apply, kube-prometheus: " + mib(kp->peak_anon) + " bar <= 12 MiB",
        kp->peak_anon <= 12 * kMiB);
  } else {
    skipped("private during kube apply, kube-prometheus",
            paths.realworld_dir() + "/kube-prometheus not found");
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace sovdev::bench

int main(int argc, char** argv) {
  try {
    return sovdev::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_apply: %s\n", e.what());
    sovdev::bench::kill_all_children();
    return 2;
  }
}
