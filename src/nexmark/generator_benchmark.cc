// The Nexmark generator's throughput on one core: the Nexmark figures count events per CPU-second
// with the generator included, so q0 at 5 M events/CPU-s needs the generator well above that.
// Items are events of the kinds produced (bids for the bids-only cases).
#include <benchmark/benchmark.h>

#include <vector>

#include "sabot/nexmark/generator.h"

namespace sabot::nexmark {
namespace {

// Events per generate() call: about 4096 bids, the default batch size of a job.
constexpr int64_t kChunk = 4096 * kTotalProportion / kBidProportion;

void BM_GenerateBidsOnly(benchmark::State& state) {
  Generator gen(GeneratorConfig{.seed = 1});
  int64_t pos = 0, bids = 0;
  for (auto _ : state) {
    auto r = gen.generate(pos, pos + kChunk, kBids);
    if (!r.is_ok()) state.SkipWithError("generate failed");
    bids += r->bids.num_rows();
    benchmark::DoNotOptimize(r);
    pos += kChunk;
  }
  state.SetItemsProcessed(bids);
}
BENCHMARK(BM_GenerateBidsOnly);

void BM_GenerateAllKinds(benchmark::State& state) {
  Generator gen(GeneratorConfig{.seed = 1});
  int64_t pos = 0;
  for (auto _ : state) {
    auto r = gen.generate(pos, pos + kChunk, kAllKinds);
    if (!r.is_ok()) state.SkipWithError("generate failed");
    benchmark::DoNotOptimize(r);
    pos += kChunk;
  }
  state.SetItemsProcessed(state.iterations() * kChunk);
}
BENCHMARK(BM_GenerateAllKinds);

// A bids source read to the end in batches of max_rows, the batches dropped at once.
void BM_BidsSourceIntoNothing(benchmark::State& state) {
  const int64_t max_rows = state.range(0);
  GeneratorConfig config{.events = 2'000'000, .seed = 1};
  auto source = bids_source(config, 1);
  int64_t rows = 0;
  for (auto _ : state) {
    runtime::OperatorContext ctx;
    std::vector<int> splits = {0};
    auto reader = source->open_reader(splits, ctx);
    if (!reader.is_ok()) state.SkipWithError("open_reader failed");
    while (true) {
      auto p = (*reader)->poll(max_rows);
      if (!p.is_ok()) state.SkipWithError("poll failed");
      if (p->kind == runtime::SourcePoll::Kind::kEnd) break;
      rows += p->batch.num_rows();
      benchmark::DoNotOptimize(p);
    }
  }
  state.SetItemsProcessed(rows);
}
BENCHMARK(BM_BidsSourceIntoNothing)->Arg(4096)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sabot::nexmark

BENCHMARK_MAIN();
