// A single typed value that may be null: literals in expressions, aggregate results, cells of a
// batch read one at a time. Not for hot paths; kernels work on whole arrays.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "sabot/columnar/type.h"

namespace sabot::columnar {

struct Scalar {
  DataType type;
  bool is_valid = false;
  // bool for kBool; int64_t for kInt32, kInt64, kTimestamp; uint64_t for kUInt64; double for
  // kFloat64; std::string for kUtf8 and kBinary.
  std::variant<bool, int64_t, uint64_t, double, std::string> value;

  static Scalar null(DataType t) { return Scalar{t, false, int64_t{0}}; }
  static Scalar of_bool(bool v) { return Scalar{boolean(), true, v}; }
  static Scalar of_int32(int32_t v) { return Scalar{int32(), true, int64_t{v}}; }
  static Scalar of_int64(int64_t v) { return Scalar{int64(), true, v}; }
  static Scalar of_uint64(uint64_t v) { return Scalar{uint64(), true, v}; }
  static Scalar of_float64(double v) { return Scalar{float64(), true, v}; }
  static Scalar of_utf8(std::string v) { return Scalar{utf8(), true, std::move(v)}; }
  static Scalar of_binary(std::string v) { return Scalar{binary(), true, std::move(v)}; }
  static Scalar of_timestamp(int64_t v, TimeUnit unit) { return Scalar{timestamp(unit), true, v}; }

  bool as_bool() const { return std::get<bool>(value); }
  int64_t as_int64() const { return std::get<int64_t>(value); }
  uint64_t as_uint64() const { return std::get<uint64_t>(value); }
  double as_float64() const { return std::get<double>(value); }
  const std::string& as_string() const { return std::get<std::string>(value); }

  // "null", "42", "3.5", "\"text\"" (strings quoted, binary as hex).
  std::string to_string() const;
  bool operator==(const Scalar& o) const {
    return type == o.type && is_valid == o.is_valid && (!is_valid || value == o.value);
  }
};

}  // namespace sabot::columnar
