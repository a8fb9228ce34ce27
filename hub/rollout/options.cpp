#include "hub/rollout/options.hpp"

#include <ctime>

#include <limits>
#include <optional>
#include <string>

namespace sovdev::hub::rollout {
namespace {

// The digits at the front of `text`, consumed; nullopt when there are none or they overflow.
std::optional<std::uint64_t> take_number(std::string_view& text) {
  std::uint64_t value = 0;
  size_t used = 0;
  while (used < text.size() && text[used] >= '0' && text[used] <= '9') {
    if (value > (std::numeric_limits<std::uint64_t>::max() - 9) / 10) return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(text[used] - '0');
    ++used;
  }
  if (used == 0) return std::nullopt;
  text.remove_prefix(used);
  return value;
}

// Ten years: longer is a typo, and it keeps the sums below far from overflow.
constexpr std::int64_t kMaxDuration = 10LL * 365 * 86400;

}  // namespace

Expected<std::int64_t> parse_duration(std::string_view text) {
  const std::string given(text);
  auto bad = [&] {
    return make_error(Errc::usage,
                      "'" + given + "' is not a duration: write e.g. 30m, 2h, 1h30m, 90s or 1d");
  };
  if (text.empty()) return bad();
  std::int64_t total = 0;
  while (!text.empty()) {
    auto n = take_number(text);
    if (!n || *n > static_cast<std::uint64_t>(kMaxDuration)) return bad();
    std::int64_t unit = 1;
    if (!text.empty()) {
      switch (text.front()) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default: return bad();
      }
      text.remove_prefix(1);
    } else if (total != 0) {
      return bad();  // "1h30": the unit of the 30 is missing
    }
    total += static_cast<std::int64_t>(*n) * unit;
    if (total > kMaxDuration) return bad();
  }
  if (total == 0) return bad();
  return total;
}

Expected<std::uint32_t> parse_percent(std::string_view text) {
  const std::string given(text);
  auto bad = [&] {
    return make_error(
        Errc::usage,
        "'" + given + "' is not a percentage from 0.1 to 100: write e.g. 90% or 99.5%");
  };
  if (!text.empty() && text.back() == '%') text.remove_suffix(1);
  auto whole = take_number(text);
  if (!whole || *whole > 100) return bad();
  std::uint64_t permille = *whole * 10;
  if (!text.empty() && text.front() == '.') {
    text.remove_prefix(1);
    if (text.size() != 1 || text[0] < '0' || text[0] > '9') return bad();
    permille += static_cast<std::uint64_t>(text[0] - '0');
    text.remove_prefix(1);
  }
  if (!text.empty() || permille == 0 || permille > 1000) return bad();
  return static_cast<std::uint32_t>(permille);
}

Expected<AbortThreshold> parse_abort_threshold(std::string_view text) {
  AbortThreshold out;
  if (!text.empty() && text.back() == '%') {
    SOVDEV_ASSIGN(out.permille, parse_percent(text));
    return out;
  }
  std::string_view rest = text;
  auto n = take_number(rest);
  if (!n || !rest.empty() || *n == 0 || *n > 1'000'000) {
    return make_error(Errc::usage, "--abort-failed '" + std::string(text) +
                                       "': give a count of failed agents (e.g. 3) or a share "
                                       "of the admitted ones (e.g. 10%)");
  }
  out.count = static_cast<std::uint32_t>(*n);
  return out;
}

std::int64_t unix_now() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

}  // namespace sovdev::hub::rollout
