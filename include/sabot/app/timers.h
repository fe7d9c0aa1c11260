// Timers of an App: periodic callbacks (app.timer) and crontab schedules (app.crontab) on an
// injectable clock, so that tests move time by hand (ManualClock) and fire exactly what is due.
// A TimerSchedule is configured before it runs; fire_due() is called by one thread at a time.
#pragma once

#include <array>
#include <bitset>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/ids.h"
#include "sabot/base/status.h"

namespace sabot::app {

// A five-field crontab expression (minute hour day-of-month month day-of-week), in UTC. Each field
// is `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma-separated list of these;
// day-of-week 0-7 (0 and 7 are Sunday). As in cron, when both day fields are restricted a day
// matches either. Immutable.
class Crontab {
 public:
  // InvalidArgument naming the field and the text when the expression is malformed.
  static Result<Crontab> parse(std::string_view expression);
  // The first minute strictly after `t` that matches (ms since the epoch, on a minute boundary).
  Timestamp next_after(Timestamp t) const;
  bool matches(int64_t minute_of_epoch) const;
  const std::string& expression() const { return expression_; }

 private:
  std::string expression_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<8> weekdays_;  // 0..6 (7 folded into 0)
  bool days_restricted_ = false;
  bool weekdays_restricted_ = false;
};

// Periodic and crontab callbacks. A callback that throws is reported by fire_due (the schedule
// goes on). Not thread-safe: one thread configures, then one thread fires.
class TimerSchedule {
 public:
  void add_interval(std::string name, std::chrono::milliseconds interval, std::function<void()> fn);
  void add_crontab(std::string name, Crontab crontab, std::function<void()> fn);
  // Sets every timer's first due time relative to `now` (interval timers: now + interval; crontabs:
  // the next matching minute after now).
  void start(Timestamp now);
  // Calls every callback due at or before `now`, in due-time order (a timer that fell behind fires
  // once per missed period). Returns the errors of callbacks that threw ("timer NAME: what").
  std::vector<std::string> fire_due(Timestamp now);
  // The earliest due time; nullopt without timers.
  std::optional<Timestamp> next_due() const;
  size_t size() const { return entries_.size(); }
  struct Entry {
    std::string name;
    int64_t interval_ms = 0;         // > 0 for interval timers
    std::optional<Crontab> crontab;  // set for crontab timers
    std::function<void()> fn;
    int64_t due_ms = 0;
    int64_t fired = 0;
  };
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;
};

}  // namespace sabot::app
