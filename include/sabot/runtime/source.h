// Sources: where a job's data comes from. A Source is an immutable description shared by all its
// parallel readers (hence shared_ptr); each subtask opens one SourceReader for its share of the
// splits (partitions) and polls it from one thread at a time.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sabot/base/bytes.h"
#include "sabot/base/status.h"
#include "sabot/columnar/record_batch.h"
#include "sabot/runtime/operator.h"

namespace sabot::runtime {

struct SourcePoll {
  enum class Kind {
    kBatch,  // `batch` holds new rows
    kIdle,   // nothing available now; the task yields and polls again shortly
    kEnd,    // every split of this reader is exhausted
  };
  Kind kind = Kind::kIdle;
  columnar::RecordBatch batch;
  // Set when the reader's watermark advanced (minimum over its splits); sent after the batch.
  std::optional<Timestamp> watermark;
  // Set to inject checkpoint barrier n after the batch: the reader's positions at this point
  // belong to checkpoint n.
  std::optional<CheckpointId> barrier;
  // Records dropped by a skip policy since the last poll (malformed input); counted in metrics.
  int64_t dropped = 0;
  // The split (partition) the batch came from, for per-split watermarks; -1 when the reader does
  // not say (its batches then count as one split).
  int split = -1;

  static SourcePoll of(columnar::RecordBatch b) {
    SourcePoll p;
    p.kind = Kind::kBatch;
    p.batch = std::move(b);
    return p;
  }
  static SourcePoll idle() { return SourcePoll(); }
  static SourcePoll end() {
    SourcePoll p;
    p.kind = Kind::kEnd;
    return p;
  }
};

// Where one split (partition) of a source stands: what a checkpoint stores for it. The bytes are
// understood by the Source that made them (e.g. the next offset of a partition); split numbers
// are the Source's, so a checkpoint restores into readers of any parallelism.
struct SplitPosition {
  int split = 0;
  std::string bytes;
};

// How far a reader is in one split whose positions are offsets: the offset of the next record it
// will return and, where the broker knows it, the split's end offset (the offset the next record
// appended will get; -1: unknown). Lag is end_offset - offset.
struct SplitProgress {
  int split = 0;
  int64_t offset = -1;
  int64_t end_offset = -1;
};

// Positions that are one number (a row, an offset, an event index): the encoding the built-in
// sources share.
inline std::string encode_position(int64_t value) {
  std::string out;
  ByteWriter(&out).put<int64_t>(value);
  return out;
}
// InvalidData naming `source` and the split when the bytes are not one encoded number.
inline Result<int64_t> decode_position(const SplitPosition& position, std::string_view source) {
  const std::string what =
      std::string(source) + " position of split " + std::to_string(position.split);
  ByteReader r(position.bytes, what);
  int64_t v = 0;
  SABOT_RETURN_IF_ERROR(r.get(&v));
  SABOT_RETURN_IF_ERROR(r.expect_end());
  return v;
}

class SourceReader {
 public:
  virtual ~SourceReader() = default;
  // Must not block for long: return kIdle when nothing is ready.
  virtual Result<SourcePoll> poll(int64_t max_rows) = 0;
  // Human-readable position per split, e.g. "p0@1200 p3@98" (metrics; checkpoints store bytes).
  virtual std::string position() const { return {}; }
  // Offsets and end offsets of the reader's splits (metrics: sabot_source_partition_offset and
  // _lag_records); empty (default) when positions are not offsets. Called on the source task's
  // thread between polls, at most about once per second of the job's clock and at the end, so it
  // may take a lock but must not wait on the network (use cached end offsets).
  virtual std::vector<SplitProgress> progress() const { return {}; }

  // The position of every split of this reader just after the last batch poll() returned (rows
  // read but not yet returned are not included): the source's part of a checkpoint. Only called
  // when Source::checkpointable().
  virtual Result<std::vector<SplitPosition>> snapshot_positions() const {
    return Status::not_implemented("this source cannot be checkpointed");
  }
  // Called once after open_reader() and before the first poll() on recovery: continue the listed
  // splits (each one of this reader's) from their positions; unlisted splits start afresh.
  // InvalidData naming the split when a position does not decode or lies outside the split.
  virtual Status restore_positions(std::span<const SplitPosition> positions) {
    return Status::not_implemented("this source cannot be restored from a checkpoint");
  }
  // The positions snapshot_positions() gave for checkpoint `id` (called right after it), and
  // the completion of checkpoint `id` (the newest completed; earlier ones may be skipped): a
  // source may then publish the positions of a durable checkpoint, e.g. commit Kafka offsets
  // to a consumer group for monitoring. Default: nothing.
  virtual void positions_taken(CheckpointId id, const std::vector<SplitPosition>& positions) {}
  virtual Status notify_checkpoint_complete(CheckpointId id) { return Status::ok(); }
};

class Source {
 public:
  virtual ~Source() = default;
  virtual std::string name() const = 0;
  // Known when the plan is built, so that the plan can be validated before it runs.
  virtual columnar::SchemaPtr schema() const = 0;
  // Number of splits (partitions). Subtask i of p reads splits i, i + p, i + 2p, ...
  virtual int num_splits() const = 0;
  virtual Result<std::unique_ptr<SourceReader>> open_reader(std::span<const int> splits,
                                                            const OperatorContext& ctx) const = 0;
  // True when its readers implement snapshot_positions() and restore_positions(), so that a job
  // reading it can be checkpointed (a job with checkpointing refuses other sources before it
  // starts).
  virtual bool checkpointable() const { return false; }
};

}  // namespace sabot::runtime
