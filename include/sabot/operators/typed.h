// Operators over typed rows (see sabot/columnar/record.h): map, filter and flat_map with plain C++
// functions of structs. The function is called once per row; an exception it throws fails the job
// with the offending row in the message.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <vector>

#include "sabot/columnar/record.h"
#include "sabot/compute/selection.h"
#include "sabot/runtime/plan.h"

namespace sabot::operators {

namespace detail {

inline Status row_error(const columnar::RecordBatch& batch, int64_t row, const std::string& what) {
  return Status::invalid_data("at row " + sabot::detail::describe_row(batch, row) + ": " + what);
}

// Calls fn for every row of a batch as In; stops at the first failure.
template <Record In, typename F>
Status for_each_row(const RowReader<In>& reader, const columnar::RecordBatch& batch, F&& fn) {
  In row{};
  for (int64_t r = 0; r < batch.num_rows(); ++r) {
    Status s = reader.read(batch, r, &row);
    if (!s.is_ok()) return row_error(batch, r, s.message());
    try {
      fn(row, r);
    } catch (const std::exception& e) {
      return row_error(batch, r, std::string("exception: ") + e.what());
    }
  }
  return Status::ok();
}

// Shared factory shape: binds the input to In once, builds the operator from a callable.
template <Record In, typename MakeOp>
class TypedFactory final : public runtime::OperatorFactory {
 public:
  TypedFactory(std::string kind, columnar::SchemaPtr out_schema, MakeOp make)
      : kind_(std::move(kind)), out_schema_(std::move(out_schema)), make_(std::move(make)) {}
  std::string kind() const override { return kind_; }
  Result<columnar::SchemaPtr> output_schema(
      std::span<const columnar::SchemaPtr> inputs) const override {
    if (inputs.size() != 1) return Status::invalid_argument(kind_ + " takes one input");
    RowReader<In> reader;
    SABOT_RETURN_IF_ERROR(reader.bind(*inputs[0]));
    return out_schema_ ? out_schema_ : inputs[0];
  }
  Result<std::unique_ptr<runtime::Operator>> create(
      std::span<const columnar::SchemaPtr> inputs, const runtime::OperatorContext&) const override {
    RowReader<In> reader;
    SABOT_RETURN_IF_ERROR(reader.bind(*inputs[0]));
    return make_(std::move(reader));
  }

 private:
  std::string kind_;
  columnar::SchemaPtr out_schema_;
  MakeOp make_;
};

template <Record In, typename MakeOp>
std::shared_ptr<const runtime::OperatorFactory> typed_factory(std::string kind,
                                                              columnar::SchemaPtr out,
                                                              MakeOp make) {
  return std::make_shared<TypedFactory<In, MakeOp>>(std::move(kind), std::move(out),
                                                    std::move(make));
}

}  // namespace detail

// Out fn(const In&)
template <Record In, Record Out>
std::shared_ptr<const runtime::OperatorFactory> typed_map(std::function<Out(const In&)> fn) {
  class Op final : public runtime::Operator {
   public:
    Op(RowReader<In> reader, std::function<Out(const In&)> fn)
        : reader_(std::move(reader)), fn_(std::move(fn)) {}
    Status process_batch(const columnar::RecordBatch& batch, int, runtime::Output& out) override {
      SABOT_RETURN_IF_ERROR(detail::for_each_row<In>(
          reader_, batch, [&](const In& row, int64_t) { writer_.append(fn_(row)); }));
      return out.emit(writer_.finish());
    }

   private:
    RowReader<In> reader_;
    RowWriter<Out> writer_;
    std::function<Out(const In&)> fn_;
  };
  return detail::typed_factory<In>("map", record_schema<Out>(), [fn](RowReader<In> reader) {
    return std::unique_ptr<runtime::Operator>(new Op(std::move(reader), fn));
  });
}

// bool fn(const In&): keeps the rows where fn is true; the output schema is the input schema.
template <Record In>
std::shared_ptr<const runtime::OperatorFactory> typed_filter(std::function<bool(const In&)> fn) {
  class Op final : public runtime::Operator {
   public:
    Op(RowReader<In> reader, std::function<bool(const In&)> fn)
        : reader_(std::move(reader)), fn_(std::move(fn)) {}
    Status process_batch(const columnar::RecordBatch& batch, int, runtime::Output& out) override {
      selected_.clear();
      SABOT_RETURN_IF_ERROR(detail::for_each_row<In>(reader_, batch, [&](const In& row, int64_t r) {
        if (fn_(row)) selected_.push_back(static_cast<int32_t>(r));
      }));
      if (static_cast<int64_t>(selected_.size()) == batch.num_rows()) return out.emit(batch);
      SABOT_ASSIGN_OR_RETURN(columnar::RecordBatch kept, compute::take(batch, selected_));
      return out.emit(kept);
    }

   private:
    RowReader<In> reader_;
    std::function<bool(const In&)> fn_;
    std::vector<int32_t> selected_;
  };
  return detail::typed_factory<In>("filter", nullptr, [fn](RowReader<In> reader) {
    return std::unique_ptr<runtime::Operator>(new Op(std::move(reader), fn));
  });
}

// void fn(const In&, std::vector<Out>& out): appends any number of results per row.
template <Record In, Record Out>
std::shared_ptr<const runtime::OperatorFactory> typed_flat_map(
    std::function<void(const In&, std::vector<Out>&)> fn) {
  class Op final : public runtime::Operator {
   public:
    Op(RowReader<In> reader, std::function<void(const In&, std::vector<Out>&)> fn)
        : reader_(std::move(reader)), fn_(std::move(fn)) {}
    Status process_batch(const columnar::RecordBatch& batch, int, runtime::Output& out) override {
      SABOT_RETURN_IF_ERROR(detail::for_each_row<In>(reader_, batch, [&](const In& row, int64_t) {
        results_.clear();
        fn_(row, results_);
        for (const Out& o : results_) writer_.append(o);
      }));
      return out.emit(writer_.finish());
    }

   private:
    RowReader<In> reader_;
    RowWriter<Out> writer_;
    std::function<void(const In&, std::vector<Out>&)> fn_;
    std::vector<Out> results_;
  };
  return detail::typed_factory<In>("flat_map", record_schema<Out>(), [fn](RowReader<In> reader) {
    return std::unique_ptr<runtime::Operator>(new Op(std::move(reader), fn));
  });
}

}  // namespace sabot::operators
