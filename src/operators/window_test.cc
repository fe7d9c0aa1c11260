#include "sabot/operators/window.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>

#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "sabot/api/environment.h"
#include "sabot/base/arith.h"
#include "sabot/columnar/builder.h"
#include "sabot/compute/hash.h"
#include "sabot/compute/selection.h"
#include "sabot/operators/keyed_process.h"
#include "sabot/runtime/metrics.h"
#include "sabot/state/backend_testing.h"
#include "sabot/state/keyed_snapshot_reader.h"
#include "sabot/state/rocksdb_backend.h"
#include "sabot/state/snapshot.h"

namespace sabot::operators {
namespace {

using columnar::Array;
using columnar::RecordBatch;
using columnar::SchemaPtr;
using std::chrono::milliseconds;

SchemaPtr input_schema() {
  return columnar::schema({columnar::field("k", columnar::int64()),
                           columnar::field("ts", columnar::timestamp(columnar::TimeUnit::kMilli)),
                           columnar::field("v", columnar::int64())});
}

struct Event {
  int64_t k, ts, v;
};

RecordBatch make_batch(const std::vector<Event>& ev, size_t from, size_t to, int64_t pad) {
  // Built with `pad` extra rows on each side and sliced, so that columns have non-zero offsets.
  columnar::Int64Builder k, v;
  columnar::Int64Builder ts(columnar::timestamp(columnar::TimeUnit::kMilli));
  for (int64_t p = 0; p < pad; ++p) {
    k.append(-1);
    ts.append(0);
    v.append(0);
  }
  for (size_t i = from; i < to; ++i) {
    k.append(ev[i].k);
    ts.append(ev[i].ts);
    v.append(ev[i].v);
  }
  for (int64_t p = 0; p < pad; ++p) {
    k.append(-1);
    ts.append(0);
    v.append(0);
  }
  auto b = RecordBatch::make(input_schema(), {k.finish(), ts.finish(), v.finish()}).value();
  return b.slice(pad, static_cast<int64_t>(to - from));
}

// A result row: key, start, end (INT64_MIN for null), count, sum, min, max, final.
using Row = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool>;

struct RecordingOutput final : runtime::Output {
  std::vector<RecordBatch> batches;
  std::vector<RecordBatch> late;
  Status emit(const RecordBatch& b) override {
    batches.push_back(b);
    return Status::ok();
  }
  Status emit_watermark(Timestamp) override { return Status::ok(); }
  Status emit_side(std::string_view tag, const RecordBatch& b) override {
    EXPECT_EQ(tag, "late");
    late.push_back(b);
    return Status::ok();
  }
};

std::vector<Row> rows_of(const std::vector<RecordBatch>& batches) {
  std::vector<Row> out;
  for (const RecordBatch& b : batches) {
    const Array& k = b.column(0);
    const Array& s = b.column(1);
    const Array& e = b.column(2);
    int fin = b.schema().field_index("is_final");
    for (int64_t i = 0; i < b.num_rows(); ++i) {
      out.emplace_back(k.value<int64_t>(i), s.is_null(i) ? INT64_MIN : s.value<int64_t>(i),
                       e.is_null(i) ? INT64_MIN : e.value<int64_t>(i),
                       b.column(3).value<int64_t>(i), b.column(4).value<int64_t>(i),
                       b.column(5).value<int64_t>(i), b.column(6).value<int64_t>(i),
                       fin < 0 ? true : b.column(fin).bool_value(i));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<compute::Aggregate> test_aggregates() {
  return {compute::count_all().as("n"), compute::sum("v").as("s"), compute::min("v").as("lo"),
          compute::max("v").as("hi")};
}

// ---- the row-at-a-time reference model ----

struct Agg {
  int64_t n = 0, s = 0, lo = INT64_MAX, hi = INT64_MIN;
  void add(int64_t v) {
    ++n;
    s += v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  void merge(const Agg& o) {
    n += o.n;
    s += o.s;
    lo = std::min(lo, o.lo);
    hi = std::max(hi, o.hi);
  }
};

class Reference {
 public:
  Reference(WindowSpec spec, int64_t lateness) : spec_(spec), lateness_(lateness) {}

  // One batch: rows one at a time, then the re-fires of windows that had already fired.
  void batch(const std::vector<Event>& ev, size_t from, size_t to) {
    std::set<std::pair<int64_t, int64_t>> refire;  // (key, start) / session key
    std::set<int64_t> touched;
    for (size_t i = from; i < to; ++i) {
      const Event& e = ev[i];
      bool timed =
          spec_.kind != WindowSpec::Kind::kCount && spec_.kind != WindowSpec::Kind::kGlobal;
      if (timed && e.ts <= sat(wm_ - lateness_)) {
        ++late;
        continue;
      }
      switch (spec_.kind) {
        case WindowSpec::Kind::kTumbling:
        case WindowSpec::Kind::kSliding: {
          int64_t size = spec_.size.count(), slide = spec_.slide.count();
          for (int64_t s = fdiv(e.ts, slide) * slide; s > e.ts - size; s -= slide) {
            windows_[{e.k, s}].add(e.v);
            if (s + size - 1 <= wm_) refire.insert({e.k, s});
          }
          break;
        }
        case WindowSpec::Kind::kSession: {
          int64_t gap = spec_.gap.count();
          auto& list = sessions_[e.k];
          RSession merged{e.ts, e.ts + gap, {}, false};
          merged.agg.add(e.v);
          std::vector<RSession> rest;
          for (RSession& s : list) {
            if (s.start < merged.end && merged.start < s.end) {
              merged.start = std::min(merged.start, s.start);
              merged.end = std::max(merged.end, s.end);
              merged.agg.merge(s.agg);
            } else {
              rest.push_back(s);
            }
          }
          // Absorbing may make the merged session overlap more: repeat until stable.
          bool changed = true;
          while (changed) {
            changed = false;
            for (size_t j = 0; j < rest.size(); ++j) {
              if (rest[j].start < merged.end && merged.start < rest[j].end) {
                merged.start = std::min(merged.start, rest[j].start);
                merged.end = std::max(merged.end, rest[j].end);
                merged.agg.merge(rest[j].agg);
                rest.erase(rest.begin() + static_cast<ptrdiff_t>(j));
                changed = true;
                break;
              }
            }
          }
          merged.dirty = true;
          rest.push_back(merged);
          list = rest;
          touched.insert(e.k);
          break;
        }
        case WindowSpec::Kind::kCount: {
          auto& d = counts_[e.k];
          d.push_back(e.v);
          if (static_cast<int64_t>(d.size()) > spec_.count) d.pop_front();
          int64_t c = ++seen_[e.k];
          if (c % spec_.count_slide == 0) {
            Agg a;
            for (int64_t v : d) a.add(v);
            out.emplace_back(e.k, INT64_MIN, INT64_MIN, a.n, a.s, a.lo, a.hi, true);
          }
          break;
        }
        case WindowSpec::Kind::kGlobal:
          global_[e.k].add(e.v);
          break;
      }
    }
    for (auto [k, s] : refire) {
      emit_window(k, s, true);
      fired_.insert({k, s});
    }
    for (int64_t k : touched) {
      for (RSession& s : sessions_[k]) {
        if (!s.dirty) continue;
        s.dirty = false;
        s.fired = s.end - 1 <= wm_;
        if (s.fired)
          out.emplace_back(k, s.start, s.end, s.agg.n, s.agg.s, s.agg.lo, s.agg.hi, true);
      }
    }
  }

  void watermark(int64_t wm) {
    if (wm <= wm_) return;
    wm_ = wm;
    int64_t thr = sat(wm_ - lateness_);
    if (wm == INT64_MAX) thr = INT64_MAX;
    switch (spec_.kind) {
      case WindowSpec::Kind::kTumbling:
      case WindowSpec::Kind::kSliding: {
        int64_t size = spec_.size.count();
        for (auto it = windows_.begin(); it != windows_.end();) {
          auto [k, s] = it->first;
          if (!fired_.count(it->first) && s + size - 1 <= wm_) {
            emit_window(k, s, true);
            fired_.insert(it->first);
          }
          if (s + size - 1 <= thr) {
            fired_.erase(it->first);
            it = windows_.erase(it);
          } else {
            ++it;
          }
        }
        break;
      }
      case WindowSpec::Kind::kSession:
        for (auto& [k, list] : sessions_) {
          std::vector<RSession> keep;
          for (RSession& s : list) {
            if (!s.fired && s.end - 1 <= wm_) {
              out.emplace_back(k, s.start, s.end, s.agg.n, s.agg.s, s.agg.lo, s.agg.hi, true);
              s.fired = true;
            }
            if (s.end - 1 > thr) keep.push_back(s);
          }
          list = keep;
        }
        break;
      case WindowSpec::Kind::kCount:
        break;
      case WindowSpec::Kind::kGlobal:
        if (wm == INT64_MAX) {
          for (auto& [k, a] : global_)
            out.emplace_back(k, INT64_MIN, INT64_MIN, a.n, a.s, a.lo, a.hi, true);
          global_.clear();
        }
        break;
    }
  }

  // Current results of windows that have not fired (early firing).
  void early() {
    if (spec_.kind == WindowSpec::Kind::kTumbling || spec_.kind == WindowSpec::Kind::kSliding) {
      for (auto& [ks, a] : windows_) {
        if (fired_.count(ks)) continue;
        out.emplace_back(ks.first, ks.second, ks.second + spec_.size.count(), a.n, a.s, a.lo, a.hi,
                         false);
      }
    }
  }

  std::vector<Row> out;
  int64_t late = 0;

 private:
  struct RSession {
    int64_t start, end;
    Agg agg;
    bool fired;
    bool dirty = false;
  };
  static int64_t fdiv(int64_t a, int64_t b) {
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
  }
  static int64_t sat(int64_t x) { return x; }
  void emit_window(int64_t k, int64_t s, bool fin) {
    const Agg& a = windows_[{k, s}];
    out.emplace_back(k, s, s + spec_.size.count(), a.n, a.s, a.lo, a.hi, fin);
  }

  WindowSpec spec_;
  int64_t lateness_;
  int64_t wm_ = INT64_MIN / 2;  // far below any test time, and no overflow in wm - lateness
  std::map<std::pair<int64_t, int64_t>, Agg> windows_;
  std::set<std::pair<int64_t, int64_t>> fired_;
  std::map<int64_t, std::vector<RSession>> sessions_;
  std::map<int64_t, std::deque<int64_t>> counts_;
  std::map<int64_t, int64_t> seen_;
  std::map<int64_t, Agg> global_;
};

// Events with times that grow, shuffled within `bound`, plus a share of far-late events.
std::vector<Event> random_events(std::mt19937_64& rng, int n, int keys, int64_t bound,
                                 double late_share) {
  std::vector<Event> ev;
  int64_t base = 1'000'000;
  for (int i = 0; i < n; ++i) {
    base += static_cast<int64_t>(rng() % 7);
    ev.push_back(
        {static_cast<int64_t>(rng() % keys), base, static_cast<int64_t>(rng() % 2001) - 1000});
  }
  // Shuffle within the out-of-orderness window: swap with a near neighbour whose time is close.
  for (int i = 0; i + 1 < n; ++i) {
    int j = i + static_cast<int>(rng() % 8);
    if (j < n && std::llabs(ev[j].ts - ev[i].ts) < bound) std::swap(ev[i], ev[j]);
  }
  for (auto& e : ev) {
    if (std::uniform_real_distribution<double>(0, 1)(rng) < late_share) e.ts -= bound * 4;
  }
  return ev;
}

struct Scenario {
  WindowSpec spec;
  int64_t lateness = 0;
  LatePolicy policy = LatePolicy::kDrop;
  // Keys that come and go with time (about 5 live at a time, hundreds over the run), so that the
  // operator forgets dead keys and renumbers the live ones while windows are open.
  bool drifting_keys = false;
};

// `backend`: the job's state backend (null: memory).
std::unique_ptr<runtime::Operator> make_op(const WindowOptions& o, runtime::OperatorCounters* c,
                                           const Clock* clock = &SystemClock::instance(),
                                           const state::StateBackend* backend = nullptr) {
  auto f = window_aggregate(o);
  std::vector<SchemaPtr> in{input_schema()};
  runtime::OperatorContext ctx;
  ctx.counters = c;
  ctx.clock = clock;
  ctx.state_backend = backend;
  auto op = f->create(in, ctx);
  EXPECT_TRUE(op.is_ok()) << op.status().to_string();
  EXPECT_TRUE((*op)->open(ctx).is_ok());
  return std::move(*op);
}

// Drives the operator directly: random batch sizes and slices, watermarks max_seen - bound after
// random batches, end of input; optionally snapshot + restore into a fresh operator at `cut`.
void run_scenario(const Scenario& sc, uint64_t seed, bool check_snapshot,
                  const state::StateBackend* backend = nullptr) {
  std::mt19937_64 rng(seed);
  const int64_t bound = 40;
  int n = 200 + static_cast<int>(rng() % 2000);
  int keys = 1 + static_cast<int>(rng() % 20);
  auto ev = random_events(rng, n, keys, bound, 0.03);
  if (sc.drifting_keys) {
    for (Event& e : ev) e.k = (e.ts / 100) * 5 + e.k % 5;
  }
  WindowOptions o;
  o.spec = sc.spec;
  o.key_columns = {"k"};
  o.time_column = "ts";
  o.aggregates = test_aggregates();
  o.allowed_lateness = milliseconds(sc.lateness);
  o.late = sc.policy;

  // The schedule: batch ends and whether a watermark follows.
  std::vector<std::pair<size_t, bool>> steps;
  for (size_t i = 0; i < ev.size();) {
    size_t len = 1 + rng() % 60;
    i = std::min(ev.size(), i + len);
    steps.emplace_back(i, rng() % 3 == 0);
  }
  size_t cut = rng() % steps.size();

  Reference ref(sc.spec, sc.lateness);
  runtime::OperatorCounters ca, cb;
  auto a = make_op(o, &ca, &SystemClock::instance(), backend);
  auto b = make_op(o, &cb, &SystemClock::instance(), backend);
  RecordingOutput oa, ob;
  size_t from = 0;
  int64_t max_seen = INT64_MIN;
  for (size_t si = 0; si < steps.size(); ++si) {
    auto [to, wm] = steps[si];
    RecordBatch batch = make_batch(ev, from, to, static_cast<int64_t>(rng() % 3));
    ref.batch(ev, from, to);
    ASSERT_TRUE(a->process_batch(batch, 0, oa).is_ok());
    ASSERT_TRUE(b->process_batch(batch, 0, ob).is_ok());
    for (size_t i = from; i < to; ++i) max_seen = std::max(max_seen, ev[i].ts);
    from = to;
    if (wm) {
      ref.watermark(max_seen - bound);
      ASSERT_TRUE(a->process_watermark(Timestamp(max_seen - bound), oa).is_ok());
      ASSERT_TRUE(b->process_watermark(Timestamp(max_seen - bound), ob).is_ok());
    }
    if (check_snapshot && si == cut) {
      std::string state;
      ASSERT_TRUE(b->snapshot_state(CheckpointId(1), &state).is_ok());
      b = make_op(o, &cb, &SystemClock::instance(), backend);
      Status restored = b->restore_state(state);
      ASSERT_TRUE(restored.is_ok()) << restored.to_string();
    }
  }
  ref.watermark(INT64_MAX);
  ASSERT_TRUE(a->process_watermark(Timestamp::max(), oa).is_ok());
  ASSERT_TRUE(a->finish(oa).is_ok());
  ASSERT_TRUE(b->process_watermark(Timestamp::max(), ob).is_ok());
  ASSERT_TRUE(b->finish(ob).is_ok());

  std::sort(ref.out.begin(), ref.out.end());
  auto got = rows_of(oa.batches);
  ASSERT_EQ(got.size(), ref.out.size()) << "seed " << seed;
  EXPECT_EQ(got, ref.out) << "seed " << seed;
  EXPECT_EQ(rows_of(ob.batches), got) << "snapshot/restore changed the output, seed " << seed;
  int64_t late_rows = 0;
  for (auto& l : oa.late) late_rows += l.num_rows();
  if (sc.policy == LatePolicy::kSideOutput) {
    EXPECT_EQ(late_rows, ref.late);
  } else {
    EXPECT_EQ(late_rows, 0);
  }
  if (sc.spec.kind != WindowSpec::Kind::kCount && sc.spec.kind != WindowSpec::Kind::kGlobal) {
    EXPECT_EQ(ca.records_dropped.load(), ref.late);
  }
}

TEST(WindowAggregate, TumblingMatchesReferenceOnRandomOutOfOrderData) {
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    run_scenario({WindowSpec::tumbling(milliseconds(50))}, seed, true);
  }
}

TEST(WindowAggregate, SlidingWithPanesMatchesReference) {
  for (uint64_t seed = 20; seed <= 30; ++seed) {
    run_scenario({WindowSpec::sliding(milliseconds(100), milliseconds(30))}, seed, true);
    run_scenario({WindowSpec::sliding(milliseconds(60), milliseconds(20))}, seed + 100, true);
  }
}

TEST(WindowAggregate, SessionsMergeLikeTheReference) {
  for (uint64_t seed = 40; seed <= 52; ++seed) {
    run_scenario({WindowSpec::session(milliseconds(5 + static_cast<int64_t>(seed % 4) * 10))}, seed,
                 true);
  }
}

TEST(WindowAggregate, ForgettingDeadKeysKeepsResultsEqualToTheReference) {
  for (uint64_t seed = 200; seed <= 210; ++seed) {
    Scenario tumbling{WindowSpec::tumbling(milliseconds(50))};
    Scenario sliding{WindowSpec::sliding(milliseconds(100), milliseconds(30))};
    Scenario sessions{WindowSpec::session(milliseconds(15))};
    Scenario late{WindowSpec::tumbling(milliseconds(40)), 60, LatePolicy::kSideOutput};
    for (Scenario* sc : {&tumbling, &sliding, &sessions, &late}) {
      sc->drifting_keys = true;
      run_scenario(*sc, seed, true);
    }
  }
}

// A window over an endless stream of new keys (each key seen in one window only) keeps state for
// the open windows only: its snapshot, which holds the key dictionary, stops growing. The
// watermark trails by one window, so that thousands of keys are live whenever dead ones are
// forgotten (the live keys' panes are renumbered while they are open).
TEST(WindowAggregate, StateStaysBoundedWhenKeysComeAndGo) {
  WindowOptions o;
  o.spec = WindowSpec::tumbling(milliseconds(100));
  o.key_columns = {"k"};
  o.time_column = "ts";
  o.aggregates = test_aggregates();
  runtime::OperatorCounters c;
  auto op = make_op(o, &c);
  RecordingOutput out;
  // Largest snapshot among windows [10, 30) and among the last 20: dead keys and groups are
  // dropped in amortized steps, so the size saws up and down; its peak must not grow.
  size_t early_peak = 0, late_peak = 0;
  constexpr int64_t kKeysPerWindow = 1'500;
  constexpr int64_t kWindows = 150;
  int64_t next_key = 0;
  for (int64_t w = 0; w < kWindows; ++w) {
    std::vector<Event> ev;
    for (int64_t i = 0; i < kKeysPerWindow; ++i) ev.push_back({next_key++, w * 100 + i % 100, i});
    ASSERT_TRUE(op->process_batch(make_batch(ev, 0, ev.size(), 0), 0, out).is_ok());
    ASSERT_TRUE(op->process_watermark(Timestamp(w * 100 - 1), out).is_ok());
    if ((w >= 10 && w < 30) || w >= kWindows - 20) {
      std::string state;
      ASSERT_TRUE(op->snapshot_state(CheckpointId(w), &state).is_ok());
      size_t& peak = w < 30 ? early_peak : late_peak;
      peak = std::max(peak, state.size());
    }
  }
  ASSERT_TRUE(op->process_watermark(Timestamp::max(), out).is_ok());
  // 225,000 keys went through; the state at the end is no larger than after 30 windows.
  EXPECT_LE(late_peak, early_peak * 5 / 4)
      << "peak snapshot " << early_peak << " bytes early, " << late_peak << " late";
  // Every key once, in its own window, with its own value.
  auto rows = rows_of(out.batches);
  ASSERT_EQ(rows.size(), static_cast<size_t>(kKeysPerWindow * kWindows));
  for (const Row& r : rows) {
    const int64_t key = std::get<0>(r);
    EXPECT_EQ(std::get<1>(r), key / kKeysPerWindow * 100) << "key " << key;
    EXPECT_EQ(std::get<3>(r), 1) << "key " << key;
    EXPECT_EQ(std::get<4>(r), key % kKeysPerWindow) << "key " << key;
  }
}

TEST(WindowAggregate, CountWindowsTumblingAndSliding) {
  for (uint64_t seed = 60; seed <= 66; ++seed) {
    run_scenario({WindowSpec::count_window(7)}, seed, true);
    run_scenario({WindowSpec::count_window(6, 4)}, seed + 100, true);
  }
}

TEST(WindowAggregate, GlobalWindowFiresOnlyAtEndOfInput) {
  for (uint64_t seed = 70; seed <= 73; ++seed) {
    run_scenario({WindowSpec::global_window()}, seed, true);
  }
}

TEST(WindowAggregate, AllowedLatenessRefiresUpdatedWindows) {
  for (uint64_t seed = 80; seed <= 90; ++seed) {
    run_scenario({WindowSpec::tumbling(milliseconds(50)), 100, LatePolicy::kSideOutput}, seed,
                 true);
    run_scenario({WindowSpec::sliding(milliseconds(90), milliseconds(30)), 80}, seed + 50, true);
    run_scenario({WindowSpec::session(milliseconds(15)), 120, LatePolicy::kSideOutput}, seed + 90,
                 true);
  }
}

TEST(WindowAggregate, LateRowsGoToSideOutputOrAreDroppedAndCounted) {
  for (uint64_t seed = 100; seed <= 105; ++seed) {
    run_scenario({WindowSpec::tumbling(milliseconds(20)), 0, LatePolicy::kSideOutput}, seed, false);
    run_scenario({WindowSpec::tumbling(milliseconds(20)), 0, LatePolicy::kDrop}, seed, false);
  }
}

TEST(WindowAggregate, HandComputedTumblingExample) {
  WindowOptions o;
  o.spec = WindowSpec::tumbling(milliseconds(10));
  o.key_columns = {"k"};
  o.time_column = "ts";
  o.aggregates = test_aggregates();
  runtime::OperatorCounters c;
  auto op = make_op(o, &c);
  RecordingOutput out;
  std::vector<Event> ev = {{1, 0, 5}, {1, 9, 7}, {2, 3, -1}, {1, 10, 100}, {2, 25, 4}};
  ASSERT_TRUE(op->process_batch(make_batch(ev, 0, ev.size(), 0), 0, out).is_ok());
  ASSERT_TRUE(op->process_watermark(Timestamp(8), out).is_ok());
  EXPECT_TRUE(out.batches.empty()) << "window [0,10) must not fire before watermark 9";
  ASSERT_TRUE(op->process_watermark(Timestamp(9), out).is_ok());
  auto rows = rows_of(out.batches);
  std::vector<Row> want = {{1, 0, 10, 2, 12, 5, 7, true}, {2, 0, 10, 1, -1, -1, -1, true}};
  EXPECT_EQ(rows, want);
  ASSERT_TRUE(out.batches[0].schema().field(1).name == "window_start");
  ASSERT_TRUE(op->process_watermark(Timestamp::max(), out).is_ok());
  rows = rows_of(out.batches);
  EXPECT_EQ(rows.size(), 4u);
}

TEST(WindowAggregate, EarlyFiringEmitsPartialResultsOnProcessingTime) {
  ManualClock clock(Timestamp(1000));
  WindowOptions o;
  o.spec = WindowSpec::tumbling(milliseconds(100));
  o.key_columns = {"k"};
  o.time_column = "ts";
  o.aggregates = test_aggregates();
  o.early_fire_every = milliseconds(50);
  runtime::OperatorCounters c;
  auto op = make_op(o, &c, &clock);
  std::mt19937_64 rng(7);
  auto ev = random_events(rng, 600, 5, 10, 0);
  Reference ref(o.spec, 0);
  RecordingOutput out;
  size_t from = 0;
  int64_t max_seen = 0;
  while (from < ev.size()) {
    size_t to = std::min(ev.size(), from + 1 + rng() % 40);
    clock.advance_millis(static_cast<int64_t>(rng() % 40));
    ref.batch(ev, from, to);
    ASSERT_TRUE(op->process_batch(make_batch(ev, from, to, 1), 0, out).is_ok());
    for (size_t i = from; i < to; ++i) max_seen = std::max(max_seen, ev[i].ts);
    from = to;
    ref.watermark(max_seen - 10);
    ASSERT_TRUE(op->process_watermark(Timestamp(max_seen - 10), out).is_ok());
  }
  // Recompute the reference's early firings by replaying the same clock: simpler to check the
  // properties: every partial row is bounded by the final row of its window, and finals match.
  ref.watermark(INT64_MAX);
  ASSERT_TRUE(op->process_watermark(Timestamp::max(), out).is_ok());
  auto rows = rows_of(out.batches);
  std::vector<Row> finals, partials;
  for (auto& r : rows) (std::get<7>(r) ? finals : partials).push_back(r);
  std::sort(ref.out.begin(), ref.out.end());
  EXPECT_EQ(finals, ref.out);
  EXPECT_FALSE(partials.empty());
  std::map<std::tuple<int64_t, int64_t>, int64_t> final_count;
  for (auto& r : finals) final_count[{std::get<0>(r), std::get<1>(r)}] = std::get<3>(r);
  for (auto& r : partials) {
    auto it = final_count.find({std::get<0>(r), std::get<1>(r)});
    ASSERT_NE(it, final_count.end());
    EXPECT_LE(std::get<3>(r), it->second);
  }
}

TEST(WindowAggregate, EarlyFiringMatchesOpenWindowsExactly) {
  ManualClock clock(Timestamp(0));
  WindowOptions o;
  o.spec = WindowSpec::sliding(milliseconds(40), milliseconds(20));
  o.key_columns = {"k"};
  o.time_column = "ts";
  o.aggregates = test_aggregates();
  o.early_fire_every = milliseconds(100);
  runtime::OperatorCounters c;
  auto op = make_op(o, &c, &clock);
  std::mt19937_64 rng(11);
  auto ev = random_events(rng, 300, 4, 5, 0);
  Reference ref(o.spec, 0);
  RecordingOutput out;
  ref.batch(ev, 0, 150);
  ASSERT_TRUE(op->process_batch(make_batch(ev, 0, 150, 0), 0, out).is_ok());
  EXPECT_TRUE(out.batches.empty());  // clock has not moved
  ref.watermark(ev[100].ts);
  ASSERT_TRUE(op->process_watermark(Timestamp(ev[100].ts), out).is_ok());
  clock.advance_millis(100);
  ref.early();
  ASSERT_TRUE(op->process_batch(make_batch(ev, 0, 0, 0), 0, out).is_ok());
  std::sort(ref.out.begin(), ref.out.end());
  EXPECT_EQ(rows_of(out.batches), ref.out);
}

TEST(WindowAggregate, UserDefinedAggregateFunction) {
  // Sum of squares as a UDAF next to the built-in count.
  auto sum_sq = make_aggregate_function<int64_t>(
      "sum_sq", "v", columnar::int64(), 0,
      [](int64_t& acc, const columnar::Scalar& v) {
        if (v.is_valid) acc += v.as_int64() * v.as_int64();
      },
      [](int64_t& acc, const int64_t& o) { acc += o; },
      [](const int64_t& acc) { return columnar::Scalar::of_int64(acc); });
  WindowOptions o;
  o.spec = WindowSpec::sliding(milliseconds(30), milliseconds(10));
  o.key_columns = {"k"};
  o.time_column = "ts";
  o.aggregates = {compute::count_all().as("n")};
  o.functions = {sum_sq};
  runtime::OperatorCounters c;
  auto op = make_op(o, &c);
  std::mt19937_64 rng(3);
  auto ev = random_events(rng, 500, 3, 1, 0);
  std::map<std::pair<int64_t, int64_t>, std::pair<int64_t, int64_t>> want;
  for (auto& e : ev) {
    for (int64_t s = e.ts / 10 * 10; s > e.ts - 30; s -= 10) {
      want[{e.k, s}].first++;
      want[{e.k, s}].second += e.v * e.v;
    }
  }
  RecordingOutput out;
  ASSERT_TRUE(op->process_batch(make_batch(ev, 0, 250, 0), 0, out).is_ok());
  std::string state;
  ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &state).is_ok());
  op = make_op(o, &c);
  ASSERT_TRUE(op->restore_state(state).is_ok());
  ASSERT_TRUE(op->process_batch(make_batch(ev, 250, ev.size(), 2), 0, out).is_ok());
  ASSERT_TRUE(op->process_watermark(Timestamp::max(), out).is_ok());
  std::map<std::pair<int64_t, int64_t>, std::pair<int64_t, int64_t>> got;
  for (auto& b : out.batches) {
    ASSERT_EQ(b.schema().field(4).name, "sum_sq");
    for (int64_t i = 0; i < b.num_rows(); ++i) {
      got[{b.column(0).value<int64_t>(i), b.column(1).value<int64_t>(i)}] = {
          b.column(3).value<int64_t>(i), b.column(4).value<int64_t>(i)};
    }
  }
  EXPECT_EQ(got, want);
}

TEST(WindowProcess, FunctionSeesAllRowsOfEachWindow) {
  auto out_schema = columnar::schema(
      {columnar::field("k", columnar::int64()), columnar::field("start", columnar::int64()),
       columnar::field("rows", columnar::int64()), columnar::field("first_v", columnar::int64())});
  WindowOptions o;
  o.spec = WindowSpec::tumbling(milliseconds(25));
  o.key_columns = {"k"};
  o.time_column = "ts";
  auto f = window_process(
      o, out_schema,
      [out_schema](const WindowInfo& w, const RecordBatch& r) -> Result<RecordBatch> {
        columnar::Int64Builder k, s, n, fv;
        k.append(w.key[0].as_int64());
        s.append(w.start_ms);
        n.append(r.num_rows());
        fv.append(r.column(2).value<int64_t>(0));
        return RecordBatch::make(out_schema, {k.finish(), s.finish(), n.finish(), fv.finish()});
      });
  std::vector<SchemaPtr> in{input_schema()};
  runtime::OperatorContext ctx;
  auto op = f->create(in, ctx).value();
  std::mt19937_64 rng(5);
  auto ev = random_events(rng, 400, 4, 1, 0);
  std::map<std::pair<int64_t, int64_t>, std::pair<int64_t, int64_t>> want;  // rows, first v
  for (auto& e : ev) {
    auto& w = want[{e.k, e.ts / 25 * 25}];
    if (w.first++ == 0) w.second = e.v;
  }
  RecordingOutput out;
  ASSERT_TRUE(op->process_batch(make_batch(ev, 0, 200, 1), 0, out).is_ok());
  std::string state;
  ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &state).is_ok());
  op = f->create(in, ctx).value();
  ASSERT_TRUE(op->restore_state(state).is_ok());
  ASSERT_TRUE(op->process_batch(make_batch(ev, 200, ev.size(), 0), 0, out).is_ok());
  ASSERT_TRUE(op->finish(out).is_ok());
  std::map<std::pair<int64_t, int64_t>, std::pair<int64_t, int64_t>> got;
  for (auto& b : out.batches) {
    for (int64_t i = 0; i < b.num_rows(); ++i) {
      got[{b.column(0).value<int64_t>(i), b.column(1).value<int64_t>(i)}] = {
          b.column(2).value<int64_t>(i), b.column(3).value<int64_t>(i)};
    }
  }
  EXPECT_EQ(got, want);
}

TEST(WindowAggregate, ValidationNamesTheProblem) {
  std::vector<SchemaPtr> in{input_schema()};
  WindowOptions o;
  o.spec = WindowSpec::tumbling(milliseconds(10));
  o.key_columns = {"k"};
  o.time_column = "v2";
  auto r = window_aggregate(o)->output_schema(in);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("v2"), std::string::npos);
  o.time_column = "k";
  o.key_columns = {};
  o.aggregates = {compute::sum("ts")};
  EXPECT_FALSE(window_aggregate(o)->output_schema(in).is_ok());
  o.aggregates = {};
  o.spec = WindowSpec::sliding(milliseconds(10), milliseconds(20));
  EXPECT_FALSE(window_aggregate(o)->output_schema(in).is_ok());
  o.spec = WindowSpec::tumbling(milliseconds(10));
  runtime::OperatorContext ctx;
  ctx.parallelism = 2;
  auto op = window_aggregate(o)->create(in, ctx);
  ASSERT_FALSE(op.is_ok());
  EXPECT_NE(op.status().message().find("parallelism"), std::string::npos);
  auto schema = window_aggregate(o)->output_schema(in).value();
  EXPECT_EQ(schema->field(0).name, "window_start");
}

// ---- snapshots split by key group: restore at another parallelism ----

// Every column of every row as text, sorted: compares whole outputs (UDAF and process-function
// columns included) between two runs.
std::vector<std::string> text_rows(const std::vector<RecordBatch>& batches) {
  std::vector<std::string> out;
  for (const RecordBatch& b : batches) {
    for (int64_t i = 0; i < b.num_rows(); ++i) {
      std::string row;
      for (int c = 0; c < b.num_columns(); ++c) row += b.column(c).scalar_at(i).to_string() + "|";
      out.push_back(std::move(row));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

AggregateFunction sum_of_squares() {
  return make_aggregate_function<int64_t>(
      "sum_sq", "v", columnar::int64(), 0,
      [](int64_t& acc, const columnar::Scalar& v) {
        if (v.is_valid) acc += v.as_int64() * v.as_int64();
      },
      [](int64_t& acc, const int64_t& o) { acc += o; },
      [](const int64_t& acc) { return columnar::Scalar::of_int64(acc); });
}

// A window function with the output of test_aggregates(): count, sum, min, max of v over the
// window's rows, so that the reference model checks it too.
std::shared_ptr<const runtime::OperatorFactory> process_like_aggregates(const WindowOptions& o) {
  auto out_schema = columnar::schema(
      {columnar::field("k", columnar::int64()),
       columnar::field("window_start", columnar::timestamp(columnar::TimeUnit::kMilli)),
       columnar::field("window_end", columnar::timestamp(columnar::TimeUnit::kMilli)),
       columnar::field("n", columnar::int64()), columnar::field("s", columnar::int64()),
       columnar::field("lo", columnar::int64()), columnar::field("hi", columnar::int64())});
  return window_process(
      o, out_schema,
      [out_schema](const WindowInfo& w, const RecordBatch& r) -> Result<RecordBatch> {
        Agg a;
        for (int64_t i = 0; i < r.num_rows(); ++i) a.add(r.column(2).value<int64_t>(i));
        columnar::Int64Builder k, n, s, lo, hi;
        columnar::Int64Builder start(columnar::timestamp(columnar::TimeUnit::kMilli));
        columnar::Int64Builder end(columnar::timestamp(columnar::TimeUnit::kMilli));
        k.append(w.key[0].as_int64());
        for (auto [b, v] : {std::pair{&start, w.start_ms}, std::pair{&end, w.end_ms}}) {
          if (v == INT64_MIN) {
            b->append_null();
          } else {
            b->append(v);
          }
        }
        n.append(a.n);
        s.append(a.s);
        lo.append(a.lo);
        hi.append(a.hi);
        return RecordBatch::make(out_schema, {k.finish(), start.finish(), end.finish(), n.finish(),
                                              s.finish(), lo.finish(), hi.finish()});
      });
}

struct RescaleCase {
  WindowSpec spec;
  int before = 3;  // subtasks that run up to the snapshot
  int after = 2;   // subtasks that restore from all their snapshots and continue
  int64_t lateness = 0;
  std::optional<milliseconds> early_fire{};
  bool udaf = false;
  bool process = false;
  bool drifting_keys = false;
};

constexpr int kMaxP = 128;

// Rows of `batch` per subtask of `p`, by the key group of column k (as the keyed exchange routes).
std::vector<RecordBatch> route(const RecordBatch& batch, int p) {
  std::vector<uint64_t> hashes;
  EXPECT_TRUE(compute::hash_columns(std::span<const Array>(&batch.column(0), 1), &hashes).is_ok());
  std::vector<std::vector<int32_t>> rows(static_cast<size_t>(p));
  for (int64_t i = 0; i < batch.num_rows(); ++i) {
    int kg = static_cast<int>(compute::key_group_of(hashes[static_cast<size_t>(i)], kMaxP));
    rows[static_cast<size_t>(subtask_for_key_group(kg, p, kMaxP))].push_back(
        static_cast<int32_t>(i));
  }
  std::vector<RecordBatch> out;
  for (auto& r : rows) out.push_back(compute::take(batch, r).value());
  return out;
}

// P subtask instances fed the rows of their key groups, snapshots at a random step, Q fresh
// instances each restored from all P snapshots (in a random order) and fed the rest: the output
// equals one uninterrupted instance's (every column, partial early firings included) and, for the
// final results, the reference model's.
void run_rescale(const RescaleCase& c, uint64_t seed,
                 const state::StateBackend* backend = nullptr) {
  SCOPED_TRACE("seed " + std::to_string(seed) + ", " + std::to_string(c.before) + " -> " +
               std::to_string(c.after) + " subtasks");
  std::mt19937_64 rng(seed);
  const int64_t bound = 40;
  auto ev = random_events(rng, 300 + static_cast<int>(rng() % 1500),
                          5 + static_cast<int>(rng() % 40), bound, 0.03);
  if (c.drifting_keys) {
    for (Event& e : ev) e.k = (e.ts / 100) * 5 + e.k % 5;
  }
  WindowOptions o;
  o.spec = c.spec;
  o.key_columns = {"k"};
  o.time_column = "ts";
  o.allowed_lateness = milliseconds(c.lateness);
  o.early_fire_every = c.early_fire;
  std::shared_ptr<const runtime::OperatorFactory> factory;
  if (c.process) {
    factory = process_like_aggregates(o);
  } else {
    o.aggregates = test_aggregates();
    if (c.udaf) o.functions = {sum_of_squares()};
    factory = window_aggregate(o);
  }
  ManualClock clock(Timestamp(0));
  runtime::OperatorCounters counters;
  auto make = [&](int index, int parallelism) {
    runtime::OperatorContext ctx;
    ctx.uid = "counts";
    ctx.subtask_index = index;
    ctx.parallelism = parallelism;
    ctx.max_parallelism = kMaxP;
    ctx.clock = &clock;
    ctx.counters = &counters;
    ctx.state_backend = backend;
    std::vector<SchemaPtr> in{input_schema()};
    auto op = factory->create(in, ctx);
    EXPECT_TRUE(op.is_ok()) << op.status().to_string();
    EXPECT_TRUE((*op)->open(ctx).is_ok());
    return std::move(*op);
  };
  auto single = make(0, 1);
  std::vector<std::unique_ptr<runtime::Operator>> group;
  int p = c.before;
  for (int i = 0; i < p; ++i) group.push_back(make(i, p));
  Reference ref(c.spec, c.lateness);
  RecordingOutput single_out, group_out;

  std::vector<std::pair<size_t, bool>> steps;
  for (size_t i = 0; i < ev.size();) {
    i = std::min(ev.size(), i + 1 + rng() % 80);
    steps.emplace_back(i, rng() % 3 == 0);
  }
  const size_t cut = rng() % steps.size();
  size_t from = 0;
  int64_t max_seen = INT64_MIN;
  size_t snapshot_bytes = 0;
  for (size_t si = 0; si < steps.size(); ++si) {
    auto [to, wm] = steps[si];
    clock.advance_millis(static_cast<int64_t>(rng() % 30));
    RecordBatch batch = make_batch(ev, from, to, static_cast<int64_t>(rng() % 3));
    ref.batch(ev, from, to);
    ASSERT_TRUE(single->process_batch(batch, 0, single_out).is_ok());
    auto parts = route(batch, p);
    for (int i = 0; i < p; ++i) {
      // Also the empty parts, so that every subtask checks its early-fire time at each step.
      ASSERT_TRUE(group[i]->process_batch(parts[i], 0, group_out).is_ok());
    }
    for (size_t i = from; i < to; ++i) max_seen = std::max(max_seen, ev[i].ts);
    from = to;
    if (wm) {
      ref.watermark(max_seen - bound);
      ASSERT_TRUE(single->process_watermark(Timestamp(max_seen - bound), single_out).is_ok());
      for (auto& op : group) {
        ASSERT_TRUE(op->process_watermark(Timestamp(max_seen - bound), group_out).is_ok());
      }
    }
    if (si == cut) {
      std::vector<std::string> snapshots(group.size());
      for (size_t i = 0; i < group.size(); ++i) {
        ASSERT_TRUE(group[i]->snapshot_state(CheckpointId(7), &snapshots[i]).is_ok());
        snapshot_bytes += snapshots[i].size();
      }
      group.clear();
      p = c.after;
      for (int i = 0; i < p; ++i) {
        group.push_back(make(i, p));
        std::shuffle(snapshots.begin(), snapshots.end(), rng);
        for (const std::string& s : snapshots) {
          Status st = group.back()->restore_state(s);
          ASSERT_TRUE(st.is_ok()) << st.to_string();
        }
      }
    }
  }
  ASSERT_GT(snapshot_bytes, 0u);
  ref.watermark(INT64_MAX);
  ASSERT_TRUE(single->process_watermark(Timestamp::max(), single_out).is_ok());
  ASSERT_TRUE(single->finish(single_out).is_ok());
  for (auto& op : group) {
    ASSERT_TRUE(op->process_watermark(Timestamp::max(), group_out).is_ok());
    ASSERT_TRUE(op->finish(group_out).is_ok());
  }
  auto want = text_rows(single_out.batches);
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(text_rows(group_out.batches), want);
  // Final results against the reference (partial early firings are compared above only).
  std::vector<Row> finals;
  for (const Row& r : rows_of(group_out.batches)) {
    if (std::get<7>(r)) finals.push_back(r);
  }
  std::sort(ref.out.begin(), ref.out.end());
  EXPECT_EQ(finals, ref.out);
}

TEST(WindowRescale, TumblingAndSlidingRestoreAtAnotherParallelism) {
  for (uint64_t seed = 1000; seed < 1006; ++seed) {
    run_rescale({WindowSpec::tumbling(milliseconds(50))}, seed);
    run_rescale({WindowSpec::tumbling(milliseconds(50)), 1, 3}, seed + 10);
    run_rescale({WindowSpec::sliding(milliseconds(90), milliseconds(30)), 3, 2, 60}, seed + 20);
    run_rescale({.spec = WindowSpec::sliding(milliseconds(60), milliseconds(20)),
                 .before = 2,
                 .after = 3,
                 .drifting_keys = true},
                seed + 30);
  }
}

TEST(WindowRescale, SessionsRestoreAtAnotherParallelism) {
  for (uint64_t seed = 1100; seed < 1106; ++seed) {
    run_rescale({WindowSpec::session(milliseconds(15))}, seed);
    run_rescale({WindowSpec::session(milliseconds(25)), 1, 3, 80}, seed + 10);
  }
}

TEST(WindowRescale, CountAndGlobalWindowsRestoreAtAnotherParallelism) {
  for (uint64_t seed = 1200; seed < 1206; ++seed) {
    run_rescale({WindowSpec::count_window(7)}, seed);
    run_rescale({WindowSpec::count_window(6, 4), 1, 3}, seed + 10);
    run_rescale({WindowSpec::global_window()}, seed + 20);
    run_rescale({WindowSpec::global_window(), 1, 3}, seed + 30);
  }
}

TEST(WindowRescale, EarlyFiringUdafAndWindowFunctionRestoreAtAnotherParallelism) {
  for (uint64_t seed = 1300; seed < 1304; ++seed) {
    for (const WindowSpec& spec : {WindowSpec::tumbling(milliseconds(50)),
                                   WindowSpec::sliding(milliseconds(60), milliseconds(20)),
                                   WindowSpec::session(milliseconds(15)),
                                   WindowSpec::count_window(6, 3), WindowSpec::global_window()}) {
      run_rescale({.spec = spec, .early_fire = milliseconds(45), .udaf = true}, seed);
      run_rescale({.spec = spec, .before = 1, .after = 3, .udaf = true}, seed + 10);
      run_rescale({.spec = spec, .process = true}, seed + 20);
      run_rescale({.spec = spec, .before = 1, .after = 3, .process = true}, seed + 30);
    }
  }
}

// A non-keyed window keeps its one key in key group 0: it restores at parallelism 1.
TEST(WindowRescale, NonKeyedWindowRestores) {
  WindowOptions o;
  o.spec = WindowSpec::sliding(milliseconds(40), milliseconds(20));
  o.time_column = "ts";
  o.aggregates = test_aggregates();
  std::mt19937_64 rng(5);
  auto ev = random_events(rng, 800, 3, 5, 0);
  std::vector<SchemaPtr> in{input_schema()};
  runtime::OperatorContext ctx;
  ctx.uid = "all";
  auto a = window_aggregate(o)->create(in, ctx).value();
  auto b = window_aggregate(o)->create(in, ctx).value();
  ASSERT_TRUE(a->open(ctx).is_ok());
  ASSERT_TRUE(b->open(ctx).is_ok());
  RecordingOutput oa, ob;
  ASSERT_TRUE(a->process_batch(make_batch(ev, 0, 400, 0), 0, oa).is_ok());
  ASSERT_TRUE(b->process_batch(make_batch(ev, 0, 400, 0), 0, ob).is_ok());
  ASSERT_TRUE(a->process_watermark(Timestamp(ev[300].ts), oa).is_ok());
  ASSERT_TRUE(b->process_watermark(Timestamp(ev[300].ts), ob).is_ok());
  std::string state;
  ASSERT_TRUE(b->snapshot_state(CheckpointId(1), &state).is_ok());
  b = window_aggregate(o)->create(in, ctx).value();
  ASSERT_TRUE(b->open(ctx).is_ok());
  ASSERT_TRUE(b->restore_state(state).is_ok());
  ASSERT_TRUE(a->process_batch(make_batch(ev, 400, ev.size(), 0), 0, oa).is_ok());
  ASSERT_TRUE(b->process_batch(make_batch(ev, 400, ev.size(), 0), 0, ob).is_ok());
  ASSERT_TRUE(a->finish(oa).is_ok());
  ASSERT_TRUE(b->finish(ob).is_ok());
  ASSERT_FALSE(oa.batches.empty());
  EXPECT_EQ(text_rows(ob.batches), text_rows(oa.batches));
}

TEST(WindowRescale, DamagedOrForeignSnapshotsAreRefusedNamingUidAndOffset) {
  WindowOptions o;
  o.spec = WindowSpec::session(milliseconds(20));
  o.key_columns = {"k"};
  o.time_column = "ts";
  o.aggregates = test_aggregates();
  o.functions = {sum_of_squares()};
  std::vector<SchemaPtr> in{input_schema()};
  runtime::OperatorContext ctx;
  ctx.uid = "sessions-by-k";
  auto fresh = [&] {
    auto op = window_aggregate(o)->create(in, ctx).value();
    EXPECT_TRUE(op->open(ctx).is_ok());
    return op;
  };
  std::mt19937_64 rng(17);
  auto ev = random_events(rng, 500, 12, 5, 0);
  auto op = fresh();
  RecordingOutput out;
  ASSERT_TRUE(op->process_batch(make_batch(ev, 0, ev.size(), 0), 0, out).is_ok());
  std::string state;
  ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &state).is_ok());
  ASSERT_TRUE(fresh()->restore_state(state).is_ok());
  auto refused = [&](std::string_view bytes, bool with_offset) {
    Status st = fresh()->restore_state(bytes);
    EXPECT_FALSE(st.is_ok());
    EXPECT_NE(st.message().find("sessions-by-k"), std::string::npos) << st.to_string();
    if (with_offset) {
      EXPECT_NE(st.message().find("at byte"), std::string::npos) << st.to_string();
    }
  };
  for (size_t len : {size_t{0}, size_t{3}, state.size() / 2, state.size() - 1}) {
    refused(std::string_view(state).substr(0, len), true);
  }
  for (int i = 0; i < 20; ++i) {
    std::string flipped = state;
    flipped[rng() % flipped.size()] ^= static_cast<char>(1 << (rng() % 8));
    refused(flipped, true);
  }
  // Another operator's snapshot, and a window snapshot of another uid.
  std::string other;
  state::SnapshotWriter w(&other, {"sessions-by-k", "dedup", 1, 128});
  w.begin_section(3).put<uint64_t>(1);
  w.finish();
  refused(other, false);
  runtime::OperatorContext elsewhere = ctx;
  elsewhere.uid = "other";
  auto foreign = window_aggregate(o)->create(in, elsewhere).value();
  ASSERT_TRUE(foreign->open(elsewhere).is_ok());
  ASSERT_TRUE(foreign->process_batch(make_batch(ev, 0, 10, 0), 0, out).is_ok());
  std::string foreign_state;
  ASSERT_TRUE(foreign->snapshot_state(CheckpointId(1), &foreign_state).is_ok());
  refused(foreign_state, false);
  // A well-formed envelope around a payload that does not decode: the key group's reader names
  // the byte.
  std::string bad;
  state::SnapshotWriter bw(&bad, {"sessions-by-k", "window", 1, 128});
  bw.begin_section(state::kOperatorWide).put<int64_t>(0);
  bw.finish();
  refused(bad, true);
  std::string bad_keys;
  state::SnapshotWriter kw(&bad_keys, {"sessions-by-k", "window", 1, 128});
  ByteWriter& kwr = kw.begin_section(5);
  kwr.put<uint64_t>(2);
  kwr.put_bytes("not an ipc stream");
  kw.finish();
  refused(bad_keys, true);
}

// Bytes damaged behind a valid checksum (re-sealed after each change) reach the section decoders:
// they are refused or give some state, never a crash, and the operator then still runs to the end
// (ASan/UBSan in CI).
TEST(WindowRescale, DamagedPayloadsBehindAValidChecksumNeverCrash) {
  std::mt19937_64 rng(23);
  auto ev = random_events(rng, 400, 9, 5, 0);
  for (const WindowSpec& spec :
       {WindowSpec::tumbling(milliseconds(30)), WindowSpec::session(milliseconds(10)),
        WindowSpec::count_window(5, 2), WindowSpec::global_window()}) {
    for (bool process : {false, true}) {
      WindowOptions o;
      o.spec = spec;
      o.key_columns = {"k"};
      o.time_column = "ts";
      std::shared_ptr<const runtime::OperatorFactory> factory;
      if (process) {
        factory = process_like_aggregates(o);
      } else {
        o.aggregates = test_aggregates();
        o.functions = {sum_of_squares()};
        factory = window_aggregate(o);
      }
      std::vector<SchemaPtr> in{input_schema()};
      runtime::OperatorContext ctx;
      ctx.uid = "w";
      auto fresh = [&] {
        auto op = factory->create(in, ctx).value();
        EXPECT_TRUE(op->open(ctx).is_ok());
        return op;
      };
      auto op = fresh();
      RecordingOutput out;
      ASSERT_TRUE(op->process_batch(make_batch(ev, 0, 300, 0), 0, out).is_ok());
      ASSERT_TRUE(op->process_watermark(Timestamp(ev[200].ts), out).is_ok());
      std::string state;
      ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &state).is_ok());
      int refused = 0;
      for (int m = 0; m < 150; ++m) {
        std::string bytes = state;
        for (int n = 1 + static_cast<int>(rng() % 3); n > 0; --n) {
          // After the envelope's header ("SBSN", version, uid "w", type, versions: 35 bytes).
          size_t at = 35 + rng() % (bytes.size() - 39);
          bytes[at] = static_cast<char>(rng() % 4 == 0 ? 0xFF : bytes[at] ^ (1 << (rng() % 8)));
        }
        const uint32_t crc = crc32c(std::string_view(bytes).substr(0, bytes.size() - 4));
        std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
        auto target = fresh();
        Status st = target->restore_state(bytes);
        if (!st.is_ok()) {
          ++refused;
          EXPECT_NE(st.message().find("at byte"), std::string::npos) << st.to_string();
          continue;
        }
        RecordingOutput sink;
        (void)target->process_batch(make_batch(ev, 300, ev.size(), 0), 0, sink);
        (void)target->process_watermark(Timestamp::max(), sink);
        (void)target->finish(sink);
      }
      EXPECT_GT(refused, 0);
    }
  }
}

// ---- through a real job: key_by, parallelism 1-4 ----

class ScriptedSource final : public runtime::Source {
 public:
  struct Step {
    RecordBatch batch;
    std::optional<int64_t> watermark;
  };
  explicit ScriptedSource(std::vector<Step> steps) : steps_(std::move(steps)) {}
  std::string name() const override { return "scripted"; }
  SchemaPtr schema() const override { return input_schema(); }
  int num_splits() const override { return 1; }
  Result<std::unique_ptr<runtime::SourceReader>> open_reader(
      std::span<const int>, const runtime::OperatorContext&) const override {
    struct Reader final : runtime::SourceReader {
      const ScriptedSource* s;
      size_t i = 0;
      Result<runtime::SourcePoll> poll(int64_t) override {
        if (i >= s->steps_.size()) return runtime::SourcePoll::end();
        const Step& st = s->steps_[i++];
        auto p = runtime::SourcePoll::of(st.batch);
        if (st.watermark) p.watermark = Timestamp(*st.watermark);
        return p;
      }
    };
    auto r = std::make_unique<Reader>();
    r->s = this;
    return std::unique_ptr<runtime::SourceReader>(std::move(r));
  }

 private:
  std::vector<Step> steps_;
};

// A real job (a source at parallelism 1, key_by, the window at parallelism p) against the
// reference model; `backend` null: memory.
void check_window_job(const WindowSpec& spec, int p, uint64_t seed,
                      std::shared_ptr<const state::StateBackend> backend = nullptr) {
  SCOPED_TRACE("parallelism " + std::to_string(p) + ", seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto ev = random_events(rng, 1500, 17, 30, 0.02);
  Reference ref(spec, 0);
  std::vector<ScriptedSource::Step> steps;
  int64_t max_seen = INT64_MIN;
  for (size_t from = 0; from < ev.size();) {
    size_t to = std::min(ev.size(), from + 1 + rng() % 200);
    ref.batch(ev, from, to);
    for (size_t i = from; i < to; ++i) max_seen = std::max(max_seen, ev[i].ts);
    ScriptedSource::Step st{make_batch(ev, from, to, 1), std::nullopt};
    if (rng() % 2) {
      st.watermark = max_seen - 30;
      ref.watermark(max_seen - 30);
    }
    steps.push_back(st);
    from = to;
  }
  ref.watermark(INT64_MAX);
  WindowOptions o;
  o.spec = spec;
  o.key_columns = {"k"};
  o.time_column = "ts";
  o.aggregates = test_aggregates();
  o.late = LatePolicy::kSideOutput;
  Environment env({.parallelism = p, .worker_threads = 2, .state_backend = std::move(backend)});
  auto windows = env.from_source(std::make_shared<ScriptedSource>(steps))
                     .set_parallelism(1)
                     .key_by("k")
                     .apply(window_aggregate(o))
                     .set_parallelism(p);
  auto results = windows.collect();
  auto late = windows.side_output("late").collect();
  auto r = env.execute();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  std::sort(ref.out.begin(), ref.out.end());
  EXPECT_EQ(rows_of(results->batches()), ref.out);
  if (spec.kind != WindowSpec::Kind::kCount) {
    EXPECT_EQ(late->num_rows(), ref.late);
  }
}

TEST(WindowJob, KeyedWindowsAtParallelismOneToFourMatchReference) {
  const WindowSpec specs[] = {WindowSpec::tumbling(milliseconds(40)),
                              WindowSpec::sliding(milliseconds(60), milliseconds(20)),
                              WindowSpec::session(milliseconds(12)), WindowSpec::count_window(5)};
  uint64_t seed = 500;
  for (const WindowSpec& spec : specs) {
    for (int p = 1; p <= 4; ++p) check_window_job(spec, p, ++seed);
  }
}

// ---- keyed tumbling and sliding windows on both state backends ----
// On a backend other than memory they keep their panes in it (window_keyed.cc); on memory in the
// operator (window.cc). The same checks on both.

using state::testing::BackendKind;

class WindowOnBackend : public ::testing::TestWithParam<BackendKind> {
 protected:
  const state::StateBackend* backend() const { return &state::testing::backend_of(GetParam()); }
};

TEST_P(WindowOnBackend, TumblingAndSlidingMatchTheReferenceAcrossSnapshots) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    run_scenario({WindowSpec::tumbling(milliseconds(50))}, seed, true, backend());
    run_scenario({WindowSpec::sliding(milliseconds(100), milliseconds(30))}, seed + 20, true,
                 backend());
    run_scenario({WindowSpec::sliding(milliseconds(60), milliseconds(20))}, seed + 120, true,
                 backend());
  }
}

TEST_P(WindowOnBackend, AllowedLatenessLatePoliciesAndKeysThatComeAndGo) {
  for (uint64_t seed = 200; seed <= 205; ++seed) {
    Scenario late{WindowSpec::tumbling(milliseconds(40)), 60, LatePolicy::kSideOutput};
    Scenario sliding_late{WindowSpec::sliding(milliseconds(90), milliseconds(30)), 45};
    Scenario tumbling{WindowSpec::tumbling(milliseconds(50))};
    Scenario sliding{WindowSpec::sliding(milliseconds(100), milliseconds(30))};
    tumbling.drifting_keys = sliding.drifting_keys = sliding_late.drifting_keys = true;
    for (Scenario* sc : {&late, &sliding_late, &tumbling, &sliding}) {
      run_scenario(*sc, seed, true, backend());
    }
  }
}

TEST_P(WindowOnBackend, SessionsMergeLikeTheReference) {
  for (uint64_t seed = 40; seed <= 47; ++seed) {
    run_scenario({WindowSpec::session(milliseconds(5 + static_cast<int64_t>(seed % 4) * 10))}, seed,
                 true, backend());
    Scenario late{WindowSpec::session(milliseconds(15)), 40, LatePolicy::kSideOutput};
    late.drifting_keys = seed % 2 == 0;
    run_scenario(late, seed + 100, true, backend());
  }
}

// A row behind the watermark but within the allowed lateness fires its window again as soon as
// its batch is in, not at the next watermark.
TEST_P(WindowOnBackend, LateRowsRefireTheirWindowsRightAfterTheirBatch) {
  for (const WindowSpec& spec : {WindowSpec::tumbling(milliseconds(50)),
                                 WindowSpec::sliding(milliseconds(50), milliseconds(25)),
                                 WindowSpec::session(milliseconds(10))}) {
    WindowOptions o;
    o.spec = spec;
    o.key_columns = {"k"};
    o.time_column = "ts";
    o.aggregates = test_aggregates();
    o.allowed_lateness = milliseconds(100);
    runtime::OperatorCounters c;
    RecordingOutput out;
    auto op = make_op(o, &c, &SystemClock::instance(), backend());
    std::vector<Event> ev{{1, 10, 5}, {1, 15, 7}};
    ASSERT_TRUE(op->process_batch(make_batch(ev, 0, 1, 0), 0, out).is_ok());
    ASSERT_TRUE(op->process_watermark(Timestamp(60), out).is_ok());
    const size_t fired = rows_of(out.batches).size();
    ASSERT_GE(fired, 1u);
    ASSERT_TRUE(op->process_batch(make_batch(ev, 1, 2, 0), 0, out).is_ok());
    const std::vector<Row> rows = rows_of(out.batches);
    ASSERT_GT(rows.size(), fired) << "nothing fired again after the late row";
    // The window over both rows, with both counted.
    EXPECT_TRUE(std::any_of(rows.begin(), rows.end(), [](const Row& r) {
      return std::get<3>(r) == 2 && std::get<4>(r) == 12;
    }));
  }
}

TEST_P(WindowOnBackend, CountWindowsTumblingAndSliding) {
  for (uint64_t seed = 60; seed <= 64; ++seed) {
    run_scenario({WindowSpec::count_window(7)}, seed, true, backend());
    run_scenario({WindowSpec::count_window(6, 4)}, seed + 100, true, backend());
    run_scenario({WindowSpec::count_window(3, 1)}, seed + 200, true, backend());
  }
}

TEST_P(WindowOnBackend, GlobalWindowFiresOnlyAtEndOfInput) {
  for (uint64_t seed = 70; seed <= 73; ++seed) {
    run_scenario({WindowSpec::global_window()}, seed, true, backend());
  }
}

// A watermark's own early firing goes out before the watermark, so that no partial result of a
// window arrives behind a watermark past its start.
TEST_P(WindowOnBackend, EarlyFiringsComeBeforeTheWatermark) {
  struct Sequence final : runtime::Output {
    std::vector<std::string> events;
    Status emit(const RecordBatch& b) override {
      events.push_back("rows " + std::to_string(b.num_rows()));
      return Status::ok();
    }
    Status emit_watermark(Timestamp t) override {
      events.push_back("watermark " + std::to_string(t.millis()));
      return Status::ok();
    }
  };
  WindowOptions o;
  o.spec = WindowSpec::tumbling(milliseconds(100));
  o.key_columns = {"k"};
  o.time_column = "ts";
  o.aggregates = test_aggregates();
  o.early_fire_every = milliseconds(10);
  ManualClock clock(Timestamp(0));
  runtime::OperatorCounters c;
  Sequence out;
  auto op = make_op(o, &c, &clock, backend());
  std::vector<Event> ev{{1, 5, 5}, {2, 6, 6}};
  ASSERT_TRUE(op->process_batch(make_batch(ev, 0, ev.size(), 0), 0, out).is_ok());
  clock.advance_millis(20);
  ASSERT_TRUE(op->process_watermark(Timestamp(50), out).is_ok());
  EXPECT_EQ(out.events, (std::vector<std::string>{"rows 2", "watermark 50"}));
}

// Windows without key columns (parallelism 1): the same rows as the memory backend's operator
// (which WindowAggregate.Utf8KeysMicrosecondTimeAndNonKeyedInt64Time checks against a reference),
// across a snapshot and restore.
TEST_P(WindowOnBackend, WindowsWithoutKeysGiveTheMemoryOperatorsRows) {
  uint64_t seed = 900;
  for (const WindowSpec& spec : {WindowSpec::tumbling(milliseconds(30)),
                                 WindowSpec::sliding(milliseconds(40), milliseconds(20)),
                                 WindowSpec::session(milliseconds(4)),
                                 WindowSpec::count_window(5, 2), WindowSpec::global_window()}) {
    std::mt19937_64 rng(++seed);
    auto ev = random_events(rng, 800, 3, 5, 0.02);
    WindowOptions o;
    o.spec = spec;
    o.time_column = "ts";
    o.aggregates = test_aggregates();
    o.allowed_lateness = milliseconds(10);
    runtime::OperatorCounters c;
    auto want_op = make_op(o, &c);
    auto op = make_op(o, &c, &SystemClock::instance(), backend());
    RecordingOutput want, got;
    int64_t max_seen = INT64_MIN;
    for (size_t from = 0, step = 0; from < ev.size(); ++step) {
      const size_t to = std::min(ev.size(), from + 1 + rng() % 50);
      const RecordBatch batch = make_batch(ev, from, to, 0);
      ASSERT_TRUE(want_op->process_batch(batch, 0, want).is_ok());
      ASSERT_TRUE(op->process_batch(batch, 0, got).is_ok());
      for (size_t i = from; i < to; ++i) max_seen = std::max(max_seen, ev[i].ts);
      from = to;
      ASSERT_TRUE(want_op->process_watermark(Timestamp(max_seen - 5), want).is_ok());
      ASSERT_TRUE(op->process_watermark(Timestamp(max_seen - 5), got).is_ok());
      if (step == 7) {
        std::string snapshot;
        ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &snapshot).is_ok());
        EXPECT_EQ(state::SnapshotReader::peek_header(snapshot)->state_type,
                  GetParam() == BackendKind::kRocksDb ? "keyed-window" : "window");
        op = make_op(o, &c, &SystemClock::instance(), backend());
        ASSERT_TRUE(op->restore_state(snapshot).is_ok());
      }
    }
    ASSERT_TRUE(want_op->finish(want).is_ok());
    ASSERT_TRUE(op->finish(got).is_ok());
    ASSERT_FALSE(want.batches.empty());
    EXPECT_EQ(text_rows(got.batches), text_rows(want.batches)) << "seed " << seed;
    ASSERT_FALSE(got.batches.empty());
    EXPECT_EQ(got.batches[0].schema().field(0).name, "window_start") << "no key column";
  }
}

TEST_P(WindowOnBackend, RestoreAtAnotherParallelism) {
  for (uint64_t seed = 1000; seed < 1003; ++seed) {
    run_rescale({WindowSpec::tumbling(milliseconds(50))}, seed, backend());
    run_rescale({WindowSpec::tumbling(milliseconds(50)), 1, 3}, seed + 10, backend());
    run_rescale({WindowSpec::sliding(milliseconds(90), milliseconds(30)), 3, 2, 60}, seed + 20,
                backend());
    run_rescale({.spec = WindowSpec::sliding(milliseconds(60), milliseconds(20)),
                 .before = 2,
                 .after = 3,
                 .drifting_keys = true},
                seed + 30, backend());
    run_rescale({WindowSpec::session(milliseconds(15))}, seed + 40, backend());
    run_rescale({WindowSpec::session(milliseconds(25)), 1, 3, 80}, seed + 50, backend());
    run_rescale({WindowSpec::global_window()}, seed + 60, backend());
    run_rescale({WindowSpec::global_window(), 1, 3}, seed + 70, backend());
    run_rescale({WindowSpec::count_window(7)}, seed + 80, backend());
    run_rescale({WindowSpec::count_window(6, 4), 1, 3}, seed + 90, backend());
  }
}

TEST_P(WindowOnBackend, EarlyFiringUdafAndWindowFunctionRestoreAtAnotherParallelism) {
  for (uint64_t seed = 1300; seed < 1303; ++seed) {
    for (const WindowSpec& spec : {WindowSpec::tumbling(milliseconds(50)),
                                   WindowSpec::sliding(milliseconds(60), milliseconds(20)),
                                   WindowSpec::session(milliseconds(15)),
                                   WindowSpec::count_window(6, 3), WindowSpec::global_window()}) {
      run_rescale({.spec = spec, .early_fire = milliseconds(45), .udaf = true}, seed, backend());
      run_rescale({.spec = spec, .before = 1, .after = 3, .udaf = true}, seed + 10, backend());
      run_rescale({.spec = spec, .lateness = 30, .process = true}, seed + 20, backend());
      run_rescale({.spec = spec, .before = 1, .after = 3, .process = true}, seed + 30, backend());
    }
  }
}

TEST_P(WindowOnBackend, RealJobAtParallelismOneToFour) {
  std::shared_ptr<const state::StateBackend> shared(backend(), [](auto*) {});
  uint64_t seed = 700;
  for (const WindowSpec& spec :
       {WindowSpec::tumbling(milliseconds(40)),
        WindowSpec::sliding(milliseconds(60), milliseconds(20)),
        WindowSpec::session(milliseconds(12)), WindowSpec::count_window(5)}) {
    for (int p = 1; p <= 4; ++p) check_window_job(spec, p, ++seed, shared);
  }
}

// Where the panes are shows in the snapshot's state type; a snapshot of the other kind is refused
// with an error that says which backend restores it.
TEST_P(WindowOnBackend, SnapshotsSayWhereThePanesAreAndTheOtherKindIsRefused) {
  WindowOptions o;
  o.spec = WindowSpec::tumbling(milliseconds(50));
  o.key_columns = {"k"};
  o.time_column = "ts";
  o.aggregates = test_aggregates();
  runtime::OperatorCounters c;
  RecordingOutput out;
  std::vector<Event> ev{{1, 10, 5}, {2, 20, 6}, {1, 70, 7}};
  auto op = make_op(o, &c, &SystemClock::instance(), backend());
  ASSERT_TRUE(op->process_batch(make_batch(ev, 0, ev.size(), 0), 0, out).is_ok());
  std::string snapshot;
  ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &snapshot).is_ok());
  const bool in_backend = GetParam() == BackendKind::kRocksDb;
  EXPECT_EQ(state::SnapshotReader::peek_header(snapshot)->state_type,
            in_backend ? "keyed-window" : "window");
  EXPECT_EQ(op->state_keys(), 2);
  const state::StateBackend* other =
      &state::testing::backend_of(in_backend ? BackendKind::kMemory : BackendKind::kRocksDb);
  auto elsewhere = make_op(o, &c, &SystemClock::instance(), other);
  Status st = elsewhere->restore_state(snapshot);
  EXPECT_FALSE(st.is_ok());
  if (!in_backend) {
    EXPECT_NE(st.message().find("restore it with the memory state backend"), std::string::npos)
        << st.to_string();
  }
  // The restored operator fires what the snapshot held.
  auto again = make_op(o, &c, &SystemClock::instance(), backend());
  ASSERT_TRUE(again->restore_state(snapshot).is_ok());
  RecordingOutput fired;
  ASSERT_TRUE(again->process_watermark(Timestamp::max(), fired).is_ok());
  EXPECT_EQ(rows_of(fired.batches), (std::vector<Row>{{1, 0, 50, 1, 5, 5, 5, true},
                                                      {1, 50, 100, 1, 7, 7, 7, true},
                                                      {2, 0, 50, 1, 6, 6, 6, true}}));
}

// On RocksDB a key's panes leave its list once their last window is past the allowed lateness:
// the snapshot holds the lists of the keys whose panes are still live, and none at the end.
TEST(WindowInRocksDb, PanesLeaveTheBackendOnceTheirWindowsArePastTheLateness) {
  WindowOptions o;
  o.spec = WindowSpec::tumbling(milliseconds(50));
  o.key_columns = {"k"};
  o.time_column = "ts";
  o.aggregates = test_aggregates();
  o.allowed_lateness = milliseconds(30);
  runtime::OperatorCounters c;
  RecordingOutput out;
  // Key k has one row, at 10 k ms: its one pane is [50 (k / 5), + 50).
  std::vector<Event> ev;
  for (int64_t k = 0; k < 100; ++k) ev.push_back({k, 10 * k, k});
  auto op = make_op(o, &c, &SystemClock::instance(), &state::testing::scratch_rocksdb_backend());
  ASSERT_TRUE(op->process_batch(make_batch(ev, 0, ev.size(), 0), 0, out).is_ok());
  auto panes_in_snapshot = [&] {
    std::string snapshot;
    EXPECT_TRUE(op->snapshot_state(CheckpointId(1), &snapshot).is_ok());
    auto keyed = unwrap_keyed_snapshot(snapshot, "", 128);
    EXPECT_TRUE(keyed.is_ok() && keyed->has_value()) << keyed.status().to_string();
    auto reader = state::KeyedSnapshotReader::open((*keyed)->keyed, "", 128);
    EXPECT_TRUE(reader.is_ok()) << reader.status().to_string();
    return reader->find_state("panes")->entries;
  };
  EXPECT_EQ(panes_in_snapshot(), 100u);
  // Watermark 500: windows ending by 500 fire (keys 0-49); panes whose window ended by 470 go
  // (drop time = end - 1 + 30 <= 500: keys 0-44).
  ASSERT_TRUE(op->process_watermark(Timestamp(500), out).is_ok());
  EXPECT_EQ(rows_of(out.batches).size(), 50u);
  EXPECT_EQ(panes_in_snapshot(), 55u);
  ASSERT_TRUE(op->process_watermark(Timestamp::max(), out).is_ok());
  EXPECT_EQ(rows_of(out.batches).size(), 100u);
  EXPECT_EQ(panes_in_snapshot(), 0u);
}

// A key with rows in every write of the buffer (here: a snapshot after each batch) would grow its
// list by an entry each time; every 8 appends the entries of one pane (of the global window) are
// merged, so the list stays short and the result is unchanged.
TEST(WindowInRocksDb, ListsOfKeysWithRowsInEveryBufferAreCompacted) {
  for (const WindowSpec& spec :
       {WindowSpec::global_window(), WindowSpec::tumbling(milliseconds(1000))}) {
    SCOPED_TRACE(spec.kind == WindowSpec::Kind::kGlobal ? "global" : "tumbling");
    WindowOptions o;
    o.spec = spec;
    o.key_columns = {"k"};
    o.time_column = "ts";
    o.aggregates = test_aggregates();
    runtime::OperatorCounters c;
    RecordingOutput out;
    auto op = make_op(o, &c, &SystemClock::instance(), &state::testing::scratch_rocksdb_backend());
    std::vector<Event> ev;
    for (int64_t i = 0; i < 30; ++i) ev.push_back({7, i, i});
    const std::string list = spec.kind == WindowSpec::Kind::kGlobal ? "global" : "panes";
    uint64_t longest = 0;
    for (size_t i = 0; i < ev.size(); ++i) {
      ASSERT_TRUE(op->process_batch(make_batch(ev, i, i + 1, 0), 0, out).is_ok());
      std::string snapshot;
      ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &snapshot).is_ok());
      auto keyed = unwrap_keyed_snapshot(snapshot, "", 128);
      ASSERT_TRUE(keyed.is_ok() && keyed->has_value());
      auto reader = state::KeyedSnapshotReader::open((*keyed)->keyed, "", 128);
      ASSERT_TRUE(reader.is_ok()) << reader.status().to_string();
      ASSERT_TRUE(reader
                      ->for_each_entry(list,
                                       [&](const state::KeyedSnapshotReader::Entry& e) {
                                         uint64_t n = 0;
                                         std::memcpy(&n, e.value.data(), sizeof(n));
                                         longest = std::max(longest, n);
                                         return Status::ok();
                                       })
                      .is_ok());
    }
    EXPECT_GE(longest, 2u);
    EXPECT_LE(longest, 8u);
    ASSERT_TRUE(op->process_watermark(Timestamp::max(), out).is_ok());
    const std::vector<Row> rows = rows_of(out.batches);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(std::get<3>(rows[0]), 30);   // count
    EXPECT_EQ(std::get<4>(rows[0]), 435);  // sum of 0..29
    EXPECT_EQ(std::get<5>(rows[0]), 0);
    EXPECT_EQ(std::get<6>(rows[0]), 29);
  }
}

// A sliding window whose open panes are ten times the memory its RocksDB backend may use
// (256 KiB block cache, 2 x 128 KiB memtables, 64 KiB write cache) runs to the end with the
// reference's results: most panes are read back from SST files when their windows fire.
TEST(WindowInRocksDb, StateTenTimesLargerThanCachesAndWriteBuffersFiresTheRightWindows) {
  state::testing::ScratchRocksDb rocksdb("sabot_window_larger_than_memory",
                                         {.block_cache_bytes = size_t{256} << 10,
                                          .write_buffer_bytes = size_t{128} << 10,
                                          .max_write_buffers = 2,
                                          .write_cache_bytes = size_t{64} << 10});
  WindowOptions o;
  o.spec = WindowSpec::sliding(milliseconds(400), milliseconds(100));
  o.key_columns = {"k"};
  o.time_column = "ts";
  o.aggregates = test_aggregates();
  runtime::OperatorCounters c;
  RecordingOutput out;
  auto op = make_op(o, &c, &SystemClock::instance(), rocksdb.get());
  Reference ref(o.spec, 0);
  // 40,000 keys with a row in each of the four panes of [0, 400), in batches of 4,000 rows; the
  // watermark stays behind until all are in, so every pane is live at once.
  constexpr int64_t kKeys = 40'000;
  std::vector<Event> ev;
  for (int64_t pane = 0; pane < 4; ++pane) {
    for (int64_t k = 0; k < kKeys; ++k) ev.push_back({k, pane * 100 + k % 100, k * 4 + pane});
  }
  for (size_t from = 0; from < ev.size(); from += 4000) {
    const size_t to = std::min(ev.size(), from + 4000);
    ref.batch(ev, from, to);
    ASSERT_TRUE(op->process_batch(make_batch(ev, from, to, 0), 0, out).is_ok());
  }
  const std::string snapshot = [&] {
    std::string s;
    EXPECT_TRUE(op->snapshot_state(CheckpointId(1), &s).is_ok());
    return s;
  }();
  const uint64_t memory = (size_t{256} << 10) + 2 * (size_t{128} << 10) + (size_t{64} << 10);
  const uint64_t sst_bytes = rocksdb.sst_bytes();
  EXPECT_GE(snapshot.size(), 10 * memory) << "the panes, as the snapshot holds them";
  EXPECT_GE(sst_bytes, 4 * memory) << "the panes should live mostly in SST files";
  ref.watermark(INT64_MAX);
  ASSERT_TRUE(op->process_watermark(Timestamp::max(), out).is_ok());
  std::sort(ref.out.begin(), ref.out.end());
  const std::vector<Row> got = rows_of(out.batches);
  EXPECT_EQ(got.size(), static_cast<size_t>(kKeys) * 7);  // windows ending 100, 200, ..., 700
  EXPECT_EQ(got, ref.out);
}

INSTANTIATE_TEST_SUITE_P(Backends, WindowOnBackend,
                         ::testing::Values(BackendKind::kMemory, BackendKind::kRocksDb),
                         state::testing::backend_kind_name);

}  // namespace
}  // namespace sabot::operators

namespace sabot::operators {
namespace {

// utf8 keys, a microsecond time column, float64 values, nulls in the values; and a non-keyed
// window over an int64 millisecond time column: both against a std::map reference.
TEST(WindowAggregate, Utf8KeysMicrosecondTimeAndNonKeyedInt64Time) {
  std::mt19937_64 rng(99);
  auto schema = columnar::schema(
      {columnar::field("name", columnar::utf8()),
       columnar::field("t", columnar::timestamp(columnar::TimeUnit::kMicro)),
       columnar::field("ms", columnar::int64()), columnar::field("x", columnar::float64())});
  const int n = 3000;
  columnar::BinaryBuilder name(columnar::utf8());
  columnar::Int64Builder t(columnar::timestamp(columnar::TimeUnit::kMicro)), ms;
  columnar::Float64Builder x;
  std::map<std::pair<std::string, int64_t>, std::pair<int64_t, double>> want_keyed;
  std::map<int64_t, int64_t> want_global;
  for (int i = 0; i < n; ++i) {
    std::string k = "key-" + std::to_string(rng() % 13);
    int64_t us = 5'000'000 + i * 997 + static_cast<int64_t>(rng() % 500);
    name.append(k);
    t.append(us);
    ms.append(us / 1000);
    bool null = rng() % 5 == 0;
    double v = static_cast<double>(rng() % 100);
    if (null) {
      x.append_null();
    } else {
      x.append(v);
    }
    auto& w = want_keyed[{k, us / 1000 / 200 * 200}];
    if (!null) {
      w.first++;
      w.second += v;
    }
    want_global[us / 1000 / 300 * 300]++;
  }
  auto all =
      RecordBatch::make(schema, {name.finish(), t.finish(), ms.finish(), x.finish()}).value();

  auto run = [&](WindowOptions o) {
    auto op = window_aggregate(o)->create(std::vector<SchemaPtr>{schema}, {}).value();
    RecordingOutput out;
    for (int64_t from = 0; from < n;) {
      int64_t len = std::min<int64_t>(n - from, 1 + static_cast<int64_t>(rng() % 300));
      EXPECT_TRUE(op->process_batch(all.slice(from, len), 0, out).is_ok());
      from += len;
    }
    EXPECT_TRUE(op->finish(out).is_ok());
    return out.batches;
  };
  WindowOptions keyed;
  keyed.spec = WindowSpec::tumbling(milliseconds(200));
  keyed.key_columns = {"name"};
  keyed.time_column = "t";
  keyed.aggregates = {compute::count("x"), compute::sum("x")};
  std::map<std::pair<std::string, int64_t>, std::pair<int64_t, double>> got_keyed;
  for (auto& b : run(keyed)) {
    for (int64_t i = 0; i < b.num_rows(); ++i) {
      EXPECT_EQ(b.column(2).value<int64_t>(i) - b.column(1).value<int64_t>(i), 200);
      auto& g = got_keyed[{std::string(b.column(0).string_view(i)), b.column(1).value<int64_t>(i)}];
      g.first = b.column(3).value<int64_t>(i);
      g.second = b.column(4).is_null(i) ? 0.0 : b.column(4).value<double>(i);
    }
  }
  EXPECT_EQ(got_keyed, want_keyed);

  WindowOptions global;
  global.spec = WindowSpec::tumbling(milliseconds(300));
  global.time_column = "ms";
  global.aggregates = {compute::count()};
  std::map<int64_t, int64_t> got_global;
  for (auto& b : run(global)) {
    for (int64_t i = 0; i < b.num_rows(); ++i) {
      got_global[b.column(0).value<int64_t>(i)] = b.column(2).value<int64_t>(i);
    }
  }
  EXPECT_EQ(got_global, want_global);
}

}  // namespace
}  // namespace sabot::operators
