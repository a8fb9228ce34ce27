// Issue #22's hand-over memory: the loopback registry (agent/images/registry_server.hpp) serving
// a 200 MiB layer from its zstd file while curl downloads it, once alone and three at a time
// (containerd pulls three layers at once). The figure is the serving process's peak RssAnon,
// sampled every 2 ms; the baseline is the same process idle, in the same run. Bar: ≤ 12 MiB.
//
//   bench_images_serve [--data DIR] [--mib N]
//   bench_images_serve child serve DIR     (the measured process: serves DIR/blobs.tsv)
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "agent/images/registry_server.hpp"
#include "bench/bench_support.hpp"
#include "bundles/hash.hpp"
#include "common/hex.hpp"
#include "platform/proc/memory.hpp"

extern char** environ;

using namespace sovdev;
using namespace sovdev::bench;

namespace {

constexpr std::uint64_t kBarBytes = 12ull * 1024 * 1024;
const char* const kLayerType = "application/vnd.oci.image.layer.v1.tar";

// The blob store as the child sees it: DIR/blobs.tsv, one "hex size media-type" a line.
class FolderSource : public agent::images::BlobSource {
 public:
  explicit FolderSource(const std::string& dir) {
    std::ifstream in(dir + "/blobs.tsv");
    std::string hex, type;
    std::uint64_t size = 0;
    while (in >> hex >> size >> type) {
      if (auto raw = from_hex(hex)) held_[*raw] = {type, size, dir + "/" + hex + ".zst"};
    }
  }
  Expected<std::optional<agent::images::HeldBlob>> find(std::string_view digest) override {
    const auto it = held_.find(std::string(digest));
    if (it == held_.end()) return std::optional<agent::images::HeldBlob>();
    return std::optional<agent::images::HeldBlob>(it->second);
  }

 private:
  std::map<std::string, agent::images::HeldBlob> held_;
};

int child_serve(const std::string& dir) {
  proc::tune_allocator();  // as sovdev-agent's main() does
  FolderSource source(dir);
  agent::images::RegistryOptions options;
  options.listen = "127.0.0.1:0";
  auto server = agent::images::RegistryServer::start(source, options);
  if (!server) {
    std::fprintf(stderr, "%s\n", server.error().message.c_str());
    return 2;
  }
  std::ofstream(dir + "/port.tmp") << (*server)->port() << "\n";
  std::rename((dir + "/port.tmp").c_str(), (dir + "/port").c_str());
  for (;;) ::pause();  // killed by the parent
}

// A layer-like blob: 64 KiB pieces, alternately random and repeated text, so zstd stores about
// half of it raw. Written as one zstd stream (level 3, window 2 MiB), hashed as it goes.
std::string make_blob(const std::string& dir, std::uint64_t size) {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), &ZSTD_freeCCtx);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, 3);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_windowLog, 21);
  ZSTD_CCtx_setPledgedSrcSize(cctx.get(), size);
  const std::string tmp = dir + "/blob.zst.tmp";
  std::ofstream out(tmp, std::ios::binary);
  Sha256 hash;
  std::string piece(64 * 1024, '\0');
  std::string compressed(ZSTD_CStreamOutSize(), '\0');
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  for (std::uint64_t done = 0, i = 0; done < size; ++i) {
    const size_t n = static_cast<size_t>(std::min<std::uint64_t>(piece.size(), size - done));
    for (size_t j = 0; j < n; ++j) {
      if (i % 2 == 0) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        piece[j] = static_cast<char>(x);
      } else {
        piece[j] = "usr/lib/libexample.so.1 drwxr-xr-x root root\n"[(j + i) % 45];
      }
    }
    hash.update(std::string_view(piece.data(), n));
    done += n;
    ZSTD_inBuffer in{piece.data(), n, 0};
    const ZSTD_EndDirective mode = done == size ? ZSTD_e_end : ZSTD_e_continue;
    for (;;) {
      ZSTD_outBuffer o{compressed.data(), compressed.size(), 0};
      const size_t left = ZSTD_compressStream2(cctx.get(), &o, &in, mode);
      if (ZSTD_isError(left)) throw std::runtime_error(ZSTD_getErrorName(left));
      out.write(compressed.data(), static_cast<std::streamsize>(o.pos));
      if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size) break;
    }
  }
  out.close();
  const std::string hex = to_hex(hash.finish());
  std::rename(tmp.c_str(), (dir + "/" + hex + ".zst").c_str());
  std::ofstream(dir + "/blobs.tsv") << hex << " " << size << " " << kLayerType << "\n";
  return hex;
}

std::uint64_t rss_anon(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::stoull(line.substr(8)) * 1024;
  }
  return 0;
}

// The highest RssAnon of `pid` while `work` runs (at least `min_ms`), sampled every 2 ms.
template <class Work>
std::uint64_t peak_while(pid_t pid, Work work, int min_ms = 0) {
  std::atomic<bool> done{false};
  std::uint64_t peak = 0;
  std::thread sampler([&] {
    const auto start = std::chrono::steady_clock::now();
    while (!done || std::chrono::steady_clock::now() - start < std::chrono::milliseconds(min_ms)) {
      peak = std::max(peak, rss_anon(pid));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  work();
  done = true;
  sampler.join();
  return peak;
}

}  // namespace

int run_bench(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "child" && std::string(argv[2]) == "serve") {
    return child_serve(argv[3]);
  }
  std::string data;
  std::uint64_t mib_size = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--data") data = argv[i + 1];
    if (flag == "--mib") mib_size = std::stoull(argv[i + 1]);
  }
  TempDir own;
  const std::string dir = (data.empty() ? own.path() : data) + "/images-serve";
  std::filesystem::create_directories(dir);
  std::remove((dir + "/port").c_str());
  std::printf("== images serve: a %llu MiB layer from its zstd file\n",
              static_cast<unsigned long long>(mib_size));
  const std::string hex = make_blob(dir, mib_size * 1024 * 1024);
  note("blob " + mib(mib_size * 1024 * 1024) + ", zstd file " +
       mib(file_size(dir + "/" + hex + ".zst")));

  std::string self = argv[0];
  std::vector<std::string> args{self, "child", "serve", dir};
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  pid_t pid = -1;
  // The child's output goes to a log: it must not hold this program's stdout pipe open.
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  const std::string log = dir + "/serve.log";
  posix_spawn_file_actions_addopen(&files, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&files, 1, 2);
  const int spawned = ::posix_spawn(&pid, self.c_str(), &files, nullptr, cargs.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  if (spawned != 0) {
    skipped("images serve memory", "cannot start the serving child");
    return 2;
  }
  struct Reap {
    pid_t pid;
    ~Reap() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{pid};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!std::filesystem::exists(dir + "/port") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const std::string port =
      std::filesystem::exists(dir + "/port") ? read_text(dir + "/port") : std::string();
  if (port.empty()) {
    skipped("images serve memory", "the serving child did not start: " + read_text(log));
    return 2;
  }
  const std::string url =
      "http://127.0.0.1:" + port.substr(0, port.find('\n')) + "/v2/some/layer/blobs/sha256:" + hex;

  const std::uint64_t idle = peak_while(
      pid, [] {}, 500);
  std::string one_out;
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t one =
      peak_while(pid, [&] { one_out = shell_output("curl -sS --fail " + url + " | sha256sum"); });
  const double one_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string three_out;
  const std::uint64_t three = peak_while(pid, [&] {
    three_out =
        shell_output("for i in 1 2 3; do (curl -sS --fail " + url + " | sha256sum) & done; wait");
  });
  const bool digests_ok = one_out.rfind(hex, 0) == 0 && three_out.find(hex) != std::string::npos &&
                          three_out.rfind(hex) > three_out.find(hex) + 64;
  note("one download " + fixed(one_s, 2) + " s (" +
       fixed(static_cast<double>(mib_size) / one_s, 0) + " MiB/s), digests " +
       (digests_ok ? "match" : "DO NOT MATCH"));
  const std::string baseline = " (baseline: the same process idle, RssAnon " + mib(idle) + ")";
  bool ok = verdict(
      "images serve memory: one download, peak RssAnon " + mib(one) + baseline + " bar 12 MiB",
      one <= kBarBytes && digests_ok);
  ok &= verdict("images serve memory x3: three downloads at once, peak RssAnon " + mib(three) +
                    baseline + " bar 12 MiB",
                three <= kBarBytes && digests_ok);
  return ok ? 0 : 1;
}

int main(int argc, char** argv) {
  try {
    return run_bench(argc, argv);
  } catch (const std::exception& e) {  // caught, so the child is reaped on the way out
    std::printf("bench_images_serve: %s\n", e.what());
    return 2;
  }
}
