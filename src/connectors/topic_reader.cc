#include "connectors/topic_reader.h"

#include <cstdio>

#include "sabot/base/json_text.h"
#include "sabot/columnar/builder.h"

namespace sabot::connectors {

using columnar::Array;
using columnar::RecordBatch;
using runtime::SourcePoll;

Result<columnar::SchemaPtr> topic_source_schema(const columnar::SchemaPtr& decoded,
                                                const MessageColumns& columns) {
  if (columns.empty()) return decoded;
  std::vector<columnar::Field> fields = decoded->fields();
  auto add = [&](const std::string& name, columnar::DataType type, bool nullable) {
    if (!name.empty()) fields.push_back(columnar::field(name, type, nullable));
  };
  add(columns.key, columnar::binary(), true);
  add(columns.timestamp, columnar::timestamp(columnar::TimeUnit::kMilli), false);
  add(columns.partition, columnar::int32(), false);
  add(columns.offset, columnar::int64(), false);
  add(columns.headers, columnar::utf8(), false);
  auto schema = columnar::Schema::make(std::move(fields));
  if (!schema.is_ok()) {
    return Status::invalid_argument("topic source metadata columns: " + schema.status().message());
  }
  return *schema;
}

TopicRecordSourceReader::TopicRecordSourceReader(std::string topic_name,
                                                 std::unique_ptr<RecordReader> reader,
                                                 std::unique_ptr<codec::Decoder> decoder,
                                                 BadRecordPolicy policy,
                                                 std::unique_ptr<RecordWriter> dead_letters,
                                                 MessageColumns columns, columnar::SchemaPtr schema,
                                                 CommitFn commit)
    : topic_name_(std::move(topic_name)),
      reader_(std::move(reader)),
      decoder_(std::move(decoder)),
      policy_(policy),
      dead_letters_(std::move(dead_letters)),
      columns_(std::move(columns)),
      schema_(std::move(schema)),
      commit_(std::move(commit)) {}

TopicRecordSourceReader::~TopicRecordSourceReader() { reader_.reset(); }

std::optional<int64_t> TopicRecordSourceReader::first_pending_offset(int partition) const {
  for (const Pending& e : pending_) {
    if (e.partition == partition) return e.base_offset;
  }
  return std::nullopt;
}

Result<SourcePoll> TopicRecordSourceReader::poll(int64_t max_rows) {
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
      RecordBatch rows = std::move(decoded.batch);
      if (!columns_.empty()) {
        SABOT_ASSIGN_OR_RETURN(rows, with_metadata(pb, decoded.errors, std::move(rows)));
      }
      pending_.push_back({pb.partition.value(), pb.base_offset, std::move(rows)});
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

Result<RecordBatch> TopicRecordSourceReader::with_metadata(
    const PartitionBatch& pb, const std::vector<codec::RecordError>& errors,
    RecordBatch decoded) const {
  const int64_t n = pb.records.num_rows();
  // The rows that decoded, in order (errors are by ascending index).
  std::vector<int64_t> rows;
  rows.reserve(static_cast<size_t>(n));
  size_t e = 0;
  for (int64_t i = 0; i < n; ++i) {
    while (e < errors.size() && errors[e].index < i) ++e;
    if (e < errors.size() && errors[e].index == i) continue;
    rows.push_back(i);
  }
  if (static_cast<int64_t>(rows.size()) != decoded.num_rows()) {
    return Status::internal("topic '" + topic_name_ + "': " + std::to_string(decoded.num_rows()) +
                            " decoded rows for " + std::to_string(rows.size()) + " good records");
  }
  std::vector<Array> columns = decoded.columns();
  const auto m = static_cast<int64_t>(rows.size());
  if (!columns_.key.empty()) {
    const Array& keys = pb.records.column(kKeyColumn);
    columnar::BinaryBuilder b(columnar::binary());
    for (int64_t r : rows) {
      if (keys.is_null(r)) {
        b.append_null();
      } else {
        b.append(keys.string_view(r));
      }
    }
    columns.push_back(b.finish());
  }
  if (!columns_.timestamp.empty()) {
    const Array& ts = pb.records.column(kTimestampColumn);
    columnar::Int64Builder b(columnar::timestamp(columnar::TimeUnit::kMilli));
    b.reserve(m);
    for (int64_t r : rows) b.unsafe_append(ts.value<int64_t>(r));
    columns.push_back(b.finish());
  }
  if (!columns_.partition.empty()) {
    columnar::Int32Builder b(columnar::int32());
    b.reserve(m);
    for (int64_t i = 0; i < m; ++i) b.unsafe_append(pb.partition.value());
    columns.push_back(b.finish());
  }
  if (!columns_.offset.empty()) {
    columnar::Int64Builder b(columnar::int64());
    b.reserve(m);
    for (int64_t r : rows) b.unsafe_append(pb.base_offset + r);
    columns.push_back(b.finish());
  }
  if (!columns_.headers.empty()) {
    columnar::BinaryBuilder b(columnar::utf8());
    for (int64_t r : rows) {
      if (pb.headers.has_value() && pb.headers->is_valid(r)) {
        b.append(pb.headers->string_view(r));
      } else {
        b.append("{}");
      }
    }
    columns.push_back(b.finish());
  }
  return RecordBatch::make_unchecked(schema_, std::move(columns), m);
}

Result<std::vector<runtime::SplitPosition>> TopicRecordSourceReader::snapshot_positions() const {
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

Status TopicRecordSourceReader::restore_positions(
    std::span<const runtime::SplitPosition> positions) {
  for (const auto& p : positions) {
    SABOT_ASSIGN_OR_RETURN(int64_t offset,
                           runtime::decode_position(p, "topic '" + topic_name_ + "'"));
    SABOT_RETURN_IF_ERROR(reader_->seek(PartitionId(p.split), offset)
                              .with_context("restoring topic '" + topic_name_ + "'"));
  }
  return Status::ok();
}

void TopicRecordSourceReader::positions_taken(
    CheckpointId id, const std::vector<runtime::SplitPosition>& positions) {
  if (commit_ == nullptr) return;
  uncommitted_.emplace_back(id, positions);
}

Status TopicRecordSourceReader::notify_checkpoint_complete(CheckpointId id) {
  if (commit_ == nullptr) return Status::ok();
  size_t newest = uncommitted_.size();
  for (size_t i = 0; i < uncommitted_.size() && uncommitted_[i].first <= id; ++i) newest = i;
  if (newest == uncommitted_.size()) return Status::ok();
  Status s = commit_(uncommitted_[newest].second);
  uncommitted_.erase(uncommitted_.begin(),
                     uncommitted_.begin() + static_cast<std::ptrdiff_t>(newest + 1));
  return s;
}

std::vector<runtime::SplitProgress> TopicRecordSourceReader::progress() const {
  std::vector<runtime::SplitProgress> out;
  for (PartitionId p : reader_->assignment()) {
    runtime::SplitProgress sp;
    sp.split = p.value();
    for (const Pending& e : pending_) {
      if (e.partition == p.value()) {
        sp.offset = e.base_offset;
        break;
      }
    }
    if (sp.offset < 0) {
      auto at = reader_->position(p);
      if (at.is_ok()) sp.offset = *at;
    }
    auto end = reader_->cached_end_offset(p);
    if (end.is_ok()) sp.end_offset = *end;
    out.push_back(sp);
  }
  return out;
}

std::string TopicRecordSourceReader::position() const {
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

SourcePoll TopicRecordSourceReader::take_pending() {
  SourcePoll p = SourcePoll::of(std::move(pending_.front().rows));
  p.split = pending_.front().partition;
  pending_.pop_front();
  return p;
}

Status TopicRecordSourceReader::send_dead_letter(const PartitionBatch& pb,
                                                 const codec::RecordError& err, int64_t offset) {
  const Array& keys = pb.records.column(kKeyColumn);
  const Array& values = pb.records.column(kValueColumn);
  const int64_t row = err.index;
  // Appended piecewise: long `+` chains trip a GCC 12 -Wrestrict false positive.
  std::string letter = "{\"topic\":\"";
  letter += json_escaped(topic_name_);
  letter += "\",\"partition\":";
  letter += std::to_string(pb.partition.value());
  letter += ",\"offset\":";
  letter += std::to_string(offset);
  letter += ",\"error\":\"";
  letter += json_escaped(err.message);
  letter += "\",\"value\":";
  if (values.is_null(row)) {
    letter += "null";
  } else {
    letter += '"';
    letter += json_escaped(values.string_view(row));
    letter += '"';
  }
  letter += '}';
  std::optional<std::string_view> key;
  if (keys.is_valid(row)) key = keys.string_view(row);
  auto ts = pb.records.column(kTimestampColumn).value<int64_t>(row);
  return dead_letters_->send(key, letter, Timestamp(ts)).status();
}

}  // namespace sabot::connectors
