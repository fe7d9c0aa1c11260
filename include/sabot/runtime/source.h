// Sources: where a job's data comes from. A Source is an immutable description shared by all its
// parallel readers (hence shared_ptr); each subtask opens one SourceReader for its share of the
// splits (partitions) and polls it from one thread at a time.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>

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

class SourceReader {
 public:
  virtual ~SourceReader() = default;
  // Must not block for long: return kIdle when nothing is ready.
  virtual Result<SourcePoll> poll(int64_t max_rows) = 0;
  // Human-readable position per split, e.g. "p0@1200 p3@98" (metrics; checkpoints store bytes).
  virtual std::string position() const { return {}; }
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
};

}  // namespace sabot::runtime
