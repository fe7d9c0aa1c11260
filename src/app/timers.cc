#include "sabot/app/timers.h"

#include <algorithm>
#include <charconv>
#include <exception>

namespace sabot::app {

namespace {

constexpr int64_t kMinuteMs = 60'000;

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    out.push_back(
        s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  return out;
}

Result<int> number(std::string_view text, std::string_view field) {
  int v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size()) {
    return Status::invalid_argument("crontab " + std::string(field) + ": '" + std::string(text) +
                                    "' is not a number");
  }
  return v;
}

// Sets the bits of one field; returns whether it was restricted (not a bare `*`).
template <size_t N>
Result<bool> parse_field(std::string_view text, std::string_view field, int lo, int hi,
                         std::bitset<N>* bits) {
  bool restricted = text != "*";
  for (std::string_view part : split(text, ',')) {
    int step = 1;
    std::string_view range = part;
    if (size_t slash = part.find('/'); slash != std::string_view::npos) {
      SABOT_ASSIGN_OR_RETURN(step, number(part.substr(slash + 1), field));
      if (step < 1) {
        return Status::invalid_argument("crontab " + std::string(field) + ": step in '" +
                                        std::string(part) + "' must be >= 1");
      }
      range = part.substr(0, slash);
    }
    int a = lo;
    int b = hi;
    if (range != "*") {
      if (size_t dash = range.find('-'); dash != std::string_view::npos) {
        SABOT_ASSIGN_OR_RETURN(a, number(range.substr(0, dash), field));
        SABOT_ASSIGN_OR_RETURN(b, number(range.substr(dash + 1), field));
      } else {
        SABOT_ASSIGN_OR_RETURN(a, number(range, field));
        b = part.find('/') != std::string_view::npos ? hi : a;
      }
    }
    if (a < lo || b > hi || a > b) {
      return Status::invalid_argument("crontab " + std::string(field) + ": '" + std::string(part) +
                                      "' is outside " + std::to_string(lo) + "-" +
                                      std::to_string(hi));
    }
    for (int v = a; v <= b; v += step) bits->set(static_cast<size_t>(v));
  }
  return restricted;
}

// Days since the epoch -> civil date (Howard Hinnant's algorithm).
void civil_from_days(int64_t z, int* year, int* month, int* day) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *year = static_cast<int>(yoe + era * 400 + (*month <= 2));
}

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

Result<Crontab> Crontab::parse(std::string_view expression) {
  std::vector<std::string_view> fields;
  for (std::string_view f : split(expression, ' ')) {
    if (!f.empty()) fields.push_back(f);
  }
  if (fields.size() != 5) {
    return Status::invalid_argument("crontab '" + std::string(expression) +
                                    "': expected 5 fields (minute hour day month weekday), got " +
                                    std::to_string(fields.size()));
  }
  Crontab c;
  c.expression_ = std::string(expression);
  SABOT_RETURN_IF_ERROR(parse_field(fields[0], "minute", 0, 59, &c.minutes_).status());
  SABOT_RETURN_IF_ERROR(parse_field(fields[1], "hour", 0, 23, &c.hours_).status());
  SABOT_ASSIGN_OR_RETURN(c.days_restricted_, parse_field(fields[2], "day", 1, 31, &c.days_));
  SABOT_RETURN_IF_ERROR(parse_field(fields[3], "month", 1, 12, &c.months_).status());
  std::bitset<8> wd;
  SABOT_ASSIGN_OR_RETURN(c.weekdays_restricted_, parse_field(fields[4], "weekday", 0, 7, &wd));
  if (wd[7]) wd.set(0);
  wd.reset(7);
  c.weekdays_ = wd;
  return c;
}

bool Crontab::matches(int64_t minute_of_epoch) const {
  const int64_t day_index = floor_div(minute_of_epoch, 24 * 60);
  const int64_t minute_of_day = minute_of_epoch - day_index * 24 * 60;
  if (!minutes_[static_cast<size_t>(minute_of_day % 60)]) return false;
  if (!hours_[static_cast<size_t>(minute_of_day / 60)]) return false;
  int year = 0;
  int month = 0;
  int day = 0;
  civil_from_days(day_index, &year, &month, &day);
  if (!months_[static_cast<size_t>(month)]) return false;
  const int weekday = static_cast<int>(((day_index % 7) + 7 + 4) % 7);  // 1970-01-01: Thursday
  const bool day_ok = days_[static_cast<size_t>(day)];
  const bool weekday_ok = weekdays_[static_cast<size_t>(weekday)];
  if (days_restricted_ && weekdays_restricted_) return day_ok || weekday_ok;
  return day_ok && weekday_ok;
}

Timestamp Crontab::next_after(Timestamp t) const {
  int64_t minute = floor_div(t.millis(), kMinuteMs) + 1;
  // At most a few years of minutes (Feb 29 on a Monday is the rarest); whole days that cannot
  // match are skipped.
  for (int64_t guard = 0; guard < 10'000'000; ++guard) {
    if (matches(minute)) return Timestamp(minute * kMinuteMs);
    const int64_t day_index = floor_div(minute, 24 * 60);
    const int64_t hour = (minute - day_index * 24 * 60) / 60;
    if (!hours_[static_cast<size_t>(hour)]) {
      minute = day_index * 24 * 60 + (hour + 1) * 60;  // next hour
    } else {
      ++minute;
    }
  }
  return Timestamp::max();
}

void TimerSchedule::add_interval(std::string name, std::chrono::milliseconds interval,
                                 std::function<void()> fn) {
  Entry e;
  e.name = std::move(name);
  e.interval_ms = std::max<int64_t>(1, interval.count());
  e.fn = std::move(fn);
  entries_.push_back(std::move(e));
}

void TimerSchedule::add_crontab(std::string name, Crontab crontab, std::function<void()> fn) {
  Entry e;
  e.name = std::move(name);
  e.crontab = std::move(crontab);
  e.fn = std::move(fn);
  entries_.push_back(std::move(e));
}

void TimerSchedule::start(Timestamp now) {
  for (Entry& e : entries_) {
    e.due_ms = e.crontab ? e.crontab->next_after(now).millis() : now.millis() + e.interval_ms;
  }
}

std::vector<std::string> TimerSchedule::fire_due(Timestamp now) {
  std::vector<std::string> errors;
  while (true) {
    Entry* next = nullptr;
    for (Entry& e : entries_) {
      if (e.due_ms <= now.millis() && (next == nullptr || e.due_ms < next->due_ms)) next = &e;
    }
    if (next == nullptr) break;
    try {
      next->fn();
    } catch (const std::exception& ex) {
      errors.push_back("timer " + next->name + ": " + ex.what());
    }
    ++next->fired;
    next->due_ms = next->crontab ? next->crontab->next_after(Timestamp(next->due_ms)).millis()
                                 : next->due_ms + next->interval_ms;
  }
  return errors;
}

std::optional<Timestamp> TimerSchedule::next_due() const {
  std::optional<Timestamp> out;
  for (const Entry& e : entries_) {
    if (!out || e.due_ms < out->millis()) out = Timestamp(e.due_ms);
  }
  return out;
}

}  // namespace sabot::app
