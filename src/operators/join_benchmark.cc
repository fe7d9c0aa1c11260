// Join, dedup and top-N throughput: two in-order streams over 10 K int64 keys in batches of 4096
// rows alternating left/right, a watermark after every pair (one event per millisecond per side).
// Each benchmark reports input rows per second; the snapshot benchmarks report the bytes of state
// written (snapshot) or read (restore) per second.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <filesystem>
#include <random>

#include "sabot/base/check.h"
#include "sabot/columnar/builder.h"
#include "sabot/operators/dedup.h"
#include "sabot/operators/join.h"
#include "sabot/operators/topn.h"
#include "sabot/runtime/metrics.h"
#include "sabot/state/rocksdb_backend.h"

namespace sabot::operators {
namespace {

using columnar::RecordBatch;

class NullOutput final : public runtime::Output {
 public:
  Status emit(const RecordBatch& b) override {
    rows += b.num_rows();
    return Status::ok();
  }
  Status emit_watermark(Timestamp) override { return Status::ok(); }
  int64_t rows = 0;
};

columnar::SchemaPtr side_schema(const char* value) {
  auto ts = columnar::timestamp(columnar::TimeUnit::kMilli);
  return columnar::schema({columnar::field("k", columnar::int64()), columnar::field("t", ts),
                           columnar::field(value, columnar::int64())});
}

std::vector<RecordBatch> make_side(columnar::SchemaPtr schema, int64_t n, int64_t keys,
                                   uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<RecordBatch> out;
  for (int64_t start = 0; start < n; start += 4096) {
    int64_t len = std::min<int64_t>(4096, n - start);
    columnar::Int64Builder k, v;
    columnar::Int64Builder t(columnar::timestamp(columnar::TimeUnit::kMilli));
    for (int64_t i = 0; i < len; ++i) {
      k.append(static_cast<int64_t>(rng() % static_cast<uint64_t>(keys)));
      t.append(start + i);
      v.append(static_cast<int64_t>(rng()));
    }
    out.push_back(RecordBatch::make(schema, {k.finish(), t.finish(), v.finish()}).value());
  }
  return out;
}

struct Inputs {
  columnar::SchemaPtr schema[2] = {side_schema("lv"), side_schema("rv")};
  std::vector<RecordBatch> left, right;
  explicit Inputs(int64_t n)
      : left(make_side(schema[0], n, 10000, 1)), right(make_side(schema[1], n, 10000, 2)) {}
};

std::unique_ptr<runtime::Operator> make_op(const runtime::OperatorFactory& f, const Inputs& in,
                                           int inputs, runtime::OperatorCounters* counters,
                                           const state::StateBackend* backend = nullptr) {
  runtime::OperatorContext ctx;
  ctx.counters = counters;
  ctx.state_backend = backend;
  ctx.uid = "bench";
  std::vector<columnar::SchemaPtr> schemas(in.schema, in.schema + inputs);
  auto op = f.create(schemas, ctx).value();
  SABOT_CHECK_OK(op->open(ctx));
  return op;
}

// Feeds batches [from, to) of both sides (only the left with one input).
void feed(runtime::Operator& op, const Inputs& in, size_t from, size_t to, int inputs,
          runtime::Output& out) {
  for (size_t i = from; i < to; ++i) {
    SABOT_CHECK_OK(op.process_batch(in.left[i], 0, out));
    if (inputs == 2) SABOT_CHECK_OK(op.process_batch(in.right[i], 1, out));
    SABOT_CHECK_OK(op.process_watermark(Timestamp(static_cast<int64_t>(i + 1) * 4096 - 1), out));
  }
}

void run(benchmark::State& state, const runtime::OperatorFactory& f, int inputs,
         const state::StateBackend* backend = nullptr) {
  const int64_t n = state.range(0);
  Inputs in(n);
  int64_t out_rows = 0;
  for (auto _ : state) {
    runtime::OperatorCounters counters;
    auto op = make_op(f, in, inputs, &counters, backend);
    NullOutput out;
    feed(*op, in, 0, in.left.size(), inputs, out);
    SABOT_CHECK_OK(op->process_watermark(Timestamp::max(), out));
    SABOT_CHECK_OK(op->finish(out));
    out_rows = out.rows;
  }
  state.SetItemsProcessed(state.iterations() * inputs * n);
  state.counters["output_rows"] = static_cast<double>(out_rows);
}

JoinCommon keys() { return {{"k"}, {"k"}, "right_"}; }
EventTimeOptions times() { return {"t", "t", 0, false}; }

void BM_IntervalJoin(benchmark::State& state) {
  run(state, *interval_join({keys(), times(), -10000, 0, JoinKind::kInner}), 2);
}
BENCHMARK(BM_IntervalJoin)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

void BM_WindowJoin(benchmark::State& state) {
  run(state, *window_join({keys(), times(), 2000, 1000, JoinKind::kInner}), 2);
}
BENCHMARK(BM_WindowJoin)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

void BM_AsOfJoin(benchmark::State& state) {
  run(state, *asof_join({keys(), times(), -1, JoinKind::kLeft}), 2);
}
BENCHMARK(BM_AsOfJoin)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

void BM_StreamTableJoin(benchmark::State& state) {
  run(state, *stream_table_join({keys(), JoinKind::kLeft, ""}), 2);
}
BENCHMARK(BM_StreamTableJoin)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

void BM_RegularJoin(benchmark::State& state) {
  // 64 K rows per side over 10 K keys: every row meets about 6 stored rows of the other side.
  run(state, *regular_join({keys(), JoinKind::kInner, 0}), 2);
}
BENCHMARK(BM_RegularJoin)->Arg(1 << 16)->Unit(benchmark::kMillisecond);

void BM_Dedup(benchmark::State& state) {
  run(state, *deduplicate({{"k"}, "t", 5000, 0, false}), 1);
}
BENCHMARK(BM_Dedup)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

// A RocksDB backend with default options in a scratch directory removed at exit (an instance per
// operator, so per iteration).
const state::StateBackend* scratch_rocksdb() {
  struct Scratch {
    std::string dir = (std::filesystem::temp_directory_path() /
                       ("sabot_join_benchmark_" + std::to_string(::getpid())))
                          .string();
    std::shared_ptr<state::RocksDbStateBackend> backend =
        state::RocksDbStateBackend::make(dir, {}).value();
    ~Scratch() {
      backend.reset();
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  };
  static Scratch scratch;
  return scratch.backend.get();
}

// Dedup with its keyed state on RocksDB.
void BM_DedupRocksDb(benchmark::State& state) {
  run(state, *deduplicate({{"k"}, "t", 5000, 0, false}), 1, scratch_rocksdb());
}
BENCHMARK(BM_DedupRocksDb)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

// The 3 largest values per key (random values: few rows make the cut once every key has 3).
void BM_TopN(benchmark::State& state) {
  run(state, *top_n({.key_columns = {"k"}, .order_column = "lv", .n = 3}), 1);
}
BENCHMARK(BM_TopN)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

void BM_TopNRocksDb(benchmark::State& state) {
  run(state, *top_n({.key_columns = {"k"}, .order_column = "lv", .n = 3}), 1, scratch_rocksdb());
}
BENCHMARK(BM_TopNRocksDb)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

// The stream-table join with its table on RocksDB.
void BM_StreamTableJoinRocksDb(benchmark::State& state) {
  run(state, *stream_table_join({keys(), JoinKind::kLeft, ""}), 2, scratch_rocksdb());
}
BENCHMARK(BM_StreamTableJoinRocksDb)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

// The other joins with their buffered rows on RocksDB (join_keyed.cc), same inputs as above.
void BM_IntervalJoinRocksDb(benchmark::State& state) {
  run(state, *interval_join({keys(), times(), -10000, 0, JoinKind::kInner}), 2, scratch_rocksdb());
}
BENCHMARK(BM_IntervalJoinRocksDb)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

void BM_WindowJoinRocksDb(benchmark::State& state) {
  run(state, *window_join({keys(), times(), 2000, 1000, JoinKind::kInner}), 2, scratch_rocksdb());
}
BENCHMARK(BM_WindowJoinRocksDb)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

void BM_AsOfJoinRocksDb(benchmark::State& state) {
  run(state, *asof_join({keys(), times(), -1, JoinKind::kLeft}), 2, scratch_rocksdb());
}
BENCHMARK(BM_AsOfJoinRocksDb)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

void BM_RegularJoinRocksDb(benchmark::State& state) {
  run(state, *regular_join({keys(), JoinKind::kInner, 0}), 2, scratch_rocksdb());
}
BENCHMARK(BM_RegularJoinRocksDb)->Arg(1 << 16)->Unit(benchmark::kMillisecond);

// Snapshot and restore of an interval join holding the last 10 s of both sides (~20 K rows over
// 10 K keys, in ~6 chunks per side).
void BM_IntervalJoinSnapshot(benchmark::State& state) {
  Inputs in(1 << 16);
  auto f = interval_join({keys(), times(), -10000, 0, JoinKind::kInner});
  runtime::OperatorCounters counters;
  auto op = make_op(*f, in, 2, &counters);
  NullOutput out;
  feed(*op, in, 0, in.left.size(), 2, out);
  const bool restore = state.range(0) == 1;
  std::string bytes;
  SABOT_CHECK_OK(op->snapshot_state(CheckpointId(1), &bytes));
  for (auto _ : state) {
    if (restore) {
      auto fresh = make_op(*f, in, 2, &counters);
      SABOT_CHECK_OK(fresh->restore_state(bytes));
    } else {
      std::string b;
      SABOT_CHECK_OK(op->snapshot_state(CheckpointId(1), &b));
      benchmark::DoNotOptimize(b.data());
    }
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes.size()));
  state.counters["snapshot_bytes"] = static_cast<double>(bytes.size());
}
BENCHMARK(BM_IntervalJoinSnapshot)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace sabot::operators
BENCHMARK_MAIN();
