// The RocksDB keyed-state backend: the same KeyedStateBackend API and snapshot format as the memory
// backend, with every (key, namespace) entry held in a RocksDB instance on local disk, so keyed
// state can outgrow memory. One RocksDB instance per keyed backend (one per operator subtask);
// all instances made by one RocksDbStateBackend share its block cache and memtable budget. Also
// incremental checkpoints of an instance (RocksDbCheckpointStore). Layout and tuning:
// docs/state-backends.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sabot/base/ids.h"
#include "sabot/base/status.h"
#include "sabot/state/keyed_state_backend.h"

namespace sabot::state {

// Tuning of the RocksDB backend. Every field has a working default; all are fixed once the
// RocksDbStateBackend is made.
struct RocksDbOptions {
  // LRU block cache for uncompressed data and index blocks, in bytes, shared by every instance of
  // the backend (so it is per process when the process has one backend). Default 64 MiB.
  size_t block_cache_bytes = size_t{64} << 20;
  // Memtable size of each instance (RocksDB's write_buffer_size): writes collect here before they
  // are flushed to an SST file. Default 8 MiB.
  size_t write_buffer_bytes = size_t{8} << 20;
  // Memtables per instance, the active one included (max_write_buffer_number). Default 2.
  int max_write_buffers = 2;
  // The memory budget of all instances together, in bytes (at least 4 MiB). 0 (the default): no
  // shared limit; each instance uses up to write_buffer_bytes * max_write_buffers for memtables
  // and write_cache_bytes for its write cache besides the shared block cache. When set, the
  // block cache, every memtable and every write cache together stay within it: a quarter goes to
  // the write caches of all live instances (an equal share each, at most write_cache_bytes; none
  // when write_cache_bytes is 0), the rest is the block cache, to which the memtables of all
  // instances are charged (a shared WriteBufferManager limited to half of it; each memtable is then
  // at most an eighth of that). block_cache_bytes is then ignored. See
  // RocksDbStateBackend::memory_usage().
  size_t memory_budget_bytes = 0;
  // Write-back cache of each instance, in bytes (its 32-byte entries, their index and their
  // values): state reads and writes of cached keys skip RocksDB, and dirty entries are
  // written in one batch when the cache is full and before every snapshot, checkpoint and scan.
  // Without a memory budget, in addition to the block cache. 0 turns it off (every access goes to
  // RocksDB). Default 64 MiB: the fraud demo's 100 K accounts at parallelism 1 fit (at 32 MiB
  // they cycled through RocksDB at half the speed).
  size_t write_cache_bytes = size_t{64} << 20;
  // Bloom filter bits per key for point lookups (state reads); 0 turns filters off. Default 10.
  int bloom_bits_per_key = 10;
  // Keep each instance's directory when its backend is destroyed (for inspection). Default false:
  // the directory is deleted, since checkpoints, not the working directory, hold durable state.
  bool keep_instance_dirs = false;
};

// What the backend's live instances hold in memory, in bytes.
struct RocksDbMemoryUsage {
  size_t block_cache = 0;   // the shared block cache's usage (with a budget, memtables included)
  size_t memtables = 0;     // every instance's memtables (RocksDB's cur-size-all-mem-tables)
  size_t write_caches = 0;  // every instance's write cache, as of its last state access
  bool memtables_in_block_cache = false;  // a memory budget charges memtables to the cache
  size_t total() const {
    return block_cache + (memtables_in_block_cache ? 0 : memtables) + write_caches;
  }
};

// Makes one RocksDB instance per keyed backend in a fresh directory under `dir` (created if
// missing). Thread-safe: subtasks create their backends concurrently.
class RocksDbStateBackend final : public StateBackend {
 public:
  static Result<std::shared_ptr<RocksDbStateBackend>> make(std::string dir,
                                                           RocksDbOptions options = {});
  ~RocksDbStateBackend() override;
  std::string_view name() const override { return "rocksdb"; }
  Result<std::unique_ptr<KeyedStateBackend>> create_keyed_backend(
      const KeyedBackendOptions& options) const override;
  const std::string& dir() const { return dir_; }
  const RocksDbOptions& options() const { return options_; }
  // Thread-safe; with memory_budget_bytes set, total() stays within it (docs/state-backends.md,
  // "Memory budget", says by how much it may briefly exceed it).
  RocksDbMemoryUsage memory_usage() const;
  // memory_usage() as parts: block_cache, memtables, write_caches, total (block_cache includes
  // the memtables when a budget charges them to it; total counts them once) and, with a budget,
  // budget.
  std::vector<std::pair<std::string, int64_t>> memory_parts() const override;

  struct Shared;  // cache, write buffer manager, instance counter

 private:
  RocksDbStateBackend(std::string dir, RocksDbOptions options, std::shared_ptr<Shared> shared);
  std::string dir_;
  RocksDbOptions options_;
  std::shared_ptr<Shared> shared_;  // also held by every keyed backend made
};

// state::rocksdb(dir, options): the RocksDB backend as a configuration value (EnvironmentOptions).
Result<std::shared_ptr<const StateBackend>> rocksdb(std::string dir, RocksDbOptions options = {});

// ---- Incremental checkpoints ----
//
// A store of RocksDB checkpoints under `root`:
//   root/shared/<file>          SST files, each copied once and referenced by every checkpoint
//                               that holds it
//   root/chk-<n>/<name>/        one directory per checkpoint and backend `name`: the instance's
//                               small private files (MANIFEST, CURRENT, OPTIONS) and MANIFEST.sabot
//                               listing the shared SST files and the states
// A shared file is deleted when no retained checkpoint lists it (discard()).
// Not thread-safe; one writer.
class RocksDbCheckpointStore {
 public:
  explicit RocksDbCheckpointStore(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }

  // What one checkpoint of one backend cost.
  struct Stats {
    uint64_t sst_files = 0;         // SST files the checkpoint references
    uint64_t sst_files_copied = 0;  // of which newly copied into root/shared
    uint64_t bytes_total = 0;       // bytes of all files the checkpoint references
    uint64_t bytes_copied = 0;      // bytes copied by this checkpoint (shared and private)
  };

  // Checkpoints that exist in the store, increasing.
  Result<std::vector<CheckpointId>> checkpoints() const;
  // Removes checkpoint `id` and every shared file no other checkpoint lists.
  Status discard(CheckpointId id);
  // Bytes of the files under root/shared.
  Result<uint64_t> shared_bytes() const;

 private:
  std::string root_;
};

// A keyed backend's RocksDB checkpoint between its synchronous and asynchronous parts: a local
// RocksDB Checkpoint (hard links to the live SST files, taken while the task is stopped at the
// barrier) and the state descriptions at that point.
class RocksDbLocalCheckpoint {
 public:
  virtual ~RocksDbLocalCheckpoint() = default;
  // The asynchronous part: copies the checkpoint into `store` as checkpoint `id` of backend
  // `name`. With `incremental` only SST files not already in the store's shared directory are
  // copied (a file name carries the instance's unique id, so equal names are equal files); a full
  // checkpoint copies every file again into the checkpoint's own directory. Removes the local
  // hard links afterwards.
  virtual Result<RocksDbCheckpointStore::Stats> upload(RocksDbCheckpointStore& store,
                                                       CheckpointId id, const std::string& name,
                                                       bool incremental = true) = 0;

  // The checkpoint as the job runtime stores it (a checkpoint::CheckpointStorage directory): the
  // manifest (the states and every file), the small private files' bytes (MANIFEST, CURRENT,
  // OPTIONS: they go into the operator's snapshot) and the SST files by their shared name
  // (unique across instances and processes) with the local hard link to copy them from.
  struct Image {
    std::string manifest;
    std::vector<std::pair<std::string, std::string>> private_files;  // name, bytes
    struct Sst {
      std::string shared_name;
      std::string path;
      uint64_t size = 0;
    };
    std::vector<Sst> ssts;
  };
  virtual Result<Image> image() const = 0;
  // The local directory of hard links (deleted with this object).
  virtual const std::string& local_dir() const = 0;
};

// The RocksDB-specific operations of a keyed backend made by RocksDbStateBackend (reach it with
// as_rocksdb()). Same thread as the backend.
class RocksDbKeyedStateBackend : public KeyedStateBackend {
 public:
  // The synchronous part of a checkpoint: flushes the memtables and hard-links the live files.
  virtual Result<std::unique_ptr<RocksDbLocalCheckpoint>> checkpoint_local() = 0;
  // Adds the entries of the key groups this backend owns from checkpoint `id` of backend `name`
  // in `store` (taken at any parallelism: call it once per old subtask whose key groups overlap);
  // other key groups are dropped. Keys are registered as they are read.
  virtual Status restore_checkpoint(const RocksDbCheckpointStore& store, CheckpointId id,
                                    const std::string& name) = 0;
  // Adds the entries of the owned key groups from an Image of any backend of the same operator
  // (manifest and private files as image() gave them) whose SST files are in `shared_dir` under
  // their shared names; other key groups are dropped. Call it once per old subtask.
  virtual Status restore_image(std::string_view manifest,
                               std::span<const std::pair<std::string, std::string>> private_files,
                               const std::string& shared_dir) = 0;
  // The instance's working directory.
  virtual const std::string& instance_dir() const = 0;
  // Bytes of the instance's live SST files.
  virtual uint64_t live_sst_bytes() const = 0;

 protected:
  using KeyedStateBackend::KeyedStateBackend;
};

// The RocksDB side of `backend`, or nullptr when it is another kind.
RocksDbKeyedStateBackend* as_rocksdb(KeyedStateBackend* backend);

}  // namespace sabot::state
