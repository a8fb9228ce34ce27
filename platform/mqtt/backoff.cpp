#include "platform/mqtt/backoff.hpp"

#include <algorithm>

namespace sovdev::mqtt {

std::chrono::milliseconds reconnect_delay(unsigned attempt, std::chrono::milliseconds min,
                                          std::chrono::milliseconds max, std::mt19937_64& rng) {
  using ms = std::chrono::milliseconds;
  const ms floor = std::max(min, ms(1));
  const ms cap = std::max(max, floor);
  ms base = floor;
  for (unsigned i = 0; i < attempt && base < cap; i++) base *= 2;
  base = std::min(base, cap);
  std::uniform_int_distribution<ms::rep> pick(base.count() / 2, base.count());
  return ms(pick(rng));
}

}  // namespace sovdev::mqtt
