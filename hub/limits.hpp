// What one agent may make the hub do (issue #19 §3, amplification): a 91-byte request asks
// for 256 chunks, so the hub bounds per agent the requests it takes, the bytes it serves, how
// often it serves the same chunk again and how many new deltas it makes. An agent over a
// limit gets nothing for it (it asks again after its timeout, as after a lost message); the
// refusals are counted for /metrics. Runs on the serve loop's thread only.
//
// The defaults sit well above a normal sync at full speed (a 64 MiB pull over loopback takes
// ~0.3 s in ~1000 requests, each chunk served once) and far below what one agent can ask for.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

namespace sovdev::hub {

using SteadyClock = std::function<std::chrono::steady_clock::time_point()>;
SteadyClock real_steady_clock();

// `rate` tokens a second up to `burst`, starting full.
class TokenBucket {
 public:
  TokenBucket(double rate, double burst, std::chrono::steady_clock::time_point now)
      : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}
  // Takes `n` tokens if there are that many.
  bool take(double n, std::chrono::steady_clock::time_point now);

 private:
  void refill(std::chrono::steady_clock::time_point now);

  double rate_, burst_, tokens_;
  std::chrono::steady_clock::time_point last_;
};

struct AgentLimitSettings {
  uint32_t requests_per_second = 1000;  // fetch requests taken
  uint32_t request_burst = 4000;
  uint64_t bytes_per_second = 64u << 20;  // chunk bytes served, either way of sending
  uint64_t byte_burst = 256u << 20;       // a whole 256 MiB bundle at any speed
  // The same chunk of the same object served to one agent at most this often per window: an
  // agent that lost a chunk asks again once or twice, one asking 20 times wastes bandwidth.
  uint32_t serves_per_chunk = 3;
  std::chrono::seconds serve_window{60};
  // Objects (bundles, deltas) one agent is being served at once within a window: past them
  // it is refused rather than forgetting an older object's counts, which would reset them.
  size_t objects_per_agent = 8;
  size_t max_agents = 4096;  // agents tracked; the one idle longest is forgotten first
};

enum class Verdict { ok, throttled, refused };

struct LimitCounts {
  uint64_t requests_throttled = 0;  // fetch requests dropped: the agent asked too often
  uint64_t chunks_throttled = 0;    // chunks not served: the agent's byte budget was spent
  uint64_t chunks_refused = 0;      // chunks not served: served to it too often already
};

class AgentLimits {
 public:
  explicit AgentLimits(AgentLimitSettings settings, SteadyClock clock = real_steady_clock());

  // One fetch request from `agent`.
  Verdict request(const std::string& agent);
  // One chunk of `bytes` bytes, chunk `index` of an object of `chunk_count` chunks.
  Verdict chunk(const std::string& agent, const std::string& object, uint32_t index,
                uint32_t chunk_count, uint64_t bytes);

  const LimitCounts& counts() const { return counts_; }
  size_t agents() const { return agents_.size(); }

 private:
  struct Served {
    std::string object;
    std::chrono::steady_clock::time_point since;
    std::vector<uint8_t> count;  // per chunk, saturating
  };
  struct Agent {
    TokenBucket requests, bytes;
    std::vector<Served> served;
    std::list<std::string>::iterator lru;
  };
  Agent& find(const std::string& agent, std::chrono::steady_clock::time_point now);

  AgentLimitSettings settings_;
  SteadyClock clock_;
  std::unordered_map<std::string, Agent> agents_;
  std::list<std::string> order_;  // most recently active first
  LimitCounts counts_;
};

}  // namespace sovdev::hub
