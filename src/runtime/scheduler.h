// Cooperative scheduling of tasks on a fixed pool of worker threads. A task runs a bounded quantum
// and says why it stopped; a task waiting for input or output space is parked until notify().
// Internal to the runtime.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace sabot::runtime {

class Scheduler;

class Schedulable {
 public:
  enum class RunResult {
    kYield,      // more work is ready: run again after others had a turn
    kWaiting,    // parked until notify() (input empty or output full)
    kPollLater,  // a source with nothing to read: run again after a short delay
    kFinished,   // never runs again
  };
  virtual ~Schedulable() = default;
  virtual RunResult run_quantum() = 0;
  // Makes a parked task runnable; cheap and safe from any thread, any number of times.
  void notify();

 private:
  friend class Scheduler;
  enum State : int { kIdle, kQueued, kRunning, kRunningNotified, kDone };
  std::atomic<int> state_{kIdle};
  Scheduler* scheduler_ = nullptr;
};

class Scheduler {
 public:
  explicit Scheduler(int threads);
  ~Scheduler();  // joins the workers
  // Registers a task before start(). Not owned.
  void add(Schedulable* task);
  // Starts the workers with every task queued once.
  void start();
  // Blocks until every task has finished; the workers have exited on return.
  void wait();
  // Wakes every parked task (used on cancellation so they can observe it and finish).
  void notify_all_tasks();

 private:
  friend class Schedulable;
  void enqueue(Schedulable* task);
  void worker_loop();
  void after_run(Schedulable* task, Schedulable::RunResult result);

  const int num_threads_;
  std::vector<Schedulable*> tasks_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  std::deque<Schedulable*> ready_;
  std::vector<std::pair<int64_t, Schedulable*>> delayed_;  // (due time ns, task)
  int remaining_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace sabot::runtime
