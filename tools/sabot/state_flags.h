// The state backend flags that the job commands (`demo fraud`, `bench nexmark`) share:
// --state-backend memory|rocksdb, --state-dir and the RocksDB tuning flags, their checks, and how
// they set a job's EnvironmentOptions. One StateBackendFlags per command invocation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "flags.h"
#include "sabot/api/environment.h"
#include "sabot/state/rocksdb_backend.h"

namespace sabot::cli {

class StateBackendFlags {
 public:
  void add_to(FlagSet& flags);
  // nullopt: go on; otherwise the exit code (kExitUsage) after printing the refusal (an unknown
  // backend, rocksdb without --state-dir, RocksDB flags without rocksdb).
  std::optional<int> check(const FlagSet& flags) const;
  // Sets env->state_backend (nothing for memory). The RocksDB backend is made once and shared by
  // every job the command runs.
  Status apply(EnvironmentOptions* env);

 private:
  std::string backend_ = "memory";
  std::string dir_;
  // The API's defaults (state::RocksDbOptions), in MiB.
  int64_t block_cache_mb_ = static_cast<int64_t>(state::RocksDbOptions{}.block_cache_bytes >> 20);
  int64_t write_buffer_mb_ = static_cast<int64_t>(state::RocksDbOptions{}.write_buffer_bytes >> 20);
  int64_t memory_budget_mb_ = 0;
  bool full_checkpoints_ = false;
  int64_t write_cache_mb_ = static_cast<int64_t>(state::RocksDbOptions{}.write_cache_bytes >> 20);
  std::shared_ptr<const state::StateBackend> made_;
};

}  // namespace sabot::cli
