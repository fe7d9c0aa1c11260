#include "sabot/connectors/topic.h"

#include <atomic>
#include <deque>
#include <mutex>

#include "connectors/topic_reader.h"
#include "sabot/codec/json.h"
#include "sabot/columnar/builder.h"
#include "sabot/connectors/topic_scheme.h"
#include "sabot/state/snapshot.h"

namespace sabot::connectors {

using columnar::Array;
using columnar::RecordBatch;
using columnar::SchemaPtr;
using runtime::Operator;
using runtime::OperatorContext;
using runtime::Output;
using runtime::Source;
using runtime::SourcePoll;
using runtime::SourceReader;

namespace {

MemoryBroker& broker_of(MemoryBroker* b) { return b ? *b : MemoryBroker::default_instance(); }

Result<TopicPtr> find_or_create(MemoryBroker& broker, const std::string& url, int partitions) {
  SABOT_ASSIGN_OR_RETURN(MemoryUrl parsed, parse_memory_url(url));
  auto existing = broker.topic(parsed.topic);
  if (existing.is_ok()) return *existing;
  return broker.create_topic(parsed.topic, {.partitions = partitions});
}

class TopicSource final : public Source {
 public:
  TopicSource(TopicSourceOptions options, TopicPtr topic, SchemaPtr schema)
      : options_(std::move(options)), topic_(std::move(topic)), schema_(std::move(schema)) {}
  std::string name() const override { return "topic:" + topic_->name(); }
  SchemaPtr schema() const override { return schema_; }
  int num_splits() const override { return topic_->num_partitions(); }
  Result<std::unique_ptr<SourceReader>> open_reader(std::span<const int> splits,
                                                    const OperatorContext&) const override {
    std::vector<PartitionAssignment> assignments;
    for (int s : splits) assignments.push_back({PartitionId(s), options_.start});
    SABOT_ASSIGN_OR_RETURN(auto reader, MemoryTopicReader::open(topic_, assignments));
    SABOT_ASSIGN_OR_RETURN(auto decoder, options_.codec->make_decoder());
    std::unique_ptr<MemoryTopicWriter> dead_letters;
    if (options_.on_bad_record == BadRecordPolicy::kDeadLetter) {
      SABOT_ASSIGN_OR_RETURN(
          TopicPtr dlq, find_or_create(broker_of(options_.broker), options_.dead_letter_url, 1));
      SABOT_ASSIGN_OR_RETURN(dead_letters, MemoryTopicWriter::open(dlq));
    }
    return std::unique_ptr<SourceReader>(new TopicRecordSourceReader(
        topic_->name(), std::move(reader), std::move(decoder), options_.on_bad_record,
        std::move(dead_letters), options_.columns, schema_));
  }
  // Positions are offsets: a partition restarts at any offset the topic still holds.
  bool checkpointable() const override { return true; }

 private:
  TopicSourceOptions options_;
  TopicPtr topic_;
  SchemaPtr schema_;
};

// ---- sink ----

struct SinkShared {
  std::atomic<int> open_writers{0};
  TopicPtr topic;
};

class TopicSinkOperator final : public Operator {
 public:
  TopicSinkOperator(std::unique_ptr<MemoryTopicWriter> writer,
                    std::unique_ptr<codec::Encoder> encoder, int key_column,
                    std::shared_ptr<SinkShared> shared, bool close_on_finish, const Clock* clock)
      : writer_(std::move(writer)),
        encoder_(std::move(encoder)),
        key_column_(key_column),
        shared_(std::move(shared)),
        close_on_finish_(close_on_finish),
        clock_(clock) {}

  // Under kExactlyOnce the writer is transactional (id "sabot/<uid>/<subtask>"): the records
  // since the last barrier form one transaction, prepared in snapshot_state(n) and committed by
  // (id, sequence) in notify_checkpoint_complete(n); restore re-commits the prepared
  // transactions the snapshot lists and aborts the lingering ones of its transactional ids.
  Status open(const OperatorContext& ctx) override {
    eo_ = ctx.delivery == runtime::DeliveryGuarantee::kExactlyOnce;
    uid_ = ctx.uid;
    max_parallelism_ = static_cast<uint32_t>(ctx.max_parallelism);
    return Status::ok();
  }

  Status process_batch(const RecordBatch& batch, int, Output&) override {
    if (eo_) {
      SABOT_RETURN_IF_ERROR(ensure_started());
      if (!writer_->in_transaction()) SABOT_RETURN_IF_ERROR(writer_->begin_transaction().status());
    }
    SABOT_ASSIGN_OR_RETURN(Array values, encoder_->encode(batch));
    const int64_t n = batch.num_rows();
    columnar::Int64Builder ts(columnar::timestamp(columnar::TimeUnit::kMilli));
    ts.reserve(n);
    const int64_t now = clock_->now().millis();
    for (int64_t i = 0; i < n; ++i) ts.unsafe_append(now);
    Array timestamps = ts.finish();
    if (key_column_ < 0) {
      return writer_->send_batch(Array::make_null(columnar::binary(), n), values, timestamps);
    }
    SABOT_ASSIGN_OR_RETURN(Array keys, key_strings(batch.column(key_column_)));
    return writer_->send_batch(keys, values, timestamps);
  }

  Status finish(Output&) override {
    if (eo_) {  // the final checkpoint prepares and commits what is left
      finished_ = true;
      return writer_->flush();
    }
    return close_writer();
  }

  Status snapshot_state(CheckpointId id, std::string* out) override {
    if (!eo_) return Status::ok();
    SABOT_RETURN_IF_ERROR(ensure_started());
    if (writer_->in_transaction()) {
      SABOT_ASSIGN_OR_RETURN(int64_t seq, writer_->prepare_transaction());
      pending_.push_back({id.value(), seq});
    }
    state::SnapshotWriter w(out, {.operator_uid = uid_,
                                  .state_type = std::string(kStateType),
                                  .state_version = 1,
                                  .max_parallelism = max_parallelism_});
    ByteWriter& b = w.begin_section(state::kOperatorWide);
    b.put_bytes(writer_->transactional_id());
    b.put<uint64_t>(pending_.size());
    for (const auto& [checkpoint, seq] : pending_) b.put<int64_t>(seq);
    w.finish();
    return Status::ok();
  }

  Status notify_checkpoint_complete(CheckpointId id) override {
    if (!eo_) return Status::ok();
    size_t n = 0;
    for (; n < pending_.size() && pending_[n].first <= id.value(); ++n) {
      SABOT_RETURN_IF_ERROR(
          shared_->topic->commit_transaction(writer_->transactional_id(), pending_[n].second));
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
    if (finished_ && pending_.empty() && !writer_->in_transaction() && !closed_) {
      return close_writer();
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
      if (reader.sections()[s].key_group != state::kOperatorWide) {
        return r.invalid("a keyed section in a topic sink snapshot");
      }
      std::string txn_id;
      SABOT_RETURN_IF_ERROR(r.get_bytes(&txn_id));
      uint64_t count = 0;
      SABOT_RETURN_IF_ERROR(r.get_count(&count, 8));
      std::vector<int64_t> seqs(static_cast<size_t>(count));
      for (int64_t& seq : seqs) SABOT_RETURN_IF_ERROR(r.get(&seq));
      SABOT_RETURN_IF_ERROR(r.expect_end());
      // Every subtask given this snapshot (after rescaling, several) does the same: idempotent.
      for (int64_t seq : seqs) {
        SABOT_RETURN_IF_ERROR(
            shared_->topic->commit_transaction(txn_id, seq)
                .with_context("topic sink '" + uid_ +
                              "': re-committing a transaction of the checkpoint"));
      }
      SABOT_RETURN_IF_ERROR(shared_->topic->abort_transactions_except(txn_id, seqs).status());
    }
    return Status::ok();
  }

 private:
  static constexpr std::string_view kStateType = "topic-sink-2pc";

  // Before the first transaction: abort what an earlier attempt with this transactional id left
  // open or prepared (committed transactions of a restored checkpoint stay committed).
  Status ensure_started() {
    if (started_) return Status::ok();
    started_ = true;
    return shared_->topic->abort_transactions_except(writer_->transactional_id(), {}).status();
  }

  Status close_writer() {
    closed_ = true;
    SABOT_RETURN_IF_ERROR(writer_->close());
    if (close_on_finish_ && shared_->open_writers.fetch_sub(1) == 1) shared_->topic->close();
    return Status::ok();
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

  std::unique_ptr<MemoryTopicWriter> writer_;
  std::unique_ptr<codec::Encoder> encoder_;
  int key_column_;
  std::shared_ptr<SinkShared> shared_;
  bool close_on_finish_;
  const Clock* clock_;
  bool eo_ = false;
  std::string uid_;
  uint32_t max_parallelism_ = 128;
  std::vector<std::pair<int64_t, int64_t>> pending_;  // prepared: (checkpoint, sequence)
  bool started_ = false;
  bool finished_ = false;
  bool closed_ = false;
};

class TopicSinkFactory final : public runtime::OperatorFactory {
 public:
  explicit TopicSinkFactory(TopicSinkOptions options)
      : options_(std::move(options)), shared_(std::make_shared<SinkShared>()) {}
  std::string kind() const override { return "to_topic"; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> inputs) const override {
    if (inputs.size() != 1) return Status::invalid_argument("to_topic takes one input");
    SABOT_RETURN_IF_ERROR(parse_memory_url(options_.url).status());
    if (options_.codec == nullptr) return Status::invalid_argument("to_topic needs a codec");
    if (options_.partitions < 1) {
      return Status::invalid_argument("to_topic partitions must be >= 1, got " +
                                      std::to_string(options_.partitions));
    }
    if (!options_.key_column.empty()) {
      SABOT_RETURN_IF_ERROR(inputs[0]->require_field_index(options_.key_column).status());
    }
    return inputs[0];
  }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr> inputs,
                                           const OperatorContext& ctx) const override {
    SABOT_ASSIGN_OR_RETURN(TopicPtr topic, find_or_create(broker_of(options_.broker), options_.url,
                                                          options_.partitions));
    shared_->topic = topic;
    shared_->open_writers.fetch_add(1);
    WriterOptions wo;
    if (ctx.delivery == runtime::DeliveryGuarantee::kExactlyOnce) {
      wo.transactional_id = "sabot/" + ctx.uid + "/" + std::to_string(ctx.subtask_index);
    }
    SABOT_ASSIGN_OR_RETURN(auto writer, MemoryTopicWriter::open(topic, wo));
    SABOT_ASSIGN_OR_RETURN(auto encoder, options_.codec->make_encoder());
    int key = options_.key_column.empty() ? -1 : inputs[0]->field_index(options_.key_column);
    return std::unique_ptr<Operator>(new TopicSinkOperator(
        std::move(writer), std::move(encoder), key, shared_, options_.close_on_finish, ctx.clock));
  }

 private:
  TopicSinkOptions options_;
  std::shared_ptr<SinkShared> shared_;
};

Result<std::shared_ptr<const Source>> memory_topic_source(TopicSourceOptions options) {
  std::vector<std::string> problems;
  TopicPtr topic;
  auto url = parse_memory_url(options.url);
  if (!url.is_ok()) {
    problems.push_back(url.status().message());
  } else {
    auto t = broker_of(options.broker).topic(url->topic);
    if (!t.is_ok()) {
      problems.push_back(t.status().message());
    } else {
      topic = *t;
    }
  }
  if (options.codec == nullptr) {
    problems.push_back("a topic source needs a codec, e.g. codec::json(schema)");
  } else if (options.codec->schema() == nullptr) {
    problems.push_back("codec '" + options.codec->name() + "' has no schema to decode into");
  }
  if (options.on_bad_record == BadRecordPolicy::kDeadLetter) {
    if (options.dead_letter_url.empty()) {
      problems.push_back("the dead-letter policy needs dead_letter_url");
    } else if (auto d = parse_memory_url(options.dead_letter_url); !d.is_ok()) {
      problems.push_back("dead_letter_url: " + d.status().message());
    }
  }
  if (!options.properties.empty()) {
    problems.push_back("memory:// topics take no client properties (got '" +
                       options.properties.begin()->first + "')");
  }
  if (options.stop_at_end) {
    problems.push_back("stop_at_end is for kafka:// (a memory:// topic ends when it is closed)");
  }
  if (options.group_mode) {
    problems.push_back(
        "consumer-group mode is for kafka:// (memory:// partitions are assigned "
        "to the job's subtasks)");
  }
  if (options.start.kind == StartPosition::Kind::kTimestamp) {
    problems.push_back("memory:// topics cannot start at a timestamp");
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
  if (!problems.empty()) {
    std::string msg = "topic source '" + options.url + "':";
    for (const std::string& p : problems) msg += " " + p + ";";
    msg.pop_back();
    return Status::invalid_argument(std::move(msg));
  }
  return std::shared_ptr<const Source>(
      std::make_shared<TopicSource>(std::move(options), std::move(topic), std::move(schema)));
}

// A sink whose options were refused before a factory could be made: output_schema reports it.
class RefusedSinkFactory final : public runtime::OperatorFactory {
 public:
  explicit RefusedSinkFactory(Status status) : status_(std::move(status)) {}
  std::string kind() const override { return "to_topic"; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr>) const override { return status_; }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr>,
                                           const OperatorContext&) const override {
    return status_;
  }

 private:
  Status status_;
};

class MemoryTopicScheme final : public TopicScheme {
 public:
  std::string scheme() const override { return "memory"; }
  Result<std::shared_ptr<const Source>> source(const TopicSourceOptions& options) const override {
    return memory_topic_source(options);
  }
  std::shared_ptr<const runtime::OperatorFactory> sink(
      const TopicSinkOptions& options) const override {
    if (!options.properties.empty()) {
      return std::make_shared<RefusedSinkFactory>(Status::invalid_argument(
          "topic sink '" + options.url + "': memory:// topics take no client properties (got '" +
          options.properties.begin()->first + "')"));
    }
    return std::make_shared<TopicSinkFactory>(options);
  }
  Result<std::vector<TopicDescription>> list_topics(std::string_view,
                                                    const ClientProperties&) const override {
    MemoryBroker& broker = MemoryBroker::default_instance();
    std::vector<TopicDescription> out;
    for (const std::string& name : broker.list_topics()) {
      auto t = broker.topic(name);
      if (t.is_ok()) out.push_back({name, (*t)->num_partitions()});
    }
    return out;
  }
  Status create_topic(std::string_view, std::string_view name, int32_t partitions,
                      const ClientProperties&) const override {
    MemoryBroker& broker = MemoryBroker::default_instance();
    if (broker.topic(name).is_ok()) {
      return Status::already_exists("topic '" + std::string(name) + "' exists");
    }
    return broker.create_topic(name, {.partitions = partitions}).status();
  }
};

struct SchemeRegistry {
  std::mutex mu;
  std::vector<std::shared_ptr<const TopicScheme>> schemes;
};

SchemeRegistry& registry() {
  static SchemeRegistry* r = [] {
    auto* reg = new SchemeRegistry;
    reg->schemes.push_back(memory_topic_scheme());
    reg->schemes.push_back(kafka_topic_scheme());
    return reg;
  }();
  return *r;
}

}  // namespace

std::shared_ptr<const TopicScheme> memory_topic_scheme() {
  static const auto scheme = std::make_shared<const MemoryTopicScheme>();
  return scheme;
}

Status register_topic_scheme(std::shared_ptr<const TopicScheme> scheme) {
  SchemeRegistry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (const auto& s : r.schemes) {
    if (s->scheme() == scheme->scheme()) {
      return Status::already_exists("topic scheme '" + scheme->scheme() + "://' is registered");
    }
  }
  r.schemes.push_back(std::move(scheme));
  return Status::ok();
}

Result<std::shared_ptr<const TopicScheme>> topic_scheme_for(std::string_view url) {
  SchemeRegistry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  const size_t sep = url.find("://");
  std::string known;
  for (const auto& s : r.schemes) {
    if (sep != std::string_view::npos && url.substr(0, sep) == s->scheme()) return s;
    known += (known.empty() ? "" : ", ") + s->scheme() + "://";
  }
  return Status::invalid_argument("topic URL '" + std::string(url) +
                                  "' has no known scheme (known: " + known + ")");
}

Result<std::shared_ptr<const Source>> topic_source(TopicSourceOptions options) {
  auto scheme = topic_scheme_for(options.url);
  if (!scheme.is_ok()) {
    std::string msg = "topic source: " + scheme.status().message();
    if (options.codec == nullptr) msg += "; a topic source needs a codec, e.g. codec::json(schema)";
    return Status::invalid_argument(std::move(msg));
  }
  return (*scheme)->source(options);
}

std::shared_ptr<const runtime::OperatorFactory> topic_sink(TopicSinkOptions options) {
  auto scheme = topic_scheme_for(options.url);
  if (!scheme.is_ok()) {
    return std::make_shared<RefusedSinkFactory>(
        Status::invalid_argument("topic sink: " + scheme.status().message()));
  }
  return (*scheme)->sink(options);
}

}  // namespace sabot::connectors
