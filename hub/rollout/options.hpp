// The values `sovdev-hub rollout start` and `window add` take on their command lines, parsed
// with messages that say what was wrong (docs/design-rollouts.md).
#pragma once

#include <cstdint>
#include <string_view>

#include "common/error.hpp"

namespace sovdev::hub::rollout {

// "30m", "2h", "1h30m", "90s", "1d", or plain seconds. Errc::usage otherwise, and for 0.
[[nodiscard]] Expected<std::int64_t> parse_duration(std::string_view text);
// "90%", "90", "99.5%": per mille, 1..1000.
[[nodiscard]] Expected<std::uint32_t> parse_percent(std::string_view text);

// --abort-failed: "10%" (of the admitted agents) or a count "3".
struct AbortThreshold {
  std::uint32_t count = 0;
  std::uint32_t permille = 0;
};
[[nodiscard]] Expected<AbortThreshold> parse_abort_threshold(std::string_view text);

// The wall clock in unix seconds, for what the commands write into hub.db.
std::int64_t unix_now();

}  // namespace sovdev::hub::rollout
