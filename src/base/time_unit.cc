#include "sabot/base/time_unit.h"

#include <cstring>

namespace sabot {

namespace {

template <int64_t kDiv>
void floor_div_all(std::span<const int64_t> in, int64_t* out) {
  const int64_t* v = in.data();
  const size_t n = in.size();
  for (size_t i = 0; i < n; ++i) {
    const int64_t q = v[i] / kDiv;
    out[i] = q - (v[i] % kDiv < 0);
  }
}

}  // namespace

void to_millis(std::span<const int64_t> in, TimeUnit unit, int64_t* out) {
  switch (unit) {
    case TimeUnit::kSecond:
      for (size_t i = 0; i < in.size(); ++i) out[i] = to_millis(in[i], TimeUnit::kSecond);
      return;
    case TimeUnit::kMilli:
      if (out != in.data()) std::memmove(out, in.data(), in.size() * sizeof(int64_t));
      return;
    case TimeUnit::kMicro:
      floor_div_all<1000>(in, out);
      return;
    case TimeUnit::kNano:
      floor_div_all<1'000'000>(in, out);
      return;
  }
}

}  // namespace sabot
