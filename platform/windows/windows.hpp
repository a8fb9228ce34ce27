// Maintenance windows: when an agent may apply a new version. The agent enforces them with its
// own clock, hub or no hub (outside its windows it may download but does not apply); the hub
// uses the same parser to validate windows before it hands them out.
//
// A window is allow or deny, a cron-like start schedule, a duration and an IANA time zone read
// from the system's tzdata (/usr/share/zoneinfo through H. Hinnant's date/tz, built by Debian
// with USE_OS_TZDB: it never downloads anything). Nothing here reads the clock: every query
// takes the instant it is about.
//
// Schedule: five fields `minute hour day-of-month month day-of-week`, each `*`, a number, a
// range `1-5`, a list `1,3,5-7`, or a step over `*` or a range (`*/15`, `0-30/10`).
// Day-of-week is 0-7 (0 and 7 are Sunday) or `sun`..`sat`; month is 1-12 or `jan`..`dec`; names
// are case-insensitive and may form ranges (`mon-fri`). As in cron, when both day-of-month and
// day-of-week are restricted (neither starts with `*`) a day matches if EITHER matches;
// otherwise both must match. Anything else (`@daily`, `L`, `W`, `#`, `?`, wrapping ranges like
// `fri-mon`, six fields) is refused, and so is a schedule that can never fire (`0 0 30 2 *`).
//
// Starts are local times in the window's zone. A local start that does not exist (the hour
// skipped when clocks spring forward) starts at the first instant after the gap; a local start
// that happens twice (clocks fall back) starts once, at the earlier instant. A start covers
// [start, start + duration) in real time, so a 2h window opened at 02:00 before a fall-back
// lasts 2 real hours and closes at 03:00 local time of the second pass.
#pragma once

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace date {
class time_zone;
}

namespace sovdev::windows {

using sys_seconds = std::chrono::sys_seconds;

// Which local minutes a window starts at. Bit i of a field set means value i is allowed.
struct Schedule {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days_of_month;  // 1..31
  std::bitset<13> months;         // 1..12
  std::bitset<7> days_of_week;    // 0..6, Sunday = 0
  bool dom_restricted = false;    // the day-of-month field did not start with '*'
  bool dow_restricted = false;    // the day-of-week field did not start with '*'
  std::string text;               // the five fields as given, single-spaced

  // Whether a local day (month 1..12, day 1..31, weekday 0..6 with Sunday = 0) has starts,
  // by cron's day rule.
  bool matches_day(unsigned month, unsigned day, unsigned weekday) const;
};

struct Window {
  bool deny = false;
  Schedule schedule;
  std::chrono::minutes duration{0};
  std::string zone_name;
  const date::time_zone* zone = nullptr;  // from the process-wide tzdb, never freed

  // `allow "0 2 * * 6" 4h Europe/Berlin`, for logs and status.
  std::string text() const;
};

// Each error (Errc::invalid) names the field and the value refused:
//   window schedule "0 25 * * *": hour "25" is out of range 0-23
Expected<Schedule> parse_schedule(std::string_view schedule);
// `30m`, `4h`, `1h30m`, `2d`, `1d12h`: units d, h, m in that order, each at most once; 1m to 7d.
Expected<std::chrono::minutes> parse_duration(std::string_view duration);
// An IANA name in the system's tzdata ("Europe/Berlin", "UTC"). The first call loads the zone
// list (about 10 ms and 160 KiB of private memory, kept for the process); each zone used adds
// a few KiB. Names are case-sensitive.
Expected<const date::time_zone*> find_zone(std::string_view zone);
// kind is "allow" or "deny".
Expected<Window> parse_window(std::string_view kind, std::string_view schedule,
                              std::string_view duration, std::string_view zone);

// "1h30m", "2d", "45m".
std::string format_duration(std::chrono::minutes duration);
// "2026-12-08 02:00 CET": t in the zone's local time, for status lines
// ("waiting for window (opens 2026-12-08 02:00 CET)"). Seconds are truncated.
std::string format_local(sys_seconds t, const date::time_zone* zone);

// A set of windows (each from parse_window: `zone` must be set), as an agent holds them. Open at t
// when no deny window covers t and either there is no allow window or some allow window covers t.
// An empty set is always open.
//
// Queries look ahead at most `horizon` (366 days, so a yearly window is found) and back at most
// the longest duration. Their cost grows with the number of starts in that span, not with the
// minutes in it: a few hundred for a daily window, at most 527,040 for `* * * * *`.
class WindowSet {
 public:
  static constexpr std::chrono::days horizon{366};

  WindowSet() = default;
  explicit WindowSet(std::vector<Window> windows);

  const std::vector<Window>& windows() const { return windows_; }
  bool has_allow() const { return has_allow_; }

  bool open_at(sys_seconds t) const;
  // The first instant >= t at which the set is open; nullopt when none within the horizon.
  std::optional<sys_seconds> next_open(sys_seconds t) const;
  // When open at t: the first instant > t at which it closes; nullopt when it stays open
  // through the horizon. When closed at t: t.
  std::optional<sys_seconds> closes_at(sys_seconds t) const;

 private:
  std::vector<Window> windows_;
  bool has_allow_ = false;
};

}  // namespace sovdev::windows
