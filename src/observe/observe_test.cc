#include <gtest/gtest.h>
#include <httplib.h>

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <thread>

#include "sabot/api/environment.h"
#include "sabot/api/process.h"
#include "sabot/columnar/builder.h"
#include "sabot/compute/expression.h"
#include "sabot/connectors/memory_broker.h"
#include "sabot/connectors/topic.h"
#include "sabot/observe/metrics_server.h"
#include "sabot/operators/basic.h"
#include "sabot/operators/sources_sinks.h"
#include "sabot/runtime/executor.h"
#include "sabot/runtime/watermark.h"
#include "sabot/state/rocksdb_backend.h"

struct KeyedEvent {
  int64_t user = 0;
  int64_t amount = 0;
};
SABOT_RECORD(KeyedEvent, user, amount);
struct KeyedTotal {
  int64_t user = 0;
  int64_t total = 0;
};
SABOT_RECORD(KeyedTotal, user, total);

namespace sabot::observe {
namespace {

using columnar::RecordBatch;
using columnar::SchemaPtr;
using runtime::ExecutionOptions;
using runtime::LogicalPlan;
using runtime::Partitioning;
using runtime::PlanEdge;

SchemaPtr ts_schema() {
  return columnar::schema({columnar::field("ts", columnar::timestamp(columnar::TimeUnit::kMilli))});
}

// One step of a scripted reader, run on the source task's thread: `before` once when the step is
// reached, then (once `ready` says so) a batch of timestamps from `split`, or an idle poll when
// `ts_ms` is empty.
struct Step {
  int split = 0;
  std::vector<int64_t> ts_ms{};
  std::function<bool()> ready{};
  std::function<void()> before{};
};

class ScriptSource final : public runtime::Source {
 public:
  ScriptSource(std::vector<Step> steps, int num_splits)
      : steps_(std::move(steps)), num_splits_(num_splits) {}
  std::string name() const override { return "script"; }
  SchemaPtr schema() const override { return ts_schema(); }
  int num_splits() const override { return num_splits_; }
  Result<std::unique_ptr<runtime::SourceReader>> open_reader(
      std::span<const int>, const runtime::OperatorContext&) const override {
    class Reader final : public runtime::SourceReader {
     public:
      explicit Reader(const std::vector<Step>* steps) : steps_(steps) {}
      Result<runtime::SourcePoll> poll(int64_t) override {
        if (i_ >= steps_->size()) return runtime::SourcePoll::end();
        const Step& st = (*steps_)[i_];
        if (!before_done_) {
          if (st.before) st.before();
          before_done_ = true;
        }
        if (st.ready && !st.ready()) return runtime::SourcePoll::idle();
        ++i_;
        before_done_ = false;
        if (st.ts_ms.empty()) return runtime::SourcePoll::idle();
        columnar::Int64Builder b(columnar::timestamp(columnar::TimeUnit::kMilli));
        for (int64_t t : st.ts_ms) b.append(t);
        runtime::SourcePoll p =
            runtime::SourcePoll::of(RecordBatch::make(ts_schema(), {b.finish()}).value());
        p.split = st.split;
        return p;
      }
      std::string position() const override { return "step " + std::to_string(i_); }
      const std::vector<Step>* steps_;
      size_t i_ = 0;
      bool before_done_ = false;
    };
    return std::unique_ptr<runtime::SourceReader>(new Reader(&steps_));
  }

 private:
  std::vector<Step> steps_;
  int num_splits_;
};

// Three partitions start together; then partitions 0 and 1 move on to 5000 ms while partition 2
// stops. The source then parks (a hand-off) until the test has looked; the clock moves 30 s.
TEST(WatermarkDiagnosis, NamesThePartitionThatStopped) {
  ManualClock clock(Timestamp(1'000'000));
  std::atomic<bool> parked{false};
  std::atomic<bool> release{false};
  std::vector<Step> steps = {{0, {1000}},
                             {1, {1000}},
                             {2, {1000}},
                             {0, {5000}},
                             {1, {5000}},
                             {0,
                              {},
                              [&] { return release.load(); },
                              [&] {
                                clock.advance_millis(30'000);
                                parked = true;
                              }}};
  LogicalPlan plan;
  const int src = plan.add_source(std::make_shared<ScriptSource>(steps, 3), 1, "transactions");
  plan.node(src).watermarks = runtime::monotonic_timestamps("ts");
  PlanEdge e;
  e.from = src;
  e.partitioning = Partitioning::kRebalance;
  const int counter = plan.add_operator(operators::identity("count"), {e}, 1, "counter");
  PlanEdge f;
  f.from = counter;
  plan.add_operator(operators::blackhole_sink(), {f}, 1, "sink", true);
  ExecutionOptions o;
  o.worker_threads = 2;
  o.clock = &clock;
  o.job_name = "stuck";
  auto job = runtime::Job::start(plan, o);
  ASSERT_TRUE(job.is_ok()) << job.status().to_string();
  const runtime::JobMetrics& m = (*job)->metrics();
  // The counter's watermark reaches 999 (all three partitions at 1000) and the source parks: an
  // explicit condition, bounded.
  auto counter_wm = [&] {
    int64_t wm = INT64_MIN;
    m.read([&](const std::vector<runtime::OperatorEntry>& entries) {
      wm = entries[static_cast<size_t>(counter)].subtasks[0]->input_watermark_ms.load();
    });
    return wm;
  };
  for (int i = 0; i < 200000 && !(parked.load() && counter_wm() == 999); ++i) {
    std::this_thread::yield();
  }
  ASSERT_TRUE(parked.load());
  ASSERT_EQ(counter_wm(), 999);

  const int64_t now = clock.now().millis();
  bool found = false;
  for (const WatermarkHold& h : diagnose_watermarks(m, now)) {
    if (h.operator_name != "counter") continue;
    found = true;
    EXPECT_TRUE(h.held);
    EXPECT_EQ(h.watermark_ms, 999);
    EXPECT_EQ(h.input, "'transactions'[0]");
    EXPECT_EQ(h.source, "transactions");
    EXPECT_EQ(h.partition, 2);
    EXPECT_EQ(h.partition_watermark_ms, 999);
    EXPECT_EQ(h.behind_ms, 4000);  // partitions 0 and 1 stand at 4999
    EXPECT_FALSE(h.partition_idle);
    EXPECT_EQ(h.since_data_ms, 30'000);
    EXPECT_NE(h.explanation.find("partition 2 of source 'transactions'"), std::string::npos)
        << h.explanation;
    EXPECT_NE(h.explanation.find("4000 ms behind"), std::string::npos) << h.explanation;
    EXPECT_NE(h.explanation.find("not idle"), std::string::npos) << h.explanation;
  }
  EXPECT_TRUE(found);

  // The JSON API says the same.
  const std::string json = watermarks_json({(*job)->metrics_ptr()}, now);
  EXPECT_NE(json.find("\"operator\":\"counter\",\"subtask\":0,\"watermark_ms\":999"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"partition\":2,\"partition_watermark_ms\":999,\"behind_ms\":4000"),
            std::string::npos)
      << json;

  // The stall monitor: first sight, then under the threshold, then one report, then silence.
  WatermarkStallMonitor monitor(std::chrono::milliseconds(10'000));
  EXPECT_TRUE(monitor.check(m, now).empty());
  EXPECT_TRUE(monitor.check(m, now + 9'999).empty());
  const auto lines = monitor.check(m, now + 10'000);
  bool named = false;
  for (const std::string& line : lines) {
    if (line.find("'counter'[0] stuck at 999 for 10000 ms") != std::string::npos &&
        line.find("partition 2 of source 'transactions'") != std::string::npos) {
      named = true;
    }
  }
  EXPECT_TRUE(named) << (lines.empty() ? std::string("no line") : lines.front());
  EXPECT_TRUE(monitor.check(m, now + 20'000).empty());

  release = true;
  EXPECT_TRUE((*job)->wait().is_ok());
}

// The same job with an idle timeout: partition 2 goes idle, stops holding time back, and the
// diagnosis no longer names it.
TEST(WatermarkDiagnosis, IdlePartitionNoLongerHoldsTimeBack) {
  ManualClock clock(Timestamp(1'000'000));
  std::atomic<bool> parked{false};
  std::atomic<bool> release{false};
  std::vector<Step> steps = {{0, {1000}},
                             {1, {1000}},
                             {2, {1000}},
                             {0, {5000}},
                             {1, {5000}, nullptr, [&] { clock.advance_millis(60'000); }},
                             {0, {}},  // an idle poll: partition 2 is found idle
                             {0, {}, [&] { return release.load(); }, [&] { parked = true; }}};
  LogicalPlan plan;
  const int src = plan.add_source(std::make_shared<ScriptSource>(steps, 3), 1, "transactions");
  plan.node(src).watermarks =
      runtime::monotonic_timestamps("ts").with_idle_timeout(std::chrono::milliseconds(10'000));
  PlanEdge e;
  e.from = src;
  e.partitioning = Partitioning::kRebalance;
  const int counter = plan.add_operator(operators::identity("count"), {e}, 1, "counter");
  PlanEdge f;
  f.from = counter;
  plan.add_operator(operators::blackhole_sink(), {f}, 1, "sink", true);
  ExecutionOptions o;
  o.worker_threads = 2;
  o.clock = &clock;
  auto job = runtime::Job::start(plan, o);
  ASSERT_TRUE(job.is_ok()) << job.status().to_string();
  const runtime::JobMetrics& m = (*job)->metrics();
  auto counter_wm = [&] {
    int64_t wm = INT64_MIN;
    m.read([&](const std::vector<runtime::OperatorEntry>& entries) {
      wm = entries[static_cast<size_t>(counter)].subtasks[0]->input_watermark_ms.load();
    });
    return wm;
  };
  for (int i = 0; i < 200000 && !(parked.load() && counter_wm() == 4999); ++i) {
    std::this_thread::yield();
  }
  ASSERT_EQ(counter_wm(), 4999);
  for (const WatermarkHold& h : diagnose_watermarks(m, clock.now().millis())) {
    if (h.operator_name != "counter") continue;
    EXPECT_TRUE(h.held);
    EXPECT_NE(h.partition, 2) << h.explanation;
    EXPECT_EQ(h.behind_ms, 0);
  }
  const std::string json = watermarks_json({(*job)->metrics_ptr()}, clock.now().millis());
  EXPECT_NE(
      json.find(
          "\"partition\":2,\"event_time\":true,\"watermark_ms\":999,\"max_event_time_ms\":1000,"
          "\"since_data_ms\":60000,\"idle\":true"),
      std::string::npos)
      << json;
  release = true;
  EXPECT_TRUE((*job)->wait().is_ok());
}

// Sums of a metric's samples whose labels contain `label`.
double sum_samples(const std::string& text, const std::string& name, const std::string& label) {
  std::istringstream in(text);
  std::string line;
  double total = 0;
  while (std::getline(in, line)) {
    if (line.rfind(name + "{", 0) != 0 || line.find(label) == std::string::npos) continue;
    total += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return total;
}

SchemaPtr kv_schema() {
  return columnar::schema(
      {columnar::field("k", columnar::int64()), columnar::field("v", columnar::int64())});
}

// source (3 splits of 10k rows) -> filter v < 5000 -> hash by k -> identity -> sink.
void check_sums_at(int parallelism) {
  constexpr int64_t kRowsPerSplit = 10'000;
  auto source = operators::generator_source(
      "numbers", kv_schema(), 3,
      [](int split, int64_t next, int64_t max_rows) -> Result<std::optional<RecordBatch>> {
        if (next >= kRowsPerSplit) return std::optional<RecordBatch>();
        const int64_t n = std::min(max_rows, kRowsPerSplit - next);
        columnar::Int64Builder k(columnar::int64()), v(columnar::int64());
        for (int64_t i = next; i < next + n; ++i) {
          k.append(i % 97 + split);
          v.append(i);
        }
        return std::optional<RecordBatch>(
            RecordBatch::make(kv_schema(), {k.finish(), v.finish()}).value());
      });
  LogicalPlan plan;
  const int src = plan.add_source(source, parallelism, "numbers");
  PlanEdge e;
  e.from = src;
  const int filter =
      plan.add_operator(operators::filter(compute::col("v") < compute::lit(int64_t{5000})), {e},
                        parallelism, "small");
  PlanEdge h;
  h.from = filter;
  h.partitioning = Partitioning::kHash;
  h.key_columns = {"k"};
  const int id = plan.add_operator(operators::identity("keyed"), {h}, parallelism, "keyed");
  PlanEdge f;
  f.from = id;
  plan.add_operator(operators::blackhole_sink(), {f}, parallelism, "sink", true);
  ExecutionOptions o;
  o.worker_threads = 2;
  o.source_batch_rows = 1000;
  o.job_name = "sums-" + std::to_string(parallelism);
  auto job = runtime::Job::start(plan, o);
  ASSERT_TRUE(job.is_ok()) << job.status().to_string();
  ASSERT_TRUE((*job)->wait().is_ok());
  const std::string text = prometheus_text({(*job)->metrics_ptr()}, 0);
  const runtime::JobMetrics& m = (*job)->metrics();
  const std::string job_label = "job=\"" + o.job_name + "\"";
  auto sum = [&](const std::string& metric, const std::string& op) {
    return sum_samples(text, metric, job_label + ",operator=\"" + op + "\"");
  };
  EXPECT_EQ(sum("sabot_operator_records_out_total", "numbers"), 3 * kRowsPerSplit);
  EXPECT_EQ(sum("sabot_operator_records_in_total", "small"), 3 * kRowsPerSplit);
  EXPECT_EQ(sum("sabot_operator_records_out_total", "small"), 3 * 5000);
  EXPECT_EQ(sum("sabot_operator_records_in_total", "keyed"), 3 * 5000);
  EXPECT_EQ(sum("sabot_operator_records_in_total", "sink"), 3 * 5000);
  // Bytes: two int64 columns without nulls, 16 bytes per row.
  EXPECT_EQ(sum("sabot_operator_bytes_out_total", "numbers"), 3 * kRowsPerSplit * 16);
  EXPECT_EQ(sum("sabot_operator_bytes_in_total", "small"), 3 * kRowsPerSplit * 16);
  EXPECT_EQ(sum("sabot_operator_bytes_out_total", "small"), 3 * 5000 * 16);
  EXPECT_EQ(sum("sabot_operator_bytes_in_total", "keyed"), 3 * 5000 * 16);
  EXPECT_EQ(sum("sabot_operator_bytes_in_total", "sink"), 3 * 5000 * 16);
  for (const char* op : {"numbers", "small", "keyed", "sink"}) {
    const runtime::OperatorMetrics om = m.get(op);
    EXPECT_EQ(sum("sabot_operator_records_in_total", op), om.records_in) << op;
    EXPECT_EQ(sum("sabot_operator_records_out_total", op), om.records_out) << op;
    EXPECT_EQ(sum("sabot_operator_batches_out_total", op), om.batches_out) << op;
    EXPECT_EQ(sum("sabot_operator_bytes_in_total", op), om.bytes_in) << op;
    EXPECT_EQ(sum("sabot_operator_bytes_out_total", op), om.bytes_out) << op;
    // One sample per subtask.
    size_t samples = 0;
    for (size_t p =
             text.find("sabot_operator_records_in_total{" + job_label + ",operator=\"" + op + "\"");
         p != std::string::npos;
         p = text.find("sabot_operator_records_in_total{" + job_label + ",operator=\"" + op + "\"",
                       p + 1)) {
      ++samples;
    }
    EXPECT_EQ(samples, static_cast<size_t>(parallelism)) << op;
  }
  EXPECT_NE(text.find("# TYPE sabot_operator_records_in_total counter"), std::string::npos);
  EXPECT_NE(text.find("sabot_process_resident_memory_bytes"), std::string::npos);
}

TEST(BatchBytes, CountsTheRowsOfEachColumnInTheColumnarLayout) {
  auto schema = columnar::schema({columnar::field("i", columnar::int64()),
                                  columnar::field("s", columnar::utf8()),
                                  columnar::field("b", columnar::boolean())});
  columnar::Int64Builder i(columnar::int64());
  columnar::StringBuilder str(columnar::utf8());
  columnar::BooleanBuilder b;
  for (int r = 0; r < 10; ++r) {
    if (r == 3) {
      i.append_null();
    } else {
      i.append(r);
    }
    str.append(std::string(static_cast<size_t>(r), 'x'));  // 0 + 1 + ... + 9 = 45 bytes
    b.append(r % 2 == 0);
  }
  const RecordBatch batch =
      RecordBatch::make(schema, {i.finish(), str.finish(), b.finish()}).value();
  // int64 with a null: 2 bytes of validity + 80; utf8: 11 offsets * 4 + 45; bool: 2 bytes.
  EXPECT_EQ(runtime::batch_bytes(batch), 2 + 80 + 44 + 45 + 2);
  // A slice counts only its rows: rows 5..7 (no null; 5 + 6 + 7 = 18 string bytes).
  EXPECT_EQ(runtime::batch_bytes(batch.slice(5, 3)), 24 + 16 + 18 + 1);
  EXPECT_EQ(runtime::batch_bytes(RecordBatch::make_empty(schema)), 0);
}

// A running total per user in keyed state.
class Totals final : public KeyedProcessFunction<KeyedEvent, KeyedTotal> {
 public:
  void open(RuntimeContext& ctx) override { total_ = ctx.value_state<int64_t>("total"); }
  void process(const KeyedEvent& e, Context&, Emitter<KeyedTotal>& out) override {
    const int64_t t = total_->value().value_or(0) + e.amount;
    total_->update(t);
    out.emit({e.user, t});
  }

 private:
  state::ValueState<int64_t>* total_ = nullptr;
};

// The keyed stateful operator that check_state_keys_at puts after key_by("user").
enum class KeyedKind { kProcess, kDeduplicate, kTopN, kCountWindow };

// 5000 events of 37 users through a keyed stateful operator: the key counts of its subtasks add
// up to 37, and only the keyed operator has a key count.
void check_state_keys_at(int parallelism, KeyedKind kind = KeyedKind::kProcess) {
  auto schema = columnar::schema(
      {columnar::field("user", columnar::int64()), columnar::field("amount", columnar::int64())});
  std::vector<RecordBatch> events;
  for (int b = 0; b < 10; ++b) {
    columnar::Int64Builder u(columnar::int64()), a(columnar::int64());
    for (int i = 0; i < 500; ++i) {
      u.append((b * 500 + i) % 37);
      a.append(i);
    }
    events.push_back(RecordBatch::make(schema, {u.finish(), a.finish()}).value());
  }
  Environment env({.parallelism = parallelism, .batch_size = 100});
  const KeyedStream keyed = env.from_batches(events).key_by("user");
  switch (kind) {
    case KeyedKind::kProcess:
      keyed.process(Totals{}).blackhole();
      break;
    case KeyedKind::kDeduplicate:
      keyed.deduplicate().blackhole();
      break;
    case KeyedKind::kTopN:
      keyed.top_n("amount", 3).blackhole();
      break;
    case KeyedKind::kCountWindow:  // 5000 / 37 rows per key: no window fires
      keyed.window(count_window(1000)).aggregate({compute::count().as("n")}).blackhole();
      break;
  }
  JobResult r = env.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  int64_t keys = 0;
  int keyed_subtasks = 0;
  std::string keyed_operator;
  r.metrics().read([&](const std::vector<runtime::OperatorEntry>& entries) {
    for (const runtime::OperatorEntry& e : entries) {
      for (const auto& c : e.subtasks) {
        const int64_t k = c->state_keys.load();
        if (k < 0) continue;
        keys += k;
        ++keyed_subtasks;
        keyed_operator = e.name;
      }
    }
  });
  EXPECT_EQ(keys, 37);
  EXPECT_EQ(keyed_subtasks, parallelism);
  // The exposition has one sample per subtask of the keyed operator, summing to 37.
  const std::shared_ptr<const runtime::JobMetrics> m(std::shared_ptr<void>(), &r.metrics());
  const std::string text = prometheus_text({m}, 0);
  EXPECT_EQ(sum_samples(text, "sabot_operator_state_keys", "operator=\"" + keyed_operator + "\""),
            37)
      << text;
  EXPECT_EQ(sum_samples(text, "sabot_operator_state_keys", ""), 37) << text;
  EXPECT_NE(text.find("# TYPE sabot_operator_state_keys gauge"), std::string::npos);
}

// A job on the RocksDB backend exposes what the backend holds in memory by part, the budget
// among them, as the backend reports it when scraped: an instance kept open beside the job (the
// job's own are closed once it ended) holds entries in its write cache. A job on the memory
// backend has no such samples.
TEST(PrometheusText, StateBackendMemoryByPartOnRocksDb) {
  const std::string dir = ::testing::TempDir() + "/observe_rocksdb_" + std::to_string(::getpid());
  const SchemaPtr schema = columnar::schema(
      {columnar::field("user", columnar::int64()), columnar::field("amount", columnar::int64())});
  std::vector<RecordBatch> events;
  columnar::Int64Builder u(columnar::int64()), a(columnar::int64());
  for (int i = 0; i < 5000; ++i) {
    u.append(i % 37);
    a.append(i);
  }
  events.push_back(RecordBatch::make(schema, {u.finish(), a.finish()}).value());
  auto rocks = state::RocksDbStateBackend::make(dir, {.memory_budget_bytes = size_t{4} << 20});
  ASSERT_TRUE(rocks.is_ok()) << rocks.status().to_string();
  auto open = (*rocks)->create_keyed_backend({.key_types = {columnar::int64()}, .name = "open"});
  ASSERT_TRUE(open.is_ok()) << open.status().to_string();
  auto* v = (*open)->get_state(state::ValueStateDescriptor<std::string>{"v"}).value();
  for (int64_t k = 0; k < 100; ++k) {
    (*open)->set_current_key(
        (*open)
            ->keys()
            .resolve_values(std::vector<columnar::Scalar>{columnar::Scalar::of_int64(k)})
            .value());
    v->update(std::string(100, 'x'));
  }
  for (const bool on_rocks : {true, false}) {
    EnvironmentOptions o{.parallelism = 2, .batch_size = 100};
    if (on_rocks) o.state_backend = *rocks;
    Environment env(o);
    env.from_batches(events).key_by("user").process(Totals{}).blackhole();
    JobResult r = env.execute("budgeted");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    const std::shared_ptr<const runtime::JobMetrics> m(std::shared_ptr<void>(), &r.metrics());
    const std::string text = prometheus_text({m}, 0);
    const std::string family = "sabot_state_backend_memory_bytes";
    if (!on_rocks) {
      EXPECT_EQ(text.find(family), std::string::npos) << text;
      continue;
    }
    const state::RocksDbMemoryUsage now = (*rocks)->memory_usage();
    ASSERT_GT(now.write_caches, 0u);
    const std::string labels = "job=\"budgeted\",backend=\"rocksdb\",part=";
    auto part = [&](const char* name) {
      return sum_samples(text, family, labels + "\"" + name + "\"");
    };
    EXPECT_EQ(part("budget"), 4 << 20) << text;
    EXPECT_EQ(part("write_caches"), static_cast<double>(now.write_caches)) << text;
    EXPECT_EQ(part("memtables"), static_cast<double>(now.memtables)) << text;
    EXPECT_EQ(part("total"), part("block_cache") + part("write_caches")) << text;
    EXPECT_LE(part("total"), 4 << 20) << text;
    EXPECT_NE(text.find("# TYPE " + family + " gauge"), std::string::npos);
  }
  open->reset();
  std::filesystem::remove_all(dir);
}

TEST(PrometheusText, StateKeysAddUpToTheKeysAtParallelism1) { check_state_keys_at(1); }
TEST(PrometheusText, StateKeysAddUpToTheKeysAtParallelism3) { check_state_keys_at(3); }
TEST(PrometheusText, DedupTopNAndWindowKeysAddUpToTheKeysAtParallelism1And3) {
  for (int p : {1, 3}) {
    SCOPED_TRACE("parallelism " + std::to_string(p));
    for (KeyedKind kind : {KeyedKind::kDeduplicate, KeyedKind::kTopN, KeyedKind::kCountWindow}) {
      SCOPED_TRACE("kind " + std::to_string(static_cast<int>(kind)));
      check_state_keys_at(p, kind);
    }
  }
}

SchemaPtr id_schema() { return columnar::schema({columnar::field("id", columnar::int64())}); }

// A closed memory:// topic of `n` JSON records {"id": i} over `partitions` partitions.
void produce_ids(connectors::MemoryBroker& broker, const std::string& name, int partitions, int n) {
  auto topic = broker.create_topic(name, {.partitions = partitions}).value();
  auto w = connectors::MemoryTopicWriter::open(topic, {.batch_records = 64}).value();
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(
        w->send(std::to_string(i), "{\"id\": " + std::to_string(i) + "}", Timestamp(i)).is_ok());
  }
  ASSERT_TRUE(w->close().is_ok());
  topic->close();
}

// Per (subtask, partition) of operator `op`: offset and end offset.
std::vector<std::pair<int64_t, int64_t>> partition_progress(const runtime::JobMetrics& m,
                                                            const std::string& op) {
  std::vector<std::pair<int64_t, int64_t>> out;
  m.read([&](const std::vector<runtime::OperatorEntry>& entries) {
    for (const runtime::OperatorEntry& e : entries) {
      if (e.name != op) continue;
      for (const auto& pg : e.partitions)
        out.emplace_back(pg->offset.load(), pg->end_offset.load());
    }
  });
  return out;
}

// A bounded memory:// input read to its end: every partition's lag is 0, the offsets add up to
// the records read, one sample per partition.
void check_lag_at_end(int parallelism) {
  connectors::MemoryBroker broker;
  produce_ids(broker, "ids", 3, 600);
  Environment env({.parallelism = parallelism});
  env.from_topic("memory://ids", codec::json(id_schema()), {.broker = &broker}).blackhole();
  JobResult r = env.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const std::shared_ptr<const runtime::JobMetrics> m(std::shared_ptr<void>(), &r.metrics());
  const std::string text = prometheus_text({m}, 0);
  EXPECT_EQ(sum_samples(text, "sabot_source_partition_offset", ""), 600) << text;
  EXPECT_EQ(sum_samples(text, "sabot_source_partition_lag_records", ""), 0) << text;
  size_t samples = 0;
  for (size_t p = text.find("sabot_source_partition_lag_records{"); p != std::string::npos;
       p = text.find("sabot_source_partition_lag_records{", p + 1)) {
    ++samples;
  }
  EXPECT_EQ(samples, 3u) << text;
  int64_t ends = 0;
  int64_t offsets = 0;
  for (const runtime::OperatorMetrics& om : r.metrics().snapshot()) {
    for (auto [at, end] : partition_progress(r.metrics(), om.name)) {
      offsets += at;
      ends += end;
    }
  }
  EXPECT_EQ(offsets, 600);
  EXPECT_EQ(ends, 600);
  const std::string json = watermarks_json({m}, 0);
  EXPECT_NE(json.find("\"lag\":0"), std::string::npos) << json;
  EXPECT_EQ(json.find("\"lag\":null"), std::string::npos) << json;
  // No watermark strategy: the partitions say they track no event time (the dashboard then shows
  // "-" for their last data and idleness instead of "never" and "active").
  EXPECT_NE(json.find("\"event_time\":false"), std::string::npos) << json;
  EXPECT_EQ(json.find("\"event_time\":true"), std::string::npos) << json;
}

TEST(SourceLag, ZeroAtTheEndOfABoundedTopicAtParallelism1) { check_lag_at_end(1); }
TEST(SourceLag, ZeroAtTheEndOfABoundedTopicAtParallelism3) { check_lag_at_end(3); }

// The operator chained to the source holds its first batch until the test lets it go, so the
// source stops after one batch: its partition's lag is then exactly the records it has not read.
TEST(SourceLag, CountsTheRecordsNotYetRead) {
  connectors::MemoryBroker broker;
  produce_ids(broker, "held", 1, 100);
  auto source = connectors::topic_source(
      {.url = "memory://held", .codec = codec::json(id_schema()), .broker = &broker});
  ASSERT_TRUE(source.is_ok()) << source.status().to_string();
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  auto gate = operators::map_batches(
      [&](const RecordBatch& b) -> Result<RecordBatch> {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return released; });
        return b;
      },
      nullptr);
  LogicalPlan plan;
  const int src = plan.add_source(*source, 1, "held");
  PlanEdge e;
  e.from = src;
  const int g = plan.add_operator(gate, {e}, 1, "gate");
  PlanEdge f;
  f.from = g;
  plan.add_operator(operators::blackhole_sink(), {f}, 1, "sink", true);
  ExecutionOptions o;
  o.source_batch_rows = 10;
  o.job_name = "lag";
  auto job = runtime::Job::start(plan, o);
  ASSERT_TRUE(job.is_ok()) << job.status().to_string();
  const runtime::JobMetrics& m = (*job)->metrics();
  // The source publishes its progress before handing its first batch to the gate (an idle poll
  // before it may have published offset 0).
  std::vector<std::pair<int64_t, int64_t>> progress;
  auto read_some = [&] { return !progress.empty() && progress[0].first > 0; };
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!read_some() && std::chrono::steady_clock::now() < give_up) {
    progress = partition_progress(m, "held");
    if (!read_some()) std::this_thread::yield();
  }
  ASSERT_EQ(progress.size(), 1u);
  const int64_t read = m.get("held").records_out;
  EXPECT_GT(read, 0);
  EXPECT_LT(read, 100);
  EXPECT_EQ(progress[0].first, read);
  EXPECT_EQ(progress[0].second, 100);
  const std::string text = prometheus_text({(*job)->metrics_ptr()}, 0);
  EXPECT_EQ(sum_samples(text, "sabot_source_partition_lag_records", "operator=\"held\""),
            static_cast<double>(100 - read))
      << text;
  EXPECT_EQ(sum_samples(text, "sabot_source_partition_offset", "operator=\"held\""),
            static_cast<double>(read));
  {
    std::lock_guard<std::mutex> lock(mu);
    released = true;
  }
  cv.notify_all();
  ASSERT_TRUE((*job)->wait().is_ok());
  progress = partition_progress(m, "held");
  ASSERT_EQ(progress.size(), 1u);
  EXPECT_EQ(progress[0].first, 100);
  EXPECT_EQ(progress[0].second, 100);
}

TEST(PrometheusText, SumsEqualTheJobsRecordCountsAtParallelism1) { check_sums_at(1); }
TEST(PrometheusText, SumsEqualTheJobsRecordCountsAtParallelism3) { check_sums_at(3); }

TEST(PrometheusText, EscapesLabelValues) {
  auto m = std::make_shared<runtime::JobMetrics>();
  m->set_job("a \"quoted\" \\ job\nx", 0, "");
  (void)m->add("op", 0, 1);
  const std::string text = prometheus_text({m}, 0);
  EXPECT_NE(text.find("job=\"a \\\"quoted\\\" \\\\ job\\nx\""), std::string::npos) << text;
}

TEST(MetricsServer, ServesMetricsDashboardAndApiOnAFreeLoopbackPort) {
  auto m = std::make_shared<runtime::JobMetrics>();
  m->set_job("served", 0, "numbers -> sink");
  m->add("numbers", 0, 1)->records_out.store(42);
  runtime::OperatorShape shape;
  shape.source = true;
  shape.chain_head = 0;
  m->set_shape(0, shape);
  m->record_checkpoint({.id = 7, .completed = true, .duration_ms = 12, .bytes = 300});
  auto server =
      MetricsServer::start({.port = 0, .jobs = [m] {
                              return std::vector<std::shared_ptr<const runtime::JobMetrics>>{m};
                            }});
  ASSERT_TRUE(server.is_ok()) << server.status().to_string();
  ASSERT_GT((*server)->port(), 0);
  EXPECT_EQ((*server)->url(), "http://127.0.0.1:" + std::to_string((*server)->port()) + "/");
  httplib::Client client("127.0.0.1", (*server)->port());
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(
      metrics->body.find(
          "sabot_operator_records_out_total{job=\"served\",operator=\"numbers\",subtask=\"0\"} 42"),
      std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->get_header_value("Content-Type").find("version=0.0.4"), std::string::npos);
  auto page = client.Get("/");
  ASSERT_TRUE(page);
  EXPECT_NE(page->body.find("<title>Sabot dashboard</title>"), std::string::npos);
  EXPECT_EQ(page->body.find("http"), std::string::npos) << "the page fetches nothing from outside";
  auto api = client.Get("/api/job");
  ASSERT_TRUE(api);
  EXPECT_NE(api->body.find("\"name\":\"numbers\",\"parallelism\":1,\"source\":true"),
            std::string::npos)
      << api->body;
  auto cps = client.Get("/api/checkpoints");
  ASSERT_TRUE(cps);
  EXPECT_NE(cps->body.find("\"id\":7,\"savepoint\":false,\"status\":\"completed\""),
            std::string::npos)
      << cps->body;
  ASSERT_TRUE(client.Get("/api/metrics"));
  ASSERT_TRUE(client.Get("/api/watermarks"));
  (*server)->stop();
}

TEST(Watcher, ProgressLineShowsRecordsRateElapsedAndEtaWhenBounded) {
  EXPECT_EQ(Watcher::progress_line(1'500'000, 250'000, 6.2, 4'000'000),
            "1.50 M records (38%)  250.0 k/s  elapsed 6 s  ETA 10 s");
  EXPECT_EQ(Watcher::progress_line(1'500'000, 250'000, 6.2, 0),
            "1.50 M records  250.0 k/s  elapsed 6 s");
}

// A job that fails once and is restarted: the restarted run's metrics carry the restart, and the
// exposition counts it as a restart and a failure.
TEST(PrometheusText, CountsRestartsAcrossRuns) {
  auto failures = std::make_shared<std::atomic<int>>(0);
  using sabot::Environment;
  using sabot::EnvironmentOptions;
  using sabot::JobResult;
  EnvironmentOptions o;
  o.parallelism = 1;
  o.restart = runtime::RestartStrategy::fixed_delay(2, std::chrono::milliseconds(0));
  Environment env(o);
  columnar::Int64Builder b(columnar::int64());
  for (int i = 0; i < 10; ++i) b.append(i);
  auto schema = columnar::schema({columnar::field("x", columnar::int64())});
  env.from_batches({RecordBatch::make(schema, {b.finish()}).value()})
      .map_batches([failures](const RecordBatch& batch) -> Result<RecordBatch> {
        if (failures->fetch_add(1) == 0) return Status::internal("injected failure");
        return batch;
      })
      .blackhole();
  testing::internal::CaptureStderr();
  JobResult r = env.execute("restarting");
  testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r.restarts(), 1);
  auto last = runtime::last_finished_job();
  ASSERT_NE(last, nullptr);
  EXPECT_EQ(last->job_name(), "restarting");
  EXPECT_EQ(last->restarts(), 1);
  const std::string text = prometheus_text({last}, 0);
  EXPECT_NE(text.find("sabot_job_restarts_total{job=\"restarting\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("sabot_job_failures_total{job=\"restarting\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("sabot_job_running{job=\"restarting\"} 0\n"), std::string::npos);
}

}  // namespace
}  // namespace sabot::observe
