#include "sabot/columnar/builder.h"

#include "sabot/base/check.h"

namespace sabot::columnar {

// ---- validity bookkeeping ----

void ArrayBuilder::materialize_validity() {
  // First null: every earlier value was valid.
  int64_t bytes = bits::bytes_for(length_ + 1);
  validity_.resize(bytes < 8 ? 8 : bytes);
  bits::fill(validity_.data(), 0, length_, true);
}

void ArrayBuilder::reserve_validity(int64_t additional) {
  if (validity_.size() > 0) validity_.reserve(bits::bytes_for(length_ + additional));
}

void ArrayBuilder::mark_valid_range(int64_t n) {
  if (validity_.size() == 0 || n == 0) return;
  int64_t need = bits::bytes_for(length_ + n);
  if (need > validity_.size()) validity_.resize(need);
  bits::fill(validity_.data(), length_, n, true);
}

void ArrayBuilder::append_validity_from(const Array& array, int64_t offset, int64_t length) {
  const int64_t nulls = array.null_count() == 0 ? 0 : array.slice(offset, length).null_count();
  if (nulls == 0) {
    mark_valid_range(length);
    return;
  }
  if (validity_.size() == 0) materialize_validity();
  int64_t need = bits::bytes_for(length_ + length);
  if (need > validity_.size()) validity_.resize(need);
  bits::copy(array.validity_bits(), array.offset() + offset, length, validity_.data(), length_);
  null_count_ += nulls;
}

Array ArrayBuilder::finish_array(BufferPtr values, BufferPtr data) {
  auto d = std::make_shared<ArrayData>();
  d->type = type_;
  d->length = length_;
  d->null_count = null_count_;
  d->validity = finish_validity();
  d->values = std::move(values);
  d->data = std::move(data);
  length_ = 0;
  null_count_ = 0;
  return Array(std::move(d));
}

BufferPtr ArrayBuilder::finish_validity() {
  BufferPtr out;
  if (null_count_ > 0) out = validity_.finish();
  validity_ = MutableBuffer();
  return out;
}

// ---- numeric ----

namespace {

template <typename T>
DataType default_type();
template <>
DataType default_type<int32_t>() {
  return int32();
}
template <>
DataType default_type<int64_t>() {
  return int64();
}
template <>
DataType default_type<uint64_t>() {
  return uint64();
}
template <>
DataType default_type<double>() {
  return float64();
}

template <typename T>
bool storage_matches(const DataType& t) {
  return t.is_fixed_width() && t.id() != TypeId::kBool && t.bit_width() == 8 * sizeof(T) &&
         (std::is_floating_point_v<T> == (t.id() == TypeId::kFloat64)) &&
         (std::is_same_v<T, uint64_t> == (t.id() == TypeId::kUInt64));
}

void check_same_type(const DataType& builder, const DataType& value) {
  if (!(builder == value)) {
    SABOT_CHECK_EQ(builder.to_string(), value.to_string());
  }
}

}  // namespace

template <typename T>
NumericBuilder<T>::NumericBuilder() : NumericBuilder(default_type<T>()) {}

template <typename T>
NumericBuilder<T>::NumericBuilder(DataType type) : ArrayBuilder(type) {
  SABOT_CHECK(storage_matches<T>(type));
}

template <typename T>
void NumericBuilder<T>::append_scalar(const Scalar& value) {
  check_same_type(type_, value.type);
  if (!value.is_valid) return append_null();
  if constexpr (std::is_same_v<T, double>) {
    append(value.as_float64());
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    append(value.as_uint64());
  } else {
    append(static_cast<T>(value.as_int64()));
  }
}

template <typename T>
void NumericBuilder<T>::append_array(const Array& array, int64_t offset, int64_t length) {
  check_same_type(type_, array.type());
  SABOT_CHECK_LE(offset + length, array.length());
  append_validity_from(array, offset, length);
  values_.append(array.values<T>() + offset, length * static_cast<int64_t>(sizeof(T)));
  length_ += length;
}

template <typename T>
Array NumericBuilder<T>::finish() {
  return finish_array(values_.finish(), nullptr);
}

template class NumericBuilder<int32_t>;
template class NumericBuilder<int64_t>;
template class NumericBuilder<uint64_t>;
template class NumericBuilder<double>;

// ---- boolean ----

void BooleanBuilder::reserve(int64_t additional) {
  values_.reserve(bits::bytes_for(length_ + additional));
  reserve_validity(additional);
}

void BooleanBuilder::append_scalar(const Scalar& value) {
  check_same_type(type_, value.type);
  if (!value.is_valid) return append_null();
  append(value.as_bool());
}

void BooleanBuilder::append_array(const Array& array, int64_t offset, int64_t length) {
  check_same_type(type_, array.type());
  SABOT_CHECK_LE(offset + length, array.length());
  append_validity_from(array, offset, length);
  int64_t need = bits::bytes_for(length_ + length);
  if (need > values_.size()) values_.resize(need);
  bits::copy(array.bool_bits(), array.offset() + offset, length, values_.data(), length_);
  length_ += length;
}

Array BooleanBuilder::finish() { return finish_array(values_.finish(), nullptr); }

// ---- binary / utf8 ----

BinaryBuilder::BinaryBuilder(DataType type) : ArrayBuilder(type) {
  SABOT_CHECK(type.is_var_length());
  offsets_.append_value(int32_t{0});
}

void BinaryBuilder::reserve(int64_t additional) {
  offsets_.reserve((length_ + additional + 1) * 4);
  reserve_validity(additional);
}

void BinaryBuilder::append_scalar(const Scalar& value) {
  check_same_type(type_, value.type);
  if (!value.is_valid) return append_null();
  append(value.as_string());
}

void BinaryBuilder::append_array(const Array& array, int64_t offset, int64_t length) {
  check_same_type(type_, array.type());
  SABOT_CHECK_LE(offset + length, array.length());
  append_validity_from(array, offset, length);
  const int32_t* src = array.offsets() + offset;
  const int32_t first = src[0];
  const int32_t base = static_cast<int32_t>(data_.size());
  data_.append(array.raw_data() + first, src[length] - first);
  offsets_.reserve(offsets_.size() + length * 4);
  int32_t* dst = offsets_.data_as<int32_t>() + length_ + 1;
  for (int64_t i = 0; i < length; ++i) dst[i] = src[i + 1] - first + base;
  offsets_.set_size_after_write(offsets_.size() + length * 4);
  length_ += length;
}

Array BinaryBuilder::finish() {
  Array out = finish_array(offsets_.finish(), data_.finish());
  offsets_.append_value(int32_t{0});
  return out;
}

// ---- factories ----

std::unique_ptr<ArrayBuilder> make_builder(DataType type) {
  switch (type.id()) {
    case TypeId::kBool:
      return std::make_unique<BooleanBuilder>();
    case TypeId::kInt32:
      return std::make_unique<Int32Builder>(type);
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      return std::make_unique<Int64Builder>(type);
    case TypeId::kUInt64:
      return std::make_unique<UInt64Builder>(type);
    case TypeId::kFloat64:
      return std::make_unique<Float64Builder>(type);
    case TypeId::kUtf8:
    case TypeId::kBinary:
      return std::make_unique<BinaryBuilder>(type);
  }
  SABOT_CHECK(false);
  return nullptr;
}

Array make_array(DataType type, std::initializer_list<Scalar> values) {
  auto b = make_builder(type);
  for (const Scalar& v : values) b->append_scalar(v);
  return b->finish();
}

namespace {
template <typename Builder, typename T>
Array build_from(Builder b, std::initializer_list<std::optional<T>> values) {
  for (const auto& v : values) {
    if (v) {
      b.append(*v);
    } else {
      b.append_null();
    }
  }
  return b.finish();
}
}  // namespace

Array int64_array(std::initializer_list<std::optional<int64_t>> values) {
  return build_from(Int64Builder(), values);
}
Array int32_array(std::initializer_list<std::optional<int32_t>> values) {
  return build_from(Int32Builder(), values);
}
Array uint64_array(std::initializer_list<std::optional<uint64_t>> values) {
  return build_from(UInt64Builder(), values);
}
Array float64_array(std::initializer_list<std::optional<double>> values) {
  return build_from(Float64Builder(), values);
}
Array bool_array(std::initializer_list<std::optional<bool>> values) {
  return build_from(BooleanBuilder(), values);
}
Array utf8_array(std::initializer_list<std::optional<std::string_view>> values) {
  return build_from(BinaryBuilder(utf8()), values);
}
Array binary_array(std::initializer_list<std::optional<std::string_view>> values) {
  return build_from(BinaryBuilder(binary()), values);
}
Array timestamp_array(TimeUnit unit, std::initializer_list<std::optional<int64_t>> values) {
  return build_from(Int64Builder(timestamp(unit)), values);
}

}  // namespace sabot::columnar
