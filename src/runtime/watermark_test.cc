#include "sabot/runtime/watermark.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "sabot/columnar/builder.h"
#include "sabot/operators/basic.h"
#include "sabot/operators/sources_sinks.h"
#include "sabot/runtime/executor.h"

namespace sabot::runtime {
namespace {

using columnar::RecordBatch;
using columnar::SchemaPtr;

SchemaPtr ts_schema() {
  return columnar::schema({columnar::field("ts", columnar::timestamp(columnar::TimeUnit::kMicro))});
}

// One step of a scripted reader: a batch of timestamps (ms) from a split, or a wait.
struct Step {
  int split = 0;
  std::vector<int64_t> ts_ms{};
  std::function<bool()> ready{};  // null: ready now
};

class ScriptSource final : public Source {
 public:
  // One script per subtask; the splits named in the scripts are the source's splits.
  ScriptSource(std::vector<std::vector<Step>> per_subtask, int num_splits)
      : per_subtask_(std::move(per_subtask)), num_splits_(num_splits) {}
  std::string name() const override { return "script"; }
  SchemaPtr schema() const override { return ts_schema(); }
  int num_splits() const override { return num_splits_; }
  Result<std::unique_ptr<SourceReader>> open_reader(std::span<const int>,
                                                    const OperatorContext& ctx) const override {
    class Reader final : public SourceReader {
     public:
      explicit Reader(const std::vector<Step>* steps) : steps_(steps) {}
      Result<SourcePoll> poll(int64_t) override {
        if (steps_ == nullptr || i_ >= steps_->size()) return SourcePoll::end();
        const Step& st = (*steps_)[i_];
        if (st.ready && !st.ready()) return SourcePoll::idle();
        ++i_;
        columnar::Int64Builder b(columnar::timestamp(columnar::TimeUnit::kMicro));
        for (int64_t t : st.ts_ms) b.append(t * 1000);
        SourcePoll p = SourcePoll::of(RecordBatch::make(ts_schema(), {b.finish()}).value());
        p.split = st.split;
        return p;
      }
      const std::vector<Step>* steps_;
      size_t i_ = 0;
    };
    return std::unique_ptr<SourceReader>(
        new Reader(&per_subtask_[static_cast<size_t>(ctx.subtask_index)]));
  }

 private:
  std::vector<std::vector<Step>> per_subtask_;
  int num_splits_;
};

struct Seen {
  std::mutex mu;
  std::vector<int64_t> watermarks;
};

class WatermarkRecorder final : public OperatorFactory {
 public:
  explicit WatermarkRecorder(std::shared_ptr<Seen> seen) : seen_(std::move(seen)) {}
  std::string kind() const override { return "recorder"; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> in) const override { return in[0]; }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr>,
                                           const OperatorContext&) const override {
    class Op final : public Operator {
     public:
      explicit Op(std::shared_ptr<Seen> seen) : seen_(std::move(seen)) {}
      Status process_batch(const RecordBatch& b, int, Output& out) override { return out.emit(b); }
      Status process_watermark(Timestamp t, Output& out) override {
        std::lock_guard<std::mutex> lock(seen_->mu);
        seen_->watermarks.push_back(t.millis());
        return out.emit_watermark(t);
      }
      std::shared_ptr<Seen> seen_;
    };
    return std::unique_ptr<Operator>(new Op(seen_));
  }

 private:
  std::shared_ptr<Seen> seen_;
};

PlanEdge forward(int from) {
  PlanEdge e;
  e.from = from;
  return e;
}

std::vector<int64_t> run(std::vector<std::vector<Step>> script, int num_splits,
                         WatermarkStrategy strategy, const Clock* clock) {
  LogicalPlan plan;
  const int source_parallelism = static_cast<int>(script.size());
  int s = plan.add_source(std::make_shared<ScriptSource>(std::move(script), num_splits),
                          source_parallelism);
  plan.node(s).watermarks = std::move(strategy);
  auto seen = std::make_shared<Seen>();
  PlanEdge e = forward(s);
  e.partitioning = Partitioning::kRebalance;
  int r = plan.add_operator(std::make_shared<WatermarkRecorder>(seen), {e}, 1);
  plan.add_operator(operators::blackhole_sink(), {forward(r)}, 1, "sink", true);
  ExecutionOptions o;
  o.worker_threads = 2;
  o.clock = clock;
  Status st = execute_plan(plan, o);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return seen->watermarks;
}

constexpr int64_t kMax = INT64_MAX;

TEST(Watermarks, MinimumOverSplitsMinusBound) {
  // One reader with two splits; the watermark waits for both, then follows the slower one.
  auto wms =
      run({{{0, {100}}, {1, {50}}, {0, {200}}, {1, {60, 58}}}}, 2,
          bounded_out_of_orderness("ts", std::chrono::milliseconds(5)), &SystemClock::instance());
  EXPECT_EQ(wms, (std::vector<int64_t>{44, 54, kMax}));
}

TEST(Watermarks, MonotonicIsMaxMinusOne) {
  auto wms = run({{{0, {10, 30, 20}}, {0, {40}}}}, 1, monotonic_timestamps("ts"),
                 &SystemClock::instance());
  EXPECT_EQ(wms, (std::vector<int64_t>{29, 39, kMax}));
}

TEST(Watermarks, IdleSplitStopsHoldingTimeBackAndRejoins) {
  ManualClock clock(Timestamp(1'000'000));
  std::atomic<int> phase{0};
  std::thread mover([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    clock.advance_millis(60);  // below the 100 ms idle timeout
    phase = 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    clock.advance_millis(60);  // split 1 has now been silent 120 ms, split 0 only 60 ms
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    phase = 2;
  });
  auto wms =
      run({{{0, {100}},
            {0, {120}, [&] { return phase.load() >= 1; }},
            {0, {300}, [&] { return phase.load() >= 2; }},
            {1, {150}},  // split 1 comes back, behind: no regression
            {1, {400}},  // now split 0 (300) is the slowest
            {0, {500}}}},
          2, monotonic_timestamps("ts").with_idle_timeout(std::chrono::milliseconds(100)), &clock);
  mover.join();
  // Split 1 never had data: nothing until it went idle; then split 0 alone ruled (119, 299);
  // once split 1 returned, the minimum of both again (399), never going back.
  EXPECT_EQ(wms, (std::vector<int64_t>{119, 299, 399, kMax}));
}

TEST(Watermarks, IdleSubtaskDoesNotHoldBackItsConsumer) {
  ManualClock clock(Timestamp(0));
  std::atomic<bool> done{false};
  std::thread mover([&] {
    for (int i = 0; i < 50 && !done; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      clock.advance_millis(100);
    }
  });
  // Subtask 1 has a split that never gets data; subtask 0 progresses and waits for a while
  // before ending, so that its watermarks are seen while subtask 1 is idle.
  auto wms =
      run({{{0, {1000}}, {0, {2000}, [&] { return clock.now().millis() >= 1000; }}},
           {{1, {5}, [&] { return clock.now().millis() >= 4000; }}}},
          2, monotonic_timestamps("ts").with_idle_timeout(std::chrono::milliseconds(200)), &clock);
  done = true;
  mover.join();
  // The recorder saw event time advance from subtask 0 although subtask 1 never produced.
  ASSERT_FALSE(wms.empty());
  EXPECT_NE(std::find(wms.begin(), wms.end(), 1999), wms.end())
      << "watermarks seen: " << wms.size();
}

TEST(Watermarks, RefusesABadColumn) {
  auto schema = columnar::schema({columnar::field("name", columnar::utf8())});
  EXPECT_FALSE(validate_watermark_strategy(monotonic_timestamps("ts"), *schema).is_ok());
  Status s = validate_watermark_strategy(monotonic_timestamps("name"), *schema);
  EXPECT_NE(s.message().find("must be a timestamp or int64"), std::string::npos);
}

}  // namespace
}  // namespace sabot::runtime
