#include "sabot/runtime/executor.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "sabot/columnar/builder.h"
#include "sabot/compute/selection.h"
#include "sabot/operators/basic.h"
#include "sabot/operators/dedup.h"
#include "sabot/operators/sources_sinks.h"

namespace sabot::runtime {
namespace {

using columnar::RecordBatch;
using columnar::SchemaPtr;

SchemaPtr tag_schema() { return columnar::schema({columnar::field("tag", columnar::utf8())}); }

RecordBatch tag_batch(const std::string& tag) {
  return RecordBatch::make(tag_schema(), {columnar::utf8_array({tag})}).value();
}

// A source that replays a script of steps; a step may wait on a predicate (returning kIdle).
struct Step {
  std::function<bool()> ready;  // null: always ready
  std::optional<std::string> batch;
  std::optional<int64_t> watermark;
  std::optional<int64_t> barrier;
};

class ScriptSource final : public Source {
 public:
  ScriptSource(std::string name, std::vector<Step> steps, std::function<void()> on_end = {})
      : name_(std::move(name)), steps_(std::move(steps)), on_end_(std::move(on_end)) {}
  std::string name() const override { return name_; }
  SchemaPtr schema() const override { return tag_schema(); }
  int num_splits() const override { return 1; }
  Result<std::unique_ptr<SourceReader>> open_reader(std::span<const int>,
                                                    const OperatorContext&) const override {
    class Reader final : public SourceReader {
     public:
      explicit Reader(const ScriptSource* s) : s_(s) {}
      Result<SourcePoll> poll(int64_t) override {
        if (i_ >= s_->steps_.size()) {
          if (s_->on_end_) s_->on_end_();
          return SourcePoll::end();
        }
        const Step& st = s_->steps_[i_];
        if (st.ready && !st.ready()) return SourcePoll::idle();
        ++i_;
        SourcePoll p;
        p.kind = SourcePoll::Kind::kBatch;
        if (st.batch) p.batch = tag_batch(*st.batch);
        if (st.watermark) p.watermark = Timestamp(*st.watermark);
        if (st.barrier) p.barrier = CheckpointId(*st.barrier);
        if (!st.batch) p.batch = RecordBatch::make_empty(tag_schema());
        return p;
      }
      const ScriptSource* s_;
      size_t i_ = 0;
    };
    return std::unique_ptr<SourceReader>(new Reader(this));
  }

 private:
  std::string name_;
  std::vector<Step> steps_;
  std::function<void()> on_end_;
};

// Logs what reaches it: "b:<tag>", "wm:<t>", "snap:<n>".
struct Log {
  std::mutex mu;
  std::vector<std::string> lines;
  void add(std::string s) {
    std::lock_guard<std::mutex> lock(mu);
    lines.push_back(std::move(s));
  }
  std::vector<std::string> get() {
    std::lock_guard<std::mutex> lock(mu);
    return lines;
  }
};

class RecorderFactory final : public OperatorFactory {
 public:
  explicit RecorderFactory(std::shared_ptr<Log> log) : log_(std::move(log)) {}
  std::string kind() const override { return "recorder"; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> in) const override { return in[0]; }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr>,
                                           const OperatorContext&) const override {
    class Op final : public Operator {
     public:
      explicit Op(std::shared_ptr<Log> log) : log_(std::move(log)) {}
      Status process_batch(const RecordBatch& b, int, Output& out) override {
        for (int64_t i = 0; i < b.num_rows(); ++i) {
          log_->add("b:" + std::string(b.column(0).string_view(i)));
        }
        return out.emit(b);
      }
      Status process_watermark(Timestamp t, Output& out) override {
        log_->add(t == Timestamp::max() ? "wm:max" : "wm:" + std::to_string(t.millis()));
        return out.emit_watermark(t);
      }
      Status snapshot_state(CheckpointId id, std::string*) override {
        log_->add("snap:" + std::to_string(id.value()));
        return Status::ok();
      }
      std::shared_ptr<Log> log_;
    };
    return std::unique_ptr<Operator>(new Op(log_));
  }

 private:
  std::shared_ptr<Log> log_;
};

PlanEdge forward(int from) {
  PlanEdge e;
  e.from = from;
  return e;
}

int index_of(const std::vector<std::string>& v, const std::string& s) {
  auto it = std::find(v.begin(), v.end(), s);
  return it == v.end() ? -1 : static_cast<int>(it - v.begin());
}

TEST(Executor, WatermarkIsTheMinimumOverInputs) {
  // Input a races ahead to 100 and ends; input b sits at 5 until the union has passed wm:5 on
  // and a has ended, then moves to 50. Until b moves, nothing above 5 may pass the union. What
  // follows depends on how far the union has read a when b ends, so only its shape is checked.
  auto log = std::make_shared<Log>();
  std::atomic<bool> a_done{false};
  LogicalPlan plan;
  std::vector<Step> a_steps;
  for (int t = 10; t <= 100; t += 10) a_steps.push_back({nullptr, "a", t, std::nullopt});
  int a = plan.add_source(std::make_shared<ScriptSource>("a", a_steps, [&] { a_done = true; }), 1);
  auto b_may_move = [&] {
    const std::vector<std::string> lines = log->get();
    if (!a_done.load() || index_of(lines, "wm:5") < 0) return false;
    log->add("b moves");
    return true;
  };
  int b = plan.add_source(
      std::make_shared<ScriptSource>("b", std::vector<Step>{{nullptr, "b", 5, std::nullopt},
                                                            {b_may_move, "b2", 50, std::nullopt}}),
      1);
  int u = plan.add_operator(operators::union_all(), {forward(a), forward(b)}, 1);
  int r = plan.add_operator(std::make_shared<RecorderFactory>(log), {forward(u)}, 1);
  plan.add_operator(operators::blackhole_sink(), {forward(r)}, 1, "sink", true);
  ASSERT_TRUE(execute_plan(plan, {.worker_threads = 2}).is_ok());

  std::vector<std::string> before;
  std::vector<int64_t> after;
  bool moved = false;
  for (const std::string& l : log->get()) {
    if (l == "b moves") moved = true;
    if (l.rfind("wm:", 0) != 0) continue;
    if (!moved) {
      before.push_back(l);
    } else {
      after.push_back(l == "wm:max" ? Timestamp::max().millis() : std::stoll(l.substr(3)));
    }
  }
  ASSERT_TRUE(moved);
  EXPECT_EQ(before, (std::vector<std::string>{"wm:5"}));
  ASSERT_FALSE(after.empty());
  EXPECT_TRUE(std::is_sorted(after.begin(), after.end()));
  EXPECT_EQ(std::adjacent_find(after.begin(), after.end()), after.end()) << "repeated watermark";
  EXPECT_GT(after.front(), 5);
  EXPECT_EQ(after.back(), Timestamp::max().millis());
}

TEST(Executor, BarriersAreAlignedAcrossInputs) {
  std::atomic<bool> a_sent_after_barrier{false};
  LogicalPlan plan;
  auto a_src =
      std::make_shared<ScriptSource>("a",
                                     std::vector<Step>{{nullptr, "a1", std::nullopt, 1},
                                                       {nullptr, "a2", std::nullopt, std::nullopt}},
                                     [&] { a_sent_after_barrier = true; });
  // Hold b's barrier back until a's post-barrier record a2 is queued at the union: a's reader is
  // polled for its end only after a2 was pushed (channel pushes are synchronous), so when the flag
  // is set, a2 is in the union's input channel before b's barrier exists. A hand-off, not a time.
  auto b_src = std::make_shared<ScriptSource>(
      "b", std::vector<Step>{
               {nullptr, "b1", std::nullopt, std::nullopt},
               {[&] { return a_sent_after_barrier.load(); }, std::nullopt, std::nullopt, 1},
               {nullptr, "b2", std::nullopt, std::nullopt}});
  int a = plan.add_source(a_src, 1);
  int b = plan.add_source(b_src, 1);
  auto log = std::make_shared<Log>();
  int u = plan.add_operator(operators::union_all(), {forward(a), forward(b)}, 1);
  int r = plan.add_operator(std::make_shared<RecorderFactory>(log), {forward(u)}, 1);
  plan.add_operator(operators::blackhole_sink(), {forward(r)}, 1, "sink", true);
  ASSERT_TRUE(execute_plan(plan, {.worker_threads = 2}).is_ok());
  auto lines = log->get();
  int snap = index_of(lines, "snap:1");
  ASSERT_GE(snap, 0);
  EXPECT_LT(index_of(lines, "b:a1"), snap);
  EXPECT_LT(index_of(lines, "b:b1"), snap);
  EXPECT_GT(index_of(lines, "b:a2"), snap) << "a2 overtook the barrier";
  EXPECT_GT(index_of(lines, "b:b2"), snap);
}

TEST(Executor, ChainsForwardOperatorsOfEqualParallelism) {
  LogicalPlan plan;
  auto src = operators::batches_source({tag_batch("x")}).value();
  int s = plan.add_source(src, 2, "src");
  int f = plan.add_operator(operators::filter(compute::lit(true)), {forward(s)}, 2, "f");
  int g = plan.add_operator(operators::filter(compute::lit(true)),
                            {PlanEdge{f, Partitioning::kRebalance, {}, 0}}, 2, "g");
  int h = plan.add_operator(operators::identity("h"), {forward(g)}, 1, "h");
  plan.add_operator(operators::blackhole_sink(), {forward(h)}, 1, "sink", true);
  auto job = Job::start(plan, {.worker_threads = 1}).value();
  EXPECT_EQ(job->describe(), "src(x2) -> f(x2) | g(x2) | h -> sink");
  EXPECT_TRUE(job->wait().is_ok());
}

// A key_by edge between two nodes of parallelism 1 is chained like a forward edge (one task, no
// channel), and the keyed operator behind it still sees every key: dedup keeps each tag's first
// row, as a plain reference computes it. With a parallel side the edge stays a channel.
TEST(Executor, ChainsKeyByEdgeOnlyBetweenSingleSubtasks) {
  std::mt19937_64 rng(7);
  std::vector<RecordBatch> batches;
  std::vector<std::string> first_seen;  // reference: tags in order of first occurrence
  std::set<std::string> seen;
  for (int b = 0; b < 40; ++b) {
    columnar::BinaryBuilder tags;
    for (int i = 0; i < 50; ++i) {
      std::string tag = "k";
      tag += std::to_string(rng() % 300);
      if (seen.insert(tag).second) first_seen.push_back(tag);
      tags.append(tag);
    }
    batches.push_back(RecordBatch::make(tag_schema(), {tags.finish()}).value());
  }
  struct Case {
    int src_parallelism, keyed_parallelism;
    const char* describe;
  };
  for (const Case& c :
       {Case{1, 1, "src -> dedup -> sink"}, Case{1, 2, "src | dedup(x2) -> sink(x2)"},
        Case{2, 2, "src(x2) | dedup(x2) -> sink(x2)"}}) {
    LogicalPlan plan;
    int s = plan.add_source(operators::batches_source(batches).value(), c.src_parallelism, "src");
    int d = plan.add_operator(
        operators::deduplicate(operators::DedupOptions{.keys = {"tag"}, .time_column = {}}),
        {PlanEdge{s, Partitioning::kHash, {"tag"}, 0}}, c.keyed_parallelism, "dedup");
    auto out = std::make_shared<operators::CollectedBatches>();
    plan.add_operator(operators::collect_sink(out), {forward(d)}, c.keyed_parallelism, "sink",
                      true);
    auto job = Job::start(plan, {.worker_threads = 2}).value();
    EXPECT_EQ(job->describe(), c.describe);
    ASSERT_TRUE(job->wait().is_ok());
    RecordBatch all = out->to_batch().value();
    std::vector<std::string> got;
    for (int64_t i = 0; i < all.num_rows(); ++i) {
      got.emplace_back(all.column(0).string_view(i));
    }
    if (c.src_parallelism == 1 && c.keyed_parallelism == 1) {
      EXPECT_EQ(got, first_seen) << c.describe;  // one task: arrival order is kept
    } else {
      std::sort(got.begin(), got.end());
      std::vector<std::string> want = first_seen;
      std::sort(want.begin(), want.end());
      EXPECT_EQ(got, want) << c.describe;
    }
  }
}

// Sends rows with an odd tag length to side output "odd", the rest to the main output.
class SplitFactory final : public OperatorFactory {
 public:
  std::string kind() const override { return "split"; }
  Result<SchemaPtr> output_schema(std::span<const SchemaPtr> in) const override { return in[0]; }
  Result<SchemaPtr> side_output_schema(std::string_view tag,
                                       std::span<const SchemaPtr> in) const override {
    if (tag == "odd") return in[0];
    return OperatorFactory::side_output_schema(tag, in);
  }
  Result<std::unique_ptr<Operator>> create(std::span<const SchemaPtr>,
                                           const OperatorContext&) const override {
    class Op final : public Operator {
     public:
      Status process_batch(const RecordBatch& b, int, Output& out) override {
        std::vector<int32_t> odd, even;
        for (int64_t i = 0; i < b.num_rows(); ++i) {
          (b.column(0).string_view(i).size() % 2 ? odd : even).push_back(static_cast<int32_t>(i));
        }
        SABOT_ASSIGN_OR_RETURN(RecordBatch o, compute::take(b, odd));
        SABOT_ASSIGN_OR_RETURN(RecordBatch e, compute::take(b, even));
        SABOT_RETURN_IF_ERROR(out.emit_side("odd", o));
        return out.emit(e);
      }
    };
    return std::unique_ptr<Operator>(new Op());
  }
};

TEST(Executor, SideOutputsReachTheirOwnConsumers) {
  for (bool read_side : {true, false}) {
    LogicalPlan plan;
    std::vector<RecordBatch> batches;
    for (int i = 0; i < 50; ++i) batches.push_back(tag_batch(std::string(i % 5 + 1, 'x')));
    int s = plan.add_source(operators::batches_source(batches).value(), 2);
    int split = plan.add_operator(std::make_shared<SplitFactory>(), {forward(s)}, 2, "split");
    auto main_rows = std::make_shared<operators::CollectedBatches>();
    auto odd_rows = std::make_shared<operators::CollectedBatches>();
    plan.add_operator(operators::collect_sink(main_rows), {forward(split)}, 2, "main", true);
    if (read_side) {
      PlanEdge side = forward(split);
      side.side_output = "odd";
      side.partitioning = Partitioning::kRebalance;
      plan.add_operator(operators::collect_sink(odd_rows), {side}, 1, "odd-sink", true);
    }
    std::shared_ptr<const JobMetrics> metrics;
    ASSERT_TRUE(execute_plan(plan, {.worker_threads = 2}, &metrics).is_ok());
    EXPECT_EQ(main_rows->num_rows(), 20);  // lengths 2 and 4
    if (read_side) {
      EXPECT_EQ(odd_rows->num_rows(), 30);
      EXPECT_EQ(metrics->get("split").records_dropped, 0);
    } else {
      EXPECT_EQ(metrics->get("split").records_dropped, 30);  // nobody reads "odd"
    }
  }
}

TEST(Executor, UnknownSideOutputIsAPlanError) {
  LogicalPlan plan;
  int s = plan.add_source(operators::batches_source({tag_batch("x")}).value(), 1);
  int f = plan.add_operator(operators::filter(compute::lit(true)), {forward(s)}, 1, "f");
  plan.add_operator(operators::blackhole_sink(), {forward(f)}, 1, "sink", true);
  PlanEdge side = forward(f);
  side.side_output = "late";
  plan.add_operator(operators::blackhole_sink(), {side}, 1, "late-sink", true);
  Status st = validate_plan(plan, {});
  EXPECT_NE(st.message().find("operator 'filter' has no side output 'late'"), std::string::npos)
      << st.to_string();
}

size_t thread_count() {
  size_t n = 0;
  DIR* d = opendir("/proc/self/task");
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

// pthread_join returns when a thread has cleared its id, a moment before the kernel removes it
// from /proc/self/task: counts taken right after a join wait for that. The deadlines only bound a
// failing run (a thread that never ends).
constexpr auto kThreadExitBound = std::chrono::seconds(10);

// The threads of this process before a job starts. A first thread is started and joined (and gone)
// before counting, so that threads a runtime starts lazily with the first thread
// (ThreadSanitizer's background thread) are already counted.
size_t thread_count_before_a_job() {
  pid_t tid = 0;
  std::thread([&tid] { tid = static_cast<pid_t>(::syscall(SYS_gettid)); }).join();
  const std::string task = "/proc/self/task/" + std::to_string(tid);
  const auto deadline = std::chrono::steady_clock::now() + kThreadExitBound;
  while (::access(task.c_str(), F_OK) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  return thread_count();
}

// The thread count once the job's joined threads have left /proc (or `expected` is not reached).
size_t thread_count_after_join(size_t expected) {
  const auto deadline = std::chrono::steady_clock::now() + kThreadExitBound;
  size_t n = thread_count();
  while (n > expected && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
    n = thread_count();
  }
  return n;
}

TEST(Executor, CancelStopsAnEndlessJobAndLeavesNoThreads) {
  const size_t before = thread_count_before_a_job();
  LogicalPlan plan;
  auto gen = operators::generator_source(
      "endless", tag_schema(), 2, [](int, int64_t, int64_t) -> Result<std::optional<RecordBatch>> {
        return std::optional<RecordBatch>(tag_batch("x"));
      });
  int s = plan.add_source(gen, 2);
  plan.add_operator(operators::blackhole_sink(), {PlanEdge{s, Partitioning::kRebalance, {}, 0}}, 2,
                    "sink", true);
  auto job = Job::start(plan, {.worker_threads = 2}).value();
  // Running: wait until records reach the sink (a condition, not a time).
  while (job->metrics().get("sink").records_in == 0) std::this_thread::yield();
  EXPECT_GT(thread_count(), before);
  job->cancel();
  Status s2 = job->wait();
  EXPECT_EQ(s2.code(), StatusCode::kCancelled);
  EXPECT_GT(job->metrics().get("sink").records_in, 0);
  job.reset();
  EXPECT_EQ(thread_count_after_join(before), before);
}

TEST(Executor, FailureInOneSubtaskStopsAllAndReturnsTheFirstError) {
  const size_t before = thread_count_before_a_job();
  LogicalPlan plan;
  auto gen = operators::generator_source(
      "endless", tag_schema(), 4, [](int, int64_t, int64_t) -> Result<std::optional<RecordBatch>> {
        return std::optional<RecordBatch>(tag_batch("x"));
      });
  int s = plan.add_source(gen, 4);
  std::atomic<int> calls{0};
  int m = plan.add_operator(operators::map_batches(
                                [&](const RecordBatch& b) -> Result<RecordBatch> {
                                  if (++calls == 50) return Status::invalid_data("poisoned batch");
                                  return b;
                                },
                                nullptr),
                            {PlanEdge{s, Partitioning::kRebalance, {}, 0}}, 3, "poison");
  plan.add_operator(operators::blackhole_sink(), {forward(m)}, 3, "sink", true);
  Status st = execute_plan(plan, {.worker_threads = 2, .channel_capacity = 2});
  EXPECT_EQ(st.code(), StatusCode::kInvalidData);
  EXPECT_NE(st.message().find("operator 'poison' (subtask"), std::string::npos) << st.to_string();
  EXPECT_EQ(thread_count_after_join(before), before);
}

}  // namespace
}  // namespace sabot::runtime
