// What the demo jobs (fraud, enrichment) share to measure a run and print its summary: clocks,
// CPU time, number formatting and JSON string escaping. Plain functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sabot/base/json_text.h"

namespace sabot::demo {

// Monotonic nanoseconds (std::chrono::steady_clock), for latencies within one process.
int64_t steady_ns();
// CPU seconds (user + system) of the whole process, and of the calling thread.
double cpu_seconds();
double thread_cpu_seconds();

// `v` through a printf format with one double ("%.2f"); non-finite values print as 0.
std::string fmt(const char* format, double v);
// 1234567 -> "1,234,567".
std::string grouped(int64_t v);
// Per-second rates as "1.23 M" or "456.7 k".
std::string rate(double per_s);

// `s` as a JSON string literal (sabot/base/json_text.h), argument order of the demo's callers.
inline void append_json_string(std::string_view s, std::string* out) {
  ::sabot::append_json_string(out, s);
}
using ::sabot::json_string;

}  // namespace sabot::demo
