// The DataStream API: an Environment collects a logical plan from fluent DataStream calls and
// execute() validates and runs it. An Environment and its streams are used from one thread while
// the plan is built; execute() blocks until the job ends.
#pragma once

#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "sabot/api/process.h"
#include "sabot/api/record.h"
#include "sabot/api/rolling.h"
#include "sabot/compute/expression.h"
#include "sabot/connectors/files.h"
#include "sabot/connectors/topic.h"
#include "sabot/operators/basic.h"
#include "sabot/operators/dedup.h"
#include "sabot/operators/join.h"
#include "sabot/operators/sources_sinks.h"
#include "sabot/operators/topn.h"
#include "sabot/operators/typed.h"
#include "sabot/operators/window.h"
#include "sabot/runtime/executor.h"
#include "sabot/runtime/restart.h"
#include "sabot/state/rocksdb_backend.h"

namespace sabot {

using columnar::RecordBatch;
using columnar::SchemaPtr;
using compute::avg;
using compute::col;
using compute::count;
using compute::count_distinct;
using compute::Expr;
using compute::first;
using compute::last;
using compute::lit;
using compute::max;
using compute::min;
using compute::stddev;
using compute::sum;
using compute::variance;
using connectors::FileFormat;
using operators::JoinKind;
using operators::WindowSpec;
inline WindowSpec tumbling(std::chrono::milliseconds size) { return WindowSpec::tumbling(size); }
inline WindowSpec sliding(std::chrono::milliseconds size, std::chrono::milliseconds slide) {
  return WindowSpec::sliding(size, slide);
}
inline WindowSpec session(std::chrono::milliseconds gap) { return WindowSpec::session(gap); }
inline WindowSpec count_window(int64_t n) { return WindowSpec::count_window(n); }
inline WindowSpec global_window() { return WindowSpec::global_window(); }
using runtime::bounded_out_of_orderness;
using runtime::monotonic_timestamps;
using runtime::WatermarkStrategy;

struct EnvironmentOptions {
  // Default parallelism of every source and operator; a stream's set_parallelism() overrides it.
  int parallelism = 1;
  // Threads that run all tasks of a job. 0: one per core.
  int worker_threads = 0;
  // Key groups: the most subtasks a keyed operator can ever be split into. Default 128.
  int max_parallelism = 128;
  // Batches buffered per channel before the producer is backpressured. Default 8.
  int channel_capacity = 8;
  // Rows a source produces per batch (at most). Default 4096.
  int64_t batch_size = 4096;
  // Time source; null means the system clock. Not owned.
  const Clock* clock = nullptr;
  // Where the job hands its operators' snapshots at every checkpoint barrier; wait on it for
  // checkpoint n and take the JobSnapshot (runtime/checkpoint.h). Null: snapshots are dropped.
  // Serves one running job at a time.
  std::shared_ptr<runtime::CheckpointStore> checkpoints = nullptr;
  // Start the job from this snapshot of an earlier run (same uids, same max_parallelism; any
  // parallelism). Null: start empty. See runtime::ExecutionOptions::restore_from.
  std::shared_ptr<const runtime::JobSnapshot> restore_from = nullptr;
  // Checkpointing (see runtime::ExecutionOptions for each): a checkpoint every interval on the
  // clock (0: only on demand, Job::trigger_checkpoint), written to `checkpoint_storage` when set
  // (checkpoint::CheckpointStorage::open(dir)), aborted after the timeout; the delivery guarantee
  // every operator sees (kExactlyOnce: a final checkpoint after the input ended).
  std::chrono::milliseconds checkpoint_interval{0};
  std::shared_ptr<checkpoint::CheckpointStorage> checkpoint_storage = nullptr;
  std::chrono::milliseconds checkpoint_timeout{std::chrono::minutes(10)};
  runtime::DeliveryGuarantee delivery = runtime::DeliveryGuarantee::kNone;
  // Where keyed process functions keep their keyed state: state::rocksdb(dir, options)
  // (state/rocksdb_backend.h) for state larger than memory. Null (the default): memory.
  std::shared_ptr<const state::StateBackend> state_backend = nullptr;
  // With the RocksDB backend and a checkpoint_storage, keyed process functions checkpoint
  // incrementally: a checkpoint copies only the SST files that no earlier one holds (the storage
  // keeps them once, in DIR/shared). false: every checkpoint holds the whole state.
  bool incremental_checkpoints = true;
  // Restore from a snapshot holding state of uids this job no longer has (ignored then).
  bool allow_non_restored_state = false;
  // Test hook: called before each completed checkpoint is written; an error aborts it.
  std::function<Status(const runtime::JobSnapshot&)> checkpoint_write_hook = nullptr;
  // Where restore_from was read from (a checkpoint directory), only for the "restored from" line
  // on stderr; empty: "memory".
  std::string restore_from_path{};

  // ---- Recovery (docs/fault-tolerance.md) ----
  // With checkpoint_storage and no restore_from: start from the newest usable checkpoint of this
  // job (same job name) in the storage when there is one, saying "restored from checkpoint <n>"
  // on stderr. false: start fresh (`--no-restore`); new checkpoint numbers continue after the
  // existing ones.
  // Whenever a job starts from a snapshot (given, loaded or a restart's), execute() and start()
  // print exactly one line on std::cerr: "restored from checkpoint <n> (<path or memory>)"
  // ("restored from savepoint <n> ..." for a savepoint).
  bool restore_latest = true;
  // What a failure inside the running job does (runtime/restart.h). Default: no restart.
  // execute() only: after a failure of the running job (not a validation error, not a failure
  // to start, not cancellation) it waits strategy.delay_before(k) on `clock` and starts the job
  // again from the newest complete checkpoint (the failed run's, else the one that run started
  // from, else empty), at most max_attempts times. start() leaves restarts to its caller.
  runtime::RestartStrategy restart = runtime::RestartStrategy::none();
  // Called by execute() after each failure that will be restarted, before the wait: restart
  // `attempt` (1-based) of the strategy, the failure, the delay. For monitoring and tests. Null:
  // none.
  std::function<void(int attempt, const Status& cause, std::chrono::milliseconds delay)>
      on_restart = nullptr;
};

// The outcome of execute(): the status, timing and the metrics of every operator.
class JobResult {
 public:
  JobResult(Status status, std::shared_ptr<const runtime::JobMetrics> metrics, double wall_seconds,
            int restarts = 0)
      : status_(std::move(status)),
        metrics_(std::move(metrics)),
        wall_seconds_(wall_seconds),
        restarts_(restarts) {}
  const Status& status() const { return status_; }
  bool ok() const { return status_.is_ok(); }
  int exit_code() const { return status_.exit_code(); }
  double wall_seconds() const { return wall_seconds_; }
  // Empty metrics when the job never started (invalid plan). After restarts: the metrics of the
  // final run only (each run starts its counters at zero).
  const runtime::JobMetrics& metrics() const { return *metrics_; }
  // How many times the job was restarted after a failure (EnvironmentOptions::restart).
  int restarts() const { return restarts_; }

 private:
  Status status_;
  std::shared_ptr<const runtime::JobMetrics> metrics_;
  double wall_seconds_;
  int restarts_ = 0;
};

class DataStream;
class KeyedStream;
class WindowedStream;

class Environment {
 public:
  explicit Environment(EnvironmentOptions options = {});
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  DataStream from_source(std::shared_ptr<const runtime::Source> source, std::string name = {});
  // Each batch is one split, read in order.
  DataStream from_batches(std::vector<RecordBatch> batches, SchemaPtr schema = nullptr);
  DataStream from_generator(std::string name, SchemaPtr schema, int num_splits,
                            operators::GeneratorFunction fn);
  // A collection of typed records (SABOT_RECORD structs) as one batch.
  template <Record T>
  DataStream from_records(const std::vector<T>& records);

  // Messages of a topic ("memory://name") decoded by `codec`, e.g. codec::json(schema). `options`
  // sets the bad-record policy and start position; its url and codec are taken from the
  // arguments.
  DataStream from_topic(const std::string& url, codec::CodecPtr codec,
                        connectors::TopicSourceOptions options = {});

  // Rows of files (JSON lines, CSV or Arrow IPC; see connectors::FileSourceOptions), e.g.
  // env.from_file({.paths = {"txns.jsonl"}, .format = FileFormat::kJsonLines, .schema = s}).
  DataStream from_file(connectors::FileSourceOptions options);

  // Validates the whole plan (every problem at once) and runs it to the end, restarting it after
  // failures as options().restart allows. Starts from restore_from, else (restore_latest) from
  // the newest usable checkpoint of `job_name` in checkpoint_storage.
  JobResult execute(const std::string& job_name = "sabot-job");
  // Validates and starts the job without waiting for it: the caller may wait for a checkpoint
  // (options().checkpoints), cancel() the job and wait() for it. Run a job, take its snapshot,
  // start again from it:
  //   auto store = std::make_shared<runtime::CheckpointStore>();
  //   Environment env({.checkpoints = store});  ... build ...;  auto job = env.start();
  //   auto snap = store->wait_for(CheckpointId(1));  (*job)->cancel();  (void)(*job)->wait();
  //   Environment again({.restore_from = std::make_shared<runtime::JobSnapshot>(*snap)});
  Result<std::unique_ptr<runtime::Job>> start(const std::string& job_name = "sabot-job");
  // The same checks as execute() without running anything.
  Status validate() const;

  const EnvironmentOptions& options() const { return options_; }
  runtime::LogicalPlan& plan() { return plan_; }
  // Records a problem found while the plan was built; execute() reports it with the others.
  void add_problem(std::string problem) { problems_.push_back(std::move(problem)); }

 private:
  runtime::ExecutionOptions execution_options() const;
  // The snapshot a job named `job_name` starts from (null: empty) and where it was read from.
  struct StartPoint {
    std::shared_ptr<const runtime::JobSnapshot> snapshot;
    std::string where;  // a checkpoint directory or "memory"
    int restarts = 0;   // restarts before this run (for the run's metrics)
  };
  Result<StartPoint> initial_start_point(const std::string& job_name) const;
  // Starts one run from `from`, printing the "restored from" line when it restores.
  Result<std::unique_ptr<runtime::Job>> start_from(const std::string& job_name,
                                                   const StartPoint& from) const;
  EnvironmentOptions options_;
  runtime::LogicalPlan plan_;
  std::vector<std::string> problems_;
};

// A stream of record batches: the output of one plan node, plus how the next operator should
// receive it (forward unless rebalance(), broadcast() or key_by() said otherwise). Cheap to copy.
class DataStream {
 public:
  DataStream(Environment* env, int node, runtime::PlanEdge edge_template)
      : env_(env), node_(node), edge_(std::move(edge_template)) {}

  DataStream filter(Expr predicate) const;
  DataStream select(std::vector<Expr> exprs) const;
  DataStream with_column(std::string name, Expr expr) const;
  // `output_schema` null: the function keeps the input schema.
  DataStream map_batches(operators::BatchFunction fn, SchemaPtr output_schema = nullptr) const;
  DataStream flat_map(operators::FlatBatchFunction fn, SchemaPtr output_schema = nullptr) const;
  // Typed rows (see sabot/api/record.h): `stream.map<Txn, Alert>([](const Txn& t) { ... })`.
  template <Record In, Record Out, typename F>
  DataStream map(F fn) const {
    return apply(operators::typed_map<In, Out>(std::function<Out(const In&)>(std::move(fn))));
  }
  template <Record In, typename F>
  DataStream filter(F fn) const {
    return apply(operators::typed_filter<In>(std::function<bool(const In&)>(std::move(fn))));
  }
  template <Record In, Record Out, typename F>
  DataStream flat_map(F fn) const {
    return apply(operators::typed_flat_map<In, Out>(
        std::function<void(const In&, std::vector<Out>&)>(std::move(fn))));
  }
  DataStream union_with(const std::vector<DataStream>& others) const;
  DataStream union_with(const DataStream& other) const { return union_with(std::vector{other}); }
  KeyedStream key_by(std::vector<std::string> columns) const;
  KeyedStream key_by(std::string column) const;
  // key_by({"id", "name"}): without this overload a braced pair of literals is ambiguous (a
  // std::string can be built from two const char*).
  KeyedStream key_by(std::initializer_list<std::string> columns) const;
  DataStream rebalance() const;
  DataStream broadcast() const;
  // Event time. On a source, watermarks are tracked per split (partition) with idle detection; on
  // any other stream an assigner computes them per subtask from the rows it sees.
  DataStream with_watermarks(runtime::WatermarkStrategy strategy) const;
  // The side output `tag` of the operator that produces this stream (e.g. "late" from a window).
  DataStream side_output(std::string tag) const;
  // Applies any registered operator factory (extension point for the operators of later modules).
  DataStream apply(std::shared_ptr<const runtime::OperatorFactory> factory) const;

  // Sets the parallelism / name of the node that produces this stream.
  DataStream set_parallelism(int parallelism) const;
  DataStream name(std::string name) const;
  // Sets the stable identity of the node that produces this stream: its snapshots are addressed
  // by it, so a job restores from a snapshot of an earlier version of itself as long as its
  // stateful operators keep their uids. Without it the operator gets "<kind>-<k>" (its kind and
  // the number of operators of that kind before it), which moves when an operator of the same kind
  // is added before it: set uids on the stateful operators of long-lived jobs. Unique in the job,
  // non-empty, printable (checked by execute()).
  DataStream uid(std::string uid) const;

  // Sinks.
  DataStream sink(std::shared_ptr<const runtime::OperatorFactory> sink) const;
  DataStream print(std::ostream& out = std::cout) const;
  std::shared_ptr<operators::CollectedBatches> collect() const;
  DataStream for_each_batch(operators::BatchCallback fn) const;
  DataStream blackhole() const;
  // Writes rows to a file (one per subtask when parallel; see connectors::FileSinkOptions).
  DataStream to_file(connectors::FileSinkOptions options) const;
  // Encodes rows with `codec` (e.g. codec::json()) as messages of topic `url`.
  DataStream to_topic(const std::string& url, codec::CodecPtr codec,
                      connectors::TopicSinkOptions options = {}) const;

  // Windows over the whole stream (parallelism 1).
  WindowedStream window_all(WindowSpec spec) const;
  // The event-time column set by with_watermarks() upstream (empty when none).
  const std::string& time_column() const { return time_column_; }

  Environment& env() const { return *env_; }
  int node_id() const { return node_; }

 protected:
  DataStream add(std::shared_ptr<const runtime::OperatorFactory> factory, bool is_sink) const;
  Environment* env_;
  int node_;
  runtime::PlanEdge edge_;   // how the next operator reads this stream
  std::string time_column_;  // event time, carried downstream from with_watermarks()
  friend class WindowedStream;
  friend class KeyedStream;
};

// A stream partitioned by key columns: every operator applied to it sees all rows of a key in the
// same subtask. Keyed state, timers and windows build on it.
class KeyedStream : public DataStream {
 public:
  KeyedStream(Environment* env, int node, std::vector<std::string> keys, std::string time_column);
  const std::vector<std::string>& keys() const { return edge_.key_columns; }

  // Windows per key on the event-time column (see with_watermarks) or counts.
  WindowedStream window(WindowSpec spec) const;
  // Keeps the first row of every key.
  DataStream deduplicate() const;
  // The n rows with the largest (descending) or smallest `order_column` per key, with a `rank`
  // column, emitted when the input ends.
  DataStream top_n(std::string order_column, int64_t n, bool descending = true) const;
  // Rolling reduce: `T fn(const T& accumulated, const T& next)` per key, emitting every update.
  template <Record T, typename F>
  DataStream reduce(F fn) const {
    return process(ReduceFunction<T, F>(std::move(fn)));
  }
  // Rolling aggregate with an aggregate function (create/add/merge/result), emitting every update.
  template <Record In, typename Acc, Record Out, typename Fn>
  DataStream aggregate(Fn fn) const {
    return process(RollingAggregateFunction<In, Acc, Out, Fn>(std::move(fn)));
  }
  // Two-input joins: this stream is the left input, `right` the right; both keyed on the join
  // keys. `factory` is one of the operators of sabot/operators/join.h.
  DataStream join_with(const KeyedStream& right,
                       std::shared_ptr<const runtime::OperatorFactory> factory) const;
  // right.time in [left.time + lower, left.time + upper], same key, on both streams' event-time
  // columns.
  DataStream interval_join(const KeyedStream& right, std::chrono::milliseconds lower,
                           std::chrono::milliseconds upper, JoinKind kind = JoinKind::kInner) const;
  // For each left row the latest right row with the same key at or before its time.
  DataStream asof_join(const KeyedStream& right, JoinKind kind = JoinKind::kInner) const;
  // Enrich with the latest right row per key (right: a changelog/upsert stream).
  DataStream join(const KeyedStream& table, JoinKind kind = JoinKind::kInner) const;

  // Runs a KeyedProcessFunction (see sabot/api/process.h); each subtask gets a copy of `fn`.
  template <typename F>
  requires std::derived_from<F, KeyedProcessFunction<typename F::Input, typename F::Output>>
      DataStream process(F fn, ProcessOptions options = {})
  const {
    using Factory = ProcessFactory<typename F::Input, typename F::Output>;
    auto make =
        [fn]() -> std::unique_ptr<KeyedProcessFunction<typename F::Input, typename F::Output>> {
      return std::make_unique<F>(fn);
    };
    return apply(std::make_shared<Factory>(std::move(make), keys(), std::move(options)));
  }
};

// A windowed stream waiting for its aggregation. Options chain: `.allowed_lateness(5s)`.
class WindowedStream {
 public:
  WindowedStream(DataStream input, operators::WindowOptions options)
      : input_(std::move(input)), options_(std::move(options)) {}
  WindowedStream allowed_lateness(std::chrono::milliseconds lateness) const;
  // Late rows go to side output "late" (read it with side_output("late")) instead of being dropped.
  WindowedStream late_to_side_output() const;
  WindowedStream early_fire_every(std::chrono::milliseconds interval) const;
  // The event-time column, when it is not the one set by with_watermarks().
  WindowedStream on(std::string time_column) const;
  // Output: key columns, window_start, window_end, then one column per aggregate.
  DataStream aggregate(std::vector<compute::Aggregate> aggregates) const;
  DataStream process(SchemaPtr output_schema, operators::WindowFunction fn) const;

 private:
  DataStream input_;
  operators::WindowOptions options_;
};

template <Record T>
DataStream Environment::from_records(const std::vector<T>& records) {
  RowWriter<T> writer;
  for (const T& r : records) writer.append(r);
  SchemaPtr schema = writer.schema();
  return from_batches({writer.finish()}, std::move(schema));
}

}  // namespace sabot
