// Issue #19 §3, amplification: what one agent may make the hub do, with a clock moved by hand.
#include <catch2/catch.hpp>

#include "hub/delta_cache.hpp"
#include "hub/limits.hpp"
#include "platform/store/hub_store.hpp"
#include "tests/support/process.hpp"

namespace sovdev::hub {
namespace {

using namespace std::chrono_literals;
using Time = std::chrono::steady_clock::time_point;

struct ManualClock {
  Time now{};
  SteadyClock fn() {
    return [this] { return now; };
  }
};

template <typename T>
T must(Expected<T> e) {
  if (!e) FAIL(e.error().message);
  return std::move(*e);
}

TEST_CASE("an agent asking faster than its request rate is throttled, and recovers with time",
          "[limits]") {
  ManualClock clock;
  AgentLimitSettings s;
  s.requests_per_second = 10;
  s.request_burst = 20;
  AgentLimits limits(s, clock.fn());
  int ok = 0;
  for (int i = 0; i < 100; i++) ok += limits.request("agent-a") == Verdict::ok ? 1 : 0;
  CHECK(ok == 20);
  CHECK(limits.counts().requests_throttled == 80);
  // Another agent has its own budget.
  CHECK(limits.request("agent-b") == Verdict::ok);
  clock.now += 1s;
  ok = 0;
  for (int i = 0; i < 100; i++) ok += limits.request("agent-a") == Verdict::ok ? 1 : 0;
  CHECK(ok == 10);
}

TEST_CASE("the same chunk is served to one agent at most serves_per_chunk times a window",
          "[limits]") {
  // The attack: 20 requests for the same 256 chunks with nobody reading.
  ManualClock clock;
  AgentLimits limits({}, clock.fn());
  uint64_t served = 0;
  for (int round = 0; round < 20; round++) {
    for (uint32_t i = 0; i < 256; i++) {
      if (limits.chunk("agent-a", "bundle", i, 256, 64 * 1024) == Verdict::ok) served += 64 * 1024;
    }
  }
  WARN("served " << served << " bytes for 20 x 256 chunks of 64 KiB (unbounded: 335544320)");
  CHECK(served == 3 * 256 * 64 * 1024);
  CHECK(limits.counts().chunks_refused == 17 * 256);
  // Others are not affected; the window passing gives the agent its serves back.
  CHECK(limits.chunk("agent-b", "bundle", 0, 256, 64 * 1024) == Verdict::ok);
  clock.now += 61s;
  CHECK(limits.chunk("agent-a", "bundle", 0, 256, 64 * 1024) == Verdict::ok);
}

TEST_CASE("chunk bytes beyond an agent's burst are throttled to its byte rate", "[limits]") {
  ManualClock clock;
  AgentLimitSettings s;
  s.bytes_per_second = 1 << 20;
  s.byte_burst = 4 << 20;
  s.objects_per_agent = 1000;
  AgentLimits limits(s, clock.fn());
  uint64_t served = 0;
  for (uint32_t object = 0; object < 100; object++) {
    for (uint32_t i = 0; i < 16; i++) {
      if (limits.chunk("agent-a", std::to_string(object), i, 16, 64 * 1024) == Verdict::ok) {
        served += 64 * 1024;
      }
    }
  }
  CHECK(served == 4 << 20);
  CHECK(limits.counts().chunks_throttled == 100 * 16 - 64);
  clock.now += 2s;
  CHECK(limits.chunk("agent-a", "new", 0, 1, 2 << 20) == Verdict::ok);
  CHECK(limits.chunk("agent-a", "new2", 0, 1, 64 * 1024) == Verdict::throttled);
}

TEST_CASE("an agent cycling through objects cannot reset its serve counts", "[limits]") {
  ManualClock clock;
  AgentLimitSettings s;
  s.objects_per_agent = 2;
  AgentLimits limits(s, clock.fn());
  CHECK(limits.chunk("agent-a", "one", 0, 4, 10) == Verdict::ok);
  CHECK(limits.chunk("agent-a", "two", 0, 4, 10) == Verdict::ok);
  CHECK(limits.chunk("agent-a", "three", 0, 4, 10) == Verdict::refused);
  CHECK(limits.chunk("agent-a", "one", 9, 4, 10) == Verdict::refused);  // no such chunk
  clock.now += 61s;
  CHECK(limits.chunk("agent-a", "three", 0, 4, 10) == Verdict::ok);
}

store::HubBundle put_bundle(store::Database& db, uint64_t version) {
  store::HubBundle b;
  b.digest = std::string(31, '\x22') + static_cast<char>(version);
  b.channel = "edge";
  b.stack = "sovdev";
  b.version = version;
  b.envelope = "manifest";
  b.chunk_count = 1;
  b.payload_size = 4;
  b.uncompressed_size = 8 << 20;
  store::HubBundles bundles(db);
  REQUIRE(
      bundles.put_bundle(b, [](uint32_t) -> Expected<std::string> { return std::string("data"); }));
  return b;
}

TEST_CASE("an agent asking for many delta pairs is refused past its share and evicts only its own",
          "[limits]") {
  sovdev::testing::TempDir dir;
  auto db = must(store::open_hub_database(dir / "hub.db"));
  std::vector<store::HubBundle> v;
  for (uint64_t i = 1; i <= 10; i++) v.push_back(put_bundle(db, i));
  const store::HubBundle& target = v.back();
  ManualClock clock;
  DeltaCache::Limits limits;
  limits.max_bytes = 4 << 20;
  limits.max_bytes_per_agent = 2 << 20;
  limits.new_pairs = 4;
  limits.max_pending_per_agent = 2;
  DeltaCache cache(
      [](const DeltaJob&) -> Expected<Delta> {
        return Delta{std::string(1 << 20, 'd'), 20};
      },
      {}, limits, clock.fn());
  const auto settle = [&] {
    REQUIRE(sovdev::testing::wait_until([&] { return cache.pending() == 0; }, 10000ms));
    cache.collect();
  };
  const auto ask = [&](const std::string& agent, size_t base) {
    return must(cache.offer(db, target, v[base].digest, agent));
  };

  // The fleet's delta: asked by one agent, then used by another.
  CHECK(ask("good-1", 0).preparing);
  settle();
  REQUIRE(ask("good-2", 0).entry != nullptr);

  // One agent asks for eight other pairs: two at once, four in all.
  int preparing = 0, refused = 0;
  for (size_t base = 1; base <= 8; base++) {
    const DeltaOffer offer = ask("bad", base);
    preparing += offer.preparing ? 1 : 0;
    refused += !offer.preparing && offer.entry == nullptr ? 1 : 0;
    settle();
  }
  CHECK(preparing == 4);
  CHECK(refused == 4);
  CHECK(cache.refused_to_agents() == 4);
  CHECK(cache.made() == 5);
  // Its deltas hold at most its share; the fleet's delta is still there.
  CHECK(cache.bytes() <= (1u << 20) + limits.max_bytes_per_agent);
  CHECK(ask("good-3", 0).entry != nullptr);
  // Time gives it another pair.
  clock.now += 301s;
  CHECK(ask("bad", 8).preparing);  // refused earlier (not remembered): asked again, made
}

}  // namespace
}  // namespace sovdev::hub
