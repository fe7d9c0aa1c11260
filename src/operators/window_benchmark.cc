// Window operator throughput, driven directly (no job): 10 K keys, in-order timestamps, batches of
// 4096 rows, count per key; watermarks after every batch so windows fire as they would in a job.
// Also snapshot and restore throughput of a tumbling window with up to 1 M keys.
#include <benchmark/benchmark.h>

#include <random>

#include "sabot/columnar/builder.h"
#include "sabot/operators/window.h"

namespace sabot::operators {
namespace {

using columnar::RecordBatch;
using std::chrono::milliseconds;

struct NullOutput final : runtime::Output {
  int64_t rows = 0;
  Status emit(const RecordBatch& b) override {
    rows += b.num_rows();
    return Status::ok();
  }
  Status emit_watermark(Timestamp) override { return Status::ok(); }
};

columnar::SchemaPtr bench_schema() {
  return columnar::schema({columnar::field("k", columnar::int64()),
                           columnar::field("ts", columnar::timestamp(columnar::TimeUnit::kMilli))});
}

// 64 batches of 4096 rows; 100 events per millisecond, keys uniform over 10 K.
std::vector<RecordBatch> make_batches() {
  std::mt19937_64 rng(42);
  std::vector<RecordBatch> out;
  int64_t row = 0;
  for (int b = 0; b < 64; ++b) {
    columnar::Int64Builder k;
    columnar::Int64Builder ts(columnar::timestamp(columnar::TimeUnit::kMilli));
    for (int i = 0; i < 4096; ++i, ++row) {
      k.append(static_cast<int64_t>(rng() % 10000));
      ts.append(row / 100);
    }
    out.push_back(RecordBatch::make(bench_schema(), {k.finish(), ts.finish()}).value());
  }
  return out;
}

void run(benchmark::State& state, WindowSpec spec) {
  auto batches = make_batches();
  const int64_t span_ms = 64 * 4096 / 100;
  WindowOptions o;
  o.spec = spec;
  o.key_columns = {"k"};
  o.time_column = "ts";
  o.aggregates = {compute::count_all().as("n")};
  auto factory = window_aggregate(o);
  std::vector<columnar::SchemaPtr> in{bench_schema()};
  runtime::OperatorContext ctx;
  auto op = factory->create(in, ctx).value();
  NullOutput out;
  int64_t round = 0;
  int64_t items = 0;
  for (auto _ : state) {
    // Each pass shifts the timestamps forward so time keeps increasing; the shift is a column
    // rebuild outside the timed region.
    state.PauseTiming();
    std::vector<RecordBatch> shifted;
    for (const RecordBatch& b : batches) {
      columnar::Int64Builder ts(columnar::timestamp(columnar::TimeUnit::kMilli));
      const int64_t* t = b.column(1).values<int64_t>();
      for (int64_t i = 0; i < b.num_rows(); ++i) ts.append(t[i] + round * span_ms);
      shifted.push_back(RecordBatch::make(bench_schema(), {b.column(0), ts.finish()}).value());
    }
    ++round;
    state.ResumeTiming();
    for (const RecordBatch& b : shifted) {
      benchmark::DoNotOptimize(op->process_batch(b, 0, out));
      const int64_t* t = b.column(1).values<int64_t>();
      benchmark::DoNotOptimize(op->process_watermark(Timestamp(t[b.num_rows() - 1] - 1), out));
      items += b.num_rows();
    }
  }
  state.SetItemsProcessed(items);
  state.counters["out_rows"] = static_cast<double>(out.rows);
}

void BM_TumblingCountPerKey(benchmark::State& state) {
  run(state, WindowSpec::tumbling(milliseconds(1000)));
}
void BM_SlidingCountPerKey_10s_2s(benchmark::State& state) {
  run(state, WindowSpec::sliding(milliseconds(10000), milliseconds(2000)));
}
BENCHMARK(BM_TumblingCountPerKey)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SlidingCountPerKey_10s_2s)->Unit(benchmark::kMillisecond);

// Snapshot and restore of a tumbling window holding `state.range(0)` keys, each with one open pane
// (count_all and max(ts)): bytes per second of the snapshot (SetBytesProcessed; Google Benchmark
// prints it in MiB/s) and the time of one snapshot or one restore.
std::unique_ptr<runtime::Operator> window_with_keys(int64_t keys,
                                                    const runtime::OperatorContext& ctx) {
  WindowOptions o;
  o.spec = WindowSpec::tumbling(milliseconds(1000));
  o.key_columns = {"k"};
  o.time_column = "ts";
  o.aggregates = {compute::count_all().as("n"), compute::max("ts").as("last")};
  std::vector<columnar::SchemaPtr> in{bench_schema()};
  auto op = window_aggregate(o)->create(in, ctx).value();
  (void)op->open(ctx);
  NullOutput out;
  for (int64_t from = 0; from < keys; from += 65536) {
    columnar::Int64Builder k;
    columnar::Int64Builder ts(columnar::timestamp(columnar::TimeUnit::kMilli));
    for (int64_t i = from; i < std::min(keys, from + 65536); ++i) {
      k.append(i);
      ts.append(i % 1000);
    }
    auto b = RecordBatch::make(bench_schema(), {k.finish(), ts.finish()}).value();
    benchmark::DoNotOptimize(op->process_batch(b, 0, out));
  }
  return op;
}

runtime::OperatorContext bench_context(int subtask, int parallelism) {
  runtime::OperatorContext ctx;
  ctx.uid = "window-bench";
  ctx.subtask_index = subtask;
  ctx.parallelism = parallelism;
  return ctx;
}

void BM_TumblingSnapshot(benchmark::State& state) {
  auto op = window_with_keys(state.range(0), bench_context(0, 1));
  int64_t bytes = 0;
  size_t last = 0;
  for (auto _ : state) {
    std::string snapshot;
    snapshot.reserve(last + last / 8);  // as the executor does: room for the last size + 1/8
    benchmark::DoNotOptimize(op->snapshot_state(CheckpointId(1), &snapshot));
    bytes += static_cast<int64_t>(snapshot.size());
    last = snapshot.size();
  }
  state.SetBytesProcessed(bytes);
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.counters["snapshot_MB"] =
      static_cast<double>(bytes) / static_cast<double>(state.iterations()) / 1e6;
}

// Restores the whole snapshot into one subtask (range(1) == 1) or into subtask 0 of 2, which keeps
// half of the key groups and skips the rest; bytes counted are those of the whole snapshot.
void BM_TumblingRestore(benchmark::State& state) {
  std::string snapshot;
  {
    auto op = window_with_keys(state.range(0), bench_context(0, 1));
    (void)op->snapshot_state(CheckpointId(1), &snapshot);
  }
  const int parallelism = static_cast<int>(state.range(1));
  WindowOptions o;
  o.spec = WindowSpec::tumbling(milliseconds(1000));
  o.key_columns = {"k"};
  o.time_column = "ts";
  o.aggregates = {compute::count_all().as("n"), compute::max("ts").as("last")};
  auto factory = window_aggregate(o);
  std::vector<columnar::SchemaPtr> in{bench_schema()};
  for (auto _ : state) {
    state.PauseTiming();
    auto ctx = bench_context(0, parallelism);
    auto op = factory->create(in, ctx).value();
    (void)op->open(ctx);
    state.ResumeTiming();
    Status st = op->restore_state(snapshot);
    if (!st.is_ok()) state.SkipWithError(st.to_string().c_str());
    state.PauseTiming();
    op.reset();  // freeing is not part of the restore
    state.ResumeTiming();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(snapshot.size()));
  state.SetItemsProcessed(state.iterations() * state.range(0) / parallelism);
}

BENCHMARK(BM_TumblingSnapshot)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TumblingRestore)
    ->Args({10'000, 1})
    ->Args({1'000'000, 1})
    ->Args({1'000'000, 2})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sabot::operators

BENCHMARK_MAIN();
