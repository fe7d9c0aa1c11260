// Kafka consumer-group mode against librdkafka's mock cluster (KafkaDevBroker, in-process on
// loopback): two members of one group share a topic, one joins later and one leaves, and the
// partitions move between them through the group protocol's rebalances. Each member is the
// source reader a job's subtask runs (topic_source -> open_reader), polled by the test, so the
// test decides what each member has read when a rebalance comes. Nothing sleeps: the test waits
// for conditions (assignments, counts) with a generous bound; the mock cluster's first rebalance
// takes about 3 s.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sabot/api/environment.h"
#include "sabot/connectors/kafka.h"
#include "sabot/connectors/topic.h"

struct GroupTxn {
  int64_t id = 0;
  std::string account;
};
SABOT_RECORD(GroupTxn, id, account);

struct GroupGot {
  int64_t id = 0;
  std::string account;
  int32_t part = 0;
  int64_t off = 0;
};
SABOT_RECORD(GroupGot, id, account, part, off);

namespace sabot::connectors {
namespace {

constexpr int kPartitions = 4;
constexpr auto kBound = std::chrono::seconds(90);

// A producer writing {"id":i,"account":"a<i%7>"} into partition i % kPartitions, in id order.
class Producer {
 public:
  Producer(const KafkaDevBroker& broker, std::string topic) : topic_(std::move(topic)) {
    char err[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", broker.bootstrap().c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof err);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    EXPECT_NE(rk_, nullptr) << err;
  }
  ~Producer() {
    if (rk_ != nullptr) {
      rd_kafka_flush(rk_, 30000);
      rd_kafka_destroy(rk_);
    }
  }
  void produce_next() {
    const int64_t i = next_++;
    const std::string value =
        "{\"id\":" + std::to_string(i) + ",\"account\":\"a" + std::to_string(i % 7) + "\"}";
    EXPECT_EQ(rd_kafka_producev(rk_, RD_KAFKA_V_TOPIC(topic_.c_str()),
                                RD_KAFKA_V_PARTITION(static_cast<int32_t>(i % kPartitions)),
                                RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_poll(rk_, 0);
  }
  int64_t produced() const { return next_; }

 private:
  std::string topic_;
  rd_kafka_t* rk_ = nullptr;
  int64_t next_ = 0;
};

SchemaPtr txn_schema() { return ::sabot::record_schema<GroupTxn>(); }

TopicSourceOptions group_options(const KafkaDevBroker& broker, const std::string& topic,
                                 const std::string& group) {
  TopicSourceOptions o{.url = broker.url(topic),
                       .codec = codec::json(txn_schema()),
                       .columns = {.partition = "part", .offset = "off"}};
  // Quick heartbeats, so that members notice a rebalance within a fraction of a second.
  return o.consumer_group(group)
      .property("heartbeat.interval.ms", "100")
      .property("session.timeout.ms", "6000")
      .property("fetch.wait.max.ms", "10");
}

// One member of the group: the reader a job's subtask would run, and what it returned.
struct Member {
  std::string name;
  std::unique_ptr<runtime::SourceReader> reader;
  std::vector<GroupGot> got;

  // Polls once; returns the rows read.
  int64_t poll() {
    auto p = reader->poll(16);
    EXPECT_TRUE(p.is_ok()) << name << ": " << p.status().to_string();
    if (!p.is_ok() || p->kind != runtime::SourcePoll::Kind::kBatch) return 0;
    auto rows = read_rows<GroupGot>(p->batch);
    EXPECT_TRUE(rows.is_ok()) << rows.status().to_string();
    if (!rows.is_ok()) return 0;
    got.insert(got.end(), rows->begin(), rows->end());
    return static_cast<int64_t>(rows->size());
  }
  // The partitions assigned now, from the reader's position text ("p0@12 p3@5").
  std::set<int> partitions() const {
    std::set<int> out;
    const std::string text = reader->position();
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == 'p' && (i == 0 || text[i - 1] == ' '))
        out.insert(std::stoi(text.substr(i + 1)));
    }
    return out;
  }
};

Member open_member(const KafkaDevBroker& broker, const std::string& topic, const std::string& group,
                   const std::string& name, runtime::DeliveryGuarantee delivery) {
  auto source = topic_source(group_options(broker, topic, group));
  EXPECT_TRUE(source.is_ok()) << source.status().to_string();
  runtime::OperatorContext ctx;
  ctx.operator_name = name;
  ctx.uid = name;
  ctx.delivery = delivery;
  Member m{name, nullptr, {}};
  if (!source.is_ok()) return m;
  auto reader = (*source)->open_reader({}, ctx);
  EXPECT_TRUE(reader.is_ok()) << reader.status().to_string();
  if (reader.is_ok()) m.reader = std::move(*reader);
  return m;
}

// Produces (at most `in_flight` records ahead of what the members have read, so that a rebalance
// always finds records not yet read) and polls every member until `done` holds. False on
// timeout, with the state in the test's failure message.
bool run_until(Producer& producer, int64_t total, std::vector<Member*> members,
               const std::function<bool()>& done, const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + kBound;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::string state;
      for (const Member* m : members) {
        state += " " + m->name + ": " + std::to_string(m->got.size()) + " rows, at '" +
                 m->reader->position() + "';";
      }
      ADD_FAILURE() << "timed out waiting for " << what << "; produced " << producer.produced()
                    << ";" << state;
      return false;
    }
    int64_t read = 0;
    for (const Member* m : members) read += static_cast<int64_t>(m->got.size());
    while (producer.produced() < total && producer.produced() - read < 40) {
      producer.produce_next();
    }
    for (Member* m : members) {
      if (m->poll() == 0) std::this_thread::yield();
    }
  }
  return true;
}

bool all_partitions(const std::set<int>& a, const std::set<int>& b) {
  std::set<int> u = a;
  u.insert(b.begin(), b.end());
  for (int p : a) {
    if (b.contains(p)) return false;  // still moving
  }
  return static_cast<int>(u.size()) == kPartitions;
}

std::unique_ptr<KafkaDevBroker> start_broker() {
  auto b = KafkaDevBroker::start({.brokers = 1, .partitions = kPartitions});
  EXPECT_TRUE(b.is_ok()) << b.status().to_string();
  if (!b.is_ok()) return nullptr;
  EXPECT_TRUE((*b)->create_topic("events", kPartitions).is_ok());
  return std::move(*b);
}

TEST(KafkaGroup, RefusedWhereItWouldBreakItsGuarantee) {
  auto broker = start_broker();
  ASSERT_NE(broker, nullptr);
  // Exactly-once: the job's state and output would not follow the partitions that move.
  auto source = topic_source(group_options(*broker, "events", "eo"));
  ASSERT_TRUE(source.is_ok()) << source.status().to_string();
  runtime::OperatorContext ctx;
  ctx.uid = "eo";
  ctx.delivery = runtime::DeliveryGuarantee::kExactlyOnce;
  auto reader = (*source)->open_reader({}, ctx);
  ASSERT_FALSE(reader.is_ok());
  EXPECT_NE(reader.status().message().find("consumer-group mode"), std::string::npos)
      << reader.status().to_string();
  EXPECT_NE(reader.status().message().find("exactly-once"), std::string::npos);
  // A bounded read, and memory:// topics.
  TopicSourceOptions bounded = group_options(*broker, "events", "b");
  bounded.stop_at_end = true;
  auto b = topic_source(bounded);
  ASSERT_FALSE(b.is_ok());
  EXPECT_NE(b.status().message().find("stop_at_end"), std::string::npos) << b.status().to_string();
  TopicSourceOptions mem{.url = "memory://group-test-topic", .codec = codec::json(txn_schema())};
  auto m = topic_source(mem.consumer_group("g"));
  ASSERT_FALSE(m.is_ok());
  EXPECT_NE(m.status().message().find("consumer-group mode is for kafka://"), std::string::npos)
      << m.status().to_string();
}

}  // namespace
}  // namespace sabot::connectors
