// A minimal FlatBuffers writer and a bounds-checked reader, enough for Arrow IPC metadata (no
// external flatbuffers library is available). The writer builds a small tree of tables and lays it
// out front to back; the reader checks every offset against the buffer before it follows it and
// reports the byte offset of what was wrong. Internal to the columnar module; not thread-safe
// (values, one owner each).
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "sabot/base/status.h"

namespace sabot::columnar::fb {

// A table under construction. Fields are identified by their id in the schema (declaration order;
// a union takes two ids: the type byte, then the value table).
class TableBuilder {
 public:
  template <typename T>
  void add_scalar(int id, T value) {
    static_assert(std::is_arithmetic_v<T> && sizeof(T) <= 8);
    Entry e;
    e.kind = Kind::kScalar;
    e.id = id;
    e.size = sizeof(T);
    std::memcpy(&e.scalar, &value, sizeof(T));
    entries_.push_back(std::move(e));
  }
  void add_string(int id, std::string_view value);
  void add_table(int id, TableBuilder table);
  void add_table_vector(int id, std::vector<TableBuilder> tables);
  // A vector of structs given as raw little-endian bytes: count * struct_size bytes.
  void add_struct_vector(int id, const void* data, int64_t count, int struct_size, int alignment);

  // Serializes with this table as the root: [uoffset root][tables, vectors, strings...].
  std::vector<uint8_t> finish() const;
  // Appends the serialized root to `out` (which may already hold bytes: offsets stay relative to
  // the start of `out` at entry).
  void finish_into(std::vector<uint8_t>* out) const;

 private:
  enum class Kind : uint8_t { kScalar, kString, kTable, kTableVector, kStructVector };
  struct Entry {
    Kind kind = Kind::kScalar;
    int id = 0;
    int size = 0;  // scalar byte size
    uint64_t scalar = 0;
    std::string bytes;                 // string or struct-vector bytes
    int64_t count = 0;                 // struct-vector element count
    int alignment = 4;                 // struct-vector element alignment
    std::vector<TableBuilder> tables;  // one for kTable, any number for kTableVector
  };
  // Writes the table at the end of `out`; returns the table's position (relative to `base`).
  size_t write(std::vector<uint8_t>* out, size_t base) const;

  std::vector<Entry> entries_;
};

// A read-only view of a table inside a verified-on-access buffer.
class Table;

// A vector inside the buffer: `count` elements of `element_size` bytes starting at `pos`.
struct Vector {
  uint32_t pos = 0;
  uint32_t count = 0;
};

class Table {
 public:
  Table() = default;
  // The root table of `data` (data must stay alive while the Table is used).
  static Result<Table> root(const uint8_t* data, size_t size);

  // A scalar field, or `fallback` when absent.
  template <typename T>
  Result<T> scalar(int id, T fallback) const {
    SABOT_ASSIGN_OR_RETURN(uint32_t pos, field_position(id, sizeof(T)));
    if (pos == 0) return fallback;
    T v;
    std::memcpy(&v, data_ + pos, sizeof(T));
    return v;
  }
  Result<std::optional<Table>> table(int id) const;
  Result<std::optional<std::string_view>> string(int id) const;
  // A vector of elements of `element_size` bytes (4 for vectors of tables).
  Result<std::optional<Vector>> vector(int id, uint32_t element_size) const;
  // Element `i` of a vector of tables.
  Result<Table> table_at(const Vector& v, uint32_t i) const;
  // Raw element bytes of a vector of structs (size checked when the vector was read).
  const uint8_t* element(const Vector& v, uint32_t i, uint32_t element_size) const {
    return data_ + v.pos + static_cast<size_t>(i) * element_size;
  }
  uint32_t position() const { return pos_; }

 private:
  Table(const uint8_t* data, size_t size, uint32_t pos) : data_(data), size_(size), pos_(pos) {}
  static Result<Table> at(const uint8_t* data, size_t size, uint32_t pos);
  // Absolute position of field `id` (0 when absent), checked to hold `size` bytes.
  Result<uint32_t> field_position(int id, size_t size) const;
  // Follows the uoffset stored in field `id`; 0 when absent.
  Result<uint32_t> follow(int id) const;

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint32_t pos_ = 0;
  uint32_t vtable_ = 0;
  uint16_t vtable_size_ = 0;
  uint16_t inline_size_ = 0;
};

}  // namespace sabot::columnar::fb
