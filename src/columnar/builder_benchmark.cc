// Builders and concat: appending must cost a few cycles per row with no per-row allocation.
#include <benchmark/benchmark.h>

#include <string>

#include "sabot/columnar/builder.h"
#include "sabot/columnar/record_batch.h"

namespace sabot::columnar {
namespace {

void BM_Int64BuilderReserved(benchmark::State& state) {
  const int64_t n = state.range(0);
  for (auto _ : state) {
    Int64Builder b;
    b.reserve(n);
    for (int64_t i = 0; i < n; ++i) b.unsafe_append(i);
    benchmark::DoNotOptimize(b.finish());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_Int64BuilderReserved)->Arg(1 << 20);

void BM_Int64BuilderGrowing(benchmark::State& state) {
  const int64_t n = state.range(0);
  for (auto _ : state) {
    Int64Builder b;
    for (int64_t i = 0; i < n; ++i) b.append(i);
    benchmark::DoNotOptimize(b.finish());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_Int64BuilderGrowing)->Arg(1 << 20);

void BM_Utf8Builder(benchmark::State& state) {
  const int64_t n = state.range(0);
  const std::string words[] = {"alpha", "bravo-charlie", "delta", "echo-foxtrot-golf"};
  for (auto _ : state) {
    StringBuilder b;
    b.reserve(n);
    b.reserve_bytes(n * 12);
    for (int64_t i = 0; i < n; ++i) b.append(words[i & 3]);
    benchmark::DoNotOptimize(b.finish());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_Utf8Builder)->Arg(1 << 20);

void BM_ConcatInt64(benchmark::State& state) {
  Int64Builder b;
  for (int64_t i = 0; i < 65536; ++i) b.append(i);
  Array part = b.finish();
  std::vector<Array> parts(16, part);
  for (auto _ : state) {
    benchmark::DoNotOptimize(concat(std::span<const Array>(parts)));
  }
  state.SetItemsProcessed(state.iterations() * 16 * 65536);
  state.SetBytesProcessed(state.iterations() * 16 * 65536 * 8);
}
BENCHMARK(BM_ConcatInt64);

}  // namespace
}  // namespace sabot::columnar

BENCHMARK_MAIN();
