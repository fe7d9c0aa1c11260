// Data types, fields and schemas of Sabot's columnar batches, in the Arrow type system.
// DataType and Field are small values; a Schema is immutable and shared between batches through
// SchemaPtr (sharing is the point: every batch of a stream points at one schema).
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/status.h"
#include "sabot/base/time_unit.h"

namespace sabot::columnar {

enum class TypeId : uint8_t {
  kBool,
  kInt32,
  kInt64,
  kUInt64,
  kFloat64,
  kUtf8,       // variable length, int32 offsets, valid UTF-8 by contract
  kBinary,     // variable length, int32 offsets, any bytes
  kTimestamp,  // int64 since the Unix epoch, in the type's TimeUnit, no time zone
};

// Timestamp units are the base module's, so that time conversion (sabot/base/time_unit.h) needs
// nothing from columnar.
using TimeUnit = sabot::TimeUnit;

class DataType {
 public:
  constexpr DataType() = default;
  constexpr explicit DataType(TypeId id, TimeUnit unit = TimeUnit::kMilli) : id_(id), unit_(unit) {}

  constexpr TypeId id() const { return id_; }
  // Only meaningful for kTimestamp.
  constexpr TimeUnit unit() const { return unit_; }

  // Bits per value in the values buffer: 1 for bool, 32 or 64 for fixed width, 0 for var-length.
  int bit_width() const;
  bool is_fixed_width() const { return id_ != TypeId::kUtf8 && id_ != TypeId::kBinary; }
  bool is_var_length() const { return !is_fixed_width(); }
  bool is_integer() const {
    return id_ == TypeId::kInt32 || id_ == TypeId::kInt64 || id_ == TypeId::kUInt64;
  }
  bool is_numeric() const { return is_integer() || id_ == TypeId::kFloat64; }
  // Number of buffers in the Arrow layout (validity included): 2 for fixed width, 3 for var-length.
  int num_buffers() const { return is_var_length() ? 3 : 2; }

  std::string to_string() const;  // "int64", "timestamp[ms]", ...

  constexpr bool operator==(const DataType& o) const {
    return id_ == o.id_ && (id_ != TypeId::kTimestamp || unit_ == o.unit_);
  }

 private:
  TypeId id_ = TypeId::kInt64;
  TimeUnit unit_ = TimeUnit::kMilli;
};

inline std::ostream& operator<<(std::ostream& os, const DataType& t) { return os << t.to_string(); }

constexpr DataType boolean() { return DataType(TypeId::kBool); }
constexpr DataType int32() { return DataType(TypeId::kInt32); }
constexpr DataType int64() { return DataType(TypeId::kInt64); }
constexpr DataType uint64() { return DataType(TypeId::kUInt64); }
constexpr DataType float64() { return DataType(TypeId::kFloat64); }
constexpr DataType utf8() { return DataType(TypeId::kUtf8); }
constexpr DataType binary() { return DataType(TypeId::kBinary); }
constexpr DataType timestamp(TimeUnit unit) { return DataType(TypeId::kTimestamp, unit); }

// Parses the to_string() form back ("int64", "timestamp[us]").
Result<DataType> parse_data_type(std::string_view text);

struct Field {
  std::string name;
  DataType type;
  bool nullable = true;

  std::string to_string() const;  // "price: int64" or "id: int64 not null"
  bool operator==(const Field& o) const = default;
};

inline Field field(std::string name, DataType type, bool nullable = true) {
  return Field{std::move(name), type, nullable};
}

class Schema;
using SchemaPtr = std::shared_ptr<const Schema>;

class Schema {
 public:
  explicit Schema(std::vector<Field> fields) : fields_(std::move(fields)) {}
  // Refuses empty or duplicate field names.
  static Result<SchemaPtr> make(std::vector<Field> fields);

  int num_fields() const { return static_cast<int>(fields_.size()); }
  const Field& field(int i) const { return fields_[static_cast<size_t>(i)]; }
  const std::vector<Field>& fields() const { return fields_; }
  // -1 when absent.
  int field_index(std::string_view name) const;
  // NotFound names the column and lists the ones that exist.
  Result<int> require_field_index(std::string_view name) const;

  std::string to_string() const;  // one field per line
  bool operator==(const Schema& o) const { return fields_ == o.fields_; }

 private:
  std::vector<Field> fields_;
};

// Builds a schema without validation, for literals in code and tests.
inline SchemaPtr schema(std::vector<Field> fields) {
  return std::make_shared<const Schema>(std::move(fields));
}

}  // namespace sabot::columnar
