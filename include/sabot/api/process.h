// Per-record logic with keyed state and timers: KeyedProcessFunction (Flink's shape) over typed
// rows. One instance of the user's class runs per parallel subtask and sees only the keys of its
// key groups; before each call the state handles are scoped to the current row's key. Timers are
// per key, deduplicated, and fire in time order: event-time timers when the watermark passes them,
// processing-time timers when the clock does. The operator itself (state, timers, snapshots,
// forgetting keys) is operators/keyed_process.h; this header holds the typed API over it.
#pragma once

#include <algorithm>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sabot/api/record.h"
#include "sabot/operators/keyed_process.h"
#include "sabot/runtime/plan.h"
#include "sabot/runtime/watermark.h"
#include "sabot/state/keyed_state_backend.h"

namespace sabot {

using state::StateOptions;

// What open() gets: state handles by name. Handles stay valid for the function's lifetime.
class RuntimeContext {
 public:
  RuntimeContext(state::KeyedStateBackend* backend, const runtime::OperatorContext* op)
      : backend_(backend), op_(op) {}
  template <typename T>
  state::ValueState<T>* value_state(std::string name, StateOptions options = {}) {
    return unwrap(backend_->get_state(state::ValueStateDescriptor<T>{std::move(name), options}));
  }
  template <typename T>
  state::ListState<T>* list_state(std::string name, StateOptions options = {}) {
    return unwrap(backend_->get_state(state::ListStateDescriptor<T>{std::move(name), options}));
  }
  template <typename K, typename V>
  state::MapState<K, V>* map_state(std::string name, StateOptions options = {}) {
    return unwrap(backend_->get_state(state::MapStateDescriptor<K, V>{std::move(name), options}));
  }
  template <typename T, typename ReduceFn>
  state::ReducingState<T>* reducing_state(std::string name, ReduceFn reduce,
                                          StateOptions options = {}) {
    return unwrap(backend_->get_state(
        state::reducing_descriptor<T>(std::move(name), std::move(reduce), options)));
  }
  int subtask_index() const { return op_->subtask_index; }
  int parallelism() const { return op_->parallelism; }

 private:
  template <typename H>
  static H* unwrap(Result<H*> r) {
    if (!r.is_ok()) throw std::runtime_error(r.status().to_string());
    return *r;
  }
  state::KeyedStateBackend* backend_;
  const runtime::OperatorContext* op_;
};

// Timers and time, for the current key.
class Context {
 public:
  // The current row's event time (ms) when the operator was given a time column; a timer's time
  // in on_timer.
  std::optional<int64_t> timestamp() const { return scope_->timestamp; }
  Timestamp current_watermark() const { return scope_->watermark; }
  Timestamp current_processing_time() const { return scope_->clock->now(); }
  void register_event_time_timer(Timestamp t) {
    scope_->event_timers.insert({t.millis(), scope_->key});
  }
  void delete_event_time_timer(Timestamp t) {
    scope_->event_timers.erase({t.millis(), scope_->key});
  }
  void register_processing_time_timer(Timestamp t) {
    scope_->processing_timers.insert({t.millis(), scope_->key});
  }
  void delete_processing_time_timer(Timestamp t) {
    scope_->processing_timers.erase({t.millis(), scope_->key});
  }
  // The current key's values, one per key column.
  std::vector<columnar::Scalar> current_key() const {
    return scope_->backend->current_key_values();
  }

 private:
  template <Record In, Record Out>
  friend class ProcessDriver;
  operators::KeyedProcessScope* scope_ = nullptr;
};

// Collects the rows a function emits.
template <Record Out>
class Emitter {
 public:
  void emit(const Out& row) { writer_.append(row); }

 private:
  template <Record In, Record O>
  friend class ProcessDriver;
  RowWriter<Out> writer_;
};

template <Record In, Record Out>
class KeyedProcessFunction {
 public:
  using Input = In;
  using Output = Out;
  virtual ~KeyedProcessFunction() = default;
  virtual void open(RuntimeContext& ctx) {}
  virtual void process(const In& row, Context& ctx, Emitter<Out>& out) = 0;
  virtual void on_timer(Timestamp time, Context& ctx, Emitter<Out>& out) {}
};

struct ProcessOptions {
  // Event-time column (timestamp or int64 ms); empty: Context::timestamp() is not set.
  std::string time_column{};
};

// The typed half of the process operator (operators/keyed_process.h): reads rows into In, calls
// the function, collects its Out rows. `make` builds one function per subtask.
template <Record In, Record Out>
class ProcessDriver final : public operators::KeyedProcessDriver {
 public:
  using Function = KeyedProcessFunction<In, Out>;
  ProcessDriver(std::unique_ptr<Function> fn, int time_column, RowReader<In> reader)
      : fn_(std::move(fn)), time_column_(time_column), reader_(std::move(reader)) {}

  Status open(operators::KeyedProcessScope* scope, const runtime::OperatorContext& ctx) override {
    scope_ = scope;
    ctx_.scope_ = scope;
    op_ctx_ = ctx;
    RuntimeContext rc(scope->backend, &op_ctx_);
    return call([&] { fn_->open(rc); });
  }

  Status process_rows(const columnar::RecordBatch& batch,
                      std::span<const state::KeyId> ids) override {
    state::KeyedStateBackend* backend = scope_->backend;
    In row{};
    const int64_t n = batch.num_rows();
    for (int64_t r = 0; r < n; ++r) {
      // Keyed state is a random access per row: start fetching a later row's state now.
      backend->prefetch_ahead(ids, static_cast<size_t>(r));
      Status s = reader_.read(batch, r, &row);
      if (!s.is_ok()) return row_error(batch, r, s.message());
      const state::KeyId key = ids[static_cast<size_t>(r)];
      backend->set_current_key(key);
      scope_->key = key;
      scope_->timestamp.reset();
      if (time_column_ >= 0 && batch.column(time_column_).is_valid(r)) {
        scope_->timestamp = runtime::event_time_millis(batch.column(time_column_), r);
      }
      try {
        fn_->process(row, ctx_, out_);
      } catch (const std::exception& e) {
        return row_error(batch, r, std::string("exception: ") + e.what());
      }
    }
    return Status::ok();
  }

  Status on_timer(Timestamp time) override {
    return call([&] { fn_->on_timer(time, ctx_, out_); });
  }

  Result<std::optional<columnar::RecordBatch>> take_output() override {
    if (out_.writer_.size() == 0) return std::optional<columnar::RecordBatch>();
    return std::optional<columnar::RecordBatch>(out_.writer_.finish());
  }

 private:
  template <typename F>
  static Status call(F&& f) {
    try {
      f();
      return Status::ok();
    } catch (const std::exception& e) {
      return Status::internal(std::string("exception: ") + e.what());
    }
  }

  static Status row_error(const columnar::RecordBatch& batch, int64_t r, const std::string& what) {
    return Status::invalid_data("at row " + detail::describe_row(batch, r) + ": " + what);
  }

  std::unique_ptr<Function> fn_;
  int time_column_;
  RowReader<In> reader_;
  operators::KeyedProcessScope* scope_ = nullptr;
  runtime::OperatorContext op_ctx_;
  Context ctx_;
  Emitter<Out> out_;
};

// Builds the process operators of a keyed stream. Validates the record type, the key columns and
// the time column against the input schema.
template <Record In, Record Out>
class ProcessFactory final : public runtime::OperatorFactory {
 public:
  using Make = std::function<std::unique_ptr<KeyedProcessFunction<In, Out>>()>;
  ProcessFactory(Make make, std::vector<std::string> keys, ProcessOptions options)
      : make_(std::move(make)), keys_(std::move(keys)), options_(std::move(options)) {}
  std::string kind() const override { return "process"; }

  Result<columnar::SchemaPtr> output_schema(
      std::span<const columnar::SchemaPtr> inputs) const override {
    if (inputs.size() != 1) return Status::invalid_argument("process takes one input");
    RowReader<In> reader;
    SABOT_RETURN_IF_ERROR(reader.bind(*inputs[0]));
    if (keys_.empty()) return Status::invalid_argument("process needs a keyed stream (key_by)");
    for (const std::string& k : keys_) {
      SABOT_RETURN_IF_ERROR(inputs[0]->require_field_index(k).status());
    }
    if (!options_.time_column.empty()) {
      SABOT_RETURN_IF_ERROR(runtime::validate_watermark_strategy(
          runtime::monotonic_timestamps(options_.time_column), *inputs[0]));
    }
    return record_schema<Out>();
  }

  Result<std::unique_ptr<runtime::Operator>> create(
      std::span<const columnar::SchemaPtr> inputs,
      const runtime::OperatorContext& ctx) const override {
    const columnar::Schema& schema = *inputs[0];
    RowReader<In> reader;
    SABOT_RETURN_IF_ERROR(reader.bind(schema));
    std::vector<int> key_columns;
    std::vector<columnar::DataType> key_types;
    for (const std::string& k : keys_) {
      int i = schema.field_index(k);
      key_columns.push_back(i);
      key_types.push_back(schema.field(i).type);
    }
    SABOT_ASSIGN_OR_RETURN(auto backend, operators::make_keyed_backend(ctx, std::move(key_types)));
    int time_column = options_.time_column.empty() ? -1 : schema.field_index(options_.time_column);
    auto driver = std::make_unique<ProcessDriver<In, Out>>(make_(), time_column, std::move(reader));
    return std::unique_ptr<runtime::Operator>(new operators::KeyedProcessOperator(
        std::move(driver), std::move(key_columns), std::move(backend), ctx));
  }

 private:
  Make make_;
  std::vector<std::string> keys_;
  ProcessOptions options_;
};

}  // namespace sabot
