#include "sabot/base/clock.h"

#include <chrono>

namespace sabot {

Timestamp SystemClock::now() const {
  auto d = std::chrono::system_clock::now().time_since_epoch();
  return Timestamp(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

int64_t SystemClock::monotonic_nanos() const {
  auto d = std::chrono::steady_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

}  // namespace sabot
