// Where the fraud detector's time goes, single-threaded where possible: decoding the topic's JSON
// values into the detector's columns, the detector job over already decoded batches (key_by
// shuffle, key resolution, state, rules), and the whole topic -> alerts job.
#include <benchmark/benchmark.h>
#include <time.h>

#include <simdjson.h>

#include "fraud_job.h"
#include "sabot/base/check.h"

namespace sabot::fraud {
namespace {

constexpr int64_t kTransactions = 1'000'000;

double process_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The JSON values of the demo's input topic.
const std::vector<columnar::Array>& messages() {
  static const std::vector<columnar::Array> out = [] {
    auto gen = TransactionGenerator::make({.transactions = kTransactions, .seed = 42});
    SABOT_CHECK_OK(gen);
    codec::JsonEncoder encoder;
    std::vector<columnar::Array> v;
    while (!gen->done()) v.push_back(encoder.encode(gen->next_batch(4096)).value());
    return v;
  }();
  return out;
}

void BM_DecodeDetectorInput(benchmark::State& state) {
  auto decoder = codec::JsonDecoder::make(detector_input_schema());
  SABOT_CHECK_OK(decoder);
  benchmark::DoNotOptimize(messages());  // generated before timing
  const double cpu0 = process_cpu_s();
  for (auto _ : state) {
    for (const columnar::Array& m : messages()) {
      auto r = decoder->decode(m);
      SABOT_CHECK(r.is_ok() && r->errors.empty());
      benchmark::DoNotOptimize(r->batch);
    }
  }
  state.SetItemsProcessed(state.iterations() * kTransactions);
  state.counters["per_cpu_s"] =
      static_cast<double>(state.iterations() * kTransactions) / (process_cpu_s() - cpu0);
}
BENCHMARK(BM_DecodeDetectorInput)->Unit(benchmark::kMillisecond)->UseRealTime();

// A ceiling for the codec: simdjson's on-demand API reading the same six fields into the same
// builders. Not a drop-in replacement: on-demand does not validate the values it skips, which the
// codec must (a malformed record is never accepted); the codec uses the DOM API.
void BM_OndemandSixFieldsCeiling(benchmark::State& state) {
  benchmark::DoNotOptimize(messages());
  simdjson::ondemand::parser parser;
  std::string padded;
  const double cpu0 = process_cpu_s();
  for (auto _ : state) {
    for (const columnar::Array& m : messages()) {
      columnar::Int64Builder ids, times;
      columnar::Float64Builder amounts;
      columnar::BinaryBuilder accounts(columnar::utf8()), currencies(columnar::utf8()),
          cities(columnar::utf8());
      for (int64_t i = 0; i < m.length(); ++i) {
        const std::string_view text = m.string_view(i);
        padded.assign(text);
        padded.append(simdjson::SIMDJSON_PADDING, ' ');
        auto doc = parser.iterate(padded.data(), text.size(), padded.size());
        simdjson::ondemand::object obj = doc.get_object().value();
        for (auto field : obj) {
          const std::string_view key = field.unescaped_key().value();
          if (key == "transaction_id")
            ids.append(field.value().get_int64().value());
          else if (key == "account_number")
            accounts.append(field.value().get_string().value());
          else if (key == "transaction_amount")
            amounts.append(field.value().get_double().value());
          else if (key == "currency")
            currencies.append(field.value().get_string().value());
          else if (key == "branch_city")
            cities.append(field.value().get_string().value());
          else if (key == "timestamp_ms")
            times.append(field.value().get_int64().value());
        }
      }
      benchmark::DoNotOptimize(ids.finish());
      benchmark::DoNotOptimize(accounts.finish());
      benchmark::DoNotOptimize(cities.finish());
    }
  }
  state.SetItemsProcessed(state.iterations() * kTransactions);
  state.counters["per_cpu_s"] =
      static_cast<double>(state.iterations() * kTransactions) / (process_cpu_s() - cpu0);
}
BENCHMARK(BM_OndemandSixFieldsCeiling)->Unit(benchmark::kMillisecond)->UseRealTime();

// Decoded and stamped batches, as the detector's key_by receives them.
const std::vector<columnar::RecordBatch>& stamped_batches() {
  static const std::vector<columnar::RecordBatch> out = [] {
    auto decoder = codec::JsonDecoder::make(detector_input_schema());
    std::vector<columnar::RecordBatch> v;
    for (const columnar::Array& m : messages()) {
      columnar::RecordBatch b = decoder->decode(m).value().batch;
      std::vector<columnar::Array> columns = b.columns();
      columns.push_back(
          columnar::Array::make_repeated(columnar::Scalar::of_int64(0), b.num_rows()));
      v.push_back(columnar::RecordBatch::make_unchecked(stamped_input_schema(), std::move(columns),
                                                        b.num_rows()));
    }
    return v;
  }();
  return out;
}

void BM_DetectorOnDecodedBatches(benchmark::State& state) {
  const auto& batches = stamped_batches();
  const double cpu0 = process_cpu_s();
  for (auto _ : state) {
    Environment env({.parallelism = 1, .worker_threads = 1});
    auto stats = std::make_shared<DetectorStats>();
    env.from_batches({batches.begin(), batches.end()}, stamped_input_schema())
        .key_by("account_number")
        .process(FraudDetector(stats, /*latency=*/false))
        .blackhole();
    JobResult r = env.execute("detector");
    SABOT_CHECK(r.ok());
    SABOT_CHECK_EQ(stats->transactions(), kTransactions);
  }
  state.SetItemsProcessed(state.iterations() * kTransactions);
  state.counters["per_cpu_s"] =
      static_cast<double>(state.iterations() * kTransactions) / (process_cpu_s() - cpu0);
}
BENCHMARK(BM_DetectorOnDecodedBatches)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_DemoJob(benchmark::State& state) {
  for (auto _ : state) {
    std::ostringstream out;
    DemoOptions o;
    o.transactions = kTransactions;
    o.parallelism = static_cast<int>(state.range(0));
    o.quiet = true;
    o.out = &out;
    auto s = run_fraud_demo(o);
    SABOT_CHECK_OK(s);
    state.SetIterationTime(s->wall_s);
    state.counters["tx_per_cpu_s"] = s->tx_per_cpu_s;
  }
  state.SetItemsProcessed(state.iterations() * kTransactions);
}
BENCHMARK(BM_DemoJob)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseManualTime();

}  // namespace
}  // namespace sabot::fraud

BENCHMARK_MAIN();
