// Internal: the whole-array kernels behind BoundExpr::evaluate. Each kernel expects operands that
// bind() has already made type-compatible (same type for both sides) and writes a fresh array with
// offset 0. Inputs may be slices. Not a public API: the expression layer is the interface.
#pragma once

#include <cstdint>
#include <string_view>

#include "sabot/base/status.h"
#include "sabot/columnar/array.h"
#include "sabot/columnar/scalar.h"
#include "sabot/compute/expression.h"

namespace sabot::compute::detail {

// An evaluated operand: a whole column or one value standing for every row.
struct Datum {
  bool is_scalar = false;
  columnar::Array array;
  columnar::Scalar scalar;

  static Datum of(columnar::Array a) { return Datum{false, std::move(a), {}}; }
  static Datum of(columnar::Scalar s) { return Datum{true, {}, std::move(s)}; }
  const columnar::DataType& type() const { return is_scalar ? scalar.type : array.type(); }
  // The array, or the scalar repeated `length` times.
  columnar::Array to_array(int64_t length) const;
};

// ==, !=, <, <=, >, >= over two operands of the same type; at least one is an array of `length`.
columnar::Array compare(BinaryOp op, const Datum& left, const Datum& right, int64_t length);
// +, -, *, /, % over two operands of the same numeric type (a timestamp counts as int64); at
// least one is an array. The result has type `out_type` (the operands' type, or a timestamp).
columnar::Array arithmetic(BinaryOp op, const Datum& left, const Datum& right, int64_t length,
                           columnar::DataType out_type);
// Kleene && / || over two bool arrays of equal length.
columnar::Array kleene(BinaryOp op, const columnar::Array& left, const columnar::Array& right);
columnar::Array logical_not(const columnar::Array& a);
// is_null (want_null) or is_valid; never null.
columnar::Array null_test(const columnar::Array& a, bool want_null);
// A numeric value out of the target's range, or binary that is not UTF-8 for utf8, is an error.
Result<columnar::Array> cast_array(const columnar::Array& a, columnar::DataType to);
columnar::Array string_predicate(StringOp op, const columnar::Array& a, std::string_view pattern);
// Rows where cond is true take `then_value`, false take `else_value`, null give null.
columnar::Array select(const columnar::Array& cond, const columnar::Array& then_value,
                       const columnar::Array& else_value);

// `length` copies of `value`, filled directly (no per-row builder calls).
columnar::Array repeat_scalar(const columnar::Scalar& value, int64_t length);

// Packs 8 bytes each 0 or 1 into one byte, byte 0 to bit 0.
inline uint8_t pack_bytes8(uint64_t bytes) {
  // Each byte's low bit lands in bits 56..63 of the product, byte i at bit 56 + i.
  return static_cast<uint8_t>((bytes * 0x0102040810204080ULL) >> 56);
}

}  // namespace sabot::compute::detail
