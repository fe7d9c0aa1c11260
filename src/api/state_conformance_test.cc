// The state conformance suite: every stateful operator, through the DataStream API, must give the
// same output when its job is interrupted at a checkpoint and restored, also at another
// parallelism. For a job built by a function, with seeded random input in random-size batches:
//   (a) the uninterrupted run;
//   (b) a run whose sources inject barrier 1 after a random batch of every split and then stay
//       idle; once checkpoint 1 is complete the job is cancelled and its output so far kept;
//   (c) a new job at parallelism Q restored from that snapshot, whose sources start after the cut;
// and output(b) + output(c) must equal output(a) as a multiset, for parallelism pairs (2,2),
// (1,3) and (3,2). Inputs are made so that (a) itself is deterministic: event time never decreases
// within a split (no late rows), and all rows of a key are in one split (so order-sensitive
// operators such as dedup, count windows and rolling reduce see each key's rows in one order).
// Every case runs with the job's state backend in memory and on RocksDB; the operators whose
// state lives on the backend (docs/state-backends.md) are checked on both, the others keep their
// state in operator memory either way.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "sabot/api/environment.h"
#include "sabot/state/backend_testing.h"

struct Row {
  int64_t key = 0;
  int64_t ts = 0;
  int64_t v = 0;
};
SABOT_RECORD(Row, key, ts, v);

struct KeyTotal {
  int64_t key = 0;
  int64_t total = 0;
  int64_t rows = 0;
};
SABOT_RECORD(KeyTotal, key, total, rows);

struct TimerFired {
  int64_t key = 0;
  int64_t at = 0;
  int64_t sum = 0;
};
SABOT_RECORD(TimerFired, key, at, sum);

namespace sabot {
namespace {

using namespace std::chrono_literals;
using columnar::field;
using state::testing::BackendKind;

constexpr int kSplits = 4;

// The schema RowWriter<Row> writes (not-null columns), so that the source's batches have exactly
// the schema it declares.
SchemaPtr row_schema() {
  static const SchemaPtr schema = RowWriter<Row>().schema();
  return schema;
}

// One source's input: per split, its batches in order.
using SplitBatches = std::vector<std::vector<RecordBatch>>;

// `rows` rows over `keys` keys (key k in split k % kSplits, from `key_base`), event time
// non-decreasing within each split, cut into batches of 1-40 rows.
SplitBatches random_input(std::mt19937_64& rng, int rows, int keys, int64_t key_base) {
  std::vector<std::vector<Row>> per_split(kSplits);
  std::vector<int64_t> ts(kSplits, 1000);
  for (int i = 0; i < rows; ++i) {
    const int64_t key = key_base + static_cast<int64_t>(rng() % static_cast<uint64_t>(keys));
    const int split = static_cast<int>(key % kSplits);
    ts[split] += static_cast<int64_t>(rng() % 5);
    per_split[split].push_back(Row{key, ts[split], static_cast<int64_t>(rng() % 1000)});
  }
  SplitBatches out(kSplits);
  for (int s = 0; s < kSplits; ++s) {
    size_t i = 0;
    while (i < per_split[s].size()) {
      const size_t n = std::min(per_split[s].size() - i, size_t{1} + rng() % 40);
      RowWriter<Row> w;
      for (size_t k = 0; k < n; ++k) w.append(per_split[s][i + k]);
      out[s].push_back(w.finish());
      i += n;
    }
  }
  return out;
}

// Reads the batches of its splits (interleaved), starting split s at batch `first[s]`. With
// `cut`, it stops each split after batch cut[s] - 1, injects barrier 1 once every split of the
// reader is there, and then only returns idle; without, it ends after the last batch. `ready`,
// when set, holds the reader back (idle) until it returns true.
class SplitSource final : public runtime::Source {
 public:
  SplitSource(std::shared_ptr<const SplitBatches> input, std::vector<size_t> first,
              std::optional<std::vector<size_t>> cut, std::function<bool()> ready = {})
      : input_(std::move(input)),
        first_(std::move(first)),
        cut_(std::move(cut)),
        ready_(std::move(ready)) {}
  std::string name() const override { return "splits"; }
  SchemaPtr schema() const override { return row_schema(); }
  int num_splits() const override { return kSplits; }
  Result<std::unique_ptr<runtime::SourceReader>> open_reader(
      std::span<const int> splits, const runtime::OperatorContext&) const override {
    class Reader final : public runtime::SourceReader {
     public:
      Reader(const SplitSource* s, std::vector<int> splits) : s_(s), splits_(std::move(splits)) {
        for (int sp : splits_) next_.push_back(s_->first_[static_cast<size_t>(sp)]);
      }
      Result<runtime::SourcePoll> poll(int64_t) override {
        if (s_->ready_ && !s_->ready_()) return runtime::SourcePoll::idle();
        for (size_t k = 0; k < splits_.size(); ++k) {
          const size_t i = (rr_ + k) % splits_.size();
          const int sp = splits_[i];
          const auto& batches = (*s_->input_)[static_cast<size_t>(sp)];
          const size_t limit = s_->cut_ ? (*s_->cut_)[static_cast<size_t>(sp)] : batches.size();
          if (next_[i] >= limit) continue;
          rr_ = i + 1;
          runtime::SourcePoll p = runtime::SourcePoll::of(batches[next_[i]++]);
          p.split = sp;
          return p;
        }
        if (!s_->cut_) return runtime::SourcePoll::end();
        runtime::SourcePoll p = runtime::SourcePoll::idle();
        if (!barrier_sent_) {
          barrier_sent_ = true;
          p.barrier = CheckpointId(1);
        }
        return p;
      }
      const SplitSource* s_;
      std::vector<int> splits_;
      std::vector<size_t> next_;
      size_t rr_ = 0;
      bool barrier_sent_ = false;
    };
    return std::unique_ptr<runtime::SourceReader>(
        new Reader(this, std::vector<int>(splits.begin(), splits.end())));
  }

 private:
  std::shared_ptr<const SplitBatches> input_;
  std::vector<size_t> first_;
  std::optional<std::vector<size_t>> cut_;
  std::function<bool()> ready_;
};

// A case: builds the job from its sources (already with watermarks on "ts") and returns what the
// sink collects.
using BuildJob = std::function<std::shared_ptr<operators::CollectedBatches>(
    Environment&, const std::vector<DataStream>&)>;

struct Case {
  std::string name;
  int sources = 1;  // 1, or 2 for joins (left, right)
  int rows = 1200;  // per source
  int keys = 60;
  BuildJob build;
  // Stream-table join: its output depends on the arrival order of the two inputs; the left
  // source waits until the join has taken in the whole table (the right input, all before the
  // cut), which makes (a) deterministic.
  bool table_first = false;
};

std::vector<std::string> rows_of(const operators::CollectedBatches& c) {
  std::vector<std::string> out;
  for (const RecordBatch& b : c.batches()) {
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

struct Run {
  std::vector<std::string> rows;
  std::shared_ptr<const runtime::JobSnapshot> snapshot;
};

// Runs the case's job at `parallelism`. `first`/`cut` per source (see SplitSource); with `cut`
// the job is cancelled once checkpoint 1 is complete and the snapshot is returned.
Run run_job(const Case& c, const std::vector<std::shared_ptr<const SplitBatches>>& inputs,
            int parallelism, const std::vector<std::vector<size_t>>& first,
            const std::optional<std::vector<std::vector<size_t>>>& cut,
            std::shared_ptr<const runtime::JobSnapshot> restore, BackendKind backend) {
  auto store = std::make_shared<runtime::CheckpointStore>();
  EnvironmentOptions opts;
  // Not owned: the test process's backend outlives every job.
  opts.state_backend = std::shared_ptr<const state::StateBackend>(
      &state::testing::backend_of(backend), [](const state::StateBackend*) {});
  opts.parallelism = parallelism;
  opts.worker_threads = 2;
  opts.checkpoints = cut ? store : nullptr;
  opts.restore_from = std::move(restore);
  Environment env(opts);
  // The stream-table join's left input waits for the table (see Case::table_first).
  auto metrics = std::make_shared<std::atomic<const runtime::JobMetrics*>>(nullptr);
  int64_t table_rows = 0;
  if (c.table_first && first.size() == 2) {
    for (size_t s = 0; s < inputs[1]->size(); ++s) {
      for (size_t b = first[1][s]; b < (*inputs[1])[s].size(); ++b) {
        table_rows += (*inputs[1])[s][b].num_rows();
      }
    }
  }
  std::vector<DataStream> streams;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::function<bool()> ready;
    if (i == 0 && table_rows > 0) {
      ready = [metrics, table_rows] {
        const runtime::JobMetrics* m = metrics->load();
        return m != nullptr && m->get("join").records_in >= table_rows;
      };
    }
    std::optional<std::vector<size_t>> source_cut;
    if (cut) source_cut = (*cut)[i];
    streams.push_back(
        env.from_source(std::make_shared<SplitSource>(inputs[i], first[i], source_cut, ready),
                        "in" + std::to_string(i))
            .with_watermarks(bounded_out_of_orderness("ts", 5ms)));
  }
  auto sink = c.build(env, streams);
  auto job = env.start("conformance-" + c.name);
  EXPECT_TRUE(job.is_ok()) << job.status().to_string();
  if (!job.is_ok()) return {};
  metrics->store(&(*job)->metrics());
  Run out;
  if (cut) {
    auto snap = store->wait_for(CheckpointId(1));
    EXPECT_TRUE(snap.is_ok()) << snap.status().to_string();
    (*job)->cancel();
    Status s = (*job)->wait();
    EXPECT_EQ(s.code(), StatusCode::kCancelled) << s.to_string();
    if (!snap.is_ok()) return {};
    out.snapshot = std::make_shared<runtime::JobSnapshot>(std::move(snap).value());
  } else {
    Status s = (*job)->wait();
    EXPECT_TRUE(s.is_ok()) << s.to_string();
  }
  out.rows = rows_of(*sink);
  return out;
}

void check_case(const Case& c, int p, int q, uint64_t seed, BackendKind backend) {
  SCOPED_TRACE(c.name + " " + std::to_string(p) + " -> " + std::to_string(q) + ", seed " +
               std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::vector<std::shared_ptr<const SplitBatches>> inputs;
  std::vector<std::vector<size_t>> zero, cut;
  for (int i = 0; i < c.sources; ++i) {
    // Both sides of a join share the key range so that keys meet.
    auto in = std::make_shared<SplitBatches>(random_input(rng, c.rows, c.keys, 0));
    std::vector<size_t> cuts;
    for (const auto& split : *in) {
      // After a random batch k (k = -1: before the first); the table of a stream-table join is
      // all before the cut.
      const bool whole = c.table_first && i == 1;
      cuts.push_back(whole ? split.size() : rng() % (split.size() + 1));
    }
    zero.emplace_back(kSplits, 0);
    cut.push_back(std::move(cuts));
    inputs.push_back(std::move(in));
  }
  Run a = run_job(c, inputs, p, zero, std::nullopt, nullptr, backend);
  Run b = run_job(c, inputs, p, zero, cut, nullptr, backend);
  ASSERT_TRUE(b.snapshot) << "checkpoint 1 did not complete";
  Run after = run_job(c, inputs, q, cut, std::nullopt, b.snapshot, backend);
  std::vector<std::string> joined = b.rows;
  joined.insert(joined.end(), after.rows.begin(), after.rows.end());
  std::sort(joined.begin(), joined.end());
  ASSERT_FALSE(a.rows.empty()) << "the case produced no output: it would prove nothing";
  EXPECT_EQ(joined.size(), a.rows.size())
      << "before the cut " << b.rows.size() << " rows, after it " << after.rows.size();
  // The first difference, to keep the message readable.
  auto [x, y] = std::mismatch(joined.begin(), joined.end(), a.rows.begin(), a.rows.end());
  if (x != joined.end() || y != a.rows.end()) {
    ADD_FAILURE() << "interrupted + restored output differs from the uninterrupted run; first "
                  << "difference: restored has '" << (x != joined.end() ? *x : "<end>")
                  << "', uninterrupted has '" << (y != a.rows.end() ? *y : "<end>") << "'";
  }
}

// ---- The cases ----

std::shared_ptr<operators::CollectedBatches> windowed(const std::vector<DataStream>& in,
                                                      WindowSpec spec) {
  return in[0]
      .key_by("key")
      .window(spec)
      .aggregate({count().as("n"), sum("v").as("total"), max("v").as("top")})
      .uid("window")
      .collect();
}

KeyedStream left(const std::vector<DataStream>& in) { return in[0].key_by("key"); }
KeyedStream right(const std::vector<DataStream>& in) { return in[1].key_by("key"); }

operators::JoinCommon common() {
  operators::JoinCommon c;
  c.left_keys = {"key"};
  c.right_keys = {"key"};
  return c;
}

// Registers an event-time timer 10 ms after each row and, when it fires, emits the key, the time,
// and the number and value sum of the key's rows that asked for it (map state by timer time): a
// result that does not depend on when the watermark happened to pass.
class DelayedSum final : public KeyedProcessFunction<Row, TimerFired> {
 public:
  void open(RuntimeContext& ctx) override {
    due_ = ctx.map_state<int64_t, int64_t>("due");
    seen_ = ctx.value_state<int64_t>("seen");
  }
  void process(const Row& r, Context& ctx, Emitter<TimerFired>&) override {
    const int64_t at = r.ts + 10;
    due_->put(at, due_->get(at).value_or(0) + r.v);
    seen_->update(seen_->value().value_or(0) + 1);
    ctx.register_event_time_timer(Timestamp(at));
  }
  void on_timer(Timestamp t, Context& ctx, Emitter<TimerFired>& out) override {
    out.emit({ctx.current_key()[0].as_int64(), t.millis(), due_->get(t.millis()).value_or(-1)});
    due_->remove(t.millis());
  }

 private:
  state::MapState<int64_t, int64_t>* due_ = nullptr;
  state::ValueState<int64_t>* seen_ = nullptr;
};

struct TotalFn {
  KeyTotal create() const { return {}; }
  void add(KeyTotal& acc, const Row& r) const {
    acc.key = r.key;
    acc.total += r.v;
    acc.rows += 1;
  }
  void merge(KeyTotal& acc, const KeyTotal& o) const {
    acc.total += o.total;
    acc.rows += o.rows;
  }
  KeyTotal result(const KeyTotal& acc) const { return acc; }
};

std::vector<Case> cases() {
  std::vector<Case> out;
  out.push_back({"tumbling", 1, 1200, 60, [](Environment&, const std::vector<DataStream>& in) {
                   return windowed(in, tumbling(50ms));
                 }});
  out.push_back({"sliding", 1, 1200, 60, [](Environment&, const std::vector<DataStream>& in) {
                   return windowed(in, sliding(60ms, 20ms));
                 }});
  out.push_back({"session", 1, 1200, 60, [](Environment&, const std::vector<DataStream>& in) {
                   return windowed(in, session(15ms));
                 }});
  out.push_back({"count_window", 1, 1200, 60, [](Environment&, const std::vector<DataStream>& in) {
                   return windowed(in, count_window(4));
                 }});
  out.push_back({"global_window", 1, 1200, 60, [](Environment&, const std::vector<DataStream>& in) {
                   return windowed(in, global_window());
                 }});
  out.push_back({"interval_join", 2, 800, 60, [](Environment&, const std::vector<DataStream>& in) {
                   return left(in).interval_join(right(in), -10ms, 10ms).uid("join").collect();
                 }});
  out.push_back({"asof_join", 2, 800, 60, [](Environment&, const std::vector<DataStream>& in) {
                   return left(in).asof_join(right(in), JoinKind::kLeft).uid("join").collect();
                 }});
  out.push_back(
      {"stream_table_join", 2, 800, 60,
       [](Environment&, const std::vector<DataStream>& in) {
         return left(in).join(right(in), JoinKind::kLeft).name("join").uid("join").collect();
       },
       true});
  out.push_back(
      {"window_join", 2, 800, 60, [](Environment&, const std::vector<DataStream>& in) {
         operators::WindowJoinOptions o;
         o.common = common();
         o.time.left_time = "ts";
         o.time.right_time = "ts";
         o.size_ms = 40;
         return left(in).join_with(right(in), operators::window_join(o)).uid("join").collect();
       }});
  out.push_back(
      {"regular_join", 2, 600, 120, [](Environment&, const std::vector<DataStream>& in) {
         operators::RegularJoinOptions o;
         o.common = common();
         return left(in).join_with(right(in), operators::regular_join(o)).uid("join").collect();
       }});
  out.push_back({"dedup", 1, 1200, 300, [](Environment&, const std::vector<DataStream>& in) {
                   return in[0].key_by("key").deduplicate().uid("dedup").collect();
                 }});
  out.push_back({"top_n", 1, 1200, 60, [](Environment&, const std::vector<DataStream>& in) {
                   return in[0].key_by("key").top_n("v", 3).uid("top").collect();
                 }});
  out.push_back(
      {"rolling_reduce", 1, 1200, 60, [](Environment&, const std::vector<DataStream>& in) {
         return in[0]
             .key_by("key")
             .reduce<Row>([](const Row& acc, const Row& next) {
               return Row{acc.key, next.ts, acc.v + next.v};
             })
             .uid("reduce")
             .collect();
       }});
  out.push_back(
      {"rolling_aggregate", 1, 1200, 60, [](Environment&, const std::vector<DataStream>& in) {
         return in[0]
             .key_by("key")
             .aggregate<Row, KeyTotal, KeyTotal>(TotalFn{})
             .uid("aggregate")
             .collect();
       }});
  out.push_back(
      {"process_event_timers", 1, 1200, 60, [](Environment&, const std::vector<DataStream>& in) {
         return in[0]
             .key_by("key")
             .process(DelayedSum{}, {.time_column = "ts"})
             .uid("process")
             .collect();
       }});
  return out;
}

struct Param {
  Case c;
  int p;
  int q;
  BackendKind backend;
};

void PrintTo(const Param& p, std::ostream* os) {
  *os << p.c.name << " " << p.p << " -> " << p.q << " on ";
  state::testing::PrintTo(p.backend, os);
}

class StateConformance : public ::testing::TestWithParam<Param> {};

TEST_P(StateConformance, InterruptedAndRestoredOutputEqualsUninterruptedRun) {
  const Param& param = GetParam();
  for (uint64_t seed : {11u, 12u}) check_case(param.c, param.p, param.q, seed, param.backend);
}

std::vector<Param> params() {
  std::vector<Param> out;
  for (const Case& c : cases()) {
    for (BackendKind b : {BackendKind::kMemory, BackendKind::kRocksDb}) {
      for (auto [p, q] : {std::pair{2, 2}, std::pair{1, 3}, std::pair{3, 2}})
        out.push_back({c, p, q, b});
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Operators, StateConformance, ::testing::ValuesIn(params()),
                         [](const ::testing::TestParamInfo<Param>& info) {
                           return info.param.c.name + "_" + std::to_string(info.param.p) + "_to_" +
                                  std::to_string(info.param.q) +
                                  (info.param.backend == BackendKind::kMemory ? "_Memory"
                                                                              : "_RocksDb");
                         });

}  // namespace
}  // namespace sabot
