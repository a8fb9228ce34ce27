// Benchmark plumbing: temporary folders, child processes timed or sampled from outside, and the
// keys and trust root made by the real sovdev-hub.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sovdev::bench {

// A folder removed with everything in it when dropped.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct ProcessStats {
  int exit_code = -1;      // -1 when killed by a signal
  double seconds = 0;      // wall time from spawn to exit
  uint64_t peak_anon = 0;  // highest RssAnon seen, bytes (0 when not sampled)
  uint64_t peak_rss = 0;   // highest VmRSS seen, bytes
  unsigned samples = 0;    // how many /proc reads found the process alive
};

// Runs argv to completion, stdout and stderr into `log_path`. With `sample_ms` > 0, reads
// /proc/<pid>/status that often while the child runs. posix_spawn returns only after the exec,
// so no sample ever sees this (large) parent's pages in the child.
ProcessStats run_process(const std::vector<std::string>& argv, const std::string& log_path,
                         double sample_ms = 0);

// `sh -c command`, returning its stdout; throws when it fails.
std::string shell_output(const std::string& command);

std::string read_text(const std::string& path);
uint64_t file_size(const std::string& path);
double median(std::vector<double> values);

// A bar's verdict line, ending in OK or MISSED so bench/run.sh can collect it; returns `ok`.
bool verdict(const std::string& line, bool ok);
// A bar that could not be measured here, "<what>: <why> SKIPPED" (bench/run.sh counts it): never
// a silent pass.
void skipped(const std::string& what, const std::string& why);
// An indented line of detail under the benchmark's heading.
void note(const std::string& line);

// "12.3 MiB", "456 KiB"
std::string mib(uint64_t bytes);
std::string fixed(double value, int decimals);

// Where the programs and the input data live; overridable from the command line.
//  - The in-repo edge-stack fixture (tests/fixtures/edge-stack/<v1|v2>/manifests, in the source
//    tree the build folder was configured from) is always there: every bar runs on it.
//  - The kube-prometheus corpus beside the repository is an extra: $SOVDEV_REALWORLD_DIR, else
//    <shared_dir>/realworld. Figures of the corpus alone are SKIPPED without it.
struct Paths {
  std::string build_dir;   // holds hub/sovdev-hub, agent/sovdev-agent, bench/bench_bare
  std::string shared_dir;  // holds realworld/kube-prometheus/<version>/manifests
  std::string hub() const { return build_dir + "/hub/sovdev-hub"; }
  std::string agent() const { return build_dir + "/agent/sovdev-agent"; }
  std::string bare() const { return build_dir + "/bench/bench_bare"; }
  std::string harness() const { return build_dir + "/bench/bench_fleet_harness"; }
  // The source tree, from the build folder's CMakeCache.txt; throws when it cannot be read.
  std::string source_dir() const;
  // One version ("v1" or "v2") of the in-repo fixture.
  std::string edge_stack(const std::string& version) const {
    return source_dir() + "/tests/fixtures/edge-stack/" + version + "/manifests";
  }
  std::string realworld_dir() const;
  std::string kube_prometheus(const std::string& version) const {
    return realworld_dir() + "/kube-prometheus/" + version + "/manifests";
  }
  // Whether both kube-prometheus versions are there.
  bool has_kube_prometheus() const;
};

struct Keys {
  std::string publisher_key;  // secret key file that signs bundles (the targets key)
  std::string trust_root;     // trust.root: root1 root, pub1 targets, online1 online
  std::string online_key;     // secret key file the hub serves and publishes with
};

// Makes keys and a trust root in `dir` with `sovdev-hub keygen` and `trust init`, or reuses
// those a previous mode left there.
Keys make_keys(const Paths& paths, const std::string& dir);

}  // namespace sovdev::bench
