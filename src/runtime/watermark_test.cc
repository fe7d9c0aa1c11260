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

// One step of a scripted reader, run on the source task's own thread: first `before` (once, when
// the step is reached; e.g. advance the test's ManualClock, so that processing time moves exactly
// between two polls), then, once `ready` says so, a batch of timestamps (ms) from a split, or,
// when `ts_ms` is empty, one idle poll (the source checks idleness on idle polls).
struct Step {
  int split = 0;
  std::vector<int64_t> ts_ms{};
  std::function<bool()> ready{};  // null: ready now
  std::function<void()> before{};
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
        if (!before_done_) {
          if (st.before) st.before();
          before_done_ = true;
        }
        if (st.ready && !st.ready()) return SourcePoll::idle();
        ++i_;
        before_done_ = false;
        if (st.ts_ms.empty()) return SourcePoll::idle();
        columnar::Int64Builder b(columnar::timestamp(columnar::TimeUnit::kMicro));
        for (int64_t t : st.ts_ms) b.append(t * 1000);
        SourcePoll p = SourcePoll::of(RecordBatch::make(ts_schema(), {b.finish()}).value());
        p.split = st.split;
        return p;
      }
      const std::vector<Step>* steps_;
      size_t i_ = 0;
      bool before_done_ = false;
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
  // The largest watermark recorded so far, for scripts that wait for it (a hand-off).
  std::atomic<int64_t> max_ms{INT64_MIN};
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
        if (t.millis() > seen_->max_ms.load()) seen_->max_ms.store(t.millis());
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
                         WatermarkStrategy strategy, const Clock* clock,
                         std::shared_ptr<Seen> seen = std::make_shared<Seen>()) {
  LogicalPlan plan;
  const int source_parallelism = static_cast<int>(script.size());
  int s = plan.add_source(std::make_shared<ScriptSource>(std::move(script), num_splits),
                          source_parallelism);
  plan.node(s).watermarks = std::move(strategy);
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

// Processing time moves only between polls of the script (ManualClock, advanced by the source's
// own thread), so what the source sees is the same on every run: no sleeps, no timing.
TEST(Watermarks, IdleSplitStopsHoldingTimeBackAndRejoins) {
  ManualClock clock(Timestamp(1'000'000));
  auto advance = [&](int64_t ms) { return [&clock, ms] { clock.advance_millis(ms); }; };
  auto wms =
      run({{{0, {100}},
            {0, {120}, {}, advance(60)},  // below the 100 ms idle timeout: split 1 counts
            {0, {}, {}, advance(60)},     // split 1 silent 120 ms, split 0 only 60 ms
            {0, {300}},
            {1, {150}},  // split 1 comes back, behind: no regression
            {1, {400}},  // now split 0 (300) is the slowest
            {0, {500}}}},
          2, monotonic_timestamps("ts").with_idle_timeout(std::chrono::milliseconds(100)), &clock);
  // Split 1 never had data: nothing until it went idle; then split 0 alone ruled (119, 299);
  // once split 1 returned, the minimum of both again (399), never going back.
  EXPECT_EQ(wms, (std::vector<int64_t>{119, 299, 399, kMax}));
}

TEST(Watermarks, IdleSplitDoesNotGoIdleBeforeItsTimeout) {
  ManualClock clock(Timestamp(0));
  auto advance = [&](int64_t ms) { return [&clock, ms] { clock.advance_millis(ms); }; };
  // Split 1 is silent for 99 ms, one below the timeout: it holds time back until it has data.
  auto wms =
      run({{{0, {100}}, {0, {}, {}, advance(99)}, {0, {200}}, {1, {150}}}}, 2,
          monotonic_timestamps("ts").with_idle_timeout(std::chrono::milliseconds(100)), &clock);
  EXPECT_EQ(wms, (std::vector<int64_t>{149, kMax}));
}

TEST(Watermarks, IdleSubtaskDoesNotHoldBackItsConsumer) {
  ManualClock clock(Timestamp(0));
  auto seen = std::make_shared<Seen>();
  std::atomic<bool> subtask1_idle{false};
  // The hand-offs wait for what the other side did, never for time. The deadline only bounds a
  // failing run: without idleness the consumer never reaches 1999 and the scripts give up.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::atomic<bool> gave_up{false};
  auto consumer_reached_1999 = [&] {
    if (seen->max_ms.load() >= 1999) return true;
    if (std::chrono::steady_clock::now() < deadline) return false;
    gave_up = true;
    return true;
  };
  // Subtask 1 owns split 1, which has no data: two idle polls 300 ms of processing time apart
  // make it idle (timeout 200 ms), and it says so downstream. It then waits until the consumer
  // has advanced past what subtask 0 produced, and only then produces and ends, so that its end
  // cannot be what lets the consumer advance. Subtask 0 produces 2000 after subtask 1 went idle
  // (and after the clock moved, so that split 0 itself is active), then waits the same way.
  auto wms = run({{{0, {1000}},
                   {0, {2000}, [&] { return subtask1_idle.load(); }},
                   {0, {}, consumer_reached_1999}},
                  {{1, {}},
                   {1, {}, {}, [&] { clock.advance_millis(300); }},
                   {1, {5}, consumer_reached_1999, [&] { subtask1_idle = true; }}}},
                 2, monotonic_timestamps("ts").with_idle_timeout(std::chrono::milliseconds(200)),
                 &clock, seen);
  EXPECT_FALSE(gave_up.load()) << "the consumer never advanced while subtask 1 was idle";
  // The consumer saw event time advance from subtask 0 although subtask 1 never produced.
  EXPECT_NE(std::find(wms.begin(), wms.end(), 1999), wms.end()) << "watermarks: " << wms.size();
}

// Two sources in one alignment group meet in one operator. B is slow (three idle polls for every
// batch), A is not. Whenever A is asked for a batch, the largest time it has read may be at most
// the drift ahead of the largest B has read (B's watermark lags what it read, so this holds by
// construction of the pause rule, whatever the scheduling). Without alignment A reads all of
// its 10 s while B is still near its start.
TEST(Watermarks, AlignedSourceWaitsForItsGroup) {
  constexpr int64_t kBatches = 400;
  constexpr int64_t kDrift = 100;
  struct Shared {
    std::atomic<int64_t> a_max{INT64_MIN};
    std::atomic<int64_t> b_max{INT64_MIN};
    std::atomic<int64_t> worst_lead{INT64_MIN};
    std::atomic<int64_t> rows{0};
  };
  auto shared = std::make_shared<Shared>();
  class Paced final : public Source {
   public:
    Paced(std::shared_ptr<Shared> sh, bool slow) : sh_(std::move(sh)), slow_(slow) {}
    std::string name() const override { return slow_ ? "slow" : "fast"; }
    SchemaPtr schema() const override { return ts_schema(); }
    int num_splits() const override { return 1; }
    Result<std::unique_ptr<SourceReader>> open_reader(std::span<const int>,
                                                      const OperatorContext&) const override {
      class Reader final : public SourceReader {
       public:
        Reader(std::shared_ptr<Shared> sh, bool slow) : sh_(std::move(sh)), slow_(slow) {}
        Result<SourcePoll> poll(int64_t) override {
          if (batch_ >= kBatches) return SourcePoll::end();
          if (slow_ && (polls_++ % 4) != 0) return SourcePoll::idle();
          if (!slow_ && sh_->b_max.load() != INT64_MIN && sh_->a_max.load() != INT64_MIN &&
              sh_->b_max.load() < (kBatches - 1) * 10) {
            const int64_t lead = sh_->a_max.load() - sh_->b_max.load();
            if (lead > sh_->worst_lead.load()) sh_->worst_lead.store(lead);
          }
          columnar::Int64Builder b(columnar::timestamp(columnar::TimeUnit::kMicro));
          for (int64_t i = 0; i < 10; ++i) b.append((batch_ * 10 + i) * 1000);
          (slow_ ? sh_->b_max : sh_->a_max).store(batch_ * 10 + 9);
          sh_->rows.fetch_add(10);
          ++batch_;
          return SourcePoll::of(RecordBatch::make(ts_schema(), {b.finish()}).value());
        }
        std::shared_ptr<Shared> sh_;
        bool slow_;
        int64_t batch_ = 0;
        int64_t polls_ = 0;
      };
      return std::unique_ptr<SourceReader>(new Reader(sh_, slow_));
    }

   private:
    std::shared_ptr<Shared> sh_;
    bool slow_;
  };
  LogicalPlan plan;
  const WatermarkStrategy aligned =
      monotonic_timestamps("ts").with_alignment("g", std::chrono::milliseconds(kDrift));
  int a = plan.add_source(std::make_shared<Paced>(shared, false), 1);
  plan.node(a).watermarks = aligned;
  int b = plan.add_source(std::make_shared<Paced>(shared, true), 1);
  plan.node(b).watermarks = aligned;
  auto seen = std::make_shared<Seen>();
  int r = plan.add_operator(std::make_shared<WatermarkRecorder>(seen), {forward(a), forward(b)}, 1);
  plan.add_operator(operators::blackhole_sink(), {forward(r)}, 1, "sink", true);
  ExecutionOptions o;
  o.worker_threads = 2;
  Status st = execute_plan(plan, o);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(shared->rows.load(), 2 * kBatches * 10);  // nothing lost or repeated
  // A reads its next batch only while its watermark (a_max - 1) is within the drift of B's
  // (<= b_max - 1): a_max <= b_max + drift.
  EXPECT_LE(shared->worst_lead.load(), kDrift);
  EXPECT_NE(shared->worst_lead.load(), INT64_MIN) << "A never read while B was running";
}

TEST(Watermarks, AlignmentNeedsWatermarksAndADriftNotNegative) {
  EXPECT_FALSE(validate_watermark_strategy(
                   no_watermarks().with_alignment("g", std::chrono::milliseconds(1)), *ts_schema())
                   .is_ok());
  EXPECT_FALSE(validate_watermark_strategy(
                   monotonic_timestamps("ts").with_alignment("g", std::chrono::milliseconds(-1)),
                   *ts_schema())
                   .is_ok());
  EXPECT_TRUE(validate_watermark_strategy(
                  monotonic_timestamps("ts").with_alignment("g", std::chrono::milliseconds(0)),
                  *ts_schema())
                  .is_ok());
}

TEST(Watermarks, RefusesABadColumn) {
  auto schema = columnar::schema({columnar::field("name", columnar::utf8())});
  EXPECT_FALSE(validate_watermark_strategy(monotonic_timestamps("ts"), *schema).is_ok());
  Status s = validate_watermark_strategy(monotonic_timestamps("name"), *schema);
  EXPECT_NE(s.message().find("must be a timestamp or int64"), std::string::npos);
}

TEST(Watermark, EventTimesBefore1970RoundDownToTheContainingMillisecond) {
  // -1 us and -1 ns are in millisecond -1 (1969-12-31T23:59:59.999); truncation gave 0, which put
  // such a row after an event at 0 ms and ahead of the watermark it had made.
  auto micros = columnar::timestamp_array(columnar::TimeUnit::kMicro, {-1, -1'001, 1'999});
  EXPECT_EQ(event_time_millis(micros, 0), -1);
  EXPECT_EQ(event_time_millis(micros, 1), -2);
  EXPECT_EQ(event_time_millis(micros, 2), 1);
  auto nanos = columnar::timestamp_array(columnar::TimeUnit::kNano, {-1, -5'000'001});
  EXPECT_EQ(max_event_time_millis(nanos), -1);
  EXPECT_EQ(event_time_millis(nanos, 1), -6);
}

}  // namespace
}  // namespace sabot::runtime
