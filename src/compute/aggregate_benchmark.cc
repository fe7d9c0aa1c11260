// Micro-benchmarks for hashing, grouping and grouped aggregation (single-threaded).
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "sabot/base/check.h"
#include "sabot/columnar/builder.h"
#include "sabot/compute/aggregate.h"
#include "sabot/compute/grouper.h"
#include "sabot/compute/hash.h"

namespace sabot::compute {
namespace {

constexpr int64_t kRows = 1 << 20;

// (SABOT_CHECK_OK only accepts a Result today, not a Status.)
void expect_ok(const Status& st) { SABOT_CHECK(st.is_ok()); }

Array random_int64(int64_t n, int64_t distinct, uint64_t seed) {
  std::mt19937_64 rng(seed);
  columnar::Int64Builder b;
  b.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    b.unsafe_append(distinct > 0
                        ? static_cast<int64_t>(rng() % static_cast<uint64_t>(distinct)) * 7919
                        : static_cast<int64_t>(rng()));
  }
  return b.finish();
}

Array random_strings(int64_t n, int64_t distinct, uint64_t seed) {
  std::mt19937_64 rng(seed);
  columnar::StringBuilder b;
  b.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t k = distinct > 0 ? rng() % static_cast<uint64_t>(distinct) : rng();
    std::string s = "user-" + std::to_string(k);
    s.resize(5 + k % 16, '#');  // 5 to 20 bytes
    b.append(s);
  }
  return b.finish();
}

void BM_HashInt64Column(benchmark::State& state) {
  Array a = random_int64(kRows, 0, 1);
  std::vector<uint64_t> out(kRows);
  for (auto _ : state) {
    hash_column(a, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kRows);
  state.SetBytesProcessed(state.iterations() * kRows * 8);
}
BENCHMARK(BM_HashInt64Column);

void BM_HashUtf8Column(benchmark::State& state) {
  Array a = random_strings(kRows, 0, 2);
  std::vector<uint64_t> out(kRows);
  for (auto _ : state) {
    hash_column(a, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kRows);
  state.SetBytesProcessed(state.iterations() * a.data().data->size());
}
BENCHMARK(BM_HashUtf8Column);

// The keyed exchange's per-batch work: row hashes of one int64 key, then key groups (% 128).
void BM_KeyGroupsInt64(benchmark::State& state) {
  std::vector<Array> cols = {random_int64(kRows, 0, 15)};
  std::vector<uint64_t> hashes;
  std::vector<uint32_t> groups(kRows);
  for (auto _ : state) {
    expect_ok(hash_columns(cols, &hashes));
    key_groups(hashes, 128, groups);
    benchmark::DoNotOptimize(groups.data());
  }
  state.SetItemsProcessed(state.iterations() * kRows);
}
BENCHMARK(BM_KeyGroupsInt64);

void BM_HashTwoKeyColumns(benchmark::State& state) {
  std::vector<Array> cols = {random_int64(kRows, 0, 3), random_strings(kRows, 0, 4)};
  std::vector<uint64_t> out;
  for (auto _ : state) {
    benchmark::DoNotOptimize(hash_columns(cols, &out));
  }
  state.SetItemsProcessed(state.iterations() * kRows);
}
BENCHMARK(BM_HashTwoKeyColumns);

// Steady state of a streaming grouped sum: the grouper already knows the keys (after the first
// iteration); every iteration assigns ids to 1 M rows and adds their values.
void BM_GroupedSumInt64(benchmark::State& state) {
  const int64_t distinct = state.range(0);
  Array keys = random_int64(kRows, distinct, 5);
  Array values = random_int64(kRows, 1000, 6);
  auto grouper = *Grouper::make({columnar::int64()});
  auto sum = *make_accumulator(AggregateKind::kSum, columnar::int64());
  std::vector<uint32_t> ids;
  for (auto _ : state) {
    expect_ok(grouper->consume(std::span<const Array>(&keys, 1), &ids));
    sum->resize(grouper->num_groups());
    expect_ok(sum->update(values, ids));
  }
  state.SetItemsProcessed(state.iterations() * kRows);
  state.counters["groups"] = grouper->num_groups();
}
// 1,500 keys is the worst case for the table: just under its 3/8 maximum load.
BENCHMARK(BM_GroupedSumInt64)->Arg(1000)->Arg(1500)->Arg(100'000);

// The one-shot kernel: a fresh grouper and accumulator per call, output batch built.
void BM_GroupBySumKernel(benchmark::State& state) {
  auto schema = columnar::schema(
      {columnar::field("k", columnar::int64()), columnar::field("v", columnar::int64())});
  auto batch = *RecordBatch::make(
      schema, {random_int64(kRows, state.range(0), 7), random_int64(kRows, 1000, 8)});
  std::vector<std::string> keys = {"k"};
  std::vector<Aggregate> aggs = {sum("v")};
  for (auto _ : state) {
    auto out = group_by(batch, keys, aggs);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * kRows);
}
BENCHMARK(BM_GroupBySumKernel)->Arg(1000);

// A global (one-row) aggregate over a whole batch.
void BM_GlobalSumKernel(benchmark::State& state) {
  auto schema = columnar::schema({columnar::field("v", columnar::int64())});
  auto batch = *RecordBatch::make(schema, {random_int64(kRows, 1000, 16)});
  std::vector<Aggregate> aggs = {sum("v")};
  for (auto _ : state) {
    auto out = aggregate(batch, aggs);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * kRows);
}
BENCHMARK(BM_GlobalSumKernel);

void BM_GroupedCountInt64(benchmark::State& state) {
  Array keys = random_int64(kRows, state.range(0), 9);
  auto grouper = *Grouper::make({columnar::int64()});
  auto count = *make_accumulator(AggregateKind::kCountAll, columnar::int64());
  std::vector<uint32_t> ids;
  for (auto _ : state) {
    expect_ok(grouper->consume(std::span<const Array>(&keys, 1), &ids));
    count->resize(grouper->num_groups());
    expect_ok(count->update(keys, ids));
  }
  state.SetItemsProcessed(state.iterations() * kRows);
}
BENCHMARK(BM_GroupedCountInt64)->Arg(100'000);

void BM_GroupedCountUtf8(benchmark::State& state) {
  Array keys = random_strings(kRows, state.range(0), 10);
  auto grouper = *Grouper::make({columnar::utf8()});
  auto count = *make_accumulator(AggregateKind::kCountAll, columnar::utf8());
  std::vector<uint32_t> ids;
  for (auto _ : state) {
    expect_ok(grouper->consume(std::span<const Array>(&keys, 1), &ids));
    count->resize(grouper->num_groups());
    expect_ok(count->update(keys, ids));
  }
  state.SetItemsProcessed(state.iterations() * kRows);
}
BENCHMARK(BM_GroupedCountUtf8)->Arg(1000)->Arg(100'000);

// Two key columns (int64, utf8) go through the generic row-encoding grouper.
void BM_GroupedCountTwoKeys(benchmark::State& state) {
  std::vector<Array> keys = {random_int64(kRows, 10, 13), random_strings(kRows, 100, 14)};
  auto grouper = *Grouper::make({columnar::int64(), columnar::utf8()});
  auto count = *make_accumulator(AggregateKind::kCountAll, columnar::int64());
  std::vector<uint32_t> ids;
  for (auto _ : state) {
    expect_ok(grouper->consume(keys, &ids));
    count->resize(grouper->num_groups());
    expect_ok(count->update(keys[0], ids));
  }
  state.SetItemsProcessed(state.iterations() * kRows);
  state.counters["groups"] = grouper->num_groups();
}
BENCHMARK(BM_GroupedCountTwoKeys);

void BM_GroupedCountTwoInt64Keys(benchmark::State& state) {
  std::vector<Array> keys = {random_int64(kRows, 10, 17), random_int64(kRows, 100, 18)};
  auto grouper = *Grouper::make({columnar::int64(), columnar::int64()});
  auto count = *make_accumulator(AggregateKind::kCountAll, columnar::int64());
  std::vector<uint32_t> ids;
  for (auto _ : state) {
    expect_ok(grouper->consume(keys, &ids));
    count->resize(grouper->num_groups());
    expect_ok(count->update(keys[0], ids));
  }
  state.SetItemsProcessed(state.iterations() * kRows);
  state.counters["groups"] = grouper->num_groups();
}
BENCHMARK(BM_GroupedCountTwoInt64Keys);

void BM_GroupedAvgVarianceInt64(benchmark::State& state) {
  Array keys = random_int64(kRows, 1000, 11);
  Array values = random_int64(kRows, 1000, 12);
  auto grouper = *Grouper::make({columnar::int64()});
  auto avg = *make_accumulator(AggregateKind::kAvg, columnar::int64());
  auto var = *make_accumulator(AggregateKind::kVariance, columnar::int64());
  std::vector<uint32_t> ids;
  for (auto _ : state) {
    expect_ok(grouper->consume(std::span<const Array>(&keys, 1), &ids));
    avg->resize(grouper->num_groups());
    var->resize(grouper->num_groups());
    expect_ok(avg->update(values, ids));
    expect_ok(var->update(values, ids));
  }
  state.SetItemsProcessed(state.iterations() * kRows);
}
BENCHMARK(BM_GroupedAvgVarianceInt64);

}  // namespace
}  // namespace sabot::compute

BENCHMARK_MAIN();
