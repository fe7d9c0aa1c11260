// Durable checkpoints in a local directory. A checkpoint is a directory `DIR/chk-<n>/` (a
// savepoint: `DIR/savepoint-<n>/`) holding one file per operator subtask's snapshot
// (state/snapshot.h) and a MANIFEST written last and atomically (temporary file, fsync, rename,
// fsync of the directory). A checkpoint without a manifest was cut short and is not one. The
// manifest is itself a snapshot envelope (uid "checkpoint", state type "manifest"): the job's name,
// the checkpoint's number, time and max parallelism, and per file the operator uid, subtask,
// parallelism, size and CRC-32C, so a checkpoint is readable (sabot checkpoints ...) without the
// job's code, and a damaged file is found before anything is restored from it.
//
// One writer per directory (the job's coordinator); readers may run concurrently with it, since
// what they see is either a whole checkpoint or no manifest. Not thread-safe per object.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/base/status.h"

namespace sabot::checkpoint {

// The snapshots of one operator (by uid) in a checkpoint: one per subtask of the parallelism it
// ran at; subtasks without state have an empty string.
struct OperatorState {
  int parallelism = 1;
  std::vector<std::string> subtasks;
};

// An immutable file that checkpoints share instead of copying it again (a RocksDB SST file of an
// incremental checkpoint, docs/state-backends.md): stored once as DIR/shared/<name> and referenced
// by every checkpoint that lists it; deleted when no checkpoint in DIR lists it. A savepoint keeps
// copies of its own in DIR/savepoint-<n>/shared, so that it is self-contained.
struct SharedFile {
  std::string name;  // unique across instances and processes; a file name, no '/'
  uint64_t size = 0;
  // Where CheckpointStorage::write copies it from when DIR/shared lacks it (the operator keeps it
  // until notify_checkpoint_complete). Empty in loaded checkpoints.
  std::string source_path;
};

// What a checkpoint holds, in memory: what the runtime restores a job from.
struct CheckpointData {
  std::string job_name;
  int64_t checkpoint_id = 0;
  int64_t created_unix_ms = 0;  // wall-clock time the checkpoint completed
  bool savepoint = false;
  uint32_t max_parallelism = 128;
  std::map<std::string, OperatorState> operators;  // by uid
  // Files the operators' snapshots refer to by name (each listed once).
  std::vector<SharedFile> shared_files;
  // Where those files are (shared_files_dir; set by load_checkpoint and the runtime after
  // CheckpointStorage::write; empty for checkpoints held only in memory).
  std::string shared_dir;
};

// A checkpoint as listed: what the manifest says, without the state bytes.
struct CheckpointInfo {
  std::string path;  // DIR/chk-<n>
  int64_t checkpoint_id = 0;
  bool savepoint = false;
  // "complete", or why the checkpoint cannot be used ("no manifest (incomplete)", "damaged: ...").
  std::string status;
  bool usable = false;
  int64_t created_unix_ms = 0;
  uint64_t bytes = 0;  // sum of the state files
  std::string job_name;
  uint32_t max_parallelism = 0;
  struct File {
    std::string uid;
    int subtask = 0;
    int parallelism = 0;
    std::string name;
    uint64_t size = 0;
    uint32_t crc = 0;
  };
  std::vector<File> files;
  // The shared files the checkpoint lists, and the bytes of those that writing it copied (the
  // others were already in DIR/shared): what an incremental checkpoint cost.
  std::vector<SharedFile> shared_files;
  uint64_t shared_bytes_copied = 0;
};

struct StorageOptions {
  // Complete checkpoints (not savepoints) kept; older ones are deleted after each new one.
  int retained = 3;
};

class CheckpointStorage {
 public:
  // Creates `dir` when missing. Refuses a path that exists and is not a directory.
  static Result<CheckpointStorage> open(std::string dir, StorageOptions options = {});

  const std::string& dir() const { return dir_; }

  // Writes `data` as DIR/chk-<id> (or savepoint-<id>): state files, then the manifest atomically.
  // Then deletes checkpoints beyond the retained count and incomplete ones older than this one.
  // Returns the checkpoint's path. On error the partial directory is removed (best effort); a
  // crash mid-write leaves a directory without manifest that listing reports and recovery skips.
  Result<std::string> write(const CheckpointData& data);

  // Every checkpoint and savepoint directory, by increasing number, with its status.
  Result<std::vector<CheckpointInfo>> list() const;

  // The newest usable checkpoint or savepoint of `job_name` (any job when empty): damaged and
  // incomplete ones are skipped with a warning naming the reason. nullopt when there is none.
  Result<std::optional<CheckpointData>> load_latest(std::string_view job_name = {}) const;

 private:
  CheckpointStorage(std::string dir, StorageOptions options)
      : dir_(std::move(dir)), options_(options) {}
  Status remove_old(int64_t newest_id) const;

  std::string dir_;
  StorageOptions options_;
};

// Reads one checkpoint directory: its manifest, then every state file, checking sizes and
// checksums. InvalidData naming the file and what is wrong.
Result<CheckpointData> load_checkpoint(const std::string& path);

// Where the shared files of the checkpoint or savepoint directory `path` are: a savepoint's own
// `path`/shared when it has one, else DIR/shared next to `path`.
std::string shared_files_dir(const std::string& path, bool savepoint);
// The manifest of one checkpoint directory, without reading the state files (status "complete"
// means the manifest decodes; files are checked by load_checkpoint).
Result<CheckpointInfo> read_manifest(const std::string& path);

}  // namespace sabot::checkpoint
