// Per-operator and per-source counters, updated by the running tasks with relaxed atomics and
// readable at any time from any thread (a running job's progress, a finished job's summary).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sabot::runtime {

// One operator subtask's counters.
struct OperatorCounters {
  std::atomic<int64_t> records_in{0};
  std::atomic<int64_t> records_out{0};
  std::atomic<int64_t> batches_in{0};
  std::atomic<int64_t> batches_out{0};
  std::atomic<int64_t> busy_ns{0};     // time in this operator's own code (not chained successors)
  std::atomic<int64_t> blocked_ns{0};  // time its task waited for space in full output channels
  std::atomic<int64_t> records_dropped{0};  // malformed input skipped by policy (sources)
  // Checkpoint snapshots taken on the task's thread (the synchronous part): how many, their total
  // and their longest duration. One writer (the subtask's task).
  std::atomic<int64_t> snapshots{0};
  std::atomic<int64_t> snapshot_ns{0};
  std::atomic<int64_t> snapshot_max_ns{0};
};

// A summed snapshot of one operator over its subtasks.
struct OperatorMetrics {
  std::string name;
  int parallelism = 0;
  int64_t records_in = 0;
  int64_t records_out = 0;
  int64_t batches_in = 0;
  int64_t batches_out = 0;
  double busy_seconds = 0;
  double blocked_seconds = 0;
  int64_t records_dropped = 0;
  int64_t snapshots = 0;               // summed over subtasks
  double snapshot_seconds = 0;         // summed over subtasks
  double snapshot_max_seconds = 0;     // the longest of any subtask
  std::vector<std::string> positions;  // sources: one position string per subtask
};

// Owned by a job; shared with whoever watches it.
class JobMetrics {
 public:
  // Registers a subtask; the counters live as long as the JobMetrics.
  OperatorCounters* add(const std::string& operator_name, int operator_index, int parallelism);
  void set_position(int operator_index, int subtask, std::string position);
  // One entry per operator, in plan order.
  std::vector<OperatorMetrics> snapshot() const;
  // The entry for one operator by name; empty metrics if none.
  OperatorMetrics get(const std::string& operator_name) const;
  std::string to_string() const;

 private:
  struct Entry {
    std::string name;
    int parallelism = 0;
    std::vector<std::unique_ptr<OperatorCounters>> subtasks;
    std::vector<std::string> positions;
  };
  mutable std::mutex mu_;
  std::vector<Entry> entries_;  // indexed by operator_index
};

}  // namespace sabot::runtime
