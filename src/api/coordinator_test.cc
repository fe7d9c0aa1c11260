// The checkpoint coordinator end to end: periodic checkpoints on a ManualClock written to a
// directory, the final checkpoint under exactly-once, restore from every written checkpoint (also
// at another parallelism), a failed checkpoint write that aborts only that checkpoint, and
// notify_checkpoint_complete never running concurrently with process_batch. The sink is a
// two-phase-commit test sink: it stages rows, pre-commits them in snapshot_state(n) (they are in
// its state) and makes them visible in notify_checkpoint_complete(n), re-committing pre-committed
// transactions it is restored with (idempotently, by transaction id).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "sabot/api/environment.h"
#include "sabot/state/snapshot.h"

struct Row {
  int64_t key = 0;
  int64_t ts = 0;
  int64_t v = 0;
};
SABOT_RECORD(Row, key, ts, v);

namespace sabot {
namespace {

using namespace std::chrono_literals;

// What the sinks made visible: per transaction (old subtask, checkpoint id) its rows.
struct Committed {
  std::mutex mu;
  std::map<std::pair<int, int64_t>, std::vector<std::string>> txns;
  std::atomic<int> concurrent_calls{0};  // > 0: notify ran concurrently with process_batch

  std::vector<std::string> rows(int64_t up_to = INT64_MAX) {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::string> out;
    for (const auto& [txn, r] : txns) {
      if (txn.second <= up_to) out.insert(out.end(), r.begin(), r.end());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

class CommitSink final : public runtime::Operator {
 public:
  explicit CommitSink(std::shared_ptr<Committed> c) : c_(std::move(c)) {}
  Status open(const runtime::OperatorContext& ctx) override {
    ctx_ = ctx;
    return Status::ok();
  }
  Status process_batch(const RecordBatch& b, int, runtime::Output&) override {
    Enter e(this);
    for (int64_t r = 0; r < b.num_rows(); ++r) {
      std::string line;
      for (int col = 0; col < b.num_columns(); ++col) {
        if (col) line += '|';
        line += b.column(col).scalar_at(r).to_string();
      }
      staged_.push_back(std::move(line));
    }
    return Status::ok();
  }
  Status snapshot_state(CheckpointId id, std::string* out) override {
    Enter e(this);
    pending_[id.value()] = std::move(staged_);
    staged_.clear();
    state::SnapshotWriter w(out, {.operator_uid = ctx_.uid,
                                  .state_type = "commit-sink",
                                  .state_version = 1,
                                  .max_parallelism = static_cast<uint32_t>(ctx_.max_parallelism)});
    ByteWriter& b = w.begin_section(state::kOperatorWide);
    b.put<int32_t>(ctx_.subtask_index);
    b.put<uint64_t>(pending_.size());
    for (const auto& [txn, rows] : pending_) {
      b.put<int64_t>(txn);
      b.put<uint64_t>(rows.size());
      for (const auto& r : rows) b.put_bytes(r);
    }
    w.finish();
    return Status::ok();
  }
  Status restore_state(std::string_view data) override {
    SABOT_ASSIGN_OR_RETURN(
        state::SnapshotReader r,
        state::SnapshotReader::open(data, ctx_.uid, "commit-sink", 1,
                                    static_cast<uint32_t>(ctx_.max_parallelism)));
    ByteReader b = r.section_reader(0);
    int32_t old_subtask = 0;
    uint64_t n = 0;
    SABOT_RETURN_IF_ERROR(b.get(&old_subtask));
    SABOT_RETURN_IF_ERROR(b.get(&n));
    for (uint64_t i = 0; i < n; ++i) {
      int64_t txn = 0;
      uint64_t count = 0;
      SABOT_RETURN_IF_ERROR(b.get(&txn));
      SABOT_RETURN_IF_ERROR(b.get(&count));
      std::vector<std::string> rows(count);
      for (auto& row : rows) SABOT_RETURN_IF_ERROR(b.get_bytes(&row));
      commit(old_subtask, txn, std::move(rows));  // pre-committed before the failure
    }
    return Status::ok();
  }
  Status notify_checkpoint_complete(CheckpointId id) override {
    Enter e(this);
    while (!pending_.empty() && pending_.begin()->first <= id.value()) {
      commit(ctx_.subtask_index, pending_.begin()->first, std::move(pending_.begin()->second));
      pending_.erase(pending_.begin());
    }
    return Status::ok();
  }

 private:
  struct Enter {
    explicit Enter(CommitSink* s) : s_(s) {
      if (s_->active_.fetch_add(1) != 0) s_->c_->concurrent_calls.fetch_add(1);
    }
    ~Enter() { s_->active_.fetch_sub(1); }
    CommitSink* s_;
  };
  void commit(int subtask, int64_t txn, std::vector<std::string> rows) {
    std::lock_guard<std::mutex> lock(c_->mu);
    c_->txns.emplace(std::make_pair(subtask, txn), std::move(rows));  // idempotent
  }

  std::shared_ptr<Committed> c_;
  runtime::OperatorContext ctx_;
  std::vector<std::string> staged_;
  std::map<int64_t, std::vector<std::string>> pending_;  // pre-committed, by checkpoint
  std::atomic<int> active_{0};
};

class CommitSinkFactory final : public runtime::OperatorFactory {
 public:
  explicit CommitSinkFactory(std::shared_ptr<Committed> c) : c_(std::move(c)) {}
  std::string kind() const override { return "commit-sink"; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> in) const override { return in[0]; }
  Result<std::unique_ptr<runtime::Operator>> create(
      std::span<const SchemaPtr>, const runtime::OperatorContext&) const override {
    return std::unique_ptr<runtime::Operator>(new CommitSink(c_));
  }

 private:
  std::shared_ptr<Committed> c_;
};

constexpr int kSplits = 4;

std::vector<RecordBatch> input() {
  std::mt19937_64 rng(7);
  std::vector<RecordBatch> out;
  for (int s = 0; s < kSplits; ++s) {
    RowWriter<Row> w;
    int64_t ts = 1000;
    for (int i = 0; i < 3000; ++i) {
      ts += static_cast<int64_t>(rng() % 4);
      w.append(Row{static_cast<int64_t>(rng() % 50), ts, static_cast<int64_t>(rng() % 100)});
    }
    out.push_back(w.finish());
  }
  return out;
}

DataStream windowed(Environment& env, const std::vector<RecordBatch>& in) {
  return env.from_batches(in)
      .with_watermarks(bounded_out_of_orderness("ts", 5ms))
      .key_by("key")
      .window(tumbling(50ms))
      .aggregate({count().as("n"), sum("v").as("total")})
      .uid("window");
}

std::vector<std::string> uninterrupted(const std::vector<RecordBatch>& in) {
  Environment env({.parallelism = 2, .worker_threads = 2});
  auto c = windowed(env, in).collect();
  EXPECT_TRUE(env.execute().ok());
  std::vector<std::string> out;
  for (const RecordBatch& b : c->batches()) {
    for (int64_t r = 0; r < b.num_rows(); ++r) {
      std::string line;
      for (int col = 0; col < b.num_columns(); ++col) {
        if (col) line += '|';
        line += b.column(col).scalar_at(r).to_string();
      }
      out.push_back(std::move(line));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct TempDir {
  std::string path;
  TempDir() {
    path = (std::filesystem::temp_directory_path() /
            ("sabot-coord-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++)))
               .string();
    std::filesystem::remove_all(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

// Runs the exactly-once job with a checkpoint every 100 ms of a ManualClock that the test moves.
struct EoRun {
  Status status;
  runtime::CheckpointStats stats;
  int64_t snapshots = 0;  // operator snapshots taken on the tasks' threads, over all operators
};
EoRun run_exactly_once(const std::vector<RecordBatch>& in, int parallelism,
                       std::shared_ptr<checkpoint::CheckpointStorage> storage,
                       std::shared_ptr<Committed> committed,
                       std::shared_ptr<const runtime::JobSnapshot> restore,
                       std::function<Status(const runtime::JobSnapshot&)> hook = nullptr) {
  ManualClock clock(Timestamp(0));
  EnvironmentOptions o;
  o.parallelism = parallelism;
  o.worker_threads = parallelism + 3;
  o.batch_size = 64;
  o.clock = &clock;
  o.restore_from = std::move(restore);
  o.checkpoint_interval = 100ms;
  o.checkpoint_storage = std::move(storage);
  o.delivery = runtime::DeliveryGuarantee::kExactlyOnce;
  o.checkpoint_write_hook = std::move(hook);
  Environment env(o);
  windowed(env, in).sink(std::make_shared<CommitSinkFactory>(committed));
  auto job = env.start("eo-job");
  EXPECT_TRUE(job.is_ok()) << job.status().to_string();
  if (!job.is_ok()) return {job.status(), {}};
  // Drive the clock from the test thread: one interval at a time, each time waiting until the
  // coordinator has triggered the checkpoint it made due, or the job has ended.
  std::atomic<bool> ended{false};
  Status s;
  std::thread waiter([&] {
    s = (*job)->wait();
    ended.store(true);
  });
  int64_t seen = 0;
  for (int k = 0; k < 6 && !ended.load(); ++k) {
    clock.advance_millis(100);
    while (!ended.load() && (*job)->checkpoint_stats().triggered <= seen) std::this_thread::yield();
    seen = (*job)->checkpoint_stats().triggered;
  }
  waiter.join();
  int64_t snapshots = 0;
  for (const auto& m : (*job)->metrics().snapshot()) snapshots += m.snapshots;
  return {s, (*job)->checkpoint_stats(), snapshots};
}

TEST(Coordinator, ExactlyOnceOutputEqualsUninterruptedAndCheckpointsAreWritten) {
  const auto in = input();
  const auto expected = uninterrupted(in);
  ASSERT_FALSE(expected.empty());
  TempDir dir;
  auto storage = std::make_shared<checkpoint::CheckpointStorage>(
      *checkpoint::CheckpointStorage::open(dir.path, {.retained = 100}));
  auto committed = std::make_shared<Committed>();
  EoRun r = run_exactly_once(in, 2, storage, committed, nullptr);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(committed->rows(), expected);
  EXPECT_EQ(committed->concurrent_calls.load(), 0);
  EXPECT_GE(r.stats.completed, 1);  // at least the final checkpoint
  auto listed = storage->list();
  ASSERT_TRUE(listed.is_ok());
  ASSERT_FALSE(listed->empty());
  for (const auto& info : *listed) EXPECT_TRUE(info.usable) << info.path << ": " << info.status;
  EXPECT_EQ(listed->back().checkpoint_id, r.stats.latest_completed_id);
  // What the job reports of its checkpoints matches what was written.
  EXPECT_EQ(listed->back().bytes, r.stats.latest_bytes);
  EXPECT_GT(r.stats.latest_bytes, 0u);
  EXPECT_GE(r.stats.max_bytes, r.stats.latest_bytes);
  EXPECT_GE(r.stats.max_duration_ms, r.stats.latest_duration_ms);
  EXPECT_GE(r.snapshots, r.stats.completed);  // every completed checkpoint snapshotted operators

  // Restore from every written checkpoint, at 2 and at 3 subtasks: the transactions committed up
  // to it plus what the restored run commits equal the uninterrupted output, exactly once. From
  // the final checkpoint the restored run adds nothing.
  for (const auto& info : *listed) {
    auto snap = checkpoint::load_checkpoint(info.path);
    ASSERT_TRUE(snap.is_ok()) << snap.status().to_string();
    for (int p : {2, 3}) {
      auto again = std::make_shared<Committed>();
      {
        std::lock_guard<std::mutex> lock(committed->mu);
        for (const auto& [txn, rows] : committed->txns) {
          if (txn.second <= info.checkpoint_id) again->txns.emplace(txn, rows);
        }
      }
      const size_t before = again->rows().size();
      EoRun rr =
          run_exactly_once(in, p, nullptr, again, std::make_shared<runtime::JobSnapshot>(*snap));
      ASSERT_TRUE(rr.status.is_ok()) << rr.status.to_string();
      EXPECT_EQ(again->rows(), expected) << "restored from " << info.path << " at " << p;
      if (info.checkpoint_id == r.stats.latest_completed_id) {
        EXPECT_EQ(again->rows().size(), before) << "the final checkpoint leaves nothing to do";
      }
    }
  }
}

TEST(Coordinator, FailedCheckpointWriteAbortsOnlyThatCheckpoint) {
  const auto in = input();
  const auto expected = uninterrupted(in);
  auto committed = std::make_shared<Committed>();
  std::atomic<int> calls{0};
  EoRun r = run_exactly_once(in, 2, nullptr, committed, nullptr,
                             [&](const runtime::JobSnapshot&) -> Status {
                               if (calls.fetch_add(1) == 0) {
                                 return Status::io_error("injected: disk full");
                               }
                               return Status::ok();
                             });
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_GE(r.stats.aborted, 1);
  EXPECT_GE(r.stats.completed, 1);
  EXPECT_EQ(committed->rows(), expected);
  EXPECT_EQ(committed->concurrent_calls.load(), 0);
}

TEST(Coordinator, OnDemandCheckpointAndSavepointWithoutCheckpointingAreRefused) {
  Environment env({.parallelism = 1, .worker_threads = 1});
  windowed(env, input()).blackhole();
  auto job = env.start();
  ASSERT_TRUE(job.is_ok());
  EXPECT_FALSE((*job)->trigger_checkpoint(true).is_ok());
  EXPECT_TRUE((*job)->wait().is_ok());
}

}  // namespace
}  // namespace sabot
