#include "sabot/runtime/checkpoint.h"

#include <algorithm>
#include <chrono>

#include "sabot/base/check.h"

namespace sabot::runtime {

CheckpointStore::CheckpointStore(int retained) : retained_(retained < 1 ? 1 : retained) {}

Status CheckpointStore::attach(std::string job_name, int subtasks, int max_parallelism) {
  std::lock_guard<std::mutex> lock(mu_);
  if (attached_) {
    return Status::invalid_argument("the checkpoint store is in use by job '" + job_name_ +
                                    "', which is still running");
  }
  attached_ = true;
  job_name_ = std::move(job_name);
  expected_ = subtasks;
  max_parallelism_ = max_parallelism;
  ended_.reset();
  newest_completed_ = -1;
  aborted_.clear();
  pending_.clear();
  completed_.clear();
  return Status::ok();
}

Status CheckpointStore::report(CheckpointId id, const std::string& uid, int subtask,
                               int parallelism, std::string bytes,
                               std::vector<checkpoint::SharedFile> files) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string what = "checkpoint " + std::to_string(id.value()) + ": operator '" + uid +
                           "' subtask " + std::to_string(subtask);
  if (!attached_) return Status::invalid_argument(what + ": the store has no running job");
  if (subtask < 0 || subtask >= parallelism) {
    return Status::invalid_argument(what + " is outside parallelism " +
                                    std::to_string(parallelism));
  }
  // A checkpoint aborted by the coordinator: a late report of it is dropped.
  if (aborted_.count(id.value()) != 0) return Status::ok();
  if (id.value() <= newest_completed_) {
    return Status::invalid_argument(what + " reported after checkpoint " +
                                    std::to_string(newest_completed_) + " completed");
  }
  Pending& p = pending_[id.value()];
  if (!p.seen.emplace(std::make_pair(uid, subtask), true).second) {
    return Status::invalid_argument(what +
                                    " reported twice (a source injected the barrier twice?)");
  }
  if (!bytes.empty()) {
    OperatorSnapshot& op = p.snapshot.operators[uid];
    if (op.subtasks.empty()) {
      op.parallelism = parallelism;
      op.subtasks.resize(static_cast<size_t>(parallelism));
    } else if (op.parallelism != parallelism) {
      return Status::invalid_argument(what + " reported parallelism " +
                                      std::to_string(parallelism) + ", another subtask " +
                                      std::to_string(op.parallelism));
    }
    op.subtasks[static_cast<size_t>(subtask)] = std::move(bytes);
  }
  for (checkpoint::SharedFile& f : files) {
    if (p.shared_names.insert(f.name).second) p.snapshot.shared_files.push_back(std::move(f));
  }
  if (++p.reported < expected_) return Status::ok();

  // Every operator subtask has reported: checkpoint `id` is complete.
  JobSnapshot done = std::move(p.snapshot);
  done.job_name = job_name_;
  done.checkpoint_id = id.value();
  done.max_parallelism = static_cast<uint32_t>(max_parallelism_);
  done.created_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  // Earlier checkpoints still pending can no longer complete: every subtask has passed them.
  pending_.erase(pending_.begin(), pending_.upper_bound(id.value()));
  completed_[id.value()] = std::move(done);
  newest_completed_ = id.value();
  while (static_cast<int>(completed_.size()) > retained_) completed_.erase(completed_.begin());
  cv_.notify_all();
  return Status::ok();
}

void CheckpointStore::abort(CheckpointId id) {
  std::lock_guard<std::mutex> lock(mu_);
  aborted_.insert(id.value());
  pending_.erase(id.value());
  cv_.notify_all();
}

void CheckpointStore::detach(const Status& outcome) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    attached_ = false;
    ended_ = outcome;
    pending_.clear();
  }
  cv_.notify_all();
}

Result<JobSnapshot> CheckpointStore::wait_for(CheckpointId id) {
  std::unique_lock<std::mutex> lock(mu_);
  const std::string what = "checkpoint " + std::to_string(id.value());
  for (;;) {
    if (auto it = completed_.find(id.value()); it != completed_.end()) return it->second;
    if (aborted_.count(id.value()) != 0) {
      return Status::cancelled(what + " was aborted (it did not complete in time)");
    }
    if (id.value() <= newest_completed_) {
      return Status::not_found(what + " is not held: checkpoint " +
                               std::to_string(newest_completed_) + " completed after it (" + what +
                               " did not reach every operator subtask, or it was dropped beyond "
                               "the " +
                               std::to_string(retained_) + " retained)");
    }
    if (ended_) {
      return Status::cancelled(
          what + " did not complete before the job ended" +
          (ended_->is_ok() ? std::string(" (it finished)") : ": " + ended_->message()));
    }
    cv_.wait(lock);
  }
}

std::optional<JobSnapshot> CheckpointStore::completed(CheckpointId id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = completed_.find(id.value());
  if (it == completed_.end()) return std::nullopt;
  return it->second;
}

std::optional<JobSnapshot> CheckpointStore::latest() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (completed_.empty()) return std::nullopt;
  return completed_.rbegin()->second;
}

std::vector<int64_t> CheckpointStore::completed_ids() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int64_t> ids;
  for (const auto& [id, snap] : completed_) ids.push_back(id);
  return ids;
}

}  // namespace sabot::runtime
