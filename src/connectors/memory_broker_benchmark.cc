// Produce and consume 1 M records (16-byte keys, 100-byte values) through a 3-partition memory
// topic: the shape of the fraud-detection demo's input.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "sabot/base/check.h"
#include "sabot/columnar/builder.h"
#include "sabot/connectors/memory_broker.h"

namespace sabot::connectors {
namespace {

using namespace std::chrono_literals;

// SABOT_CHECK_OK takes a Result only; this is its Status form.
void check_ok(const Status& status) {
  if (!status.is_ok()) std::fprintf(stderr, "%s\n", status.to_string().c_str());
  SABOT_CHECK(status.is_ok());
}

constexpr int64_t kRecords = 1'000'000;
constexpr int32_t kPartitions = 3;
constexpr int kKeyBytes = 16;
constexpr int kValueBytes = 100;
constexpr int64_t kRecordBytes = kKeyBytes + kValueBytes;

struct Input {
  std::vector<std::string> keys;  // 16 bytes each, 100k distinct accounts
  std::string values;             // kRecords * 100 bytes back to back
};

const Input& input() {
  static const Input kInput = [] {
    Input in;
    std::mt19937_64 rng(1);
    in.keys.reserve(kRecords);
    char key[kKeyBytes + 1];
    for (int64_t i = 0; i < kRecords; ++i) {
      std::snprintf(key, sizeof(key), "acct-%011llu",
                    static_cast<unsigned long long>(rng() % 100000));
      in.keys.emplace_back(key, kKeyBytes);
    }
    in.values.resize(static_cast<size_t>(kRecords * kValueBytes));
    for (char& c : in.values) c = static_cast<char>('a' + rng() % 26);
    return in;
  }();
  return kInput;
}

std::string_view value_at(const Input& in, int64_t i) {
  return std::string_view(in.values).substr(static_cast<size_t>(i * kValueBytes), kValueBytes);
}

TopicPtr fresh_topic(MemoryBroker& broker) {
  (void)broker.delete_topic("bench");
  return broker.create_topic("bench", {.partitions = kPartitions}).value();
}

// Per-record send(): murmur2 of the key, copy into the partition's builders, a chunk per 8192.
void BM_ProduceSend(benchmark::State& state) {
  const Input& in = input();
  MemoryBroker broker;
  for (auto _ : state) {
    state.PauseTiming();
    TopicPtr topic = fresh_topic(broker);
    state.ResumeTiming();
    auto writer = MemoryTopicWriter::open(topic).value();
    for (int64_t i = 0; i < kRecords; ++i) {
      auto p = writer->send(in.keys[static_cast<size_t>(i)], value_at(in, i), Timestamp(i));
      SABOT_CHECK(p.is_ok());
    }
    check_ok(writer->flush());
    state.PauseTiming();
    SABOT_CHECK_EQ(topic->total_records(), kRecords);
    writer.reset();
    topic.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kRecords);
  state.SetBytesProcessed(state.iterations() * kRecords * kRecordBytes);
}
BENCHMARK(BM_ProduceSend)->Unit(benchmark::kMillisecond);

struct Columns {
  std::vector<columnar::Array> keys, values, timestamps;  // batches of 8192 rows
};

const Columns& columns() {
  static const Columns kColumns = [] {
    const Input& in = input();
    Columns c;
    for (int64_t start = 0; start < kRecords; start += 8192) {
      const int64_t n = std::min<int64_t>(8192, kRecords - start);
      columnar::BinaryBuilder kb(columnar::binary()), vb(columnar::binary());
      columnar::Int64Builder tb(columnar::timestamp(columnar::TimeUnit::kMilli));
      for (int64_t i = start; i < start + n; ++i) {
        kb.append(in.keys[static_cast<size_t>(i)]);
        vb.append(value_at(in, i));
        tb.append(i);
      }
      c.keys.push_back(kb.finish());
      c.values.push_back(vb.finish());
      c.timestamps.push_back(tb.finish());
    }
    return c;
  }();
  return kColumns;
}

// Columnar producer partitioned by key: murmur2 over the key column, rows scattered by partition.
void BM_ProduceSendBatchByKey(benchmark::State& state) {
  const Columns& c = columns();
  MemoryBroker broker;
  for (auto _ : state) {
    state.PauseTiming();
    TopicPtr topic = fresh_topic(broker);
    state.ResumeTiming();
    auto writer = MemoryTopicWriter::open(topic).value();
    for (size_t b = 0; b < c.keys.size(); ++b) {
      check_ok(writer->send_batch(c.keys[b], c.values[b], c.timestamps[b]));
    }
    check_ok(writer->flush());
    state.PauseTiming();
    SABOT_CHECK_EQ(topic->total_records(), kRecords);
    writer.reset();
    topic.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kRecords);
  state.SetBytesProcessed(state.iterations() * kRecords * kRecordBytes);
}
BENCHMARK(BM_ProduceSendBatchByKey)->Unit(benchmark::kMillisecond);

// Columnar producer that already knows the partition: each batch becomes a chunk, no copy.
void BM_ProduceSendBatchToPartition(benchmark::State& state) {
  const Columns& c = columns();
  MemoryBroker broker;
  for (auto _ : state) {
    state.PauseTiming();
    TopicPtr topic = fresh_topic(broker);
    state.ResumeTiming();
    auto writer = MemoryTopicWriter::open(topic).value();
    for (size_t b = 0; b < c.keys.size(); ++b) {
      const PartitionId p(static_cast<int32_t>(b % kPartitions));
      check_ok(writer->send_batch(p, c.keys[b], c.values[b], c.timestamps[b]));
    }
    state.PauseTiming();
    SABOT_CHECK_EQ(topic->total_records(), kRecords);
    writer.reset();
    topic.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kRecords);
  state.SetBytesProcessed(state.iterations() * kRecords * kRecordBytes);
}
BENCHMARK(BM_ProduceSendBatchToPartition)->Unit(benchmark::kMillisecond);

// Reads the 1 M records back with polls of up to max_records (zero-copy slices); counts key and
// value bytes from the offsets so the batches are used.
void BM_Consume(benchmark::State& state) {
  const Input& in = input();
  const int64_t max_records = state.range(0);
  MemoryBroker broker;
  TopicPtr topic = fresh_topic(broker);
  {
    auto writer = MemoryTopicWriter::open(topic).value();
    for (int64_t i = 0; i < kRecords; ++i) {
      SABOT_CHECK(
          writer->send(in.keys[static_cast<size_t>(i)], value_at(in, i), Timestamp(i)).is_ok());
    }
    check_ok(writer->close());
  }
  topic->close();
  PollResult result;
  for (auto _ : state) {
    auto reader = MemoryTopicReader::open_all(topic).value();
    int64_t records = 0;
    int64_t bytes = 0;
    do {
      check_ok(reader->poll_into(max_records, 0ms, result));
      for (const PartitionBatch& b : result.batches) {
        const int64_t n = b.records.num_rows();
        const int32_t* ko = b.records.column(kKeyColumn).offsets();
        const int32_t* vo = b.records.column(kValueColumn).offsets();
        bytes += (ko[n] - ko[0]) + (vo[n] - vo[0]);
        records += n;
      }
    } while (!result.end_of_input);
    SABOT_CHECK_EQ(records, kRecords);
    SABOT_CHECK_EQ(bytes, kRecords * kRecordBytes);
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(state.iterations() * kRecords);
  state.SetBytesProcessed(state.iterations() * kRecords * kRecordBytes);
}
BENCHMARK(BM_Consume)->Arg(500)->Arg(8192)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sabot::connectors

BENCHMARK_MAIN();
