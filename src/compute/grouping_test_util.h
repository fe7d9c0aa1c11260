// Test-only helpers for the hash, grouper and aggregate tests: random arrays of every type from
// small domains (so keys repeat), sliced at random offsets, and a plain value model (Val) that the
// std::map-based reference implementations in the tests work on.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "sabot/columnar/builder.h"

namespace sabot::compute::testing {

using columnar::Array;
using columnar::DataType;
using columnar::TypeId;

inline const std::vector<DataType>& all_test_types() {
  static const std::vector<DataType> types = {
      columnar::boolean(), columnar::int32(),
      columnar::int64(),   columnar::uint64(),
      columnar::float64(), columnar::utf8(),
      columnar::binary(),  columnar::timestamp(columnar::TimeUnit::kMicro)};
  return types;
}

// A value as the reference models see it; monostate is null. Ordered, so usable as a map key.
// (Doubles never include NaN here: NaN breaks std::map ordering; NaN is tested separately.)
using Val = std::variant<std::monostate, bool, int64_t, uint64_t, double, std::string>;

inline Val val_at(const Array& a, int64_t i) {
  if (a.is_null(i)) return std::monostate{};
  switch (a.type().id()) {
    case TypeId::kBool:
      return a.bool_value(i);
    case TypeId::kInt32:
      return int64_t{a.value<int32_t>(i)};
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      return a.value<int64_t>(i);
    case TypeId::kUInt64:
      return a.value<uint64_t>(i);
    case TypeId::kFloat64: {
      double d = a.value<double>(i);
      return d == 0.0 ? 0.0 : d;  // the model folds -0.0 like the kernels do
    }
    case TypeId::kUtf8:
    case TypeId::kBinary:
      return std::string(a.string_view(i));
  }
  return std::monostate{};
}

// Random value of `type` from a domain of about `domain` distinct values.
// With `extreme` off, float64 values stay small (sums and variances stay finite).
inline void append_random(columnar::ArrayBuilder& b, const DataType& type, int domain,
                          std::mt19937_64& rng, bool extreme = true) {
  const int64_t k = static_cast<int64_t>(rng() % static_cast<uint64_t>(domain));
  switch (type.id()) {
    case TypeId::kBool:
      static_cast<columnar::BooleanBuilder&>(b).append(k % 2 == 1);
      break;
    case TypeId::kInt32:
      static_cast<columnar::Int32Builder&>(b).append(static_cast<int32_t>(k * 7919 - 1000));
      break;
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      static_cast<columnar::Int64Builder&>(b).append(k * 1'000'003 - 5'000'000'000LL);
      break;
    case TypeId::kUInt64:
      static_cast<columnar::UInt64Builder&>(b).append(static_cast<uint64_t>(k) * 977 +
                                                      (uint64_t{1} << 40));
      break;
    case TypeId::kFloat64: {
      static const double kSpecial[] = {-0.0, 0.0, 1e300, -2.5};
      double d = (k < (extreme ? 4 : 2)) ? kSpecial[k] : static_cast<double>(k) * 0.37 - 3.0;
      static_cast<columnar::Float64Builder&>(b).append(d);
      break;
    }
    case TypeId::kUtf8:
    case TypeId::kBinary: {
      // Lengths 0..40 so the byte hash sees every size class.
      std::string s(1, 'k');
      s += std::to_string(k);
      s.append(static_cast<size_t>(k % 41), type.id() == TypeId::kUtf8 ? 'x' : '\xff');
      static_cast<columnar::BinaryBuilder&>(b).append(s);
      break;
    }
  }
}

// `length` random values with nulls at `null_rate`, returned as a slice at a random offset (zero
// one time in four) of a larger array, so that kernels must honour offsets.
inline Array random_array(const DataType& type, int64_t length, double null_rate, int domain,
                          std::mt19937_64& rng, bool extreme = true) {
  const int64_t offset = (rng() % 4 == 0) ? 0 : static_cast<int64_t>(rng() % 70);
  auto b = columnar::make_builder(type);
  std::bernoulli_distribution is_null(null_rate);
  for (int64_t i = 0; i < offset + length + 3; ++i) {
    if (is_null(rng)) {
      b->append_null();
    } else {
      append_random(*b, type, domain, rng, extreme);
    }
  }
  return b->finish().slice(offset, length);
}

}  // namespace sabot::compute::testing
