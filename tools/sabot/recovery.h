// The checkpoint and recovery flags that the job commands (`demo fraud`, `bench nexmark`) share:
// --checkpoint-dir, --checkpoint-interval, --restore, --no-restore and --restart, their checks,
// and how they set a job's EnvironmentOptions. One RecoveryFlags per command invocation; not
// thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "flags.h"
#include "sabot/api/environment.h"

namespace sabot::cli {

class RecoveryFlags {
 public:
  // Declares the flags on `flags`; `outputs` names the command's output flags in the help text
  // ("--alerts-out"), `notes` ends the --checkpoint-dir help ("; needs ...").
  void add_to(FlagSet& flags, const std::string& outputs, const std::string& notes = "");

  // Checks the combinations after parsing (each of the other flags needs --checkpoint-dir;
  // --restore and --no-restore exclude each other; bad durations and restart strategies).
  // nullopt: go on; otherwise the exit code (kExitUsage) after printing the refusal.
  std::optional<int> check(const FlagSet& flags) const;

  // True when --checkpoint-dir was given: the job checkpoints and runs exactly-once.
  bool enabled() const { return !checkpoint_dir_.empty(); }
  const std::string& checkpoint_dir() const { return checkpoint_dir_; }
  bool restoring_path() const { return !restore_.empty(); }

  // Sets the checkpoint fields of `env` for job `job_name` with checkpoints in `dir` (the
  // --checkpoint-dir, or a directory below it): storage (created when missing), interval,
  // delivery kExactlyOnce, restore_latest, restart, and restore_from for --restore (unless `dir`
  // holds a newer usable checkpoint of the same job: a run restarted with the same flags resumes
  // from there). Without --checkpoint-dir nothing. Errors name the directory or
  // the checkpoint and why it cannot be used (a damaged --restore is refused, not skipped).
  Status apply(const std::string& dir, const std::string& job_name, EnvironmentOptions* env) const;

  // An output that the exactly-once file sink writes must be a regular file (new or existing):
  // it is appended to at every checkpoint, cut back on restore and has staged files next to it.
  // Standard output ("-"), devices, pipes and directories are refused, naming `flag`.
  static Status check_exactly_once_output(const std::string& flag, const std::string& path);

 private:
  std::string checkpoint_dir_;
  std::string interval_ = "1s";
  std::string restore_;
  bool no_restore_ = false;
  std::string restart_ = "none";
};

}  // namespace sabot::cli
