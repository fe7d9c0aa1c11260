// Integer arithmetic that C++ leaves awkward, shared by time and window code. Pure functions.
#pragma once

#include <cstdint>

namespace sabot {

// a / b rounded toward negative infinity (C++ rounds toward zero), so that times before the epoch
// fall into the right window, day or millisecond: floor_div(-1, 1000) == -1. Requires b != 0.
constexpr int64_t floor_div(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

}  // namespace sabot
