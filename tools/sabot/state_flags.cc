#include "state_flags.h"

#include <iostream>

namespace sabot::cli {

void StateBackendFlags::add_to(FlagSet& flags) {
  flags.add_string("state-backend", &backend_,
                   "where every stateful operator (keyed process functions, dedup, top-N, "
                   "windows, joins) keeps its state: memory (default) or rocksdb (on local disk "
                   "under --state-dir, for state larger than memory)",
                   {"memory", "rocksdb"});
  flags.add_string("state-dir", &dir_,
                   "working directory of the rocksdb state backend (one RocksDB instance per "
                   "subtask below it, deleted when the job ends)");
  flags.add_int("rocksdb-block-cache-mb", &block_cache_mb_,
                "rocksdb: block cache shared by all instances, MiB", 1, 1 << 20);
  flags.add_int("rocksdb-write-buffer-mb", &write_buffer_mb_,
                "rocksdb: memtable size per instance, MiB", 1, 1 << 16);
  flags.add_int("rocksdb-write-cache-mb", &write_cache_mb_,
                "rocksdb: write-back cache of state entries per instance, MiB (0: off)", 0,
                1 << 16);
  flags.add_bool("full-checkpoints", &full_checkpoints_,
                 "rocksdb: every checkpoint holds the whole state (default: incremental, a "
                 "checkpoint copies only the RocksDB files no retained checkpoint holds)");
  flags.add_int("rocksdb-memory-mb", &memory_budget_mb_,
                "rocksdb: memory budget of the block cache, memtables and write caches of all "
                "instances together, MiB (at least 4; 0: none, each sized by its own flag)",
                0, 1 << 20);
}

std::optional<int> StateBackendFlags::check(const FlagSet& flags) const {
  if (backend_ != "memory" && backend_ != "rocksdb") {
    std::cerr << flags.command() << ": --state-backend: '" << backend_
              << "' is not a state backend (memory or rocksdb)\n";
    return kExitUsage;
  }
  if (backend_ == "rocksdb" && dir_.empty()) {
    std::cerr << flags.command()
              << ": --state-backend rocksdb needs --state-dir DIR (where the RocksDB instances "
                 "live)\n";
    return kExitUsage;
  }
  if (backend_ == "memory") {
    for (const char* name : {"state-dir", "rocksdb-block-cache-mb", "rocksdb-write-buffer-mb",
                             "rocksdb-memory-mb", "rocksdb-write-cache-mb", "full-checkpoints"}) {
      if (flags.is_set(name)) {
        std::cerr << flags.command() << ": --" << name << " needs --state-backend rocksdb\n";
        return kExitUsage;
      }
    }
  }
  if (memory_budget_mb_ > 0 && memory_budget_mb_ < 4) {
    std::cerr << flags.command() << ": --rocksdb-memory-mb: " << memory_budget_mb_
              << " MiB is below the smallest budget, 4 MiB (0: no budget)\n";
    return kExitUsage;
  }
  return std::nullopt;
}

Status StateBackendFlags::apply(EnvironmentOptions* env) {
  if (backend_ != "rocksdb") return Status::ok();
  if (made_ == nullptr) {
    SABOT_ASSIGN_OR_RETURN(
        made_,
        state::rocksdb(dir_, {.block_cache_bytes = static_cast<size_t>(block_cache_mb_) << 20,
                              .write_buffer_bytes = static_cast<size_t>(write_buffer_mb_) << 20,
                              .memory_budget_bytes = static_cast<size_t>(memory_budget_mb_) << 20,
                              .write_cache_bytes = static_cast<size_t>(write_cache_mb_) << 20}));
  }
  env->state_backend = made_;
  env->incremental_checkpoints = !full_checkpoints_;
  return Status::ok();
}

}  // namespace sabot::cli
