#include "runtime/scheduler.h"

#include <algorithm>
#include <chrono>

#include "sabot/base/check.h"

namespace sabot::runtime {
namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// How long a source with nothing to read waits before it is polled again.
constexpr int64_t kPollLaterNs = 1'000'000;

}  // namespace

void Schedulable::notify() {
  int s = state_.load(std::memory_order_acquire);
  while (true) {
    if (s == kIdle) {
      if (state_.compare_exchange_weak(s, kQueued, std::memory_order_acq_rel)) {
        scheduler_->enqueue(this);
        return;
      }
    } else if (s == kRunning) {
      if (state_.compare_exchange_weak(s, kRunningNotified, std::memory_order_acq_rel)) return;
    } else {
      return;  // already queued, already notified while running, or done
    }
  }
}

Scheduler::Scheduler(int threads) : num_threads_(threads < 1 ? 1 : threads) {}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void Scheduler::add(Schedulable* task) {
  task->scheduler_ = this;
  tasks_.push_back(task);
}

void Scheduler::start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    remaining_ = static_cast<int>(tasks_.size());
    for (Schedulable* t : tasks_) {
      t->state_.store(Schedulable::kQueued);
      ready_.push_back(t);
    }
    if (remaining_ == 0) stopping_ = true;
  }
  threads_.reserve(static_cast<size_t>(num_threads_));
  for (int i = 0; i < num_threads_; ++i) threads_.emplace_back([this] { worker_loop(); });
}

void Scheduler::wait() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return remaining_ == 0; });
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void Scheduler::notify_all_tasks() {
  for (Schedulable* t : tasks_) t->notify();
}

void Scheduler::enqueue(Schedulable* task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ready_.push_back(task);
  }
  cv_.notify_one();
}

void Scheduler::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (!delayed_.empty()) {
      int64_t now = now_ns();
      auto due = std::partition(delayed_.begin(), delayed_.end(),
                                [now](const auto& d) { return d.first > now; });
      for (auto it = due; it != delayed_.end(); ++it) ready_.push_back(it->second);
      delayed_.erase(due, delayed_.end());
    }
    if (stopping_ && remaining_ == 0) return;
    if (ready_.empty()) {
      if (stopping_) return;
      if (delayed_.empty()) {
        cv_.wait(lock);
      } else {
        int64_t earliest = delayed_.front().first;
        for (const auto& d : delayed_) earliest = std::min(earliest, d.first);
        cv_.wait_for(lock, std::chrono::nanoseconds(std::max<int64_t>(earliest - now_ns(), 0)));
      }
      continue;
    }
    Schedulable* task = ready_.front();
    ready_.pop_front();
    lock.unlock();
    task->state_.store(Schedulable::kRunning, std::memory_order_release);
    Schedulable::RunResult result = task->run_quantum();
    after_run(task, result);
    lock.lock();
  }
}

void Scheduler::after_run(Schedulable* task, Schedulable::RunResult result) {
  using R = Schedulable::RunResult;
  switch (result) {
    case R::kFinished: {
      task->state_.store(Schedulable::kDone, std::memory_order_release);
      std::lock_guard<std::mutex> lock(mu_);
      if (--remaining_ == 0) {
        stopping_ = true;
        done_cv_.notify_all();
        cv_.notify_all();
      }
      return;
    }
    case R::kYield:
      task->state_.store(Schedulable::kQueued, std::memory_order_release);
      enqueue(task);
      return;
    case R::kPollLater: {
      task->state_.store(Schedulable::kQueued, std::memory_order_release);
      {
        std::lock_guard<std::mutex> lock(mu_);
        delayed_.emplace_back(now_ns() + kPollLaterNs, task);
      }
      cv_.notify_one();
      return;
    }
    case R::kWaiting: {
      int expected = Schedulable::kRunning;
      if (!task->state_.compare_exchange_strong(expected, Schedulable::kIdle,
                                                std::memory_order_acq_rel)) {
        // Notified while running: the reason to wait may be gone already, so run again.
        SABOT_CHECK_EQ(expected, static_cast<int>(Schedulable::kRunningNotified));
        task->state_.store(Schedulable::kQueued, std::memory_order_release);
        enqueue(task);
      }
      return;
    }
  }
}

}  // namespace sabot::runtime
