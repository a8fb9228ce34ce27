// The command-line values of `rollout start` and `window add`: what is accepted, and that
// each mistake is a usage error rather than a silently different gate.
#include <catch2/catch.hpp>

#include "hub/rollout/options.hpp"

using namespace sovdev;
using namespace sovdev::hub::rollout;

TEST_CASE("durations take units, combined, and refuse what is ambiguous") {
  CHECK(*parse_duration("30m") == 1800);
  CHECK(*parse_duration("1h30m") == 5400);
  CHECK(*parse_duration("90") == 90);
  CHECK(*parse_duration("1d") == 86400);
  for (const char* bad : {"", "0", "0m", "1h30", "30 m", "m", "-5m", "5w", "99999999999d"}) {
    INFO(bad);
    auto parsed = parse_duration(bad);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code == Errc::usage);
  }
}

TEST_CASE("percentages are per mille from 0.1 % to 100 %") {
  CHECK(*parse_percent("90%") == 900);
  CHECK(*parse_percent("90") == 900);
  CHECK(*parse_percent("99.5%") == 995);
  CHECK(*parse_percent("100%") == 1000);
  for (const char* bad : {"", "0%", "101%", "9.55%", "ninety", "%", "50.%"}) {
    INFO(bad);
    CHECK_FALSE(parse_percent(bad));
  }
}

TEST_CASE("the abort threshold is a count or a share, never both or zero") {
  const AbortThreshold count = *parse_abort_threshold("3");
  CHECK(count.count == 3);
  CHECK(count.permille == 0);
  const AbortThreshold share = *parse_abort_threshold("10%");
  CHECK(share.count == 0);
  CHECK(share.permille == 100);
  for (const char* bad : {"0", "", "3.5", "x%", "-1"}) {
    INFO(bad);
    CHECK_FALSE(parse_abort_threshold(bad));
  }
}
