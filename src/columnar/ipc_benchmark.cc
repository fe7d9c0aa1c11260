// Arrow IPC stream write and read of one 1,000,000-row batch (int64, float64, utf8 of 5-20 bytes).
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "sabot/columnar/builder.h"
#include "sabot/columnar/ipc.h"

namespace sabot::columnar {
namespace {

constexpr int64_t kRows = 1'000'000;

RecordBatch make_batch() {
  std::mt19937_64 rng(42);
  Int64Builder ints;
  Float64Builder doubles;
  StringBuilder strings;
  ints.reserve(kRows);
  doubles.reserve(kRows);
  strings.reserve(kRows);
  strings.reserve_bytes(kRows * 13);
  std::string s;
  for (int64_t i = 0; i < kRows; ++i) {
    ints.append(static_cast<int64_t>(rng()));
    doubles.append(static_cast<double>(rng() % 1000000) / 7.0);
    s.assign(5 + rng() % 16, 'a');
    for (char& c : s) c = static_cast<char>('a' + rng() % 26);
    if (i % 100 == 7) {
      strings.append_null();
    } else {
      strings.append(s);
    }
  }
  return RecordBatch::make(
             schema({field("id", int64()), field("price", float64()), field("name", utf8())}),
             {ints.finish(), doubles.finish(), strings.finish()})
      .value();
}

const RecordBatch& batch() {
  static const RecordBatch b = make_batch();
  return b;
}

void BM_IpcWrite(benchmark::State& state) {
  const RecordBatch& b = batch();
  std::vector<uint8_t> out;
  for (auto _ : state) {
    out.clear();  // keeps the capacity, like a sink that reuses its buffer
    VectorSink sink(&out);
    IpcStreamWriter writer(&sink);
    if (!writer.write(b).is_ok() || !writer.close().is_ok()) state.SkipWithError("write failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kRows);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_IpcWrite)->Unit(benchmark::kMillisecond);

void BM_IpcWriteSliced(benchmark::State& state) {
  // Offset 3: bitmaps are shifted and string offsets re-based.
  RecordBatch b = batch().slice(3, kRows - 3);
  std::vector<uint8_t> out;
  for (auto _ : state) {
    out.clear();
    VectorSink sink(&out);
    IpcStreamWriter writer(&sink);
    if (!writer.write(b).is_ok() || !writer.close().is_ok()) state.SkipWithError("write failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * b.num_rows());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_IpcWriteSliced)->Unit(benchmark::kMillisecond);

void read_benchmark(benchmark::State& state, bool validate_utf8) {
  auto bytes = write_ipc_stream({batch()});
  if (!bytes.is_ok()) {
    state.SkipWithError("write failed");
    return;
  }
  BufferPtr stream = Buffer::copy_of(bytes->data(), static_cast<int64_t>(bytes->size()));
  IpcReadOptions options;
  options.validate_utf8 = validate_utf8;
  for (auto _ : state) {
    auto read = read_ipc_stream(stream, options);
    if (!read.is_ok() || read->second.size() != 1) state.SkipWithError("read failed");
    benchmark::DoNotOptimize(read);
  }
  state.SetItemsProcessed(state.iterations() * kRows);
  state.SetBytesProcessed(state.iterations() * stream->size());
}

void BM_IpcRead(benchmark::State& state) { read_benchmark(state, true); }
BENCHMARK(BM_IpcRead)->Unit(benchmark::kMillisecond);

void BM_IpcReadWithoutUtf8Check(benchmark::State& state) { read_benchmark(state, false); }
BENCHMARK(BM_IpcReadWithoutUtf8Check)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sabot::columnar

BENCHMARK_MAIN();
