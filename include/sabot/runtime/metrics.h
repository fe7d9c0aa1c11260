// Per-operator and per-source counters, updated by the running tasks with relaxed atomics and
// readable at any time from any thread (a running job's progress, a finished job's summary).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "sabot/columnar/record_batch.h"

namespace sabot::runtime {

// The bytes of a batch's rows in the columnar (Arrow) layout: per column its validity bitmap (when
// it has nulls), its values (1 bit per bool, 4 or 8 bytes per fixed-width value) and, for utf8 and
// binary, its int32 offsets plus the bytes of its strings. A slice counts only its own rows, so
// shared buffers are not counted twice. O(columns), no walk over rows.
int64_t batch_bytes(const columnar::RecordBatch& batch);

// One operator subtask's counters.
struct OperatorCounters {
  std::atomic<int64_t> records_in{0};
  std::atomic<int64_t> records_out{0};
  std::atomic<int64_t> batches_in{0};
  std::atomic<int64_t> batches_out{0};
  // Bytes of the batches in and out (batch_bytes(): their rows in the columnar layout).
  std::atomic<int64_t> bytes_in{0};
  std::atomic<int64_t> bytes_out{0};
  std::atomic<int64_t> busy_ns{0};     // time in this operator's own code (not chained successors)
  std::atomic<int64_t> blocked_ns{0};  // time its task waited for space in full output channels
  std::atomic<int64_t> records_dropped{0};  // malformed input skipped by policy (sources)
  // Checkpoint snapshots taken on the task's thread (the synchronous part): how many, their total
  // and their longest duration. One writer (the subtask's task).
  std::atomic<int64_t> snapshots{0};
  std::atomic<int64_t> snapshot_ns{0};
  std::atomic<int64_t> snapshot_max_ns{0};
  // Newest watermark the operator was given, epoch ms (INT64_MIN: none yet). One writer.
  std::atomic<int64_t> input_watermark_ms{INT64_MIN};
  // Chain heads with several inputs: time spent aligning checkpoint barriers (the first barrier's
  // arrival to the last one's), total and longest. One writer.
  std::atomic<int64_t> alignment_ns{0};
  std::atomic<int64_t> alignment_max_ns{0};
  // Bytes of the operator's latest snapshot: its state size as of the last checkpoint (-1: none
  // taken). One writer.
  std::atomic<int64_t> state_bytes{-1};
  // Keys of a keyed stateful operator (Operator::state_keys(), read after each batch, watermark
  // and timer; -1: not keyed). One writer.
  std::atomic<int64_t> state_keys{-1};
};

// Event time of one split (partition) of a source, as its source subtask sees it. Written by that
// subtask's task once per batch or idle poll, read by anyone.
struct SplitGauges {
  int subtask = 0;
  int split = 0;  // -1: a reader that does not name the split of its batches
  std::atomic<int64_t> max_event_time_ms{INT64_MIN};
  // max event time minus the out-of-orderness bound minus 1 (INT64_MIN: no data yet).
  std::atomic<int64_t> watermark_ms{INT64_MIN};
  std::atomic<int64_t> last_data_ms{INT64_MIN};  // clock time of its last batch
  std::atomic<bool> idle{false};                 // no data for the strategy's idle timeout
};

// Offset and end offset of one split of a source subtask (SourceReader::progress()). Written by
// that subtask's task about once per second and at the end, read by anyone.
struct PartitionGauges {
  int subtask = 0;
  int split = 0;
  std::atomic<int64_t> offset{-1};      // the next record to return
  std::atomic<int64_t> end_offset{-1};  // -1: the broker does not say
};

// One input channel of an operator subtask that reads from another task: the event time it last
// announced. Written by the reading task, read by anyone.
struct InputGauges {
  int subtask = 0;        // the reading subtask
  int from_operator = 0;  // operator index of the upstream chain's tail
  int from_subtask = 0;
  std::atomic<int64_t> watermark_ms{INT64_MIN};
  std::atomic<bool> idle{false};
  std::atomic<bool> ended{false};
};

// How one operator is wired, for the job graph (set once when the job starts).
struct OperatorShape {
  bool source = false;
  int chain_head = -1;  // operator index of the head of its chain (itself when it heads one)
  struct Input {
    int from = 0;              // upstream operator index
    std::string partitioning;  // "forward", "hash", "rebalance", "broadcast"
    std::string side_output;   // non-empty: reads this side output of `from`
  };
  std::vector<Input> inputs;
};

// One checkpoint as the coordinator saw it end.
struct CheckpointRecord {
  int64_t id = 0;
  bool savepoint = false;
  bool completed = false;  // false: aborted (timed out or failed to write)
  int64_t trigger_ms = 0;  // on the job's clock
  int64_t duration_ms = 0;
  uint64_t bytes = 0;  // state bytes of a completed one
  std::string path{};  // where it was written ("" without storage or when aborted)
};

// Everything about one operator, as JobMetrics::read() shows it.
struct OperatorEntry {
  std::string name;
  int parallelism = 0;
  OperatorShape shape;
  std::vector<std::unique_ptr<OperatorCounters>> subtasks;
  std::vector<std::string> positions;  // sources: one position string per subtask
  std::vector<std::unique_ptr<SplitGauges>> splits;
  std::vector<std::unique_ptr<PartitionGauges>> partitions;
  std::vector<std::unique_ptr<InputGauges>> inputs;
};

// Where a job is in its life.
enum class JobPhase : int { kRunning = 0, kFinished = 1, kFailed = 2, kCancelled = 3 };

// A summed snapshot of one operator over its subtasks.
struct OperatorMetrics {
  std::string name;
  int parallelism = 0;
  int64_t records_in = 0;
  int64_t records_out = 0;
  int64_t batches_in = 0;
  int64_t batches_out = 0;
  int64_t bytes_in = 0;
  int64_t bytes_out = 0;
  double busy_seconds = 0;
  double blocked_seconds = 0;
  int64_t records_dropped = 0;
  int64_t snapshots = 0;               // summed over subtasks
  double snapshot_seconds = 0;         // summed over subtasks
  double snapshot_max_seconds = 0;     // the longest of any subtask
  std::vector<std::string> positions;  // sources: one position string per subtask
};

// Owned by a job; shared with whoever watches it. Thread-safe: registration and the strings take a
// mutex (once per subtask, split or channel; positions once per source poll loop); the gauges and
// counters they hand out are relaxed atomics that one task writes and anyone reads.
class JobMetrics {
 public:
  // Registers a subtask; the counters live as long as the JobMetrics.
  OperatorCounters* add(const std::string& operator_name, int operator_index, int parallelism);
  void set_shape(int operator_index, OperatorShape shape);
  // Registers a split of a source subtask / an input channel of a subtask (stable pointers).
  SplitGauges* add_split(int operator_index, int subtask, int split);
  InputGauges* add_input(int operator_index, int subtask, int from_operator, int from_subtask);
  PartitionGauges* add_partition(int operator_index, int subtask, int split);
  void set_position(int operator_index, int subtask, std::string position);
  // Calls `f` with every operator (indexed by operator index; unused indexes have an empty name)
  // while holding the lock: `f` must not call back into this object.
  void read(const std::function<void(const std::vector<OperatorEntry>&)>& f) const;

  // The job as a whole.
  void set_job(std::string name, int64_t start_ms, std::string description);
  std::string job_name() const;
  std::string description() const;
  int64_t start_ms() const { return start_ms_.load(std::memory_order_relaxed); }
  void set_phase(JobPhase phase) { phase_.store(static_cast<int>(phase)); }
  JobPhase phase() const { return static_cast<JobPhase>(phase_.load()); }
  // Restarts of the job before this run (a run's metrics start at zero; the count carries over).
  void set_restarts(int64_t restarts) { restarts_.store(restarts); }
  int64_t restarts() const { return restarts_.load(); }
  // Checkpoints, newest last; the most recent kCheckpointHistory are kept, counts of all.
  static constexpr size_t kCheckpointHistory = 100;
  void record_checkpoint(CheckpointRecord record);
  std::vector<CheckpointRecord> checkpoints() const;
  int64_t checkpoints_completed() const { return checkpoints_completed_.load(); }
  int64_t checkpoints_aborted() const { return checkpoints_aborted_.load(); }
  // The job's state backend's memory by part (StateBackend::memory_parts), read whenever metrics
  // are served; the probe must be thread-safe. Unset: no parts.
  using MemoryProbe = std::function<std::vector<std::pair<std::string, int64_t>>()>;
  void set_state_memory_probe(std::string backend, MemoryProbe probe);
  std::string state_backend_name() const;
  std::vector<std::pair<std::string, int64_t>> state_memory() const;
  // One entry per operator, in plan order.
  std::vector<OperatorMetrics> snapshot() const;
  // The entry for one operator by name; empty metrics if none.
  OperatorMetrics get(const std::string& operator_name) const;
  std::string to_string() const;

 private:
  OperatorEntry& entry_locked(int operator_index);
  mutable std::mutex mu_;
  std::vector<OperatorEntry> entries_;  // indexed by operator_index
  std::string job_name_;
  std::string description_;
  std::atomic<int64_t> start_ms_{0};
  std::atomic<int> phase_{0};
  std::atomic<int64_t> restarts_{0};
  std::deque<CheckpointRecord> checkpoints_;
  std::atomic<int64_t> checkpoints_completed_{0};
  std::atomic<int64_t> checkpoints_aborted_{0};
  std::string state_backend_;
  MemoryProbe state_memory_;
};

// The metrics of every job of this process that has started and not yet been waited for, oldest
// first (Job::start registers, Job::wait unregisters), and the last one waited for (null: none).
// A metrics endpoint serves these without being handed the jobs. Thread-safe.
std::vector<std::shared_ptr<const JobMetrics>> running_jobs();
std::shared_ptr<const JobMetrics> last_finished_job();
void register_running_job(std::shared_ptr<const JobMetrics> metrics);
void unregister_running_job(const JobMetrics* metrics);

}  // namespace sabot::runtime
