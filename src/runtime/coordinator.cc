#include "runtime/coordinator.h"

#include <exception>
#include <iostream>

#include "sabot/base/logging.h"

namespace sabot::runtime {

namespace {

// How often the coordinator's thread looks at the clock (the clock may be a ManualClock that
// nobody announces changes of) and at the store.
constexpr std::chrono::milliseconds kPollPeriod{1};
// Consecutive failed attempts at the final checkpoint after which the job fails.
constexpr int kFinalAttempts = 3;

// Savepoint requests from request_savepoint() (a signal handler): a count that every
// coordinator compares with the value it last acted on.
std::atomic<int64_t> g_savepoint_requests{0};
static_assert(std::atomic<int64_t>::is_always_lock_free);

}  // namespace

void request_savepoint() noexcept { g_savepoint_requests.fetch_add(1); }

CheckpointCoordinator::CheckpointCoordinator(Config config, std::shared_ptr<CheckpointStore> store,
                                             std::function<void()> wake_tasks,
                                             std::function<void(Status)> fail)
    : config_(std::move(config)),
      store_(std::move(store)),
      wake_tasks_(std::move(wake_tasks)),
      fail_(std::move(fail)),
      next_id_(config_.first_id) {}

CheckpointCoordinator::~CheckpointCoordinator() { stop(); }

void CheckpointCoordinator::start() {
  next_due_ms_ = config_.clock->now().millis() + config_.interval.count();
  savepoint_requests_seen_ = g_savepoint_requests.load();
  thread_ = std::thread([this] { run(); });
}

void CheckpointCoordinator::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  done_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CheckpointCoordinator::chain_finished() {
  std::lock_guard<std::mutex> lock(mu_);
  ++finished_tasks_;
  cv_.notify_all();
}

Result<CheckpointId> CheckpointCoordinator::trigger_now(bool savepoint) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return Status::cancelled("the job has ended; no checkpoint can be taken");
  if (requested_) {
    requested_->second |= savepoint;
    return CheckpointId(requested_->first);
  }
  requested_ = std::make_pair(next_id_++, savepoint);
  cv_.notify_all();
  return CheckpointId(requested_->first);
}

Result<JobSnapshot> CheckpointCoordinator::wait_for(CheckpointId id) {
  std::unique_lock<std::mutex> lock(mu_);
  const std::string what = "checkpoint " + std::to_string(id.value());
  for (;;) {
    if (auto it = outcomes_.find(id.value()); it != outcomes_.end()) {
      if (!it->second.is_ok()) return it->second;
      auto d = done_.find(id.value());
      if (d == done_.end()) return Status::not_found(what + " completed but is no longer held");
      return *d->second;
    }
    if (stopping_) return Status::cancelled(what + " did not complete before the job ended");
    done_cv_.wait(lock);
  }
}

std::shared_ptr<const JobSnapshot> CheckpointCoordinator::latest() const {
  std::lock_guard<std::mutex> lock(mu_);
  return latest_;
}

CheckpointStats CheckpointCoordinator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CheckpointCoordinator::begin(std::unique_lock<std::mutex>& lock, int64_t id, bool savepoint,
                                  bool final, int64_t now) {
  in_flight_ = InFlight{id, savepoint, final, now};
  ++stats_.triggered;
  if (final) final_id.store(id);
  trigger.store(id);
  SABOT_LOG(kDebug, "checkpoint") << "job '" << config_.job_name << "': checkpoint " << id
                                  << (final       ? " (final)"
                                      : savepoint ? " (savepoint)"
                                                  : "")
                                  << " triggered";
  wake_tasks_();
}

void CheckpointCoordinator::finish_in_flight(std::unique_lock<std::mutex>& lock,
                                             JobSnapshot snapshot) {
  const InFlight f = *in_flight_;
  snapshot.savepoint = f.savepoint;
  lock.unlock();
  Status s;
  std::string path;
  try {
    if (config_.write_hook) s = config_.write_hook(snapshot);
    if (s.is_ok() && config_.storage) {
      auto written = config_.storage->write(snapshot);
      if (written.is_ok()) {
        path = *written;
        // From now on the shared files are read from the storage (a restart inside the process
        // restores from this snapshot); the operators' local copies may go.
        snapshot.shared_dir = checkpoint::shared_files_dir(path, snapshot.savepoint);
        for (checkpoint::SharedFile& f : snapshot.shared_files) f.source_path.clear();
      } else {
        s = written.status();
      }
    }
  } catch (const std::exception& e) {
    s = Status::internal(std::string("exception: ") + e.what());
  }
  lock.lock();
  in_flight_.reset();
  if (!s.is_ok()) {
    abort_in_flight_locked(f, "writing it failed: " + s.message());
    return;
  }
  auto shared = std::make_shared<const JobSnapshot>(std::move(snapshot));
  latest_ = shared;
  done_[f.id] = shared;
  while (done_.size() > 4) done_.erase(done_.begin());
  outcomes_[f.id] = Status::ok();
  ++stats_.completed;
  stats_.latest_completed_id = f.id;
  stats_.latest_duration_ms = config_.clock->now().millis() - f.started_ms;
  stats_.max_duration_ms = std::max(stats_.max_duration_ms, stats_.latest_duration_ms);
  stats_.latest_bytes = 0;
  for (const auto& [uid, op] : shared->operators) {
    for (const std::string& bytes : op.subtasks) stats_.latest_bytes += bytes.size();
  }
  stats_.max_bytes = std::max(stats_.max_bytes, stats_.latest_bytes);
  stats_.latest_path = path;
  if (config_.metrics) {
    config_.metrics->record_checkpoint({.id = f.id,
                                        .savepoint = f.savepoint,
                                        .completed = true,
                                        .trigger_ms = f.started_ms,
                                        .duration_ms = stats_.latest_duration_ms,
                                        .bytes = stats_.latest_bytes,
                                        .path = path});
  }
  if (f.final) final_complete_ = true;
  SABOT_LOG(kInfo, "checkpoint") << "job '" << config_.job_name << "': checkpoint " << f.id
                                 << (f.final       ? " (final)"
                                     : f.savepoint ? " (savepoint)"
                                                   : "")
                                 << " complete" << (path.empty() ? "" : " at " + path);
  if (f.savepoint) {
    // A savepoint is asked for by a person (or a script) waiting to learn where it went.
    std::cerr << "savepoint " << f.id << " of job '" << config_.job_name << "' written"
              << (path.empty() ? std::string(" (in memory only: no checkpoint storage)")
                               : " to " + path)
              << "\n";
  }
  completed.store(f.id);
  wake_tasks_();
  done_cv_.notify_all();
}

void CheckpointCoordinator::abort_in_flight_locked(const InFlight& f, const std::string& why) {
  store_->abort(CheckpointId(f.id));
  ++stats_.aborted;
  if (config_.metrics) {
    config_.metrics->record_checkpoint({.id = f.id,
                                        .savepoint = f.savepoint,
                                        .completed = false,
                                        .trigger_ms = f.started_ms,
                                        .duration_ms = config_.clock->now().millis() - f.started_ms,
                                        .bytes = 0,
                                        .path = ""});
  }
  const std::string msg = "checkpoint " + std::to_string(f.id) + " aborted: " + why;
  outcomes_[f.id] = Status::cancelled(msg);
  SABOT_LOG(kWarn, "checkpoint") << "job '" << config_.job_name << "': " << msg;
  if (f.final && ++failed_finals_ >= kFinalAttempts) {
    fail_(Status::internal("the final checkpoint failed " + std::to_string(failed_finals_) +
                           " times (last: " + msg + ")"));
  }
  done_cv_.notify_all();
}

void CheckpointCoordinator::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const int64_t now = config_.clock->now().millis();
    if (const int64_t asked = g_savepoint_requests.load(); asked != savepoint_requests_seen_) {
      savepoint_requests_seen_ = asked;
      if (requested_) {
        requested_->second = true;
      } else {
        requested_ = std::make_pair(next_id_++, true);
      }
      SABOT_LOG(kInfo, "checkpoint") << "job '" << config_.job_name << "': savepoint requested";
    }
    if (in_flight_) {
      if (auto snap = store_->completed(CheckpointId(in_flight_->id))) {
        finish_in_flight(lock, std::move(*snap));
        continue;
      }
      if (now - in_flight_->started_ms >= config_.timeout.count()) {
        const InFlight f = *in_flight_;
        in_flight_.reset();
        abort_in_flight_locked(
            f, "not complete " + std::to_string(config_.timeout.count()) + " ms after its trigger");
        continue;
      }
    }
    if (!in_flight_ && !final_complete_) {
      const bool all_finished = config_.exactly_once && finished_tasks_ >= config_.tasks;
      if (all_finished && failed_finals_ < kFinalAttempts) {
        // Every task has finished its input: the final checkpoint (sources at their end).
        int64_t id = 0;
        bool savepoint = false;
        if (requested_) {
          id = requested_->first;
          savepoint = requested_->second;
          requested_.reset();
        } else {
          id = next_id_++;
        }
        begin(lock, id, savepoint, /*final=*/true, now);
        continue;
      }
      if (!all_finished && requested_) {
        const auto [id, savepoint] = *requested_;
        requested_.reset();
        begin(lock, id, savepoint, /*final=*/false, now);
        continue;
      }
      if (!all_finished && config_.interval.count() > 0 && now >= next_due_ms_) {
        next_due_ms_ = now + config_.interval.count();
        begin(lock, next_id_++, /*savepoint=*/false, /*final=*/false, now);
        continue;
      }
    }
    cv_.wait_for(lock, kPollPeriod);
  }
}

}  // namespace sabot::runtime
