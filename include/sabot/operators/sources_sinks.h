// Built-in sources (in-memory batches, generator functions) and sinks (collect, callback, print,
// blackhole). Sinks may run with several subtasks at once: the shared objects they write to
// (CollectedBatches, the callback, the stream) are guarded by a mutex, so user code sees one call
// at a time.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <vector>

#include "sabot/runtime/plan.h"
#include "sabot/runtime/source.h"

namespace sabot::operators {

// ---- sources ----

// Each batch is one split; a subtask reads its batches in order, at most source_batch_rows rows at
// a time. Checkpoints store each batch's next row. `schema` may be null when `batches` is not empty
// (the first batch's schema is used).
Result<std::shared_ptr<const runtime::Source>> batches_source(
    std::vector<columnar::RecordBatch> batches, columnar::SchemaPtr schema = nullptr);

// Produces rows on demand: called with the split, the index of the split's next row and the
// number of rows wanted; returns a batch (any size, may be empty) or nullopt at the end of the
// split. Called from one thread at a time per split. Checkpoints store each split's next row, so
// the function must give the same rows for the same (split, next_row) on every run.
using GeneratorFunction = std::function<Result<std::optional<columnar::RecordBatch>>(
    int split, int64_t next_row, int64_t max_rows)>;
std::shared_ptr<const runtime::Source> generator_source(std::string name,
                                                        columnar::SchemaPtr schema, int num_splits,
                                                        GeneratorFunction fn);

// ---- sinks ----

// What a collect sink gathered: every batch that reached it, in arrival order per subtask.
class CollectedBatches {
 public:
  void add(const columnar::RecordBatch& batch);
  std::vector<columnar::RecordBatch> batches() const;
  int64_t num_rows() const;
  // Everything as one batch (empty batch of `schema` when nothing arrived).
  Result<columnar::RecordBatch> to_batch() const;
  void set_schema(columnar::SchemaPtr schema);
  columnar::SchemaPtr schema() const;

 private:
  mutable std::mutex mu_;
  columnar::SchemaPtr schema_;
  std::vector<columnar::RecordBatch> batches_;
};

std::shared_ptr<const runtime::OperatorFactory> collect_sink(
    std::shared_ptr<CollectedBatches> into);

using BatchCallback = std::function<Status(const columnar::RecordBatch&)>;
std::shared_ptr<const runtime::OperatorFactory> callback_sink(BatchCallback fn);

// One line per row, "{name: value, ...}", prefixed with "subtask> " when parallel.
std::shared_ptr<const runtime::OperatorFactory> print_sink(std::ostream* out);

// Discards everything (benchmarks). Rows are still counted in the job metrics.
std::shared_ptr<const runtime::OperatorFactory> blackhole_sink();

}  // namespace sabot::operators
