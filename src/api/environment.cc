#include "sabot/api/environment.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

namespace sabot {

using namespace std::chrono_literals;
using runtime::Partitioning;
using runtime::PlanEdge;

Environment::Environment(EnvironmentOptions options) : options_(options) {}

runtime::ExecutionOptions Environment::execution_options() const {
  runtime::ExecutionOptions o;
  o.worker_threads = options_.worker_threads;
  o.max_parallelism = options_.max_parallelism;
  o.channel_capacity = options_.channel_capacity;
  o.source_batch_rows = options_.batch_size;
  if (options_.clock) o.clock = options_.clock;
  o.checkpoints = options_.checkpoints;
  o.restore_from = options_.restore_from;
  o.checkpoint_interval = options_.checkpoint_interval;
  o.checkpoint_storage = options_.checkpoint_storage;
  o.checkpoint_timeout = options_.checkpoint_timeout;
  o.delivery = options_.delivery;
  o.state_backend = options_.state_backend;
  o.incremental_checkpoints = options_.incremental_checkpoints;
  o.allow_non_restored_state = options_.allow_non_restored_state;
  o.checkpoint_write_hook = options_.checkpoint_write_hook;
  return o;
}

DataStream Environment::from_source(std::shared_ptr<const runtime::Source> source,
                                    std::string name) {
  int id = plan_.add_source(std::move(source), options_.parallelism, std::move(name));
  return DataStream(this, id, PlanEdge{id, Partitioning::kForward, {}, 0});
}

DataStream Environment::from_batches(std::vector<RecordBatch> batches, SchemaPtr schema) {
  auto source = operators::batches_source(std::move(batches), std::move(schema));
  if (!source.is_ok()) {
    add_problem("from_batches: " + source.status().message());
    // Keep building so that every other problem is reported too.
    source = operators::batches_source({}, columnar::schema({}));
  }
  return from_source(*source);
}

DataStream Environment::from_generator(std::string name, SchemaPtr schema, int num_splits,
                                       operators::GeneratorFunction fn) {
  return from_source(
      operators::generator_source(name, std::move(schema), num_splits, std::move(fn)), name);
}

DataStream Environment::from_topic(const std::string& url, codec::CodecPtr codec,
                                   connectors::TopicSourceOptions options) {
  options.url = url;
  options.codec = std::move(codec);
  auto source = connectors::topic_source(std::move(options));
  if (!source.is_ok()) {
    add_problem(source.status().message());
    source = operators::batches_source({}, columnar::schema({}));
  }
  return from_source(*source);
}

DataStream Environment::from_file(connectors::FileSourceOptions options) {
  auto source = connectors::file_source(std::move(options));
  if (!source.is_ok()) {
    add_problem(source.status().message());
    source = operators::batches_source({}, columnar::schema({}));
  }
  return from_source(*source, "files");
}

Status Environment::validate() const {
  Status s = runtime::validate_plan(plan_, execution_options());
  std::vector<std::string> problems = problems_;
  Status restart = options_.restart.validate();
  if (!restart.is_ok()) problems.push_back(restart.message());
  if (problems.empty()) return s;
  std::string msg = "invalid job:";
  for (const std::string& p : problems) msg += "\n  " + p;
  if (!s.is_ok()) {
    // Append the planner's lines (after its first line, which is its own header).
    const std::string& m = s.message();
    size_t nl = m.find('\n');
    if (nl != std::string::npos) msg += m.substr(nl);
  }
  return Status::invalid_argument(std::move(msg));
}

namespace {

// "checkpoint 3" or "savepoint 3".
std::string snapshot_name(const runtime::JobSnapshot& snap) {
  return std::string(snap.savepoint ? "savepoint " : "checkpoint ") +
         std::to_string(snap.checkpoint_id);
}

// The directory CheckpointStorage::write gave checkpoint `snap` in `storage`.
std::string checkpoint_path(const checkpoint::CheckpointStorage& storage,
                            const runtime::JobSnapshot& snap) {
  const std::string name =
      std::string(snap.savepoint ? "savepoint-" : "chk-") + std::to_string(snap.checkpoint_id);
  return (std::filesystem::path(storage.dir()) / name).string();
}

// A status on one line (its context lines joined), for a log line.
std::string one_line(const Status& s) {
  std::string text = s.to_string();
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') {
      out += ", ";
      while (i + 1 < text.size() && text[i + 1] == ' ') ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

// Waits `delay` measured on `clock`. Polled, because the clock may be a ManualClock that a test
// moves and that cannot wake a waiter; the poll period bounds how late a restart starts.
void wait_on(const Clock& clock, std::chrono::milliseconds delay) {
  if (delay.count() <= 0) return;
  const int64_t deadline = clock.monotonic_nanos() + delay.count() * 1'000'000;
  while (true) {
    const int64_t now = clock.monotonic_nanos();
    if (now >= deadline) return;
    std::this_thread::sleep_for(
        std::min<std::chrono::nanoseconds>(std::chrono::nanoseconds(deadline - now), 2ms));
  }
}

}  // namespace

Result<Environment::StartPoint> Environment::initial_start_point(
    const std::string& job_name) const {
  StartPoint from;
  if (options_.restore_from) {
    from.snapshot = options_.restore_from;
    from.where = options_.restore_from_path.empty() ? "memory" : options_.restore_from_path;
    return from;
  }
  if (options_.checkpoint_storage && options_.restore_latest) {
    auto latest = options_.checkpoint_storage->load_latest(job_name);
    if (!latest.is_ok()) {
      return std::move(latest).status().with_context("looking for the latest checkpoint of job '" +
                                                     job_name + "' in '" +
                                                     options_.checkpoint_storage->dir() + "'");
    }
    if (latest->has_value()) {
      from.where = checkpoint_path(*options_.checkpoint_storage, **latest);
      from.snapshot = std::make_shared<const runtime::JobSnapshot>(std::move(**latest));
    }
  }
  return from;
}

Result<std::unique_ptr<runtime::Job>> Environment::start_from(const std::string& job_name,
                                                              const StartPoint& from) const {
  runtime::ExecutionOptions options = execution_options();
  options.job_name = job_name;
  options.restore_from = from.snapshot;
  options.restarts = from.restarts;
  auto job = runtime::Job::start(plan_, std::move(options));
  if (!job.is_ok()) return std::move(job).status().with_context("starting job '" + job_name + "'");
  if (from.snapshot) {
    // One write, so that the line is not torn by other threads' output.
    std::cerr << ("restored from " + snapshot_name(*from.snapshot) + " (" + from.where + ")\n");
  }
  return job;
}

JobResult Environment::execute(const std::string& job_name) {
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::shared_ptr<const runtime::JobMetrics> metrics = std::make_shared<runtime::JobMetrics>();
  Status valid = validate();
  if (!valid.is_ok()) {
    return JobResult(std::move(valid).with_context("validating job '" + job_name + "'"),
                     std::move(metrics), elapsed());
  }
  auto first = initial_start_point(job_name);
  if (!first.is_ok()) {
    return JobResult(std::move(first).status().with_context("starting job '" + job_name + "'"),
                     std::move(metrics), elapsed());
  }
  StartPoint from = std::move(*first);
  const runtime::RestartStrategy& strategy = options_.restart;
  const Clock& clock = options_.clock ? *options_.clock : SystemClock::instance();
  int restarts = 0;
  while (true) {
    auto job = start_from(job_name, from);
    if (!job.is_ok()) {
      // Not retried: a plan or snapshot the runtime refuses is refused again.
      Status s = std::move(job).status();
      if (restarts > 0) s = std::move(s).with_context("restart " + std::to_string(restarts));
      return JobResult(std::move(s), std::move(metrics), elapsed(), restarts);
    }
    Status s = (*job)->wait();
    metrics = (*job)->metrics_ptr();
    if (!metrics) metrics = std::make_shared<runtime::JobMetrics>();
    if (s.is_ok()) return JobResult(std::move(s), std::move(metrics), elapsed(), restarts);
    if (s.code() == StatusCode::kCancelled || !strategy.allows(restarts + 1)) {
      s = std::move(s).with_context("running job '" + job_name + "'");
      if (s.code() != StatusCode::kCancelled &&
          strategy.kind != runtime::RestartStrategy::Kind::kNone) {
        s = std::move(s).with_context("job '" + job_name + "' failed " +
                                      std::to_string(restarts + 1) + " times; giving up after " +
                                      std::to_string(strategy.max_attempts) + " restarts");
      }
      return JobResult(std::move(s), std::move(metrics), elapsed(), restarts);
    }
    // The next run starts from the newest checkpoint the failed one completed (written to the
    // storage when there is one), else from where the failed run started.
    if (auto latest = (*job)->latest_checkpoint()) {
      const std::string path = (*job)->checkpoint_stats().latest_path;
      if (latest != from.snapshot) {
        from.snapshot = std::move(latest);
        from.where = path.empty() ? "memory" : path;
      }
    }
    ++restarts;
    from.restarts = restarts;
    const std::chrono::milliseconds delay = strategy.delay_before(restarts);
    std::cerr << ("job '" + job_name + "' failed: " + one_line(s) + "; restart " +
                  std::to_string(restarts) + " of " + std::to_string(strategy.max_attempts) +
                  " in " + runtime::format_duration(delay) + " from " +
                  (from.snapshot ? snapshot_name(*from.snapshot) : "the start (no checkpoint)") +
                  "\n");
    if (options_.on_restart) options_.on_restart(restarts, s, delay);
    job->reset();  // the failed run's tasks and threads are gone before the next one starts
    wait_on(clock, delay);
  }
}

Result<std::unique_ptr<runtime::Job>> Environment::start(const std::string& job_name) {
  Status valid = validate();
  if (!valid.is_ok()) return std::move(valid).with_context("validating job '" + job_name + "'");
  auto from = initial_start_point(job_name);
  if (!from.is_ok()) {
    return std::move(from).status().with_context("starting job '" + job_name + "'");
  }
  return start_from(job_name, *from);
}

// ---- DataStream ----

DataStream DataStream::add(std::shared_ptr<const runtime::OperatorFactory> factory,
                           bool is_sink) const {
  PlanEdge e = edge_;
  e.from = node_;
  int parallelism = env_->options().parallelism;
  int id = env_->plan().add_operator(std::move(factory), {std::move(e)}, parallelism, {}, is_sink);
  DataStream out(env_, id, PlanEdge{id, Partitioning::kForward, {}, 0});
  out.time_column_ = time_column_;
  return out;
}

DataStream DataStream::filter(Expr predicate) const {
  return add(operators::filter(std::move(predicate)), false);
}
DataStream DataStream::select(std::vector<Expr> exprs) const {
  return add(operators::select(std::move(exprs)), false);
}
DataStream DataStream::with_column(std::string name, Expr expr) const {
  return add(operators::with_column(std::move(name), std::move(expr)), false);
}
DataStream DataStream::map_batches(operators::BatchFunction fn, SchemaPtr output_schema) const {
  return add(operators::map_batches(std::move(fn), std::move(output_schema)), false);
}
DataStream DataStream::flat_map(operators::FlatBatchFunction fn, SchemaPtr output_schema) const {
  return add(operators::flat_map_batches(std::move(fn), std::move(output_schema)), false);
}
DataStream DataStream::apply(std::shared_ptr<const runtime::OperatorFactory> factory) const {
  return add(std::move(factory), false);
}

DataStream DataStream::union_with(const std::vector<DataStream>& others) const {
  std::vector<PlanEdge> inputs;
  PlanEdge e = edge_;
  e.from = node_;
  inputs.push_back(e);
  for (const DataStream& o : others) {
    if (o.env_ != env_) {
      env_->add_problem("union_with: a stream from another Environment");
      continue;
    }
    PlanEdge oe = o.edge_;
    oe.from = o.node_;
    inputs.push_back(oe);
  }
  int id = env_->plan().add_operator(operators::union_all(), std::move(inputs),
                                     env_->options().parallelism);
  return DataStream(env_, id, PlanEdge{id, Partitioning::kForward, {}, 0});
}

KeyedStream DataStream::key_by(std::vector<std::string> columns) const {
  return KeyedStream(env_, node_, std::move(columns), time_column_);
}
KeyedStream DataStream::key_by(std::initializer_list<std::string> columns) const {
  return key_by(std::vector<std::string>(columns));
}
KeyedStream DataStream::key_by(std::string column) const {
  return key_by(std::vector<std::string>{std::move(column)});
}

DataStream DataStream::rebalance() const {
  return DataStream(env_, node_, PlanEdge{node_, Partitioning::kRebalance, {}, 0});
}
DataStream DataStream::with_watermarks(runtime::WatermarkStrategy strategy) const {
  runtime::PlanNode& node = env_->plan().node(node_);
  std::string column = strategy.timestamp_column;
  DataStream out = *this;
  if (node.source && edge_.partitioning == Partitioning::kForward && edge_.side_output.empty()) {
    node.watermarks = std::move(strategy);
  } else {
    out = add(operators::assign_watermarks(std::move(strategy)), false);
  }
  out.time_column_ = std::move(column);
  return out;
}

DataStream DataStream::side_output(std::string tag) const {
  PlanEdge e{node_, Partitioning::kForward, {}, 0};
  e.side_output = std::move(tag);
  return DataStream(env_, node_, std::move(e));
}
DataStream DataStream::broadcast() const {
  return DataStream(env_, node_, PlanEdge{node_, Partitioning::kBroadcast, {}, 0});
}

DataStream DataStream::set_parallelism(int parallelism) const {
  env_->plan().node(node_).parallelism = parallelism;
  return *this;
}
DataStream DataStream::name(std::string name) const {
  env_->plan().node(node_).name = std::move(name);
  return *this;
}
DataStream DataStream::uid(std::string uid) const {
  env_->plan().node(node_).uid = std::move(uid);
  return *this;
}

DataStream DataStream::sink(std::shared_ptr<const runtime::OperatorFactory> sink) const {
  return add(std::move(sink), true);
}
DataStream DataStream::print(std::ostream& out) const { return sink(operators::print_sink(&out)); }
std::shared_ptr<operators::CollectedBatches> DataStream::collect() const {
  auto into = std::make_shared<operators::CollectedBatches>();
  (void)sink(operators::collect_sink(into));
  return into;
}
DataStream DataStream::for_each_batch(operators::BatchCallback fn) const {
  return sink(operators::callback_sink(std::move(fn)));
}
DataStream DataStream::blackhole() const { return sink(operators::blackhole_sink()); }
DataStream DataStream::to_file(connectors::FileSinkOptions options) const {
  return sink(connectors::file_sink(std::move(options)));
}
DataStream DataStream::to_topic(const std::string& url, codec::CodecPtr codec,
                                connectors::TopicSinkOptions options) const {
  options.url = url;
  options.codec = std::move(codec);
  return sink(connectors::topic_sink(std::move(options)));
}

KeyedStream::KeyedStream(Environment* env, int node, std::vector<std::string> keys,
                         std::string time_column)
    : DataStream(env, node, PlanEdge{node, Partitioning::kHash, std::move(keys), 0}) {
  time_column_ = std::move(time_column);
}

WindowedStream DataStream::window_all(WindowSpec spec) const {
  operators::WindowOptions o;
  o.spec = spec;
  o.time_column = time_column_;
  return WindowedStream(*this, std::move(o));
}

WindowedStream KeyedStream::window(WindowSpec spec) const {
  operators::WindowOptions o;
  o.spec = spec;
  o.key_columns = keys();
  o.time_column = time_column_;
  return WindowedStream(*this, std::move(o));
}

DataStream KeyedStream::deduplicate() const {
  operators::DedupOptions o;
  o.keys = keys();
  return apply(operators::deduplicate(std::move(o)));
}

DataStream KeyedStream::top_n(std::string order_column, int64_t n, bool descending) const {
  operators::TopNOptions o;
  o.key_columns = keys();
  o.order_column = std::move(order_column);
  o.n = n;
  o.descending = descending;
  return apply(operators::top_n(std::move(o)));
}

DataStream KeyedStream::join_with(const KeyedStream& right,
                                  std::shared_ptr<const runtime::OperatorFactory> factory) const {
  PlanEdge l = edge_;
  l.from = node_;
  l.logical_input = 0;
  PlanEdge r = right.edge_;
  r.from = right.node_;
  r.logical_input = 1;
  if (right.env_ != env_) env_->add_problem("join: the right stream is from another Environment");
  int id = env_->plan().add_operator(std::move(factory), {l, r}, env_->options().parallelism);
  DataStream out(env_, id, PlanEdge{id, Partitioning::kForward, {}, 0});
  out.time_column_ = time_column_;
  return out;
}

namespace {
operators::JoinCommon join_common(const KeyedStream& l, const KeyedStream& r) {
  operators::JoinCommon c;
  c.left_keys = l.keys();
  c.right_keys = r.keys();
  return c;
}
}  // namespace

DataStream KeyedStream::interval_join(const KeyedStream& right, std::chrono::milliseconds lower,
                                      std::chrono::milliseconds upper, JoinKind kind) const {
  operators::IntervalJoinOptions o;
  o.common = join_common(*this, right);
  o.time.left_time = time_column_;
  o.time.right_time = right.time_column();
  o.lower_ms = lower.count();
  o.upper_ms = upper.count();
  o.kind = kind;
  return join_with(right, operators::interval_join(std::move(o)));
}

DataStream KeyedStream::asof_join(const KeyedStream& right, JoinKind kind) const {
  operators::AsOfJoinOptions o;
  o.common = join_common(*this, right);
  o.time.left_time = time_column_;
  o.time.right_time = right.time_column();
  o.kind = kind;
  return join_with(right, operators::asof_join(std::move(o)));
}

DataStream KeyedStream::join(const KeyedStream& table, JoinKind kind) const {
  operators::StreamTableJoinOptions o;
  o.common = join_common(*this, table);
  o.kind = kind;
  return join_with(table, operators::stream_table_join(std::move(o)));
}

WindowedStream WindowedStream::allowed_lateness(std::chrono::milliseconds lateness) const {
  WindowedStream w = *this;
  w.options_.allowed_lateness = lateness;
  return w;
}
WindowedStream WindowedStream::late_to_side_output() const {
  WindowedStream w = *this;
  w.options_.late = operators::LatePolicy::kSideOutput;
  return w;
}
WindowedStream WindowedStream::early_fire_every(std::chrono::milliseconds interval) const {
  WindowedStream w = *this;
  w.options_.early_fire_every = interval;
  return w;
}
WindowedStream WindowedStream::on(std::string time_column) const {
  WindowedStream w = *this;
  w.options_.time_column = std::move(time_column);
  return w;
}
DataStream WindowedStream::aggregate(std::vector<compute::Aggregate> aggregates) const {
  operators::WindowOptions o = options_;
  o.aggregates = std::move(aggregates);
  DataStream out = input_.apply(operators::window_aggregate(std::move(o)));
  return options_.key_columns.empty() ? out.set_parallelism(1) : out;
}
DataStream WindowedStream::process(SchemaPtr output_schema, operators::WindowFunction fn) const {
  DataStream out =
      input_.apply(operators::window_process(options_, std::move(output_schema), std::move(fn)));
  return options_.key_columns.empty() ? out.set_parallelism(1) : out;
}

}  // namespace sabot
