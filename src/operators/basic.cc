#include "sabot/operators/basic.h"

#include "sabot/compute/selection.h"

namespace sabot::operators {

using columnar::Array;
using columnar::Field;
using columnar::RecordBatch;
using columnar::Schema;
using columnar::SchemaPtr;
using runtime::Operator;
using runtime::OperatorContext;
using runtime::OperatorFactory;
using runtime::Output;

namespace {

Status single_input(std::span<const SchemaPtr> inputs, const std::string& kind) {
  if (inputs.size() != 1) {
    return Status::invalid_argument(kind + " takes one input, got " +
                                    std::to_string(inputs.size()));
  }
  return Status::ok();
}

// ---- filter ----

class FilterOperator final : public Operator {
 public:
  explicit FilterOperator(compute::BoundExpr predicate) : predicate_(std::move(predicate)) {}
  Status process_batch(const RecordBatch& batch, int, Output& out) override {
    SABOT_ASSIGN_OR_RETURN(Array mask, predicate_.evaluate(batch));
    SABOT_ASSIGN_OR_RETURN(RecordBatch kept, compute::filter(batch, mask));
    return out.emit(kept);
  }

 private:
  compute::BoundExpr predicate_;
};

class FilterFactory final : public OperatorFactory {
 public:
  explicit FilterFactory(compute::Expr predicate) : predicate_(std::move(predicate)) {}
  std::string kind() const override { return "filter"; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> inputs) const override {
    SABOT_RETURN_IF_ERROR(single_input(inputs, kind()));
    SABOT_ASSIGN_OR_RETURN(compute::BoundExpr bound, compute::bind(predicate_, *inputs[0]));
    if (!(bound.type() == columnar::boolean())) {
      return Status::type_error("filter predicate " + predicate_.to_string() + " is " +
                                bound.type().to_string() + ", not bool");
    }
    return inputs[0];
  }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr> inputs,
                                           const OperatorContext&) const override {
    SABOT_ASSIGN_OR_RETURN(compute::BoundExpr bound, compute::bind(predicate_, *inputs[0]));
    return std::unique_ptr<Operator>(new FilterOperator(std::move(bound)));
  }

 private:
  compute::Expr predicate_;
};

// ---- select / with_column: both compute a list of expressions ----

class ProjectOperator final : public Operator {
 public:
  ProjectOperator(std::vector<compute::BoundExpr> exprs, SchemaPtr schema)
      : exprs_(std::move(exprs)), schema_(std::move(schema)) {}
  Status process_batch(const RecordBatch& batch, int, Output& out) override {
    std::vector<Array> cols;
    cols.reserve(exprs_.size());
    for (const auto& e : exprs_) {
      SABOT_ASSIGN_OR_RETURN(Array c, e.evaluate(batch));
      cols.push_back(std::move(c));
    }
    return out.emit(RecordBatch::make_unchecked(schema_, std::move(cols), batch.num_rows()));
  }

 private:
  std::vector<compute::BoundExpr> exprs_;
  SchemaPtr schema_;
};

class ProjectFactory final : public OperatorFactory {
 public:
  // with_column when `added_name` is set: the input columns plus (or replaced by) one expression.
  ProjectFactory(std::string kind, std::vector<compute::Expr> exprs, std::string added_name)
      : kind_(std::move(kind)), exprs_(std::move(exprs)), added_name_(std::move(added_name)) {}
  std::string kind() const override { return kind_; }

  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> inputs) const override {
    SABOT_RETURN_IF_ERROR(single_input(inputs, kind()));
    std::vector<compute::BoundExpr> bound;
    SchemaPtr schema;
    SABOT_RETURN_IF_ERROR(plan(*inputs[0], &bound, &schema));
    return schema;
  }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr> inputs,
                                           const OperatorContext&) const override {
    std::vector<compute::BoundExpr> bound;
    SchemaPtr schema;
    SABOT_RETURN_IF_ERROR(plan(*inputs[0], &bound, &schema));
    return std::unique_ptr<Operator>(new ProjectOperator(std::move(bound), std::move(schema)));
  }

 private:
  std::vector<compute::Expr> expanded(const Schema& input) const {
    if (added_name_.empty()) return exprs_;
    std::vector<compute::Expr> out;
    bool replaced = false;
    for (const Field& f : input.fields()) {
      if (f.name == added_name_) {
        out.push_back(exprs_[0].as(added_name_));
        replaced = true;
      } else {
        out.push_back(compute::col(f.name));
      }
    }
    if (!replaced) out.push_back(exprs_[0].as(added_name_));
    return out;
  }

  Status plan(const Schema& input, std::vector<compute::BoundExpr>* bound,
              SchemaPtr* schema) const {
    std::vector<Field> fields;
    for (const compute::Expr& e : expanded(input)) {
      SABOT_ASSIGN_OR_RETURN(compute::BoundExpr b, compute::bind(e, input));
      std::string name = e.name();
      bool nullable = true;
      int i = input.field_index(name);
      if (e.kind() == compute::ExprKind::kColumn && i >= 0) nullable = input.field(i).nullable;
      fields.push_back(columnar::field(name, b.type(), nullable));
      bound->push_back(std::move(b));
    }
    auto s = Schema::make(std::move(fields));
    if (!s.is_ok()) return s.status();
    *schema = *s;
    return Status::ok();
  }

  std::string kind_;
  std::vector<compute::Expr> exprs_;
  std::string added_name_;
};

// ---- map_batches / flat_map_batches ----

Status check_schema(const RecordBatch& b, const SchemaPtr& expected) {
  if (b.schema() == *expected) return Status::ok();
  return Status::type_error("function returned a batch with schema {" + b.schema().to_string() +
                            "} but declared {" + expected->to_string() + "}");
}

class CheckedOutput final : public Output {
 public:
  CheckedOutput(Output& inner, const SchemaPtr& schema) : inner_(inner), schema_(schema) {}
  Status emit(const RecordBatch& batch) override {
    SABOT_RETURN_IF_ERROR(check_schema(batch, schema_));
    return inner_.emit(batch);
  }
  Status emit_watermark(Timestamp time) override { return inner_.emit_watermark(time); }

 private:
  Output& inner_;
  const SchemaPtr& schema_;
};

class FlatMapOperator final : public Operator {
 public:
  FlatMapOperator(FlatBatchFunction fn, SchemaPtr schema)
      : fn_(std::move(fn)), schema_(std::move(schema)) {}
  Status process_batch(const RecordBatch& batch, int, Output& out) override {
    CheckedOutput checked(out, schema_);
    return fn_(batch, checked);
  }

 private:
  FlatBatchFunction fn_;
  SchemaPtr schema_;
};

class FlatMapFactory final : public OperatorFactory {
 public:
  FlatMapFactory(std::string kind, FlatBatchFunction fn, SchemaPtr schema)
      : kind_(std::move(kind)), fn_(std::move(fn)), schema_(std::move(schema)) {}
  std::string kind() const override { return kind_; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> inputs) const override {
    SABOT_RETURN_IF_ERROR(single_input(inputs, kind()));
    if (!fn_) return Status::invalid_argument(kind_ + " has no function");
    return schema_ ? schema_ : inputs[0];
  }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr> inputs,
                                           const OperatorContext&) const override {
    return std::unique_ptr<Operator>(new FlatMapOperator(fn_, schema_ ? schema_ : inputs[0]));
  }

 private:
  std::string kind_;
  FlatBatchFunction fn_;
  SchemaPtr schema_;
};

// ---- union / identity ----

class PassThrough final : public Operator {
 public:
  Status process_batch(const RecordBatch& batch, int, Output& out) override {
    return out.emit(batch);
  }
};

class PassThroughFactory final : public OperatorFactory {
 public:
  PassThroughFactory(std::string kind, bool many_inputs)
      : kind_(std::move(kind)), many_inputs_(many_inputs) {}
  std::string kind() const override { return kind_; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> inputs) const override {
    if (!many_inputs_) SABOT_RETURN_IF_ERROR(single_input(inputs, kind()));
    for (size_t i = 1; i < inputs.size(); ++i) {
      if (!(*inputs[i] == *inputs[0])) {
        return Status::type_error(kind_ + ": input " + std::to_string(i) + " has schema {" +
                                  inputs[i]->to_string() + "} but input 0 has {" +
                                  inputs[0]->to_string() + "}");
      }
    }
    return inputs[0];
  }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr>,
                                           const OperatorContext&) const override {
    return std::unique_ptr<Operator>(new PassThrough());
  }

 private:
  std::string kind_;
  bool many_inputs_;
};

// ---- watermark assigner ----

class WatermarkAssigner final : public Operator {
 public:
  WatermarkAssigner(runtime::WatermarkStrategy s, int column) : s_(std::move(s)), column_(column) {}
  Status process_batch(const RecordBatch& batch, int, Output& out) override {
    SABOT_RETURN_IF_ERROR(out.emit(batch));
    int64_t ts = runtime::max_event_time_millis(batch.column(column_));
    if (ts == INT64_MIN) return Status::ok();
    max_ts_ = std::max(max_ts_, ts);
    const int64_t bound = s_.kind == runtime::WatermarkStrategy::Kind::kBoundedOutOfOrderness
                              ? s_.max_out_of_orderness.count()
                              : 0;
    const int64_t wm = max_ts_ - bound - 1;
    if (wm > emitted_) {
      emitted_ = wm;
      return out.emit_watermark(Timestamp(wm));
    }
    return Status::ok();
  }
  Status process_watermark(Timestamp t, Output& out) override {
    return t == Timestamp::max() ? out.emit_watermark(t) : Status::ok();
  }

 private:
  runtime::WatermarkStrategy s_;
  int column_;
  int64_t max_ts_ = INT64_MIN;
  int64_t emitted_ = INT64_MIN;
};

class WatermarkAssignerFactory final : public OperatorFactory {
 public:
  explicit WatermarkAssignerFactory(runtime::WatermarkStrategy s) : s_(std::move(s)) {}
  std::string kind() const override { return "watermarks"; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> inputs) const override {
    SABOT_RETURN_IF_ERROR(single_input(inputs, kind()));
    SABOT_RETURN_IF_ERROR(runtime::validate_watermark_strategy(s_, *inputs[0]));
    return inputs[0];
  }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr> inputs,
                                           const OperatorContext&) const override {
    int col = s_.kind == runtime::WatermarkStrategy::Kind::kNone
                  ? -1
                  : inputs[0]->field_index(s_.timestamp_column);
    if (col < 0) return std::unique_ptr<Operator>(new PassThrough());
    return std::unique_ptr<Operator>(new WatermarkAssigner(s_, col));
  }

 private:
  runtime::WatermarkStrategy s_;
};

}  // namespace

std::shared_ptr<const OperatorFactory> assign_watermarks(runtime::WatermarkStrategy s) {
  return std::make_shared<WatermarkAssignerFactory>(std::move(s));
}

std::shared_ptr<const OperatorFactory> filter(compute::Expr predicate) {
  return std::make_shared<FilterFactory>(std::move(predicate));
}

std::shared_ptr<const OperatorFactory> select(std::vector<compute::Expr> exprs) {
  return std::make_shared<ProjectFactory>("select", std::move(exprs), std::string());
}

std::shared_ptr<const OperatorFactory> with_column(std::string name, compute::Expr expr) {
  return std::make_shared<ProjectFactory>(
      "with_column", std::vector<compute::Expr>{std::move(expr)}, std::move(name));
}

std::shared_ptr<const OperatorFactory> map_batches(BatchFunction fn, SchemaPtr output_schema) {
  FlatBatchFunction flat;
  if (fn) {
    flat = [fn = std::move(fn)](const RecordBatch& b, Output& out) -> Status {
      SABOT_ASSIGN_OR_RETURN(RecordBatch r, fn(b));
      return out.emit(r);
    };
  }
  return std::make_shared<FlatMapFactory>("map_batches", std::move(flat), std::move(output_schema));
}

std::shared_ptr<const OperatorFactory> flat_map_batches(FlatBatchFunction fn,
                                                        SchemaPtr output_schema) {
  return std::make_shared<FlatMapFactory>("flat_map", std::move(fn), std::move(output_schema));
}

std::shared_ptr<const OperatorFactory> union_all() {
  return std::make_shared<PassThroughFactory>("union", true);
}

std::shared_ptr<const OperatorFactory> identity(std::string kind) {
  return std::make_shared<PassThroughFactory>(std::move(kind), false);
}

}  // namespace sabot::operators
