#include "sabot/connectors/memory_broker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "connectors/murmur2.h"
#include "sabot/columnar/builder.h"

namespace sabot::connectors {
namespace {

using namespace std::chrono_literals;
using columnar::Array;

// prefix + number; avoids GCC 12's false -Wrestrict on `"literal" + std::string`.
template <typename N>
std::string labelled(std::string_view prefix, N n) {
  std::string out(prefix);
  out += std::to_string(n);
  return out;
}

struct Rec {
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  int64_t timestamp = 0;
  bool operator==(const Rec&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Rec& r) {
  return os << "{p" << r.partition << "@" << r.offset << " key=" << r.key.value_or("<null>")
            << " value=" << r.value.value_or("<null>") << " ts=" << r.timestamp << "}";
}

std::optional<std::string> cell(const Array& a, int64_t i) {
  if (a.is_null(i)) return std::nullopt;
  return std::string(a.string_view(i));
}

void append_records(const PollResult& result, std::vector<Rec>& out) {
  for (const PartitionBatch& b : result.batches) {
    ASSERT_TRUE(b.records.schema() == *record_schema());
    const Array& k = b.records.column(kKeyColumn);
    const Array& v = b.records.column(kValueColumn);
    const Array& t = b.records.column(kTimestampColumn);
    for (int64_t i = 0; i < b.records.num_rows(); ++i) {
      out.push_back(
          Rec{b.partition.value(), b.base_offset + i, cell(k, i), cell(v, i), t.value<int64_t>(i)});
    }
  }
}

// Polls without waiting until nothing is left.
std::vector<Rec> drain(RecordReader& reader, int64_t max_records = 1000) {
  std::vector<Rec> out;
  while (true) {
    auto result = reader.poll(max_records, 0ms);
    EXPECT_TRUE(result.is_ok()) << result.status().to_string();
    if (!result.is_ok() || result->num_records() == 0) break;
    EXPECT_LE(result->num_records(), max_records);
    append_records(*result, out);
  }
  return out;
}

std::vector<Rec> of_partition(const std::vector<Rec>& recs, int32_t p) {
  std::vector<Rec> out;
  for (const Rec& r : recs) {
    if (r.partition == p) out.push_back(r);
  }
  return out;
}

std::unique_ptr<MemoryTopicWriter> writer_for(const TopicPtr& topic, WriterOptions options = {}) {
  auto w = MemoryTopicWriter::open(topic, options);
  EXPECT_TRUE(w.is_ok()) << w.status().to_string();
  return std::move(w).value();
}

std::unique_ptr<MemoryTopicReader> reader_for(const TopicPtr& topic,
                                              StartPosition start = StartPosition::earliest()) {
  auto r = MemoryTopicReader::open_all(topic, start);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return std::move(r).value();
}

TopicPtr make_topic(MemoryBroker& broker, const std::string& name, int32_t partitions) {
  auto t = broker.create_topic(name, {.partitions = partitions});
  EXPECT_TRUE(t.is_ok()) << t.status().to_string();
  return t.value();
}

// ---- registry and URLs ----

TEST(MemoryBroker, CreateTopicIsIdempotentForTheSamePartitionCount) {
  MemoryBroker broker;
  TopicPtr a = make_topic(broker, "orders", 3);
  TopicPtr b = make_topic(broker, "orders", 3);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(a->num_partitions(), 3);
  EXPECT_EQ(a->name(), "orders");
}

TEST(MemoryBroker, CreateTopicConflictsOnADifferentPartitionCount) {
  MemoryBroker broker;
  make_topic(broker, "orders", 3);
  auto again = broker.create_topic("orders", {.partitions = 4});
  ASSERT_FALSE(again.is_ok());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(again.status().message().find("orders"), std::string::npos);
  EXPECT_NE(again.status().message().find("3 partitions"), std::string::npos);
}

TEST(MemoryBroker, CreateTopicRejectsBadNamesAndPartitionCounts) {
  MemoryBroker broker;
  EXPECT_EQ(broker.create_topic("t", {.partitions = 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(broker.create_topic("t", {.partitions = -2}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(broker.create_topic("", {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(broker.create_topic("a b", {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(broker.create_topic("..", {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(broker.create_topic(std::string(250, 'x'), {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(broker.create_topic(std::string(249, 'x'), {}).is_ok());
  EXPECT_TRUE(broker.create_topic("Fraud.tx_v2-in", {}).is_ok());
}

TEST(MemoryBroker, LooksUpListsAndDeletesTopics) {
  MemoryBroker broker;
  make_topic(broker, "zeta", 1);
  make_topic(broker, "alpha", 2);
  EXPECT_EQ(broker.list_topics(), (std::vector<std::string>{"alpha", "zeta"}));
  ASSERT_TRUE(broker.topic("alpha").is_ok());
  EXPECT_EQ(broker.topic("alpha").value()->num_partitions(), 2);
  auto missing = broker.topic("beta");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("beta"), std::string::npos);

  TopicPtr held = broker.topic("alpha").value();
  ASSERT_TRUE(broker.delete_topic("alpha").is_ok());
  EXPECT_EQ(broker.list_topics(), (std::vector<std::string>{"zeta"}));
  EXPECT_EQ(broker.topic("alpha").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(broker.delete_topic("alpha").code(), StatusCode::kNotFound);
  // A deleted topic is closed so its readers finish; a new topic may take the name.
  EXPECT_TRUE(held->is_closed());
  TopicPtr fresh = make_topic(broker, "alpha", 5);
  EXPECT_NE(fresh.get(), held.get());
  EXPECT_FALSE(fresh->is_closed());
}

TEST(MemoryUrl, ParsesTopicNames) {
  auto url = parse_memory_url("memory://transactions");
  ASSERT_TRUE(url.is_ok()) << url.status().to_string();
  EXPECT_EQ(url->topic, "transactions");
  EXPECT_EQ(parse_memory_url("memory://a.b_c-9").value().topic, "a.b_c-9");
}

TEST(MemoryUrl, RejectsBadUrlsWithAMessageNamingTheUrl) {
  for (std::string_view bad :
       {"", "transactions", "kafka://transactions", "memory:/transactions", "Memory://t",
        "memory://", "memory://a/b", "memory://t?partitions=3", "memory://..", "memory:// t"}) {
    auto url = parse_memory_url(bad);
    ASSERT_FALSE(url.is_ok()) << bad;
    EXPECT_EQ(url.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(url.status().to_string().find(std::string(bad)), std::string::npos)
        << url.status().to_string();
  }
  auto url = parse_memory_url("memory://a/b");
  EXPECT_NE(url.status().to_string().find("'/'"), std::string::npos) << url.status().to_string();
}

TEST(MemoryBroker, DefaultInstanceIsOneProcessWideBrokerReachedByUrl) {
  MemoryBroker& broker = MemoryBroker::default_instance();
  EXPECT_EQ(&broker, &MemoryBroker::default_instance());
  TopicPtr t = make_topic(broker, "default-instance-test", 2);
  auto by_url = broker.topic_for_url("memory://default-instance-test");
  ASSERT_TRUE(by_url.is_ok());
  EXPECT_EQ(by_url.value().get(), t.get());
  EXPECT_EQ(broker.topic_for_url("memory://no-such-topic").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(broker.topic_for_url("file://x").status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(broker.delete_topic("default-instance-test").is_ok());
}

// ---- producing and offsets ----

TEST(MemoryBroker, OffsetsStartAtZeroAndAreContiguousPerPartitionInSendOrder) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 3);
  auto writer = writer_for(topic, {.batch_records = 7});
  std::vector<std::vector<std::string>> sent(3);
  for (int i = 0; i < 100; ++i) {
    const int32_t p = (i * 7) % 3;
    std::string value = labelled("v", i);
    ASSERT_TRUE(writer->send(PartitionId(p), "k", value, Timestamp(1000 + i)).is_ok());
    sent[static_cast<size_t>(p)].push_back(value);
  }
  ASSERT_TRUE(writer->flush().is_ok());
  auto reader = reader_for(topic);
  std::vector<Rec> got = drain(*reader, 13);
  ASSERT_EQ(got.size(), 100u);
  for (int32_t p = 0; p < 3; ++p) {
    std::vector<Rec> part = of_partition(got, p);
    ASSERT_EQ(part.size(), sent[static_cast<size_t>(p)].size());
    EXPECT_EQ(topic->end_offset(PartitionId(p)).value(), static_cast<int64_t>(part.size()));
    for (size_t i = 0; i < part.size(); ++i) {
      EXPECT_EQ(part[i].offset, static_cast<int64_t>(i));
      EXPECT_EQ(part[i].value, sent[static_cast<size_t>(p)][i]);
      EXPECT_EQ(part[i].key, "k");
    }
  }
  EXPECT_EQ(topic->total_records(), 100);
}

TEST(MemoryBroker, RecordsBecomeVisibleOnFlushOrAtTheThresholds) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 1);
  auto writer = writer_for(topic, {.batch_records = 4, .batch_bytes = 1000});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(writer->send(PartitionId(0), {}, "x", {}).is_ok());
  EXPECT_EQ(topic->end_offset(PartitionId(0)).value(), 0);
  ASSERT_TRUE(writer->send(PartitionId(0), {}, "x", {}).is_ok());  // 4th: record threshold
  EXPECT_EQ(topic->end_offset(PartitionId(0)).value(), 4);
  ASSERT_TRUE(writer->send(PartitionId(0), {}, std::string(999, 'y'), {}).is_ok());
  EXPECT_EQ(topic->end_offset(PartitionId(0)).value(), 4);
  ASSERT_TRUE(writer->send(PartitionId(0), "k", {}, {}).is_ok());  // 1000 bytes: byte threshold
  EXPECT_EQ(topic->end_offset(PartitionId(0)).value(), 6);
  ASSERT_TRUE(writer->send(PartitionId(0), {}, "z", {}).is_ok());
  EXPECT_EQ(topic->end_offset(PartitionId(0)).value(), 6);
  ASSERT_TRUE(writer->flush().is_ok());
  EXPECT_EQ(topic->end_offset(PartitionId(0)).value(), 7);
  ASSERT_TRUE(writer->flush().is_ok());  // nothing buffered: no empty chunk
  EXPECT_EQ(topic->end_offset(PartitionId(0)).value(), 7);
}

TEST(MemoryBroker, WriterFlushesOnDestructionAndRefusesSendsAfterClose) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 2);
  {
    auto writer = writer_for(topic);
    ASSERT_TRUE(writer->send(PartitionId(1), "a", "b", Timestamp(5)).is_ok());
  }
  EXPECT_EQ(topic->end_offset(PartitionId(1)).value(), 1);
  auto writer = writer_for(topic);
  ASSERT_TRUE(writer->send(PartitionId(0), "a", "b", Timestamp(5)).is_ok());
  ASSERT_TRUE(writer->close().is_ok());
  EXPECT_EQ(topic->end_offset(PartitionId(0)).value(), 1);
  EXPECT_FALSE(writer->send("a", "b", Timestamp(6)).is_ok());
  EXPECT_FALSE(topic->is_closed());  // closing a writer does not end the topic
}

TEST(MemoryBroker, WriterOptionsAndPartitionsAreValidated) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 2);
  EXPECT_EQ(MemoryTopicWriter::open(topic, {.batch_records = 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(MemoryTopicWriter::open(topic, {.batch_bytes = 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(MemoryTopicWriter::open(nullptr).status().code(), StatusCode::kInvalidArgument);
  auto writer = writer_for(topic);
  Status s = writer->send(PartitionId(2), "k", "v", Timestamp(0));
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("partition 2"), std::string::npos) << s.message();
  EXPECT_EQ(writer->send(PartitionId(-1), "k", "v", Timestamp(0)).code(), StatusCode::kOutOfRange);
}

TEST(MemoryBroker, KeyedRecordsGoToKafkasPartitionForTheKey) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 3);
  auto writer = writer_for(topic);
  // Partitions derived from the hashes in Kafka's UtilsTest.testMurmur2, for 3 partitions.
  const std::vector<std::pair<std::string, int32_t>> expected = {
      {"21", 0},
      {"foobar", 0},
      {"a-little-bit-long-string", 2},
      {"a-little-bit-longer-string", 2},
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 2},
      {"abc", 0}};
  for (const auto& [key, partition] : expected) {
    auto p = writer->send(key, "v", Timestamp(1));
    ASSERT_TRUE(p.is_ok());
    EXPECT_EQ(p->value(), partition) << key;
    EXPECT_EQ(topic->partition_for_key(key).value(), partition) << key;
  }
  ASSERT_TRUE(writer->flush().is_ok());
  auto reader = reader_for(topic);
  std::vector<Rec> got = drain(*reader);
  ASSERT_EQ(got.size(), expected.size());
  std::map<std::string, int32_t> where;
  for (const Rec& r : got) where[*r.key] = r.partition;
  for (const auto& [key, partition] : expected) EXPECT_EQ(where[key], partition) << key;
}

TEST(MemoryBroker, NullKeysStickToOnePartitionUntilItsBatchIsAppended) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 3);
  auto writer = writer_for(topic, {.batch_records = 5});
  std::vector<int32_t> chosen;
  for (int i = 0; i < 30; ++i) {
    auto p = writer->send(std::nullopt, labelled("v", i), Timestamp(i));
    ASSERT_TRUE(p.is_ok());
    chosen.push_back(p->value());
  }
  // Runs of 5 (one batch each), moving to the next partition after every batch.
  for (size_t i = 0; i < chosen.size(); ++i) {
    EXPECT_EQ(chosen[i], chosen[i - i % 5]) << i;
    if (i % 5 == 0 && i > 0) {
      EXPECT_EQ(chosen[i], (chosen[i - 1] + 1) % 3) << i;
    }
  }
  for (int32_t p = 0; p < 3; ++p) EXPECT_EQ(topic->end_offset(PartitionId(p)).value(), 10);
}

TEST(MemoryBroker, NullKeysAndNullValuesRoundTrip) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 1);
  auto writer = writer_for(topic);
  ASSERT_TRUE(writer->send(std::nullopt, std::nullopt, Timestamp(1)).is_ok());
  ASSERT_TRUE(writer->send("k", std::nullopt, Timestamp(2)).is_ok());
  ASSERT_TRUE(writer->send(std::nullopt, "v", Timestamp(3)).is_ok());
  ASSERT_TRUE(writer->send("", "", Timestamp(-4)).is_ok());  // empty is not null
  ASSERT_TRUE(writer->flush().is_ok());
  auto reader = reader_for(topic);
  std::vector<Rec> got = drain(*reader);
  const std::vector<Rec> want = {{0, 0, std::nullopt, std::nullopt, 1},
                                 {0, 1, "k", std::nullopt, 2},
                                 {0, 2, std::nullopt, "v", 3},
                                 {0, 3, "", "", -4}};
  EXPECT_EQ(got, want);
}

// ---- columnar sends ----

TEST(MemoryBroker, SendBatchToAPartitionAppendsZeroCopyAfterBufferedRecords) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 2);
  auto writer = writer_for(topic);
  ASSERT_TRUE(writer->send(PartitionId(1), "first", "0", Timestamp(10)).is_ok());
  Array keys = columnar::utf8_array({"a", std::nullopt, "c", "d"}).slice(1, 3);
  Array values = columnar::binary_array({"x", "1", std::nullopt, "3"}).slice(1, 3);
  Array ts = columnar::int64_array({5, 11, 12, 13}).slice(1, 3);
  ASSERT_TRUE(writer->send_batch(PartitionId(1), keys, values, ts).is_ok());
  EXPECT_EQ(topic->end_offset(PartitionId(1)).value(), 4);  // visible at once, after "first"
  auto reader = reader_for(topic);
  auto result = reader->poll(100, 0ms);
  ASSERT_TRUE(result.is_ok());
  std::vector<Rec> got;
  append_records(*result, got);
  const std::vector<Rec> want = {{1, 0, "first", "0", 10},
                                 {1, 1, std::nullopt, "1", 11},
                                 {1, 2, "c", std::nullopt, 12},
                                 {1, 3, "d", "3", 13}};
  EXPECT_EQ(got, want);
  // The second chunk holds the caller's value bytes, not a copy.
  ASSERT_EQ(result->batches.size(), 2u);
  EXPECT_EQ(result->batches[1].records.column(kValueColumn).raw_data(), values.raw_data());
}

TEST(MemoryBroker, SendBatchRejectsWrongTypesLengthsAndNullTimestamps) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 2);
  auto writer = writer_for(topic);
  Array keys = columnar::binary_array({"a", "b"});
  Array values = columnar::binary_array({"x", "y"});
  Array ts = columnar::timestamp_array(columnar::TimeUnit::kMilli, {1, 2});
  Status s = writer->send_batch(keys, columnar::int64_array({1, 2}), ts);
  EXPECT_EQ(s.code(), StatusCode::kTypeError);
  EXPECT_NE(s.message().find("value"), std::string::npos) << s.message();
  s = writer->send_batch(keys, values,
                         columnar::timestamp_array(columnar::TimeUnit::kMicro, {1, 2}));
  EXPECT_EQ(s.code(), StatusCode::kTypeError);
  s = writer->send_batch(keys, values, columnar::int64_array({1, std::nullopt}));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("row 1"), std::string::npos) << s.message();
  s = writer->send_batch(PartitionId(0), keys, columnar::binary_array({"x"}), ts);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(writer->send_batch(PartitionId(3), keys, values, ts).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(topic->total_records(), 0);
  // Empty batches are fine and append nothing.
  Array empty = Array::make_empty(columnar::binary());
  ASSERT_TRUE(writer->send_batch(PartitionId(0), empty, empty, Array::make_empty(columnar::int64()))
                  .is_ok());
  ASSERT_TRUE(writer->send_batch(empty, empty, Array::make_empty(columnar::int64())).is_ok());
  ASSERT_TRUE(writer->flush().is_ok());
  EXPECT_EQ(topic->total_records(), 0);
}

TEST(MemoryBroker, RandomSendBatchByKeyEqualsPerRecordSends) {
  std::mt19937_64 rng(42);
  for (int iter = 0; iter < 20; ++iter) {
    MemoryBroker broker;
    const int32_t partitions = 1 + static_cast<int32_t>(rng() % 6);
    TopicPtr by_batch = make_topic(broker, "batch", partitions);
    TopicPtr by_record = make_topic(broker, "record", partitions);
    const WriterOptions options{.batch_records = 1 + static_cast<int64_t>(rng() % 50)};
    auto batch_writer = writer_for(by_batch, options);
    auto record_writer = writer_for(by_record, options);
    const double null_density = static_cast<double>(rng() % 100) / 100.0;
    const int64_t n = static_cast<int64_t>(rng() % 400);
    columnar::BinaryBuilder kb(columnar::binary()), vb(columnar::utf8());
    columnar::Int64Builder tb(columnar::timestamp(columnar::TimeUnit::kMilli));
    for (int64_t i = 0; i < n; ++i) {
      if (std::uniform_real_distribution<double>(0, 1)(rng) < null_density) {
        kb.append_null();
      } else {
        kb.append(labelled("key", rng() % 20));
      }
      if (rng() % 10 == 0) {
        vb.append_null();
      } else {
        vb.append(std::string(rng() % 30, static_cast<char>('a' + i % 26)));
      }
      tb.append(static_cast<int64_t>(rng() % 100000));
    }
    Array keys = kb.finish(), values = vb.finish(), ts = tb.finish();
    const int64_t offset = static_cast<int64_t>(rng() % static_cast<uint64_t>(n + 1));
    const int64_t length = static_cast<int64_t>(rng() % static_cast<uint64_t>(n - offset + 1));
    keys = keys.slice(offset, length);
    values = values.slice(offset, length);
    ts = ts.slice(offset, length);
    ASSERT_TRUE(batch_writer->send_batch(keys, values, ts).is_ok());
    for (int64_t i = 0; i < length; ++i) {
      std::optional<std::string_view> k, v;
      if (keys.is_valid(i)) k = keys.string_view(i);
      if (values.is_valid(i)) v = values.string_view(i);
      ASSERT_TRUE(record_writer->send(k, v, Timestamp(ts.value<int64_t>(i))).is_ok());
    }
    ASSERT_TRUE(batch_writer->flush().is_ok());
    ASSERT_TRUE(record_writer->flush().is_ok());
    std::vector<Rec> a = drain(*reader_for(by_batch), 1 + static_cast<int64_t>(rng() % 100));
    std::vector<Rec> b = drain(*reader_for(by_record));
    ASSERT_EQ(a.size(), static_cast<size_t>(length));
    for (int32_t p = 0; p < partitions; ++p) {
      ASSERT_EQ(of_partition(a, p), of_partition(b, p)) << "partition " << p;
      for (const Rec& r : of_partition(a, p)) {
        if (r.key) {
          EXPECT_EQ(kafka_partition_for_key(*r.key, partitions), p);
        }
      }
    }
  }
}

// ---- reading ----

TEST(MemoryBroker, ReadersStartAtEarliestLatestOrAGivenOffset) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 2);
  auto writer = writer_for(topic, {.batch_records = 3});
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(writer->send(PartitionId(i % 2), {}, std::to_string(i), Timestamp(i)).is_ok());
  }
  ASSERT_TRUE(writer->flush().is_ok());

  EXPECT_EQ(drain(*reader_for(topic, StartPosition::earliest())).size(), 10u);

  auto latest = reader_for(topic, StartPosition::latest());
  EXPECT_EQ(latest->position(PartitionId(0)).value(), 5);
  EXPECT_TRUE(drain(*latest).empty());
  ASSERT_TRUE(writer->send(PartitionId(1), {}, "new", Timestamp(99)).is_ok());
  ASSERT_TRUE(writer->flush().is_ok());
  std::vector<Rec> fresh = drain(*latest);
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_EQ(fresh[0], (Rec{1, 5, std::nullopt, "new", 99}));

  auto given = MemoryTopicReader::open(
      topic, {{PartitionId(0), StartPosition::at(3)}, {PartitionId(1), StartPosition::at(6)}});
  ASSERT_TRUE(given.is_ok());
  std::vector<Rec> got = drain(**given);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(of_partition(got, 0),
            (std::vector<Rec>{{0, 3, std::nullopt, "6", 6}, {0, 4, std::nullopt, "8", 8}}));
  EXPECT_TRUE(of_partition(got, 1).empty());
}

TEST(MemoryBroker, ReaderRejectsBadAssignments) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 2);
  auto out_of_range = MemoryTopicReader::open(topic, {{PartitionId(0), StartPosition::at(1)}});
  EXPECT_EQ(out_of_range.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(out_of_range.status().message().find("offset 1"), std::string::npos);
  EXPECT_EQ(
      MemoryTopicReader::open(topic, {{PartitionId(0), StartPosition::at(-1)}}).status().code(),
      StatusCode::kOutOfRange);
  EXPECT_EQ(MemoryTopicReader::open(topic, {{PartitionId(2), {}}}).status().code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(
      MemoryTopicReader::open(topic, {{PartitionId(1), {}}, {PartitionId(1), {}}}).status().code(),
      StatusCode::kInvalidArgument);
  auto reader = reader_for(topic);
  EXPECT_EQ(reader->poll(0, 0ms).status().code(), StatusCode::kInvalidArgument);
}

TEST(MemoryBroker, SeekRewindsAndPositionReportsTheNextOffset) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 1);
  auto writer = writer_for(topic, {.batch_records = 4});
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(writer->send(PartitionId(0), {}, std::to_string(i), Timestamp(i)).is_ok());
  }
  ASSERT_TRUE(writer->flush().is_ok());
  auto reader = MemoryTopicReader::open(topic, {{PartitionId(0), {}}}).value();
  EXPECT_EQ(reader->position(PartitionId(0)).value(), 0);
  EXPECT_EQ(reader->end_offset(PartitionId(0)).value(), 10);
  auto first = reader->poll(6, 0ms);
  ASSERT_TRUE(first.is_ok());
  EXPECT_EQ(first->num_records(), 6);
  EXPECT_EQ(reader->position(PartitionId(0)).value(), 6);
  ASSERT_TRUE(reader->seek(PartitionId(0), 2).is_ok());
  std::vector<Rec> again = drain(*reader);
  ASSERT_EQ(again.size(), 8u);
  EXPECT_EQ(again.front().offset, 2);
  EXPECT_EQ(again.front().value, "2");
  EXPECT_EQ(again.back().offset, 9);
  EXPECT_EQ(reader->position(PartitionId(0)).value(), 10);
  ASSERT_TRUE(reader->seek(PartitionId(0), 10).is_ok());  // the end is a valid position
  EXPECT_EQ(reader->seek(PartitionId(0), 11).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(reader->seek(PartitionId(0), -1).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(reader->seek(PartitionId(1), 0).code(), StatusCode::kNotFound);
  auto partial = MemoryTopicReader::open(make_topic(broker, "u", 3), {{PartitionId(2), {}}});
  EXPECT_EQ((*partial)->position(PartitionId(0)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ((*partial)->assignment(), std::vector<PartitionId>{PartitionId(2)});
}

TEST(MemoryBroker, PollHandsOutZeroCopySlicesOfChunks) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 1);
  auto writer = writer_for(topic);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(writer->send(PartitionId(0), "k", std::to_string(i), Timestamp(i)).is_ok());
  }
  ASSERT_TRUE(writer->flush().is_ok());
  auto whole = reader_for(topic)->poll(100, 0ms);
  ASSERT_TRUE(whole.is_ok());
  ASSERT_EQ(whole->batches.size(), 1u);
  auto reader = reader_for(topic);
  ASSERT_TRUE(reader->seek(PartitionId(0), 3).is_ok());
  auto part = reader->poll(4, 0ms);
  ASSERT_TRUE(part.is_ok());
  ASSERT_EQ(part->batches.size(), 1u);
  const PartitionBatch& b = part->batches[0];
  EXPECT_EQ(b.base_offset, 3);
  EXPECT_EQ(b.end_offset(), 7);
  EXPECT_EQ(b.records.column(kValueColumn).offset(), 3);
  EXPECT_EQ(b.records.column(kValueColumn).raw_data(),
            whole->batches[0].records.column(kValueColumn).raw_data());
  EXPECT_EQ(b.records.column(kValueColumn).string_view(0), "3");
}

TEST(MemoryBroker, PollWithoutDataTimesOutEmpty) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 2);
  auto reader = reader_for(topic);
  const auto start = std::chrono::steady_clock::now();
  auto result = reader->poll(10, 60ms);
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(result.is_ok());
  EXPECT_EQ(result->num_records(), 0);
  EXPECT_FALSE(result->end_of_input);
  EXPECT_GE(waited, 60ms);
}

TEST(MemoryBroker, PollWithANegativeOrHugeTimeoutIsSafe) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 1);
  auto reader = reader_for(topic);
  auto now = reader->poll(10, -5ms);
  ASSERT_TRUE(now.is_ok());
  EXPECT_EQ(now->num_records(), 0);
  topic->close();
  auto forever = reader->poll(10, std::chrono::milliseconds::max());
  ASSERT_TRUE(forever.is_ok());
  EXPECT_TRUE(forever->end_of_input);
}

TEST(MemoryBroker, BlockedPollWakesWhenRecordsArrive) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 2);
  auto reader = reader_for(topic);
  std::thread producer([topic] {
    std::this_thread::sleep_for(30ms);
    auto writer = writer_for(topic);
    ASSERT_TRUE(writer->send(PartitionId(1), "k", "late", Timestamp(7)).is_ok());
    ASSERT_TRUE(writer->flush().is_ok());
  });
  const auto start = std::chrono::steady_clock::now();
  auto result = reader->poll(10, 20s);
  const auto waited = std::chrono::steady_clock::now() - start;
  producer.join();
  ASSERT_TRUE(result.is_ok());
  ASSERT_EQ(result->num_records(), 1);
  EXPECT_EQ(result->batches[0].partition, PartitionId(1));
  EXPECT_LT(waited, 10s);
}

TEST(MemoryBroker, WakeupEndsABlockedPollEarly) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 1);
  auto reader = reader_for(topic);
  std::thread waker([&reader] {
    std::this_thread::sleep_for(30ms);
    reader->wakeup();
  });
  const auto start = std::chrono::steady_clock::now();
  auto result = reader->poll(10, 20s);
  const auto waited = std::chrono::steady_clock::now() - start;
  waker.join();
  ASSERT_TRUE(result.is_ok());
  EXPECT_EQ(result->num_records(), 0);
  EXPECT_LT(waited, 10s);
}

TEST(MemoryBroker, CloseGivesEndOfInputOnceEveryPartitionIsRead) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 2);
  auto writer = writer_for(topic);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(writer->send(PartitionId(i % 2), {}, "v", Timestamp(i)).is_ok());
  }
  ASSERT_TRUE(writer->flush().is_ok());
  auto reader = reader_for(topic);
  auto before = reader->poll(100, 0ms);
  ASSERT_TRUE(before.is_ok());
  EXPECT_EQ(before->num_records(), 6);
  EXPECT_FALSE(before->end_of_input);  // not closed yet: more may come

  ASSERT_TRUE(writer->send(PartitionId(0), {}, "last", Timestamp(9)).is_ok());
  ASSERT_TRUE(writer->flush().is_ok());
  topic->close();
  EXPECT_TRUE(topic->is_closed());
  EXPECT_FALSE(writer->send(PartitionId(0), {}, "after", Timestamp(10)).is_ok() &&
               writer->flush().is_ok());
  auto late = topic->append(PartitionId(1), columnar::RecordBatch::make_empty(record_schema()));
  EXPECT_FALSE(late.is_ok());
  EXPECT_NE(late.status().message().find("closed"), std::string::npos);

  auto last = reader->poll(1, 5s);
  ASSERT_TRUE(last.is_ok());
  EXPECT_EQ(last->num_records(), 1);
  EXPECT_TRUE(last->end_of_input);  // comes with the last record
  auto after = reader->poll(100, 5s);
  ASSERT_TRUE(after.is_ok());
  EXPECT_EQ(after->num_records(), 0);
  EXPECT_TRUE(after->end_of_input);
  EXPECT_EQ(topic->total_records(), 7);

  // A reader that has not caught up is not at the end, even though the topic is closed.
  auto behind = MemoryTopicReader::open(topic, {{PartitionId(0), StartPosition::at(2)}}).value();
  auto partial = behind->poll(1, 0ms);
  ASSERT_TRUE(partial.is_ok());
  EXPECT_FALSE(partial->end_of_input);
}

TEST(MemoryBroker, CloseWakesABlockedReader) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 3);
  auto reader = reader_for(topic);
  std::thread closer([topic] {
    std::this_thread::sleep_for(30ms);
    topic->close();
  });
  auto result = reader->poll(10, 20s);
  closer.join();
  ASSERT_TRUE(result.is_ok());
  EXPECT_TRUE(result->end_of_input);
}

TEST(MemoryBroker, AppendAcceptsRecordBatchesAndRejectsWrongShapes) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 1);
  auto batch = columnar::RecordBatch::make(
      columnar::schema({columnar::field("k", columnar::utf8()),
                        columnar::field("v", columnar::utf8()),
                        columnar::field("ts", columnar::int64())}),
      {columnar::utf8_array({"a", "b"}), columnar::utf8_array({"x", std::nullopt}),
       columnar::int64_array({1, 2})});
  ASSERT_TRUE(batch.is_ok());
  auto base = topic->append(PartitionId(0), *batch);
  ASSERT_TRUE(base.is_ok());
  EXPECT_EQ(*base, 0);
  EXPECT_EQ(topic->append(PartitionId(0), *batch).value(), 2);
  auto two_columns = columnar::RecordBatch::make(
      columnar::schema({columnar::field("k", columnar::utf8())}), {columnar::utf8_array({"a"})});
  EXPECT_EQ(topic->append(PartitionId(0), *two_columns).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(topic->append(PartitionId(1), *batch).status().code(), StatusCode::kOutOfRange);
  std::vector<Rec> got = drain(*reader_for(topic));
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[3], (Rec{0, 3, "b", std::nullopt, 2}));
}

// ---- randomized model check ----

TEST(MemoryBroker, RandomSendsPollsAndSeeksMatchAPerPartitionModel) {
  std::mt19937_64 rng(1234);
  for (int iter = 0; iter < 30; ++iter) {
    MemoryBroker broker;
    const int32_t partitions = 1 + static_cast<int32_t>(rng() % 5);
    TopicPtr topic = make_topic(broker, "t", partitions);
    auto writer = writer_for(topic, {.batch_records = 1 + static_cast<int64_t>(rng() % 20),
                                     .batch_bytes = 1 + static_cast<int64_t>(rng() % 500)});
    auto reader = reader_for(topic);
    std::vector<std::vector<Rec>> model(static_cast<size_t>(partitions));  // everything sent
    std::vector<int64_t> expect_pos(static_cast<size_t>(partitions), 0);
    for (int step = 0; step < 200; ++step) {
      const int action = static_cast<int>(rng() % 10);
      if (action < 6) {
        std::optional<std::string> key;
        if (rng() % 4 != 0) key = labelled("k", rng() % 50);
        std::optional<std::string> value;
        if (rng() % 8 != 0) value = std::string(rng() % 40, 'v') + std::to_string(step);
        const int64_t ts = static_cast<int64_t>(rng() % 1000);
        auto p = writer->send(key, value, Timestamp(ts));
        ASSERT_TRUE(p.is_ok());
        auto& part = model[static_cast<size_t>(p->value())];
        part.push_back(Rec{p->value(), static_cast<int64_t>(part.size()), key, value, ts});
      } else if (action < 7) {
        ASSERT_TRUE(writer->flush().is_ok());
      } else if (action < 9) {
        const int64_t max = 1 + static_cast<int64_t>(rng() % 30);
        auto result = reader->poll(max, 0ms);
        ASSERT_TRUE(result.is_ok());
        ASSERT_LE(result->num_records(), max);
        std::vector<Rec> got;
        append_records(*result, got);
        for (const Rec& r : got) {
          const auto& part = model[static_cast<size_t>(r.partition)];
          ASSERT_LT(r.offset, static_cast<int64_t>(part.size()));
          ASSERT_EQ(r, part[static_cast<size_t>(r.offset)]);
          ASSERT_EQ(r.offset, expect_pos[static_cast<size_t>(r.partition)]);
          expect_pos[static_cast<size_t>(r.partition)] = r.offset + 1;
        }
        for (int32_t p = 0; p < partitions; ++p) {
          ASSERT_EQ(reader->position(PartitionId(p)).value(), expect_pos[static_cast<size_t>(p)]);
          ASSERT_LE(expect_pos[static_cast<size_t>(p)], topic->end_offset(PartitionId(p)).value());
        }
      } else {
        const int32_t p = static_cast<int32_t>(rng() % static_cast<uint64_t>(partitions));
        const int64_t end = topic->end_offset(PartitionId(p)).value();
        const int64_t to = static_cast<int64_t>(rng() % static_cast<uint64_t>(end + 1));
        ASSERT_TRUE(reader->seek(PartitionId(p), to).is_ok());
        expect_pos[static_cast<size_t>(p)] = to;
      }
    }
    ASSERT_TRUE(writer->flush().is_ok());
    for (int32_t p = 0; p < partitions; ++p) {
      ASSERT_EQ(topic->end_offset(PartitionId(p)).value(),
                static_cast<int64_t>(model[static_cast<size_t>(p)].size()));
    }
  }
}

// ---- concurrency ----

TEST(MemoryBroker, ConcurrentProducersAndConsumersKeepPerKeyOrderAndLoseNothing) {
  MemoryBroker broker;
  constexpr int32_t kPartitions = 3;
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 5000;
  constexpr int kKeys = 40;
  TopicPtr topic = make_topic(broker, "transactions", kPartitions);

  std::vector<std::vector<Rec>> consumed(kPartitions);
  std::vector<std::thread> consumers;
  for (int32_t p = 0; p < kPartitions; ++p) {
    consumers.emplace_back([&, p] {
      auto reader = MemoryTopicReader::open(topic, {{PartitionId(p), {}}}).value();
      PollResult result;
      while (true) {
        ASSERT_TRUE(reader->poll_into(97, 5s, result).is_ok());
        append_records(result, consumed[static_cast<size_t>(p)]);
        if (result.end_of_input) break;
      }
    });
  }
  std::vector<std::thread> producers;
  for (int w = 0; w < kProducers; ++w) {
    producers.emplace_back([&, w] {
      auto writer = writer_for(topic, {.batch_records = 1 + 37 * w});
      for (int i = 0; i < kPerProducer; ++i) {
        const std::string key = labelled("acct-", i % kKeys);
        const std::string value = std::to_string(w) + ":" + std::to_string(i);
        ASSERT_TRUE(writer->send(key, value, Timestamp(i)).is_ok());
      }
      ASSERT_TRUE(writer->close().is_ok());
    });
  }
  for (auto& t : producers) t.join();
  topic->close();
  for (auto& t : consumers) t.join();

  int64_t total = 0;
  for (int32_t p = 0; p < kPartitions; ++p) {
    const auto& recs = consumed[static_cast<size_t>(p)];
    total += static_cast<int64_t>(recs.size());
    EXPECT_EQ(static_cast<int64_t>(recs.size()), topic->end_offset(PartitionId(p)).value());
    std::map<std::pair<int, std::string>, int> last_seq;  // (producer, key) -> last i
    for (size_t i = 0; i < recs.size(); ++i) {
      ASSERT_EQ(recs[i].offset, static_cast<int64_t>(i)) << "partition " << p;
      ASSERT_EQ(kafka_partition_for_key(*recs[i].key, kPartitions), p);
      const std::string& v = *recs[i].value;
      const int w = std::stoi(v.substr(0, v.find(':')));
      const int seq = std::stoi(v.substr(v.find(':') + 1));
      auto [it, fresh] = last_seq.try_emplace({w, *recs[i].key}, seq);
      if (!fresh) {
        ASSERT_GT(seq, it->second) << "key " << *recs[i].key << " of producer " << w;
        it->second = seq;
      }
    }
  }
  EXPECT_EQ(total, int64_t{kProducers} * kPerProducer);
}

TEST(MemoryBroker, ManyReadersOfOnePartitionSeeTheSameRecords) {
  MemoryBroker broker;
  TopicPtr topic = make_topic(broker, "t", 1);
  constexpr int kReaders = 3;
  constexpr int kRecords = 3000;
  std::vector<std::vector<Rec>> seen(kReaders);
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      auto reader = reader_for(topic);
      PollResult result;
      do {
        ASSERT_TRUE(reader->poll_into(1 + 50 * r, 5s, result).is_ok());
        append_records(result, seen[static_cast<size_t>(r)]);
      } while (!result.end_of_input);
    });
  }
  std::thread producer([&] {
    auto writer = writer_for(topic, {.batch_records = 16});
    for (int i = 0; i < kRecords; ++i) {
      ASSERT_TRUE(writer->send(std::nullopt, std::to_string(i), Timestamp(i)).is_ok());
    }
    ASSERT_TRUE(writer->flush().is_ok());
    topic->close();
  });
  producer.join();
  for (auto& t : readers) t.join();
  for (int r = 0; r < kReaders; ++r) {
    const auto& recs = seen[static_cast<size_t>(r)];
    ASSERT_EQ(recs.size(), static_cast<size_t>(kRecords));
    for (int i = 0; i < kRecords; ++i) {
      ASSERT_EQ(recs[static_cast<size_t>(i)].value, std::to_string(i));
    }
  }
}

// A bounded topic (TopicOptions::max_unread_records): the producer runs alongside the reader,
// never more than the budget ahead of it, and what the reader has read is dropped.
TEST(BoundedTopic, ProducerStaysWithinTheBudgetAndReadRecordsAreDropped) {
  MemoryBroker broker;
  constexpr int64_t kBudget = 250;
  constexpr int kChunks = 40;
  constexpr int kPerChunk = 100;
  auto topic = broker.create_topic("bounded", {.partitions = 1, .max_unread_records = kBudget});
  ASSERT_TRUE(topic.is_ok());
  auto reader = MemoryTopicReader::open_all(*topic);
  ASSERT_TRUE(reader.is_ok());
  Status produced;
  std::thread producer([&] {
    auto writer = MemoryTopicWriter::open(*topic, {.batch_records = kPerChunk});
    if (!writer.is_ok()) {
      produced = writer.status();
      return;
    }
    for (int i = 0; i < kChunks * kPerChunk && produced.is_ok(); ++i) {
      produced = (*writer)->send(PartitionId(0), labelled("k", i), labelled("v", i), Timestamp(i));
    }
    if (produced.is_ok()) produced = (*writer)->close();
    (*topic)->close();
  });
  std::vector<Rec> got;
  PollResult r;
  while (true) {
    ASSERT_TRUE((*reader)->poll_into(1000, 1h, r).is_ok());
    append_records(r, got);
    const int64_t position = *(*reader)->position(PartitionId(0));
    EXPECT_LE(*(*topic)->end_offset(PartitionId(0)) - position, kBudget);
    // Whole chunks were read, so all of them were dropped.
    EXPECT_EQ(*(*topic)->start_offset(PartitionId(0)), position);
    if (r.end_of_input) break;
  }
  producer.join();
  ASSERT_TRUE(produced.is_ok()) << produced.to_string();
  ASSERT_EQ(got.size(), static_cast<size_t>(kChunks * kPerChunk));
  for (int i = 0; i < kChunks * kPerChunk; ++i) {
    EXPECT_EQ(got[static_cast<size_t>(i)].value, labelled("v", i));
  }
  // Dropped records cannot be read again.
  EXPECT_EQ((*reader)->seek(PartitionId(0), 0).code(), StatusCode::kOutOfRange);
  auto late = MemoryTopicReader::open_all(*topic);
  ASSERT_TRUE(late.is_ok());
  EXPECT_EQ(*(*late)->position(PartitionId(0)), kChunks * kPerChunk);
  EXPECT_FALSE(MemoryTopicReader::open(*topic, {{PartitionId(0), StartPosition::at(0)}}).is_ok());
}

TEST(BoundedTopic, CloseWakesAnAppendWaitingForRoom) {
  MemoryBroker broker;
  auto topic = broker.create_topic("full", {.partitions = 1, .max_unread_records = 10});
  ASSERT_TRUE(topic.is_ok());
  auto chunk = [](int n) {
    columnar::BinaryBuilder keys(columnar::binary()), values(columnar::binary());
    columnar::Int64Builder ts(columnar::timestamp(columnar::TimeUnit::kMilli));
    for (int i = 0; i < n; ++i) {
      keys.append("k");
      values.append("v");
      ts.append(i);
    }
    return columnar::RecordBatch::make(record_schema(),
                                       {keys.finish(), values.finish(), ts.finish()})
        .value();
  };
  // No reader yet: the first chunk fits, the second waits until the topic is closed, then fails.
  ASSERT_TRUE((*topic)->append(PartitionId(0), chunk(8)).is_ok());
  Result<int64_t> second = 0;
  std::thread producer([&] { second = (*topic)->append(PartitionId(0), chunk(8)); });
  (*topic)->close();
  producer.join();
  EXPECT_FALSE(second.is_ok());
  EXPECT_EQ(*(*topic)->end_offset(PartitionId(0)), 8);
  // A chunk larger than the budget goes into an empty partition.
  auto big = broker.create_topic("big", {.partitions = 1, .max_unread_records = 10});
  ASSERT_TRUE((*big)->append(PartitionId(0), chunk(25)).is_ok());
  EXPECT_FALSE(broker.create_topic("bad", {.partitions = 1, .max_unread_records = -1}).is_ok());
}

// ---- Transactions ----

// Drains what `reader` returns now (no waiting).
std::vector<Rec> drain(MemoryTopicReader& reader) {
  std::vector<Rec> out;
  PollResult r;
  while (true) {
    EXPECT_TRUE(reader.poll_into(1000, 0ms, r).is_ok());
    if (r.num_records() == 0) break;
    append_records(r, out);
  }
  return out;
}

std::vector<std::string> values_of(const std::vector<Rec>& recs) {
  std::vector<std::string> out;
  for (const Rec& r : recs) out.push_back(r.value.value_or("<null>"));
  return out;
}

std::unique_ptr<MemoryTopicWriter> txn_writer(TopicPtr topic, std::string id,
                                              int64_t batch_records = 8192) {
  return MemoryTopicWriter::open(
             std::move(topic), {.batch_records = batch_records, .transactional_id = std::move(id)})
      .value();
}

TEST(Transactions, ReadCommittedSeesOnlyCommittedRecordsInOffsetOrder) {
  MemoryBroker broker;
  TopicPtr topic = broker.create_topic("t", {.partitions = 1}).value();
  auto plain = MemoryTopicWriter::open(topic).value();
  auto tx = txn_writer(topic, "tx");
  auto committed = MemoryTopicReader::open_all(topic).value();
  auto uncommitted = MemoryTopicReader::open_all(topic, StartPosition::earliest(),
                                                 IsolationLevel::kReadUncommitted)
                         .value();
  const PartitionId p0(0);

  ASSERT_TRUE(plain->send(p0, std::nullopt, "a", Timestamp(1)).is_ok());
  ASSERT_TRUE(plain->flush().is_ok());
  ASSERT_EQ(tx->begin_transaction().value(), 1);
  ASSERT_TRUE(tx->send(p0, std::nullopt, "t1", Timestamp(2)).is_ok());
  ASSERT_TRUE(tx->flush().is_ok());  // appended, offset 1, but pending
  ASSERT_TRUE(plain->send(p0, std::nullopt, "b", Timestamp(3)).is_ok());
  ASSERT_TRUE(plain->flush().is_ok());  // offset 2: behind the open transaction
  EXPECT_EQ(topic->end_offset(p0).value(), 3);
  EXPECT_EQ(topic->last_stable_offset(p0).value(), 1);

  EXPECT_EQ(values_of(drain(*committed)), (std::vector<std::string>{"a"}));
  EXPECT_EQ(values_of(drain(*uncommitted)), (std::vector<std::string>{"a", "t1", "b"}));
  EXPECT_EQ(committed->position(p0).value(), 1);

  ASSERT_TRUE(tx->send(p0, std::nullopt, "t2", Timestamp(4)).is_ok());
  ASSERT_TRUE(tx->commit_transaction().is_ok());  // t2 at offset 3
  EXPECT_EQ(topic->last_stable_offset(p0).value(), 4);
  std::vector<Rec> got = drain(*committed);
  EXPECT_EQ(values_of(got), (std::vector<std::string>{"t1", "b", "t2"}));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].offset, 1);
  EXPECT_EQ(got[1].offset, 2);
  EXPECT_EQ(got[2].offset, 3);

  // An aborted transaction's records are skipped; what follows is read.
  ASSERT_EQ(tx->begin_transaction().value(), 2);
  ASSERT_TRUE(tx->send(p0, std::nullopt, "x1", Timestamp(5)).is_ok());
  ASSERT_TRUE(tx->flush().is_ok());
  ASSERT_TRUE(tx->send(p0, std::nullopt, "x2", Timestamp(5)).is_ok());
  ASSERT_TRUE(tx->flush().is_ok());
  ASSERT_TRUE(plain->send(p0, std::nullopt, "c", Timestamp(6)).is_ok());
  ASSERT_TRUE(plain->flush().is_ok());
  EXPECT_TRUE(drain(*committed).empty());
  ASSERT_TRUE(tx->abort_transaction().is_ok());
  got = drain(*committed);
  EXPECT_EQ(values_of(got), (std::vector<std::string>{"c"}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].offset, 6);
  EXPECT_EQ(committed->position(p0).value(), 7);
  EXPECT_EQ(values_of(drain(*uncommitted)), (std::vector<std::string>{"t2", "x1", "x2", "c"}));

  // A transactional writer refuses sends outside a transaction; a plain one refuses begin.
  EXPECT_FALSE(tx->send(p0, std::nullopt, "y", Timestamp(7)).is_ok());
  EXPECT_FALSE(plain->begin_transaction().is_ok());
}

TEST(Transactions, ResolvableByIdAndSequenceAfterTheWriterIsGone) {
  MemoryBroker broker;
  TopicPtr topic = broker.create_topic("t", {.partitions = 2}).value();
  int64_t prepared = 0;
  int64_t lingering = 0;
  {
    auto tx = txn_writer(topic, "sink-0");
    ASSERT_TRUE(tx->begin_transaction().is_ok());
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(tx->send(labelled("k", i), labelled("v", i), Timestamp(i)).is_ok());
    }
    prepared = tx->prepare_transaction().value();
    EXPECT_FALSE(tx->in_transaction());
    lingering = tx->begin_transaction().value();
    ASSERT_TRUE(tx->send(std::string("k"), std::string("lost"), Timestamp(99)).is_ok());
    ASSERT_TRUE(tx->flush().is_ok());
  }  // the writer is gone (the job failed)
  auto reader = MemoryTopicReader::open_all(topic).value();
  EXPECT_TRUE(drain(*reader).empty());
  std::vector<TxnInfo> txns = topic->transactions("sink-");
  ASSERT_EQ(txns.size(), 2u);
  EXPECT_EQ(txns[0].state, TxnState::kPrepared);
  EXPECT_TRUE(txns[0].orphaned);
  EXPECT_EQ(txns[0].records, 10);
  EXPECT_EQ(txns[1].state, TxnState::kOpen);

  // Recovery: commit the recorded one (twice: idempotent), abort the rest of the attempt.
  ASSERT_TRUE(topic->commit_transaction("sink-0", prepared).is_ok());
  ASSERT_TRUE(topic->commit_transaction("sink-0", prepared).is_ok());
  EXPECT_EQ(topic->abort_transactions_except("sink-0", {prepared}).value(), 1);
  EXPECT_EQ(topic->abort_transactions_except("sink-0", {prepared}).value(), 0);
  EXPECT_FALSE(topic->commit_transaction("sink-0", lingering).is_ok());  // aborted
  EXPECT_FALSE(topic->abort_transaction("sink-0", prepared).is_ok());    // committed
  EXPECT_EQ(topic->commit_transaction("sink-0", 77).code(), StatusCode::kNotFound);
  std::vector<Rec> got = drain(*reader);
  ASSERT_EQ(got.size(), 10u);
  for (const Rec& r : got) EXPECT_NE(r.value, "lost");
  for (int32_t p = 0; p < 2; ++p) {
    EXPECT_EQ(topic->last_stable_offset(PartitionId(p)).value(),
              topic->end_offset(PartitionId(p)).value());
  }
  // A new writer of the same id continues the sequence; a live writer's transaction is not an
  // orphan and survives abort_transactions_except.
  auto again = txn_writer(topic, "sink-0");
  EXPECT_EQ(again->begin_transaction().value(), lingering + 1);
  EXPECT_EQ(topic->abort_transactions_except("sink-0", {}).value(), 0);
  EXPECT_EQ(topic->abort_transactions_except("sink-0", {}, /*only_orphaned=*/false).value(), 1);
  EXPECT_FALSE(again->commit_transaction().is_ok());
}

// A model check: random transactional and plain writers over 3 partitions; after every step a
// read_committed reader's records equal the model (plain records and committed transactions, in
// offset order), and never include a pending or aborted record.
TEST(Transactions, RandomTransactionsMatchAReadCommittedModel) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 20; ++round) {
    MemoryBroker broker;
    TopicPtr topic = broker.create_topic("t", {.partitions = 3}).value();
    auto plain = MemoryTopicWriter::open(topic, {.batch_records = 3}).value();
    std::vector<std::unique_ptr<MemoryTopicWriter>> txw;
    for (int w = 0; w < 3; ++w) txw.push_back(txn_writer(topic, labelled("w", w), 1 + w));
    auto reader = MemoryTopicReader::open_all(topic).value();
    // value -> fate: 0 plain, 1 pending, 2 committed, 3 aborted
    std::map<std::string, int> fate;
    std::vector<std::vector<std::string>> open_values(3);
    std::vector<Rec> seen;
    int next = 0;
    for (int step = 0; step < 300; ++step) {
      const int w = static_cast<int>(rng() % 4);
      const int action = static_cast<int>(rng() % 10);
      if (w == 3) {
        std::string v = labelled("p", next++);
        ASSERT_TRUE(plain->send(labelled("k", rng() % 5), v, Timestamp(step)).is_ok());
        fate[v] = 0;
        if (action < 3) {
          ASSERT_TRUE(plain->flush().is_ok());
        }
        continue;
      }
      MemoryTopicWriter& tx = *txw[static_cast<size_t>(w)];
      if (!tx.in_transaction()) {
        ASSERT_TRUE(tx.begin_transaction().is_ok());
      } else if (action < 6) {
        std::string v = labelled("t", next++);
        ASSERT_TRUE(tx.send(labelled("k", rng() % 5), v, Timestamp(step)).is_ok());
        fate[v] = 1;
        open_values[static_cast<size_t>(w)].push_back(v);
      } else if (action < 8) {
        ASSERT_TRUE(tx.commit_transaction().is_ok());
        for (auto& v : open_values[static_cast<size_t>(w)]) fate[v] = 2;
        open_values[static_cast<size_t>(w)].clear();
      } else {
        ASSERT_TRUE(tx.abort_transaction().is_ok());
        for (auto& v : open_values[static_cast<size_t>(w)]) fate[v] = 3;
        open_values[static_cast<size_t>(w)].clear();
      }
      std::vector<Rec> got = drain(*reader);
      for (const Rec& r : got) {
        ASSERT_TRUE(fate.count(*r.value));
        const int f = fate[*r.value];
        ASSERT_TRUE(f == 0 || f == 2) << *r.value << " has fate " << f;
        seen.push_back(r);
      }
    }
    ASSERT_TRUE(plain->flush().is_ok());
    for (auto& tx : txw) {
      if (tx->in_transaction()) {
        ASSERT_TRUE(tx->abort_transaction().is_ok());
      }
    }
    for (auto& [v, f] : fate) {
      if (f == 1) f = 3;
    }
    std::vector<Rec> rest = drain(*reader);
    seen.insert(seen.end(), rest.begin(), rest.end());
    // Exactly the plain and committed records, each once, in offset order per partition.
    std::map<std::string, int> count;
    std::map<int32_t, int64_t> last;
    for (const Rec& r : seen) {
      ++count[*r.value];
      auto it = last.find(r.partition);
      if (it != last.end()) {
        EXPECT_LT(it->second, r.offset);
      }
      last[r.partition] = r.offset;
    }
    for (const auto& [v, f] : fate) {
      EXPECT_EQ(count[v], (f == 0 || f == 2) ? 1 : 0) << v << " fate " << f;
    }
    // read_uncommitted sees every record appended.
    auto all = MemoryTopicReader::open_all(topic, StartPosition::earliest(),
                                           IsolationLevel::kReadUncommitted)
                   .value();
    EXPECT_EQ(static_cast<int64_t>(drain(*all).size()), topic->total_records());
  }
}

// A writer thread and a reader thread hand off through flags (no sleeps): the writer appends a
// transaction's records and waits until the reader has polled past them (seeing nothing of the
// transaction), then commits or aborts; the reader's blocking poll is woken by the commit.
TEST(Transactions, ConcurrentReaderNeverSeesPendingOrAbortedRecords) {
  MemoryBroker broker;
  TopicPtr topic = broker.create_topic("t", {.partitions = 2}).value();
  constexpr int kTxns = 200;
  std::atomic<int> appended{-1};  // the writer appended transaction i (all its records)
  std::atomic<int> checked{-1};   // the reader saw the topic after that and nothing of it
  auto reader = MemoryTopicReader::open_all(topic).value();
  std::thread writer([&] {
    auto tx = txn_writer(topic, "w", 2);
    for (int i = 0; i < kTxns; ++i) {
      ASSERT_TRUE(tx->begin_transaction().is_ok());
      for (int j = 0; j < 5; ++j) {
        std::string v = labelled(i % 3 == 0 ? "abort-" : "keep-", i * 10 + j);
        ASSERT_TRUE(tx->send(labelled("k", j), v, Timestamp(i)).is_ok());
      }
      ASSERT_TRUE(tx->flush().is_ok());
      appended.store(i, std::memory_order_release);
      reader->wakeup();  // the reader's blocking poll returns to do its check
      while (checked.load(std::memory_order_acquire) < i) std::this_thread::yield();
      if (i % 3 == 0) {
        ASSERT_TRUE(tx->abort_transaction().is_ok());
      } else {
        ASSERT_TRUE(tx->commit_transaction().is_ok());
      }
    }
    topic->close();
  });
  std::vector<Rec> seen;
  PollResult r;
  int next_check = 0;
  while (true) {
    // Hand-off: once transaction i is appended, a non-blocking poll must not return it.
    if (next_check < kTxns && appended.load(std::memory_order_acquire) >= next_check) {
      ASSERT_TRUE(reader->poll_into(1000, 0ms, r).is_ok());
      append_records(r, seen);
      for (const Rec& rec : seen) {
        ASSERT_NE(*rec.value, labelled("keep-", next_check * 10)) << "pending record read";
        ASSERT_EQ(rec.value->rfind("abort-", 0), std::string::npos) << *rec.value;
      }
      checked.store(next_check++, std::memory_order_release);
      continue;
    }
    ASSERT_TRUE(reader->poll_into(1000, 10s, r).is_ok());  // woken by appends, commits, wakeup
    append_records(r, seen);
    if (r.end_of_input) break;
  }
  writer.join();
  std::map<std::string, int> count;
  for (const Rec& rec : seen) {
    EXPECT_EQ(rec.value->rfind("abort-", 0), std::string::npos) << *rec.value;
    ++count[*rec.value];
  }
  int expected = 0;
  for (int i = 0; i < kTxns; ++i) {
    if (i % 3 == 0) continue;
    for (int j = 0; j < 5; ++j) {
      EXPECT_EQ(count[labelled("keep-", i * 10 + j)], 1);
      ++expected;
    }
  }
  EXPECT_EQ(static_cast<int>(seen.size()), expected);
}

// Bounded topics count only readable records against max_unread_records: a transaction larger
// than the budget does not deadlock its writer, and once committed it is read and dropped.
TEST(Transactions, BoundedTopicDoesNotCountOpenTransactionsAgainstTheBudget) {
  MemoryBroker broker;
  TopicPtr topic = broker.create_topic("t", {.partitions = 1, .max_unread_records = 4}).value();
  auto reader = MemoryTopicReader::open_all(topic).value();
  auto tx = txn_writer(topic, "w", 1);
  ASSERT_TRUE(tx->begin_transaction().is_ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(tx->send(PartitionId(0), std::nullopt, labelled("v", i), Timestamp(i)).is_ok());
  }
  ASSERT_TRUE(tx->commit_transaction().is_ok());
  EXPECT_EQ(drain(*reader).size(), 20u);
  EXPECT_EQ(topic->start_offset(PartitionId(0)).value(), 20);
  // An aborted transaction is skipped and dropped too.
  ASSERT_TRUE(tx->begin_transaction().is_ok());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(tx->send(PartitionId(0), std::nullopt, labelled("x", i), Timestamp(i)).is_ok());
  }
  ASSERT_TRUE(tx->abort_transaction().is_ok());
  EXPECT_TRUE(drain(*reader).empty());
  EXPECT_EQ(reader->position(PartitionId(0)).value(), 30);
  EXPECT_EQ(topic->start_offset(PartitionId(0)).value(), 30);
}

}  // namespace
}  // namespace sabot::connectors
