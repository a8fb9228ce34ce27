// Crash consistency: a writer killed with SIGKILL at random moments leaves a sound cache that
// holds every chunk it acknowledged, each one whole.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "platform/store/agent_cache.hpp"
#include "platform/store/transaction.hpp"
#include "tests/store/test_support.hpp"

using namespace sovdev;
using namespace sovdev::store;
using namespace sovdev::store::test;

namespace {

constexpr std::uint32_t kChunks = 32;
constexpr std::size_t kChunkSize = 64 * 1024;
constexpr std::uint32_t kPerTransaction = 3;
constexpr std::uint8_t kBundles = 200;

// In a payload file (the agent's way since schema 4) or in the table (older bundles).
BundleMeta durability_meta(std::uint8_t n, bool in_file) {
  BundleMeta m{
      digest(n), "sovdev", "edge", n, "manifest", kChunks, std::uint64_t{kChunks} * kChunkSize};
  m.chunk_size = in_file ? kChunkSize : 0;
  return m;
}

// The child: downloads bundle after bundle, a few chunks per transaction, resuming whatever
// an earlier child left, and writes (bundle, index) to `ack` after each commit. Never returns.
[[noreturn]] void writer(const std::string& path, bool in_file, int ack) {
  auto db = open_agent_database(path);
  if (!db) _exit(10);
  BundleCache cache(*db);
  for (std::uint8_t n = 1; n <= kBundles; ++n) {
    if (!cache.begin(durability_meta(n, in_file))) _exit(11);
    auto missing = cache.missing_chunks(digest(n));
    if (!missing) _exit(12);
    for (std::size_t i = 0; i < missing->size(); i += kPerTransaction) {
      const std::size_t end = std::min(missing->size(), i + kPerTransaction);
      auto stored = transaction(*db, [&]() -> Status {
        for (std::size_t k = i; k < end; ++k) {
          SOVDEV_TRY(
              cache.put_chunk(digest(n), (*missing)[k], chunk_bytes(n, (*missing)[k], kChunkSize)));
        }
        return {};
      });
      if (!stored) _exit(13);
      for (std::size_t k = i; k < end; ++k) {
        const std::uint32_t record[2] = {n, (*missing)[k]};
        if (write(ack, record, sizeof record) != static_cast<ssize_t>(sizeof record)) _exit(14);
      }
    }
    if (!cache.set_state(digest(n), BundleState::complete)) _exit(15);
  }
  _exit(0);
}

// Runs a writer, kills it `delay` after its first acknowledged commit, and returns what it
// acknowledged.
std::set<std::pair<std::uint32_t, std::uint32_t>> run_and_kill(const std::string& path,
                                                               bool in_file,
                                                               std::chrono::microseconds delay) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(fds[0]);
    writer(path, in_file, fds[1]);
  }
  close(fds[1]);
  std::set<std::pair<std::uint32_t, std::uint32_t>> acked;
  std::uint32_t record[2];
  // The first acknowledgement says the writer is inside its loop; then the kill comes at a
  // random moment of its work.
  const bool started = read(fds[0], record, sizeof record) == static_cast<ssize_t>(sizeof record);
  if (started) acked.insert({record[0], record[1]});
  std::this_thread::sleep_for(delay);
  kill(child, SIGKILL);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  while (read(fds[0], record, sizeof record) == static_cast<ssize_t>(sizeof record)) {
    acked.insert({record[0], record[1]});
  }
  close(fds[0]);
  INFO("writer exit status " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  REQUIRE(started);
  REQUIRE((WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)));
  return acked;
}

}  // namespace

TEST_CASE("a writer killed at random moments leaves a sound cache holding every acked chunk") {
  const bool in_file = GENERATE(true, false);
  INFO((in_file ? "payload files" : "chunks in the table"));
  TempDir dir;
  const std::string path = dir.file("agent.db");
  std::random_device seed_source;
  const auto seed = seed_source();
  INFO("random seed " << seed);
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> delay_us(0, 40000);

  std::set<std::pair<std::uint32_t, std::uint32_t>> acked;
  std::size_t previous_chunks = 0;
  for (int round = 0; round < 6; ++round) {
    INFO("round " << round);
    const auto new_acks = run_and_kill(path, in_file, std::chrono::microseconds(delay_us(random)));
    acked.insert(new_acks.begin(), new_acks.end());

    auto db = must(open_agent_database(path));
    auto check = must(db.prepare("PRAGMA integrity_check"));
    REQUIRE(must(check.step()));
    CHECK(check.text(0) == "ok");
    CHECK(must(query_int64(db, "SELECT count(*) FROM pragma_foreign_key_check")) == 0);

    BundleCache cache(db);
    std::set<std::pair<std::uint32_t, std::uint32_t>> held;
    std::string buffer;
    for (const auto& info : must(cache.list())) {
      const auto n = static_cast<std::uint32_t>(info.version);
      const auto missing = must(cache.missing_chunks(info.digest));
      if (info.state != BundleState::partial) CHECK(missing.empty());
      std::set<std::uint32_t> gaps(missing.begin(), missing.end());
      for (std::uint32_t i = 0; i < kChunks; ++i) {
        if (gaps.count(i) != 0) continue;
        REQUIRE_OK(cache.read_chunk(info.digest, i, buffer));
        CHECK(buffer == chunk_bytes(n, i, kChunkSize));  // whole, and the right chunk
        held.insert({n, i});
      }
    }
    for (const auto& ack : acked) {
      INFO("acknowledged chunk " << ack.second << " of bundle " << ack.first);
      CHECK(held.count(ack) == 1);
    }
    // Each round resumes where the last stopped: the cache only grows.
    CHECK(held.size() >= previous_chunks);
    CHECK(held.size() > 0);
    previous_chunks = held.size();
  }
}
