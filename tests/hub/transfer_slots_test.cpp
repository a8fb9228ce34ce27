// The hub's floor under rollout pacing: full transfers per stack bounded, the rest served in
// the order they asked.
#include "hub/transfer_slots.hpp"

#include <catch2/catch.hpp>

using namespace sovdev::hub;
using namespace std::chrono_literals;

namespace {

const auto t0 = std::chrono::steady_clock::time_point{} + 1000s;

}  // namespace

TEST_CASE("a stack's full transfers are bounded; the rest wait in the order they asked",
          "[transfer_slots]") {
  TransferSlots slots({2, 20s, 2s, 100});
  CHECK(slots.request("sovdev", "a1", t0));
  CHECK(slots.request("sovdev", "a2", t0));
  CHECK_FALSE(slots.request("sovdev", "a3", t0 + 1s));
  CHECK_FALSE(slots.request("sovdev", "a4", t0 + 2s));
  CHECK(slots.place("sovdev", "a3") == 1);
  CHECK(slots.place("sovdev", "a4") == 2);
  // Holders keep their slot while they keep asking.
  CHECK(slots.request("sovdev", "a1", t0 + 10s));
  CHECK(slots.in_use() == 2);
  CHECK(slots.waiting() == 2);
  // Another stack has slots of its own.
  CHECK(slots.request("other", "a3", t0 + 3s));
  // Waiters keep their place while they keep asking.
  CHECK_FALSE(slots.request("sovdev", "a3", t0 + 15s));
  CHECK_FALSE(slots.request("sovdev", "a4", t0 + 16s));
  // a2 stops asking: after `idle` its slot goes to a3, the first in line, not to a4.
  CHECK(slots.request("sovdev", "a1", t0 + 21s));
  CHECK_FALSE(slots.request("sovdev", "a4", t0 + 21s));  // a3 is ahead of it
  CHECK(slots.request("sovdev", "a3", t0 + 21s + 500ms));
  CHECK(slots.place("sovdev", "a4") == 1);
  CHECK(slots.counts().granted == 4);
  CHECK(slots.counts().waited == 5);
}

TEST_CASE("a waiting agent that stops asking loses its place", "[transfer_slots]") {
  TransferSlots slots({1, 20s, 2s, 100});
  CHECK(slots.request("s", "a1", t0));
  CHECK_FALSE(slots.request("s", "gone", t0 + 1s));
  CHECK_FALSE(slots.request("s", "a3", t0 + 2s));
  // a1 finishes (stops asking); `gone` never asks again; a3 keeps asking.
  CHECK_FALSE(slots.request("s", "a3", t0 + 12s));
  CHECK(slots.request("s", "a3", t0 + 22s));  // a1 idle since t0, gone since t0+1s
  CHECK(slots.place("s", "gone") == 0);
}

TEST_CASE("the agents tracked are bounded; past it a new agent waits without a place",
          "[transfer_slots]") {
  TransferSlots slots({1, 20s, 2s, 3});
  CHECK(slots.request("s", "a1", t0));
  CHECK_FALSE(slots.request("s", "a2", t0));
  CHECK_FALSE(slots.request("s", "a3", t0));
  CHECK_FALSE(slots.request("s", "a4", t0));
  CHECK(slots.waiting() == 2);
  CHECK(slots.place("s", "a4") == 0);
  // Once the others are gone, it is served.
  CHECK(slots.request("s", "a4", t0 + 25s));
}

TEST_CASE("an agent that asked for the last chunk frees its slot soon after", "[transfer_slots]") {
  TransferSlots slots({1, 15s, 2s, 100});
  CHECK(slots.request("s", "a1", t0));
  CHECK_FALSE(slots.request("s", "a2", t0));
  CHECK(slots.request("s", "a1", t0 + 1s, true));  // done, or nearly
  CHECK_FALSE(slots.request("s", "a2", t0 + 2s));
  CHECK(slots.request("s", "a2", t0 + 3s));  // 2 s after a1's last request, not 15
}

TEST_CASE("per_stack 0 serves everyone", "[transfer_slots]") {
  TransferSlots slots({0, 20s, 2s, 1});
  for (int i = 0; i < 50; ++i) CHECK(slots.request("s", "a" + std::to_string(i), t0));
  CHECK(slots.in_use() == 0);
}
