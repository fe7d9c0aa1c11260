// Runs a LogicalPlan: validates it, chains operators into tasks, connects tasks with bounded
// channels and exchanges, and runs the tasks cooperatively on a fixed pool of worker threads.
// A Job is started once and waited for once; metrics() and cancel() may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "sabot/base/clock.h"
#include "sabot/base/status.h"
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
  // Restore the job from this snapshot (e.g. CheckpointStore::wait_for of an earlier run). Before
  // anything runs, a snapshot is refused that was taken with another max_parallelism or holds
  // state of a uid that is not an operator of this plan. Then every new operator subtask gets,
  // after open(), one restore_state() per old subtask snapshot of its uid whose key-group range
  // overlaps its own (contiguous ranges, subtask_for_key_group): at equal parallelism exactly its
  // own old snapshot; after rescaling, every old snapshot that may hold one of its key groups.
  std::shared_ptr<const JobSnapshot> restore_from = nullptr;
};

// Checks the plan and options; the Status lists every problem found, one per line.
Status validate_plan(const LogicalPlan& plan, const ExecutionOptions& options);

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
