// Interval join throughput: two in-order streams of 1 M events each over 10 K int64 keys, bounds
// [-10 s, 0], batches of 4096 rows alternating left/right, a watermark after every pair.
#include <benchmark/benchmark.h>

#include <random>

#include "sabot/base/check.h"
#include "sabot/columnar/builder.h"
#include "sabot/operators/join.h"
#include "sabot/runtime/metrics.h"

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
      t.append(start + i);  // one event per millisecond per side
      v.append(static_cast<int64_t>(rng()));
    }
    out.push_back(RecordBatch::make(schema, {k.finish(), t.finish(), v.finish()}).value());
  }
  return out;
}

void BM_IntervalJoin(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto ts = columnar::timestamp(columnar::TimeUnit::kMilli);
  auto ls = columnar::schema({columnar::field("k", columnar::int64()), columnar::field("t", ts),
                              columnar::field("lv", columnar::int64())});
  auto rs = columnar::schema({columnar::field("k", columnar::int64()), columnar::field("t", ts),
                              columnar::field("rv", columnar::int64())});
  auto left = make_side(ls, n, 10000, 1);
  auto right = make_side(rs, n, 10000, 2);
  auto f =
      interval_join({{{"k"}, {"k"}, "right_"}, {"t", "t", 0, false}, -10000, 0, JoinKind::kInner});
  std::vector<columnar::SchemaPtr> in = {ls, rs};
  int64_t out_rows = 0;
  for (auto _ : state) {
    runtime::OperatorCounters counters;
    runtime::OperatorContext ctx;
    ctx.counters = &counters;
    auto op = f->create(in, ctx).value();
    SABOT_CHECK_OK(op->open(ctx));
    NullOutput out;
    for (size_t i = 0; i < left.size(); ++i) {
      SABOT_CHECK_OK(op->process_batch(left[i], 0, out));
      SABOT_CHECK_OK(op->process_batch(right[i], 1, out));
      int64_t wm = static_cast<int64_t>(i + 1) * 4096 - 1;
      SABOT_CHECK_OK(op->process_watermark(Timestamp(wm), out));
    }
    SABOT_CHECK_OK(op->process_watermark(Timestamp::max(), out));
    SABOT_CHECK_OK(op->finish(out));
    out_rows = out.rows;
  }
  state.SetItemsProcessed(state.iterations() * 2 * n);
  state.counters["output_rows"] = static_cast<double>(out_rows);
}
BENCHMARK(BM_IntervalJoin)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sabot::operators
BENCHMARK_MAIN();
