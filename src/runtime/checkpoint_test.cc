// Checkpoints in the executor: barriers injected by a source reach every operator subtask, the
// CheckpointStore completes the checkpoint with one entry per stateful subtask, a job restored from
// the snapshot hands each new subtask exactly the old snapshots whose key groups overlap its own
// (P -> P, 1 -> 3, 3 -> 2), and bad uids and foreign snapshots are refused before anything runs.
#include "sabot/runtime/checkpoint.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "sabot/base/arith.h"
#include "sabot/columnar/builder.h"
#include "sabot/operators/sources_sinks.h"
#include "sabot/runtime/executor.h"

namespace sabot::runtime {
namespace {

using columnar::RecordBatch;
using columnar::SchemaPtr;

SchemaPtr key_schema() { return columnar::schema({columnar::field("key", columnar::int64())}); }

RecordBatch keys_batch(int64_t from, int64_t count) {
  columnar::Int64Builder b;
  for (int64_t i = 0; i < count; ++i) b.append(from + i);
  return RecordBatch::make(key_schema(), {b.finish()}).value();
}

// Each split yields `batches_per_split` batches of 10 keys; after its splits a reader injects
// barrier 1 (when `barrier`), then ends, or returns idle forever (`idle_after_barrier`).
class KeysSource final : public Source {
 public:
  KeysSource(int splits, int batches_per_split, bool barrier, bool idle_after_barrier = false)
      : splits_(splits),
        batches_(batches_per_split),
        barrier_(barrier),
        idle_after_(idle_after_barrier) {}
  std::string name() const override { return "keys"; }
  SchemaPtr schema() const override { return key_schema(); }
  int num_splits() const override { return splits_; }
  Result<std::unique_ptr<SourceReader>> open_reader(std::span<const int> splits,
                                                    const OperatorContext&) const override {
    class Reader final : public SourceReader {
     public:
      Reader(const KeysSource* s, std::vector<int> splits) : s_(s), splits_(std::move(splits)) {}
      Result<SourcePoll> poll(int64_t) override {
        if (next_ < splits_.size() * static_cast<size_t>(s_->batches_)) {
          const int split = splits_[next_ / static_cast<size_t>(s_->batches_)];
          const int64_t batch = static_cast<int64_t>(next_ % static_cast<size_t>(s_->batches_));
          ++next_;
          SourcePoll p = SourcePoll::of(keys_batch((split * 1000 + batch) * 10, 10));
          p.split = split;
          return p;
        }
        if (s_->barrier_ && !barrier_sent_) {
          barrier_sent_ = true;
          SourcePoll p = SourcePoll::idle();
          p.barrier = CheckpointId(1);
          return p;
        }
        return s_->idle_after_ ? SourcePoll::idle() : SourcePoll::end();
      }
      const KeysSource* s_;
      std::vector<int> splits_;
      size_t next_ = 0;
      bool barrier_sent_ = false;
    };
    return std::unique_ptr<SourceReader>(
        new Reader(this, std::vector<int>(splits.begin(), splits.end())));
  }

 private:
  int splits_;
  int batches_;
  bool barrier_;
  bool idle_after_;
};

// What the stateful test operator saw: snapshots taken and snapshots given to restore_state, per
// (uid, subtask).
struct Recorder {
  std::mutex mu;
  std::map<std::pair<std::string, int>, std::vector<std::string>> restored;
  std::map<std::pair<std::string, int>, int64_t> snapshotted;  // rows seen at the barrier
  void restore(const std::string& uid, int subtask, std::string bytes) {
    std::lock_guard<std::mutex> lock(mu);
    restored[{uid, subtask}].push_back(std::move(bytes));
  }
};

// Counts its rows; its snapshot is "<uid>/<subtask>/<parallelism>/<rows>" (never empty), and
// restore_state records what it was given (or fails when `fail_restore`).
class StateFactory final : public OperatorFactory {
 public:
  StateFactory(std::shared_ptr<Recorder> rec, bool fail_restore = false)
      : rec_(std::move(rec)), fail_restore_(fail_restore) {}
  std::string kind() const override { return "test_state"; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> in) const override { return in[0]; }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr>,
                                           const OperatorContext&) const override {
    class Op final : public Operator {
     public:
      Op(std::shared_ptr<Recorder> rec, bool fail) : rec_(std::move(rec)), fail_(fail) {}
      Status open(const OperatorContext& ctx) override {
        ctx_ = ctx;
        return Status::ok();
      }
      Status process_batch(const RecordBatch& b, int, Output& out) override {
        rows_ += b.num_rows();
        return out.emit(b);
      }
      Status snapshot_state(CheckpointId, std::string* out) override {
        {
          std::lock_guard<std::mutex> lock(rec_->mu);
          rec_->snapshotted[{ctx_.uid, ctx_.subtask_index}] = rows_;
        }
        *out = ctx_.uid + "/" + std::to_string(ctx_.subtask_index) + "/" +
               std::to_string(ctx_.parallelism) + "/" + std::to_string(rows_);
        return Status::ok();
      }
      Status restore_state(std::string_view data) override {
        if (fail_) return Status::invalid_data("bad bytes at byte 3");
        rec_->restore(ctx_.uid, ctx_.subtask_index, std::string(data));
        return Status::ok();
      }
      std::shared_ptr<Recorder> rec_;
      bool fail_;
      OperatorContext ctx_;
      int64_t rows_ = 0;
    };
    return std::unique_ptr<Operator>(new Op(rec_, fail_restore_));
  }

 private:
  std::shared_ptr<Recorder> rec_;
  bool fail_restore_;
};

// source(P) -key_by-> test_state(P) -> collect sink(P); the state operator's uid is "state".
LogicalPlan keyed_plan(std::shared_ptr<const Source> source, int parallelism,
                       std::shared_ptr<Recorder> rec, bool fail_restore = false) {
  LogicalPlan plan;
  int src = plan.add_source(std::move(source), parallelism);
  int st =
      plan.add_operator(std::make_shared<StateFactory>(std::move(rec), fail_restore),
                        {PlanEdge{src, Partitioning::kHash, {"key"}, 0}}, parallelism, "state");
  plan.node(st).uid = "state";
  plan.add_operator(operators::collect_sink(std::make_shared<operators::CollectedBatches>()),
                    {PlanEdge{st, Partitioning::kForward, {}, 0}}, parallelism, "sink", true);
  return plan;
}

TEST(Checkpoint, BarrierReachesEveryOperatorAndTheStoreCompletesTheCheckpoint) {
  auto rec = std::make_shared<Recorder>();
  auto store = std::make_shared<CheckpointStore>();
  // 3 splits over 2 source subtasks, 3 state subtasks behind a keyed exchange: alignment of two
  // input channels per state subtask.
  LogicalPlan plan = keyed_plan(std::make_shared<KeysSource>(3, 4, true), 2, rec);
  plan.node(1).parallelism = 3;
  plan.node(2).parallelism = 3;
  ExecutionOptions opts;
  opts.worker_threads = 2;
  opts.checkpoints = store;
  opts.job_name = "barrier-test";
  ASSERT_TRUE(execute_plan(plan, opts).is_ok());
  auto snap = store->wait_for(CheckpointId(1));
  ASSERT_TRUE(snap.is_ok()) << snap.status().to_string();
  EXPECT_EQ(snap->checkpoint_id, 1);
  EXPECT_EQ(snap->job_name, "barrier-test");
  EXPECT_EQ(snap->max_parallelism, 128u);
  // One entry per stateful subtask; the sink has no state and is left out.
  ASSERT_EQ(snap->operators.size(), 1u);
  const OperatorSnapshot& op = snap->operators.at("state");
  EXPECT_EQ(op.parallelism, 3);
  ASSERT_EQ(op.subtasks.size(), 3u);
  int64_t rows = 0;
  for (int s = 0; s < 3; ++s) {
    const int64_t seen = rec->snapshotted.at({"state", s});
    EXPECT_EQ(op.subtasks[static_cast<size_t>(s)],
              "state/" + std::to_string(s) + "/3/" + std::to_string(seen));
    rows += seen;
  }
  // The barrier followed every row of every split: all 120 rows are before it.
  EXPECT_EQ(rows, 3 * 4 * 10);
  EXPECT_EQ(store->completed_ids(), std::vector<int64_t>{1});
}

TEST(Checkpoint, WaitingForACheckpointThatCannotCompleteFailsWhenTheJobEnds) {
  auto store = std::make_shared<CheckpointStore>();
  LogicalPlan plan =
      keyed_plan(std::make_shared<KeysSource>(2, 1, true), 2, std::make_shared<Recorder>());
  ExecutionOptions opts;
  opts.worker_threads = 2;
  opts.checkpoints = store;
  ASSERT_TRUE(execute_plan(plan, opts).is_ok());
  auto two = store->wait_for(CheckpointId(2));
  ASSERT_FALSE(two.is_ok());
  EXPECT_NE(two.status().message().find("checkpoint 2 did not complete before the job ended"),
            std::string::npos)
      << two.status().to_string();
}

TEST(Checkpoint, WaitThenCancelARunningJob) {
  // The caller's flow: wait for checkpoint 1 of a job whose sources stay idle, then cancel it.
  auto store = std::make_shared<CheckpointStore>();
  LogicalPlan plan = keyed_plan(std::make_shared<KeysSource>(2, 2, true, /*idle=*/true), 2,
                                std::make_shared<Recorder>());
  ExecutionOptions opts;
  opts.worker_threads = 2;
  opts.checkpoints = store;
  auto job = Job::start(plan, opts);
  ASSERT_TRUE(job.is_ok());
  auto snap = store->wait_for(CheckpointId(1));
  ASSERT_TRUE(snap.is_ok()) << snap.status().to_string();
  EXPECT_EQ(snap->operators.at("state").parallelism, 2);
  // The store serves one running job at a time.
  auto second = Job::start(plan, opts);
  ASSERT_FALSE(second.is_ok());
  EXPECT_NE(second.status().message().find("in use by job"), std::string::npos);
  (*job)->cancel();
  EXPECT_EQ((*job)->wait().code(), StatusCode::kCancelled);
  // Detached at the end: the completed checkpoint stays readable.
  ASSERT_TRUE(store->latest().has_value());
  EXPECT_EQ(store->latest()->checkpoint_id, 1);
}

// Old subtask i of `from` restores into new subtask j of `to` iff some key group belongs to both:
// computed key group by key group, independently of the executor's range arithmetic.
std::set<int> expected_old_subtasks(int j, int from, int to, int max_parallelism) {
  std::set<int> out;
  for (int kg = 0; kg < max_parallelism; ++kg) {
    if (subtask_for_key_group(kg, to, max_parallelism) == j) {
      out.insert(subtask_for_key_group(kg, from, max_parallelism));
    }
  }
  return out;
}

void check_restore(int from, int to, int max_parallelism) {
  SCOPED_TRACE(std::to_string(from) + " -> " + std::to_string(to) + " at max parallelism " +
               std::to_string(max_parallelism));
  // Run at `from` up to barrier 1 and take the snapshot.
  auto store = std::make_shared<CheckpointStore>();
  ExecutionOptions opts;
  opts.worker_threads = 2;
  opts.max_parallelism = max_parallelism;
  opts.checkpoints = store;
  LogicalPlan first =
      keyed_plan(std::make_shared<KeysSource>(4, 3, true), from, std::make_shared<Recorder>());
  ASSERT_TRUE(execute_plan(first, opts).is_ok());
  auto snap = store->wait_for(CheckpointId(1));
  ASSERT_TRUE(snap.is_ok()) << snap.status().to_string();
  ASSERT_EQ(snap->operators.at("state").parallelism, from);

  // Restore at `to` with a source that ends at once.
  auto rec = std::make_shared<Recorder>();
  ExecutionOptions again;
  again.worker_threads = 2;
  again.max_parallelism = max_parallelism;
  again.restore_from = std::make_shared<JobSnapshot>(*snap);
  LogicalPlan second = keyed_plan(std::make_shared<KeysSource>(4, 0, false), to, rec);
  Status s = execute_plan(second, again);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  for (int j = 0; j < to; ++j) {
    std::set<int> given;
    std::vector<std::string> bytes = rec->restored[{"state", j}];
    for (const std::string& b : bytes) {
      // "state/<old subtask>/<old parallelism>/<rows>": each old snapshot at most once.
      const size_t a = b.find('/') + 1;
      const int old = std::stoi(b.substr(a, b.find('/', a) - a));
      EXPECT_EQ(b, snap->operators.at("state").subtasks[static_cast<size_t>(old)]);
      EXPECT_TRUE(given.insert(old).second) << "old subtask " << old << " given twice";
    }
    EXPECT_EQ(given, expected_old_subtasks(j, from, to, max_parallelism)) << "new subtask " << j;
  }
}

TEST(Checkpoint, RestoreGivesEachSubtaskTheOldSnapshotsOfItsKeyGroups) {
  check_restore(2, 2, 128);
  check_restore(1, 3, 128);
  check_restore(3, 2, 128);
  check_restore(3, 2, 7);  // ranges that do not divide evenly
  check_restore(2, 5, 7);
}

TEST(Checkpoint, EqualParallelismRestoresExactlyTheOwnSnapshot) {
  for (int p : {1, 2, 3}) {
    auto store = std::make_shared<CheckpointStore>();
    ExecutionOptions opts;
    opts.worker_threads = 2;
    opts.checkpoints = store;
    ASSERT_TRUE(execute_plan(keyed_plan(std::make_shared<KeysSource>(3, 2, true), p,
                                        std::make_shared<Recorder>()),
                             opts)
                    .is_ok());
    auto snap = store->wait_for(CheckpointId(1));
    ASSERT_TRUE(snap.is_ok());
    auto rec = std::make_shared<Recorder>();
    ExecutionOptions again;
    again.worker_threads = 2;
    again.restore_from = std::make_shared<JobSnapshot>(*snap);
    ASSERT_TRUE(
        execute_plan(keyed_plan(std::make_shared<KeysSource>(3, 0, false), p, rec), again).is_ok());
    for (int s = 0; s < p; ++s) {
      const std::vector<std::string> own{snap->operators.at("state").subtasks[size_t(s)]};
      EXPECT_EQ(rec->restored[std::make_pair(std::string("state"), s)], own);
    }
  }
}

JobSnapshot one_operator_snapshot(std::string uid, int max_parallelism = 128) {
  JobSnapshot snap;
  snap.checkpoint_id = 7;
  snap.max_parallelism = static_cast<uint32_t>(max_parallelism);
  snap.operators[std::move(uid)] = OperatorSnapshot{2, {"a", "b"}};
  return snap;
}

Status start_restored(const JobSnapshot& snap, std::shared_ptr<Recorder> rec,
                      bool fail_restore = false) {
  ExecutionOptions opts;
  opts.worker_threads = 1;
  opts.restore_from = std::make_shared<JobSnapshot>(snap);
  return execute_plan(
      keyed_plan(std::make_shared<KeysSource>(2, 1, false), 2, std::move(rec), fail_restore), opts);
}

TEST(Checkpoint, RefusesASnapshotOfAnUnknownUidBeforeAnythingRuns) {
  auto rec = std::make_shared<Recorder>();
  Status s = start_restored(one_operator_snapshot("old-window"), rec);
  ASSERT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("holds state of operator uid 'old-window', which is not in the job"),
            std::string::npos)
      << s.to_string();
  EXPECT_TRUE(rec->restored.empty());
  // The uid of a source is not an operator with state either.
  s = start_restored(one_operator_snapshot("keys-0"), rec);
  EXPECT_NE(s.message().find("uid 'keys-0', which is source"), std::string::npos) << s.to_string();
}

TEST(Checkpoint, RefusesASnapshotOfAnotherMaxParallelism) {
  auto rec = std::make_shared<Recorder>();
  Status s = start_restored(one_operator_snapshot("state", 64), rec);
  ASSERT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("was taken with max_parallelism 64, the job has 128"),
            std::string::npos)
      << s.to_string();
  EXPECT_TRUE(rec->restored.empty());
}

TEST(Checkpoint, RestoreErrorsNameTheOperator) {
  Status s = start_restored(one_operator_snapshot("state"), std::make_shared<Recorder>(), true);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("operator 'state' (subtask "), std::string::npos) << s.to_string();
  EXPECT_NE(s.message().find("in restore failed: bad bytes at byte 3"), std::string::npos)
      << s.to_string();
}

TEST(Checkpoint, DefaultUidsAreKindAndPositionAmongThatKind) {
  auto rec = std::make_shared<Recorder>();
  LogicalPlan plan;
  int src = plan.add_source(std::make_shared<KeysSource>(1, 1, false), 1);
  int a = plan.add_operator(std::make_shared<StateFactory>(rec), {PlanEdge{src}}, 1);
  int sink =
      plan.add_operator(operators::collect_sink(std::make_shared<operators::CollectedBatches>()),
                        {PlanEdge{a}}, 1, {}, true);
  int b = plan.add_operator(std::make_shared<StateFactory>(rec), {PlanEdge{a}}, 1);
  EXPECT_EQ(plan.node(src).uid, "keys-0");
  EXPECT_EQ(plan.node(a).uid, "test_state-0");
  EXPECT_EQ(plan.node(b).uid, "test_state-1");
  EXPECT_FALSE(plan.node(sink).uid.empty());
}

TEST(Checkpoint, RefusesDuplicateEmptyAndUnprintableUidsNamingTheNodes) {
  auto rec = std::make_shared<Recorder>();
  LogicalPlan plan = keyed_plan(std::make_shared<KeysSource>(1, 1, false), 1, rec);
  plan.node(2).uid = "state";
  ExecutionOptions opts;
  Status s = validate_plan(plan, opts);
  ASSERT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'state' and 'sink' have the same uid 'state'"), std::string::npos)
      << s.to_string();

  plan.node(2).uid = "";
  s = validate_plan(plan, opts);
  EXPECT_NE(s.message().find("'sink': empty uid"), std::string::npos) << s.to_string();

  plan.node(2).uid = "line\nbreak";
  s = validate_plan(plan, opts);
  EXPECT_NE(s.message().find("'sink': uid 'line\\x0abreak' has an unprintable character at byte 4"),
            std::string::npos)
      << s.to_string();

  plan.node(2).uid = "caf\xc3";  // a cut UTF-8 sequence
  s = validate_plan(plan, opts);
  EXPECT_NE(s.message().find("is not valid UTF-8 at byte 3"), std::string::npos) << s.to_string();

  plan.node(2).uid = "café-sink";
  EXPECT_TRUE(validate_plan(plan, opts).is_ok());
}

TEST(Checkpoint, StoreRefusesASecondReportOfOneSubtask) {
  CheckpointStore store;
  ASSERT_TRUE(store.attach("j", 2, 128).is_ok());
  ASSERT_TRUE(store.report(CheckpointId(1), "a", 0, 2, "x").is_ok());
  Status s = store.report(CheckpointId(1), "a", 0, 2, "y");
  EXPECT_NE(s.message().find("reported twice"), std::string::npos) << s.to_string();
  ASSERT_TRUE(store.report(CheckpointId(1), "a", 1, 2, "").is_ok());
  auto snap = store.wait_for(CheckpointId(1));
  ASSERT_TRUE(snap.is_ok());
  EXPECT_EQ(snap->operators.at("a").subtasks, (std::vector<std::string>{"x", ""}));
}

TEST(Checkpoint, StoreWakesAWaiterOnAnotherThread) {
  CheckpointStore store;
  ASSERT_TRUE(store.attach("j", 1, 128).is_ok());
  Result<JobSnapshot> got = Status::internal("not set");
  std::thread waiter([&] { got = store.wait_for(CheckpointId(3)); });
  ASSERT_TRUE(store.report(CheckpointId(3), "a", 0, 1, "state").is_ok());
  waiter.join();
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->operators.at("a").subtasks[0], "state");
}

}  // namespace
}  // namespace sabot::runtime
