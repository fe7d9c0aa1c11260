#include "sabot/connectors/topic.h"

#include <atomic>
#include <deque>

#include "sabot/codec/json.h"
#include "sabot/columnar/builder.h"
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

std::string json_escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

class TopicReader final : public SourceReader {
 public:
  TopicReader(std::string topic_name, std::unique_ptr<MemoryTopicReader> reader,
              std::unique_ptr<codec::Decoder> decoder, BadRecordPolicy policy,
              std::unique_ptr<MemoryTopicWriter> dead_letters)
      : topic_name_(std::move(topic_name)),
        reader_(std::move(reader)),
        decoder_(std::move(decoder)),
        policy_(policy),
        dead_letters_(std::move(dead_letters)) {}

  Result<SourcePoll> poll(int64_t max_rows) override {
    if (!pending_.empty()) return take_pending();
    if (ended_) return SourcePoll::end();
    SABOT_RETURN_IF_ERROR(reader_->poll_into(max_rows, std::chrono::milliseconds(0), polled_));
    int64_t dropped = 0;
    for (const PartitionBatch& pb : polled_.batches) {
      const Array& values = pb.records.column(kValueColumn);
      SABOT_ASSIGN_OR_RETURN(codec::DecodeResult decoded, decoder_->decode(values));
      for (const codec::RecordError& err : decoded.errors) {
        const int64_t offset = pb.base_offset + err.index;
        switch (policy_) {
          case BadRecordPolicy::kFail:
            return Status::invalid_data("bad record in topic '" + topic_name_ + "' partition " +
                                        std::to_string(pb.partition.value()) + " offset " +
                                        std::to_string(offset) + ": " + err.message);
          case BadRecordPolicy::kSkip:
            ++dropped;
            break;
          case BadRecordPolicy::kDeadLetter:
            SABOT_RETURN_IF_ERROR(send_dead_letter(pb, err, offset));
            ++dropped;
            break;
        }
      }
      if (decoded.batch.num_rows() > 0) {
        pending_.push_back({pb.partition.value(), pb.base_offset, std::move(decoded.batch)});
      }
    }
    if (dead_letters_ && dropped > 0) SABOT_RETURN_IF_ERROR(dead_letters_->flush());
    if (polled_.end_of_input) ended_ = true;
    if (!pending_.empty()) {
      SourcePoll p = take_pending();
      p.dropped = dropped;
      return p;
    }
    SourcePoll p = ended_ ? SourcePoll::end() : SourcePoll::idle();
    p.dropped = dropped;
    return p;
  }

  // A partition's position is the offset of its first record not yet returned: the first
  // pending batch's, else the consumer's. Bad records before it were already counted or sent to
  // the dead-letter topic; after a restore, those after it are handled again.
  Result<std::vector<runtime::SplitPosition>> snapshot_positions() const override {
    std::vector<runtime::SplitPosition> out;
    for (PartitionId p : reader_->assignment()) {
      int64_t at = -1;
      for (const Pending& e : pending_) {
        if (e.partition == p.value()) {
          at = e.base_offset;
          break;
        }
      }
      if (at < 0) {
        SABOT_ASSIGN_OR_RETURN(at, reader_->position(p));
      }
      out.push_back({p.value(), runtime::encode_position(at)});
    }
    return out;
  }
  Status restore_positions(std::span<const runtime::SplitPosition> positions) override {
    for (const auto& p : positions) {
      SABOT_ASSIGN_OR_RETURN(int64_t offset,
                             runtime::decode_position(p, "topic '" + topic_name_ + "'"));
      SABOT_RETURN_IF_ERROR(reader_->seek(PartitionId(p.split), offset)
                                .with_context("restoring topic '" + topic_name_ + "'"));
    }
    return Status::ok();
  }

  std::string position() const override {
    std::string out;
    for (PartitionId p : reader_->assignment()) {
      auto pos = reader_->position(p);
      if (!out.empty()) out += ' ';
      out += 'p';
      out += std::to_string(p.value());
      out += '@';
      out += pos.is_ok() ? std::to_string(*pos) : std::string("?");
    }
    return out;
  }

 private:
  SourcePoll take_pending() {
    SourcePoll p = SourcePoll::of(std::move(pending_.front().rows));
    p.split = pending_.front().partition;
    pending_.pop_front();
    return p;
  }

  Status send_dead_letter(const PartitionBatch& pb, const codec::RecordError& err, int64_t offset) {
    const Array& keys = pb.records.column(kKeyColumn);
    const Array& values = pb.records.column(kValueColumn);
    const int64_t row = err.index;
    // Appended piecewise: long `+` chains trip a GCC 12 -Wrestrict false positive.
    std::string letter = "{\"topic\":\"";
    letter += json_escape(topic_name_);
    letter += "\",\"partition\":";
    letter += std::to_string(pb.partition.value());
    letter += ",\"offset\":";
    letter += std::to_string(offset);
    letter += ",\"error\":\"";
    letter += json_escape(err.message);
    letter += "\",\"value\":";
    if (values.is_null(row)) {
      letter += "null";
    } else {
      letter += '"';
      letter += json_escape(values.string_view(row));
      letter += '"';
    }
    letter += '}';
    std::optional<std::string_view> key;
    if (keys.is_valid(row)) key = keys.string_view(row);
    auto ts = pb.records.column(kTimestampColumn).value<int64_t>(row);
    return dead_letters_->send(key, letter, Timestamp(ts)).status();
  }

  std::string topic_name_;
  std::unique_ptr<MemoryTopicReader> reader_;
  std::unique_ptr<codec::Decoder> decoder_;
  BadRecordPolicy policy_;
  std::unique_ptr<MemoryTopicWriter> dead_letters_;
  PollResult polled_;
  // Decoded rows polled from the topic but not yet returned, with the offset of the first record
  // they were decoded from (a checkpoint's position when they are the partition's first pending).
  struct Pending {
    int partition;
    int64_t base_offset;
    RecordBatch rows;
  };
  std::deque<Pending> pending_;
  bool ended_ = false;
};

class TopicSource final : public Source {
 public:
  TopicSource(TopicSourceOptions options, TopicPtr topic)
      : options_(std::move(options)), topic_(std::move(topic)) {}
  std::string name() const override { return "topic:" + topic_->name(); }
  SchemaPtr schema() const override { return options_.codec->schema(); }
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
    return std::unique_ptr<SourceReader>(new TopicReader(topic_->name(), std::move(reader),
                                                         std::move(decoder), options_.on_bad_record,
                                                         std::move(dead_letters)));
  }
  // Positions are offsets: a partition restarts at any offset the topic still holds.
  bool checkpointable() const override { return true; }

 private:
  TopicSourceOptions options_;
  TopicPtr topic_;
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

}  // namespace

Result<std::shared_ptr<const Source>> topic_source(TopicSourceOptions options) {
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
  if (!problems.empty()) {
    std::string msg = "topic source '" + options.url + "':";
    for (const std::string& p : problems) msg += " " + p + ";";
    msg.pop_back();
    return Status::invalid_argument(std::move(msg));
  }
  return std::shared_ptr<const Source>(
      std::make_shared<TopicSource>(std::move(options), std::move(topic)));
}

std::shared_ptr<const runtime::OperatorFactory> topic_sink(TopicSinkOptions options) {
  return std::make_shared<TopicSinkFactory>(std::move(options));
}

}  // namespace sabot::connectors
