// Test-only: random arrays of every columnar type for the randomized kernel tests (selection,
// take, filter, sort). Values come from small domains so that sorts see many ties, and include
// the awkward ones (NaN, -0.0, infinities, uint64 above INT64_MAX, bytes >= 0x80, empty strings).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sabot/columnar/builder.h"

namespace sabot::compute::testing {

inline const std::vector<columnar::DataType>& all_types() {
  static const std::vector<columnar::DataType> types = {
      columnar::boolean(), columnar::int32(),
      columnar::int64(),   columnar::uint64(),
      columnar::float64(), columnar::utf8(),
      columnar::binary(),  columnar::timestamp(columnar::TimeUnit::kMicro)};
  return types;
}

inline columnar::Scalar random_value(columnar::DataType type, std::mt19937_64& rng) {
  using columnar::Scalar;
  using columnar::TypeId;
  std::uniform_int_distribution<int> small(-20, 20);
  std::uniform_int_distribution<int> pick(0, 9);
  switch (type.id()) {
    case TypeId::kBool:
      return Scalar::of_bool(rng() & 1);
    case TypeId::kInt32:
      return Scalar::of_int32(pick(rng) == 0 ? static_cast<int32_t>(rng()) : small(rng));
    case TypeId::kInt64:
      return Scalar::of_int64(pick(rng) == 0 ? static_cast<int64_t>(rng()) : small(rng));
    case TypeId::kTimestamp:
      return Scalar{type, true, int64_t{1'700'000'000'000'000} + small(rng)};
    case TypeId::kUInt64: {
      const uint64_t v = static_cast<uint64_t>(small(rng) + 20);
      return Scalar::of_uint64(pick(rng) < 3 ? std::numeric_limits<uint64_t>::max() - v : v);
    }
    case TypeId::kFloat64: {
      switch (pick(rng)) {
        case 0:
          return Scalar::of_float64(std::numeric_limits<double>::quiet_NaN());
        case 1:
          return Scalar::of_float64(-0.0);
        case 2:
          return Scalar::of_float64((rng() & 1) ? std::numeric_limits<double>::infinity()
                                                : -std::numeric_limits<double>::infinity());
        default:
          return Scalar::of_float64(small(rng) / 4.0);
      }
    }
    case TypeId::kUtf8: {
      static const char* const kPieces[] = {"a", "b", "c", "\xc3\xa9" /* é */};
      std::string s;
      const int len = static_cast<int>(rng() % 4);
      for (int i = 0; i < len; ++i) s += kPieces[rng() % 4];
      return Scalar::of_utf8(std::move(s));
    }
    case TypeId::kBinary: {
      static const unsigned char kBytes[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
      std::string s;
      const int len = static_cast<int>(rng() % 4);
      for (int i = 0; i < len; ++i) s += static_cast<char>(kBytes[rng() % 5]);
      return Scalar::of_binary(std::move(s));
    }
  }
  return Scalar::null(type);
}

// `length` random values with nulls at rate `null_rate`, as a slice at a random offset of a larger
// array (offset 0 one time in four) so that kernels must honour offsets.
inline columnar::Array random_array(columnar::DataType type, int64_t length, double null_rate,
                                    std::mt19937_64& rng) {
  std::bernoulli_distribution is_null(null_rate);
  const int64_t offset = (rng() % 4 == 0) ? 0 : static_cast<int64_t>(rng() % 100);
  const int64_t tail = static_cast<int64_t>(rng() % 5);
  auto builder = columnar::make_builder(type);
  for (int64_t i = 0; i < offset + length + tail; ++i) {
    if (is_null(rng)) {
      builder->append_null();
    } else {
      builder->append_scalar(random_value(type, rng));
    }
  }
  return builder->finish().slice(offset, length);
}

// A bool mask: true at rate `true_rate`, null at rate `null_rate`, sliced at a random offset.
inline columnar::Array random_mask(int64_t length, double true_rate, double null_rate,
                                   std::mt19937_64& rng) {
  std::bernoulli_distribution is_true(true_rate);
  std::bernoulli_distribution is_null(null_rate);
  const int64_t offset = (rng() % 4 == 0) ? 0 : static_cast<int64_t>(rng() % 100);
  columnar::BooleanBuilder builder;
  for (int64_t i = 0; i < offset + length; ++i) {
    if (is_null(rng)) {
      builder.append_null();
    } else {
      builder.append(is_true(rng));
    }
  }
  return builder.finish().slice(offset, length);
}

}  // namespace sabot::compute::testing
