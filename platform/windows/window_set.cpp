// Whether a set of windows is open: each window's starts are enumerated day by day in its local
// time, mapped to real time, and merged into covered intervals; the queries sweep over those.
#include <date/tz.h>

#include <algorithm>

#include "platform/windows/windows.hpp"

namespace sovdev::windows {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

// The starts of one window in increasing real time, over local days [first, last].
// Increasing because a gap's starts all map to its end and an overlap's to its earlier pass.
class Starts {
 public:
  Starts(const Window& w, date::local_days first, date::local_days last)
      : w_(w), day_(first), last_(last) {}

  std::optional<sys_seconds> next() {
    while (true) {
      if (!in_day_ && !enter_day()) return std::nullopt;
      for (; hour_ < 24; ++hour_, minute_ = 0) {
        if (!w_.schedule.hours[hour_]) continue;
        for (; minute_ < 60; ++minute_) {
          if (!w_.schedule.minutes[minute_]) continue;
          const date::local_seconds local = day_ + hours(hour_) + minutes(minute_);
          ++minute_;
          return to_sys(local);
        }
      }
      in_day_ = false;
      day_ += days(1);
    }
  }

 private:
  // Moves to the next day with starts; false past the last day.
  bool enter_day() {
    for (; day_ <= last_; day_ += days(1)) {
      const date::year_month_day ymd{day_};
      const date::weekday wd{day_};
      if (!w_.schedule.matches_day(static_cast<unsigned>(ymd.month()),
                                   static_cast<unsigned>(ymd.day()), wd.c_encoding())) {
        continue;
      }
      in_day_ = true;
      hour_ = 0;
      minute_ = 0;
      // Most days have one offset throughout: when the day's start and the next day's start are
      // both unique and in the same period, no transition falls inside the day.
      const auto a = w_.zone->get_info(date::local_seconds(day_));
      const auto b = w_.zone->get_info(date::local_seconds(day_ + days(1)));
      day_offset_.reset();
      if (a.result == date::local_info::unique && b.result == date::local_info::unique &&
          a.first.begin == b.first.begin) {
        day_offset_ = a.first.offset;
      }
      return true;
    }
    return false;
  }

  sys_seconds to_sys(date::local_seconds local) const {
    if (day_offset_) return sys_seconds(local.time_since_epoch() - *day_offset_);
    const auto info = w_.zone->get_info(local);
    // Skipped by spring-forward: the first instant after the gap, which is where it ends.
    if (info.result == date::local_info::nonexistent) return info.first.end;
    // Unique, or twice by fall-back: `first` is the earlier pass.
    return sys_seconds(local.time_since_epoch() - info.first.offset);
  }

  const Window& w_;
  date::local_days day_;
  date::local_days last_;
  bool in_day_ = false;
  unsigned hour_ = 0;
  unsigned minute_ = 0;
  std::optional<seconds> day_offset_;  // the day's single offset, when it has one
};

struct Interval {
  sys_seconds begin;
  sys_seconds end;
};

// The real-time intervals one window covers, merged (touching ones too), in increasing order;
// enough of them to answer for instants in [from, until].
class Coverage {
 public:
  Coverage(const Window& w, sys_seconds from, sys_seconds until)
      : w_(w),
        starts_(w, local_day(w, from - w.duration) - days(1), local_day(w, until) + days(1)) {}

  // The first interval that ends after x; nullptr when there is none up to `until`. x must not
  // decrease from call to call.
  const Interval* ending_after(sys_seconds x) {
    while (!have_ || cur_.end <= x) {
      if (!advance()) return nullptr;
    }
    return &cur_;
  }

  bool deny() const { return w_.deny; }

 private:
  static date::local_days local_day(const Window& w, sys_seconds t) {
    return date::floor<days>(w.zone->to_local(t));
  }

  bool advance() {
    std::optional<sys_seconds> s = pending_ ? pending_ : starts_.next();
    pending_.reset();
    if (!s) return false;
    cur_ = {*s, *s + w_.duration};
    have_ = true;
    while (auto n = starts_.next()) {
      if (*n > cur_.end) {
        pending_ = n;
        break;
      }
      cur_.end = std::max(cur_.end, *n + w_.duration);
    }
    return true;
  }

  const Window& w_;
  Starts starts_;
  std::optional<sys_seconds> pending_;  // the start that opened the next interval
  Interval cur_{};
  bool have_ = false;
};

std::vector<Coverage> coverages(const std::vector<Window>& windows, sys_seconds from,
                                sys_seconds until) {
  std::vector<Coverage> out;
  out.reserve(windows.size());
  for (const Window& w : windows) out.emplace_back(w, from, until);
  return out;
}

bool covers(Coverage& c, sys_seconds t) {
  const Interval* iv = c.ending_after(t);
  return iv != nullptr && iv->begin <= t;
}

}  // namespace

WindowSet::WindowSet(std::vector<Window> windows) : windows_(std::move(windows)) {
  has_allow_ =
      std::any_of(windows_.begin(), windows_.end(), [](const Window& w) { return !w.deny; });
}

bool WindowSet::open_at(sys_seconds t) const {
  bool allowed = !has_allow_;
  for (Coverage& c : coverages(windows_, t, t)) {
    if (!covers(c, t)) continue;
    if (c.deny()) return false;
    allowed = true;
  }
  return allowed;
}

std::optional<sys_seconds> WindowSet::next_open(sys_seconds t) const {
  const sys_seconds until = t + horizon;
  auto cov = coverages(windows_, t, until);
  sys_seconds x = t;
  // Each pass either returns or moves x forward to an interval's end or begin, of which there
  // are finitely many before `until`.
  while (x <= until) {
    bool moved = false;
    for (Coverage& c : cov) {
      if (!c.deny()) continue;
      if (const Interval* iv = c.ending_after(x); iv != nullptr && iv->begin <= x) {
        x = iv->end;
        moved = true;
      }
    }
    if (moved) continue;
    if (!has_allow_) return x;
    std::optional<sys_seconds> next_begin;
    for (Coverage& c : cov) {
      if (c.deny()) continue;
      const Interval* iv = c.ending_after(x);
      if (iv == nullptr) continue;
      if (iv->begin <= x) return x;
      next_begin = next_begin ? std::min(*next_begin, iv->begin) : iv->begin;
    }
    if (!next_begin) return std::nullopt;
    x = *next_begin;
  }
  return std::nullopt;
}

std::optional<sys_seconds> WindowSet::closes_at(sys_seconds t) const {
  if (!open_at(t)) return t;
  const sys_seconds until = t + horizon;
  auto cov = coverages(windows_, t, until);
  std::optional<sys_seconds> close;
  auto earliest = [&](sys_seconds s) { close = close ? std::min(*close, s) : s; };
  for (Coverage& c : cov) {
    if (!c.deny()) continue;
    // Open at t, so no deny covers t: the next one to begin closes the set.
    if (const Interval* iv = c.ending_after(t)) earliest(iv->begin);
  }
  if (has_allow_) {
    // Follow the allow coverage from t for as long as one interval hands over to another.
    sys_seconds x = t;
    for (bool moved = true; moved;) {
      moved = false;
      for (Coverage& c : cov) {
        if (c.deny()) continue;
        if (const Interval* iv = c.ending_after(x); iv != nullptr && iv->begin <= x) {
          x = iv->end;
          moved = true;
        }
      }
    }
    earliest(x);
  }
  if (close && *close > until) return std::nullopt;
  return close;
}

std::string format_local(sys_seconds t, const date::time_zone* zone) {
  return date::format("%Y-%m-%d %H:%M %Z",
                      date::make_zoned(zone, date::floor<std::chrono::minutes>(t)));
}

}  // namespace sovdev::windows
