// Runs a LogicalPlan: validates it, chains operators into tasks, connects tasks with bounded
// channels and exchanges, and runs the tasks cooperatively on a fixed pool of worker threads.
// A Job is started once and waited for once; metrics() and cancel() may be called from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "sabot/base/clock.h"
#include "sabot/base/status.h"
#include "sabot/checkpoint/storage.h"
#include "sabot/runtime/checkpoint.h"
#include "sabot/runtime/metrics.h"
#include "sabot/runtime/plan.h"

namespace sabot::runtime {

struct ExecutionOptions {
  // Worker threads that run all tasks. 0: the number of cores. Fixed for the job's lifetime.
  int worker_threads = 0;
  // Number of key groups (the unit of keyed state). Must be >= every operator's parallelism.
  int max_parallelism = 128;
  // Batches a channel holds before its producer is backpressured. >= 1.
  int channel_capacity = 8;
  // Rows a source is asked for per poll.
  int64_t source_batch_rows = 4096;
  // Time source for operators (tests inject a ManualClock). Not owned; must outlive the job.
  const Clock* clock = &SystemClock::instance();
  // The job's name, for checkpoints and messages.
  std::string job_name = "sabot-job";
  // Where operator subtasks hand their snapshots at every checkpoint barrier (a source injects
  // barrier n with SourcePoll::barrier). Null: snapshots are taken and dropped. The store serves
  // one job at a time; starting a job attaches it (clearing what it held) and the job's end
  // detaches it.
  std::shared_ptr<CheckpointStore> checkpoints = nullptr;
  // Where keyed process functions keep their state (OperatorContext::state_backend); shared by
  // every subtask. Null: the memory backend.
  std::shared_ptr<const state::StateBackend> state_backend = nullptr;
  // Keyed process functions on RocksDB take incremental checkpoints when the job has a
  // checkpoint_storage (OperatorContext::incremental_checkpoints); false: full snapshots.
  bool incremental_checkpoints = true;
  // Restore the job from this snapshot (e.g. Job::wait_for_checkpoint or
  // CheckpointStorage::load_latest of an earlier run; a CheckpointStore's snapshot lacks the
  // shared_dir that incremental RocksDB snapshots need: set it to the storage's DIR/shared). Before
  // anything runs, a snapshot is refused that was taken with another max_parallelism or holds
  // state of a uid that is not an operator of this plan. Then every new operator subtask gets,
  // after open(), one restore_state() per old subtask snapshot of its uid whose key-group range
  // overlaps its own (contiguous ranges, subtask_for_key_group): at equal parallelism exactly its
  // own old snapshot; after rescaling, every old snapshot that may hold one of its key groups.
  // Source split positions in the snapshot (state type "source-positions" under the source's uid)
  // are restored too: each new source subtask continues the splits it reads from where the old
  // ones, of any parallelism, stood.
  std::shared_ptr<const JobSnapshot> restore_from = nullptr;
  // Restoring from a snapshot that holds state of a uid that is not in the plan (an operator that
  // was removed) is refused naming the uid unless this is set; then that state is ignored.
  bool allow_non_restored_state = false;

  // ---- Checkpointing (the coordinator) ----
  // Checkpointing is on when checkpoint_interval > 0, checkpoint_storage is set or delivery is not
  // kNone; every source must then be checkpointable (Source::checkpointable). The coordinator
  // then triggers checkpoint n every interval on `clock` and on demand (Job::trigger_checkpoint):
  // every source subtask records its split positions and injects barrier n at its next poll,
  // tasks align and snapshot, and once every subtask has reported, the checkpoint is written to
  // checkpoint_storage (on the coordinator's thread) and every operator gets
  // notify_checkpoint_complete(n) on its own task thread.
  // Period between checkpoints, measured on `clock`. 0: only on demand. Default 0.
  std::chrono::milliseconds checkpoint_interval{0};
  // Where completed checkpoints are written (DIR/chk-<n>, savepoint-<n>). Null: completed
  // checkpoints stay in the CheckpointStore (`checkpoints`, or one the job makes) only. Used by
  // the coordinator's thread only while the job runs.
  std::shared_ptr<checkpoint::CheckpointStorage> checkpoint_storage = nullptr;
  // A checkpoint not complete (every subtask reported and written) this long after its trigger,
  // on `clock`, is aborted (logged and counted); the job goes on. Default 10 minutes.
  std::chrono::milliseconds checkpoint_timeout{std::chrono::minutes(10)};
  // Checkpoints in flight at once. Only 1 is supported (validated).
  int max_concurrent_checkpoints = 1;
  // What the sinks promise (operator.h); given to every operator in its OperatorContext. Under
  // kExactlyOnce a task whose input has ended lingers after finish(): the coordinator then takes
  // the final checkpoint F (sources at their end), and the job ends after every operator got
  // notify_checkpoint_complete(F). Default kNone.
  DeliveryGuarantee delivery = DeliveryGuarantee::kNone;
  // Fault injection for tests (like RocksDB's sync points): called on the coordinator's thread
  // with each completed checkpoint before it is written; an error aborts that checkpoint as a
  // failed write would. Null: none.
  std::function<Status(const JobSnapshot&)> checkpoint_write_hook = nullptr;
  // Restarts of this job (after failures) before this run, for its metrics
  // (JobMetrics::restarts()). Default 0.
  int64_t restarts = 0;
};

// What the coordinator of a job has done so far.
struct CheckpointStats {
  int64_t triggered = 0;
  int64_t completed = 0;  // complete, written (when there is storage) and notified
  int64_t aborted = 0;    // timed out or failed to write
  int64_t latest_completed_id = -1;
  std::string latest_path;  // where the latest completed one was written ("" without storage)
  // From trigger to durable, on the job's clock, and the state bytes of completed checkpoints.
  int64_t latest_duration_ms = 0;
  int64_t max_duration_ms = 0;
  uint64_t latest_bytes = 0;
  uint64_t max_bytes = 0;
};

// Checks the plan and options; the Status lists every problem found, one per line.
Status validate_plan(const LogicalPlan& plan, const ExecutionOptions& options);

// Asks every running job with checkpointing to take a savepoint (as Job::trigger_checkpoint(true)),
// within about a millisecond. Async-signal-safe: the `sabot` command calls it from its SIGUSR1
// handler. A job that started after the call does not take one.
void request_savepoint() noexcept;

class Job {
 public:
  ~Job();
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  // Validates, builds the tasks and starts the workers. Nothing runs when validation fails.
  static Result<std::unique_ptr<Job>> start(const LogicalPlan& plan, ExecutionOptions options);
  // Blocks until every task has finished or the job failed; returns the job's outcome. The worker
  // threads have exited when it returns.
  Status wait();
  // Stops the job; wait() then returns Cancelled.
  void cancel();
  const JobMetrics& metrics() const;
  std::shared_ptr<const JobMetrics> metrics_ptr() const;
  // Checkpointing (ExecutionOptions: checkpointing must be on, else FailedPrecondition).
  // Triggers a checkpoint now (a savepoint when `savepoint`: written as savepoint-<n> and never
  // deleted by retention) and returns its id; when one is in flight it starts right after it.
  // Thread-safe.
  Result<CheckpointId> trigger_checkpoint(bool savepoint = false);
  // Blocks until checkpoint `id` is complete and durable (written when there is storage; the
  // notifications are then on their way to the operators) and returns it; an error when it was
  // aborted or the job ended first. Thread-safe.
  Result<JobSnapshot> wait_for_checkpoint(CheckpointId id);
  // The newest complete and durable checkpoint of this job (null: none yet). What a restart
  // restores from when there is no storage. Thread-safe; valid after wait() too.
  std::shared_ptr<const JobSnapshot> latest_checkpoint() const;
  CheckpointStats checkpoint_stats() const;

  // A one-line description of the physical plan: tasks, chains and exchanges.
  std::string describe() const;

  struct Impl;

 private:
  explicit Job(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// start() + wait().
Status execute_plan(const LogicalPlan& plan, ExecutionOptions options,
                    std::shared_ptr<const JobMetrics>* metrics_out = nullptr);

}  // namespace sabot::runtime
