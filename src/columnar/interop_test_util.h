// Random arrays and batches of every Sabot type, and a value-by-value comparison written as plain
// loops, shared by the C Data Interface, IPC and interop tests. Test-only.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "sabot/columnar/builder.h"
#include "sabot/columnar/record_batch.h"

namespace sabot::columnar::testing {

inline std::vector<DataType> all_types() {
  return {boolean(),
          int32(),
          int64(),
          uint64(),
          float64(),
          utf8(),
          binary(),
          timestamp(TimeUnit::kSecond),
          timestamp(TimeUnit::kMilli),
          timestamp(TimeUnit::kMicro),
          timestamp(TimeUnit::kNano)};
}

// A random string of 0..max_len bytes; utf8 strings mix ASCII with 2-, 3- and 4-byte characters.
inline std::string random_string(bool utf8_text, int max_len, std::mt19937_64& rng) {
  std::string s;
  const int len = static_cast<int>(rng() % static_cast<uint64_t>(max_len + 1));
  while (static_cast<int>(s.size()) < len) {
    if (!utf8_text) {
      s.push_back(static_cast<char>(rng() & 0xFF));
      continue;
    }
    switch (rng() % 6) {
      case 0:
        s += "\xC3\xA9";  // é
        break;
      case 1:
        s += "\xE2\x82\xAC";  // €
        break;
      case 2:
        s += "\xF0\x9F\x98\x80";  // 😀
        break;
      default:
        s.push_back(static_cast<char>('a' + rng() % 26));
    }
  }
  return s;
}

// `length` values, each null with probability `null_probability`.
inline Array random_array(DataType type, int64_t length, double null_probability,
                          std::mt19937_64& rng) {
  std::bernoulli_distribution is_null(null_probability);
  auto builder = make_builder(type);
  builder->reserve(length);
  for (int64_t i = 0; i < length; ++i) {
    if (is_null(rng)) {
      builder->append_null();
      continue;
    }
    Scalar v;
    switch (type.id()) {
      case TypeId::kBool:
        v = Scalar::of_bool(rng() & 1);
        break;
      case TypeId::kInt32:
        v = Scalar::of_int32(static_cast<int32_t>(rng()));
        break;
      case TypeId::kInt64:
        v = Scalar::of_int64(static_cast<int64_t>(rng()));
        break;
      case TypeId::kUInt64:
        v = Scalar::of_uint64(rng());
        break;
      case TypeId::kFloat64:
        v = Scalar::of_float64(std::uniform_real_distribution<double>(-1e9, 1e9)(rng));
        break;
      case TypeId::kUtf8:
        v = Scalar::of_utf8(random_string(true, 12, rng));
        break;
      case TypeId::kBinary:
        v = Scalar::of_binary(random_string(false, 12, rng));
        break;
      case TypeId::kTimestamp:
        v = Scalar::of_timestamp(static_cast<int64_t>(rng() >> 4), type.unit());
        break;
    }
    builder->append_scalar(v);
  }
  return builder->finish();
}

// A batch with one column of every type (names "c0", "c1", ...).
inline RecordBatch random_batch(int64_t rows, double null_probability, std::mt19937_64& rng) {
  std::vector<Field> fields;
  std::vector<Array> columns;
  int i = 0;
  for (DataType t : all_types()) {
    std::string name = "c";  // built with += : GCC 12 warns falsely on "c" + std::string
    name += std::to_string(i++);
    name += '_';
    name += t.to_string();
    fields.push_back(field(std::move(name), t));
    columns.push_back(random_array(t, rows, null_probability, rng));
  }
  return RecordBatch::make(schema(std::move(fields)), std::move(columns)).value();
}

// Compares two arrays element by element with plain loops over the raw accessors (not through
// Array::equals, so that a bug there cannot hide one here).
inline void expect_same_values(const Array& expected, const Array& actual,
                               const std::string& what) {
  ASSERT_EQ(expected.type(), actual.type()) << what;
  ASSERT_EQ(expected.length(), actual.length()) << what;
  ASSERT_EQ(expected.null_count(), actual.null_count()) << what;
  for (int64_t i = 0; i < expected.length(); ++i) {
    ASSERT_EQ(expected.is_null(i), actual.is_null(i)) << what << " row " << i;
    if (expected.is_null(i)) continue;
    switch (expected.type().id()) {
      case TypeId::kBool:
        ASSERT_EQ(expected.bool_value(i), actual.bool_value(i)) << what << " row " << i;
        break;
      case TypeId::kInt32:
        ASSERT_EQ(expected.value<int32_t>(i), actual.value<int32_t>(i)) << what << " row " << i;
        break;
      case TypeId::kInt64:
      case TypeId::kTimestamp:
        ASSERT_EQ(expected.value<int64_t>(i), actual.value<int64_t>(i)) << what << " row " << i;
        break;
      case TypeId::kUInt64:
        ASSERT_EQ(expected.value<uint64_t>(i), actual.value<uint64_t>(i)) << what << " row " << i;
        break;
      case TypeId::kFloat64: {
        double a = expected.value<double>(i), b = actual.value<double>(i);
        ASSERT_EQ(0, std::memcmp(&a, &b, sizeof(double))) << what << " row " << i;
        break;
      }
      case TypeId::kUtf8:
      case TypeId::kBinary:
        ASSERT_EQ(expected.string_view(i), actual.string_view(i)) << what << " row " << i;
        break;
    }
  }
}

inline void expect_same_batch(const RecordBatch& expected, const RecordBatch& actual,
                              const std::string& what) {
  ASSERT_EQ(expected.schema(), actual.schema()) << what;
  ASSERT_EQ(expected.num_rows(), actual.num_rows()) << what;
  for (int c = 0; c < expected.num_columns(); ++c) {
    expect_same_values(expected.column(c), actual.column(c),
                       what + " column " + expected.schema().field(c).name);
  }
}

}  // namespace sabot::columnar::testing
