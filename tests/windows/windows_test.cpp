// Maintenance windows: parsing, open/next-open/closes-at at fixed instants, and time zones
// across DST changes. No test reads the clock.
#include "platform/windows/windows.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

using namespace sovdev;
using namespace sovdev::windows;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

namespace {

// A UTC instant.
sys_seconds utc(int y, unsigned m, unsigned d, int h = 0, int min = 0, int s = 0) {
  return std::chrono::sys_days{std::chrono::year{y} / std::chrono::month{m} / std::chrono::day{d}} +
         hours(h) + minutes(min) + seconds(s);
}

Window window(std::string_view kind, std::string_view schedule, std::string_view duration,
              std::string_view zone) {
  auto w = parse_window(kind, schedule, duration, zone);
  INFO((w ? std::string() : w.error().message));
  REQUIRE(w);
  return *w;
}

WindowSet set(std::vector<Window> windows) {
  return WindowSet(std::move(windows));
}

std::string error_of(std::string_view kind, std::string_view schedule, std::string_view duration,
                     std::string_view zone) {
  auto w = parse_window(kind, schedule, duration, zone);
  REQUIRE_FALSE(w);
  CHECK(w.error().code == Errc::invalid);
  return w.error().message;
}

std::string schedule_error(std::string_view schedule) {
  return error_of("allow", schedule, "1h", "UTC");
}

}  // namespace

TEST_CASE("a schedule with steps, lists, ranges and names parses to the cron sets",
          "[windows][parse]") {
  auto s = parse_schedule("0-30/10  8,20\t* * MON-fri");
  REQUIRE(s);
  CHECK(s->text == "0-30/10 8,20 * * MON-fri");
  CHECK(s->minutes.count() == 4);
  CHECK((s->minutes[0] && s->minutes[10] && s->minutes[20] && s->minutes[30]));
  CHECK(s->hours.count() == 2);
  CHECK((s->hours[8] && s->hours[20]));
  CHECK(s->days_of_month.count() == 31);
  CHECK(s->months.count() == 12);
  CHECK(s->days_of_week.count() == 5);
  CHECK_FALSE(s->days_of_week[0]);
  CHECK_FALSE(s->dom_restricted);
  CHECK(s->dow_restricted);

  auto sunday = parse_schedule("*/15 0 1 jan,Jul 7");
  REQUIRE(sunday);
  CHECK(sunday->minutes.count() == 4);
  CHECK(sunday->days_of_week.count() == 1);
  CHECK(sunday->days_of_week[0]);
  CHECK(sunday->months.count() == 2);
  CHECK((sunday->months[1] && sunday->months[7]));
  CHECK(sunday->days_of_month.count() == 1);
  CHECK(sunday->dom_restricted);

  auto every_other = parse_schedule("0 0 * * */2");
  REQUIRE(every_other);
  CHECK(every_other->days_of_week.count() == 4);  // 0, 2, 4, 6
  CHECK_FALSE(every_other->dow_restricted);
}

TEST_CASE("a bad schedule is refused with the field and the value named", "[windows][parse]") {
  CHECK_THAT(schedule_error("0 25 * * *"), Catch::Contains("window schedule \"0 25 * * *\"") &&
                                               Catch::Contains("hour \"25\"") &&
                                               Catch::Contains("0-23"));
  CHECK_THAT(schedule_error("60 * * * *"), Catch::Contains("minute \"60\""));
  CHECK_THAT(schedule_error("0 0 0 * *"), Catch::Contains("day-of-month \"0\""));
  CHECK_THAT(schedule_error("0 0 * 13 *"), Catch::Contains("month \"13\""));
  CHECK_THAT(schedule_error("0 0 * * 8"), Catch::Contains("day-of-week \"8\""));
  CHECK_THAT(schedule_error("0 0 * * funday"), Catch::Contains("day-of-week \"funday\""));
  CHECK_THAT(schedule_error("0 0 * * fri-mon"), Catch::Contains("backwards"));
  CHECK_THAT(schedule_error("5/15 * * * *"), Catch::Contains("single value"));
  CHECK_THAT(schedule_error("*/0 * * * *"), Catch::Contains("step"));
  CHECK_THAT(schedule_error("1,,2 * * * *"), Catch::Contains("minute \"\""));
  CHECK_THAT(schedule_error("0 0 L * *"), Catch::Contains("day-of-month \"L\""));
  CHECK_THAT(schedule_error("0 0 * * 1#2"), Catch::Contains("day-of-week \"1#2\""));
  CHECK_THAT(schedule_error("@daily"), Catch::Contains("has 1 fields, want 5"));
  CHECK_THAT(schedule_error("0 0 0 * * *"), Catch::Contains("has 6 fields"));
  CHECK_THAT(schedule_error(""), Catch::Contains("has 0 fields"));
  // Schedules that can never fire.
  CHECK_THAT(schedule_error("0 0 30 feb *"), Catch::Contains("never fires"));
  CHECK_THAT(schedule_error("0 0 31 4,6,9,11 *"), Catch::Contains("never fires"));
  // ... but Feb 29, and the 31st of some month, can.
  CHECK(parse_schedule("0 0 29 2 *"));
  CHECK(parse_schedule("0 0 31 4,5 *"));
  // Either day field matching is enough when both are restricted: Feb 30 or a Monday fires.
  CHECK(parse_schedule("0 0 30 2 mon"));
}

TEST_CASE("durations parse from 1m to 7d and format back", "[windows][parse]") {
  const std::vector<std::pair<std::string, minutes>> good{
      {"30m", minutes(30)}, {"4h", hours(4)},   {"1h30m", minutes(90)}, {"2d", hours(48)},
      {"1d12h", hours(36)}, {"7d", hours(168)}, {"1m", minutes(1)},     {"90m", minutes(90)}};
  for (const auto& [text, value] : good) {
    INFO(text);
    auto d = parse_duration(text);
    REQUIRE(d);
    CHECK(*d == value);
  }
  CHECK(format_duration(minutes(90)) == "1h30m");
  CHECK(format_duration(hours(36)) == "1d12h");
  CHECK(format_duration(minutes(45)) == "45m");
  CHECK(format_duration(hours(168)) == "7d");

  for (const char* bad : {"", "0m", "7d1m", "8d", "90", "m", "30m1h", "1h1h", "1.5h", "-1h", "1w",
                          "30 m", "9999999m"}) {
    INFO(bad);
    const auto message = error_of("allow", "0 2 * * *", bad, "UTC");
    CHECK_THAT(message, Catch::StartsWith("window duration \"" + std::string(bad) + "\""));
  }
}

TEST_CASE("an unknown zone or kind is refused, naming the field", "[windows][parse]") {
  CHECK_THAT(error_of("allow", "0 2 * * *", "1h", "Mars/Olympus_Mons"),
             Catch::StartsWith("window zone \"Mars/Olympus_Mons\"") &&
                 Catch::Contains("time-zone database"));
  CHECK_THAT(error_of("allow", "0 2 * * *", "1h", ""), Catch::StartsWith("window zone \"\""));
  CHECK_THAT(error_of("allow", "0 2 * * *", "1h", "europe/berlin"),
             Catch::StartsWith("window zone"));
  CHECK_THAT(error_of("permit", "0 2 * * *", "1h", "UTC"),
             Catch::StartsWith("window kind \"permit\""));
  auto w = window("deny", "0 2 * * sat", "1h30m", "Europe/Berlin");
  CHECK(w.deny);
  CHECK(w.text() == "deny \"0 2 * * sat\" 1h30m Europe/Berlin");
  CHECK(w.zone_name == "Europe/Berlin");
}

TEST_CASE("a window is open from its start for its duration and closed outside", "[windows]") {
  auto s = set({window("allow", "0 2 * * *", "2h", "UTC")});
  CHECK_FALSE(s.open_at(utc(2026, 12, 8, 1, 59, 59)));
  CHECK(s.open_at(utc(2026, 12, 8, 2, 0)));
  CHECK(s.open_at(utc(2026, 12, 8, 3, 59, 59)));
  CHECK_FALSE(s.open_at(utc(2026, 12, 8, 4, 0)));
  CHECK_FALSE(s.open_at(utc(2026, 12, 8, 12, 0)));
  CHECK(s.next_open(utc(2026, 12, 8, 4, 0)) == utc(2026, 12, 9, 2, 0));
  CHECK(s.next_open(utc(2026, 12, 8, 3, 0)) == utc(2026, 12, 8, 3, 0));
  CHECK(s.closes_at(utc(2026, 12, 8, 3, 0)) == utc(2026, 12, 8, 4, 0));
  CHECK(s.closes_at(utc(2026, 12, 8, 5, 0)) == utc(2026, 12, 8, 5, 0));
}

TEST_CASE("deny wins over allow", "[windows]") {
  auto s =
      set({window("allow", "0 1 * * *", "4h", "UTC"), window("deny", "0 2 * * *", "1h", "UTC")});
  CHECK(s.open_at(utc(2027, 1, 5, 1, 30)));
  CHECK_FALSE(s.open_at(utc(2027, 1, 5, 2, 0)));
  CHECK_FALSE(s.open_at(utc(2027, 1, 5, 2, 59, 59)));
  CHECK(s.open_at(utc(2027, 1, 5, 3, 0)));
  CHECK(s.next_open(utc(2027, 1, 5, 0, 0)) == utc(2027, 1, 5, 1, 0));
  CHECK(s.closes_at(utc(2027, 1, 5, 1, 0)) == utc(2027, 1, 5, 2, 0));
  CHECK(s.next_open(utc(2027, 1, 5, 2, 0)) == utc(2027, 1, 5, 3, 0));
  CHECK(s.closes_at(utc(2027, 1, 5, 3, 0)) == utc(2027, 1, 5, 5, 0));

  // A deny covering a whole allow window pushes the next opening to the day after.
  auto covered =
      set({window("allow", "0 2 * * *", "1h", "UTC"), window("deny", "0 0 5 1 *", "1d", "UTC")});
  CHECK(covered.next_open(utc(2027, 1, 4, 3, 0)) == utc(2027, 1, 6, 2, 0));
}

TEST_CASE("without allow windows the set is open except where a deny window covers", "[windows]") {
  CHECK(WindowSet().open_at(utc(2027, 1, 1)));
  CHECK(WindowSet().next_open(utc(2027, 1, 1)) == utc(2027, 1, 1));
  CHECK(WindowSet().closes_at(utc(2027, 1, 1)) == std::nullopt);

  auto s = set({window("deny", "0 9 * * mon-fri", "8h", "UTC")});
  CHECK_FALSE(s.has_allow());
  CHECK(s.open_at(utc(2027, 1, 9, 10, 0)));         // Saturday
  CHECK_FALSE(s.open_at(utc(2027, 1, 11, 10, 0)));  // Monday
  CHECK(s.open_at(utc(2027, 1, 11, 17, 0)));
  CHECK(s.next_open(utc(2027, 1, 11, 10, 0)) == utc(2027, 1, 11, 17, 0));
  CHECK(s.closes_at(utc(2027, 1, 9, 10, 0)) == utc(2027, 1, 11, 9, 0));
}

TEST_CASE("windows that span midnight, the week's end and the year's end", "[windows]") {
  auto nightly = set({window("allow", "0 22 * * *", "4h", "UTC")});
  CHECK(nightly.open_at(utc(2027, 1, 6, 1, 59)));  // opened the evening before
  CHECK_FALSE(nightly.open_at(utc(2027, 1, 6, 2, 0)));
  CHECK(nightly.closes_at(utc(2027, 1, 5, 23, 0)) == utc(2027, 1, 6, 2, 0));

  // Saturday 20:00 for 36h: through Sunday to Monday 08:00.
  auto weekend = set({window("allow", "0 20 * * sat", "36h", "UTC")});
  CHECK_FALSE(weekend.open_at(utc(2027, 1, 9, 19, 59)));  // Saturday
  CHECK(weekend.open_at(utc(2027, 1, 10, 12, 0)));        // Sunday
  CHECK(weekend.open_at(utc(2027, 1, 11, 7, 59)));        // Monday
  CHECK_FALSE(weekend.open_at(utc(2027, 1, 11, 8, 0)));
  CHECK(weekend.next_open(utc(2027, 1, 11, 8, 0)) == utc(2027, 1, 16, 20, 0));

  auto new_year = set({window("allow", "0 23 31 dec *", "2h", "UTC")});
  CHECK(new_year.open_at(utc(2028, 1, 1, 0, 30)));
  CHECK_FALSE(new_year.open_at(utc(2028, 1, 1, 1, 0)));
  CHECK(new_year.next_open(utc(2027, 1, 2)) == utc(2027, 12, 31, 23, 0));
}

TEST_CASE("next_open finds a weekly window several days ahead, or none", "[windows]") {
  auto mondays = set({window("allow", "0 2 * * 1", "1h", "UTC")});
  CHECK(mondays.next_open(utc(2027, 1, 6, 12, 0)) == utc(2027, 1, 11, 2, 0));  // from a Wednesday
  CHECK(mondays.closes_at(utc(2027, 1, 11, 2, 0)) == utc(2027, 1, 11, 3, 0));

  // Always denied: no opening within the horizon, and the search stays bounded.
  auto never = set({window("deny", "* * * * *", "1m", "UTC")});
  CHECK_FALSE(never.open_at(utc(2027, 1, 1, 0, 0, 30)));
  CHECK(never.next_open(utc(2027, 1, 1)) == std::nullopt);

  // Always allowed: open through the horizon.
  auto always = set({window("allow", "* * * * *", "1m", "UTC")});
  CHECK(always.closes_at(utc(2027, 1, 1)) == std::nullopt);

  // Feb 29 is more than a year away from March 2026.
  auto leap = set({window("allow", "0 0 29 2 *", "1h", "UTC")});
  CHECK(leap.next_open(utc(2026, 3, 1)) == std::nullopt);
  CHECK(leap.next_open(utc(2027, 3, 1)) == utc(2028, 2, 29));
}

TEST_CASE("a step/list/range schedule opens at each matching minute", "[windows]") {
  auto s = set({window("allow", "0-30/10 8,20 * * *", "5m", "UTC")});
  CHECK(s.open_at(utc(2027, 2, 1, 8, 10)));
  CHECK(s.open_at(utc(2027, 2, 1, 8, 34, 59)));
  CHECK_FALSE(s.open_at(utc(2027, 2, 1, 8, 35)));
  CHECK_FALSE(s.open_at(utc(2027, 2, 1, 8, 5)));
  CHECK_FALSE(s.open_at(utc(2027, 2, 1, 9, 0)));
  CHECK(s.next_open(utc(2027, 2, 1, 8, 36)) == utc(2027, 2, 1, 20, 0));
  CHECK(s.next_open(utc(2027, 2, 1, 8, 6)) == utc(2027, 2, 1, 8, 10));
}

TEST_CASE("day-of-month and day-of-week: either when both are restricted, both otherwise",
          "[windows]") {
  // 2027-08-13 is a Friday; 2027-08-12 a Thursday; 2027-09-13 a Monday.
  auto either = set({window("allow", "0 0 13 * fri", "1h", "UTC")});
  CHECK(either.open_at(utc(2027, 8, 13, 0, 30)));
  CHECK(either.open_at(utc(2027, 8, 6, 0, 30)));   // a Friday
  CHECK(either.open_at(utc(2027, 9, 13, 0, 30)));  // a 13th
  CHECK_FALSE(either.open_at(utc(2027, 8, 12, 0, 30)));

  // "*/2" starts with '*': both must match, odd days that are Fridays.
  auto both = set({window("allow", "0 0 */2 * fri", "1h", "UTC")});
  CHECK(both.open_at(utc(2027, 8, 13, 0, 30)));
  CHECK_FALSE(both.open_at(utc(2027, 8, 6, 0, 30)));   // Friday the 6th
  CHECK_FALSE(both.open_at(utc(2027, 8, 15, 0, 30)));  // Sunday the 15th
}

// Europe/Berlin 2027: CET→CEST at 01:00 UTC on 03-28 (02:00→03:00 local), CEST→CET at 01:00
// UTC on 10-31 (03:00→02:00 local).
TEST_CASE("a start skipped by spring-forward opens at the first instant after the gap",
          "[windows][dst]") {
  auto w = window("allow", "0 2 * * *", "2h", "Europe/Berlin");
  auto s = set({w});
  CHECK(s.open_at(utc(2027, 3, 27, 1, 0)));             // 02:00 CET the day before
  CHECK_FALSE(s.open_at(utc(2027, 3, 28, 0, 59, 59)));  // 01:59:59 CET
  CHECK(s.next_open(utc(2027, 3, 27, 12, 0)) == utc(2027, 3, 28, 1, 0));
  CHECK(format_local(utc(2027, 3, 28, 1, 0), w.zone) == "2027-03-28 03:00 CEST");
  CHECK(s.open_at(utc(2027, 3, 28, 2, 59, 59)));
  CHECK(s.closes_at(utc(2027, 3, 28, 1, 0)) == utc(2027, 3, 28, 3, 0));
  CHECK(s.next_open(utc(2027, 3, 28, 3, 0)) == utc(2027, 3, 29, 0, 0));  // 02:00 CEST

  // 02:30 does not exist either: same start, once.
  auto half = set({window("allow", "30 2 * * *", "30m", "Europe/Berlin")});
  CHECK(half.next_open(utc(2027, 3, 27, 12, 0)) == utc(2027, 3, 28, 1, 0));
  CHECK(half.closes_at(utc(2027, 3, 28, 1, 0)) == utc(2027, 3, 28, 1, 30));
  // Several skipped starts land on the same instant without stretching the window.
  auto each_quarter = set({window("allow", "*/15 2 * * *", "15m", "Europe/Berlin")});
  CHECK(each_quarter.closes_at(utc(2027, 3, 28, 1, 0)) == utc(2027, 3, 28, 1, 15));
}

TEST_CASE("a start that happens twice at fall-back opens once, at the earlier instant",
          "[windows][dst]") {
  auto w = window("allow", "0 2 * * *", "2h", "Europe/Berlin");
  auto s = set({w});
  CHECK(s.next_open(utc(2027, 10, 30, 12, 0)) == utc(2027, 10, 31, 0, 0));  // 02:00 CEST
  CHECK(format_local(utc(2027, 10, 31, 0, 0), w.zone) == "2027-10-31 02:00 CEST");
  // Two real hours, not three: the second 02:00 (01:00 UTC) starts nothing new.
  CHECK(s.closes_at(utc(2027, 10, 31, 0, 30)) == utc(2027, 10, 31, 2, 0));
  CHECK(format_local(utc(2027, 10, 31, 2, 0), w.zone) == "2027-10-31 03:00 CET");
  CHECK(s.open_at(utc(2027, 10, 31, 1, 30)));  // 02:30 CET, still the first start's window
  CHECK_FALSE(s.open_at(utc(2027, 10, 31, 2, 0)));
  CHECK(s.next_open(utc(2027, 10, 31, 2, 0)) == utc(2027, 11, 1, 1, 0));  // 02:00 CET

  auto half = set({window("allow", "30 2 * * *", "30m", "Europe/Berlin")});
  CHECK(half.open_at(utc(2027, 10, 31, 0, 45)));        // 02:45 CEST
  CHECK_FALSE(half.open_at(utc(2027, 10, 31, 1, 45)));  // 02:45 CET: no second start
}

TEST_CASE("America/New_York windows follow EST and EDT", "[windows][dst]") {
  auto w = window("allow", "0 9 * * mon-fri", "8h", "America/New_York");
  auto s = set({w});
  CHECK(s.open_at(utc(2027, 1, 4, 14, 0)));  // Monday 09:00 EST
  CHECK_FALSE(s.open_at(utc(2027, 1, 4, 13, 59)));
  CHECK(s.open_at(utc(2027, 7, 5, 13, 0)));  // Monday 09:00 EDT
  CHECK_FALSE(s.open_at(utc(2027, 7, 5, 21, 0)));
  // From Friday 17:00 EST to Monday 09:00 EST.
  CHECK(s.next_open(utc(2027, 1, 8, 22, 0)) == utc(2027, 1, 11, 14, 0));
  CHECK(format_local(utc(2027, 1, 11, 14, 0), w.zone) == "2027-01-11 09:00 EST");
  // Across the change on Sunday 2027-03-14: Friday EST, Monday EDT.
  CHECK(s.next_open(utc(2027, 3, 12, 22, 0)) == utc(2027, 3, 15, 13, 0));
  CHECK(format_local(utc(2027, 3, 15, 13, 0), w.zone) == "2027-03-15 09:00 EDT");
}

TEST_CASE("UTC windows and windows in different zones combine", "[windows]") {
  auto utc_window = window("allow", "0 0 * * *", "1h", "UTC");
  CHECK(format_local(utc(2026, 12, 8, 2, 0, 59), utc_window.zone) == "2026-12-08 02:00 UTC");
  // 00:00 UTC allowed, but 01:00 Berlin (00:00 UTC in winter) denied.
  auto s = set({utc_window, window("deny", "0 1 * * *", "30m", "Europe/Berlin")});
  CHECK_FALSE(s.open_at(utc(2027, 1, 5, 0, 0)));
  CHECK(s.open_at(utc(2027, 1, 5, 0, 30)));
  CHECK(s.next_open(utc(2027, 1, 5, 0, 0)) == utc(2027, 1, 5, 0, 30));
  CHECK(s.closes_at(utc(2027, 1, 5, 0, 30)) == utc(2027, 1, 5, 1, 0));
}
