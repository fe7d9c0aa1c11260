#include "sabot/connectors/topic.h"

#include <gtest/gtest.h>

#include "sabot/api/environment.h"

namespace sabot::connectors {
namespace {

using columnar::field;

SchemaPtr txn_schema() {
  return columnar::schema({field("id", columnar::int64()), field("account", columnar::utf8()),
                           field("amount", columnar::float64())});
}

// Produces `n` JSON transactions keyed by account; every `bad_every`-th one is malformed.
TopicPtr produce(MemoryBroker& broker, const std::string& name, int n, int bad_every = 0) {
  TopicPtr t = broker.create_topic(name, {.partitions = 3}).value();
  auto w = MemoryTopicWriter::open(t, {.batch_records = 64}).value();
  for (int i = 0; i < n; ++i) {
    std::string account = "acc-" + std::to_string(i % 7);
    std::string value = (bad_every > 0 && i % bad_every == 0)
                            ? "{\"id\": " + std::to_string(i) + ", \"amount\": \"lots\"}"
                            : "{\"id\": " + std::to_string(i) + ", \"account\": \"" + account +
                                  "\", \"amount\": " + std::to_string(i % 100) + ".5}";
    EXPECT_TRUE(w->send(account, value, Timestamp(i)).is_ok());
  }
  EXPECT_TRUE(w->close().is_ok());
  t->close();
  return t;
}

std::vector<std::string> values_of(MemoryBroker& broker, const std::string& topic) {
  auto reader = MemoryTopicReader::open_all(broker.topic(topic).value()).value();
  std::vector<std::string> out;
  while (true) {
    auto r = reader->poll(1000, std::chrono::milliseconds(0)).value();
    for (const auto& pb : r.batches) {
      for (int64_t i = 0; i < pb.records.num_rows(); ++i) {
        out.emplace_back(pb.records.column(kValueColumn).string_view(i));
      }
    }
    if (r.num_records() == 0) break;
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(TopicConnector, ReadsDecodesFiltersAndWritesBack) {
  MemoryBroker broker;
  produce(broker, "txns", 500);
  for (int parallelism : {1, 2, 3}) {
    const std::string out_topic = "big-" + std::to_string(parallelism);
    Environment env({.parallelism = parallelism});
    env.from_topic("memory://txns", codec::json(txn_schema()), {.broker = &broker})
        .filter(col("amount") > lit(90.0))
        .to_topic(
            "memory://" + out_topic, codec::json(),
            {.key_column = "account", .partitions = 2, .close_on_finish = true, .broker = &broker});
    JobResult r = env.execute();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    auto values = values_of(broker, out_topic);
    int expected = 0;
    for (int i = 0; i < 500; ++i) expected += (i % 100) > 90 || ((i % 100) == 90) ? 1 : 0;
    EXPECT_EQ(static_cast<int>(values.size()), expected);
    EXPECT_NE(values[0].find("\"account\":\"acc-"), std::string::npos) << values[0];
    EXPECT_TRUE(broker.topic(out_topic).value()->is_closed());
    auto m = r.metrics().snapshot();
    EXPECT_EQ(m.front().records_out, 500);  // the source decoded every message
  }
}

TEST(TopicConnector, BadRecordFailsTheJobNamingTopicPartitionOffset) {
  MemoryBroker broker;
  produce(broker, "dirty", 50, 10);
  Environment env;
  env.from_topic("memory://dirty", codec::json(txn_schema()), {.broker = &broker}).blackhole();
  JobResult r = env.execute();
  ASSERT_FALSE(r.ok());
  const std::string& m = r.status().message();
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidData);
  EXPECT_NE(m.find("bad record in topic 'dirty' partition "), std::string::npos) << m;
  EXPECT_NE(m.find(" offset "), std::string::npos) << m;
  EXPECT_NE(m.find("field 'amount': expected a number, got string"), std::string::npos) << m;
}

TEST(TopicConnector, SkipPolicyCountsDroppedRecords) {
  MemoryBroker broker;
  produce(broker, "dirty", 100, 10);
  Environment env({.parallelism = 2});
  auto out = env.from_topic("memory://dirty", codec::json(txn_schema()),
                            {.on_bad_record = BadRecordPolicy::kSkip, .broker = &broker})
                 .collect();
  JobResult r = env.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(out->num_rows(), 90);
  EXPECT_EQ(r.metrics().snapshot().front().records_dropped, 10);
}

TEST(TopicConnector, DeadLetterPolicyRoutesBadRecordsWithTheirError) {
  MemoryBroker broker;
  produce(broker, "dirty", 100, 25);
  Environment env;
  auto out = env.from_topic("memory://dirty", codec::json(txn_schema()),
                            {.on_bad_record = BadRecordPolicy::kDeadLetter,
                             .dead_letter_url = "memory://dirty-dlq",
                             .broker = &broker})
                 .collect();
  JobResult r = env.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(out->num_rows(), 96);
  auto letters = values_of(broker, "dirty-dlq");
  ASSERT_EQ(letters.size(), 4u);
  for (const std::string& l : letters) {
    EXPECT_NE(l.find("\"topic\":\"dirty\""), std::string::npos) << l;
    EXPECT_NE(l.find("\"error\":\"field 'amount': expected a number, got string\""),
              std::string::npos)
        << l;
    EXPECT_NE(l.find("\"value\":\"{\\\"id\\\": "), std::string::npos) << l;
  }
}

TEST(TopicConnector, BadOptionsAreRefusedBeforeTheJobRuns) {
  MemoryBroker broker;
  Environment env;
  env.from_topic("memory://missing", codec::json(txn_schema()), {.broker = &broker}).blackhole();
  env.from_topic("kafka:/oops", nullptr, {.broker = &broker}).blackhole();
  JobResult r = env.execute();
  ASSERT_FALSE(r.ok());
  const std::string m = r.status().to_string();
  EXPECT_NE(m.find("missing"), std::string::npos) << m;
  EXPECT_NE(m.find("kafka:/oops"), std::string::npos) << m;
  EXPECT_NE(m.find("needs a codec"), std::string::npos) << m;
}

TEST(TopicConnector, UnboundedTopicIsReadAsDataArrives) {
  MemoryBroker broker;
  TopicPtr t = broker.create_topic("live", {.partitions = 2}).value();
  Environment env({.parallelism = 2, .worker_threads = 2});
  auto out =
      env.from_topic("memory://live", codec::json(txn_schema()), {.broker = &broker}).collect();
  std::thread producer([&] {
    auto w = MemoryTopicWriter::open(t, {.batch_records = 10}).value();
    for (int i = 0; i < 200; ++i) {
      std::string key = "k";
      key += std::to_string(i % 5);
      std::string value = "{\"id\": ";
      value += std::to_string(i);
      value += ", \"account\": \"a\", \"amount\": 1}";
      ASSERT_TRUE(w->send(key, value, Timestamp(i)).is_ok());
      if (i % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_TRUE(w->close().is_ok());
    t->close();  // end of input: the job finishes
  });
  JobResult r = env.execute();
  producer.join();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(out->num_rows(), 200);
}

}  // namespace
}  // namespace sabot::connectors
