#include "sabot/columnar/array.h"

#include <cmath>
#include <cstring>

#include "sabot/base/check.h"
#include "sabot/columnar/builder.h"

namespace sabot::columnar {
namespace {

std::string describe(const DataType& type, int64_t length) {
  return type.to_string() + " array of length " + std::to_string(length);
}

}  // namespace

Array::Array()
    : data_(std::make_shared<const ArrayData>(
          ArrayData{int64(), 0, 0, 0, nullptr, Buffer::allocate(0), nullptr})) {}

Result<Array> Array::make(DataType type, int64_t length, BufferPtr validity, BufferPtr values,
                          BufferPtr data, int64_t offset, int64_t null_count) {
  if (length < 0 || offset < 0) {
    return Status::invalid_argument("negative length or offset for " + describe(type, length));
  }
  if (values == nullptr) {
    return Status::invalid_argument("missing values buffer for " + describe(type, length));
  }
  const int64_t end = offset + length;
  if (validity != nullptr && validity->size() < bits::bytes_for(end)) {
    return Status::invalid_argument("validity bitmap of " + std::to_string(validity->size()) +
                                    " bytes is too small for " + describe(type, length) +
                                    " at offset " + std::to_string(offset));
  }
  if (type.is_var_length()) {
    if (values->size() < (end + 1) * 4) {
      return Status::invalid_argument("offsets buffer too small for " + describe(type, length));
    }
    if (data == nullptr) data = Buffer::allocate(0);
    const int32_t* o = values->data_as<int32_t>();
    if (o[end] < o[offset] || o[offset] < 0 || o[end] > data->size()) {
      return Status::invalid_argument("offsets of " + describe(type, length) +
                                      " point outside the data buffer");
    }
  } else {
    int64_t need = type.id() == TypeId::kBool ? bits::bytes_for(end) : end * (type.bit_width() / 8);
    if (values->size() < need) {
      return Status::invalid_argument("values buffer of " + std::to_string(values->size()) +
                                      " bytes is too small for " + describe(type, length));
    }
  }
  if (validity == nullptr) {
    null_count = 0;
  } else {
    int64_t computed = length - bits::count_set(validity->data(), offset, length);
    if (null_count >= 0 && null_count != computed) {
      return Status::invalid_argument("null count " + std::to_string(null_count) +
                                      " disagrees with the validity bitmap (" +
                                      std::to_string(computed) + ")");
    }
    null_count = computed;
    if (null_count == 0) validity = nullptr;
  }
  return Array(std::make_shared<const ArrayData>(ArrayData{
      type, length, offset, null_count, std::move(validity), std::move(values), std::move(data)}));
}

Array Array::make_null(DataType type, int64_t length) {
  auto validity = Buffer::allocate(bits::bytes_for(length));  // zeroed: all null
  BufferPtr values;
  BufferPtr data;
  if (type.is_var_length()) {
    values = Buffer::allocate((length + 1) * 4);
    data = Buffer::allocate(0);
  } else if (type.id() == TypeId::kBool) {
    values = Buffer::allocate(bits::bytes_for(length));
  } else {
    values = Buffer::allocate(length * (type.bit_width() / 8));
  }
  return Array(std::make_shared<const ArrayData>(
      ArrayData{type, length, 0, length, length > 0 ? BufferPtr(validity) : nullptr,
                std::move(values), std::move(data)}));
}

Array Array::make_repeated(const Scalar& value, int64_t length) {
  if (!value.is_valid) return make_null(value.type, length);
  auto builder = make_builder(value.type);
  builder->reserve(length);
  for (int64_t i = 0; i < length; ++i) builder->append_scalar(value);
  return builder->finish();
}

Array Array::slice(int64_t offset, int64_t length) const {
  SABOT_CHECK_GE(offset, 0);
  SABOT_CHECK_GE(length, 0);
  SABOT_CHECK_LE(offset + length, data_->length);
  ArrayData d = *data_;
  d.offset = data_->offset + offset;
  d.length = length;
  if (data_->null_count == 0) {
    d.null_count = 0;
  } else if (offset == 0 && length == data_->length) {
    d.null_count = data_->null_count;
  } else {
    d.null_count = length - bits::count_set(data_->validity->data(), d.offset, length);
  }
  return Array(std::make_shared<const ArrayData>(std::move(d)));
}

Scalar Array::scalar_at(int64_t i) const {
  SABOT_CHECK_GE(i, 0);
  SABOT_CHECK_LT(i, length());
  const DataType& t = type();
  if (is_null(i)) return Scalar::null(t);
  switch (t.id()) {
    case TypeId::kBool:
      return Scalar{t, true, bool_value(i)};
    case TypeId::kInt32:
      return Scalar{t, true, int64_t{value<int32_t>(i)}};
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      return Scalar{t, true, value<int64_t>(i)};
    case TypeId::kUInt64:
      return Scalar{t, true, value<uint64_t>(i)};
    case TypeId::kFloat64:
      return Scalar{t, true, value<double>(i)};
    case TypeId::kUtf8:
    case TypeId::kBinary:
      return Scalar{t, true, std::string(string_view(i))};
  }
  return Scalar::null(t);
}

bool Array::equals(const Array& other) const {
  if (!(type() == other.type()) || length() != other.length() ||
      null_count() != other.null_count()) {
    return false;
  }
  const int64_t n = length();
  for (int64_t i = 0; i < n; ++i) {
    if (is_valid(i) != other.is_valid(i)) return false;
  }
  switch (type().id()) {
    case TypeId::kBool:
      for (int64_t i = 0; i < n; ++i) {
        if (is_valid(i) && bool_value(i) != other.bool_value(i)) return false;
      }
      return true;
    case TypeId::kInt32:
      for (int64_t i = 0; i < n; ++i) {
        if (is_valid(i) && value<int32_t>(i) != other.value<int32_t>(i)) return false;
      }
      return true;
    case TypeId::kInt64:
    case TypeId::kUInt64:
    case TypeId::kTimestamp:
      for (int64_t i = 0; i < n; ++i) {
        if (is_valid(i) && value<int64_t>(i) != other.value<int64_t>(i)) return false;
      }
      return true;
    case TypeId::kFloat64:
      // Bitwise-equal or both NaN: equality of data, not IEEE comparison.
      for (int64_t i = 0; i < n; ++i) {
        if (!is_valid(i)) continue;
        double a = value<double>(i), b = other.value<double>(i);
        if (!(a == b || (std::isnan(a) && std::isnan(b)))) return false;
      }
      return true;
    case TypeId::kUtf8:
    case TypeId::kBinary:
      for (int64_t i = 0; i < n; ++i) {
        if (is_valid(i) && string_view(i) != other.string_view(i)) return false;
      }
      return true;
  }
  return false;
}

std::string Array::to_string(int64_t max_values) const {
  std::string out = "[";
  const int64_t n = length();
  const int64_t shown = n < max_values ? n : max_values;
  for (int64_t i = 0; i < shown; ++i) {
    if (i > 0) out += ", ";
    out += scalar_at(i).to_string();
  }
  if (shown < n) out += ", ... " + std::to_string(n - shown) + " more";
  out += "]";
  return out;
}

Status Array::validate_full() const {
  const DataType& t = type();
  if (t.is_var_length()) {
    const int32_t* o = offsets();
    const int64_t data_size = data_->data ? data_->data->size() : 0;
    for (int64_t i = 0; i < length(); ++i) {
      if (o[i] < 0 || o[i + 1] < o[i] || o[i + 1] > data_size) {
        return Status::invalid_data("offsets of " + describe(t, length()) +
                                    " are not monotonic or exceed the data at element " +
                                    std::to_string(i));
      }
      if (t.id() == TypeId::kUtf8 && is_valid(i) && !is_valid_utf8(string_view(i))) {
        return Status::invalid_data("element " + std::to_string(i) + " of " +
                                    describe(t, length()) + " is not valid UTF-8");
      }
    }
  }
  if (data_->validity) {
    int64_t computed = length() - bits::count_set(data_->validity->data(), offset(), length());
    if (computed != null_count()) {
      return Status::invalid_data("null count " + std::to_string(null_count()) +
                                  " disagrees with the validity bitmap (" +
                                  std::to_string(computed) + ")");
    }
  } else if (null_count() != 0) {
    return Status::invalid_data("null count is " + std::to_string(null_count()) +
                                " but there is no validity bitmap");
  }
  return Status::ok();
}

bool is_valid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // Skip ASCII eight bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, s + i, 8);
      if (w & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= n) break;
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and values beyond U+10FFFF are invalid.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += len;
  }
  return true;
}

}  // namespace sabot::columnar
