// Integer arithmetic that C++ leaves awkward, shared by time, window, join and exchange code. Pure
// functions; each exists once here so that every caller rounds and saturates the same way.
#pragma once

#include <cstdint>

namespace sabot {

// a / b rounded toward negative infinity (C++ rounds toward zero), so that times before the epoch
// fall into the right window, day or millisecond: floor_div(-1, 1000) == -1. Requires b != 0.
constexpr int64_t floor_div(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

// a + b and a - b clamped to [INT64_MIN, INT64_MAX]: watermarks and time bounds start at INT64_MIN
// or end at INT64_MAX, and subtracting a lateness from them must not wrap around.
constexpr int64_t sat_add(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}
constexpr int64_t sat_sub(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_sub_overflow(a, b, &r)) return b < 0 ? INT64_MAX : INT64_MIN;
  return r;
}

// The subtask that owns key group `key_group` when `max_parallelism` key groups are spread over
// `parallelism` subtasks in contiguous ranges (Flink's assignment): the exchange routes rows by it
// and the state layer restores by it, so a snapshot taken at one parallelism restores at another.
constexpr int subtask_for_key_group(int key_group, int parallelism, int max_parallelism) {
  return static_cast<int>(static_cast<int64_t>(key_group) * parallelism / max_parallelism);
}

}  // namespace sabot
