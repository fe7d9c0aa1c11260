// The operator under KeyedProcessFunction (api/process.h) and the rolling reduce/aggregate built on
// it: keyed state in a KeyedStateBackend, per-key event-time and processing-time timers, the
// snapshot of both in one envelope (state type "process-function": the operator-wide section
// describes the states, each key group's section holds its keys, their state entries and their
// timers), restore at any parallelism, and forgetting keys that have neither state nor timers.
// The typed part (reading rows into the user's struct, calling the function) is a
// KeyedProcessDriver the API implements; this operator calls it once per batch and once per timer.
// One instance per subtask, driven by one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "sabot/base/bytes.h"
#include "sabot/base/clock.h"
#include "sabot/runtime/operator.h"
#include "sabot/state/keyed_state_backend.h"
#include "sabot/state/rocksdb_backend.h"

namespace sabot::operators {

// The state type of the process operator's snapshots.
inline constexpr std::string_view kProcessStateType = "process-function";

// Timers ordered by time, then key; a (time, key) pair at most once.
using KeyedTimerSet = std::set<std::pair<int64_t, state::KeyId>>;

// What the function's Context reads and writes: shared by the operator and the driver.
struct KeyedProcessScope {
  state::KeyedStateBackend* backend = nullptr;
  const Clock* clock = nullptr;
  state::KeyId key = state::kNoKey;        // the current key
  std::optional<int64_t> timestamp;        // the current row's or timer's time
  Timestamp watermark = Timestamp::min();  // the last watermark seen
  KeyedTimerSet event_timers;
  KeyedTimerSet processing_timers;
};

// The typed half of the operator.
class KeyedProcessDriver {
 public:
  virtual ~KeyedProcessDriver() = default;
  // Calls the function's open(); `scope` lives as long as the operator.
  virtual Status open(KeyedProcessScope* scope, const runtime::OperatorContext& ctx) = 0;
  // Runs the function over every row of `batch`; ids[r] is row r's key. Sets the backend's and the
  // scope's current key per row.
  virtual Status process_rows(const columnar::RecordBatch& batch,
                              std::span<const state::KeyId> ids) = 0;
  // The same for a batch of input `input` of a two-input operator (KeyedInput); ids[r] is
  // state::kNoKey for a row of a lookup-only input whose key the registry does not hold.
  virtual Status process_input_rows(int input, const columnar::RecordBatch& batch,
                                    std::span<const state::KeyId> ids) {
    (void)input;
    return process_rows(batch, ids);
  }
  // Runs the function's on_timer for the scope's current key at `time`.
  virtual Status on_timer(Timestamp time) = 0;
  // The rows emitted since the last call, if any.
  virtual Result<std::optional<columnar::RecordBatch>> take_output() = 0;
  // The backend is about to forget keys without state or timers and renumber the others: a driver
  // that holds KeyIds between calls writes what it holds into state now.
  virtual Status before_forgetting_keys() { return Status::ok(); }
};

// How the rows of one input are keyed: by `key_columns` (of the same types on every input); the
// rows of a lookup-only input read state but register no keys (a join's probe side, whose keys
// would otherwise fill the registry with keys that never have state).
struct KeyedInput {
  std::vector<int> key_columns;
  bool lookup_only = false;
};

class KeyedProcessOperator final : public runtime::Operator {
 public:
  // `ctx` is the subtask's context as given to the factory (uid, parallelism, key groups).
  KeyedProcessOperator(std::unique_ptr<KeyedProcessDriver> driver, std::vector<int> key_columns,
                       std::unique_ptr<state::KeyedStateBackend> backend,
                       const runtime::OperatorContext& ctx);
  // Several inputs, each keyed by its own columns (inputs[i] for input i).
  KeyedProcessOperator(std::unique_ptr<KeyedProcessDriver> driver, std::vector<KeyedInput> inputs,
                       std::unique_ptr<state::KeyedStateBackend> backend,
                       const runtime::OperatorContext& ctx);

  Status open(const runtime::OperatorContext& ctx) override;
  Status process_batch(const columnar::RecordBatch& batch, int input,
                       runtime::Output& out) override;
  Status process_watermark(Timestamp t, runtime::Output& out) override;
  Timestamp next_processing_time() const override;
  Status on_processing_time(Timestamp now, runtime::Output& out) override;
  // One envelope addressed by the operator uid: the operator-wide section holds the states'
  // descriptions, each key group with keys a section with its keys, their entries and
  // [u64 count, (u32 key index, i64 time)...] for event-time, then processing-time timers.
  Status snapshot_state(CheckpointId id, std::string* out) override;
  // Keeps the sections of owned key groups (adding keys, entries and timers; several snapshots add
  // up) and skips the others. No operator-wide state is merged beyond the states' descriptions.
  Status restore_state(std::string_view data) override;
  // With OperatorContext::incremental_checkpoints on a RocksDB backend, an envelope of state type
  // kProcessRocksDbStateType instead: the instance's RocksDB checkpoint (its manifest and small
  // private files) referring to its SST files by shared name (take_shared_files hands them to the
  // checkpoint storage), and the timers by key bytes.
  std::vector<checkpoint::SharedFile> take_shared_files() override;
  // Drops the local RocksDB checkpoints of `id` and earlier (their files are in the storage).
  Status notify_checkpoint_complete(CheckpointId id) override;
  // The keys its key registry holds (num_keys()).
  int64_t state_keys() const override { return num_keys(); }

  // For tests and metrics: keys the registry holds, live timers.
  uint32_t num_keys() const { return backend_->keys().num_keys(); }
  size_t num_timers() const { return scope_.event_timers.size() + scope_.processing_timers.size(); }

 private:
  Status fire(KeyedTimerSet& timers, int64_t until, runtime::Output& out);
  Status flush(runtime::Output& out);
  Status maybe_forget_keys();

  std::unique_ptr<KeyedProcessDriver> driver_;
  std::vector<KeyedInput> inputs_;
  std::vector<columnar::Array> lookup_keys_;
  std::unique_ptr<state::KeyedStateBackend> backend_;
  runtime::OperatorContext ctx_;
  KeyedProcessScope scope_;
  std::vector<state::KeyId> ids_;
  // Local RocksDB checkpoints (hard links) whose files the storage may still be copying, by id.
  std::map<int64_t, std::unique_ptr<state::RocksDbLocalCheckpoint>> local_checkpoints_;
  std::vector<checkpoint::SharedFile> shared_files_;  // of the last snapshot, until taken
};

// A keyed state backend for subtask `ctx` (its key groups, clock and max parallelism) keyed by
// columns of `key_types`, made by the job's backend (ctx.state_backend; the memory backend when
// null).
Result<std::unique_ptr<state::KeyedStateBackend>> make_keyed_backend(
    const runtime::OperatorContext& ctx, std::vector<columnar::DataType> key_types);

// The state type of keyed windows whose panes live in the keyed state backend (window_keyed.cc).
inline constexpr std::string_view kKeyedWindowStateType = "keyed-window";

// The state type of a keyed process function's incremental RocksDB snapshot.
inline constexpr std::string_view kProcessRocksDbStateType = "process-function-rocksdb";

// A keyed process function's snapshot in the full format (kProcessStateType), for tools that read
// checkpoints without the job's code: `bytes` as is, or, for an incremental RocksDB snapshot whose
// SST files are in `shared_dir`, its state restored into a scratch RocksDB instance under
// `scratch_dir` (default: a fresh directory in the system's temporary directory; removed
// afterwards) and snapshotted in full.
Result<std::string> full_process_snapshot(std::string_view bytes, const std::string& uid,
                                          uint32_t max_parallelism, const std::string& shared_dir,
                                          std::string scratch_dir = {});
// Whether `bytes` is an incremental RocksDB snapshot of a keyed process function.
bool is_incremental_process_snapshot(std::string_view bytes);

// Operators that keep their state on a KeyedProcessOperator and add one operator-wide 64-bit value
// (dedup, from version 2: its watermark; top-N, from version 2: the next arrival number; the
// stream-table join, from version 2: none, 0; keyed windows: their watermark) snapshot
// under their own state type as one operator-wide section: [u64 that value][bytes: the keyed
// snapshot, full or incremental RocksDB][`trailing`: a fixed number of bytes of their own, none
// but for keyed windows (their next early-firing time)].
void write_wrapped_keyed_snapshot(const runtime::OperatorContext& ctx, std::string_view state_type,
                                  uint16_t state_version, uint64_t value, std::string_view keyed,
                                  std::string* out, std::string_view trailing = {});
struct WrappedKeyedSnapshot {
  uint64_t value = 0;
  std::string_view keyed;     // into the section's bytes
  std::string_view trailing;  // likewise
};
// Reads the section `reader` is at (the operator-wide one of such a snapshot), to its end, which
// must come `trailing_bytes` after the keyed snapshot.
Result<WrappedKeyedSnapshot> read_wrapped_keyed_snapshot(ByteReader& reader,
                                                         size_t trailing_bytes = 0);

// Base of those operators (dedup, top-N, the stream-table join, windows on a state backend): they
// keep `keyed_`, snapshot_state() calls snapshot_wrapped(), and the shared files and checkpoint
// completion are the keyed operator's.
template <typename Base>
class WrapsKeyedProcessOperator : public Base {
 public:
  std::vector<checkpoint::SharedFile> take_shared_files() override {
    return keyed_->take_shared_files();
  }
  Status notify_checkpoint_complete(CheckpointId id) override {
    return keyed_->notify_checkpoint_complete(id);
  }

 protected:
  // The keyed operator's snapshot wrapped under the operator's own state type.
  Status snapshot_wrapped(const runtime::OperatorContext& ctx, std::string_view state_type,
                          uint16_t state_version, uint64_t value, CheckpointId id, std::string* out,
                          std::string_view trailing = {}) {
    std::string keyed;
    SABOT_RETURN_IF_ERROR(keyed_->snapshot_state(id, &keyed));
    write_wrapped_keyed_snapshot(ctx, state_type, state_version, value, keyed, out, trailing);
    return Status::ok();
  }

  std::unique_ptr<KeyedProcessOperator> keyed_;
};

// Passes rows on and holds watermarks back: for operators on a KeyedProcessOperator that emit
// their own watermark after its timers fired (windows and joins on a state backend).
class RowsOnly final : public runtime::Output {
 public:
  explicit RowsOnly(runtime::Output& out) : out_(out) {}
  Status emit(const columnar::RecordBatch& batch) override { return out_.emit(batch); }
  Status emit_watermark(Timestamp) override { return Status::ok(); }
  Status emit_side(std::string_view tag, const columnar::RecordBatch& batch) override {
    return out_.emit_side(tag, batch);
  }

 private:
  runtime::Output& out_;
};

// Whether operators keep their state in the job's keyed state backend rather than in their own
// structures: on any backend but the memory one (whose in-operator versions are faster).
inline bool state_in_backend(const runtime::OperatorContext& ctx) {
  return ctx.state_backend != nullptr && ctx.state_backend->name() != "memory";
}

// For operators without key columns that run on a KeyedProcessOperator (top-N, windows): their
// input with a constant int32 column appended, so that every row has one key.
class ConstantKeyColumn {
 public:
  explicit ConstantKeyColumn(const columnar::SchemaPtr& input);
  // The input's columns and the key column after them.
  const columnar::SchemaPtr& schema() const { return schema_; }
  int key_index() const { return schema_->num_fields() - 1; }
  // `batch` (of the input's schema) with the key column appended.
  columnar::RecordBatch append(const columnar::RecordBatch& batch);

 private:
  columnar::SchemaPtr schema_;
  columnar::Array zeros_;  // int32 zeros, sliced to each batch
};

// For tools that read checkpoints without the job (sabot state read, sabot checkpoints show): the
// keyed snapshot wrapped in `bytes` with the wrapping state type and version, when `bytes` is a
// dedup, top-N, stream-table join or keyed window snapshot of a version that wraps one; nullopt
// otherwise; an
// error when it is one, but damaged.
struct UnwrappedKeyedSnapshot {
  std::string state_type;
  uint16_t state_version = 0;
  std::string keyed;
};
Result<std::optional<UnwrappedKeyedSnapshot>> unwrap_keyed_snapshot(std::string_view bytes,
                                                                    const std::string& uid,
                                                                    uint32_t max_parallelism);

}  // namespace sabot::operators
