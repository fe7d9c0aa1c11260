// Snapshots collected at checkpoint barriers, in memory. Every operator subtask hands its snapshot
// for barrier n to the job's CheckpointStore (ExecutionOptions::checkpoints); checkpoint n is
// complete once every operator subtask of the job has reported it, and a caller waiting for it
// (explicitly, through a condition variable) then takes the JobSnapshot: per operator uid, the
// parallelism it ran at and each subtask's bytes. A JobSnapshot restores a job
// (ExecutionOptions::restore_from), also at another parallelism, and is the plain value that
// checkpoint/storage.h writes to disk.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sabot/base/ids.h"
#include "sabot/base/status.h"
#include "sabot/checkpoint/storage.h"

namespace sabot::runtime {

// The snapshots of one operator (uid): `parallelism` and one string per subtask (empty: that
// subtask had no state). Plain value, copyable.
using OperatorSnapshot = checkpoint::OperatorState;
// A completed checkpoint of a job: checkpoint_id, max_parallelism and the operators (by uid) that
// had state; uids whose every subtask reported nothing are left out. Plain value, copyable.
using JobSnapshot = checkpoint::CheckpointData;

// Collects the operator subtasks' snapshots of one job at a time. Thread-safe: the job's worker
// threads report while any thread waits or reads. Share it between the job and the caller (the
// job holds a shared_ptr through ExecutionOptions).
class CheckpointStore {
 public:
  // `retained`: completed checkpoints kept (the newest ones); older ones are dropped. >= 1.
  explicit CheckpointStore(int retained = 3);
  CheckpointStore(const CheckpointStore&) = delete;
  CheckpointStore& operator=(const CheckpointStore&) = delete;

  // ---- The executor's side ----
  // A job starts with this store: each of its `subtasks` subtasks (operators, sinks and sources;
  // a source reports its split positions under its uid, state type "source-positions", or
  // nothing when it cannot be checkpointed) reports every checkpoint once. Clears what the store
  // held from an earlier job. InvalidArgument when another job is still attached.
  Status attach(std::string job_name, int subtasks, int max_parallelism);
  // Subtask `subtask` (of `parallelism`) of operator `uid` took its snapshot for checkpoint `id`
  // (`bytes` empty: no state; `files`: the shared files the snapshot refers to, see
  // Operator::take_shared_files). Completes the checkpoint when it is the last report. Refuses a
  // second report of the same subtask for the same checkpoint and a report without a job.
  Status report(CheckpointId id, const std::string& uid, int subtask, int parallelism,
                std::string bytes, std::vector<checkpoint::SharedFile> files = {});
  // Checkpoint `id` will not complete (timed out): what it collected is dropped and later
  // reports of it are ignored (a slow subtask reporting after the abort is not an error).
  void abort(CheckpointId id);
  // The job ended (finished, failed or cancelled): no further reports. Waiters for a checkpoint
  // that did not complete are woken and get an error saying so with `outcome`.
  void detach(const Status& outcome);

  // ---- The caller's side ----
  // Blocks until checkpoint `id` is complete and returns it; an error when the job ended first,
  // when a later checkpoint completed instead (a barrier that did not reach every subtask), or
  // when it is no longer retained. Returns at once when it already completed.
  Result<JobSnapshot> wait_for(CheckpointId id);
  // Checkpoint `id` when it has completed and is retained; nullopt otherwise (does not block).
  std::optional<JobSnapshot> completed(CheckpointId id) const;
  // The newest completed checkpoint, if any.
  std::optional<JobSnapshot> latest() const;
  // The ids of the retained completed checkpoints, ascending.
  std::vector<int64_t> completed_ids() const;

 private:
  struct Pending {
    JobSnapshot snapshot;
    int reported = 0;
    std::map<std::pair<std::string, int>, bool> seen;  // (uid, subtask) reported
    std::set<std::string> shared_names;                // of snapshot.shared_files
  };

  const int retained_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool attached_ = false;
  std::string job_name_;
  int expected_ = 0;
  int max_parallelism_ = 0;
  std::optional<Status> ended_;               // set by detach()
  int64_t newest_completed_ = -1;             // highest id ever completed in this job
  std::set<int64_t> aborted_;                 // ids aborted in this job
  std::map<int64_t, Pending> pending_;        // by checkpoint id
  std::map<int64_t, JobSnapshot> completed_;  // retained, by checkpoint id
};

}  // namespace sabot::runtime
