// Parsing of windows: the cron-like schedule, the duration and the zone.
#include <date/tz.h>

#include <array>
#include <cctype>
#include <stdexcept>

#include "platform/windows/windows.hpp"

namespace sovdev::windows {
namespace {

struct Field {
  const char* name;
  unsigned min;
  unsigned max;                              // inclusive; day-of-week accepts 7 as Sunday
  const std::array<const char*, 12>* names;  // index i is value i + name_base
  unsigned name_base;
};

constexpr std::array<const char*, 12> kMonthNames{"jan", "feb", "mar", "apr", "may", "jun",
                                                  "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<const char*, 12> kDayNames{"sun", "mon", "tue", "wed", "thu", "fri",
                                                "sat", "",    "",    "",    "",    ""};

const std::array<Field, 5> kFields{{
    {"minute", 0, 59, nullptr, 0},
    {"hour", 0, 23, nullptr, 0},
    {"day-of-month", 1, 31, nullptr, 0},
    {"month", 1, 12, &kMonthNames, 1},
    {"day-of-week", 0, 7, &kDayNames, 0},
}};

Error schedule_error(std::string_view schedule, const Field& field, std::string_view value,
                     std::string_view why) {
  return make_error(Errc::invalid, "window schedule \"" + std::string(schedule) +
                                       "\": " + field.name + " \"" + std::string(value) + "\" " +
                                       std::string(why));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A number or (for month and day-of-week) a name; nullopt when it is neither.
std::optional<unsigned> parse_value(std::string_view s, const Field& field) {
  if (s.empty() || s.size() > 3) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(s[0]))) {
    unsigned v = 0;
    for (char c : s) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    return v;
  }
  if (field.names == nullptr) return std::nullopt;
  const std::string l = lower(s);
  for (unsigned i = 0; i < field.names->size(); ++i) {
    if (l == (*field.names)[i]) return i + field.name_base;
  }
  return std::nullopt;
}

// One comma-separated item of a field, set into `bits` (indexed by value).
Status parse_item(std::string_view schedule, const Field& field, std::string_view item,
                  std::bitset<64>& bits) {
  auto fail = [&](std::string_view why) { return schedule_error(schedule, field, item, why); };
  std::string_view range = item;
  unsigned step = 1;
  if (const auto slash = item.find('/'); slash != std::string_view::npos) {
    range = item.substr(0, slash);
    const auto s = parse_value(item.substr(slash + 1), Field{field.name, 0, 0, nullptr, 0});
    if (!s || *s == 0 || *s > field.max) {
      return fail("has a bad step (want 1-" + std::to_string(field.max) + ")");
    }
    step = *s;
    if (range != "*" && range.find('-') == std::string_view::npos) {
      return fail("steps over a single value (write a range, e.g. 0-59/" + std::to_string(step) +
                  ")");
    }
  }
  unsigned lo = field.min;
  unsigned hi = field.max == 7 ? 6 : field.max;
  if (range != "*") {
    const auto dash = range.find('-');
    const auto a = parse_value(range.substr(0, dash), field);
    const auto b = dash == std::string_view::npos ? a : parse_value(range.substr(dash + 1), field);
    if (!a || !b) {
      return fail("is not a number, range, list or step" +
                  std::string(field.names ? " (names: e.g. mon, jan)" : ""));
    }
    for (unsigned v : {*a, *b}) {
      if (v < field.min || v > field.max) {
        return fail("has " + std::to_string(v) + " out of range " + std::to_string(field.min) +
                    "-" + std::to_string(field.max));
      }
    }
    if (*a > *b) return fail("is a range that runs backwards (split it: 5-6,0-1)");
    lo = *a;
    hi = *b;
  }
  for (unsigned v = lo; v <= hi; v += step) bits.set(v == 7 && field.max == 7 ? 0 : v);
  return {};
}

template <size_t N>
std::bitset<N> narrow(const std::bitset<64>& bits) {
  std::bitset<N> out;
  for (size_t i = 0; i < N; ++i) out[i] = bits[i];
  return out;
}

unsigned max_days(unsigned month) {
  static constexpr std::array<unsigned, 13> kDays{0,  31, 29, 31, 30, 31, 30,
                                                  31, 31, 30, 31, 30, 31};
  return kDays[month];
}

}  // namespace

bool Schedule::matches_day(unsigned month, unsigned day, unsigned weekday) const {
  if (!months[month]) return false;
  const bool dom = days_of_month[day];
  const bool dow = days_of_week[weekday];
  if (dom_restricted && dow_restricted) return dom || dow;
  return dom && dow;
}

Expected<Schedule> parse_schedule(std::string_view schedule) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < schedule.size()) {
    while (i < schedule.size() && (schedule[i] == ' ' || schedule[i] == '\t')) ++i;
    size_t j = i;
    while (j < schedule.size() && schedule[j] != ' ' && schedule[j] != '\t') ++j;
    if (j > i) parts.push_back(schedule.substr(i, j - i));
    i = j;
  }
  if (parts.size() != 5) {
    return make_error(Errc::invalid,
                      "window schedule \"" + std::string(schedule) + "\": has " +
                          std::to_string(parts.size()) +
                          " fields, want 5: minute hour day-of-month month day-of-week");
  }
  std::array<std::bitset<64>, 5> bits;
  Schedule out;
  for (size_t f = 0; f < 5; ++f) {
    std::string_view rest = parts[f];
    while (true) {
      const auto comma = rest.find(',');
      SOVDEV_TRY(parse_item(schedule, kFields[f], rest.substr(0, comma), bits[f]));
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
    if (!out.text.empty()) out.text += ' ';
    out.text += parts[f];
  }
  out.minutes = narrow<60>(bits[0]);
  out.hours = narrow<24>(bits[1]);
  out.days_of_month = narrow<32>(bits[2]);
  out.months = narrow<13>(bits[3]);
  out.days_of_week = narrow<7>(bits[4]);
  out.dom_restricted = parts[2][0] != '*';
  out.dow_restricted = parts[4][0] != '*';
  // Only a restricted day-of-month without a restricted day-of-week can miss every month
  // (`30 2`); a '*'-field always includes day 1 and every weekday occurs in every month.
  if (out.dom_restricted && !out.dow_restricted) {
    bool fires = false;
    for (unsigned m = 1; m <= 12 && !fires; ++m) {
      for (unsigned d = 1; d <= max_days(m) && !fires; ++d) {
        fires = out.months[m] && out.days_of_month[d] && out.days_of_week.any();
      }
    }
    if (!fires) {
      return make_error(Errc::invalid, "window schedule \"" + std::string(schedule) +
                                           "\": never fires (no such day in those months)");
    }
  }
  return out;
}

Expected<std::chrono::minutes> parse_duration(std::string_view duration) {
  auto fail = [&](std::string_view why) {
    return make_error(Errc::invalid,
                      "window duration \"" + std::string(duration) + "\": " + std::string(why));
  };
  if (duration.empty()) return fail("is empty (e.g. 30m, 4h, 1h30m, 2d)");
  std::chrono::minutes total{0};
  const std::string_view units = "dhm";
  size_t next_unit = 0;
  size_t i = 0;
  while (i < duration.size()) {
    unsigned long v = 0;
    size_t digits = 0;
    while (i < duration.size() && std::isdigit(static_cast<unsigned char>(duration[i]))) {
      if (++digits > 6) return fail("has a number too large");
      v = v * 10 + static_cast<unsigned long>(duration[i++] - '0');
    }
    const size_t u = i < duration.size() ? units.find(duration[i]) : std::string_view::npos;
    if (digits == 0 || u == std::string_view::npos || u < next_unit) {
      return fail("is not a duration like 30m, 4h, 1h30m or 2d (units d, h, m in that order)");
    }
    ++i;
    next_unit = u + 1;
    const long n = static_cast<long>(v);
    total += u == 0   ? std::chrono::minutes(n * 1440)
             : u == 1 ? std::chrono::hours(n)
                      : std::chrono::minutes(n);
  }
  if (total < std::chrono::minutes(1) || total > std::chrono::days(7)) {
    return fail("is out of range (1m to 7d)");
  }
  return total;
}

Expected<const date::time_zone*> find_zone(std::string_view zone) {
  auto fail = [&](std::string_view why) {
    return make_error(Errc::invalid,
                      "window zone \"" + std::string(zone) + "\": " + std::string(why));
  };
  if (zone.empty()) return fail("is empty (an IANA name like Europe/Berlin, or UTC)");
  try {
    return date::locate_zone(zone);
  } catch (const std::exception& e) {
    return fail(std::string("is not in the system's time-zone database (tzdata, "
                            "/usr/share/zoneinfo): ") +
                e.what());
  }
}

Expected<Window> parse_window(std::string_view kind, std::string_view schedule,
                              std::string_view duration, std::string_view zone) {
  Window w;
  if (kind == "deny") {
    w.deny = true;
  } else if (kind != "allow") {
    return make_error(Errc::invalid,
                      "window kind \"" + std::string(kind) + "\": want allow or deny");
  }
  SOVDEV_ASSIGN(w.schedule, parse_schedule(schedule));
  SOVDEV_ASSIGN(w.duration, parse_duration(duration));
  SOVDEV_ASSIGN(w.zone, find_zone(zone));
  w.zone_name = std::string(zone);
  return w;
}

std::string format_duration(std::chrono::minutes duration) {
  const long total = static_cast<long>(duration.count());
  std::string out;
  if (total / 1440 != 0) out += std::to_string(total / 1440) + "d";
  if (total / 60 % 24 != 0) out += std::to_string(total / 60 % 24) + "h";
  if (total % 60 != 0 || out.empty()) out += std::to_string(total % 60) + "m";
  return out;
}

std::string Window::text() const {
  return std::string(deny ? "deny" : "allow") + " \"" + schedule.text + "\" " +
         format_duration(duration) + " " + zone_name;
}

}  // namespace sovdev::windows
