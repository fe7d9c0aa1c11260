#include "sabot/compute/expression.h"

#include <algorithm>
#include <utility>

#include "compute/expression_kernels.h"
#include "sabot/base/check.h"

namespace sabot::compute {

using columnar::Array;
using columnar::DataType;
using columnar::RecordBatch;
using columnar::Scalar;
using columnar::TypeId;
using detail::Datum;

// =============================================================================================
// Expr: construction and printing

namespace {

Expr make(Expr::Node node) { return Expr(std::make_shared<const Expr::Node>(std::move(node))); }

bool is_comparison(BinaryOp op) { return op >= BinaryOp::kEq && op <= BinaryOp::kGe; }
bool is_logical(BinaryOp op) { return op == BinaryOp::kAnd || op == BinaryOp::kOr; }

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string_view string_op_name(StringOp op) {
  switch (op) {
    case StringOp::kEquals:
      return "str_equals";
    case StringOp::kStartsWith:
      return "starts_with";
    case StringOp::kContains:
      return "contains";
  }
  return "?";
}

}  // namespace

std::string_view binary_op_symbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
      return "+";
    case BinaryOp::kSub:
      return "-";
    case BinaryOp::kMul:
      return "*";
    case BinaryOp::kDiv:
      return "/";
    case BinaryOp::kMod:
      return "%";
    case BinaryOp::kEq:
      return "==";
    case BinaryOp::kNe:
      return "!=";
    case BinaryOp::kLt:
      return "<";
    case BinaryOp::kLe:
      return "<=";
    case BinaryOp::kGt:
      return ">";
    case BinaryOp::kGe:
      return ">=";
    case BinaryOp::kAnd:
      return "and";
    case BinaryOp::kOr:
      return "or";
  }
  return "?";
}

Expr::Expr() : Expr(lit(Scalar::null(columnar::int64()))) {}

Expr Expr::as(std::string name) const {
  Node copy = *node_;
  copy.alias = std::move(name);
  return make(std::move(copy));
}

std::string Expr::name() const {
  if (!node_->alias.empty()) return node_->alias;
  if (node_->kind == ExprKind::kColumn) return node_->column_name;
  return to_string();
}

std::string Expr::to_string() const {
  const Node& n = *node_;
  switch (n.kind) {
    case ExprKind::kColumn:
      return n.column_name;
    case ExprKind::kLiteral:
      return n.literal.to_string();
    case ExprKind::kBinary:
      return "(" + n.args[0].to_string() + " " + std::string(binary_op_symbol(n.binary_op)) + " " +
             n.args[1].to_string() + ")";
    case ExprKind::kNot:
      return "(not " + n.args[0].to_string() + ")";
    case ExprKind::kIsNull:
      return "is_null(" + n.args[0].to_string() + ")";
    case ExprKind::kIsValid:
      return "is_valid(" + n.args[0].to_string() + ")";
    case ExprKind::kCast:
      return "cast(" + n.args[0].to_string() + " as " + n.cast_type.to_string() + ")";
    case ExprKind::kStringOp:
      return std::string(string_op_name(n.string_op)) + "(" + n.args[0].to_string() + ", " +
             quote(n.pattern) + ")";
    case ExprKind::kIfElse:
      return "if_else(" + n.args[0].to_string() + ", " + n.args[1].to_string() + ", " +
             n.args[2].to_string() + ")";
  }
  return "?";
}

bool Expr::equals(const Expr& other) const {
  const Node& a = *node_;
  const Node& b = *other.node_;
  if (&a == &b) return true;
  if (a.kind != b.kind || a.alias != b.alias || a.args.size() != b.args.size()) return false;
  switch (a.kind) {
    case ExprKind::kColumn:
      if (a.column_name != b.column_name) return false;
      break;
    case ExprKind::kLiteral:
      if (!(a.literal == b.literal)) return false;
      break;
    case ExprKind::kBinary:
      if (a.binary_op != b.binary_op) return false;
      break;
    case ExprKind::kCast:
      if (!(a.cast_type == b.cast_type)) return false;
      break;
    case ExprKind::kStringOp:
      if (a.string_op != b.string_op || a.pattern != b.pattern) return false;
      break;
    default:
      break;
  }
  for (size_t i = 0; i < a.args.size(); ++i) {
    if (!a.args[i].equals(b.args[i])) return false;
  }
  return true;
}

std::vector<std::string> Expr::referenced_columns() const {
  std::vector<std::string> out;
  std::vector<const Expr*> stack{this};
  // Depth-first, left to right, so the order is the order of first use.
  while (!stack.empty()) {
    const Expr* e = stack.back();
    stack.pop_back();
    if (e->kind() == ExprKind::kColumn) {
      if (std::find(out.begin(), out.end(), e->node().column_name) == out.end()) {
        out.push_back(e->node().column_name);
      }
    }
    const auto& args = e->node().args;
    for (auto it = args.rbegin(); it != args.rend(); ++it) stack.push_back(&*it);
  }
  return out;
}

Expr col(std::string name) {
  Expr::Node n;
  n.kind = ExprKind::kColumn;
  n.column_name = std::move(name);
  return make(std::move(n));
}

Expr lit(Scalar value) {
  Expr::Node n;
  n.kind = ExprKind::kLiteral;
  n.literal = std::move(value);
  return make(std::move(n));
}
Expr lit(bool v) { return lit(Scalar::of_bool(v)); }
Expr lit(double v) { return lit(Scalar::of_float64(v)); }
Expr lit(const char* v) { return lit(Scalar::of_utf8(v)); }
Expr lit(std::string_view v) { return lit(Scalar::of_utf8(std::string(v))); }
Expr null_lit(DataType type) { return lit(Scalar::null(type)); }

namespace {
Expr make_node(ExprKind kind, std::vector<Expr> args) {
  Expr::Node n;
  n.kind = kind;
  n.args = std::move(args);
  return make(std::move(n));
}
Expr make_string_op(StringOp op, Expr a, std::string pattern) {
  Expr::Node n;
  n.kind = ExprKind::kStringOp;
  n.string_op = op;
  n.pattern = std::move(pattern);
  n.args = {std::move(a)};
  return make(std::move(n));
}
}  // namespace

Expr binary(BinaryOp op, Expr left, Expr right) {
  Expr::Node n;
  n.kind = ExprKind::kBinary;
  n.binary_op = op;
  n.args = {std::move(left), std::move(right)};
  return make(std::move(n));
}
Expr and_(Expr a, Expr b) { return binary(BinaryOp::kAnd, std::move(a), std::move(b)); }
Expr or_(Expr a, Expr b) { return binary(BinaryOp::kOr, std::move(a), std::move(b)); }
Expr not_(Expr a) { return make_node(ExprKind::kNot, {std::move(a)}); }
Expr is_null(Expr a) { return make_node(ExprKind::kIsNull, {std::move(a)}); }
Expr is_valid(Expr a) { return make_node(ExprKind::kIsValid, {std::move(a)}); }
Expr cast(Expr a, DataType to) {
  Expr::Node n;
  n.kind = ExprKind::kCast;
  n.cast_type = to;
  n.args = {std::move(a)};
  return make(std::move(n));
}
Expr str_equals(Expr a, std::string pattern) {
  return make_string_op(StringOp::kEquals, std::move(a), std::move(pattern));
}
Expr starts_with(Expr a, std::string prefix) {
  return make_string_op(StringOp::kStartsWith, std::move(a), std::move(prefix));
}
Expr contains(Expr a, std::string needle) {
  return make_string_op(StringOp::kContains, std::move(a), std::move(needle));
}
Expr if_else(Expr cond, Expr then_value, Expr else_value) {
  return make_node(ExprKind::kIfElse,
                   {std::move(cond), std::move(then_value), std::move(else_value)});
}

// =============================================================================================
// Bound nodes: one virtual eval per node per batch, whole-array kernels inside.

namespace detail {

struct BoundNode {
  DataType type;
  bool nullable = true;
  std::vector<std::shared_ptr<const BoundNode>> children;  // operands, evaluated first
  BoundNode(DataType t, bool n, std::vector<std::shared_ptr<const BoundNode>> c = {})
      : type(t), nullable(n), children(std::move(c)) {}
  virtual ~BoundNode() = default;
  virtual Result<Datum> eval(const RecordBatch& batch) const = 0;
};

}  // namespace detail

namespace {

using detail::BoundNode;
using NodePtr = std::shared_ptr<const BoundNode>;

// When every operand is a scalar the kernel runs on one-row arrays and the result is a scalar
// again, so constant sub-expressions never grow to the batch length.
struct Operands {
  std::vector<Datum> values;
  bool all_scalar = true;
  int64_t length = 0;  // rows the kernel runs on: 1 when all scalar

  Datum wrap(Array result) const {
    return all_scalar ? Datum::of(result.scalar_at(0)) : Datum::of(std::move(result));
  }
  Array array(size_t i) const { return values[i].to_array(length); }
};

Result<Operands> eval_all(const std::vector<NodePtr>& children, const RecordBatch& batch) {
  Operands ops;
  ops.values.reserve(children.size());
  for (const auto& c : children) {
    SABOT_ASSIGN_OR_RETURN(Datum d, c->eval(batch));
    ops.all_scalar &= d.is_scalar;
    ops.values.push_back(std::move(d));
  }
  ops.length = ops.all_scalar ? 1 : batch.num_rows();
  return ops;
}

struct ColumnNode final : BoundNode {
  int index;
  std::string name;
  ColumnNode(DataType t, bool n, int i, std::string nm) : BoundNode(t, n), index(i), name(nm) {}
  Result<Datum> eval(const RecordBatch& batch) const override {
    // Columns are found by position; a cheap check catches a batch of another schema.
    if (index >= batch.num_columns() || batch.schema().field(index).name != name ||
        !(batch.column(index).type() == type)) {
      return Status::invalid_argument(
          "batch does not match the schema the expression was bound to: expected column '" + name +
          "' of type " + type.to_string() + " at position " + std::to_string(index) +
          "; batch schema:\n" + batch.schema().to_string());
    }
    return Datum::of(batch.column(index));
  }
};

struct LiteralNode final : BoundNode {
  Scalar value;
  explicit LiteralNode(Scalar v) : BoundNode(v.type, !v.is_valid), value(std::move(v)) {}
  Result<Datum> eval(const RecordBatch&) const override { return Datum::of(value); }
};

struct BinaryNode final : BoundNode {
  BinaryOp op;
  BinaryNode(DataType t, bool n, BinaryOp o, NodePtr l, NodePtr r)
      : BoundNode(t, n, {std::move(l), std::move(r)}), op(o) {}
  Result<Datum> eval(const RecordBatch& batch) const override {
    SABOT_ASSIGN_OR_RETURN(Operands ops, eval_all(children, batch));
    if (is_logical(op)) return ops.wrap(detail::kleene(op, ops.array(0), ops.array(1)));
    const Datum l = ops.all_scalar ? Datum::of(ops.array(0)) : ops.values[0];
    const Datum& r = ops.values[1];
    if (is_comparison(op)) return ops.wrap(detail::compare(op, l, r, ops.length));
    return ops.wrap(detail::arithmetic(op, l, r, ops.length, type));
  }
};

enum class UnaryKind { kNot, kIsNull, kIsValid, kStringOp, kCast };

struct UnaryNode final : BoundNode {
  UnaryKind kind;
  StringOp string_op = StringOp::kEquals;
  std::string pattern;
  UnaryNode(DataType t, bool n, UnaryKind k, NodePtr child)
      : BoundNode(t, n, {std::move(child)}), kind(k) {}
  Result<Datum> eval(const RecordBatch& batch) const override {
    SABOT_ASSIGN_OR_RETURN(Operands ops, eval_all(children, batch));
    Array a = ops.array(0);
    switch (kind) {
      case UnaryKind::kNot:
        return ops.wrap(detail::logical_not(a));
      case UnaryKind::kIsNull:
        return ops.wrap(detail::null_test(a, true));
      case UnaryKind::kIsValid:
        return ops.wrap(detail::null_test(a, false));
      case UnaryKind::kStringOp:
        return ops.wrap(detail::string_predicate(string_op, a, pattern));
      case UnaryKind::kCast: {
        SABOT_ASSIGN_OR_RETURN(Array out, detail::cast_array(a, type));
        return ops.wrap(std::move(out));
      }
    }
    return Status::internal("unknown unary expression");
  }
};

struct IfElseNode final : BoundNode {
  IfElseNode(DataType t, bool n, std::vector<NodePtr> c) : BoundNode(t, n, std::move(c)) {}
  Result<Datum> eval(const RecordBatch& batch) const override {
    SABOT_ASSIGN_OR_RETURN(Operands ops, eval_all(children, batch));
    return ops.wrap(detail::select(ops.array(0), ops.array(1), ops.array(2)));
  }
};

// =============================================================================================
// Binding: name resolution, type checking, implicit casts.

const RecordBatch& empty_batch() {
  static const RecordBatch kEmpty;
  return kEmpty;
}

bool is_literal(const NodePtr& n) { return dynamic_cast<const LiteralNode*>(n.get()) != nullptr; }
const Scalar& literal_of(const NodePtr& n) { return static_cast<const LiteralNode&>(*n).value; }

// "utf8 column 'name'", "int64 literal 1000", "int64 expression (a + b)".
std::string describe(const Expr& e, const NodePtr& bound) {
  std::string t = bound->type.to_string();
  switch (e.kind()) {
    case ExprKind::kColumn:
      return t + " column '" + e.node().column_name + "'";
    case ExprKind::kLiteral:
      return t + " literal " + e.to_string();
    default:
      return t + " expression " + e.to_string();
  }
}

// Replaces a literal operand by a literal of `to`, or wraps a computed one in a cast node.
Result<NodePtr> coerce(NodePtr n, DataType to) {
  if (n->type == to) return n;
  if (is_literal(n)) {
    const Scalar& s = literal_of(n);
    if (!s.is_valid) return NodePtr(std::make_shared<LiteralNode>(Scalar::null(to)));
    SABOT_ASSIGN_OR_RETURN(Array a, detail::cast_array(Array::make_repeated(s, 1), to));
    return NodePtr(std::make_shared<LiteralNode>(a.scalar_at(0)));
  }
  return NodePtr(std::make_shared<UnaryNode>(to, n->nullable, UnaryKind::kCast, std::move(n)));
}

bool is_int_literal(const NodePtr& n) { return is_literal(n) && n->type.id() == TypeId::kInt64; }

// The type both operands of a numeric operator are brought to, or nullopt when none is allowed.
std::optional<DataType> common_numeric(DataType a, DataType b) {
  if (!a.is_numeric() || !b.is_numeric()) return std::nullopt;
  if (a == b) return a;
  if (a.id() == TypeId::kFloat64 || b.id() == TypeId::kFloat64) return columnar::float64();
  if (a.id() == TypeId::kUInt64 || b.id() == TypeId::kUInt64) return std::nullopt;
  return columnar::int64();  // int32 with int64
}

// Literal adaptation before promotion (see expression.h): an int64 literal takes the type of the
// other side when the value is representable there and that keeps the column's own type.
void adapt_literals(NodePtr& l, NodePtr& r, bool comparison) {
  auto adapt = [comparison](NodePtr& lit_node, const NodePtr& other) {
    if (!is_int_literal(lit_node)) return;
    const Scalar& s = literal_of(lit_node);
    const TypeId other_id = other->type.id();
    if (other_id == TypeId::kUInt64 && (!s.is_valid || s.as_int64() >= 0)) {
      lit_node = std::make_shared<LiteralNode>(
          s.is_valid ? Scalar::of_uint64(static_cast<uint64_t>(s.as_int64()))
                     : Scalar::null(columnar::uint64()));
    } else if (comparison && other_id == TypeId::kInt32 &&
               (!s.is_valid || std::in_range<int32_t>(s.as_int64()))) {
      lit_node = std::make_shared<LiteralNode>(
          s.is_valid ? Scalar::of_int32(static_cast<int32_t>(s.as_int64()))
                     : Scalar::null(columnar::int32()));
    } else if (comparison && other_id == TypeId::kTimestamp) {
      lit_node = std::make_shared<LiteralNode>(Scalar{other->type, s.is_valid, s.value});
    }
  };
  if (is_literal(l) && !is_literal(r)) adapt(l, r);
  if (is_literal(r) && !is_literal(l)) adapt(r, l);
}

bool castable(DataType from, DataType to) {
  if (from == to) return true;
  const TypeId f = from.id();
  const TypeId t = to.id();
  const bool f_num = from.is_numeric() || f == TypeId::kBool;
  const bool t_num = to.is_numeric() || t == TypeId::kBool;
  if (f_num && t_num) return true;
  if (f == TypeId::kTimestamp) return t == TypeId::kTimestamp || t == TypeId::kInt64;
  if (t == TypeId::kTimestamp) return f == TypeId::kInt64;
  return from.is_var_length() && to.is_var_length();
}

class Binder {
 public:
  Binder(const columnar::Schema& schema, const Expr& root) : schema_(schema), root_(root) {}

  Result<NodePtr> bind(const Expr& e) {
    SABOT_ASSIGN_OR_RETURN(NodePtr n, bind_node(e));
    // Fold constant sub-expressions once here instead of once per batch.
    if (!n->children.empty() && std::all_of(n->children.begin(), n->children.end(), is_literal)) {
      auto folded = n->eval(empty_batch());
      if (!folded.is_ok()) return folded.status().with_context("evaluating " + e.to_string());
      return NodePtr(std::make_shared<LiteralNode>(folded->scalar));
    }
    return n;
  }

 private:
  Status type_error(std::string msg) const { return Status::type_error(std::move(msg)); }

  Result<NodePtr> bind_node(const Expr& e) {
    const Expr::Node& n = e.node();
    switch (n.kind) {
      case ExprKind::kColumn: {
        int i = schema_.field_index(n.column_name);
        if (i < 0) {
          std::string available;
          for (const auto& f : schema_.fields()) {
            available += (available.empty() ? "" : ", ") + f.name;
          }
          return Status::not_found(
              "unknown column '" + n.column_name + "' in " + root_.to_string() +
              "; available columns: " + (available.empty() ? "(none)" : available));
        }
        const columnar::Field& f = schema_.field(i);
        return NodePtr(std::make_shared<ColumnNode>(f.type, f.nullable, i, f.name));
      }
      case ExprKind::kLiteral:
        return NodePtr(std::make_shared<LiteralNode>(n.literal));
      case ExprKind::kBinary:
        return bind_binary(e);
      case ExprKind::kNot: {
        SABOT_ASSIGN_OR_RETURN(NodePtr a, bind(n.args[0]));
        if (a->type.id() != TypeId::kBool) {
          return type_error("'not' needs a bool operand, got " + describe(n.args[0], a) + " in " +
                            e.to_string());
        }
        return NodePtr(
            std::make_shared<UnaryNode>(columnar::boolean(), a->nullable, UnaryKind::kNot, a));
      }
      case ExprKind::kIsNull:
      case ExprKind::kIsValid: {
        SABOT_ASSIGN_OR_RETURN(NodePtr a, bind(n.args[0]));
        return NodePtr(std::make_shared<UnaryNode>(
            columnar::boolean(), false,
            n.kind == ExprKind::kIsNull ? UnaryKind::kIsNull : UnaryKind::kIsValid, a));
      }
      case ExprKind::kCast: {
        SABOT_ASSIGN_OR_RETURN(NodePtr a, bind(n.args[0]));
        if (!castable(a->type, n.cast_type)) {
          return type_error("cannot cast " + describe(n.args[0], a) + " to " +
                            n.cast_type.to_string() + " in " + e.to_string());
        }
        if (a->type == n.cast_type) return a;
        return NodePtr(std::make_shared<UnaryNode>(n.cast_type, a->nullable, UnaryKind::kCast, a));
      }
      case ExprKind::kStringOp: {
        SABOT_ASSIGN_OR_RETURN(NodePtr a, bind(n.args[0]));
        if (!a->type.is_var_length()) {
          return type_error(std::string(string_op_name(n.string_op)) +
                            " needs a utf8 or binary operand, got " + describe(n.args[0], a) +
                            " in " + e.to_string());
        }
        auto u =
            std::make_shared<UnaryNode>(columnar::boolean(), a->nullable, UnaryKind::kStringOp, a);
        u->string_op = n.string_op;
        u->pattern = n.pattern;
        return NodePtr(std::move(u));
      }
      case ExprKind::kIfElse: {
        SABOT_ASSIGN_OR_RETURN(NodePtr c, bind(n.args[0]));
        SABOT_ASSIGN_OR_RETURN(NodePtr t, bind(n.args[1]));
        SABOT_ASSIGN_OR_RETURN(NodePtr f, bind(n.args[2]));
        if (c->type.id() != TypeId::kBool) {
          return type_error("if_else needs a bool condition, got " + describe(n.args[0], c) +
                            " in " + e.to_string());
        }
        adapt_literals(t, f, /*comparison=*/false);
        DataType out = t->type;
        if (!(t->type == f->type)) {
          auto common = common_numeric(t->type, f->type);
          if (!common) {
            return type_error(
                "if_else branches have incompatible types: " + describe(n.args[1], t) + " and " +
                describe(n.args[2], f) + " in " + e.to_string());
          }
          out = *common;
          SABOT_ASSIGN_OR_RETURN(t, coerce(t, out));
          SABOT_ASSIGN_OR_RETURN(f, coerce(f, out));
        }
        bool nullable = c->nullable || t->nullable || f->nullable;
        return NodePtr(std::make_shared<IfElseNode>(out, nullable, std::vector<NodePtr>{c, t, f}));
      }
    }
    return Status::internal("unknown expression kind");
  }

  Result<NodePtr> bind_binary(const Expr& e) {
    const Expr::Node& n = e.node();
    const BinaryOp op = n.binary_op;
    SABOT_ASSIGN_OR_RETURN(NodePtr l, bind(n.args[0]));
    SABOT_ASSIGN_OR_RETURN(NodePtr r, bind(n.args[1]));
    const std::string sym(binary_op_symbol(op));
    auto operands = [&] {
      return describe(n.args[0], l) + " and " + describe(n.args[1], r) + " in " + e.to_string();
    };
    const bool nullable = l->nullable || r->nullable;

    if (is_logical(op)) {
      if (l->type.id() != TypeId::kBool || r->type.id() != TypeId::kBool) {
        return type_error("'" + sym + "' needs bool operands, got " + operands());
      }
      return NodePtr(std::make_shared<BinaryNode>(columnar::boolean(), nullable, op, l, r));
    }

    adapt_literals(l, r, is_comparison(op));
    if (is_comparison(op)) {
      DataType common = l->type;
      if (!(l->type == r->type)) {
        auto c = common_numeric(l->type, r->type);
        if (!c) {
          return type_error("cannot compare " + describe(n.args[0], l) + " with " +
                            describe(n.args[1], r) + " in " + e.to_string());
        }
        common = *c;
      }
      SABOT_ASSIGN_OR_RETURN(l, coerce(l, common));
      SABOT_ASSIGN_OR_RETURN(r, coerce(r, common));
      return NodePtr(std::make_shared<BinaryNode>(columnar::boolean(), nullable, op, l, r));
    }

    // Arithmetic.
    if (l->type.id() == TypeId::kTimestamp || r->type.id() == TypeId::kTimestamp) {
      return bind_timestamp_arithmetic(op, std::move(l), std::move(r), nullable, operands());
    }
    auto common = common_numeric(l->type, r->type);
    if (!common) {
      return type_error("cannot apply '" + sym + "' to " + operands());
    }
    if (op == BinaryOp::kMod && !common->is_integer()) {
      return type_error("'%' needs integer operands, got " + operands());
    }
    SABOT_ASSIGN_OR_RETURN(l, coerce(l, *common));
    SABOT_ASSIGN_OR_RETURN(r, coerce(r, *common));
    // Integer division by zero yields null, so those results are nullable whatever the inputs.
    const bool may_null =
        nullable || (common->is_integer() && (op == BinaryOp::kDiv || op == BinaryOp::kMod));
    return NodePtr(std::make_shared<BinaryNode>(*common, may_null, op, l, r));
  }

  // timestamp +- integer -> timestamp, integer + timestamp -> timestamp, and timestamp -
  // timestamp of the same unit -> int64 (a duration in that unit). Wraps on overflow like int64.
  Result<NodePtr> bind_timestamp_arithmetic(BinaryOp op, NodePtr l, NodePtr r, bool nullable,
                                            const std::string& operands) {
    const bool l_ts = l->type.id() == TypeId::kTimestamp;
    const bool r_ts = r->type.id() == TypeId::kTimestamp;
    const auto is_int = [](const NodePtr& n) {
      return n->type.id() == TypeId::kInt32 || n->type.id() == TypeId::kInt64;
    };
    if (op == BinaryOp::kSub && l_ts && r_ts && l->type == r->type) {
      return NodePtr(std::make_shared<BinaryNode>(columnar::int64(), nullable, op, l, r));
    }
    if ((op == BinaryOp::kAdd || op == BinaryOp::kSub) && l_ts && is_int(r)) {
      SABOT_ASSIGN_OR_RETURN(r, coerce(r, columnar::int64()));
      return NodePtr(std::make_shared<BinaryNode>(l->type, nullable, op, l, r));
    }
    if (op == BinaryOp::kAdd && r_ts && is_int(l)) {
      SABOT_ASSIGN_OR_RETURN(l, coerce(l, columnar::int64()));
      return NodePtr(std::make_shared<BinaryNode>(r->type, nullable, op, l, r));
    }
    return type_error("cannot apply '" + std::string(binary_op_symbol(op)) + "' to " + operands +
                      " (timestamps allow timestamp +- integer and timestamp - timestamp of the "
                      "same unit)");
  }

  const columnar::Schema& schema_;
  const Expr& root_;
};

}  // namespace

// =============================================================================================
// BoundExpr

BoundExpr::BoundExpr(std::shared_ptr<const detail::BoundNode> root, Expr source)
    : root_(std::move(root)), source_(std::move(source)) {}

const DataType& BoundExpr::type() const { return root_->type; }

columnar::Field BoundExpr::output_field() const {
  return columnar::field(source_.name(), root_->type, root_->nullable);
}

Result<Array> BoundExpr::evaluate(const RecordBatch& batch) const {
  auto result = root_->eval(batch);
  if (!result.is_ok()) return result.status().with_context("evaluating " + source_.to_string());
  Datum& d = *result;
  if (d.is_scalar) return detail::repeat_scalar(d.scalar, batch.num_rows());
  return std::move(d.array);
}

Result<BoundExpr> bind(const Expr& expr, const columnar::Schema& schema) {
  Binder binder(schema, expr);
  SABOT_ASSIGN_OR_RETURN(NodePtr root, binder.bind(expr));
  return BoundExpr(std::move(root), expr);
}

}  // namespace sabot::compute
