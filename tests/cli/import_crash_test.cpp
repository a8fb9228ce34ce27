#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <random>
#include <thread>

#include "bundles/trust.hpp"
#include "bundles/verify.hpp"
#include "platform/store/agent_cache.hpp"
#include "tests/cli/cli_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

// ~24 MiB of manifests that barely compress, so the payload spans hundreds of chunks and the
// import takes long enough to be killed in the middle.
void write_big_stack(const std::string& dir) {
  std::mt19937 rng(42);
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  for (int f = 0; f < 48; f++) {
    std::string text;
    for (int d = 0; d < 8; d++) {
      std::string data(64 * 1024, 'x');
      for (auto& c : data) c = alphabet[rng() % 62];
      text += "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: blob-" + std::to_string(f) +
              "-" + std::to_string(d) + "\n  namespace: big\ndata:\n  payload: " + data + "\n";
    }
    write_manifest(dir + "/part-" + std::to_string(f) + ".yaml", text);
  }
}

// The cache after a crash: readable, and every bundle either verified or partial with only
// whole, correct chunks.
void check_consistent(const std::string& db_path, const TrustPolicy& trust) {
  auto db = store::open_agent_database(db_path);
  REQUIRE(db);
  auto integrity = db->prepare("PRAGMA integrity_check");
  REQUIRE(integrity);
  REQUIRE(*integrity->step());
  CHECK(integrity->text(0) == "ok");
  store::BundleCache cache(*db);
  auto bundles = cache.list();
  REQUIRE(bundles);
  for (const auto& b : *bundles) {
    CHECK(b.state != store::BundleState::complete);  // complete and verified commit together
    auto manifest = trust.verify_manifest(b.envelope, nullptr);
    REQUIRE(manifest);
    auto missing = cache.missing_chunks(b.digest);
    REQUIRE(missing);
    if (b.state == store::BundleState::verified) CHECK(missing->empty());
    for (uint32_t i = 0; i < b.chunk_count; i++) {
      if (std::binary_search(missing->begin(), missing->end(), i)) continue;
      auto chunk = cache.read_chunk(b.digest, i);
      REQUIRE(chunk);
      REQUIRE(verify_chunk(*manifest, i, *chunk));
    }
  }
}

// Chunks of the (single) cached bundle not yet committed; nullopt when no bundle was begun.
std::optional<size_t> chunks_lacking(const std::string& db_path) {
  auto db = store::open_agent_database(db_path);
  REQUIRE(db);
  store::BundleCache cache(*db);
  auto list = cache.list();
  REQUIRE(list);
  if (list->empty()) return std::nullopt;
  auto missing = cache.missing_chunks((*list)[0].digest);
  REQUIRE(missing);
  return missing->size();
}

}  // namespace

TEST_CASE(
    "an import killed with SIGKILL at random points leaves the cache consistent and the next "
    "import succeeds",
    "[cli][crash]") {
  Workspace ws;
  write_big_stack(ws.dir / "big");
  const std::string file = ws.dir / "big.sdb";
  auto built = ws.build(ws.dir / "big", file, 1, {"--level", "1"});
  REQUIRE(built.exit_code == 0);
  auto trust = TrustPolicy::from_initial(read_text(ws.trust));
  REQUIRE(trust);

  // How long an undisturbed import takes, to spread the kills over it: the quickest of three,
  // so that one slow run on a busy machine does not put most kills after the end.
  auto full = std::chrono::microseconds::max();
  for (int i = 0; i < 3; i++) {
    const auto start = std::chrono::steady_clock::now();
    TempDir state;
    auto r = run({agent_binary(), "import", "--state", state.path(), "--trust", ws.trust,
                  "--channel", "edge", file});
    REQUIRE(r.exit_code == 0);
    full = std::min(full, std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - start));
  }

  std::mt19937 rng(std::random_device{}());
  int interrupted = 0;
  int resumed = 0;  // runs whose next import found some chunks already committed
  const size_t total_chunks = read_text(file).size() / (64 * 1024);
  for (int run_no = 0; run_no < 20; run_no++) {
    TempDir state;
    const auto delay = std::chrono::microseconds(rng() % static_cast<uint64_t>(full.count()));
    {
      Child child({agent_binary(), "import", "--state", state.path(), "--trust", ws.trust,
                   "--channel", "edge", file});
      std::this_thread::sleep_for(delay);  // the fault injection point, not synchronisation
      child.kill_hard();
      if (child.wait() == -1) interrupted++;
    }
    INFO("run " << run_no << ", killed after " << delay.count() << " us");
    std::optional<size_t> lacking;
    if (std::filesystem::exists(state / "agent.db")) {
      check_consistent(state / "agent.db", *trust);
      lacking = chunks_lacking(state / "agent.db");
    }
    auto again = run({agent_binary(), "import", "--state", state.path(), "--trust", ws.trust,
                      "--channel", "edge", file});
    INFO(again.err);
    REQUIRE(again.exit_code == 0);
    // The next import stores exactly the chunks the killed one had not committed.
    if (lacking && *lacking > 0) {
      CHECK_THAT(again.out, Catch::Contains(" " + std::to_string(*lacking) + " chunk(s) stored"));
      if (*lacking < total_chunks) resumed++;
    }
    check_consistent(state / "agent.db", *trust);
    auto status = run({agent_binary(), "status", "--state", state.path(), "--json"});
    CHECK_THAT(status.out, Catch::Contains("\"state\": \"verified\""));
  }
  // Most kills must land while the import runs, or the test proves nothing.
  CHECK(interrupted >= 10);
  CHECK(resumed >= 1);
}
