// Incremental against full RocksDB checkpoints (docs/state-backends.md): a keyed process function
// on RocksDB counts rows per key; after every key has been seen once the job takes checkpoint 1,
// then `changed` percent of the keys get a row and it takes checkpoint 2. Prints, per mode, one
// JSON line with each checkpoint's time (trigger to completion, written to disk) and bytes: the
// state files, the shared SST files the checkpoint uses and those it copied.
//
//   incremental_checkpoint_bench [keys=10000000] [changed percent=1] [parallelism=1]
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "sabot/api/environment.h"
#include "sabot/api/process.h"
#include "sabot/state/rocksdb_backend.h"

struct KeyRow {
  int64_t key = 0;
};
SABOT_RECORD(KeyRow, key);

namespace sabot {
namespace {

class Count final : public KeyedProcessFunction<KeyRow, KeyRow> {
 public:
  void open(RuntimeContext& ctx) override { count_ = ctx.value_state<int64_t>("count"); }
  void process(const KeyRow&, Context&, Emitter<KeyRow>&) override {
    count_->update(count_->value().value_or(0) + 1);
  }

 private:
  state::ValueState<int64_t>* count_ = nullptr;
};

struct Figures {
  double seconds = 0;
  uint64_t state_file_bytes = 0;
  uint64_t shared_bytes = 0;
  uint64_t shared_bytes_copied = 0;
};

int run(bool incremental, int64_t keys, int64_t changed, int parallelism) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("sabot-incremental-bench-" + std::to_string(::getpid()) + (incremental ? "-inc" : "-full"));
  std::filesystem::remove_all(dir);
  auto storage = checkpoint::CheckpointStorage::open((dir / "ck").string());
  auto backend = state::rocksdb((dir / "state").string());
  if (!storage.is_ok() || !backend.is_ok()) {
    std::fprintf(stderr, "setup failed\n");
    return 1;
  }
  EnvironmentOptions o;
  o.parallelism = parallelism;
  o.batch_size = 4096;
  o.checkpoint_storage = std::make_shared<checkpoint::CheckpointStorage>(std::move(*storage));
  o.delivery = runtime::DeliveryGuarantee::kAtLeastOnce;
  o.state_backend = *backend;
  o.incremental_checkpoints = incremental;
  o.restore_latest = false;
  Environment env(o);
  std::atomic<int64_t> limit{keys};
  std::atomic<int64_t> produced{0};
  const int64_t total = keys + changed;
  auto gen = [&](int, int64_t next, int64_t max_rows) -> Result<std::optional<RecordBatch>> {
    if (next >= total) return std::optional<RecordBatch>();
    const int64_t end = std::min({total, next + max_rows, limit.load()});
    RowWriter<KeyRow> w;
    // Every key once, then `changed` keys spread over the whole range.
    for (int64_t i = next; i < end; ++i) {
      w.append(KeyRow{i < keys ? i : ((i - keys) * 7919) % keys});
    }
    produced.fetch_add(end - next);
    produced.notify_all();
    return std::optional<RecordBatch>(w.finish());
  };
  env.from_generator("keys", record_schema<KeyRow>(), 1, gen)
      .uid("keys")
      .key_by("key")
      .process(Count{})
      .uid("count")
      .blackhole();
  auto job = env.start("incremental-bench");
  if (!job.is_ok()) {
    std::fprintf(stderr, "%s\n", job.status().to_string().c_str());
    return 1;
  }
  Figures f[2];
  for (int c = 0; c < 2; ++c) {
    limit = c == 0 ? keys : total;
    // The barrier follows every row the source has given: the checkpoint covers them all. Wait
    // without spinning: a spinning thread would take a core from the job on a small machine.
    for (int64_t p = produced.load(); p < limit.load(); p = produced.load()) produced.wait(p);
    const auto t0 = std::chrono::steady_clock::now();
    auto id = (*job)->trigger_checkpoint();
    if (!id.is_ok()) return 1;
    auto snap = (*job)->wait_for_checkpoint(*id);
    if (!snap.is_ok()) {
      std::fprintf(stderr, "%s\n", snap.status().to_string().c_str());
      return 1;
    }
    f[c].seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto info =
        checkpoint::read_manifest((dir / "ck" / ("chk-" + std::to_string(id->value()))).string());
    if (!info.is_ok()) return 1;
    f[c].state_file_bytes = info->bytes;
    for (const auto& s : info->shared_files) f[c].shared_bytes += s.size;
    f[c].shared_bytes_copied = info->shared_bytes_copied;
  }
  (*job)->cancel();
  (void)(*job)->wait();
  std::printf(
      "{\"mode\": \"%s\", \"keys\": %lld, \"changed\": %lld, \"parallelism\": %d, "
      "\"checkpoint1\": {\"seconds\": %.3f, \"state_file_bytes\": %llu, \"shared_bytes\": %llu, "
      "\"shared_bytes_copied\": %llu}, \"checkpoint2\": {\"seconds\": %.3f, \"state_file_bytes\": "
      "%llu, \"shared_bytes\": %llu, \"shared_bytes_copied\": %llu}}\n",
      incremental ? "incremental" : "full", static_cast<long long>(keys),
      static_cast<long long>(changed), parallelism, f[0].seconds,
      static_cast<unsigned long long>(f[0].state_file_bytes),
      static_cast<unsigned long long>(f[0].shared_bytes),
      static_cast<unsigned long long>(f[0].shared_bytes_copied), f[1].seconds,
      static_cast<unsigned long long>(f[1].state_file_bytes),
      static_cast<unsigned long long>(f[1].shared_bytes),
      static_cast<unsigned long long>(f[1].shared_bytes_copied));
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace sabot

int main(int argc, char** argv) {
  const int64_t keys = argc > 1 ? std::atoll(argv[1]) : 10'000'000;
  const double percent = argc > 2 ? std::atof(argv[2]) : 1.0;
  const int parallelism = argc > 3 ? std::atoi(argv[3]) : 1;
  const int64_t changed = static_cast<int64_t>(static_cast<double>(keys) * percent / 100.0);
  for (bool incremental : {true, false}) {
    if (int rc = sabot::run(incremental, keys, changed, parallelism); rc != 0) return rc;
  }
  return 0;
}
