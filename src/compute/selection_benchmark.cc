// Micro-benchmarks of the selection kernels: filter, take, building a selection vector and
// sort_indices, on 1 M-row columns with random data (fixed seeds).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "sabot/columnar/builder.h"
#include "sabot/compute/selection.h"
#include "sabot/compute/sort.h"

namespace sabot::compute {
namespace {

using columnar::Array;

constexpr int64_t kRows = 1 << 20;

Array random_int64(int64_t rows, double null_rate, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution is_null(null_rate);
  columnar::Int64Builder builder;
  builder.reserve(rows);
  for (int64_t i = 0; i < rows; ++i) {
    if (null_rate > 0 && is_null(rng)) {
      builder.append_null();
    } else {
      builder.append(static_cast<int64_t>(rng()));
    }
  }
  return builder.finish();
}

Array random_strings(int64_t rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  columnar::StringBuilder builder;
  builder.reserve(rows);
  std::string s;
  for (int64_t i = 0; i < rows; ++i) {
    s.assign(static_cast<size_t>(4 + rng() % 12), 'a');
    for (char& c : s) c = static_cast<char>('a' + rng() % 26);
    builder.append(s);
  }
  return builder.finish();
}

// Mask with `percent` % true values.
Array random_mask(int64_t rows, int percent, uint64_t seed) {
  std::mt19937_64 rng(seed);
  columnar::BooleanBuilder builder;
  builder.reserve(rows);
  for (int64_t i = 0; i < rows; ++i) builder.append(static_cast<int>(rng() % 100) < percent);
  return builder.finish();
}

void BM_FilterInt64(benchmark::State& state) {
  const Array values = random_int64(kRows, 0.0, 1);
  const Array mask = random_mask(kRows, static_cast<int>(state.range(0)), 2);
  for (auto _ : state) {
    auto out = filter(values, mask);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * kRows);
  state.SetBytesProcessed(state.iterations() * kRows * 8);
}
BENCHMARK(BM_FilterInt64)->Arg(1)->Arg(50)->Arg(99);

void BM_FilterInt64WithNulls(benchmark::State& state) {
  const Array values = random_int64(kRows, 0.1, 3);
  const Array mask = random_mask(kRows, 50, 2);
  for (auto _ : state) {
    auto out = filter(values, mask);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * kRows);
}
BENCHMARK(BM_FilterInt64WithNulls);

void BM_FilterUtf8(benchmark::State& state) {
  const Array values = random_strings(kRows, 4);
  const Array mask = random_mask(kRows, 50, 2);
  for (auto _ : state) {
    auto out = filter(values, mask);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * kRows);
}
BENCHMARK(BM_FilterUtf8);

void BM_BuildSelectionVector(benchmark::State& state) {
  const Array mask = random_mask(kRows, static_cast<int>(state.range(0)), 5);
  SelectionVector selection(kRows);
  for (auto _ : state) {
    benchmark::DoNotOptimize(selection.assign_from_mask(mask));
    benchmark::DoNotOptimize(selection.data());
  }
  state.SetItemsProcessed(state.iterations() * kRows);
}
BENCHMARK(BM_BuildSelectionVector)->Arg(1)->Arg(50)->Arg(99);

void BM_TakeInt64RandomIndices(benchmark::State& state) {
  const Array values = random_int64(kRows, 0.0, 6);
  std::mt19937_64 rng(7);
  std::vector<int32_t> indices(static_cast<size_t>(kRows));
  for (int32_t& i : indices) i = static_cast<int32_t>(rng() % kRows);
  for (auto _ : state) {
    auto out = take(values, indices);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * kRows);
}
BENCHMARK(BM_TakeInt64RandomIndices);

void BM_SortIndicesInt64(benchmark::State& state) {
  const Array values = random_int64(kRows, 0.0, 8);
  for (auto _ : state) {
    auto out = sort_indices(values);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * kRows);
}
BENCHMARK(BM_SortIndicesInt64)->Unit(benchmark::kMillisecond);

columnar::RecordBatch two_column_batch() {
  // A low-cardinality string key (676 distinct values) and a random int64 key.
  std::mt19937_64 rng(9);
  columnar::StringBuilder city;
  city.reserve(kRows);
  for (int64_t i = 0; i < kRows; ++i) {
    const char name[2] = {static_cast<char>('a' + rng() % 26), static_cast<char>('a' + rng() % 26)};
    city.append(std::string_view(name, 2));
  }
  auto batch =
      columnar::RecordBatch::make(columnar::schema({columnar::field("city", columnar::utf8()),
                                                    columnar::field("amount", columnar::int64())}),
                                  {city.finish(), random_int64(kRows, 0.0, 10)});
  return *batch;
}

void BM_SortBatchTwoKeys(benchmark::State& state) {
  const columnar::RecordBatch batch = two_column_batch();
  const std::vector<SortKey> keys = {{"city"}, {"amount", false}};
  for (auto _ : state) {
    auto out = sort_indices(batch, keys);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * kRows);
}
BENCHMARK(BM_SortBatchTwoKeys)->Unit(benchmark::kMillisecond);

void BM_TopN100TwoKeys(benchmark::State& state) {
  const columnar::RecordBatch batch = two_column_batch();
  const std::vector<SortKey> keys = {{"city"}, {"amount", false}};
  for (auto _ : state) {
    auto out = top_n(batch, keys, 100);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * kRows);
}
BENCHMARK(BM_TopN100TwoKeys)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sabot::compute

BENCHMARK_MAIN();
