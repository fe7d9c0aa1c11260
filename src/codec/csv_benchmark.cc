// CSV codec micro-benchmarks: decoding 1 M records of about 60 bytes (the JSON benchmark's events)
// at once and streamed in 1 MiB chunks, and encoding them back. Single-threaded.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <string>

#include "sabot/base/check.h"
#include "sabot/codec/csv.h"
#include "sabot/columnar/builder.h"

namespace sabot::codec {
namespace {

constexpr int64_t kRecords = 1'000'000;

columnar::SchemaPtr event_schema() {
  return columnar::schema({
      columnar::field("id", columnar::int64(), false),
      columnar::field("account", columnar::utf8()),
      columnar::field("amount", columnar::float64()),
      columnar::field("city", columnar::utf8()),
      columnar::field("ts", columnar::timestamp(columnar::TimeUnit::kMilli)),
  });
}

// 123456,ACC-00012345,1234.56,"Lisbon, PT",1700000000000 (every fifth city quoted)
const std::string& text() {
  static const std::string t = [] {
    static const char* const kCities[] = {"Lisbon", "Porto", "Madrid", "Paris", "\"Berlin, DE\""};
    std::mt19937_64 rng(1);
    std::string s = "id,account,amount,city,ts\n";
    char buf[256];
    for (int64_t i = 0; i < kRecords; ++i) {
      int n = std::snprintf(buf, sizeof(buf), "%lld,ACC-%08llu,%llu.%02llu,%s,%lld\n",
                            static_cast<long long>(i),
                            static_cast<unsigned long long>(rng() % 100000000),
                            static_cast<unsigned long long>(rng() % 100000),
                            static_cast<unsigned long long>(rng() % 100), kCities[rng() % 5],
                            static_cast<long long>(1700000000000 + i));
      s.append(buf, static_cast<size_t>(n));
    }
    return s;
  }();
  return t;
}

void BM_CsvDecodeAll(benchmark::State& state) {
  CsvDecoder d = CsvDecoder::make(event_schema()).value();
  for (auto _ : state) {
    DecodeResult r = d.decode(text()).value();
    SABOT_CHECK_EQ(r.batch.num_rows(), kRecords);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * kRecords);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text().size()));
}
BENCHMARK(BM_CsvDecodeAll)->Unit(benchmark::kMillisecond);

// As a file source reads: 1 MiB chunks, batches of at most 4096 rows.
void BM_CsvDecodeStreamed(benchmark::State& state) {
  const std::string& t = text();
  constexpr size_t kChunk = 1 << 20;
  for (auto _ : state) {
    CsvDecoder d = CsvDecoder::make(event_schema()).value();
    int64_t rows = 0;
    size_t pos = 0;
    while (!d.exhausted()) {
      if (d.buffered_bytes() < static_cast<int64_t>(kChunk) && pos < t.size()) {
        size_t n = std::min(kChunk, t.size() - pos);
        d.feed(std::string_view(t).substr(pos, n));
        pos += n;
        if (pos == t.size()) d.finish_input();
      }
      DecodeResult r = d.next_batch(4096).value();
      rows += r.batch.num_rows();
    }
    SABOT_CHECK_EQ(rows, kRecords);
  }
  state.SetItemsProcessed(state.iterations() * kRecords);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(t.size()));
}
BENCHMARK(BM_CsvDecodeStreamed)->Unit(benchmark::kMillisecond);

void BM_CsvEncode(benchmark::State& state) {
  CsvDecoder d = CsvDecoder::make(event_schema()).value();
  columnar::RecordBatch batch = d.decode(text()).value().batch;
  std::string out;
  for (auto _ : state) {
    out.clear();
    CsvEncoder enc;
    enc.encode(batch, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kRecords);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_CsvEncode)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sabot::codec

BENCHMARK_MAIN();
