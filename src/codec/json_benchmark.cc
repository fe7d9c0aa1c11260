// JSON codec micro-benchmarks: decoding 1 M records of about 100 bytes into columns (from a binary
// array and from JSON lines), and encoding them back. Single-threaded.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <string>

#include "codec/json_test_access.h"
#include "sabot/base/check.h"
#include "sabot/codec/json.h"
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

// {"id":123456,"account":"ACC-00012345","amount":1234.56,"city":"Lisbon","ts":1700000000000}
const columnar::Array& messages() {
  static const columnar::Array array = [] {
    static const char* const kCities[] = {"Lisbon", "Porto", "Madrid", "Paris", "Berlin"};
    std::mt19937_64 rng(1);
    columnar::BinaryBuilder b(columnar::binary());
    b.reserve(kRecords);
    char buf[256];
    for (int64_t i = 0; i < kRecords; ++i) {
      int n = std::snprintf(
          buf, sizeof(buf),
          R"({"id":%lld,"account":"ACC-%08llu","amount":%llu.%02llu,"city":"%s","ts":%lld})",
          static_cast<long long>(i), static_cast<unsigned long long>(rng() % 100000000),
          static_cast<unsigned long long>(rng() % 100000),
          static_cast<unsigned long long>(rng() % 100), kCities[rng() % 5],
          static_cast<long long>(1700000000000 + i));
      b.append(std::string_view(buf, static_cast<size_t>(n)));
    }
    return b.finish();
  }();
  return array;
}

const std::string& lines() {
  static const std::string text = [] {
    const columnar::Array& m = messages();
    std::string t;
    t.reserve(static_cast<size_t>(m.offsets()[m.length()]) + static_cast<size_t>(m.length()));
    for (int64_t i = 0; i < m.length(); ++i) {
      t.append(m.string_view(i));
      t.push_back('\n');
    }
    return t;
  }();
  return text;
}

void BM_DecodeBinaryArray(benchmark::State& state) {
  const columnar::Array& m = messages();
  auto decoder = JsonDecoder::make(event_schema());
  SABOT_CHECK_OK(decoder);
  // Second arg 1: every record through the DOM reference path (what the decoder did before it
  // used simdjson's on-demand API), for a before/after figure from one binary.
  JsonDecoderTestAccess::set_dom_only(*decoder, state.range(1) == 1);
  const int64_t batch = state.range(0);
  for (auto _ : state) {
    for (int64_t start = 0; start < kRecords; start += batch) {
      auto r = decoder->decode(m.slice(start, std::min(batch, kRecords - start)));
      SABOT_CHECK(r.is_ok() && r->errors.empty());
      benchmark::DoNotOptimize(r->batch);
    }
  }
  state.SetItemsProcessed(state.iterations() * kRecords);
  state.SetBytesProcessed(state.iterations() * m.offsets()[m.length()]);
}
// Args: records per decode() call (the whole million at once, and topic-sized batches); 1 for
// the DOM reference path.
BENCHMARK(BM_DecodeBinaryArray)
    ->Args({kRecords, 0})
    ->Args({4096, 0})
    ->Args({4096, 1})
    ->Unit(benchmark::kMillisecond);

// The fraud demo's transactions (src/fraud/transactions.cc): 11 fields, 8 of them strings.
columnar::SchemaPtr transaction_schema() {
  using columnar::field;
  return columnar::schema({
      field("transaction_id", columnar::int64(), false),
      field("account_number", columnar::utf8(), false),
      field("user_id", columnar::utf8(), false),
      field("transaction_date", columnar::utf8(), false),
      field("transaction_amount", columnar::float64(), false),
      field("currency", columnar::utf8(), false),
      field("transaction_type", columnar::utf8(), false),
      field("branch_city", columnar::utf8(), false),
      field("payment_method", columnar::utf8(), false),
      field("country", columnar::utf8(), false),
      field("timestamp_ms", columnar::int64(), false),
  });
}

const columnar::Array& transactions() {
  static const columnar::Array array = [] {
    static const char* const kCities[] = {"Lisbon", "Porto", "Madrid", "Paris", "Berlin"};
    std::mt19937_64 rng(2);
    columnar::BinaryBuilder b(columnar::binary());
    b.reserve(kRecords);
    char buf[512];
    for (int64_t i = 0; i < kRecords; ++i) {
      const int n = std::snprintf(
          buf, sizeof(buf),
          R"({"transaction_id":%lld,"account_number":"ACC%08llu","user_id":"USR%06llu",)"
          R"("transaction_date":"2024-03-%02lluT10:%02llu:%02llu.000Z","transaction_amount":%llu.%02llu,)"
          R"("currency":"EUR","transaction_type":"PURCHASE","branch_city":"%s",)"
          R"("payment_method":"CARD","country":"PT","timestamp_ms":%lld})",
          static_cast<long long>(i), static_cast<unsigned long long>(rng() % 100000),
          static_cast<unsigned long long>(rng() % 100000),
          static_cast<unsigned long long>(1 + rng() % 28),
          static_cast<unsigned long long>(rng() % 60), static_cast<unsigned long long>(rng() % 60),
          static_cast<unsigned long long>(rng() % 5000),
          static_cast<unsigned long long>(rng() % 100), kCities[rng() % 5],
          static_cast<long long>(1709287200000 + i));
      b.append(std::string_view(buf, static_cast<size_t>(n)));
    }
    return b.finish();
  }();
  return array;
}

// The six fields the fraud demo's detector reads (examples/fraud/fraud_job.cc); the other five
// are skipped, and still validated.
columnar::SchemaPtr detector_schema() {
  using columnar::field;
  return columnar::schema({
      field("transaction_id", columnar::int64(), false),
      field("account_number", columnar::utf8(), false),
      field("transaction_amount", columnar::float64(), false),
      field("currency", columnar::utf8(), false),
      field("branch_city", columnar::utf8(), false),
      field("timestamp_ms", columnar::int64(), false),
  });
}

void BM_DecodeTransactions(benchmark::State& state) {
  const columnar::Array& m = transactions();
  auto decoder = JsonDecoder::make(state.range(1) == 1 ? detector_schema() : transaction_schema());
  SABOT_CHECK_OK(decoder);
  JsonDecoderTestAccess::set_dom_only(*decoder, state.range(0) == 1);
  for (auto _ : state) {
    for (int64_t start = 0; start < kRecords; start += 4096) {
      auto r = decoder->decode(m.slice(start, std::min<int64_t>(4096, kRecords - start)));
      SABOT_CHECK(r.is_ok() && r->errors.empty());
      benchmark::DoNotOptimize(r->batch);
    }
  }
  state.SetItemsProcessed(state.iterations() * kRecords);
  state.SetBytesProcessed(state.iterations() * m.offsets()[m.length()]);
}
// Args: 1 for the DOM reference path; 1 for the detector's six fields (0: all eleven).
BENCHMARK(BM_DecodeTransactions)
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({0, 1})
    ->Args({1, 1})
    ->Unit(benchmark::kMillisecond);

void BM_DecodeLines(benchmark::State& state) {
  const std::string& text = lines();
  auto decoder = JsonDecoder::make(event_schema());
  SABOT_CHECK_OK(decoder);
  for (auto _ : state) {
    auto r = decoder->decode_lines(text);
    SABOT_CHECK(r.is_ok() && r->errors.empty() && r->batch.num_rows() == kRecords);
    benchmark::DoNotOptimize(r->batch);
  }
  state.SetItemsProcessed(state.iterations() * kRecords);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
}
BENCHMARK(BM_DecodeLines)->Unit(benchmark::kMillisecond);

const columnar::RecordBatch& decoded_batch() {
  static const columnar::RecordBatch batch = [] {
    auto decoder = JsonDecoder::make(event_schema());
    SABOT_CHECK_OK(decoder);
    auto r = decoder->decode(messages());
    SABOT_CHECK_OK(r);
    return r->batch;
  }();
  return batch;
}

void BM_EncodeToBinaryArray(benchmark::State& state) {
  const columnar::RecordBatch& batch = decoded_batch();
  JsonEncoder encoder;
  int64_t bytes = 0;
  const int64_t rows = state.range(0);
  for (auto _ : state) {
    for (int64_t start = 0; start < kRecords; start += rows) {
      auto r = encoder.encode(batch.slice(start, std::min(rows, kRecords - start)));
      SABOT_CHECK_OK(r);
      bytes += r->offsets()[r->length()];
      benchmark::DoNotOptimize(*r);
    }
  }
  state.SetItemsProcessed(state.iterations() * kRecords);
  state.SetBytesProcessed(bytes);
}
// Arg: rows per encode() call.
BENCHMARK(BM_EncodeToBinaryArray)->Arg(kRecords)->Arg(4096)->Unit(benchmark::kMillisecond);

void BM_EncodeLines(benchmark::State& state) {
  const columnar::RecordBatch& batch = decoded_batch();
  JsonEncoder encoder;
  std::string out;
  int64_t bytes = 0;
  for (auto _ : state) {
    out.clear();
    encoder.encode_lines(batch, out);
    bytes += static_cast<int64_t>(out.size());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kRecords);
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_EncodeLines)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sabot::codec

BENCHMARK_MAIN();
