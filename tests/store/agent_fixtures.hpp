// Agent-cache fixtures shared by the agent tests.
#pragma once

#include <cstdint>
#include <string>

#include "platform/store/agent_cache.hpp"
#include "tests/store/test_support.hpp"

namespace sovdev::store::test {

inline Database agent_db() {
  return must(open_agent_database(":memory:"));
}

// Bundle `n` of stack "sovdev" on channel "edge", with `chunks` chunks of 10 bytes.
inline BundleMeta meta(std::uint8_t n, std::uint64_t version, std::uint32_t chunks = 4) {
  return BundleMeta{digest(n),
                    "sovdev",
                    "edge",
                    version,
                    "signed-manifest-" + std::to_string(n),
                    chunks,
                    std::uint64_t{chunks} * 10};
}

// Stores every chunk of bundle `n` and marks it verified.
inline void cache_verified(BundleCache& cache, std::uint8_t n, std::uint64_t version) {
  const auto m = meta(n, version);
  REQUIRE(must(cache.begin(m)) == BundleState::partial);
  for (std::uint32_t i = 0; i < m.chunk_count; ++i) {
    REQUIRE_OK(cache.put_chunk(m.digest, i, chunk_bytes(n, i, 10)));
  }
  REQUIRE_OK(cache.set_state(m.digest, BundleState::verified));
}

}  // namespace sovdev::store::test
