// The checkpoint and recovery flags of the job commands; see recovery.h.
#include "recovery.h"

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "sabot/checkpoint/storage.h"
#include "sabot/runtime/restart.h"

namespace sabot::cli {

void RecoveryFlags::add_to(FlagSet& flags, const std::string& outputs, const std::string& notes) {
  flags.add_string("checkpoint-dir", &checkpoint_dir_,
                   "checkpoint the job into DIR (created when missing; DIR/chk-<n>) and run it "
                   "exactly-once: " +
                       outputs +
                       " then only ever hold results of completed checkpoints, and a run killed "
                       "at any moment and started again with the same flags resumes from DIR's "
                       "newest usable checkpoint of this job, so that the finished output holds "
                       "every result exactly once; `kill -USR1 <pid>` takes a savepoint "
                       "(DIR/savepoint-<n>, never deleted, usable with --restore)" +
                       notes);
  flags.add_string("checkpoint-interval", &interval_,
                   "time between checkpoints: a whole number with ms, s, m or h (200ms, 1s); "
                   "needs --checkpoint-dir");
  flags.add_string("restore", &restore_,
                   "start from this checkpoint or savepoint directory (DIR/chk-<n>, "
                   "savepoint-<n>) instead of DIR's newest; refused when it is damaged. A run "
                   "restarted with the same flags resumes from a newer checkpoint of the job in "
                   "--checkpoint-dir when there is one; needs --checkpoint-dir");
  flags.add_bool("no-restore", &no_restore_,
                 "start from scratch even when --checkpoint-dir holds checkpoints of this job "
                 "(the outputs start empty; new checkpoint numbers follow the old ones)");
  flags.add_string("restart", &restart_,
                   "what a failure inside the running job does: none, fixed:<attempts>:<delay> "
                   "or backoff:<attempts>:<initial>:<max> (e.g. fixed:3:1s); each restart "
                   "resumes from the newest completed checkpoint; needs --checkpoint-dir");
}

std::optional<int> RecoveryFlags::check(const FlagSet& flags) const {
  auto refuse = [&](const std::string& why) {
    std::cerr << flags.command() << ": " << why << " (see '" << flags.command() << " --help')\n";
    return kExitUsage;
  };
  // (Empty values never get here: the parser refuses them.)
  if (checkpoint_dir_.empty()) {
    for (const char* name : {"checkpoint-interval", "restore", "no-restore", "restart"}) {
      if (flags.is_set(name))
        return refuse("--" + std::string(name) + " needs --checkpoint-dir DIR");
    }
  }
  if (!restore_.empty() && no_restore_) {
    return refuse("--restore and --no-restore contradict each other; give one of them");
  }
  auto interval = runtime::parse_duration(interval_);
  if (!interval.is_ok()) return refuse("--checkpoint-interval: " + interval.status().message());
  if (interval->count() <= 0) {
    return refuse("--checkpoint-interval: '" + interval_ + "' is not longer than 0");
  }
  auto restart = runtime::parse_restart_strategy(restart_);
  if (!restart.is_ok()) return refuse("--restart: " + restart.status().message());
  return std::nullopt;
}

Status RecoveryFlags::check_exactly_once_output(const std::string& flag, const std::string& path) {
  if (path == "-") {
    return Status::invalid_argument(flag +
                                    " -: standard output cannot be written exactly-once (a "
                                    "restarted run cuts its output back); give a file");
  }
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
    return Status::invalid_argument(flag + " '" + path +
                                    "': an exactly-once output must be a regular file (it is "
                                    "appended to at each checkpoint and cut back on restore)");
  }
  return Status::ok();
}

Status RecoveryFlags::apply(const std::string& dir, const std::string& job_name,
                            EnvironmentOptions* env) const {
  if (!enabled()) return Status::ok();
  SABOT_ASSIGN_OR_RETURN(env->restart, runtime::parse_restart_strategy(restart_));
  SABOT_ASSIGN_OR_RETURN(env->checkpoint_interval, runtime::parse_duration(interval_));
  SABOT_ASSIGN_OR_RETURN(checkpoint::CheckpointStorage storage,
                         checkpoint::CheckpointStorage::open(dir));
  env->delivery = runtime::DeliveryGuarantee::kExactlyOnce;
  env->restore_latest = !no_restore_;
  if (!restore_.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(restore_, ec)) {
      return Status::invalid_argument(
          "cannot restore from '" + restore_ + "': " +
          (std::filesystem::exists(restore_, ec) ? "it is not a directory" : "it does not exist") +
          " (give a checkpoint directory DIR/chk-<n> or savepoint-<n>)");
    }
    auto data = checkpoint::load_checkpoint(restore_);
    if (!data.is_ok()) {
      return Status::invalid_argument("cannot restore from '" + restore_ +
                                      "': " + data.status().message());
    }
    // A restarted run (same flags) must not go back to --restore when the job has checkpointed
    // since: then restore_latest takes DIR's newest, as without --restore.
    SABOT_ASSIGN_OR_RETURN(auto listed, storage.list());
    int64_t newer = -1;
    for (const checkpoint::CheckpointInfo& info : listed) {
      if (info.usable && info.job_name == job_name && info.checkpoint_id > data->checkpoint_id) {
        newer = std::max(newer, info.checkpoint_id);
      }
    }
    if (newer >= 0) {
      std::cerr << "sabot: --restore '" << restore_ << "' (checkpoint " << data->checkpoint_id
                << ") is older than checkpoint " << newer << " of " << job_name << " in '" << dir
                << "': resuming from the newest (to go back, give another --checkpoint-dir)\n";
    } else {
      env->restore_from = std::make_shared<const runtime::JobSnapshot>(std::move(*data));
      env->restore_from_path = restore_;
    }
  }
  env->checkpoint_storage = std::make_shared<checkpoint::CheckpointStorage>(std::move(storage));
  return Status::ok();
}

}  // namespace sabot::cli
