#include <benchmark/benchmark.h>

#include "sabot/fraud/rules.h"
#include "sabot/fraud/transactions.h"

namespace sabot::fraud {
namespace {

void BM_GenerateTransactions(benchmark::State& state) {
  const int64_t n = state.range(0);
  for (auto _ : state) {
    auto rows = generate_transactions({.transactions = n, .seed = 1});
    benchmark::DoNotOptimize(rows);
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_GenerateTransactions)->Arg(200'000)->Unit(benchmark::kMillisecond);

void BM_GenerateBatches(benchmark::State& state) {
  const int64_t n = state.range(0);
  for (auto _ : state) {
    auto gen = TransactionGenerator::make({.transactions = n, .seed = 1});
    while (!gen->done()) benchmark::DoNotOptimize(gen->next_batch(4096));
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_GenerateBatches)->Arg(200'000)->Unit(benchmark::kMillisecond);

void BM_ReferenceAlerts(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto rows = generate_transactions({.transactions = n, .seed = 1}).value();
  for (auto _ : state) benchmark::DoNotOptimize(reference_alerts(rows));
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_ReferenceAlerts)->Arg(200'000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sabot::fraud

BENCHMARK_MAIN();
