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
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "connectors/kafka_client.h"
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
      .property("session.timeout.ms", "3000")
      .property("fetch.wait.max.ms", "10");
}

// One row a member returned, in the order the test received them from all members.
struct Read {
  std::string member;
  int32_t part = 0;
  int64_t off = 0;
  int64_t id = 0;
};

// A partition assigned to a member: where it started, and where the guarantee says it must.
struct HandOver {
  int32_t part = 0;
  std::string from;  // the member that returned the partition's latest row ("" if none)
  std::string to;
  int64_t from_next = 0;  // after the partition's highest row anyone read (0 if none)
  int64_t start = 0;      // where the new owner starts (the connector's "assigned" event)
  int64_t expected = 0;   // the group's last successfully committed offset (0: earliest)
};

// What the members of one group returned, in the order the test received it, and what the
// connector reported of the group (KafkaGroupObserver): the offsets the coordinator accepted and
// where each assigned partition starts.
class Log {
 public:
  explicit Log(std::string group) : group_(std::move(group)) {}

  void on_event(const KafkaGroupEvent& e) {
    if (e.group != group_) return;
    if (e.what == "committed") {
      committed_[e.partition] = e.offset;
    } else if (e.what == "assigned") {
      HandOver h;
      h.part = e.partition;
      h.to = e.member;
      h.start = e.offset;
      if (auto it = last_.find(e.partition); it != last_.end()) {
        h.from = it->second.first;
        h.from_next = high_[e.partition] + 1;
      }
      auto c = committed_.find(e.partition);
      h.expected = c == committed_.end() ? 0 : c->second;
      handovers_.push_back(h);
      starts_[{e.member, e.partition}] = e.offset;
    }
  }

  void add(const std::string& member, const GroupGot& row) {
    reads_.push_back({member, row.part, row.off, row.id});
    distinct_.insert(row.id);
    const std::string where = member + " read partition " + std::to_string(row.part) + " offset " +
                              std::to_string(row.off);
    auto it = last_.find(row.part);
    if (auto s = starts_.find({member, row.part}); s != starts_.end()) {
      // The member's first row since the partition was assigned to it: at the assigned offset.
      if (row.off != s->second) {
        errors_.push_back(where + " first, but it was assigned at " + std::to_string(s->second));
      }
      starts_.erase(s);
    } else if (it == last_.end() || it->second.first != member) {
      errors_.push_back(where + " without an assignment event");
    } else if (row.off != it->second.second + 1) {
      errors_.push_back(where + " after " + std::to_string(it->second.second));
    }
    last_[row.part] = {member, row.off};
    if (auto h = high_.find(row.part); h == high_.end() || h->second < row.off) {
      high_[row.part] = row.off;
    }
  }

  int64_t distinct() const { return static_cast<int64_t>(distinct_.size()); }
  int64_t rows() const { return static_cast<int64_t>(reads_.size()); }
  const std::vector<Read>& reads() const { return reads_; }
  const std::vector<HandOver>& handovers() const { return handovers_; }
  const std::vector<std::string>& errors() const { return errors_; }
  // The member that returned the partition's latest row ("" if none has).
  std::string last_member(int32_t p) const {
    auto it = last_.find(p);
    return it == last_.end() ? std::string() : it->second.first;
  }

 private:
  std::string group_;
  std::vector<Read> reads_;
  std::set<int64_t> distinct_;
  std::map<int32_t, std::pair<std::string, int64_t>> last_;  // partition -> (member, offset)
  std::map<int32_t, int64_t> high_;                          // partition -> highest offset read
  std::map<int32_t, int64_t> committed_;
  std::map<std::pair<std::string, int32_t>, int64_t> starts_;  // assigned, no row read yet
  std::vector<HandOver> handovers_;
  std::vector<std::string> errors_;
};

// One member of the group: the reader a job's subtask would run. Under kAtLeastOnce it takes a
// checkpoint every 16 rows and completes the previous one then (one checkpoint in flight, as in
// a job), so that a partition that moves has rows read after its latest completed checkpoint.
struct Member {
  std::string name;
  std::unique_ptr<runtime::SourceReader> reader;
  int64_t rows = 0;
  int64_t rows_at_checkpoint = 0;
  int64_t next_checkpoint = 1;
  std::optional<CheckpointId> in_flight;

  // Polls once; returns the rows read.
  int64_t poll(Log& log, bool checkpoints) {
    auto p = reader->poll(16);
    EXPECT_TRUE(p.is_ok()) << name << ": " << p.status().to_string();
    if (!p.is_ok()) return 0;
    int64_t n = 0;
    if (p->kind == runtime::SourcePoll::Kind::kBatch) {
      auto got = read_rows<GroupGot>(p->batch);
      EXPECT_TRUE(got.is_ok()) << got.status().to_string();
      if (got.is_ok()) {
        for (const GroupGot& row : *got) log.add(name, row);
        n = static_cast<int64_t>(got->size());
        rows += n;
      }
    }
    if (checkpoints && rows - rows_at_checkpoint >= 16) checkpoint();
    return n;
  }
  void checkpoint() {
    rows_at_checkpoint = rows;
    auto positions = reader->snapshot_positions();
    EXPECT_TRUE(positions.is_ok()) << positions.status().to_string();
    if (!positions.is_ok()) return;
    const CheckpointId id(next_checkpoint++);
    reader->positions_taken(id, *positions);
    if (in_flight) {
      Status s = reader->notify_checkpoint_complete(*in_flight);
      EXPECT_TRUE(s.is_ok()) << s.to_string();
    }
    in_flight = id;
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
  // client.id names the member in the connector's KafkaGroupEvents.
  auto source = topic_source(group_options(broker, topic, group).property("client.id", name));
  EXPECT_TRUE(source.is_ok()) << source.status().to_string();
  runtime::OperatorContext ctx;
  ctx.operator_name = name;
  ctx.uid = name;
  ctx.delivery = delivery;
  Member m;
  m.name = name;
  if (!source.is_ok()) return m;
  auto reader = (*source)->open_reader({}, ctx);
  EXPECT_TRUE(reader.is_ok()) << reader.status().to_string();
  if (reader.is_ok()) m.reader = std::move(*reader);
  return m;
}

// Produces (up to `limit`, at most 40 records ahead of the distinct records the members have
// read, so that a rebalance always finds records not yet read) and polls every member until
// `done` holds. False on timeout (a failure guard only), with the state in the failure message.
bool run_until(Producer& producer, int64_t limit, Log& log, bool checkpoints,
               const std::vector<Member*>& members, const std::function<bool()>& done,
               const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + kBound;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::string state;
      for (const Member* m : members) {
        state += " " + m->name + ": " + std::to_string(m->rows) + " rows, at '" +
                 m->reader->position() + "';";
      }
      ADD_FAILURE() << "timed out waiting for " << what << "; produced " << producer.produced()
                    << ", read " << log.distinct() << " distinct;" << state;
      return false;
    }
    while (producer.produced() < limit && producer.produced() - log.distinct() < 40) {
      producer.produce_next();
    }
    int64_t read = 0;
    for (Member* m : members) read += m->poll(log, checkpoints);
    if (read == 0) std::this_thread::yield();
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

// Two members of one group over 4 partitions: a reads alone, b joins while a reads (two of a's
// partitions move to b), then a leaves (its two move to b too), then every record produced is
// read. No record may be lost, and a record may be read twice only where the guarantee allows:
// each partition's new owner must start exactly at the group's last successfully committed
// offset (as the connector reports the coordinator's answers), which must not be past the
// previous owner's last row; each owner reads its partitions without gaps or repeats. kNone
// commits the offset after the rows handed over on each revoke, so when that commit succeeds the
// next owner continues right after the previous one; kAtLeastOnce commits the latest completed
// checkpoint's offset, so exactly the rows read after it are read again.
void join_and_leave(runtime::DeliveryGuarantee delivery, const std::string& group) {
  auto broker = start_broker();
  ASSERT_NE(broker, nullptr);
  Producer producer(*broker, "events");
  Log log(group);
  set_kafka_group_observer([&log](const KafkaGroupEvent& e) { log.on_event(e); });
  struct Unset {
    ~Unset() { set_kafka_group_observer(nullptr); }
  } unset;
  const bool checkpoints = delivery == runtime::DeliveryGuarantee::kAtLeastOnce;
  int64_t limit = std::numeric_limits<int64_t>::max();
  Member a = open_member(*broker, "events", group, "a", delivery);
  ASSERT_NE(a.reader, nullptr);
  ASSERT_TRUE(run_until(
      producer, limit, log, checkpoints, {&a},
      [&] { return static_cast<int>(a.partitions().size()) == kPartitions && a.rows >= 40; },
      "a to own every partition"));

  Member b = open_member(*broker, "events", group, "b", delivery);
  ASSERT_NE(b.reader, nullptr);
  const int64_t a_before = a.rows;
  ASSERT_TRUE(run_until(
      producer, limit, log, checkpoints, {&a, &b},
      [&] {
        const std::set<int> pa = a.partitions();
        const std::set<int> pb = b.partitions();
        return !pa.empty() && !pb.empty() && all_partitions(pa, pb) && b.rows >= 40 &&
               a.rows >= a_before + 40;
      },
      "b to join and both to read"));

  // a leaves: closing its reader revokes (and commits) its partitions and leaves the group.
  a.reader.reset();
  ASSERT_TRUE(run_until(
      producer, limit, log, checkpoints, {&b},
      [&] {
        if (static_cast<int>(b.partitions().size()) != kPartitions) return false;
        for (int p = 0; p < kPartitions; ++p) {
          if (log.last_member(p) != "b") return false;
        }
        return true;
      },
      "b to take over a's partitions and read from them"));

  limit = producer.produced();
  ASSERT_TRUE(run_until(
      producer, limit, log, checkpoints, {&b}, [&] { return log.distinct() == limit; },
      "every record produced to be read"));
  b.reader.reset();

  // Every record read, each where the producer put it (id i at offset i / 4 of partition i % 4).
  std::set<int64_t> ids;
  for (const Read& r : log.reads()) {
    ids.insert(r.id);
    EXPECT_EQ(r.part, r.id % kPartitions) << "id " << r.id;
    EXPECT_EQ(r.off, r.id / kPartitions) << "id " << r.id;
  }
  EXPECT_EQ(static_cast<int64_t>(ids.size()), limit);
  EXPECT_TRUE(ids.empty() || (*ids.begin() == 0 && *ids.rbegin() == limit - 1));
  for (const std::string& e : log.errors()) ADD_FAILURE() << e;
  // Each owner started at the last successful commit, never past the first record nobody had
  // read (with each owner reading on without gaps or repeats, above, the records read twice are
  // those between the two).
  int moved = 0;
  int exact = 0;
  for (const HandOver& h : log.handovers()) {
    const std::string what = "partition " + std::to_string(h.part) + " from '" + h.from +
                             "' (next " + std::to_string(h.from_next) + ") to '" + h.to + "'";
    EXPECT_EQ(h.start, h.expected) << what;
    EXPECT_LE(h.start, h.from_next) << what << ": records skipped";
    if (!h.from.empty()) {
      ++moved;
      if (h.start == h.from_next) ++exact;
    }
  }
  EXPECT_GE(moved, 4);  // two partitions move when b joins, two when a leaves
  std::printf(
      "[ group ] %lld records, %d hand-overs (%d right after the previous owner), %lld "
      "read twice\n",
      static_cast<long long>(limit), moved, exact,
      static_cast<long long>(log.rows() - log.distinct()));
}

TEST(KafkaGroup, MembersJoinAndLeaveWithoutLoss) {
  join_and_leave(runtime::DeliveryGuarantee::kNone, "g-none");
}

TEST(KafkaGroup, AtLeastOnceReReadsOnlyAfterTheCommittedCheckpoint) {
  join_and_leave(runtime::DeliveryGuarantee::kAtLeastOnce, "g-alo");
}

}  // namespace
}  // namespace sabot::connectors
