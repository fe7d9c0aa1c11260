// Per-record logic with keyed state and timers: KeyedProcessFunction (Flink's shape) over typed
// rows. One instance of the user's class runs per parallel subtask and sees only the keys of its
// key groups; before each call the state handles are scoped to the current row's key. Timers are
// per key, deduplicated, and fire in time order: event-time timers when the watermark passes them,
// processing-time timers when the clock does.
#pragma once

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sabot/api/record.h"
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
  // The current row's event time (ms) when the operator was given a time column.
  std::optional<int64_t> timestamp() const { return timestamp_; }
  Timestamp current_watermark() const { return watermark_; }
  Timestamp current_processing_time() const { return clock_->now(); }
  void register_event_time_timer(Timestamp t) { event_timers_.insert({t.millis(), key_}); }
  void delete_event_time_timer(Timestamp t) { event_timers_.erase({t.millis(), key_}); }
  void register_processing_time_timer(Timestamp t) { proc_timers_.insert({t.millis(), key_}); }
  void delete_processing_time_timer(Timestamp t) { proc_timers_.erase({t.millis(), key_}); }
  // The current key's values, one per key column.
  std::vector<columnar::Scalar> current_key() const { return backend_->current_key_values(); }

 private:
  template <Record In, Record Out>
  friend class ProcessOperator;
  using TimerSet = std::set<std::pair<int64_t, state::KeyId>>;  // ordered by time, deduplicated
  state::KeyedStateBackend* backend_ = nullptr;
  const Clock* clock_ = nullptr;
  state::KeyId key_ = state::kNoKey;
  std::optional<int64_t> timestamp_;
  Timestamp watermark_ = Timestamp::min();
  TimerSet event_timers_;
  TimerSet proc_timers_;
};

// Collects the rows a function emits.
template <Record Out>
class Emitter {
 public:
  void emit(const Out& row) { writer_.append(row); }

 private:
  template <Record In, Record O>
  friend class ProcessOperator;
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

// The operator that drives a KeyedProcessFunction. `make` builds one function per subtask.
template <Record In, Record Out>
class ProcessOperator final : public runtime::Operator {
 public:
  using Function = KeyedProcessFunction<In, Out>;
  ProcessOperator(std::unique_ptr<Function> fn, std::vector<int> key_columns, int time_column,
                  RowReader<In> reader, std::unique_ptr<state::KeyedStateBackend> backend)
      : fn_(std::move(fn)),
        key_columns_(std::move(key_columns)),
        time_column_(time_column),
        reader_(std::move(reader)),
        backend_(std::move(backend)) {}

  Status open(const runtime::OperatorContext& ctx) override {
    op_ctx_ = ctx;
    ctx_.backend_ = backend_.get();
    ctx_.clock_ = ctx.clock;
    RuntimeContext rc(backend_.get(), &op_ctx_);
    return call([&] { fn_->open(rc); });
  }

  Status process_batch(const columnar::RecordBatch& batch, int, runtime::Output& out) override {
    SABOT_RETURN_IF_ERROR(backend_->resolve_keys(batch, key_columns_, &ids_));
    In row{};
    // Keyed state is a random access per row: start fetching a later row's state now.
    constexpr int64_t kPrefetchAhead = 4;
    const int64_t n = batch.num_rows();
    for (int64_t r = 0; r < std::min(kPrefetchAhead, n); ++r) {
      backend_->prefetch(ids_[static_cast<size_t>(r)]);
    }
    for (int64_t r = 0; r < n; ++r) {
      if (r + kPrefetchAhead < n) backend_->prefetch(ids_[static_cast<size_t>(r + kPrefetchAhead)]);
      Status s = reader_.read(batch, r, &row);
      if (!s.is_ok()) return row_error(batch, r, s.message());
      const state::KeyId key = ids_[static_cast<size_t>(r)];
      backend_->set_current_key(key);
      ctx_.key_ = key;
      ctx_.timestamp_.reset();
      if (time_column_ >= 0 && batch.column(time_column_).is_valid(r)) {
        ctx_.timestamp_ = runtime::event_time_millis(batch.column(time_column_), r);
      }
      try {
        fn_->process(row, ctx_, out_);
      } catch (const std::exception& e) {
        return row_error(batch, r, std::string("exception: ") + e.what());
      }
    }
    return flush(out);
  }

  Status process_watermark(Timestamp t, runtime::Output& out) override {
    ctx_.watermark_ = t;
    SABOT_RETURN_IF_ERROR(fire(ctx_.event_timers_, t.millis(), out));
    return out.emit_watermark(t);
  }

  Timestamp next_processing_time() const override {
    return ctx_.proc_timers_.empty() ? Timestamp::max()
                                     : Timestamp(ctx_.proc_timers_.begin()->first);
  }
  Status on_processing_time(Timestamp now, runtime::Output& out) override {
    return fire(ctx_.proc_timers_, now.millis(), out);
  }

  // [u64 length][keyed state snapshot][event timers][processing timers]; timers are stored by
  // key bytes so that they survive re-numbered key ids.
  Status snapshot_state(CheckpointId, std::string* out) override {
    std::string backend_bytes;
    SABOT_RETURN_IF_ERROR(backend_->snapshot(&backend_bytes));
    uint64_t len = backend_bytes.size();
    out->append(reinterpret_cast<const char*>(&len), sizeof len);
    out->append(backend_bytes);
    encode_timers(ctx_.event_timers_, out);
    encode_timers(ctx_.proc_timers_, out);
    return Status::ok();
  }

  Status restore_state(std::string_view data) override {
    uint64_t len = 0;
    if (!take(&data, &len) || data.size() < len) {
      return Status::invalid_data("process operator snapshot is truncated");
    }
    SABOT_RETURN_IF_ERROR(backend_->restore(data.substr(0, len)));
    data.remove_prefix(len);
    SABOT_RETURN_IF_ERROR(decode_timers(&data, &ctx_.event_timers_));
    return decode_timers(&data, &ctx_.proc_timers_);
  }

 private:
  Status fire(Context::TimerSet& timers, int64_t until, runtime::Output& out) {
    backend_->refresh_time();
    while (!timers.empty() && timers.begin()->first <= until) {
      // Plain variables, not a structured binding: clang before 16 cannot capture bindings in the
      // lambda below.
      const auto time = timers.begin()->first;
      const auto key = timers.begin()->second;
      timers.erase(timers.begin());
      backend_->set_current_key(key);
      ctx_.key_ = key;
      ctx_.timestamp_ = time;
      Status s = call([&] { fn_->on_timer(Timestamp(time), ctx_, out_); });
      if (!s.is_ok()) return s;
    }
    return flush(out);
  }

  Status flush(runtime::Output& out) {
    if (out_.writer_.size() == 0) return Status::ok();
    return out.emit(out_.writer_.finish());
  }

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

  template <typename T>
  static bool take(std::string_view* data, T* v) {
    if (data->size() < sizeof(T)) return false;
    std::memcpy(v, data->data(), sizeof(T));
    data->remove_prefix(sizeof(T));
    return true;
  }

  Status decode_timers(std::string_view* data, Context::TimerSet* timers) {
    uint64_t n = 0;
    if (!take(data, &n)) return Status::invalid_data("process operator timers are truncated");
    std::vector<columnar::Scalar> key;
    for (uint64_t i = 0; i < n; ++i) {
      int64_t time = 0;
      uint32_t len = 0;
      if (!take(data, &time) || !take(data, &len) || data->size() < len) {
        return Status::invalid_data("process operator timer " + std::to_string(i) +
                                    " is truncated");
      }
      SABOT_RETURN_IF_ERROR(
          state::KeyRegistry::decode_key(data->substr(0, len), backend_->keys().key_types(), &key));
      data->remove_prefix(len);
      SABOT_ASSIGN_OR_RETURN(state::KeyId id, backend_->keys().resolve_values(key));
      timers->insert({time, id});
    }
    return Status::ok();
  }

  void encode_timers(const Context::TimerSet& timers, std::string* out) const {
    uint64_t n = timers.size();
    out->append(reinterpret_cast<const char*>(&n), sizeof n);
    for (const auto& [time, key] : timers) {
      out->append(reinterpret_cast<const char*>(&time), sizeof time);
      std::string_view bytes = backend_->keys().key_bytes(key);
      uint32_t len = static_cast<uint32_t>(bytes.size());
      out->append(reinterpret_cast<const char*>(&len), sizeof len);
      out->append(bytes);
    }
  }

  std::unique_ptr<Function> fn_;
  std::vector<int> key_columns_;
  int time_column_;
  RowReader<In> reader_;
  std::unique_ptr<state::KeyedStateBackend> backend_;
  runtime::OperatorContext op_ctx_;
  Context ctx_;
  Emitter<Out> out_;
  std::vector<state::KeyId> ids_;
};

// Builds ProcessOperators for a keyed stream. Validates the record type, the key columns and the
// time column against the input schema.
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
    state::KeyedBackendOptions bo;
    for (const std::string& k : keys_) {
      int i = schema.field_index(k);
      key_columns.push_back(i);
      bo.key_types.push_back(schema.field(i).type);
    }
    bo.max_parallelism = static_cast<uint32_t>(ctx.max_parallelism);
    bo.key_groups =
        state::key_groups_for_subtask(ctx.subtask_index, ctx.parallelism, ctx.max_parallelism);
    bo.clock = ctx.clock;
    bo.name = ctx.operator_name;
    SABOT_ASSIGN_OR_RETURN(auto backend, state::MemoryStateBackend().create_keyed_backend(bo));
    int time_column = options_.time_column.empty() ? -1 : schema.field_index(options_.time_column);
    return std::unique_ptr<runtime::Operator>(new ProcessOperator<In, Out>(
        make_(), std::move(key_columns), time_column, std::move(reader), std::move(backend)));
  }

 private:
  Make make_;
  std::vector<std::string> keys_;
  ProcessOptions options_;
};

}  // namespace sabot
