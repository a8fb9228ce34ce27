// Reconnection delays: capped exponential backoff with jitter, so that a fleet whose broker
// restarts does not come back in one synchronised wave.
#pragma once

#include <chrono>
#include <random>

namespace sovdev::mqtt {

// The wait before reconnection attempt `attempt` (0 = the first one after a loss):
// base = min(max, min * 2^attempt), and the delay is drawn uniformly from [base / 2, base].
std::chrono::milliseconds reconnect_delay(unsigned attempt, std::chrono::milliseconds min,
                                          std::chrono::milliseconds max, std::mt19937_64& rng);

}  // namespace sovdev::mqtt
