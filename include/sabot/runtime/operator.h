// The operator interface: an operator is configured once (by its factory, which validates) and then
// only runs. One instance exists per parallel subtask and is driven by one thread at a time, so an
// operator needs no locking of its own. Chained operators call each other through Output with no
// queue in between.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/clock.h"
#include "sabot/base/ids.h"
#include "sabot/base/status.h"
#include "sabot/checkpoint/storage.h"
#include "sabot/columnar/record_batch.h"

namespace sabot::state {
class StateBackend;
}  // namespace sabot::state

namespace sabot::runtime {

// Where an operator sends what it produces. Emitting never blocks: the task checks for space in its
// output channels before it processes the next input, so the output of one input event may briefly
// exceed a channel's capacity (by design; it keeps memory bounded without parking mid-operator).
class Output {
 public:
  virtual ~Output() = default;
  virtual Status emit(const columnar::RecordBatch& batch) = 0;
  virtual Status emit_watermark(Timestamp time) = 0;
  // A batch for the side output `tag` (e.g. "late" for late records). Consumers read it with
  // DataStream::side_output(tag); when nobody does, the batch is dropped (and counted).
  virtual Status emit_side(std::string_view tag, const columnar::RecordBatch& batch) {
    return Status::ok();
  }
};

struct OperatorCounters;

// What a job promises about its sinks' output (ExecutionOptions::delivery).
//   kExactlyOnce: checkpointing is on; two-phase-commit sinks stage what they receive, pre-commit
//     it in snapshot_state(n) and make it visible in notify_checkpoint_complete(n), so the output
//     holds only results of completed checkpoints and, after recovery, every result once.
//   kAtLeastOnce: sinks write at once; after recovery results since the last checkpoint repeat.
//   kNone: no checkpoints; sinks write at once.
enum class DeliveryGuarantee : uint8_t { kNone, kAtLeastOnce, kExactlyOnce };

// What an operator knows about where it runs.
struct OperatorContext {
  std::string operator_name;  // e.g. "filter#3"
  // Stable identity of the operator across runs and job versions (DataStream::uid, or a default
  // derived from the plan); snapshots are addressed by it and name it (state/snapshot.h).
  std::string uid;
  int subtask_index = 0;
  int parallelism = 1;
  int max_parallelism = 128;
  const Clock* clock = &SystemClock::instance();
  // This subtask's metrics; operators add to records_dropped (e.g. late records they drop).
  // Never null while the job runs.
  OperatorCounters* counters = nullptr;
  DeliveryGuarantee delivery = DeliveryGuarantee::kNone;
  // Where keyed process functions keep their state (ExecutionOptions::state_backend); null: the
  // memory backend.
  const state::StateBackend* state_backend = nullptr;
  // Keyed process functions on RocksDB snapshot incrementally (the snapshot refers to the
  // instance's SST files, which the checkpoint storage keeps once in its shared directory; see
  // take_shared_files): on when the job writes checkpoints to a storage and
  // ExecutionOptions::incremental_checkpoints is set.
  bool incremental_checkpoints = false;
  // Where the shared files of the snapshot being restored are (JobSnapshot::shared_dir).
  std::string restore_shared_dir;
};

class Operator {
 public:
  virtual ~Operator() = default;

  // Called once before the first event, on the thread that will run the operator.
  virtual Status open(const OperatorContext& ctx) { return Status::ok(); }
  // A batch from input `input` (0, or 1 for the second input of a two-input operator).
  virtual Status process_batch(const columnar::RecordBatch& batch, int input, Output& out) = 0;
  // The input watermark advanced (minimum over all input channels). Default: forward it.
  virtual Status process_watermark(Timestamp time, Output& out) { return out.emit_watermark(time); }
  // All inputs ended: flush what is buffered. Called once; nothing arrives afterwards.
  virtual Status finish(Output& out) { return Status::ok(); }

  // Processing-time callbacks. The task asks, after running the operator, for the earliest clock
  // time at which it wants on_processing_time (Timestamp::max(): none) and calls it once that time
  // has come, even while no input arrives (it then polls the clock about every millisecond).
  virtual Timestamp next_processing_time() const { return Timestamp::max(); }
  virtual Status on_processing_time(Timestamp now, Output& out) { return Status::ok(); }

  // Checkpoint hooks. snapshot_state runs when barrier `id` has arrived on every input (aligned);
  // it appends the operator's state to `out` in the one snapshot format (state/snapshot.h:
  // addressed by ctx.uid, split into key-group sections). On recovery restore_state runs after
  // open() and before the first event, once for every snapshot of this uid that may hold one of
  // the subtask's key groups (after rescaling, several): the operator keeps the sections of the
  // key groups it owns (subtask_for_key_group) and merges operator-wide sections. A snapshot that
  // does not decode is an error naming the uid, the state and the byte offset.
  // notify_checkpoint_complete(n) runs on the operator's thread once checkpoint n is durable (every
  // subtask acknowledged and it is stored): two-phase-commit sinks commit what they pre-committed
  // up to n. It may be skipped for a checkpoint when a later one completes first (commit everything
  // up to the id given). End of input under kExactlyOnce: after finish() the task takes one more
  // snapshot_state(F) (the final checkpoint F, with the sources at their end), and the job ends
  // only after notify_checkpoint_complete(F) ran, so what finish() flushed is committed too.
  // The defaults suit stateless operators.
  virtual Status snapshot_state(CheckpointId id, std::string* out) { return Status::ok(); }
  // Files the snapshot just taken refers to by name instead of holding their bytes (RocksDB SST
  // files of an incremental checkpoint): the checkpoint storage copies each once into its shared
  // directory, reading it from SharedFile::source_path, which the operator keeps until
  // notify_checkpoint_complete of this or a later checkpoint. Called right after snapshot_state.
  virtual std::vector<checkpoint::SharedFile> take_shared_files() { return {}; }
  virtual Status restore_state(std::string_view data) { return Status::ok(); }
  virtual Status notify_checkpoint_complete(CheckpointId id) { return Status::ok(); }

  // Keyed stateful operators: how many keys the subtask holds now (the metric
  // sabot_operator_state_keys); -1 (default): not a keyed stateful operator. Called on the
  // operator's thread after each batch, watermark and timer, so it must be O(1).
  virtual int64_t state_keys() const { return -1; }
};

}  // namespace sabot::runtime
