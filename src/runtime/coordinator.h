// The checkpoint coordinator of one job: decides when checkpoint n starts (every interval on the
// job's clock, on demand, and the final checkpoint under exactly-once), watches the
// CheckpointStore for its completion, writes it to CheckpointStorage on its own thread (off the
// tasks' hot path), aborts it after the timeout, and publishes the ids the tasks act on.
// Internal to the runtime.
//
// The tasks see three atomics: trigger (the newest checkpoint started: sources record positions
// and inject its barrier, lingering finished tasks snapshot), completed (the newest durable one:
// every task calls notify_checkpoint_complete on its own thread) and final (the id of the final
// checkpoint, -1 until it starts). Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "sabot/base/clock.h"
#include "sabot/runtime/executor.h"

namespace sabot::runtime {

class CheckpointCoordinator {
 public:
  struct Config {
    std::string job_name;
    const Clock* clock = nullptr;
    std::chrono::milliseconds interval{0};
    std::chrono::milliseconds timeout{std::chrono::minutes(10)};
    std::shared_ptr<checkpoint::CheckpointStorage> storage;
    std::function<Status(const JobSnapshot&)> write_hook;
    bool exactly_once = false;  // take the final checkpoint once every task has finished
    int64_t first_id = 1;
    int tasks = 0;                  // tasks that report chain_finished() under exactly-once
    JobMetrics* metrics = nullptr;  // where each checkpoint's outcome is recorded (may be null)
  };

  CheckpointCoordinator(Config config, std::shared_ptr<CheckpointStore> store,
                        std::function<void()> wake_tasks, std::function<void(Status)> fail);
  ~CheckpointCoordinator();
  CheckpointCoordinator(const CheckpointCoordinator&) = delete;
  CheckpointCoordinator& operator=(const CheckpointCoordinator&) = delete;

  void start();
  // The job has ended: waiters are woken with an error, the thread exits (after a write in
  // progress). Idempotent.
  void stop();

  // ---- The tasks' side (relaxed loads; a task is woken after each change) ----
  std::atomic<int64_t> trigger{-1};
  std::atomic<int64_t> completed{-1};
  std::atomic<int64_t> final_id{-1};
  // A task's input ended and finish() ran (exactly-once: it lingers for the final checkpoint).
  void chain_finished();

  // ---- The caller's side ----
  Result<CheckpointId> trigger_now(bool savepoint);
  Result<JobSnapshot> wait_for(CheckpointId id);
  std::shared_ptr<const JobSnapshot> latest() const;
  CheckpointStats stats() const;

 private:
  struct InFlight {
    int64_t id = 0;
    bool savepoint = false;
    bool final = false;
    int64_t started_ms = 0;
  };
  void run();
  void begin(std::unique_lock<std::mutex>& lock, int64_t id, bool savepoint, bool final,
             int64_t now);
  // Writes the completed checkpoint (lock released meanwhile) and publishes it.
  void finish_in_flight(std::unique_lock<std::mutex>& lock, JobSnapshot snapshot);
  // Records `f` as aborted (the caller holds mu_ and has cleared in_flight_).
  void abort_in_flight_locked(const InFlight& f, const std::string& why);

  const Config config_;
  std::shared_ptr<CheckpointStore> store_;
  std::function<void()> wake_tasks_;
  std::function<void(Status)> fail_;

  mutable std::mutex mu_;
  std::condition_variable cv_;       // the coordinator's thread: triggers, stop
  std::condition_variable done_cv_;  // waiters for an outcome
  std::thread thread_;
  bool stopping_ = false;
  int64_t next_id_ = 1;
  int64_t next_due_ms_ = 0;
  std::optional<InFlight> in_flight_;
  std::optional<std::pair<int64_t, bool>> requested_;  // (id, savepoint) waiting to start
  int64_t savepoint_requests_seen_ = 0;                // request_savepoint() calls acted on
  int finished_tasks_ = 0;
  int failed_finals_ = 0;
  bool final_complete_ = false;
  std::map<int64_t, Status> outcomes_;  // per checkpoint that ended: ok or why it failed
  std::map<int64_t, std::shared_ptr<const JobSnapshot>> done_;  // durable, recent ones
  std::shared_ptr<const JobSnapshot> latest_;
  CheckpointStats stats_;
};

}  // namespace sabot::runtime
