// Builders append values one at a time or in bulk and finish into an immutable Array. Storage
// grows geometrically and reserve() makes appending allocation-free; the validity bitmap is only
// created when the first null arrives. A builder has one owner and is not thread-safe.
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string_view>

#include "sabot/columnar/array.h"

namespace sabot::columnar {

// The interface shared by every builder, for code that handles any type (decoders, concat).
class ArrayBuilder {
 public:
  explicit ArrayBuilder(DataType type) : type_(type) {}
  virtual ~ArrayBuilder() = default;

  const DataType& type() const { return type_; }
  int64_t length() const { return length_; }
  int64_t null_count() const { return null_count_; }

  virtual void reserve(int64_t additional) = 0;
  virtual void append_null() = 0;
  // The scalar's type must equal the builder's (checked).
  virtual void append_scalar(const Scalar& value) = 0;
  // Appends elements [offset, offset + length) of an array of the same type.
  virtual void append_array(const Array& array, int64_t offset, int64_t length) = 0;
  void append_array(const Array& array) { append_array(array, 0, array.length()); }
  // Hands out the array and resets the builder to empty.
  virtual Array finish() = 0;

 protected:
  // Validity bookkeeping shared by the concrete builders.
  void mark_valid() {
    if (validity_.size() > 0) ensure_validity_bit(length_, true);
  }
  void mark_null() {
    if (validity_.size() == 0) materialize_validity();
    ensure_validity_bit(length_, false);
    ++null_count_;
  }
  void mark_valid_range(int64_t n);
  void append_validity_from(const Array& array, int64_t offset, int64_t length);
  BufferPtr finish_validity();
  // Hands out the built array with these buffers and resets length and nulls.
  Array finish_array(BufferPtr values, BufferPtr data);
  void reserve_validity(int64_t additional);

  DataType type_;
  int64_t length_ = 0;
  int64_t null_count_ = 0;

 private:
  void materialize_validity();
  void ensure_validity_bit(int64_t i, bool v) {
    int64_t need = bits::bytes_for(i + 1);
    if (need > validity_.size()) validity_.resize(need + validity_.size());
    bits::set_to(validity_.data(), i, v);
  }
  MutableBuffer validity_;  // empty until the first null
};

template <typename T>
class NumericBuilder final : public ArrayBuilder {
 public:
  explicit NumericBuilder(DataType type);
  NumericBuilder();

  void reserve(int64_t additional) override {
    values_.reserve((length_ + additional) * static_cast<int64_t>(sizeof(T)));
    reserve_validity(additional);
  }
  void append(T v) {
    mark_valid();
    values_.append_value(v);
    ++length_;
  }
  // Appends without a capacity check; reserve() first.
  void unsafe_append(T v) {
    mark_valid();
    std::memcpy(values_.data() + values_.size(), &v, sizeof(T));
    values_.set_size_after_write(values_.size() + static_cast<int64_t>(sizeof(T)));
    ++length_;
  }
  void append_values(const T* v, int64_t n) {
    mark_valid_range(n);
    values_.append(v, n * static_cast<int64_t>(sizeof(T)));
    length_ += n;
  }
  void append_null() override {
    mark_null();
    values_.append_value(T{});
    ++length_;
  }
  void append_scalar(const Scalar& value) override;
  void append_array(const Array& array, int64_t offset, int64_t length) override;
  Array finish() override;

  // Direct access to the values written so far (for in-place updates by kernels).
  T* mutable_values() { return values_.data_as<T>(); }

 private:
  MutableBuffer values_;
};

using Int32Builder = NumericBuilder<int32_t>;
using Int64Builder = NumericBuilder<int64_t>;  // also for timestamps: pass timestamp(unit)
using UInt64Builder = NumericBuilder<uint64_t>;
using Float64Builder = NumericBuilder<double>;

class BooleanBuilder final : public ArrayBuilder {
 public:
  BooleanBuilder() : ArrayBuilder(boolean()) {}
  void reserve(int64_t additional) override;
  void append(bool v) {
    mark_valid();
    int64_t need = bits::bytes_for(length_ + 1);
    if (need > values_.size()) values_.resize(need);
    bits::set_to(values_.data(), length_, v);
    ++length_;
  }
  void append_null() override {
    mark_null();
    append_value_bit(false);
  }
  void append_scalar(const Scalar& value) override;
  void append_array(const Array& array, int64_t offset, int64_t length) override;
  Array finish() override;

 private:
  void append_value_bit(bool v) {
    int64_t need = bits::bytes_for(length_ + 1);
    if (need > values_.size()) values_.resize(need);
    bits::set_to(values_.data(), length_, v);
    ++length_;
  }
  MutableBuffer values_;
};

// utf8 or binary. Strings are checked for UTF-8 only by Array::validate_full, not on append.
class BinaryBuilder final : public ArrayBuilder {
 public:
  explicit BinaryBuilder(DataType type = utf8());
  void reserve(int64_t additional) override;
  void reserve_bytes(int64_t additional_bytes) { data_.reserve(data_.size() + additional_bytes); }
  void append(std::string_view v) {
    mark_valid();
    data_.append(v.data(), static_cast<int64_t>(v.size()));
    offsets_.append_value(static_cast<int32_t>(data_.size()));
    ++length_;
  }
  void append_null() override {
    mark_null();
    offsets_.append_value(static_cast<int32_t>(data_.size()));
    ++length_;
  }
  void append_scalar(const Scalar& value) override;
  void append_array(const Array& array, int64_t offset, int64_t length) override;
  Array finish() override;
  int64_t data_size() const { return data_.size(); }

 private:
  MutableBuffer offsets_;  // always holds length_ + 1 entries
  MutableBuffer data_;
};

using StringBuilder = BinaryBuilder;

// A builder for any supported type.
std::unique_ptr<ArrayBuilder> make_builder(DataType type);

// Convenience for tests and examples: arrays from initializer lists, nullopt for null.
Array make_array(DataType type, std::initializer_list<Scalar> values);
Array int64_array(std::initializer_list<std::optional<int64_t>> values);
Array int32_array(std::initializer_list<std::optional<int32_t>> values);
Array uint64_array(std::initializer_list<std::optional<uint64_t>> values);
Array float64_array(std::initializer_list<std::optional<double>> values);
Array bool_array(std::initializer_list<std::optional<bool>> values);
Array utf8_array(std::initializer_list<std::optional<std::string_view>> values);
Array binary_array(std::initializer_list<std::optional<std::string_view>> values);
Array timestamp_array(TimeUnit unit, std::initializer_list<std::optional<int64_t>> values);

}  // namespace sabot::columnar
