// An injectable clock: production code asks a Clock for the time so that tests can move time by
// hand. SystemClock is thread-safe; ManualClock is thread-safe too (atomic).
#pragma once

#include <atomic>
#include <cstdint>

#include "sabot/base/ids.h"

namespace sabot {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time (for processing-time timers and timestamps).
  virtual Timestamp now() const = 0;
  // Monotonic nanoseconds for measuring durations.
  virtual int64_t monotonic_nanos() const = 0;
};

class SystemClock final : public Clock {
 public:
  Timestamp now() const override;
  int64_t monotonic_nanos() const override;
  // The process-wide instance.
  static const SystemClock& instance();
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(Timestamp start = Timestamp(0)) : ms_(start.millis()) {}
  Timestamp now() const override { return Timestamp(ms_.load()); }
  int64_t monotonic_nanos() const override { return ms_.load() * 1'000'000; }
  void set(Timestamp t) { ms_.store(t.millis()); }
  void advance_millis(int64_t ms) { ms_.fetch_add(ms); }

 private:
  std::atomic<int64_t> ms_;
};

}  // namespace sabot
