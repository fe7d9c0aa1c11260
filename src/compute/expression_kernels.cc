#include "compute/expression_kernels.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>

#include "sabot/base/check.h"
#include "sabot/columnar/bitmap.h"
#include "sabot/columnar/buffer.h"
#include "sabot/columnar/builder.h"

namespace sabot::compute::detail {

using columnar::Array;
using columnar::ArrayData;
using columnar::Buffer;
using columnar::BufferPtr;
using columnar::DataType;
using columnar::Scalar;
using columnar::TypeId;
namespace bits = columnar::bits;

Array Datum::to_array(int64_t length) const {
  return is_scalar ? repeat_scalar(scalar, length) : array;
}

namespace {

// ---------------------------------------------------------------------------------------------
// Validity and output helpers

struct Validity {
  BufferPtr bits;  // offset 0; null when every row is valid
  int64_t null_count = 0;
};

// The validity of `a` re-based to offset 0: shared when the offset is byte aligned, copied
// otherwise.
Validity validity_of(const Array& a) {
  if (a.null_count() == 0) return {};
  const int64_t n = a.length();
  const int64_t off = a.offset();
  if ((off & 7) == 0) {
    return {Buffer::slice(a.data().validity, off / 8, bits::bytes_for(n)), a.null_count()};
  }
  auto buf = Buffer::allocate(bits::bytes_for(n));
  bits::copy(a.validity_bits(), off, n, buf->mutable_data(), 0);
  return {std::move(buf), a.null_count()};
}

// AND of the validity of two equal-length arrays, word at a time.
Validity and_validity(const Array& a, const Array& b) {
  if (a.null_count() == 0) return validity_of(b);
  if (b.null_count() == 0) return validity_of(a);
  const int64_t n = a.length();
  auto buf = Buffer::allocate(bits::bytes_for(n));
  bits::and_bitmaps(a.validity_bits(), a.offset(), b.validity_bits(), b.offset(), n,
                    buf->mutable_data());
  int64_t nulls = n - bits::count_set(buf->data(), 0, n);
  return {std::move(buf), nulls};
}

Validity validity_of(const Datum& d) { return d.is_scalar ? Validity{} : validity_of(d.array); }

Validity and_validity(const Datum& a, const Datum& b) {
  if (a.is_scalar) return validity_of(b);
  if (b.is_scalar) return validity_of(a);
  return and_validity(a.array, b.array);
}

// ANDs `mask` (offset 0, `n` bits) into `v`.
void and_into(Validity& v, const BufferPtr& mask, int64_t n) {
  if (!v.bits) {
    v.bits = mask;
  } else {
    auto buf = Buffer::allocate(bits::bytes_for(n));
    bits::and_bitmaps(v.bits->data(), 0, mask->data(), 0, n, buf->mutable_data());
    v.bits = std::move(buf);
  }
  v.null_count = n - bits::count_set(v.bits->data(), 0, n);
  if (v.null_count == 0) v.bits = nullptr;
}

Array make_array(DataType type, int64_t length, Validity validity, BufferPtr values,
                 BufferPtr data = nullptr) {
  return Array(std::make_shared<const ArrayData>(ArrayData{type, length, 0, validity.null_count,
                                                           std::move(validity.bits),
                                                           std::move(values), std::move(data)}));
}

// A zeroed buffer for `n` bits, rounded to whole 64-bit words so kernels can store full words.
std::shared_ptr<Buffer> allocate_bits(int64_t n) { return Buffer::allocate(((n + 63) / 64) * 8); }

template <typename T>
T scalar_value(const Scalar& s) {
  if constexpr (std::is_same_v<T, bool>) {
    return s.as_bool();
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    return s.as_uint64();
  } else if constexpr (std::is_same_v<T, double>) {
    return s.as_float64();
  } else {
    return static_cast<T>(s.as_int64());
  }
}

// ---------------------------------------------------------------------------------------------
// Operand accessors: the kernels are written once over `x[i]` and instantiated for array and
// scalar operands, so a literal is never broadcast into an array.

template <typename T>
struct ArrayRef {
  const T* p;
  T operator[](int64_t i) const { return p[i]; }
};
template <typename T>
struct ScalarRef {
  T v;
  T operator[](int64_t) const { return v; }
};
struct StringArrayRef {
  const int32_t* offsets;
  const char* data;
  std::string_view operator[](int64_t i) const {
    return std::string_view(data + offsets[i], static_cast<size_t>(offsets[i + 1] - offsets[i]));
  }
};
struct StringScalarRef {
  std::string_view v;
  std::string_view operator[](int64_t) const { return v; }
};

StringArrayRef string_ref(const Array& a) {
  return StringArrayRef{a.offsets(), reinterpret_cast<const char*>(a.raw_data())};
}

// Calls f(accessor) for a fixed-width or string datum.
template <typename T, typename F>
void with_ref(const Datum& d, F&& f) {
  if constexpr (std::is_same_v<T, std::string_view>) {
    if (d.is_scalar) {
      f(StringScalarRef{d.scalar.as_string()});
    } else {
      f(string_ref(d.array));
    }
  } else {
    if (d.is_scalar) {
      f(ScalarRef<T>{scalar_value<T>(d.scalar)});
    } else {
      f(ArrayRef<T>{d.array.values<T>()});
    }
  }
}

// Writes pred(i) for i in [0, n) as bits: 64 results go to a byte array (which vectorizes) and are
// packed into one word.
template <typename Pred>
void write_bits(int64_t n, uint8_t* out, Pred pred) {
  alignas(64) uint8_t tmp[64];
  int64_t base = 0;
  for (; base + 64 <= n; base += 64) {
    for (int j = 0; j < 64; ++j) tmp[j] = static_cast<uint8_t>(pred(base + j));
    uint64_t word = 0;
    for (int k = 0; k < 8; ++k) {
      uint64_t eight;
      std::memcpy(&eight, tmp + 8 * k, 8);
      word |= uint64_t{pack_bytes8(eight)} << (8 * k);
    }
    std::memcpy(out + base / 8, &word, 8);
  }
  if (base < n) {
    uint64_t word = 0;
    for (int64_t j = 0; base + j < n; ++j) word |= uint64_t{pred(base + j) ? 1u : 0u} << j;
    std::memcpy(out + base / 8, &word, 8);  // the buffer holds whole words
  }
}

// ---------------------------------------------------------------------------------------------
// Comparison

template <typename T, typename Op>
void compare_typed(const Datum& l, const Datum& r, int64_t n, uint8_t* out) {
  with_ref<T>(l, [&](auto lr) {
    with_ref<T>(
        r, [&](auto rr) { write_bits(n, out, [&](int64_t i) { return Op{}(lr[i], rr[i]); }); });
  });
}

template <typename T>
void compare_dispatch_op(BinaryOp op, const Datum& l, const Datum& r, int64_t n, uint8_t* out) {
  switch (op) {
    case BinaryOp::kEq:
      return compare_typed<T, std::equal_to<>>(l, r, n, out);
    case BinaryOp::kNe:
      return compare_typed<T, std::not_equal_to<>>(l, r, n, out);
    case BinaryOp::kLt:
      return compare_typed<T, std::less<>>(l, r, n, out);
    case BinaryOp::kLe:
      return compare_typed<T, std::less_equal<>>(l, r, n, out);
    case BinaryOp::kGt:
      return compare_typed<T, std::greater<>>(l, r, n, out);
    case BinaryOp::kGe:
      return compare_typed<T, std::greater_equal<>>(l, r, n, out);
    default:
      SABOT_CHECK(false && "not a comparison");
  }
}

// Bools are bit-packed already: compare whole words.
uint64_t bool_word(const Datum& d, int64_t i, int64_t avail) {
  if (d.is_scalar) return d.scalar.as_bool() ? ~uint64_t{0} : 0;
  return bits::load_word(d.array.bool_bits(), d.array.offset() + i, avail);
}

void compare_bool(BinaryOp op, const Datum& l, const Datum& r, int64_t n, uint8_t* out) {
  for (int64_t i = 0; i < n; i += 64) {
    uint64_t a = bool_word(l, i, n - i);
    uint64_t b = bool_word(r, i, n - i);
    uint64_t w = 0;
    switch (op) {
      case BinaryOp::kEq:
        w = ~(a ^ b);
        break;
      case BinaryOp::kNe:
        w = a ^ b;
        break;
      case BinaryOp::kLt:
        w = ~a & b;
        break;
      case BinaryOp::kLe:
        w = ~a | b;
        break;
      case BinaryOp::kGt:
        w = a & ~b;
        break;
      case BinaryOp::kGe:
        w = a | ~b;
        break;
      default:
        SABOT_CHECK(false && "not a comparison");
    }
    if (n - i < 64) w &= (uint64_t{1} << (n - i)) - 1;
    std::memcpy(out + i / 8, &w, 8);
  }
}

// ---------------------------------------------------------------------------------------------
// Arithmetic

template <typename T>
struct UnsignedOf {
  using type = T;
};
template <std::integral T>
struct UnsignedOf<T> {
  using type = std::make_unsigned_t<T>;
};
template <typename T>
using Unsigned = typename UnsignedOf<T>::type;

// Integer ops go through the unsigned type so that overflow wraps instead of being undefined.
struct AddOp {
  template <typename T>
  T operator()(T a, T b) const {
    return static_cast<T>(static_cast<Unsigned<T>>(a) + static_cast<Unsigned<T>>(b));
  }
};
struct SubOp {
  template <typename T>
  T operator()(T a, T b) const {
    return static_cast<T>(static_cast<Unsigned<T>>(a) - static_cast<Unsigned<T>>(b));
  }
};
struct MulOp {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      // int32 * int32 promotes to int; multiply in uint64 to keep it defined.
      return static_cast<T>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
    } else {
      return a * b;
    }
  }
};
// Callers mask out rows whose divisor is zero; those compute a harmless 0.
struct DivOp {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_floating_point_v<T>) {
      return a / b;
    } else if constexpr (std::is_signed_v<T>) {
      if (b == 0) return 0;
      if (b == -1) return static_cast<T>(Unsigned<T>{0} - static_cast<Unsigned<T>>(a));
      return a / b;
    } else {
      return b == 0 ? 0 : a / b;
    }
  }
};
struct ModOp {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_floating_point_v<T>) {
      return std::fmod(a, b);
    } else if constexpr (std::is_signed_v<T>) {
      return (b == 0 || b == -1) ? 0 : a % b;
    } else {
      return b == 0 ? 0 : a % b;
    }
  }
};

template <typename T, typename Op>
void arithmetic_typed(const Datum& l, const Datum& r, int64_t n, T* out) {
  with_ref<T>(l, [&](auto lr) {
    with_ref<T>(r, [&](auto rr) {
      for (int64_t i = 0; i < n; ++i) out[i] = Op{}(lr[i], rr[i]);
    });
  });
}

template <typename T>
Array arithmetic_t(BinaryOp op, const Datum& l, const Datum& r, int64_t n, DataType type) {
  Validity validity = and_validity(l, r);
  auto values = Buffer::allocate(n * static_cast<int64_t>(sizeof(T)));
  T* out = reinterpret_cast<T*>(values->mutable_data());
  switch (op) {
    case BinaryOp::kAdd:
      arithmetic_typed<T, AddOp>(l, r, n, out);
      break;
    case BinaryOp::kSub:
      arithmetic_typed<T, SubOp>(l, r, n, out);
      break;
    case BinaryOp::kMul:
      arithmetic_typed<T, MulOp>(l, r, n, out);
      break;
    case BinaryOp::kDiv:
      arithmetic_typed<T, DivOp>(l, r, n, out);
      break;
    case BinaryOp::kMod:
      arithmetic_typed<T, ModOp>(l, r, n, out);
      break;
    default:
      SABOT_CHECK(false && "not arithmetic");
  }
  if constexpr (std::is_integral_v<T>) {
    // Integer division by zero yields null for that row.
    if (op == BinaryOp::kDiv || op == BinaryOp::kMod) {
      if (r.is_scalar) {
        if (scalar_value<T>(r.scalar) == 0) return Array::make_null(type, n);
      } else {
        auto nonzero = allocate_bits(n);
        const T* d = r.array.values<T>();
        write_bits(n, nonzero->mutable_data(), [d](int64_t i) { return d[i] != 0; });
        if (bits::count_set(nonzero->data(), 0, n) != n) and_into(validity, nonzero, n);
      }
    }
  }
  return make_array(type, n, std::move(validity), std::move(values));
}

// ---------------------------------------------------------------------------------------------
// Cast

template <typename To, typename From>
bool fits(From v) {
  if constexpr (std::is_floating_point_v<To>) {
    return true;
  } else if constexpr (std::is_floating_point_v<From>) {
    // Checked in double after truncation (what the conversion does): To's bounds are powers of
    // two, exact as doubles. NaN fails both comparisons.
    constexpr double lo = static_cast<double>(std::numeric_limits<To>::min());
    constexpr double hi_excl = std::is_signed_v<To>
                                   ? -static_cast<double>(std::numeric_limits<To>::min())
                                   : 2.0 * static_cast<double>(uint64_t{1} << 63);
    const double t = std::trunc(v);
    return t >= lo && t < hi_excl;
  } else {
    return std::in_range<To>(v);
  }
}

template <typename To, typename From>
Result<Array> cast_numeric(const Array& a, DataType to) {
  const int64_t n = a.length();
  auto values = Buffer::allocate(n * static_cast<int64_t>(sizeof(To)));
  To* out = reinterpret_cast<To*>(values->mutable_data());
  const From* in = a.values<From>();
  bool all_fit = true;
  for (int64_t i = 0; i < n; ++i) {
    const bool f = fits<To>(in[i]);
    all_fit &= f;
    out[i] = f ? static_cast<To>(in[i]) : To{};
  }
  if (!all_fit) {  // only an error if a misfit is in a valid row (null rows hold any value)
    for (int64_t i = 0; i < n; ++i) {
      if (a.is_valid(i) && !fits<To>(in[i])) {
        return Status::invalid_argument(
            "cast of " + a.type().to_string() + " value " + a.scalar_at(i).to_string() +
            " at row " + std::to_string(i) + " to " + to.to_string() + " is out of range");
      }
    }
  }
  return make_array(to, n, validity_of(a), std::move(values));
}

template <typename From>
Result<Array> cast_from(const Array& a, DataType to) {
  switch (to.id()) {
    case TypeId::kInt32:
      return cast_numeric<int32_t, From>(a, to);
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      return cast_numeric<int64_t, From>(a, to);
    case TypeId::kUInt64:
      return cast_numeric<uint64_t, From>(a, to);
    case TypeId::kFloat64:
      return cast_numeric<double, From>(a, to);
    case TypeId::kBool: {
      const From* in = a.values<From>();
      auto values = allocate_bits(a.length());
      write_bits(a.length(), values->mutable_data(), [in](int64_t i) { return in[i] != 0; });
      return make_array(to, a.length(), validity_of(a), std::move(values));
    }
    default:
      break;
  }
  return Status::not_implemented("cast from " + a.type().to_string() + " to " + to.to_string());
}

template <typename To>
Array cast_bool_to(const Array& a, DataType to) {
  const int64_t n = a.length();
  auto values = Buffer::allocate(n * static_cast<int64_t>(sizeof(To)));
  To* out = reinterpret_cast<To*>(values->mutable_data());
  for (int64_t i = 0; i < n; ++i) out[i] = a.bool_value(i) ? To{1} : To{0};
  return make_array(to, n, validity_of(a), std::move(values));
}

int64_t unit_per_second(columnar::TimeUnit u) {
  switch (u) {
    case columnar::TimeUnit::kSecond:
      return 1;
    case columnar::TimeUnit::kMilli:
      return 1'000;
    case columnar::TimeUnit::kMicro:
      return 1'000'000;
    case columnar::TimeUnit::kNano:
      return 1'000'000'000;
  }
  return 1;
}

Result<Array> cast_timestamp_unit(const Array& a, DataType to) {
  const int64_t from_ps = unit_per_second(a.type().unit());
  const int64_t to_ps = unit_per_second(to.unit());
  const int64_t n = a.length();
  auto values = Buffer::allocate(n * 8);
  int64_t* out = reinterpret_cast<int64_t*>(values->mutable_data());
  const int64_t* in = a.values<int64_t>();
  if (to_ps >= from_ps) {
    const int64_t f = to_ps / from_ps;
    for (int64_t i = 0; i < n; ++i) {
      if (__builtin_mul_overflow(in[i], f, &out[i]) && a.is_valid(i)) {
        return Status::invalid_argument("cast of " + a.type().to_string() + " value " +
                                        std::to_string(in[i]) + " at row " + std::to_string(i) +
                                        " to " + to.to_string() + " overflows");
      }
    }
  } else {
    // Floor division, so that instants before the epoch round toward the past.
    const int64_t f = from_ps / to_ps;
    for (int64_t i = 0; i < n; ++i) {
      int64_t q = in[i] / f;
      out[i] = (in[i] % f != 0 && in[i] < 0) ? q - 1 : q;
    }
  }
  return make_array(to, n, validity_of(a), std::move(values));
}

// ---------------------------------------------------------------------------------------------
// if_else

// Validity bits [i, i + 64) of `a`, all ones when it has no nulls.
uint64_t validity_word(const Array& a, int64_t i, int64_t avail) {
  if (a.null_count() == 0) return ~uint64_t{0};
  return bits::load_word(a.validity_bits(), a.offset() + i, avail);
}

// Rows [i, i + count) of if_else for fixed-width values; `c` holds the condition bits. The
// per-bit select vectorizes (variable shifts and blends).
template <typename T>
void select_block(uint64_t c, const Array& t, const Array& f, int64_t i, int64_t count,
                  Buffer* values) {
  // Selects on the bits as unsigned integers of the same width, so that doubles take the same
  // branch-free mask-and-blend path.
  // may_alias: the buffer holds doubles, read here as integers.
  typedef std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t> __attribute__((may_alias)) U;
  U* out = reinterpret_cast<U*>(values->mutable_data()) + i;
  const U* tv = reinterpret_cast<const U*>(t.values<T>() + i);
  const U* fv = reinterpret_cast<const U*>(f.values<T>() + i);
  for (int64_t j = 0; j < count; ++j) {
    const U mask = U{0} - static_cast<U>((c >> j) & 1);
    out[j] = (tv[j] & mask) | (fv[j] & ~mask);
  }
}

template <typename T>
Array repeat_fixed(const Scalar& s, int64_t n) {
  auto values = Buffer::allocate(n * static_cast<int64_t>(sizeof(T)));
  std::fill_n(reinterpret_cast<T*>(values->mutable_data()), n, scalar_value<T>(s));
  return make_array(s.type, n, {}, std::move(values));
}

// Sets bit i of `out` for every row i of a utf8/binary array that contains `pattern` (not empty).
// One pass over the whole data buffer instead of a search per row: 64 candidate positions at a
// time are filtered by the pattern's first and last byte (a byte loop that vectorizes), survivors
// are verified with memcmp and mapped to their row. A row that matches is skipped to its end.
void contains_rows(const int32_t* o, const char* data, int64_t n, std::string_view pattern,
                   uint8_t* out) {
  if (n == 0) return;
  const int64_t plen = static_cast<int64_t>(pattern.size());
  const char first = pattern.front();
  const char last = pattern.back();
  const int64_t end = o[n];
  const int64_t last_start = end - plen;  // the last position where a match can begin
  int64_t row = 0;
  int64_t pos = o[0];
  alignas(64) uint8_t tmp[64];
  while (pos <= last_start) {
    const int64_t count = std::min<int64_t>(64, last_start - pos + 1);
    const char* d = data + pos;
    uint64_t candidates = 0;
    if (count == 64) {
      for (int j = 0; j < 64; ++j) tmp[j] = (d[j] == first) & (d[j + plen - 1] == last);
      for (int k = 0; k < 8; ++k) {
        uint64_t eight;
        std::memcpy(&eight, tmp + 8 * k, 8);
        candidates |= uint64_t{pack_bytes8(eight)} << (8 * k);
      }
    } else {
      for (int64_t j = 0; j < count; ++j) {
        candidates |= static_cast<uint64_t>((d[j] == first) & (d[j + plen - 1] == last)) << j;
      }
    }
    int64_t next = pos + count;
    while (candidates != 0) {
      const int64_t p = pos + std::countr_zero(candidates);
      candidates &= candidates - 1;
      if (std::memcmp(data + p, pattern.data(), static_cast<size_t>(plen)) != 0) continue;
      while (o[row + 1] <= p) ++row;        // the row holding the match start
      if (p + plen > o[row + 1]) continue;  // straddles into the next row
      bits::set(out, row);
      // The row is decided: drop the candidates that start inside it.
      const int64_t row_end = o[row + 1];
      if (row_end - pos >= 64) {
        next = std::max(next, row_end);
        break;
      }
      candidates &= ~((uint64_t{1} << (row_end - pos)) - 1);
    }
    pos = next;
  }
}

}  // namespace

Array compare(BinaryOp op, const Datum& l, const Datum& r, int64_t n) {
  SABOT_CHECK(!(l.is_scalar && r.is_scalar));
  SABOT_CHECK(l.type() == r.type());
  if ((l.is_scalar && !l.scalar.is_valid) || (r.is_scalar && !r.scalar.is_valid)) {
    return Array::make_null(columnar::boolean(), n);
  }
  auto values = allocate_bits(n);
  uint8_t* out = values->mutable_data();
  switch (l.type().id()) {
    case TypeId::kBool:
      compare_bool(op, l, r, n, out);
      break;
    case TypeId::kInt32:
      compare_dispatch_op<int32_t>(op, l, r, n, out);
      break;
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      compare_dispatch_op<int64_t>(op, l, r, n, out);
      break;
    case TypeId::kUInt64:
      compare_dispatch_op<uint64_t>(op, l, r, n, out);
      break;
    case TypeId::kFloat64:
      compare_dispatch_op<double>(op, l, r, n, out);
      break;
    case TypeId::kUtf8:
    case TypeId::kBinary:
      compare_dispatch_op<std::string_view>(op, l, r, n, out);
      break;
  }
  return make_array(columnar::boolean(), n, and_validity(l, r), std::move(values));
}

Array arithmetic(BinaryOp op, const Datum& l, const Datum& r, int64_t n, DataType out_type) {
  SABOT_CHECK(!(l.is_scalar && r.is_scalar));
  // Timestamps compute on their int64 values.
  auto physical = [](DataType t) { return t.id() == TypeId::kTimestamp ? columnar::int64() : t; };
  SABOT_CHECK(physical(l.type()) == physical(r.type()));
  if ((l.is_scalar && !l.scalar.is_valid) || (r.is_scalar && !r.scalar.is_valid)) {
    return Array::make_null(out_type, n);
  }
  switch (physical(l.type()).id()) {
    case TypeId::kInt32:
      return arithmetic_t<int32_t>(op, l, r, n, out_type);
    case TypeId::kInt64:
      return arithmetic_t<int64_t>(op, l, r, n, out_type);
    case TypeId::kUInt64:
      return arithmetic_t<uint64_t>(op, l, r, n, out_type);
    case TypeId::kFloat64:
      return arithmetic_t<double>(op, l, r, n, out_type);
    default:
      break;
  }
  SABOT_CHECK(false && "arithmetic on a non-numeric type");
  return Array();
}

Array kleene(BinaryOp op, const Array& l, const Array& r) {
  SABOT_CHECK_EQ(l.length(), r.length());
  const int64_t n = l.length();
  auto values = allocate_bits(n);
  auto valid = allocate_bits(n);
  const bool l_nulls = l.null_count() > 0;
  const bool r_nulls = r.null_count() > 0;
  int64_t valid_count = 0;
  for (int64_t i = 0; i < n; i += 64) {
    const int64_t avail = n - i;
    const uint64_t all = avail < 64 ? (uint64_t{1} << avail) - 1 : ~uint64_t{0};
    uint64_t lv = bits::load_word(l.bool_bits(), l.offset() + i, avail);
    uint64_t rv = bits::load_word(r.bool_bits(), r.offset() + i, avail);
    uint64_t lm = l_nulls ? bits::load_word(l.validity_bits(), l.offset() + i, avail) : all;
    uint64_t rm = r_nulls ? bits::load_word(r.validity_bits(), r.offset() + i, avail) : all;
    uint64_t lt = lv & lm, lf = ~lv & lm, rt = rv & rm, rf = ~rv & rm;
    uint64_t t, f;
    if (op == BinaryOp::kAnd) {
      t = lt & rt;
      f = lf | rf;  // false wins over null
    } else {
      t = lt | rt;  // true wins over null
      f = lf & rf;
    }
    uint64_t m = (t | f) & all;
    t &= all;
    valid_count += __builtin_popcountll(m);
    std::memcpy(values->mutable_data() + i / 8, &t, 8);
    std::memcpy(valid->mutable_data() + i / 8, &m, 8);
  }
  Validity v{std::move(valid), n - valid_count};
  if (v.null_count == 0) v.bits = nullptr;
  return make_array(columnar::boolean(), n, std::move(v), std::move(values));
}

Array logical_not(const Array& a) {
  const int64_t n = a.length();
  auto values = allocate_bits(n);
  for (int64_t i = 0; i < n; i += 64) {
    uint64_t w = ~bits::load_word(a.bool_bits(), a.offset() + i, n - i);
    if (n - i < 64) w &= (uint64_t{1} << (n - i)) - 1;
    std::memcpy(values->mutable_data() + i / 8, &w, 8);
  }
  return make_array(columnar::boolean(), n, validity_of(a), std::move(values));
}

Array null_test(const Array& a, bool want_null) {
  const int64_t n = a.length();
  auto values = allocate_bits(n);
  if (a.null_count() == 0) {
    if (!want_null) bits::fill(values->mutable_data(), 0, n, true);
  } else {
    for (int64_t i = 0; i < n; i += 64) {
      uint64_t w = bits::load_word(a.validity_bits(), a.offset() + i, n - i);
      if (want_null) w = ~w;
      if (n - i < 64) w &= (uint64_t{1} << (n - i)) - 1;
      std::memcpy(values->mutable_data() + i / 8, &w, 8);
    }
  }
  return make_array(columnar::boolean(), n, {}, std::move(values));
}

Result<Array> cast_array(const Array& a, DataType to) {
  const DataType& from = a.type();
  if (from == to) return a;
  if ((from.id() == TypeId::kTimestamp && to.id() == TypeId::kInt64) ||
      (from.id() == TypeId::kInt64 && to.id() == TypeId::kTimestamp)) {
    // Same int64 values: share the buffers, only the type changes.
    ArrayData d = a.data();
    d.type = to;
    return Array(std::make_shared<const ArrayData>(std::move(d)));
  }
  const int64_t n = a.length();
  switch (from.id()) {
    case TypeId::kInt32:
      return cast_from<int32_t>(a, to);
    case TypeId::kInt64:
      return cast_from<int64_t>(a, to);
    case TypeId::kUInt64:
      return cast_from<uint64_t>(a, to);
    case TypeId::kFloat64:
      return cast_from<double>(a, to);
    case TypeId::kTimestamp:
      if (to.id() == TypeId::kTimestamp) return cast_timestamp_unit(a, to);
      return cast_from<int64_t>(a, to);
    case TypeId::kBool:
      switch (to.id()) {
        case TypeId::kInt32:
          return cast_bool_to<int32_t>(a, to);
        case TypeId::kInt64:
          return cast_bool_to<int64_t>(a, to);
        case TypeId::kUInt64:
          return cast_bool_to<uint64_t>(a, to);
        case TypeId::kFloat64:
          return cast_bool_to<double>(a, to);
        default:
          break;
      }
      break;
    case TypeId::kUtf8:
    case TypeId::kBinary:
      if (to.is_var_length()) {
        // Same layout: share every buffer, only the type changes.
        if (to.id() == TypeId::kUtf8) {
          for (int64_t i = 0; i < n; ++i) {
            if (a.is_valid(i) && !columnar::is_valid_utf8(a.string_view(i))) {
              return Status::invalid_argument("cast of binary value at row " + std::to_string(i) +
                                              " to utf8: not valid UTF-8");
            }
          }
        }
        ArrayData d = a.data();
        d.type = to;
        return Array(std::make_shared<const ArrayData>(std::move(d)));
      }
      break;
  }
  return Status::not_implemented("cast from " + from.to_string() + " to " + to.to_string());
}

Array string_predicate(StringOp op, const Array& a, std::string_view pattern) {
  const int64_t n = a.length();
  auto values = allocate_bits(n);
  uint8_t* out = values->mutable_data();
  const int32_t* o = a.offsets();
  const char* data = reinterpret_cast<const char*>(a.raw_data());
  const int64_t data_size = a.data().data ? a.data().data->size() : 0;
  const int64_t plen = static_cast<int64_t>(pattern.size());
  // Does row i begin with the pattern? For patterns up to 8 bytes, one masked 8-byte load
  // instead of a memcmp call per row (loads stay inside the data buffer).
  uint64_t pat_word = 0;
  std::memcpy(&pat_word, pattern.data(), static_cast<size_t>(std::min<int64_t>(plen, 8)));
  const uint64_t mask = plen >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * plen)) - 1;
  auto has_prefix = [&](int64_t i) {
    const int64_t start = o[i];
    if (plen > 8) return std::memcmp(data + start, pattern.data(), static_cast<size_t>(plen)) == 0;
    uint64_t w = 0;
    if (start + 8 <= data_size) {
      std::memcpy(&w, data + start, 8);
    } else if (start < data_size) {
      std::memcpy(&w, data + start, static_cast<size_t>(data_size - start));
    }
    return ((w ^ pat_word) & mask) == 0;
  };
  switch (op) {
    case StringOp::kEquals:
      write_bits(n, out, [&](int64_t i) { return o[i + 1] - o[i] == plen && has_prefix(i); });
      break;
    case StringOp::kStartsWith:
      write_bits(n, out, [&](int64_t i) { return o[i + 1] - o[i] >= plen && has_prefix(i); });
      break;
    case StringOp::kContains:
      if (plen == 0) {
        bits::fill(out, 0, n, true);
        break;
      }
      contains_rows(o, data, n, pattern, out);
      break;
  }
  return make_array(columnar::boolean(), n, validity_of(a), std::move(values));
}

Array select(const Array& cond, const Array& t, const Array& f) {
  const int64_t n = cond.length();
  SABOT_CHECK_EQ(t.length(), n);
  SABOT_CHECK_EQ(f.length(), n);
  SABOT_CHECK(t.type() == f.type());
  const DataType type = t.type();
  auto valid = allocate_bits(n);
  std::shared_ptr<Buffer> values;
  if (type.id() == TypeId::kBool) {
    values = allocate_bits(n);
  } else if (type.is_fixed_width()) {
    values = Buffer::allocate(n * (type.bit_width() / 8));
  }
  int64_t valid_count = 0;
  for (int64_t i = 0; i < n; i += 64) {
    const int64_t avail = n - i;
    const uint64_t all = avail < 64 ? (uint64_t{1} << avail) - 1 : ~uint64_t{0};
    const uint64_t c = bits::load_word(cond.bool_bits(), cond.offset() + i, avail);
    // A row is valid when the condition is, and the side it picks is.
    const uint64_t m = validity_word(cond, i, avail) &
                       ((c & validity_word(t, i, avail)) | (~c & validity_word(f, i, avail))) & all;
    valid_count += std::popcount(m);
    std::memcpy(valid->mutable_data() + i / 8, &m, 8);
    const int64_t count = std::min<int64_t>(64, avail);
    switch (type.id()) {
      case TypeId::kBool: {
        uint64_t w = (c & bits::load_word(t.bool_bits(), t.offset() + i, avail)) |
                     (~c & bits::load_word(f.bool_bits(), f.offset() + i, avail));
        w &= all;
        std::memcpy(values->mutable_data() + i / 8, &w, 8);
        break;
      }
      case TypeId::kInt32:
        select_block<int32_t>(c, t, f, i, count, values.get());
        break;
      case TypeId::kInt64:
      case TypeId::kTimestamp:
        select_block<int64_t>(c, t, f, i, count, values.get());
        break;
      case TypeId::kUInt64:
        select_block<uint64_t>(c, t, f, i, count, values.get());
        break;
      case TypeId::kFloat64:
        select_block<double>(c, t, f, i, count, values.get());
        break;
      case TypeId::kUtf8:
      case TypeId::kBinary:
        break;
    }
  }
  Validity v{valid, n - valid_count};
  if (v.null_count == 0) v.bits = nullptr;
  if (type.is_var_length()) {
    columnar::BinaryBuilder builder(type);
    builder.reserve(n);
    for (int64_t i = 0; i < n; ++i) {
      if (!bits::get(valid->data(), i)) {
        builder.append_null();
      } else {
        builder.append(cond.bool_value(i) ? t.string_view(i) : f.string_view(i));
      }
    }
    return builder.finish();
  }
  return make_array(type, n, std::move(v), std::move(values));
}

Array repeat_scalar(const Scalar& s, int64_t n) {
  const DataType type = s.type;
  if (!s.is_valid) return Array::make_null(type, n);
  switch (type.id()) {
    case TypeId::kBool: {
      auto values = allocate_bits(n);
      if (s.as_bool()) bits::fill(values->mutable_data(), 0, n, true);
      return make_array(type, n, {}, std::move(values));
    }
    case TypeId::kInt32:
      return repeat_fixed<int32_t>(s, n);
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      return repeat_fixed<int64_t>(s, n);
    case TypeId::kUInt64:
      return repeat_fixed<uint64_t>(s, n);
    case TypeId::kFloat64:
      return repeat_fixed<double>(s, n);
    case TypeId::kUtf8:
    case TypeId::kBinary: {
      const std::string& v = s.as_string();
      const int64_t len = static_cast<int64_t>(v.size());
      SABOT_CHECK_LE(len * n, int64_t{std::numeric_limits<int32_t>::max()});
      auto offsets = Buffer::allocate((n + 1) * 4);
      auto data = Buffer::allocate(len * n);
      int32_t* o = reinterpret_cast<int32_t*>(offsets->mutable_data());
      for (int64_t i = 0; i <= n; ++i) o[i] = static_cast<int32_t>(i * len);
      for (int64_t i = 0; i < n; ++i) {
        std::memcpy(data->mutable_data() + i * len, v.data(), static_cast<size_t>(len));
      }
      return make_array(type, n, {}, std::move(offsets), std::move(data));
    }
  }
  return Array::make_null(type, n);
}

}  // namespace sabot::compute::detail
