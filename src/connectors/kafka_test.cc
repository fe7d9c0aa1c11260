// kafka:// sources and sinks against librdkafka's mock cluster (KafkaDevBroker), started by each
// test in-process on loopback: round trips, Java-compatible keyed partitioning, offsets restored
// from a checkpoint, the transactional sink's protocol, faults (broker down and up, leader
// change, retriable request errors), and per-partition watermarks with idle partitions. Nothing
// waits on wall-clock time: the jobs' sources are gated by the tests, and bounded reads end at the
// high watermarks (stop_at_end).
#include "sabot/connectors/kafka.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "connectors/kafka_client.h"
#include "connectors/murmur2.h"
#include "sabot/api/environment.h"
#include "sabot/base/clock.h"
#include "sabot/connectors/topic_scheme.h"
#include "sabot/runtime/metrics.h"

struct Txn {
  int64_t id = 0;
  std::string account;
};
SABOT_RECORD(Txn, id, account);

// A record whose value carries its own event time (ms), for watermarks from a column.
struct Ev {
  int64_t id = 0;
  int64_t ets = 0;
};
SABOT_RECORD(Ev, id, ets);

struct Got {
  int64_t id = 0;
  std::string account;
  int32_t part = 0;
  int64_t off = 0;
};
SABOT_RECORD(Got, id, account, part, off);

namespace sabot::connectors {
namespace {

// Keys with the partitions the Java client's default partitioner gives them among 3 partitions
// (the reference values of murmur2_test, from Kafka's own tests).
const std::vector<std::pair<std::string, int>> kJavaPartitions = {
    {"21", 0},
    {"foobar", 0},
    {"a-little-bit-long-string", 2},
    {"a-little-bit-longer-string", 2},
    {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 2},
    {"abc", 0},
    {"sabot", kafka_partition_for_key("sabot", 3)}};

Txn txn_at(int64_t i) {
  return Txn{i, kJavaPartitions[static_cast<size_t>(i) % kJavaPartitions.size()].first};
}

// What the test lets the generator give: rows [0, limit) of one split.
struct Gate {
  std::atomic<int64_t> limit{INT64_MAX};
  std::atomic<int64_t> produced{0};
  int64_t total = 0;
  void wait_produced(int64_t n) const {
    while (produced.load() < n) std::this_thread::yield();
  }
};

DataStream txns(Environment& env, const std::shared_ptr<Gate>& gate) {
  auto gen = [gate](int, int64_t next, int64_t max_rows) -> Result<std::optional<RecordBatch>> {
    if (next >= gate->total) return std::optional<RecordBatch>();
    const int64_t end = std::min({gate->total, next + max_rows, gate->limit.load()});
    RowWriter<Txn> w;
    for (int64_t i = next; i < end; ++i) w.append(txn_at(i));
    gate->produced.fetch_add(w.size());
    return std::optional<RecordBatch>(w.finish());
  };
  return env.from_generator("txns", ::sabot::record_schema<Txn>(), 1, gen).uid("txns");
}

SchemaPtr txn_schema() { return ::sabot::record_schema<Txn>(); }

// Everything the topic holds now, with partitions and offsets.
std::vector<Got> read_all(const KafkaDevBroker& broker, const std::string& topic) {
  Environment env({.parallelism = 2});
  auto out =
      env.from_topic(broker.url(topic), codec::json(txn_schema()),
                     {.columns = {.partition = "part", .offset = "off"}, .stop_at_end = true})
          .collect();
  JobResult r = env.execute();
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  auto batch = out->to_batch();
  EXPECT_TRUE(batch.is_ok());
  if (!batch.is_ok()) return {};
  auto rows = read_rows<Got>(*batch);
  EXPECT_TRUE(rows.is_ok()) << rows.status().to_string();
  std::vector<Got> got = rows.is_ok() ? *rows : std::vector<Got>{};
  std::sort(got.begin(), got.end(), [](const Got& a, const Got& b) { return a.id < b.id; });
  return got;
}

// Every id in [0, n) exactly once.
void expect_each_once(const std::vector<Got>& got, int64_t n) {
  std::map<int64_t, int> seen;
  for (const Got& g : got) ++seen[g.id];
  EXPECT_EQ(static_cast<int64_t>(seen.size()), n);
  for (const auto& [id, count] : seen) {
    EXPECT_EQ(count, 1) << "id " << id;
    EXPECT_TRUE(id >= 0 && id < n) << "id " << id;
  }
}

// One message with `value` into partition 0 of `topic`, by librdkafka directly (bytes no codec
// would write).
void produce_raw(const KafkaDevBroker& broker, const std::string& topic, const std::string& value) {
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  ASSERT_EQ(
      rd_kafka_conf_set(conf, "bootstrap.servers", broker.bootstrap().c_str(), err, sizeof err),
      RD_KAFKA_CONF_OK);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  ASSERT_NE(rk, nullptr) << err;
  EXPECT_EQ(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
                              RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(rk);
}

// The sum of the offsets group `group` committed for the partitions of `topic` (-1 each when
// none).
int64_t committed_total(const KafkaDevBroker& broker, const std::string& group,
                        const std::string& topic, int partitions) {
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", broker.bootstrap().c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", group.c_str(), err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (rk == nullptr) return -1;
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list, topic.c_str(), p);
  int64_t total = 0;
  if (rd_kafka_committed(rk, list, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < list->cnt; ++i) total += list->elems[i].offset;
  }
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_destroy(rk);
  return total;
}

std::unique_ptr<KafkaDevBroker> start_broker(int brokers = 1) {
  auto b = KafkaDevBroker::start({.brokers = brokers, .partitions = 3});
  EXPECT_TRUE(b.is_ok()) << b.status().to_string();
  return b.is_ok() ? std::move(*b) : nullptr;
}

TEST(KafkaUrl, ParsesBootstrapAndTopicAndRefusesTheRest) {
  auto u = parse_kafka_url("kafka://127.0.0.1:9092,other:9093/bank-transactions");
  ASSERT_TRUE(u.is_ok()) << u.status().to_string();
  EXPECT_EQ(u->bootstrap, "127.0.0.1:9092,other:9093");
  EXPECT_EQ(u->topic, "bank-transactions");
  EXPECT_EQ(parse_kafka_url("kafka://h:1")->topic, "");
  for (const char* bad :
       {"memory://x", "kafka:///t", "kafka://host/t", "kafka://h:x/t", "kafka://h:1/bad topic"}) {
    EXPECT_FALSE(parse_kafka_url(bad).is_ok()) << bad;
  }
  auto scheme = topic_scheme_for("kafka://h:1/t");
  ASSERT_TRUE(scheme.is_ok());
  EXPECT_EQ((*scheme)->scheme(), "kafka");
  EXPECT_EQ((*topic_scheme_for("memory://t"))->scheme(), "memory");
  auto unknown = topic_scheme_for("pulsar://h/t");
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_NE(unknown.status().message().find("kafka://"), std::string::npos);
}

TEST(KafkaUrl, PropertiesComeFromTheEnvironmentThenTheJob) {
  std::string a = "SABOT_KAFKA_COMPRESSION_TYPE=lz4";
  std::string b = "SABOT_KAFKA_LINGER_MS=7";
  std::string c = "OTHER=1";
  char* env[] = {a.data(), b.data(), c.data(), nullptr};
  ClientProperties p = kafka_properties({{"compression.type", "zstd"}}, env);
  EXPECT_EQ(p.size(), 2u);
  EXPECT_EQ(p["compression.type"], "zstd");
  EXPECT_EQ(p["linger.ms"], "7");
}

TEST(KafkaConnector, BadPropertyIsRefusedNamingIt) {
  auto broker = start_broker();
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(broker->create_topic("in", 3).is_ok());
  auto gate = std::make_shared<Gate>();
  gate->total = 10;
  Environment env;
  txns(env, gate).to_topic(broker->url("in"), codec::json(),
                           TopicSinkOptions{}.property("no.such.property", "1"));
  JobResult r = env.execute();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no.such.property"), std::string::npos)
      << r.status().to_string();
}

TEST(KafkaConnector, RoundTripPlacesKeysWhereTheJavaClientDoes) {
  auto broker = start_broker();
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(broker->create_topic("txns", 3).is_ok());
  auto gate = std::make_shared<Gate>();
  gate->total = 700;
  {
    Environment env({.batch_size = 64});
    txns(env, gate).to_topic(
        broker->url("txns"), codec::json(),
        TopicSinkOptions{.key_column = "account"}.property("compression.type", "zstd"));
    JobResult r = env.execute();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }
  std::vector<Got> got = read_all(*broker, "txns");
  expect_each_once(got, 700);
  std::map<std::string, int> expected(kJavaPartitions.begin(), kJavaPartitions.end());
  std::set<int> partitions;
  for (const Got& g : got) {
    EXPECT_EQ(g.account, txn_at(g.id).account);
    EXPECT_EQ(g.part, expected[g.account]) << g.account;
    partitions.insert(g.part);
  }
  EXPECT_EQ(partitions.size(), 2u);  // 0 and 2 (the reference keys use no other)
  // Offsets are contiguous per partition from 0.
  std::map<int, std::vector<int64_t>> offsets;
  for (const Got& g : got) offsets[g.part].push_back(g.off);
  for (auto& [p, offs] : offsets) {
    std::sort(offs.begin(), offs.end());
    for (size_t i = 0; i < offs.size(); ++i) EXPECT_EQ(offs[i], static_cast<int64_t>(i));
  }
}

TEST(KafkaConnector, MetadataColumnsAndStartPositions) {
  auto broker = start_broker();
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(broker->create_topic("one", 1).is_ok());
  auto gate = std::make_shared<Gate>();
  gate->total = 20;
  Environment env;
  txns(env, gate).to_topic(broker->url("one"), codec::json(), {.key_column = "account"});
  ASSERT_TRUE(env.execute().ok());

  Environment read;
  auto out =
      read.from_topic(broker->url("one"), codec::json(txn_schema()),
                      {.start = StartPosition::at(15),
                       .columns = {.key = "k", .timestamp = "ts", .offset = "o", .headers = "h"},
                       .stop_at_end = true})
          .collect();
  JobResult r = read.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  RecordBatch b = out->to_batch().value();
  ASSERT_EQ(b.num_rows(), 5);
  const columnar::Schema& s = b.schema();
  for (int64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(b.column(s.field_index("o")).value<int64_t>(i), 15 + i);
    EXPECT_EQ(b.column(s.field_index("id")).value<int64_t>(i), 15 + i);
    EXPECT_EQ(b.column(s.field_index("k")).string_view(i), txn_at(15 + i).account);
    EXPECT_GT(b.column(s.field_index("ts")).value<int64_t>(i), 0);
    EXPECT_EQ(b.column(s.field_index("h")).string_view(i), "{}");
  }

  Environment late;
  auto none = late.from_topic(broker->url("one"), codec::json(txn_schema()),
                              {.start = StartPosition::latest(), .stop_at_end = true})
                  .collect();
  ASSERT_TRUE(late.execute().ok());
  EXPECT_EQ(none->num_rows(), 0);
}

// The job's metrics know each partition's end offset from the broker (librdkafka's cached high
// watermark of the last fetch): a bounded read of the whole topic ends with every partition that
// held records at its end offset, so sabot_source_partition_lag_records is 0. A partition never
// fetched from (empty: the keys may leave one unused) has no cached watermark, and reports none.
TEST(KafkaConnector, PartitionOffsetsAndEndOffsetsReachTheJobMetrics) {
  auto broker = start_broker();
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(broker->create_topic("lagged", 3).is_ok());
  auto gate = std::make_shared<Gate>();
  gate->total = 300;
  Environment env;
  txns(env, gate).to_topic(broker->url("lagged"), codec::json(), {.key_column = "account"});
  ASSERT_TRUE(env.execute().ok());

  Environment read({.parallelism = 2});
  read.from_topic(broker->url("lagged"), codec::json(txn_schema()), {.stop_at_end = true})
      .uid("lagged-source")
      .blackhole();
  JobResult r = read.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  int64_t offsets = 0;
  size_t partitions = 0;
  size_t with_records = 0;
  size_t with_end = 0;
  r.metrics().read([&](const std::vector<runtime::OperatorEntry>& entries) {
    for (const runtime::OperatorEntry& e : entries) {
      for (const auto& pg : e.partitions) {
        const int64_t at = pg->offset.load();
        const int64_t end = pg->end_offset.load();
        ++partitions;
        offsets += at;
        if (at > 0) ++with_records;
        if (end >= 0) {
          ++with_end;
          EXPECT_EQ(end, at) << "partition " << pg->split;
        }
      }
    }
  });
  EXPECT_EQ(partitions, 3u);
  EXPECT_EQ(offsets, 300);
  EXPECT_GE(with_records, 2u);
  EXPECT_GE(with_end, with_records);
}

TEST(KafkaConnector, BadRecordsAreSkippedOrFailNamingTheOffset) {
  auto broker = start_broker();
  ASSERT_NE(broker, nullptr);
  // (A missing topic cannot be shown here: the mock cluster creates every topic a client asks
  // about.)
  // A record that is not JSON fails the job with topic, partition and offset.
  ASSERT_TRUE(broker->create_topic("dirty", 1).is_ok());
  auto gate = std::make_shared<Gate>();
  gate->total = 3;
  Environment w;
  txns(w, gate).to_topic(broker->url("dirty"), codec::json());
  ASSERT_TRUE(w.execute().ok());
  produce_raw(*broker, "dirty", "not json");
  Environment skip;
  auto kept = skip.from_topic(broker->url("dirty"), codec::json(txn_schema()),
                              {.on_bad_record = BadRecordPolicy::kSkip, .stop_at_end = true})
                  .collect();
  JobResult sr = skip.execute();
  ASSERT_TRUE(sr.ok()) << sr.status().to_string();
  EXPECT_EQ(kept->num_rows(), 3);
  Environment fail;
  fail.from_topic(broker->url("dirty"), codec::json(txn_schema()), {.stop_at_end = true})
      .blackhole();
  JobResult fr = fail.execute();
  ASSERT_FALSE(fr.ok());
  EXPECT_NE(fr.status().message().find("topic 'dirty' partition 0 offset 3"), std::string::npos)
      << fr.status().to_string();
}

// A job reads what the topic holds, checkpoints, and is cancelled; more records arrive; a job
// restored from the checkpoint reads exactly the new ones: every record once over both runs.
TEST(KafkaConnector, RestoredJobContinuesFromCheckpointedOffsets) {
  auto broker = start_broker();
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(broker->create_topic("in", 3).is_ok());
  auto produce = [&](int64_t from, int64_t to) {
    auto gate = std::make_shared<Gate>();
    gate->total = to - from;
    Environment env;
    auto gen = [from, to](int, int64_t next, int64_t max) -> Result<std::optional<RecordBatch>> {
      if (from + next >= to) return std::optional<RecordBatch>();
      RowWriter<Txn> w;
      for (int64_t i = from + next; i < std::min(to, from + next + max); ++i) w.append(txn_at(i));
      return std::optional<RecordBatch>(w.finish());
    };
    env.from_generator("p", ::sabot::record_schema<Txn>(), 1, gen)
        .to_topic(broker->url("in"), codec::json(), {.key_column = "account"});
    JobResult r = env.execute();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  };
  produce(0, 300);

  std::mutex mu;
  std::vector<int64_t> first_ids;
  auto store = std::make_shared<runtime::CheckpointStore>();
  std::shared_ptr<const runtime::JobSnapshot> snap;
  {
    Environment env({.parallelism = 2,
                     .checkpoints = store,
                     .delivery = runtime::DeliveryGuarantee::kAtLeastOnce});
    env.from_topic(broker->url("in"), codec::json(txn_schema()))
        .uid("in")
        .for_each_batch([&](const RecordBatch& b) {
          std::lock_guard<std::mutex> lock(mu);
          for (int64_t i = 0; i < b.num_rows(); ++i)
            first_ids.push_back(b.column(0).value<int64_t>(i));
          return Status::ok();
        });
    auto job = env.start();
    ASSERT_TRUE(job.is_ok()) << job.status().to_string();
    while (true) {
      std::lock_guard<std::mutex> lock(mu);
      if (first_ids.size() >= 300) break;
      std::this_thread::yield();
    }
    auto id = (*job)->trigger_checkpoint();
    ASSERT_TRUE(id.is_ok()) << id.status().to_string();
    auto s = (*job)->wait_for_checkpoint(*id);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    snap = std::make_shared<runtime::JobSnapshot>(*s);
    // The completed checkpoint's offsets are committed to the group "sabot-<uid>" (monitoring).
    int64_t committed = 0;
    for (int attempt = 0; attempt < 500 && committed != 300; ++attempt) {
      committed = committed_total(*broker, "sabot-in", "in", 3);
    }
    EXPECT_EQ(committed, 300);
    (*job)->cancel();
    (void)(*job)->wait();
  }
  EXPECT_EQ(first_ids.size(), 300u);
  produce(300, 500);
  Environment again({.parallelism = 3,
                     .restore_from = snap,
                     .delivery = runtime::DeliveryGuarantee::kAtLeastOnce});
  auto out = again.from_topic(broker->url("in"), codec::json(txn_schema()), {.stop_at_end = true})
                 .uid("in")
                 .collect();
  JobResult r = again.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto rows = read_rows<Txn>(out->to_batch().value()).value();
  std::vector<int64_t> all = first_ids;
  for (const Txn& t : rows) all.push_back(t.id);
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), 500u);
  for (int64_t i = 0; i < 500; ++i) EXPECT_EQ(all[static_cast<size_t>(i)], i);
}

// The transactional sink's protocol, as its producer reports its calls: init once, then for each
// checkpoint begin -> (records) -> flush at the barrier -> commit when the checkpoint completes;
// an attempt that fails aborts its open transaction, and the restored attempt's init (same
// transactional id) fences it.
TEST(KafkaSink, TransactionsFollowCheckpointsAndAbortOnRecovery) {
  auto broker = start_broker();
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(broker->create_topic("out", 3).is_ok());
  std::mutex mu;
  std::vector<std::string> calls;
  set_kafka_txn_observer([&](const std::string& id, std::string_view call) {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back(id + " " + std::string(call));
  });
  auto taken = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return calls;
  };
  auto count = [&](const std::string& call) {
    std::lock_guard<std::mutex> lock(mu);
    return std::count(calls.begin(), calls.end(), call);
  };
  const std::string tid = "job-a-0";
  auto store = std::make_shared<runtime::CheckpointStore>();
  auto gate = std::make_shared<Gate>();
  gate->total = 400;
  gate->limit = 100;
  std::shared_ptr<const runtime::JobSnapshot> snap;
  {
    Environment env({.checkpoints = store, .delivery = runtime::DeliveryGuarantee::kExactlyOnce});
    txns(env, gate).to_topic(broker->url("out"), codec::json(),
                             {.key_column = "account", .transactional_id_prefix = "job-a"});
    auto job = env.start();
    ASSERT_TRUE(job.is_ok()) << job.status().to_string();
    gate->wait_produced(100);
    auto c1 = (*job)->trigger_checkpoint();
    ASSERT_TRUE(c1.is_ok());
    snap = std::make_shared<runtime::JobSnapshot>((*job)->wait_for_checkpoint(*c1).value());
    // Wait for the commit of checkpoint 1 before letting more records in.
    while (count(tid + " commit") < 1) {
      std::this_thread::yield();
    }
    gate->limit = 250;
    gate->wait_produced(250);
    // Records 100..249 are in an open transaction when the attempt is cancelled.
    while (count(tid + " begin") < 2) {
      std::this_thread::yield();
    }
    (*job)->cancel();
    (void)(*job)->wait();
  }
  std::vector<std::string> first = taken();
  EXPECT_EQ(first, (std::vector<std::string>{tid + " init", tid + " begin", tid + " flush",
                                             tid + " commit", tid + " begin", tid + " abort"}));
  {
    gate->limit = INT64_MAX;
    Environment env({.checkpoints = std::make_shared<runtime::CheckpointStore>(),
                     .restore_from = snap,
                     .delivery = runtime::DeliveryGuarantee::kExactlyOnce});
    txns(env, gate).to_topic(broker->url("out"), codec::json(),
                             {.key_column = "account", .transactional_id_prefix = "job-a"});
    JobResult r = env.execute();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }
  std::vector<std::string> all = taken();
  set_kafka_txn_observer(nullptr);
  std::vector<std::string> second(all.begin() + static_cast<std::ptrdiff_t>(first.size()),
                                  all.end());
  // The restored attempt: init (fencing the old one), then one transaction for the rest, flushed
  // at the final checkpoint's barrier and committed at its completion.
  ASSERT_GE(second.size(), 4u);
  EXPECT_EQ(second.front(), tid + " init");
  EXPECT_EQ(second.back(), tid + " commit");
  for (size_t i = 1; i < second.size(); ++i) {
    if (second[i] == tid + " commit") {
      EXPECT_EQ(second[i - 1], tid + " flush") << i;
    }
  }
  // The mock cluster ignores aborts (no markers), so what the aborted transaction had sent of
  // records 100..249 is visible in it next to the restored attempt's copies; a real cluster's
  // read_committed readers would skip them (docs/kafka.md).
  std::vector<Got> got = read_all(*broker, "out");
  std::map<int64_t, int> seen;
  for (const Got& g : got) ++seen[g.id];
  for (int64_t i = 0; i < 400; ++i) {
    if (i >= 100 && i < 250) {
      // Aborted (the abort purges what was not sent yet), then sent again by the restored run.
      EXPECT_TRUE(seen[i] == 1 || seen[i] == 2) << "id " << i << " seen " << seen[i];
    } else {
      EXPECT_EQ(seen[i], 1) << "id " << i;
    }
  }
}

// Faults injected into the mock cluster while a checkpointed job copies one topic to another:
// a broker down and up again, a partition leader moved, retriable produce and fetch errors. The
// job continues and its output has every record exactly once.
TEST(KafkaConnector, SurvivesBrokerDownLeaderChangeAndRetriableErrors) {
  auto broker = start_broker(3);
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(broker->create_topic("src", 3).is_ok());
  ASSERT_TRUE(broker->create_topic("dst", 3).is_ok());
  {
    auto gate = std::make_shared<Gate>();
    gate->total = 600;
    Environment env;
    txns(env, gate).to_topic(broker->url("src"), codec::json(), {.key_column = "account"});
    ASSERT_TRUE(env.execute().ok());
  }
  // Retriable errors queued for the next Produce (0) and Fetch (1) requests.
  broker->push_request_errors(0, 4, 6 /* NOT_LEADER_OR_FOLLOWER */);
  broker->push_request_errors(1, 4, 6);
  // The input lives on brokers 1 and 2; output partition 2 (half the keys) moves to broker 3,
  // which goes down until the job is halfway through.
  ASSERT_TRUE(broker->set_partition_leader("src", 0, 2).is_ok());
  ASSERT_TRUE(broker->set_partition_leader("src", 1, 1).is_ok());
  ASSERT_TRUE(broker->set_partition_leader("src", 2, 1).is_ok());
  ASSERT_TRUE(broker->set_partition_leader("dst", 2, 3).is_ok());
  ASSERT_TRUE(broker->set_broker_down(3).is_ok());
  std::atomic<int64_t> seen{0};
  std::atomic<bool> up{false};
  Environment env({.parallelism = 2,
                   .checkpoints = std::make_shared<runtime::CheckpointStore>(),
                   .delivery = runtime::DeliveryGuarantee::kAtLeastOnce});
  env.from_topic(broker->url("src"), codec::json(txn_schema()), {.stop_at_end = true})
      .map<Txn, Txn>([&](const Txn& t) {
        // Broker 3 (leader of dst partition 2) comes back once half the input went through.
        if (seen.fetch_add(1) == 300) up = broker->set_broker_up(3).is_ok();
        return t;
      })
      .to_topic(broker->url("dst"), codec::json(), {.key_column = "account"});
  JobResult r = env.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(up.load());
  expect_each_once(read_all(*broker, "dst"), 600);
}

// Headers arrive as one JSON object of strings per record: a header without value is null, and
// names and values are escaped; a record without headers has {}.
TEST(KafkaConnector, HeadersBecomeAJsonColumn) {
  auto broker = start_broker();
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(broker->create_topic("headed", 1).is_ok());
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", broker->bootstrap().c_str(), err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  ASSERT_NE(rk, nullptr) << err;
  const std::string v0 = R"({"id":0,"account":"x"})";
  const std::string v1 = R"({"id":1,"account":"y"})";
  rd_kafka_headers_t* hdrs = rd_kafka_headers_new(3);
  rd_kafka_header_add(hdrs, "trace", -1, "abc", -1);
  rd_kafka_header_add(hdrs, "none", -1, nullptr, 0);
  rd_kafka_header_add(hdrs, "q\"uote", -1, "a\"b\n", -1);
  // producev takes ownership of the headers on success.
  ASSERT_EQ(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("headed"), RD_KAFKA_V_PARTITION(0),
                              RD_KAFKA_V_VALUE(const_cast<char*>(v0.data()), v0.size()),
                              RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("headed"), RD_KAFKA_V_PARTITION(0),
                              RD_KAFKA_V_VALUE(const_cast<char*>(v1.data()), v1.size()),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(rk);

  Environment env;
  auto out = env.from_topic(broker->url("headed"), codec::json(txn_schema()),
                            {.columns = {.offset = "o", .headers = "h"}, .stop_at_end = true})
                 .collect();
  JobResult r = env.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  RecordBatch b = out->to_batch().value();
  ASSERT_EQ(b.num_rows(), 2);
  const columnar::Schema& s = b.schema();
  std::map<int64_t, std::string> by_offset;
  for (int64_t i = 0; i < 2; ++i) {
    by_offset[b.column(s.field_index("o")).value<int64_t>(i)] =
        std::string(b.column(s.field_index("h")).string_view(i));
  }
  EXPECT_EQ(by_offset[0], R"({"trace":"abc","none":null,"q\"uote":"a\"b\n"})");
  EXPECT_EQ(by_offset[1], "{}");
}

// A delivery error that retries cannot cure (the cluster refuses the topic) fails the job,
// naming the topic and the broker's error, instead of losing the records.
TEST(KafkaSink, PermanentDeliveryErrorFailsTheJobNamingTheTopic) {
  auto broker = start_broker();
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(broker->create_topic("denied", 1).is_ok());
  // Every Produce request of the job is refused: TOPIC_AUTHORIZATION_FAILED (29), not retriable.
  broker->push_request_errors(0, 1000, 29);
  auto gate = std::make_shared<Gate>();
  gate->total = 50;
  Environment env;
  txns(env, gate).to_topic(broker->url("denied"), codec::json());
  JobResult r = env.execute();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("kafka topic 'denied'"), std::string::npos)
      << r.status().to_string();
  EXPECT_NE(r.status().message().find("uthorization"), std::string::npos) << r.status().to_string();
}

// Watermarks of kafka:// sources. The job runs on a ManualClock that only the test moves, so
// idleness (processing time on the job's clock) is decided by the test, not by timing. Records go
// into one partition at a time (a phase), and the test waits until the source has read a phase
// (its per-partition event-time gauges) or until the watermark it expects arrives, before the
// next; the waits are bounded only as a guard against a failing run. Every record carries two
// times: the Kafka timestamp kKafkaBase + t and, in the value, the column ets = kColumnBase + t,
// so a watermark shows which of the two the job took.
constexpr int64_t kKafkaBase = 1'700'000'000'000;  // Nov 2023
constexpr int64_t kColumnBase = 5'000'000'000;

enum class EventTime { kRecordTimestamp, kColumn };

struct WmSeen {
  std::mutex mu;
  std::vector<int64_t> watermarks;
  std::atomic<int64_t> max_ms{INT64_MIN};
  std::vector<int64_t> all() {
    std::lock_guard<std::mutex> lock(mu);
    return watermarks;
  }
};

// Passes batches on and records every watermark it is given.
class WatermarkRecorder final : public runtime::OperatorFactory {
 public:
  explicit WatermarkRecorder(std::shared_ptr<WmSeen> seen) : seen_(std::move(seen)) {}
  std::string kind() const override { return "wm-recorder"; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> in) const override { return in[0]; }
  Result<std::unique_ptr<runtime::Operator>> create(
      std::span<const SchemaPtr>, const runtime::OperatorContext&) const override {
    class Op final : public runtime::Operator {
     public:
      explicit Op(std::shared_ptr<WmSeen> seen) : seen_(std::move(seen)) {}
      Status process_batch(const RecordBatch& b, int, runtime::Output& out) override {
        return out.emit(b);
      }
      Status process_watermark(Timestamp t, runtime::Output& out) override {
        {
          std::lock_guard<std::mutex> lock(seen_->mu);
          seen_->watermarks.push_back(t.millis());
        }
        if (t.millis() > seen_->max_ms.load()) seen_->max_ms.store(t.millis());
        return out.emit_watermark(t);
      }
      std::shared_ptr<WmSeen> seen_;
    };
    return std::unique_ptr<runtime::Operator>(new Op(seen_));
  }

 private:
  std::shared_ptr<WmSeen> seen_;
};

// An unbounded kafka:// source of Ev over all partitions of `topic` in one subtask, watermarks
// from the chosen time, monotonic per partition, into a WatermarkRecorder.
class WatermarkJob {
 public:
  WatermarkJob(const KafkaDevBroker& broker, const std::string& topic, EventTime from,
               std::chrono::milliseconds idle_timeout)
      : clock_(Timestamp(1'000'000)),
        from_(from),
        env_({.parallelism = 1, .clock = &clock_}),
        seen_(std::make_shared<WmSeen>()) {
    TopicSourceOptions o;
    if (from == EventTime::kRecordTimestamp) o.columns.timestamp = "kts";
    o.properties = {{"fetch.wait.max.ms", "10"}};
    env_.from_topic(broker.url(topic), codec::json(::sabot::record_schema<Ev>()), o)
        .uid("wm-source")
        .with_watermarks(
            runtime::monotonic_timestamps(from == EventTime::kRecordTimestamp ? "kts" : "ets")
                .with_idle_timeout(idle_timeout))
        .apply(std::make_shared<WatermarkRecorder>(seen_))
        .blackhole();
    auto job = env_.start("kafka-watermarks");
    EXPECT_TRUE(job.is_ok()) << job.status().to_string();
    if (job.is_ok()) job_ = std::move(*job);
  }
  ~WatermarkJob() {
    if (job_ == nullptr) return;
    job_->cancel();
    (void)job_->wait();
  }
  bool started() const { return job_ != nullptr; }
  ManualClock& clock() { return clock_; }
  WmSeen& seen() { return *seen_; }
  // The watermark for event time t (ms, before the base) with monotonic timestamps: t - 1.
  int64_t wm(int64_t t) const {
    return (from_ == EventTime::kRecordTimestamp ? kKafkaBase : kColumnBase) + t - 1;
  }
  // The largest event time the source has seen in `partition` (INT64_MIN: none) and whether it is
  // idle, from the job's per-partition gauges.
  int64_t max_event_time(int partition) const {
    int64_t out = INT64_MIN;
    read_gauges(partition, [&](const auto& g) { out = g.max_event_time_ms.load(); });
    return out;
  }
  bool idle(int partition) const {
    bool out = false;
    read_gauges(partition, [&](const auto& g) { out = g.idle.load(); });
    return out;
  }
  template <typename F>
  void read_gauges(int partition, F&& f) const {
    job_->metrics().read([&](const std::vector<runtime::OperatorEntry>& entries) {
      for (const runtime::OperatorEntry& e : entries) {
        for (const auto& g : e.splits) {
          if (g->split == partition) f(*g);
        }
      }
    });
  }
  // Waits until the source has read event time t of `partition` (the chosen time).
  [[nodiscard]] bool wait_read(int partition, int64_t t) const {
    return wait_for([&] { return max_event_time(partition) == wm(t) + 1; });
  }
  // Waits until the recorder has seen watermark `w`.
  [[nodiscard]] bool wait_watermark(int64_t w) {
    return wait_for([&] { return seen_->max_ms.load() >= w; });
  }

  // A failure guard only: a passing run waits for conditions, never for this.
  template <typename F>
  static bool wait_for(F done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::yield();
    }
    return true;
  }

 private:
  ManualClock clock_;
  EventTime from_;
  Environment env_;
  std::shared_ptr<WmSeen> seen_;
  std::unique_ptr<runtime::Job> job_;
};

// A producer that writes Ev records with explicit Kafka timestamps into chosen partitions.
class TimedProducer {
 public:
  TimedProducer(const KafkaDevBroker& broker, std::string topic) : topic_(std::move(topic)) {
    char err[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", broker.bootstrap().c_str(), err, sizeof err);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    EXPECT_NE(rk_, nullptr) << err;
  }
  ~TimedProducer() {
    if (rk_ != nullptr) rd_kafka_destroy(rk_);
  }
  // One record at event time t into `partition`, delivered before this returns.
  [[nodiscard]] bool send(int32_t partition, int64_t t) {
    const std::string value = "{\"id\":" + std::to_string(next_id_++) +
                              ",\"ets\":" + std::to_string(kColumnBase + t) + "}";
    if (rd_kafka_producev(rk_, RD_KAFKA_V_TOPIC(topic_.c_str()), RD_KAFKA_V_PARTITION(partition),
                          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                          RD_KAFKA_V_TIMESTAMP(kKafkaBase + t),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_END) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return false;
    }
    return rd_kafka_flush(rk_, 30000) == RD_KAFKA_RESP_ERR_NO_ERROR;
  }

 private:
  std::string topic_;
  rd_kafka_t* rk_ = nullptr;
  int64_t next_id_ = 0;
};

class KafkaWatermarks : public ::testing::TestWithParam<EventTime> {};

// Each partition is a split of its own: the watermark waits until every partition has data, then
// follows the slowest partition, whichever it is, and never goes back. The clock never moves, so
// no partition goes idle.
TEST_P(KafkaWatermarks, PerPartitionWatermarksFollowTheSlowestPartition) {
  auto broker = start_broker();
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(broker->create_topic("wm", 3).is_ok());
  WatermarkJob job(*broker, "wm", GetParam(), std::chrono::milliseconds(10'000));
  ASSERT_TRUE(job.started());
  TimedProducer producer(*broker, "wm");

  // Partitions 0 and 1 have data, 2 has none yet: no watermark.
  ASSERT_TRUE(producer.send(0, 1000));
  ASSERT_TRUE(producer.send(1, 3000));
  ASSERT_TRUE(job.wait_read(0, 1000));
  ASSERT_TRUE(job.wait_read(1, 3000));
  EXPECT_TRUE(job.seen().all().empty());
  // Partition 2 arrives, the slowest: the watermark follows it.
  ASSERT_TRUE(producer.send(2, 500));
  ASSERT_TRUE(job.wait_watermark(job.wm(500)));
  // Partition 2 moves past partition 0: partition 0 (1000) now rules.
  ASSERT_TRUE(producer.send(2, 4000));
  ASSERT_TRUE(job.wait_watermark(job.wm(1000)));
  // Partition 0 moves ahead of everyone: partition 1 (3000) rules.
  ASSERT_TRUE(producer.send(0, 6000));
  ASSERT_TRUE(job.wait_watermark(job.wm(3000)));
  // Partition 1 is ahead, then a record of partition 0 behind its own maximum (monotonic per
  // partition: it changes nothing), then partition 2 (4000) rules until it moves.
  ASSERT_TRUE(producer.send(1, 7000));
  ASSERT_TRUE(job.wait_watermark(job.wm(4000)));
  ASSERT_TRUE(producer.send(0, 2000));
  ASSERT_TRUE(producer.send(2, 6500));
  ASSERT_TRUE(job.wait_watermark(job.wm(6000)));

  EXPECT_EQ(job.seen().all(), (std::vector<int64_t>{job.wm(500), job.wm(1000), job.wm(3000),
                                                    job.wm(4000), job.wm(6000)}));
  for (int p = 0; p < 3; ++p) EXPECT_FALSE(job.idle(p)) << "partition " << p;
}

// Partition 2 stops receiving data. It holds the watermark back while it is silent for less than
// the idle timeout (10 s of the job's clock), then goes idle and partitions 0 and 1 move it on;
// when it has data again it counts again (it holds time back again, no watermark goes back).
TEST_P(KafkaWatermarks, IdlePartitionStopsHoldingTheWatermarkBack) {
  auto broker = start_broker();
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(broker->create_topic("idle", 3).is_ok());
  WatermarkJob job(*broker, "idle", GetParam(), std::chrono::milliseconds(10'000));
  ASSERT_TRUE(job.started());
  TimedProducer producer(*broker, "idle");

  for (int p = 0; p < 3; ++p) ASSERT_TRUE(producer.send(p, 1000));
  ASSERT_TRUE(job.wait_watermark(job.wm(1000)));
  // Partitions 0 and 1 move on; 2 is silent.
  ASSERT_TRUE(producer.send(0, 5000));
  ASSERT_TRUE(producer.send(1, 5000));
  ASSERT_TRUE(job.wait_read(0, 5000));
  ASSERT_TRUE(job.wait_read(1, 5000));
  // 9999 ms later partitions 0 and 1 have data again; partition 2 has been silent one millisecond
  // less than the timeout and still holds the watermark at 1000.
  job.clock().advance_millis(9'999);
  ASSERT_TRUE(producer.send(0, 5001));
  ASSERT_TRUE(producer.send(1, 5002));
  ASSERT_TRUE(job.wait_read(0, 5001));
  ASSERT_TRUE(job.wait_read(1, 5002));
  EXPECT_EQ(job.seen().all(), (std::vector<int64_t>{job.wm(1000)}));
  EXPECT_FALSE(job.idle(2));
  // One more millisecond: partition 2 is idle (found on the source's next idle poll), partitions
  // 0 and 1 (silent for 1 ms) are not, and the slower of them rules.
  job.clock().advance_millis(1);
  ASSERT_TRUE(job.wait_watermark(job.wm(5001)));
  EXPECT_TRUE(job.idle(2));
  EXPECT_FALSE(job.idle(0));
  EXPECT_FALSE(job.idle(1));
  // Partition 2 comes back behind the watermark: it is active again and holds time back (the
  // watermark does not go back, nor forward while partition 2 is the slowest).
  ASSERT_TRUE(producer.send(2, 2000));
  ASSERT_TRUE(job.wait_for([&] { return !job.idle(2); }));
  ASSERT_TRUE(producer.send(0, 8000));
  ASSERT_TRUE(producer.send(1, 8000));
  ASSERT_TRUE(job.wait_read(0, 8000));
  ASSERT_TRUE(job.wait_read(1, 8000));
  EXPECT_EQ(job.seen().all(), (std::vector<int64_t>{job.wm(1000), job.wm(5001)}));
  // Once it moves past the others, they rule again.
  ASSERT_TRUE(producer.send(2, 9000));
  ASSERT_TRUE(job.wait_watermark(job.wm(8000)));
  EXPECT_EQ(job.seen().all(), (std::vector<int64_t>{job.wm(1000), job.wm(5001), job.wm(8000)}));
}

INSTANTIATE_TEST_SUITE_P(KafkaConnector, KafkaWatermarks,
                         ::testing::Values(EventTime::kRecordTimestamp, EventTime::kColumn),
                         [](const ::testing::TestParamInfo<EventTime>& info) {
                           return info.param == EventTime::kRecordTimestamp
                                      ? std::string("RecordTimestamp")
                                      : std::string("Column");
                         });

}  // namespace
}  // namespace sabot::connectors
