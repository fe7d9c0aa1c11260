// For tests that run against both state backends (it includes gtest; programs do not include it):
// the backend kind as a gtest parameter, and one RocksDB backend per test process in a scratch
// directory removed at exit.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

#include "sabot/state/keyed_state_backend.h"
#include "sabot/state/rocksdb_backend.h"

namespace sabot::state::testing {

enum class BackendKind { kMemory, kRocksDb };

inline void PrintTo(BackendKind kind, std::ostream* os) {
  *os << (kind == BackendKind::kMemory ? "memory" : "rocksdb");
}

inline std::string backend_kind_name(const ::testing::TestParamInfo<BackendKind>& info) {
  return info.param == BackendKind::kMemory ? "Memory" : "RocksDb";
}

// The RocksDB backend of this test process. Small memtables, so that tests also read from SST
// files, not only from memory, and a small write cache, so that they run through its flushes as
// well as its hits.
inline const StateBackend& scratch_rocksdb_backend() {
  struct Holder {
    std::string dir;
    std::shared_ptr<RocksDbStateBackend> backend;
    Holder() {
      // On tmpfs when there is one: RocksDB syncs its manifest when an instance opens, and some
      // tests open over a thousand instances.
      const std::string base =
          std::filesystem::is_directory("/dev/shm") ? "/dev/shm/" : ::testing::TempDir();
      dir = base + "/sabot_test_rocksdb_" + std::to_string(::getpid());
      backend = RocksDbStateBackend::make(dir, {.block_cache_bytes = size_t{1} << 20,
                                                .write_buffer_bytes = size_t{256} << 10,
                                                .write_cache_bytes = size_t{16} << 10})
                    .value();
    }
    ~Holder() {
      backend.reset();
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  };
  static Holder holder;
  return *holder.backend;
}

// A RocksDB backend of its own with `options` (small caches, for state larger than memory) in a
// scratch directory named after `name`, removed with it.
class ScratchRocksDb {
 public:
  ScratchRocksDb(const std::string& name, const RocksDbOptions& options)
      : dir_(::testing::TempDir() + "/" + name + "_" + std::to_string(::getpid())),
        backend_(RocksDbStateBackend::make(dir_, options).value()) {}
  ~ScratchRocksDb() {
    backend_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  ScratchRocksDb(const ScratchRocksDb&) = delete;
  ScratchRocksDb& operator=(const ScratchRocksDb&) = delete;

  RocksDbStateBackend* get() const { return backend_.get(); }
  // The bytes of the SST files under the directory (the state RocksDB holds on disk).
  uint64_t sst_bytes() const {
    uint64_t n = 0;
    for (const auto& f : std::filesystem::recursive_directory_iterator(dir_)) {
      if (f.path().extension() == ".sst") n += f.file_size();
    }
    return n;
  }

 private:
  std::string dir_;
  std::shared_ptr<RocksDbStateBackend> backend_;
};

inline const StateBackend& backend_of(BackendKind kind) {
  static MemoryStateBackend memory;
  if (kind == BackendKind::kRocksDb) return scratch_rocksdb_backend();
  return memory;
}

}  // namespace sabot::state::testing
