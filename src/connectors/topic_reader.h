// The SourceReader of every topic source, whatever the broker: polls a RecordReader, decodes the
// values with the codec, applies the bad-record policy, adds the metadata columns, and keeps the
// positions a checkpoint stores. Internal to connectors; memory:// and kafka:// both use it.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "sabot/base/json_text.h"
#include "sabot/codec/codec.h"
#include "sabot/connectors/bad_records.h"
#include "sabot/connectors/memory_broker.h"
#include "sabot/connectors/topic.h"
#include "sabot/runtime/source.h"

namespace sabot::connectors {

// The source schema: the codec's fields followed by the named metadata columns. InvalidArgument
// when a metadata column's name is already a field.
Result<columnar::SchemaPtr> topic_source_schema(const columnar::SchemaPtr& decoded,
                                                const MessageColumns& columns);

// Single-threaded, like every SourceReader.
class TopicRecordSourceReader final : public runtime::SourceReader {
 public:
  // Called with the positions of a completed checkpoint (kafka:// commits them to its group).
  using CommitFn = std::function<Status(const std::vector<runtime::SplitPosition>&)>;

  TopicRecordSourceReader(std::string topic_name, std::unique_ptr<RecordReader> reader,
                          std::unique_ptr<codec::Decoder> decoder, BadRecordPolicy policy,
                          std::unique_ptr<RecordWriter> dead_letters, MessageColumns columns,
                          columnar::SchemaPtr schema, CommitFn commit = nullptr);

  Result<runtime::SourcePoll> poll(int64_t max_rows) override;
  // A partition's position is the offset of its first record not yet returned: the first
  // pending batch's, else the consumer's. Bad records before it were already counted or sent to
  // the dead-letter topic; after a restore, those after it are handled again.
  Result<std::vector<runtime::SplitPosition>> snapshot_positions() const override;
  Status restore_positions(std::span<const runtime::SplitPosition> positions) override;
  std::string position() const override;
  // Per assigned partition: the offset of its first record not yet returned (as in
  // snapshot_positions) and the broker's end offset (RecordReader::cached_end_offset; -1 unknown).
  std::vector<runtime::SplitProgress> progress() const override;
  // With a commit function: the positions of each checkpoint are handed to it once the
  // checkpoint completes.
  void positions_taken(CheckpointId id,
                       const std::vector<runtime::SplitPosition>& positions) override;
  Status notify_checkpoint_complete(CheckpointId id) override;

  // Destroys the reader first: a Kafka consumer in group mode asks first_pending_offset() while
  // it leaves its group.
  ~TopicRecordSourceReader() override;

  // The offset of the first record of `partition` polled but not yet returned by poll(), if any.
  std::optional<int64_t> first_pending_offset(int partition) const;

  RecordReader& reader() { return *reader_; }

 private:
  runtime::SourcePoll take_pending();
  Status send_dead_letter(const PartitionBatch& pb, const codec::RecordError& err, int64_t offset);
  // Appends the metadata columns of the rows of `pb` that decoded (all but `errors`).
  Result<columnar::RecordBatch> with_metadata(const PartitionBatch& pb,
                                              const std::vector<codec::RecordError>& errors,
                                              columnar::RecordBatch decoded) const;

  std::string topic_name_;
  std::unique_ptr<RecordReader> reader_;
  std::unique_ptr<codec::Decoder> decoder_;
  BadRecordPolicy policy_;
  std::unique_ptr<RecordWriter> dead_letters_;
  MessageColumns columns_;
  columnar::SchemaPtr schema_;
  CommitFn commit_;
  PollResult polled_;
  // Decoded rows polled from the topic but not yet returned, with the offset of the first record
  // they were decoded from (a checkpoint's position when they are the partition's first pending).
  struct Pending {
    int partition;
    int64_t base_offset;
    columnar::RecordBatch rows;
  };
  std::deque<Pending> pending_;
  bool ended_ = false;
  std::vector<std::pair<CheckpointId, std::vector<runtime::SplitPosition>>> uncommitted_;
};

}  // namespace sabot::connectors
