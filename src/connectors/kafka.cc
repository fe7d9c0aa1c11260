// kafka:// sources and sinks over librdkafka, and the development broker (its mock cluster).
#include "sabot/connectors/kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "connectors/kafka_client.h"
#include "connectors/murmur2.h"
#include "connectors/topic_reader.h"
#include "sabot/columnar/builder.h"
#include "sabot/connectors/topic_scheme.h"
#include "sabot/state/snapshot.h"

extern char** environ;

namespace sabot::connectors {

using columnar::Array;
using columnar::RecordBatch;
using columnar::SchemaPtr;
using runtime::Operator;
using runtime::OperatorContext;
using runtime::Output;
using runtime::Source;
using runtime::SourceReader;

namespace {

constexpr int kMetadataTimeoutMs = 10000;
constexpr int kFlushTimeoutMs = 60000;
constexpr int kTxnTimeoutMs = 60000;
// Consumer-group mode: how long a revoke's synchronous commit may wait for its result, and how
// long closing a group consumer (revoke, commit, LeaveGroup) may take.
constexpr int kGroupCommitTimeoutMs = 10000;
constexpr int kGroupCloseTimeoutMs = 30000;

std::mutex observer_mu;
KafkaTxnObserver& observer_slot() {
  static KafkaTxnObserver* o = new KafkaTxnObserver();
  return *o;
}
void observe(const std::string& id, std::string_view call) {
  std::lock_guard<std::mutex> lock(observer_mu);
  if (observer_slot()) observer_slot()(id, call);
}
KafkaGroupObserver& group_observer_slot() {
  static KafkaGroupObserver* o = new KafkaGroupObserver();
  return *o;
}
void observe_group(const KafkaGroupEvent& event) {
  std::lock_guard<std::mutex> lock(observer_mu);
  if (group_observer_slot()) group_observer_slot()(event);
}

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using RdKafkaPtr = std::unique_ptr<rd_kafka_t, RdKafkaDeleter>;
struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
struct TplDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using TplPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, TplDeleter>;
struct ErrorDeleter {
  void operator()(rd_kafka_error_t* e) const { rd_kafka_error_destroy(e); }
};
using ErrorPtr = std::unique_ptr<rd_kafka_error_t, ErrorDeleter>;

Status kafka_status(std::string_view what, rd_kafka_resp_err_t err) {
  return Status::io_error(std::string(what) + ": " + rd_kafka_err2str(err));
}

// A configuration with the bootstrap servers, the environment's and the explicit properties, then
// `fixed` (what the connector needs, e.g. enable.auto.commit=false).
Result<ConfPtr> make_conf(const std::string& bootstrap, const ClientProperties& props,
                          const ClientProperties& fixed) {
  ConfPtr conf(rd_kafka_conf_new());
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) -> Status {
    if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      return Status::invalid_argument("kafka property '" + k + "'='" + v + "': " + err);
    }
    return Status::ok();
  };
  SABOT_RETURN_IF_ERROR(set("bootstrap.servers", bootstrap));
  // Warnings such as the mock cluster's "allow.auto.create.topics not supported" are noise in a
  // job's log; errors stay. A log_level property overrides this.
  SABOT_RETURN_IF_ERROR(set("log_level", "3"));
  for (const auto& [k, v] : kafka_properties(props)) SABOT_RETURN_IF_ERROR(set(k, v));
  for (const auto& [k, v] : fixed) SABOT_RETURN_IF_ERROR(set(k, v));
  return conf;
}

Result<RdKafkaPtr> make_client(rd_kafka_type_t type, ConfPtr conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof err);
  if (rk == nullptr) return Status::invalid_argument(std::string("kafka client: ") + err);
  (void)conf.release();  // owned by rk now
  return RdKafkaPtr(rk);
}

// The partition count of `topic`; NotFound when the cluster does not know it.
Result<int32_t> partition_count(rd_kafka_t* rk, const std::string& topic) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, kMetadataTimeoutMs);
  rd_kafka_topic_destroy(rkt);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka_status("metadata of '" + topic + "'", err);
  int32_t n = 0;
  rd_kafka_resp_err_t terr = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (topic == md->topics[i].topic) {
      terr = md->topics[i].err;
      n = md->topics[i].partition_cnt;
    }
  }
  rd_kafka_metadata_destroy(md);
  if (terr != RD_KAFKA_RESP_ERR_NO_ERROR || n == 0) {
    return Status::not_found("kafka topic '" + topic + "': " + rd_kafka_err2str(terr));
  }
  return n;
}

std::string headers_json(rd_kafka_message_t* m) {
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || hdrs == nullptr) {
    return "{}";
  }
  std::string out = "{";
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  for (size_t i = 0;
       rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
    if (i > 0) out += ',';
    out += '"';
    out += json_escaped(name);
    out += "\":";
    if (value == nullptr) {
      out += "null";
    } else {
      out += '"';
      out += json_escaped(std::string_view(static_cast<const char*>(value), size));
      out += '"';
    }
  }
  out += '}';
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reader: a consumer with explicitly assigned partitions and positions kept here (the offsets a
// checkpoint stores), never auto-committed. In consumer-group mode it subscribes instead, and the
// rebalance callback (on the polling thread, inside rd_kafka_consumer_poll) adds and removes
// partitions: each partition added starts at the group's committed offset (else at `start`); each
// one removed first commits its processed offset, synchronously, so that its next owner continues
// right after it (docs/kafka.md, "Consumer groups").

class KafkaRecordReader final : public RecordReader {
 public:
  struct Options {
    std::string bootstrap;
    std::string topic;
    ClientProperties properties;
    std::string group_id;
    bool stop_at_end = false;
    bool headers = false;
    // Consumer-group mode: subscribe; partitions come and go with rebalances.
    bool group_mode = false;
    // Group mode: a partition's processed offset is the one of the latest completed checkpoint
    // (at-least-once jobs: their sinks flush at barriers). False: the offset after the records
    // handed to the job.
    bool commit_checkpointed = false;
    // Group mode: where partitions without a committed offset start.
    StartPosition start = StartPosition::earliest();
  };
  // Group mode: the offset of the first record polled from `partition` but not yet handed to
  // the job by the layer above (TopicRecordSourceReader's pending rows), if any.
  using PendingBase = std::function<std::optional<int64_t>(int32_t partition)>;

  static Result<std::unique_ptr<KafkaRecordReader>> open(
      Options options, const std::vector<PartitionAssignment>& assignments) {
    // auto.offset.reset=error: a position the partition no longer holds (retention) fails the
    // job rather than silently skipping records.
    const ClientProperties fixed = {{"group.id", options.group_id},
                                    {"enable.auto.commit", "false"},
                                    {"enable.auto.offset.store", "false"},
                                    {"enable.partition.eof", "false"},
                                    {"auto.offset.reset", "error"}};
    SABOT_ASSIGN_OR_RETURN(ConfPtr conf, make_conf(options.bootstrap, options.properties, fixed));
    SABOT_ASSIGN_OR_RETURN(RdKafkaPtr rk, make_client(RD_KAFKA_CONSUMER, std::move(conf)));
    rd_kafka_poll_set_consumer(rk.get());
    std::unique_ptr<KafkaRecordReader> r(new KafkaRecordReader(std::move(options), std::move(rk)));
    for (const PartitionAssignment& a : assignments) {
      int64_t low = 0;
      int64_t high = 0;
      SABOT_RETURN_IF_ERROR(r->watermarks(a.partition.value(), &low, &high));
      SABOT_ASSIGN_OR_RETURN(int64_t pos, r->start_offset(a.partition.value(), a.start, low, high));
      r->assigned_.push_back({a.partition.value(), pos, r->options_.stop_at_end ? high : -1});
    }
    return r;
  }

  // Consumer-group mode: subscribes at the first poll. Cooperative-sticky assignment unless the
  // properties name another strategy (eager ones are handled too).
  static Result<std::unique_ptr<KafkaRecordReader>> open_group(Options options,
                                                               PendingBase pending_base) {
    options.group_mode = true;
    ClientProperties props = options.properties;
    if (!kafka_properties(props).contains("partition.assignment.strategy")) {
      props["partition.assignment.strategy"] = "cooperative-sticky";
    }
    // The processed offsets (handed over, or of the latest completed checkpoint) are stored and
    // auto-committed, and committed synchronously on each revoke. Never rd_kafka_commit outside
    // the rebalance callback: a commit sent while this member is rejoining waits behind its
    // JoinGroup and comes back ILLEGAL_GENERATION, which librdkafka 2.0.2 takes for a lost
    // assignment (everything revoked without a commit, read again from older commits).
    // librdkafka's auto-commit skips its turns while the member is rejoining.
    const ClientProperties fixed = {{"group.id", options.group_id},
                                    {"enable.auto.commit", "true"},
                                    {"enable.auto.offset.store", "false"},
                                    {"enable.partition.eof", "false"},
                                    {"auto.offset.reset", "error"}};
    SABOT_ASSIGN_OR_RETURN(ConfPtr conf, make_conf(options.bootstrap, props, fixed));
    std::unique_ptr<KafkaRecordReader> r(new KafkaRecordReader(std::move(options), nullptr));
    r->pending_base_ = std::move(pending_base);
    rd_kafka_conf_set_opaque(conf.get(), r.get());
    rd_kafka_conf_set_rebalance_cb(conf.get(), &KafkaRecordReader::on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf.get(), &KafkaRecordReader::on_commit);
    char client_id[256];
    size_t client_id_size = sizeof client_id;
    if (rd_kafka_conf_get(conf.get(), "client.id", client_id, &client_id_size) ==
        RD_KAFKA_CONF_OK) {
      r->client_id_ = client_id;
    }
    SABOT_ASSIGN_OR_RETURN(r->rk_, make_client(RD_KAFKA_CONSUMER, std::move(conf)));
    rd_kafka_poll_set_consumer(r->rk_.get());
    return r;
  }

  ~KafkaRecordReader() override {
    if (!rk_) return;
    if (!options_.group_mode) {
      rd_kafka_consumer_close(rk_.get());
      return;
    }
    // Group mode: leaves the group, revoking (and committing) the partitions first, within
    // kGroupCloseTimeoutMs; past it the client is destroyed without waiting any longer.
    const bool closed = close_group(rk_.get());
    rd_kafka_t* rk = rk_.release();
    rd_kafka_destroy_flags(rk, closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  }

  Status poll_into(int64_t max_records, std::chrono::milliseconds timeout,
                   PollResult& out) override {
    out.batches.clear();
    out.end_of_input = false;
    if (!assigned_flag_) SABOT_RETURN_IF_ERROR(options_.group_mode ? subscribe() : assign());
    if (options_.group_mode) store_handed_offsets();
    if (at_end()) {
      out.end_of_input = true;
      return Status::ok();
    }
    int64_t taken = 0;
    int wait_ms = static_cast<int>(timeout.count());
    while (taken < max_records) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_.get(), wait_ms);
      wait_ms = 0;
      if (!rebalance_error_.is_ok()) {
        if (m != nullptr) rd_kafka_message_destroy(m);
        return rebalance_error_;
      }
      if (m == nullptr) break;
      std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> guard(
          m, rd_kafka_message_destroy);
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
        char reason[512];
        if (rd_kafka_fatal_error(rk_.get(), reason, sizeof reason) != RD_KAFKA_RESP_ERR_NO_ERROR) {
          return Status::io_error("kafka topic '" + options_.topic + "': fatal: " + reason);
        }
        // librdkafka retries transient errors itself (broker down, leader change); a topic or
        // partition that does not exist is the user's.
        if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
            m->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
            m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
            m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
            m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
            m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
          return kafka_status("kafka topic '" + options_.topic + "'", m->err);
        }
        continue;
      }
      Assigned* a = find_assigned(m->partition);
      if (a == nullptr || m->offset < a->position) continue;  // stale after a seek
      if (a->stop >= 0 && m->offset >= a->stop) continue;
      PartitionState& ps = state_for(a->partition);
      if (ps.count > 0 && m->offset != ps.base + ps.count) finish_partition(ps, out);
      if (ps.count == 0) ps.base = m->offset;
      if (m->key == nullptr) {
        ps.keys.append_null();
      } else {
        ps.keys.append(std::string_view(static_cast<const char*>(m->key), m->key_len));
      }
      if (m->payload == nullptr) {
        ps.values.append_null();
      } else {
        ps.values.append(std::string_view(static_cast<const char*>(m->payload), m->len));
      }
      rd_kafka_timestamp_type_t tstype;
      const int64_t ts = rd_kafka_message_timestamp(m, &tstype);
      ps.timestamps.append(ts < 0 ? 0 : ts);
      if (options_.headers) ps.headers.append(headers_json(m));
      ++ps.count;
      a->position = m->offset + 1;
      ++taken;
    }
    for (auto& ps : states_) finish_partition(*ps, out);
    out.end_of_input = at_end();
    return Status::ok();
  }

  Result<int64_t> position(PartitionId partition) const override {
    for (const Assigned& a : assigned_) {
      if (a.partition == partition.value()) return a.position;
    }
    return not_assigned(partition);
  }

  Status seek(PartitionId partition, int64_t offset) override {
    // Group mode: positions come from the group's committed offsets (a restored at-least-once
    // job continues from them), not from the checkpoint.
    if (options_.group_mode) return Status::ok();
    Assigned* a = find_assigned(partition.value());
    if (a == nullptr) return not_assigned(partition);
    if (offset < 0) {
      return Status::out_of_range("offset " + std::to_string(offset) + " of partition " +
                                  std::to_string(partition.value()) + " of kafka topic '" +
                                  options_.topic + "'");
    }
    a->position = offset;
    if (assigned_flag_) return assign();  // re-assign at the new positions
    return Status::ok();
  }

  Result<int64_t> end_offset(PartitionId partition) const override {
    int64_t low = 0;
    int64_t high = 0;
    SABOT_RETURN_IF_ERROR(watermarks(partition.value(), &low, &high));
    return high;
  }

  // librdkafka's high watermark from the last fetch response (no request to the broker).
  Result<int64_t> cached_end_offset(PartitionId partition) const override {
    int64_t low = 0;
    int64_t high = -1;
    rd_kafka_resp_err_t err = rd_kafka_get_watermark_offsets(rk_.get(), options_.topic.c_str(),
                                                             partition.value(), &low, &high);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || high < 0) return int64_t{-1};
    return high;
  }

  std::vector<PartitionId> assignment() const override {
    std::vector<PartitionId> out;
    for (const Assigned& a : assigned_) out.push_back(PartitionId(a.partition));
    return out;
  }

  void wakeup() override { rd_kafka_yield(rk_.get()); }

  // Commits `positions` (partition -> next offset) of a completed checkpoint to the consumer
  // group, asynchronously. Group mode: only for partitions still assigned (a partition that moved
  // may already be further on at its new owner), and only when commits follow checkpoints; the
  // offsets are stored for librdkafka's auto-commit (never committed here, see open_group).
  Status commit(const std::vector<runtime::SplitPosition>& positions) {
    if (options_.group_mode && !options_.commit_checkpointed) return Status::ok();
    TplPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(positions.size())));
    for (const auto& p : positions) {
      SABOT_ASSIGN_OR_RETURN(int64_t off, runtime::decode_position(p, "kafka topic"));
      if (options_.group_mode) {
        if (find_assigned(p.split) == nullptr) continue;
        checkpointed_[p.split] = off;
      }
      rd_kafka_topic_partition_list_add(list.get(), options_.topic.c_str(), p.split)->offset = off;
    }
    if (list->cnt == 0) return Status::ok();
    if (options_.group_mode) {
      // A partition revoked meanwhile is refused; its offset was committed on revoke.
      (void)rd_kafka_offsets_store(rk_.get(), list.get());
      return Status::ok();
    }
    rd_kafka_resp_err_t err = rd_kafka_commit(rk_.get(), list.get(), 1);
    // A group coordinator that is away does not fail the job: the next checkpoint commits again.
    (void)err;
    return Status::ok();
  }

 private:
  struct Assigned {
    int32_t partition;
    int64_t position;     // next offset to return
    int64_t stop;         // stop_at_end: the high watermark at open; -1: none
    int64_t stored = -1;  // group mode: the handed offset last stored for auto-commit
  };
  struct PartitionState {
    int32_t partition = 0;
    int64_t base = 0;
    int64_t count = 0;
    columnar::BinaryBuilder keys{columnar::binary()};
    columnar::BinaryBuilder values{columnar::binary()};
    columnar::Int64Builder timestamps{columnar::timestamp(columnar::TimeUnit::kMilli)};
    columnar::BinaryBuilder headers{columnar::utf8()};
  };

  KafkaRecordReader(Options options, RdKafkaPtr rk)
      : options_(std::move(options)), rk_(std::move(rk)) {}

  Status not_assigned(PartitionId partition) const {
    return Status::invalid_argument("partition " + std::to_string(partition.value()) +
                                    " of kafka topic '" + options_.topic +
                                    "' is not assigned to this reader");
  }

  Assigned* find_assigned(int32_t partition) {
    for (Assigned& a : assigned_) {
      if (a.partition == partition) return &a;
    }
    return nullptr;
  }
  PartitionState& state_for(int32_t partition) {
    for (auto& s : states_) {
      if (s->partition == partition) return *s;
    }
    states_.push_back(std::make_unique<PartitionState>());
    states_.back()->partition = partition;
    return *states_.back();
  }
  void finish_partition(PartitionState& ps, PollResult& out) {
    if (ps.count == 0) return;
    PartitionBatch pb;
    pb.partition = PartitionId(ps.partition);
    pb.base_offset = ps.base;
    pb.records = RecordBatch::make_unchecked(
        record_schema(), {ps.keys.finish(), ps.values.finish(), ps.timestamps.finish()}, ps.count);
    if (options_.headers) pb.headers = ps.headers.finish();
    out.batches.push_back(std::move(pb));
    ps.count = 0;
  }

  bool at_end() const {
    if (!options_.stop_at_end) return false;
    for (const Assigned& a : assigned_) {
      if (a.position < a.stop) return false;
    }
    return true;
  }

  Status assign() {
    TplPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(assigned_.size())));
    for (const Assigned& a : assigned_) {
      rd_kafka_topic_partition_list_add(list.get(), options_.topic.c_str(), a.partition)->offset =
          a.position;
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(rk_.get(), list.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_status("assigning kafka topic '" + options_.topic + "'", err);
    }
    assigned_flag_ = true;
    return Status::ok();
  }

  Status watermarks(int32_t partition, int64_t* low, int64_t* high) const {
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
        rk_.get(), options_.topic.c_str(), partition, low, high, kMetadataTimeoutMs);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_status("offsets of partition " + std::to_string(partition) +
                              " of kafka topic '" + options_.topic + "'",
                          err);
    }
    return Status::ok();
  }

  // Where a partition starts, given its offsets [low, high].
  Result<int64_t> start_offset(int32_t partition, const StartPosition& start, int64_t low,
                               int64_t high) {
    switch (start.kind) {
      case StartPosition::Kind::kEarliest:
        return low;
      case StartPosition::Kind::kLatest:
        return high;
      case StartPosition::Kind::kOffset:
        if (start.offset < low || start.offset > high) {
          return Status::out_of_range("start offset " + std::to_string(start.offset) +
                                      " of partition " + std::to_string(partition) +
                                      " of kafka topic '" + options_.topic + "' is outside [" +
                                      std::to_string(low) + ", " + std::to_string(high) + "]");
        }
        return start.offset;
      case StartPosition::Kind::kTimestamp: {
        SABOT_ASSIGN_OR_RETURN(int64_t pos, offset_for_time(partition, start.offset));
        return pos < 0 ? high : pos;  // -1: no record at or after the time
      }
    }
    return low;
  }

  Result<int64_t> offset_for_time(int32_t partition, int64_t millis) {
    TplPtr list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), options_.topic.c_str(), partition)->offset =
        millis;
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk_.get(), list.get(), kMetadataTimeoutMs);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = list->elems[0].err;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_status(
          "offset for time " + std::to_string(millis) + " of kafka topic '" + options_.topic + "'",
          err);
    }
    return list->elems[0].offset;
  }

  // ---- consumer-group mode ----

  Status subscribe() {
    TplPtr topics(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(topics.get(), options_.topic.c_str(), RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_.get(), topics.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_status("subscribing to kafka topic '" + options_.topic + "' in group '" +
                              options_.group_id + "'",
                          err);
    }
    assigned_flag_ = true;
    return Status::ok();
  }

  // The offset after the last record of `a` handed to the job: records polled into a partition
  // batch or pending above are not handed yet.
  int64_t handed(const Assigned& a) const {
    int64_t at = a.position;
    for (const auto& ps : states_) {
      if (ps->partition == a.partition && ps->count > 0) at = std::min(at, ps->base);
    }
    if (pending_base_) {
      if (std::optional<int64_t> p = pending_base_(a.partition)) at = std::min(at, *p);
    }
    return at;
  }

  // Handed-over mode: stores the handed offsets for librdkafka's auto-commit.
  void store_handed_offsets() {
    if (options_.commit_checkpointed || assigned_.empty()) return;
    TplPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(assigned_.size())));
    for (Assigned& a : assigned_) {
      const int64_t at = handed(a);
      if (at == a.stored) continue;
      a.stored = at;
      rd_kafka_topic_partition_list_add(list.get(), options_.topic.c_str(), a.partition)->offset =
          at;
    }
    // A partition revoked meanwhile is refused; its offset was committed on revoke.
    if (list->cnt > 0) (void)rd_kafka_offsets_store(rk_.get(), list.get());
  }

  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* partitions, void* opaque) {
    auto* r = static_cast<KafkaRecordReader*>(opaque);
    const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    Status st = Status::ok();
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      st = r->partitions_assigned(partitions);
      ErrorPtr e(nullptr);
      rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;
      if (cooperative) {
        e.reset(rd_kafka_incremental_assign(rk, partitions));
      } else {
        aerr = rd_kafka_assign(rk, partitions);
      }
      if (st.is_ok() && e != nullptr) {
        st = Status::io_error("kafka group '" + r->options_.group_id +
                              "': assigning partitions: " + rd_kafka_error_string(e.get()));
      } else if (st.is_ok() && aerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        st = kafka_status("kafka group '" + r->options_.group_id + "': assigning partitions", aerr);
      }
    } else {
      // Revoked (or an error: everything is dropped, the group assigns again).
      r->partitions_revoked(rk, partitions);
      if (cooperative) {
        ErrorPtr e(rd_kafka_incremental_unassign(rk, partitions));
      } else {
        (void)rd_kafka_assign(rk, nullptr);
      }
    }
    if (r->rebalance_error_.is_ok() && !st.is_ok()) r->rebalance_error_ = std::move(st);
  }

  // Each partition starts at the group's committed offset, else at `start`.
  Status partitions_assigned(rd_kafka_topic_partition_list_t* partitions) {
    TplPtr committed(rd_kafka_topic_partition_list_copy(partitions));
    rd_kafka_resp_err_t err = rd_kafka_committed(rk_.get(), committed.get(), kMetadataTimeoutMs);
    Status st =
        err == RD_KAFKA_RESP_ERR_NO_ERROR
            ? Status::ok()
            : kafka_status("committed offsets of kafka group '" + options_.group_id + "'", err);
    for (int i = 0; i < partitions->cnt; ++i) {
      const int32_t p = partitions->elems[i].partition;
      int64_t pos = st.is_ok() ? committed->elems[i].offset : RD_KAFKA_OFFSET_INVALID;
      if (st.is_ok() && pos < 0) {
        int64_t low = 0;
        int64_t high = 0;
        st = watermarks(p, &low, &high);
        if (st.is_ok()) {
          auto s = start_offset(p, options_.start, low, high);
          if (s.is_ok()) {
            pos = *s;
          } else {
            st = s.status();
          }
        }
      }
      // On an error the partition is still assigned (the callback must), from its committed
      // offset, and the next poll fails the task.
      partitions->elems[i].offset = pos;
      if (find_assigned(p) == nullptr) assigned_.push_back({p, pos, -1, pos});
      if (st.is_ok()) report("assigned", p, pos);
    }
    return st;
  }

  // Commits the processed offsets of the revoked partitions (synchronously: the next owner
  // fetches them when its assignment arrives) and forgets what was polled from them.
  void partitions_revoked(rd_kafka_t* rk, rd_kafka_topic_partition_list_t* partitions) {
    // librdkafka's auto-commit also commits the stored offsets of the partitions it removes:
    // they must not be older than the ones committed here.
    store_handed_offsets();
    TplPtr list(rd_kafka_topic_partition_list_new(partitions->cnt));
    for (int i = 0; i < partitions->cnt; ++i) {
      const int32_t p = partitions->elems[i].partition;
      Assigned* a = find_assigned(p);
      if (a == nullptr) continue;
      int64_t at = handed(*a);
      if (options_.commit_checkpointed) {
        auto it = checkpointed_.find(p);
        at = it == checkpointed_.end() ? -1 : it->second;
      }
      if (at >= 0) {
        rd_kafka_topic_partition_list_add(list.get(), options_.topic.c_str(), p)->offset = at;
      }
      for (auto& ps : states_) {
        if (ps->partition == p && ps->count > 0) discard(*ps);
      }
      checkpointed_.erase(p);
      assigned_.erase(assigned_.begin() + (a - assigned_.data()));
    }
    // When the assignment was lost (the group moved on without this consumer), a commit is
    // refused; the next owner then reads from the last commit again (at-least-once). A failed
    // commit has the same effect.
    if (list->cnt > 0 && !rd_kafka_assignment_lost(rk)) {
      (void)commit_sync(rk, list.get());
    }
  }

  // Commits `list` and waits for the result, at most kGroupCommitTimeoutMs. Not retried: in the
  // revoke callback this member has synced the current generation, so REBALANCE_IN_PROGRESS means
  // another member started a new join, which the coordinator completes only once this member
  // rejoins too, i.e. after the callback returns (retries measured against the mock cluster:
  // refused for as long as they were tried, then ILLEGAL_GENERATION).
  rd_kafka_resp_err_t commit_sync(rd_kafka_t* rk, const rd_kafka_topic_partition_list_t* list) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(kGroupCommitTimeoutMs);
    std::unique_ptr<rd_kafka_queue_t, void (*)(rd_kafka_queue_t*)> q(rd_kafka_queue_new(rk),
                                                                     rd_kafka_queue_destroy);
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(rk, list, q.get(), nullptr, nullptr);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return err;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return RD_KAFKA_RESP_ERR__TIMED_OUT;
      rd_kafka_event_t* ev = rd_kafka_queue_poll(q.get(), static_cast<int>(left.count()));
      if (ev == nullptr) return RD_KAFKA_RESP_ERR__TIMED_OUT;
      const bool result = rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT;
      if (result) {
        err = rd_kafka_event_error(ev);
        const rd_kafka_topic_partition_list_t* done = rd_kafka_event_topic_partition_list(ev);
        report_committed(err, done);
        for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && done != nullptr && i < done->cnt;
             ++i) {
          err = done->elems[i].err;
        }
      }
      rd_kafka_event_destroy(ev);
      if (result) return err;
    }
  }

  // Closes a group consumer through rd_kafka_consumer_close_queue, serving the rebalance events
  // of the close (revoke: commit) here, within kGroupCloseTimeoutMs. False when the time ran out.
  bool close_group(rd_kafka_t* rk) {
    std::unique_ptr<rd_kafka_queue_t, void (*)(rd_kafka_queue_t*)> q(rd_kafka_queue_new(rk),
                                                                     rd_kafka_queue_destroy);
    ErrorPtr e(rd_kafka_consumer_close_queue(rk, q.get()));
    if (e != nullptr) return false;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(kGroupCloseTimeoutMs);
    while (!rd_kafka_consumer_closed(rk)) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      rd_kafka_event_t* ev = rd_kafka_queue_poll(q.get(), 100);
      if (ev == nullptr) continue;
      if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE) {
        on_rebalance(rk, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev), this);
      } else if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT) {
        report_committed(rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev));
      }
      rd_kafka_event_destroy(ev);
    }
    return true;
  }

  // librdkafka's auto-commit results (and those of commits without a queue of their own).
  static void on_commit(rd_kafka_t* /*rk*/, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t* offsets, void* opaque) {
    static_cast<KafkaRecordReader*>(opaque)->report_committed(err, offsets);
  }
  void report_committed(rd_kafka_resp_err_t err, const rd_kafka_topic_partition_list_t* offsets) {
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || offsets == nullptr) return;
    for (int i = 0; i < offsets->cnt; ++i) {
      const rd_kafka_topic_partition_t& tp = offsets->elems[i];
      if (tp.err == RD_KAFKA_RESP_ERR_NO_ERROR && tp.offset >= 0) {
        report("committed", tp.partition, tp.offset);
      }
    }
  }
  void report(std::string_view what, int32_t partition, int64_t offset) const {
    observe_group({.group = options_.group_id,
                   .member = client_id_,
                   .what = what,
                   .partition = partition,
                   .offset = offset});
  }

  static void discard(PartitionState& ps) {
    (void)ps.keys.finish();
    (void)ps.values.finish();
    (void)ps.timestamps.finish();
    (void)ps.headers.finish();
    ps.count = 0;
  }

  Options options_;
  RdKafkaPtr rk_;
  std::vector<Assigned> assigned_;
  std::vector<std::unique_ptr<PartitionState>> states_;
  bool assigned_flag_ = false;
  // Group mode.
  PendingBase pending_base_;
  // Partition -> its offset in the latest completed checkpoint (commit_checkpointed).
  std::map<int32_t, int64_t> checkpointed_;
  // The first error of a rebalance callback, returned by the poll that ran it.
  Status rebalance_error_ = Status::ok();
  // The consumer's client.id (group mode: named in KafkaGroupEvents).
  std::string client_id_;
};

// ---------------------------------------------------------------------------------------------
// Writer: a producer (idempotent, or transactional) that places keyed records by murmur2.

class KafkaRecordWriter final : public RecordWriter {
 public:
  struct Options {
    std::string bootstrap;
    std::string topic;
    ClientProperties properties;
    std::string transactional_id;  // empty: idempotent producer
  };

  static Result<std::unique_ptr<KafkaRecordWriter>> open(Options options) {
    ClientProperties fixed = {{"enable.idempotence", "true"}};
    if (!options.transactional_id.empty()) {
      fixed["transactional.id"] = options.transactional_id;
    }
    SABOT_ASSIGN_OR_RETURN(ConfPtr conf, make_conf(options.bootstrap, options.properties, fixed));
    std::unique_ptr<KafkaRecordWriter> w(new KafkaRecordWriter(std::move(options)));
    rd_kafka_conf_set_opaque(conf.get(), w.get());
    rd_kafka_conf_set_dr_msg_cb(conf.get(), &KafkaRecordWriter::on_delivery);
    SABOT_ASSIGN_OR_RETURN(w->rk_, make_client(RD_KAFKA_PRODUCER, std::move(conf)));
    SABOT_ASSIGN_OR_RETURN(w->partitions_, partition_count(w->rk_.get(), w->options_.topic));
    w->rkt_ = rd_kafka_topic_new(w->rk_.get(), w->options_.topic.c_str(), nullptr);
    if (!w->options_.transactional_id.empty()) {
      SABOT_RETURN_IF_ERROR(w->txn_call(
          "init", [&](rd_kafka_t* rk) { return rd_kafka_init_transactions(rk, kTxnTimeoutMs); }));
    }
    return w;
  }

  ~KafkaRecordWriter() override {
    if (rkt_ != nullptr) rd_kafka_topic_destroy(rkt_);
    if (rk_) {
      rd_kafka_flush(rk_.get(), 5000);
      rk_.reset();
    }
  }

  int32_t num_partitions() const override { return partitions_; }

  Result<PartitionId> send(std::optional<std::string_view> key,
                           std::optional<std::string_view> value, Timestamp timestamp) override {
    const int32_t p =
        key.has_value() ? kafka_partition_for_key(*key, partitions_) : RD_KAFKA_PARTITION_UA;
    SABOT_RETURN_IF_ERROR(produce(p, key, value, timestamp));
    return PartitionId(p < 0 ? 0 : p);
  }
  Status send(PartitionId partition, std::optional<std::string_view> key,
              std::optional<std::string_view> value, Timestamp timestamp) override {
    return produce(partition.value(), key, value, timestamp);
  }
  Status send_batch(PartitionId partition, const Array& keys, const Array& values,
                    const Array& timestamps) override {
    for (int64_t i = 0; i < values.length(); ++i) {
      SABOT_RETURN_IF_ERROR(produce(partition.value(), opt(keys, i), opt(values, i),
                                    Timestamp(timestamps.value<int64_t>(i))));
    }
    return Status::ok();
  }
  Status send_batch(const Array& keys, const Array& values, const Array& timestamps) override {
    scratch_.resize(static_cast<size_t>(keys.length()));
    kafka_partitions_for_keys(keys, partitions_, scratch_.data());
    for (int64_t i = 0; i < values.length(); ++i) {
      const int32_t p = scratch_[static_cast<size_t>(i)];
      SABOT_RETURN_IF_ERROR(produce(p < 0 ? RD_KAFKA_PARTITION_UA : p, opt(keys, i), opt(values, i),
                                    Timestamp(timestamps.value<int64_t>(i))));
    }
    return Status::ok();
  }

  // Waits until every record sent is acknowledged (or failed: the first failure is returned).
  Status flush() override {
    if (!options_.transactional_id.empty()) observe(options_.transactional_id, "flush");
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    for (int i = 0; i < kFlushTimeoutMs / 1000 && err == RD_KAFKA_RESP_ERR__TIMED_OUT; ++i) {
      err = rd_kafka_flush(rk_.get(), 1000);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka_status(where(), err);
    return delivery_status();
  }
  Status close() override { return flush(); }

  // ---- transactions (transactional writers) ----
  Status begin() {
    return txn_call("begin", [](rd_kafka_t* rk) { return rd_kafka_begin_transaction(rk); });
  }
  Status commit() {
    return txn_call("commit",
                    [](rd_kafka_t* rk) { return rd_kafka_commit_transaction(rk, kTxnTimeoutMs); });
  }
  Status abort() {
    return txn_call("abort",
                    [](rd_kafka_t* rk) { return rd_kafka_abort_transaction(rk, kTxnTimeoutMs); });
  }
  const std::string& transactional_id() const { return options_.transactional_id; }

 private:
  explicit KafkaRecordWriter(Options options) : options_(std::move(options)) {}

  std::string where() const { return "kafka topic '" + options_.topic + "'"; }

  static std::optional<std::string_view> opt(const Array& a, int64_t i) {
    if (a.is_null(i)) return std::nullopt;
    return a.string_view(i);
  }

  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    auto* w = static_cast<KafkaRecordWriter*>(opaque);
    std::lock_guard<std::mutex> lock(w->delivery_mu_);
    if (w->delivery_error_ == RD_KAFKA_RESP_ERR_NO_ERROR) w->delivery_error_ = m->err;
  }
  Status delivery_status() {
    std::lock_guard<std::mutex> lock(delivery_mu_);
    if (delivery_error_ == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::ok();
    return kafka_status("delivering to " + where(), delivery_error_);
  }

  Status produce(int32_t partition, std::optional<std::string_view> key,
                 std::optional<std::string_view> value, Timestamp timestamp) {
    SABOT_RETURN_IF_ERROR(delivery_status());
    void* value_data = value ? const_cast<char*>(value->data()) : nullptr;
    const size_t value_size = value ? value->size() : 0;
    const void* key_data = key ? key->data() : nullptr;
    const size_t key_size = key ? key->size() : 0;
    for (;;) {
      const rd_kafka_resp_err_t err = rd_kafka_producev(
          rk_.get(), RD_KAFKA_V_RKT(rkt_), RD_KAFKA_V_PARTITION(partition),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(value_data, value_size),
          RD_KAFKA_V_KEY(key_data, key_size), RD_KAFKA_V_TIMESTAMP(timestamp.millis()),
          RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk_.get(), 50);  // serve delivery reports, then retry
        continue;
      }
      return kafka_status("producing to " + where(), err);
    }
    if (++since_poll_ >= 1024) {
      since_poll_ = 0;
      rd_kafka_poll(rk_.get(), 0);
    }
    return Status::ok();
  }

  // Runs a transactional call as librdkafka documents its errors: retriable ones are retried,
  // ones that need an abort abort the transaction and fail (the task restarts from its last
  // checkpoint), fatal ones fail (the producer is unusable; recovery makes a new one).
  template <typename Fn>
  Status txn_call(std::string_view name, Fn fn) {
    observe(options_.transactional_id, name);
    for (int attempt = 0;; ++attempt) {
      ErrorPtr error(fn(rk_.get()));
      if (error == nullptr) return Status::ok();
      const std::string what = "kafka transaction '" + options_.transactional_id + "' " +
                               std::string(name) + ": " + rd_kafka_error_string(error.get());
      if (rd_kafka_error_is_retriable(error.get()) && attempt < 10) continue;
      if (rd_kafka_error_txn_requires_abort(error.get())) {
        observe(options_.transactional_id, "abort");
        ErrorPtr abort_error(rd_kafka_abort_transaction(rk_.get(), kTxnTimeoutMs));
        return Status::io_error(what + " (transaction aborted)");
      }
      return Status::io_error(what + (rd_kafka_error_is_fatal(error.get()) ? " (fatal)" : ""));
    }
  }

  Options options_;
  RdKafkaPtr rk_;
  rd_kafka_topic_t* rkt_ = nullptr;
  int32_t partitions_ = 1;
  std::vector<int32_t> scratch_;
  int since_poll_ = 0;
  std::mutex delivery_mu_;
  rd_kafka_resp_err_t delivery_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;
};

// ---------------------------------------------------------------------------------------------
// Source

class KafkaSource final : public Source {
 public:
  KafkaSource(TopicSourceOptions options, KafkaUrl url, int32_t partitions, SchemaPtr schema)
      : options_(std::move(options)),
        url_(std::move(url)),
        partitions_(partitions),
        schema_(std::move(schema)) {}
  std::string name() const override { return "topic:" + url_.topic; }
  SchemaPtr schema() const override { return schema_; }
  int num_splits() const override { return partitions_; }
  Result<std::unique_ptr<SourceReader>> open_reader(std::span<const int> splits,
                                                    const OperatorContext& ctx) const override {
    KafkaRecordReader::Options ro{
        .bootstrap = url_.bootstrap,
        .topic = url_.topic,
        .properties = options_.properties,
        .group_id = options_.group_id.empty() ? "sabot-" + ctx.uid : options_.group_id,
        .stop_at_end = options_.stop_at_end,
        .headers = !options_.columns.headers.empty(),
        .group_mode = options_.group_mode,
        .commit_checkpointed = ctx.delivery == runtime::DeliveryGuarantee::kAtLeastOnce,
        .start = options_.start};
    std::unique_ptr<KafkaRecordReader> reader;
    // Group mode: the layer above tells the reader which polled records it has not handed on yet
    // (they are not processed, so a revoke must not commit past them). Set once it exists.
    auto above = std::make_shared<TopicRecordSourceReader*>(nullptr);
    if (options_.group_mode) {
      if (ctx.delivery == runtime::DeliveryGuarantee::kExactlyOnce) {
        return Status::invalid_argument(
            "kafka topic '" + url_.topic + "': consumer-group mode (group '" + ro.group_id +
            "') is at-least-once, but the job asks for exactly-once: its state and output would "
            "not match the partitions' offsets once a rebalance moves them (use explicit "
            "assignment, group_mode = false, whose offsets are in the checkpoints)");
      }
      auto pending_base = [above](int32_t p) -> std::optional<int64_t> {
        if (*above == nullptr) return std::nullopt;
        return (*above)->first_pending_offset(p);
      };
      SABOT_ASSIGN_OR_RETURN(reader,
                             KafkaRecordReader::open_group(std::move(ro), std::move(pending_base)));
    } else {
      std::vector<PartitionAssignment> assignments;
      for (int s : splits) assignments.push_back({PartitionId(s), options_.start});
      SABOT_ASSIGN_OR_RETURN(reader, KafkaRecordReader::open(std::move(ro), assignments));
    }
    SABOT_ASSIGN_OR_RETURN(auto decoder, options_.codec->make_decoder());
    std::unique_ptr<RecordWriter> dead_letters;
    if (options_.on_bad_record == BadRecordPolicy::kDeadLetter) {
      SABOT_ASSIGN_OR_RETURN(KafkaUrl dl, parse_kafka_url(options_.dead_letter_url));
      SABOT_ASSIGN_OR_RETURN(dead_letters, KafkaRecordWriter::open({.bootstrap = dl.bootstrap,
                                                                    .topic = dl.topic,
                                                                    .properties = {},
                                                                    .transactional_id = {}}));
    }
    KafkaRecordReader* raw = reader.get();
    auto out = std::make_unique<TopicRecordSourceReader>(
        url_.topic, std::move(reader), std::move(decoder), options_.on_bad_record,
        std::move(dead_letters), options_.columns, schema_,
        [raw](const std::vector<runtime::SplitPosition>& positions) {
          return raw->commit(positions);
        });
    *above = out.get();
    return std::unique_ptr<SourceReader>(std::move(out));
  }
  bool checkpointable() const override { return true; }

 private:
  TopicSourceOptions options_;
  KafkaUrl url_;
  int32_t partitions_;
  SchemaPtr schema_;
};

// A short-lived client for metadata and admin requests: a consumer, whose metadata requests do
// not ask the cluster to auto-create the topic they name.
Result<RdKafkaPtr> admin_client(const std::string& bootstrap, const ClientProperties& props) {
  SABOT_ASSIGN_OR_RETURN(ConfPtr conf,
                         make_conf(bootstrap, props, {{"allow.auto.create.topics", "false"}}));
  return make_client(RD_KAFKA_CONSUMER, std::move(conf));
}

Result<std::shared_ptr<const Source>> kafka_source(const TopicSourceOptions& options) {
  std::vector<std::string> problems;
  auto url = parse_kafka_url(options.url);
  if (!url.is_ok()) {
    problems.push_back(url.status().message());
  } else if (url->topic.empty()) {
    problems.push_back("the URL names no topic (kafka://host:port/topic)");
  }
  if (options.codec == nullptr) {
    problems.push_back("a topic source needs a codec, e.g. codec::json(schema)");
  } else if (options.codec->schema() == nullptr) {
    problems.push_back("codec '" + options.codec->name() + "' has no schema to decode into");
  }
  if (options.group_mode && options.stop_at_end) {
    problems.push_back(
        "consumer-group mode cannot stop_at_end (a group's partitions move between consumers; "
        "a bounded read needs explicit assignment)");
  }
  if (options.on_bad_record == BadRecordPolicy::kDeadLetter) {
    if (options.dead_letter_url.empty()) {
      problems.push_back("the dead-letter policy needs dead_letter_url");
    } else if (auto d = parse_kafka_url(options.dead_letter_url); !d.is_ok()) {
      problems.push_back("dead_letter_url: " + d.status().message());
    }
  }
  SchemaPtr schema;
  if (options.codec != nullptr && options.codec->schema() != nullptr) {
    auto s = topic_source_schema(options.codec->schema(), options.columns);
    if (s.is_ok()) {
      schema = *s;
    } else {
      problems.push_back(s.status().message());
    }
  }
  int32_t partitions = 0;
  if (problems.empty()) {
    auto client = admin_client(url->bootstrap, options.properties);
    if (!client.is_ok()) {
      problems.push_back(client.status().message());
    } else {
      auto n = partition_count(client->get(), url->topic);
      if (n.is_ok()) {
        partitions = *n;
      } else {
        problems.push_back(n.status().message());
      }
    }
  }
  if (!problems.empty()) {
    std::string msg = "topic source '" + options.url + "':";
    for (const std::string& p : problems) msg += " " + p + ";";
    msg.pop_back();
    return Status::invalid_argument(std::move(msg));
  }
  return std::shared_ptr<const Source>(
      std::make_shared<KafkaSource>(options, std::move(*url), partitions, std::move(schema)));
}

// ---------------------------------------------------------------------------------------------
// Sink

// Under kExactlyOnce: one transactional producer per subtask (id "<prefix>-<subtask>"). The
// records since the last barrier form one transaction; at barrier n it is flushed (pre-committed)
// and committed when checkpoint n completes. Kafka allows one open transaction per producer, so
// records that arrive between the barrier and the completion are held (encoded) and sent in the
// next transaction, which begins after the commit. On recovery the new producer's
// init_transactions aborts what the failed attempt left open (Kafka fences the old epoch).
class KafkaSinkOperator final : public Operator {
 public:
  KafkaSinkOperator(KafkaRecordWriter::Options writer_options,
                    std::unique_ptr<codec::Encoder> encoder, int key_column)
      : writer_options_(std::move(writer_options)),
        encoder_(std::move(encoder)),
        key_column_(key_column) {}

  ~KafkaSinkOperator() override {
    // A failed or cancelled attempt: what it did not commit is aborted now rather than when the
    // transaction times out (the next attempt's init_transactions would abort it too).
    if (writer_ && eo_ && in_txn_) (void)writer_->abort();
  }

  Status open(const OperatorContext& ctx) override {
    eo_ = ctx.delivery == runtime::DeliveryGuarantee::kExactlyOnce;
    uid_ = ctx.uid;
    max_parallelism_ = static_cast<uint32_t>(ctx.max_parallelism);
    clock_ = ctx.clock;
    if (eo_) {
      if (writer_options_.transactional_id.empty()) {
        writer_options_.transactional_id = "sabot-" + ctx.uid;
      }
      writer_options_.transactional_id += "-" + std::to_string(ctx.subtask_index);
    } else {
      writer_options_.transactional_id.clear();
    }
    auto w = KafkaRecordWriter::open(writer_options_);
    if (!w.is_ok()) return w.status().with_context("topic sink '" + uid_ + "'");
    writer_ = std::move(*w);
    return Status::ok();
  }

  Status process_batch(const RecordBatch& batch, int, Output&) override {
    SABOT_ASSIGN_OR_RETURN(Array values, encoder_->encode(batch));
    const int64_t n = batch.num_rows();
    columnar::Int64Builder ts(columnar::timestamp(columnar::TimeUnit::kMilli));
    ts.reserve(n);
    const int64_t now = clock_->now().millis();
    for (int64_t i = 0; i < n; ++i) ts.unsafe_append(now);
    Held h{Array::make_null(columnar::binary(), n), std::move(values), ts.finish()};
    if (key_column_ >= 0) {
      SABOT_ASSIGN_OR_RETURN(h.keys, key_strings(batch.column(key_column_)));
    }
    if (eo_ && prepared_ >= 0) {  // between a barrier and its completion
      held_.push_back(std::move(h));
      return Status::ok();
    }
    return send(h);
  }

  Status finish(Output&) override {
    finished_ = true;
    if (eo_) return Status::ok();  // the final checkpoint commits what is left
    return writer_->flush();
  }

  Status snapshot_state(CheckpointId id, std::string* out) override {
    if (!eo_) return writer_->flush();  // at-least-once: acknowledged before the barrier passes
    if (prepared_ >= 0 && !held_.empty()) {
      // The previous checkpoint never completed: its transaction grows to cover this one too.
      for (const Held& h : held_) SABOT_RETURN_IF_ERROR(send(h));
      held_.clear();
    }
    if (in_txn_) {
      SABOT_RETURN_IF_ERROR(writer_->flush());
      prepared_ = id.value();
    }
    state::SnapshotWriter w(out, {.operator_uid = uid_,
                                  .state_type = std::string(kStateType),
                                  .state_version = 1,
                                  .max_parallelism = max_parallelism_});
    ByteWriter& b = w.begin_section(state::kOperatorWide);
    b.put_bytes(writer_->transactional_id());
    b.put<int64_t>(prepared_);
    w.finish();
    return Status::ok();
  }

  Status notify_checkpoint_complete(CheckpointId id) override {
    if (!eo_) return Status::ok();
    if (prepared_ >= 0 && prepared_ <= id.value()) {
      SABOT_RETURN_IF_ERROR(writer_->commit());
      in_txn_ = false;
      prepared_ = -1;
      for (const Held& h : held_) SABOT_RETURN_IF_ERROR(send(h));
      held_.clear();
    }
    return Status::ok();
  }

  Status restore_state(std::string_view data) override {
    if (!eo_) return Status::ok();
    SABOT_ASSIGN_OR_RETURN(
        state::SnapshotReader reader,
        state::SnapshotReader::open(data, uid_, kStateType, 1, max_parallelism_));
    for (size_t s = 0; s < reader.sections().size(); ++s) {
      ByteReader r = reader.section_reader(s);
      std::string txn_id;
      int64_t prepared = -1;
      SABOT_RETURN_IF_ERROR(r.get_bytes(&txn_id));
      SABOT_RETURN_IF_ERROR(r.get(&prepared));
      SABOT_RETURN_IF_ERROR(r.expect_end());
      // The checkpoint's own transaction (prepared at its barrier) was committed when it
      // completed, unless the failure came between completion and commit: librdkafka cannot
      // resume another producer's transaction, and open() already ran init_transactions with
      // this id, which aborted it (docs/kafka.md, what is not covered).
      (void)prepared;
    }
    return Status::ok();
  }

 private:
  static constexpr std::string_view kStateType = "kafka-sink-txn";
  struct Held {
    Array keys;
    Array values;
    Array timestamps;
  };

  Status send(const Held& h) {
    if (eo_ && !in_txn_) {
      SABOT_RETURN_IF_ERROR(writer_->begin());
      in_txn_ = true;
    }
    return writer_->send_batch(h.keys, h.values, h.timestamps);
  }

  static Result<Array> key_strings(const Array& column) {
    if (column.type().is_var_length()) return column;
    columnar::BinaryBuilder b(columnar::binary());
    b.reserve(column.length());
    for (int64_t i = 0; i < column.length(); ++i) {
      columnar::Scalar s = column.scalar_at(i);
      if (!s.is_valid) {
        b.append_null();
      } else {
        b.append(s.to_string());
      }
    }
    return b.finish();
  }

  KafkaRecordWriter::Options writer_options_;
  std::unique_ptr<codec::Encoder> encoder_;
  int key_column_;
  std::unique_ptr<KafkaRecordWriter> writer_;
  const Clock* clock_ = nullptr;
  bool eo_ = false;
  std::string uid_;
  uint32_t max_parallelism_ = 128;
  bool in_txn_ = false;
  int64_t prepared_ = -1;  // the checkpoint whose barrier flushed the open transaction; -1: none
  std::vector<Held> held_;
  bool finished_ = false;
};

class KafkaSinkFactory final : public runtime::OperatorFactory {
 public:
  explicit KafkaSinkFactory(TopicSinkOptions options) : options_(std::move(options)) {}
  std::string kind() const override { return "to_topic"; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> inputs) const override {
    if (inputs.size() != 1) return Status::invalid_argument("to_topic takes one input");
    SABOT_ASSIGN_OR_RETURN(KafkaUrl url, parse_kafka_url(options_.url));
    if (url.topic.empty()) {
      return Status::invalid_argument("topic sink '" + options_.url +
                                      "': the URL names no topic (kafka://host:port/topic)");
    }
    if (options_.codec == nullptr) return Status::invalid_argument("to_topic needs a codec");
    if (!options_.key_column.empty()) {
      SABOT_RETURN_IF_ERROR(inputs[0]->require_field_index(options_.key_column).status());
    }
    return inputs[0];
  }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr> inputs,
                                           const OperatorContext&) const override {
    SABOT_ASSIGN_OR_RETURN(KafkaUrl url, parse_kafka_url(options_.url));
    SABOT_ASSIGN_OR_RETURN(auto encoder, options_.codec->make_encoder());
    int key = options_.key_column.empty() ? -1 : inputs[0]->field_index(options_.key_column);
    KafkaRecordWriter::Options wo{.bootstrap = url.bootstrap,
                                  .topic = url.topic,
                                  .properties = options_.properties,
                                  .transactional_id = options_.transactional_id_prefix};
    return std::unique_ptr<Operator>(new KafkaSinkOperator(std::move(wo), std::move(encoder), key));
  }

 private:
  TopicSinkOptions options_;
};

class KafkaTopicScheme final : public TopicScheme {
 public:
  std::string scheme() const override { return "kafka"; }
  Result<std::shared_ptr<const Source>> source(const TopicSourceOptions& options) const override {
    return kafka_source(options);
  }
  std::shared_ptr<const runtime::OperatorFactory> sink(
      const TopicSinkOptions& options) const override {
    return std::make_shared<KafkaSinkFactory>(options);
  }
  Result<std::vector<TopicDescription>> list_topics(std::string_view url_text,
                                                    const ClientProperties& props) const override {
    SABOT_ASSIGN_OR_RETURN(KafkaUrl url, parse_kafka_url(url_text));
    SABOT_ASSIGN_OR_RETURN(RdKafkaPtr rk, admin_client(url.bootstrap, props));
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk.get(), 1, nullptr, &md, kMetadataTimeoutMs);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka_status("listing topics", err);
    std::vector<TopicDescription> out;
    for (int i = 0; i < md->topic_cnt; ++i) {
      out.push_back({md->topics[i].topic, md->topics[i].partition_cnt});
    }
    rd_kafka_metadata_destroy(md);
    std::sort(out.begin(), out.end(),
              [](const TopicDescription& a, const TopicDescription& b) { return a.name < b.name; });
    return out;
  }
  Status create_topic(std::string_view url_text, std::string_view name, int32_t partitions,
                      const ClientProperties& props) const override {
    SABOT_RETURN_IF_ERROR(validate_topic_name(name));
    SABOT_ASSIGN_OR_RETURN(KafkaUrl url, parse_kafka_url(url_text));
    SABOT_ASSIGN_OR_RETURN(RdKafkaPtr rk, admin_client(url.bootstrap, props));
    char err[512];
    const std::string topic(name);
    rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err, sizeof err);
    if (nt == nullptr) return Status::invalid_argument("creating topic '" + topic + "': " + err);
    rd_kafka_queue_t* q = rd_kafka_queue_new(rk.get());
    rd_kafka_CreateTopics(rk.get(), &nt, 1, nullptr, q);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, kMetadataTimeoutMs);
    Status st = Status::ok();
    if (ev == nullptr) {
      st = Status::io_error("creating topic '" + topic + "': no answer from " + url.bootstrap +
                            " (librdkafka's mock cluster, 'sabot dev broker', does not implement "
                            "CreateTopics: start it with --topics instead)");
    } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      st = Status::io_error("creating topic '" + topic + "': " + rd_kafka_event_error_string(ev));
    } else {
      const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev);
      size_t n = 0;
      const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &n);
      for (size_t i = 0; i < n; ++i) {
        const rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
        if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
          st = Status::already_exists("topic '" + topic + "' exists");
        } else if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
          st = Status::io_error("creating topic '" + topic + "': " + rd_kafka_err2str(e));
        }
      }
    }
    if (ev != nullptr) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    if (!st.is_ok()) return st;
    // Wait until the metadata shows it, so that a source built right after finds it.
    for (int i = 0; i < 100; ++i) {
      if (partition_count(rk.get(), topic).is_ok()) return Status::ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return Status::io_error("topic '" + topic + "' was created but does not show in metadata");
  }
};

}  // namespace

void set_kafka_txn_observer(KafkaTxnObserver observer) {
  std::lock_guard<std::mutex> lock(observer_mu);
  observer_slot() = std::move(observer);
}

void set_kafka_group_observer(KafkaGroupObserver observer) {
  std::lock_guard<std::mutex> lock(observer_mu);
  group_observer_slot() = std::move(observer);
}

std::shared_ptr<const TopicScheme> kafka_topic_scheme() {
  static const auto scheme = std::make_shared<const KafkaTopicScheme>();
  return scheme;
}

Result<KafkaUrl> parse_kafka_url(std::string_view url) {
  constexpr std::string_view kPrefix = "kafka://";
  auto bad = [&](std::string_view why) {
    return Status::invalid_argument("'" + std::string(url) + "' is not a kafka URL (" +
                                    std::string(why) +
                                    "); expected kafka://host:port[,host:port][/topic]");
  };
  if (url.substr(0, kPrefix.size()) != kPrefix) return bad("no kafka:// scheme");
  std::string_view rest = url.substr(kPrefix.size());
  KafkaUrl out;
  const size_t slash = rest.find('/');
  std::string_view hosts = rest.substr(0, slash);
  if (slash != std::string_view::npos) out.topic = std::string(rest.substr(slash + 1));
  if (hosts.empty()) return bad("no host");
  size_t start = 0;
  while (start <= hosts.size()) {
    size_t comma = hosts.find(',', start);
    if (comma == std::string_view::npos) comma = hosts.size();
    std::string_view hp = hosts.substr(start, comma - start);
    const size_t colon = hp.rfind(':');
    if (hp.empty() || colon == std::string_view::npos || colon == 0 || colon + 1 == hp.size()) {
      return bad("'" + std::string(hp) + "' is not host:port");
    }
    for (char c : hp.substr(colon + 1)) {
      if (!std::isdigit(static_cast<unsigned char>(c))) {
        return bad("port of '" + std::string(hp) + "'");
      }
    }
    start = comma + 1;
  }
  out.bootstrap = std::string(hosts);
  if (!out.topic.empty()) SABOT_RETURN_IF_ERROR(validate_topic_name(out.topic));
  return out;
}

ClientProperties kafka_properties(const ClientProperties& explicit_props, char** environ_override) {
  constexpr std::string_view kPrefix = "SABOT_KAFKA_";
  ClientProperties out;
  for (char** e = environ_override != nullptr ? environ_override : environ; e && *e; ++e) {
    std::string_view entry(*e);
    if (entry.substr(0, kPrefix.size()) != kPrefix) continue;
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq == kPrefix.size()) continue;
    std::string name(entry.substr(kPrefix.size(), eq - kPrefix.size()));
    for (char& c : name) {
      c = c == '_' ? '.' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    out[name] = std::string(entry.substr(eq + 1));
  }
  for (const auto& [k, v] : explicit_props) out[k] = v;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Dev broker

struct KafkaDevBroker::Impl {
  RdKafkaPtr host;  // the client handle that owns the mock cluster's threads
  rd_kafka_mock_cluster_t* cluster = nullptr;
  int partitions = 3;
  ~Impl() {
    if (cluster != nullptr) rd_kafka_mock_cluster_destroy(cluster);
  }
};

Result<std::unique_ptr<KafkaDevBroker>> KafkaDevBroker::start(Options options) {
  if (options.brokers < 1 || options.partitions < 1) {
    return Status::invalid_argument("dev broker: brokers and partitions must be >= 1");
  }
  ConfPtr conf(rd_kafka_conf_new());
  char err[512];
  // The host handle never connects anywhere; it only runs the cluster.
  if (rd_kafka_conf_set(conf.get(), "log_level", "0", err, sizeof err) != RD_KAFKA_CONF_OK) {
    return Status::internal(std::string("dev broker: ") + err);
  }
  SABOT_ASSIGN_OR_RETURN(RdKafkaPtr host, make_client(RD_KAFKA_PRODUCER, std::move(conf)));
  std::unique_ptr<KafkaDevBroker> b(new KafkaDevBroker());
  b->impl_ = std::make_unique<Impl>();
  b->impl_->host = std::move(host);
  b->impl_->partitions = options.partitions;
  b->impl_->cluster = rd_kafka_mock_cluster_new(b->impl_->host.get(), options.brokers);
  if (b->impl_->cluster == nullptr) {
    return Status::io_error("dev broker: librdkafka could not start its mock cluster");
  }
  b->bootstrap_ = rd_kafka_mock_cluster_bootstraps(b->impl_->cluster);
  return b;
}

KafkaDevBroker::~KafkaDevBroker() = default;

std::string KafkaDevBroker::url(std::string_view topic) const {
  return "kafka://" + bootstrap_ + "/" + std::string(topic);
}

Status KafkaDevBroker::create_topic(std::string_view name, int partitions) {
  SABOT_RETURN_IF_ERROR(validate_topic_name(name));
  const std::string topic(name);
  rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(
      impl_->cluster, topic.c_str(), partitions > 0 ? partitions : impl_->partitions, 1);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka_status("creating topic '" + topic + "'", e);
  return Status::ok();
}
Status KafkaDevBroker::set_broker_down(int32_t broker_id) {
  rd_kafka_resp_err_t e = rd_kafka_mock_broker_set_down(impl_->cluster, broker_id);
  return e == RD_KAFKA_RESP_ERR_NO_ERROR ? Status::ok() : kafka_status("broker down", e);
}
Status KafkaDevBroker::set_broker_up(int32_t broker_id) {
  rd_kafka_resp_err_t e = rd_kafka_mock_broker_set_up(impl_->cluster, broker_id);
  return e == RD_KAFKA_RESP_ERR_NO_ERROR ? Status::ok() : kafka_status("broker up", e);
}
Status KafkaDevBroker::set_partition_leader(std::string_view topic, int32_t partition,
                                            int32_t broker_id) {
  const std::string t(topic);
  rd_kafka_resp_err_t e =
      rd_kafka_mock_partition_set_leader(impl_->cluster, t.c_str(), partition, broker_id);
  return e == RD_KAFKA_RESP_ERR_NO_ERROR ? Status::ok() : kafka_status("leader change", e);
}
void KafkaDevBroker::push_request_errors(int16_t api_key, int count, int error) {
  std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(count),
                                          static_cast<rd_kafka_resp_err_t>(error));
  rd_kafka_mock_push_request_errors_array(impl_->cluster, api_key, errors.size(), errors.data());
}

}  // namespace sabot::connectors
