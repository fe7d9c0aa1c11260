// A bounded channel of events from one producer task to one consumer task. The bound is soft: push
// never blocks (a task checks for space before it processes its next input), so the output of one
// input event may briefly exceed the capacity. Thread-safe; internal to the runtime.
#pragma once

#include <deque>
#include <mutex>

#include "runtime/scheduler.h"
#include "sabot/runtime/event.h"

namespace sabot::runtime {

class Channel {
 public:
  Channel(int capacity, int logical_input) : capacity_(capacity), logical_input_(logical_input) {}

  void connect(Schedulable* producer, Schedulable* consumer) {
    producer_ = producer;
    consumer_ = consumer;
  }
  int logical_input() const { return logical_input_; }

  void push(Event event) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(event));
    }
    consumer_->notify();
  }

  bool try_pop(Event* out) {
    bool wake_producer = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) return false;
      *out = std::move(queue_.front());
      queue_.pop_front();
      if (producer_waiting_ && static_cast<int>(queue_.size()) < capacity_) {
        producer_waiting_ = false;
        wake_producer = true;
      }
    }
    if (wake_producer) producer_->notify();
    return true;
  }

  // True when there is room; otherwise remembers that the producer waits, so the next pop that
  // makes room wakes it (checked and recorded under one lock: no lost wake-up).
  bool has_space_or_register() {
    std::lock_guard<std::mutex> lock(mu_);
    if (static_cast<int>(queue_.size()) < capacity_) return true;
    producer_waiting_ = true;
    return false;
  }

 private:
  const int capacity_;
  const int logical_input_;
  Schedulable* producer_ = nullptr;
  Schedulable* consumer_ = nullptr;
  std::mutex mu_;
  std::deque<Event> queue_;
  bool producer_waiting_ = false;
};

}  // namespace sabot::runtime
