// Vectorized expressions over record batches: build a tree with col()/lit() and operators
// (`col("price") > lit(1'000)`), bind() it to a schema (resolves columns, checks and infers types),
// then evaluate the BoundExpr on each batch with whole-array kernels.
// Expr and BoundExpr are immutable values sharing their nodes: cheap to copy, safe to use from many
// threads at once.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "sabot/base/status.h"
#include "sabot/columnar/array.h"
#include "sabot/columnar/record_batch.h"
#include "sabot/columnar/scalar.h"
#include "sabot/columnar/type.h"

namespace sabot::compute {

enum class ExprKind : uint8_t {
  kColumn,    // column_name
  kLiteral,   // literal
  kBinary,    // binary_op, args[0] op args[1]
  kNot,       // !args[0]
  kIsNull,    // is_null(args[0])
  kIsValid,   // is_valid(args[0])
  kCast,      // cast(args[0], cast_type)
  kStringOp,  // string_op(args[0], pattern)
  kIfElse,    // if_else(args[0], args[1], args[2])
};

enum class BinaryOp : uint8_t {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kAnd,
  kOr,
};

enum class StringOp : uint8_t { kEquals, kStartsWith, kContains };

// "+", "==", "and", ...
std::string_view binary_op_symbol(BinaryOp op);

// An unbound expression tree. Copying shares the immutable nodes.
//
// Semantics (enforced by bind, documented here once):
// - Numeric promotion: int32 -> int64 -> float64. int64/int32 mixed with uint64 is a type error
//   unless one side is cast, except that a non-negative integer literal adapts to uint64.
//   Integer literals compared with an int32 column are compared as int32 when they fit.
// - Integer arithmetic wraps on overflow (two's complement; MIN / -1 is MIN, MIN % -1 is 0).
//   Integer `/` truncates toward zero; `/` or `%` by zero gives null for that row (no error).
//   float64 `/` follows IEEE 754 (x / 0 is +-inf or NaN). `%` accepts integers only.
// - Timestamps: timestamp +- integer is a timestamp of the same unit, timestamp - timestamp (same
//   unit) is an int64 duration in that unit; no other arithmetic.
// - Comparisons yield bool: numeric with numeric, bool with bool, utf8 with utf8, binary with
//   binary (bytewise order), timestamp with timestamp of the same unit or with an int64 literal.
//   float64 follows IEEE 754: NaN compares unequal to everything, itself included.
// - `&&`, `||`, `!` take bool and use Kleene (SQL) three-valued logic: false && null is false,
//   true || null is true. Every other operator yields null when any input is null.
// - is_null / is_valid never yield null. if_else yields null where the condition is null.
// - cast: between numeric types, bool <-> numeric, timestamp <-> int64, timestamp unit changes,
//   utf8 <-> binary. A numeric value that does not fit the target type is an evaluation error
//   naming the row; float -> integer truncates toward zero; a coarser timestamp unit floors
//   (toward the past); binary -> utf8 checks UTF-8.
// - Sub-expressions made only of literals are folded once by bind (their errors surface there).
class Expr {
 public:
  struct Node {
    ExprKind kind = ExprKind::kLiteral;
    BinaryOp binary_op = BinaryOp::kAdd;
    StringOp string_op = StringOp::kEquals;
    std::string column_name;       // kColumn
    std::string pattern;           // kStringOp
    columnar::Scalar literal;      // kLiteral
    columnar::DataType cast_type;  // kCast
    std::vector<Expr> args;
    std::string alias;  // set by as(); empty otherwise
  };

  // A null int64 literal; use the builders below.
  Expr();
  explicit Expr(std::shared_ptr<const Node> node) : node_(std::move(node)) {}

  const Node& node() const { return *node_; }
  ExprKind kind() const { return node_->kind; }

  // The same expression, named `name` in outputs (select, with_column).
  Expr as(std::string name) const;
  // Alias if set, else the column name for a column reference, else to_string().
  std::string name() const;
  // Readable form: "(price > 1000)", "starts_with(name, \"ab\")".
  std::string to_string() const;
  // Structural equality (operator== builds an expression instead).
  bool equals(const Expr& other) const;
  // Names of the columns the expression reads, each once, in first-use order.
  std::vector<std::string> referenced_columns() const;

 private:
  std::shared_ptr<const Node> node_;
};

Expr col(std::string name);
Expr lit(columnar::Scalar value);
Expr lit(bool v);
Expr lit(double v);
Expr lit(const char* v);
Expr lit(std::string_view v);
inline Expr lit(const std::string& v) { return lit(std::string_view(v)); }
// Any signed integer is an int64 literal, any unsigned one a uint64 literal; for an int32 literal
// write lit(Scalar::of_int32(v)).
template <std::integral T>
requires(!std::same_as<T, bool>) Expr lit(T v) {
  if constexpr (std::is_signed_v<T>) {
    return lit(columnar::Scalar::of_int64(static_cast<int64_t>(v)));
  } else {
    return lit(columnar::Scalar::of_uint64(static_cast<uint64_t>(v)));
  }
}
inline Expr lit(float v) { return lit(static_cast<double>(v)); }
// A typed null literal.
Expr null_lit(columnar::DataType type);

Expr binary(BinaryOp op, Expr left, Expr right);
Expr and_(Expr a, Expr b);
Expr or_(Expr a, Expr b);
Expr not_(Expr a);
Expr is_null(Expr a);
Expr is_valid(Expr a);
Expr cast(Expr a, columnar::DataType to);
Expr str_equals(Expr a, std::string pattern);
Expr starts_with(Expr a, std::string prefix);
Expr contains(Expr a, std::string needle);
Expr if_else(Expr cond, Expr then_value, Expr else_value);

// A plain C++ value usable directly on one side of an operator: `col("x") > 5`.
template <typename T>
concept LiteralValue = std::is_arithmetic_v<T> || std::convertible_to<T, std::string_view>;

#define SABOT_EXPR_BINARY_OPERATOR_(sym, op)                 \
  inline Expr operator sym(Expr a, Expr b) {                 \
    return binary(BinaryOp::op, std::move(a), std::move(b)); \
  }                                                          \
  template <LiteralValue T>                                  \
  Expr operator sym(Expr a, const T& b) {                    \
    return binary(BinaryOp::op, std::move(a), lit(b));       \
  }                                                          \
  template <LiteralValue T>                                  \
  Expr operator sym(const T& a, Expr b) {                    \
    return binary(BinaryOp::op, lit(a), std::move(b));       \
  }

SABOT_EXPR_BINARY_OPERATOR_(+, kAdd)
SABOT_EXPR_BINARY_OPERATOR_(-, kSub)
SABOT_EXPR_BINARY_OPERATOR_(*, kMul)
SABOT_EXPR_BINARY_OPERATOR_(/, kDiv)
SABOT_EXPR_BINARY_OPERATOR_(%, kMod)
SABOT_EXPR_BINARY_OPERATOR_(==, kEq)
SABOT_EXPR_BINARY_OPERATOR_(!=, kNe)
SABOT_EXPR_BINARY_OPERATOR_(<, kLt)
SABOT_EXPR_BINARY_OPERATOR_(<=, kLe)
SABOT_EXPR_BINARY_OPERATOR_(>, kGt)
SABOT_EXPR_BINARY_OPERATOR_(>=, kGe)
SABOT_EXPR_BINARY_OPERATOR_(&&, kAnd)
SABOT_EXPR_BINARY_OPERATOR_(||, kOr)
#undef SABOT_EXPR_BINARY_OPERATOR_

inline Expr operator!(Expr a) { return not_(std::move(a)); }

namespace detail {
struct BoundNode;
}

// An expression resolved against one schema, ready to evaluate. Immutable; evaluate() may run
// concurrently from several threads.
class BoundExpr {
 public:
  BoundExpr(std::shared_ptr<const detail::BoundNode> root, Expr source);

  const columnar::DataType& type() const;
  // The output field: the expression's name(), its type, nullable unless provably not.
  columnar::Field output_field() const;
  const Expr& source() const { return source_; }

  // Evaluates over every row of `batch`, whose schema must equal the bound schema (columns are
  // looked up by position). The result has batch.num_rows() rows; a bare column reference returns
  // the batch's column itself (zero copy), a constant expression a repeated array.
  Result<columnar::Array> evaluate(const columnar::RecordBatch& batch) const;

 private:
  std::shared_ptr<const detail::BoundNode> root_;
  Expr source_;
};

// Resolves columns and types. Errors: NotFound for an unknown column (listing the available ones),
// TypeError naming the operator, the operands and their types. (Deliberately no SchemaPtr
// overload: a std::shared_ptr argument would let argument-dependent lookup pick std::bind.)
Result<BoundExpr> bind(const Expr& expr, const columnar::Schema& schema);

}  // namespace sabot::compute
