// Arrays in the Arrow memory layout: a validity bitmap (absent when there are no nulls), a values
// buffer (bits for bool, fixed-width values, or int32 offsets for utf8/binary) and, for
// variable-length types, a data buffer. An Array is an immutable, cheaply copyable handle
// (one shared_ptr); slices share buffers. Safe to read from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sabot/base/status.h"
#include "sabot/columnar/bitmap.h"
#include "sabot/columnar/buffer.h"
#include "sabot/columnar/scalar.h"
#include "sabot/columnar/type.h"

namespace sabot::columnar {

// The C++ value type of each fixed-width type.
template <TypeId id>
struct CTypeOf;
template <>
struct CTypeOf<TypeId::kBool> {
  using type = bool;
};
template <>
struct CTypeOf<TypeId::kInt32> {
  using type = int32_t;
};
template <>
struct CTypeOf<TypeId::kInt64> {
  using type = int64_t;
};
template <>
struct CTypeOf<TypeId::kUInt64> {
  using type = uint64_t;
};
template <>
struct CTypeOf<TypeId::kFloat64> {
  using type = double;
};
template <>
struct CTypeOf<TypeId::kTimestamp> {
  using type = int64_t;
};
template <TypeId id>
using CType = typename CTypeOf<id>::type;

struct ArrayData {
  DataType type;
  int64_t length = 0;
  int64_t offset = 0;      // in elements (bits for bool), applies to validity and values
  int64_t null_count = 0;  // exact; 0 when validity is null
  BufferPtr validity;      // null: every value is valid
  BufferPtr values;        // bool bits, fixed-width values, or (length+offset+1) int32 offsets
  BufferPtr data;          // utf8/binary bytes; null for fixed-width types
};

class Array {
 public:
  // An empty int64 array.
  Array();
  explicit Array(std::shared_ptr<const ArrayData> data) : data_(std::move(data)) {}

  // Validates buffer sizes, offsets and null count against the type and length.
  static Result<Array> make(DataType type, int64_t length, BufferPtr validity, BufferPtr values,
                            BufferPtr data = nullptr, int64_t offset = 0,
                            int64_t null_count = -1 /* computed */);
  // An array of `length` nulls.
  static Array make_null(DataType type, int64_t length);
  // An array of `length` copies of `value`.
  static Array make_repeated(const Scalar& value, int64_t length);
  static Array make_empty(DataType type) { return make_null(type, 0); }

  const DataType& type() const { return data_->type; }
  int64_t length() const { return data_->length; }
  int64_t offset() const { return data_->offset; }
  int64_t null_count() const { return data_->null_count; }
  const ArrayData& data() const { return *data_; }
  const std::shared_ptr<const ArrayData>& data_ptr() const { return data_; }

  // Validity bitmap or null; index it with offset() + i.
  const uint8_t* validity_bits() const {
    return data_->validity ? data_->validity->data() : nullptr;
  }
  bool is_valid(int64_t i) const {
    return data_->null_count == 0 || bits::get(data_->validity->data(), data_->offset + i);
  }
  bool is_null(int64_t i) const { return !is_valid(i); }

  // Fixed-width values, already adjusted by offset(): values<int64_t>()[i] is element i.
  template <typename T>
  const T* values() const {
    return data_->values->data_as<T>() + data_->offset;
  }
  template <typename T>
  T value(int64_t i) const {
    return values<T>()[i];
  }
  // Boolean value bits; index with offset() + i.
  const uint8_t* bool_bits() const { return data_->values->data(); }
  bool bool_value(int64_t i) const { return bits::get(data_->values->data(), data_->offset + i); }
  // Offsets for utf8/binary, adjusted: element i spans [offsets()[i], offsets()[i+1]) of
  // raw_data().
  const int32_t* offsets() const { return data_->values->data_as<int32_t>() + data_->offset; }
  const uint8_t* raw_data() const { return data_->data ? data_->data->data() : nullptr; }
  std::string_view string_view(int64_t i) const {
    const int32_t* o = offsets();
    return std::string_view(reinterpret_cast<const char*>(raw_data()) + o[i],
                            static_cast<size_t>(o[i + 1] - o[i]));
  }

  // Zero-copy view of [offset, offset + length). Checks bounds (always on).
  Array slice(int64_t offset, int64_t length) const;
  Scalar scalar_at(int64_t i) const;

  // Logical equality: same type, length, nulls and values (offsets and buffers may differ).
  bool equals(const Array& other) const;
  // "[1, null, 3]"; at most `max_values` shown.
  std::string to_string(int64_t max_values = 20) const;

  // Checks the full layout (offsets monotonic and in bounds, utf8 valid); for imported data.
  Status validate_full() const;

 private:
  std::shared_ptr<const ArrayData> data_;
};

// True when `text` is valid UTF-8.
bool is_valid_utf8(std::string_view text);

}  // namespace sabot::columnar
