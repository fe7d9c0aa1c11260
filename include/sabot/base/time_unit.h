// Time units of timestamps and their conversion to the engine's milliseconds. Event time,
// watermarks, windows and joins all work in milliseconds since the epoch; columns may carry
// seconds, micro- or nanoseconds, and every conversion goes through to_millis here.
#pragma once

#include <cstdint>
#include <span>

#include "sabot/base/arith.h"

namespace sabot {

// The unit of an int64 timestamp (the Arrow timestamp units; columnar::TimeUnit is this type).
enum class TimeUnit : uint8_t { kSecond, kMilli, kMicro, kNano };

// `v` in `unit` as milliseconds: seconds saturate at the int64 range, micro- and nanoseconds round
// toward negative infinity, so that a time before 1970 lands in the millisecond (and the window)
// that contains it: -1 us is -1 ms, not 0.
constexpr int64_t to_millis(int64_t v, TimeUnit unit) {
  switch (unit) {
    case TimeUnit::kSecond:
      if (v > INT64_MAX / 1000) return INT64_MAX;
      if (v < INT64_MIN / 1000) return INT64_MIN;
      return v * 1000;
    case TimeUnit::kMilli:
      return v;
    case TimeUnit::kMicro:
      return floor_div(v, 1000);
    case TimeUnit::kNano:
      return floor_div(v, 1'000'000);
  }
  return v;
}

// Column form of to_millis: out[i] = to_millis(in[i], unit), one switch per call and a plain loop
// per unit so that the compiler vectorizes it. `out` may alias `in`.
void to_millis(std::span<const int64_t> in, TimeUnit unit, int64_t* out);

}  // namespace sabot
