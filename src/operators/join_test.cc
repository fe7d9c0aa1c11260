#include "sabot/operators/join.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>

#include "operators/join_state.h"
#include "operators/join_test_util.h"
#include "sabot/compute/hash.h"
#include "sabot/compute/selection.h"
#include "sabot/state/backend_testing.h"
#include "sabot/state/snapshot.h"

namespace sabot::operators {
namespace {

using columnar::RecordBatch;
using testing::CollectOutput;
using testing::GenOptions;
using testing::Script;
using testing::TestRow;

// The joins keep their state on the job's backend when it is not the memory one (join.cc keeps
// it in the operator on the memory backend, join_keyed.cc in the backend on RocksDB): their tests
// run on both.
class JoinOnBackend : public ::testing::TestWithParam<state::testing::BackendKind> {
 protected:
  const state::StateBackend& backend() const { return state::testing::backend_of(GetParam()); }
};

JoinCommon keys_k() { return JoinCommon{{"k"}, {"k"}, "right_"}; }
EventTimeOptions times_t(int64_t lateness = 0, bool side = false) {
  return EventTimeOptions{"t", "t", lateness, side};
}

std::string pair_row(const Script& s, const TestRow* l, const TestRow* r,
                     const std::vector<std::string>& extra = {}) {
  std::vector<std::string> cells = l ? l->cells : testing::null_cells(*s.schema[0]);
  std::vector<std::string> rc = r ? r->cells : testing::null_cells(*s.schema[1]);
  cells.insert(cells.end(), rc.begin(), rc.end());
  cells.insert(cells.end(), extra.begin(), extra.end());
  return testing::join_cells(cells);
}

std::vector<const TestRow*> on_time(const Script& s, int side) {
  std::vector<const TestRow*> out;
  for (const TestRow& r : s.rows) {
    if (r.side == side && !r.late) out.push_back(&r);
  }
  return out;
}

int64_t count_late(const Script& s) {
  int64_t n = 0;
  for (const TestRow& r : s.rows) n += r.late ? 1 : 0;
  return n;
}

// Nested-loop reference for the interval join.
std::vector<std::string> interval_reference(const Script& s, int64_t lower, int64_t upper,
                                            JoinKind kind) {
  auto ls = on_time(s, 0), rs = on_time(s, 1);
  std::vector<std::string> out;
  std::vector<bool> rmatched(rs.size(), false);
  for (const TestRow* l : ls) {
    bool m = false;
    for (size_t j = 0; j < rs.size(); ++j) {
      const TestRow* r = rs[j];
      if (l->key == r->key && l->time + lower <= r->time && r->time <= l->time + upper) {
        out.push_back(pair_row(s, l, r));
        m = true;
        rmatched[j] = true;
      }
    }
    if (!m && (kind == JoinKind::kLeft || kind == JoinKind::kFull)) {
      out.push_back(pair_row(s, l, nullptr));
    }
  }
  if (kind == JoinKind::kRight || kind == JoinKind::kFull) {
    for (size_t j = 0; j < rs.size(); ++j) {
      if (!rmatched[j]) out.push_back(pair_row(s, nullptr, rs[j]));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

const JoinKind kAllKinds[] = {JoinKind::kInner, JoinKind::kLeft, JoinKind::kRight, JoinKind::kFull};
const columnar::DataType kKeyTypes[] = {columnar::int64(), columnar::utf8(), columnar::int32()};

TEST_P(JoinOnBackend, IntervalJoinMatchesNestedLoopReferenceForEveryKindOnRandomOutOfOrderData) {
  uint32_t seed = 1;
  for (JoinKind kind : kAllKinds) {
    for (auto kt : kKeyTypes) {
      for (int rep = 0; rep < 3; ++rep, ++seed) {
        std::mt19937 rng(seed);
        GenOptions g;
        g.key_type = kt;
        g.num_keys = 1 + static_cast<int>(rng() % 12);
        g.rows_per_side = static_cast<int>(rng() % 400);
        g.max_batch = 1 + static_cast<int>(rng() % 40);
        g.allowed_lateness = rep == 2 ? 150 : 0;
        g.null_fraction = (rng() % 3) * 0.25;
        Script s = testing::make_script(g, seed);
        int64_t lower = -static_cast<int64_t>(rng() % 300),
                upper = static_cast<int64_t>(rng() % 300) - 100;
        if (upper < lower) std::swap(lower, upper);
        IntervalJoinOptions o{keys_k(), times_t(g.allowed_lateness), lower, upper, kind};
        auto f = interval_join(o);
        auto expected = interval_reference(s, lower, upper, kind);
        runtime::OperatorCounters counters;
        CollectOutput out;
        std::vector<int64_t> sizes;
        testing::drive(*f, s, -1, &out, &counters, &sizes, nullptr, &backend());
        ASSERT_EQ(testing::sorted_rows(out.batches), expected) << "seed " << seed;
        EXPECT_EQ(counters.records_dropped.load(), count_late(s));
        EXPECT_EQ(sizes.back(), 0);
        // Snapshot at a random step, restore into a fresh operator: same result.
        if (!s.steps.empty()) {
          CollectOutput out2;
          runtime::OperatorCounters c2;
          testing::drive(*f, s, static_cast<int>(rng() % s.steps.size()), &out2, &c2, nullptr,
                         nullptr, &backend());
          ASSERT_EQ(testing::sorted_rows(out2.batches), expected) << "seed " << seed;
        }
      }
    }
  }
}

TEST_P(JoinOnBackend, IntervalJoinLateRowsGoToSideOutputsWhenAsked) {
  GenOptions g;
  g.late_fraction = 0.1;
  Script s = testing::make_script(g, 77);
  auto f = interval_join({keys_k(), times_t(0, true), -100, 100, JoinKind::kInner});
  CollectOutput out;
  runtime::OperatorCounters counters;
  testing::drive(*f, s, -1, &out, &counters, nullptr, nullptr, &backend());
  EXPECT_EQ(counters.records_dropped.load(), 0);
  std::vector<std::string> late_left, expected_left;
  for (const auto& b : out.side["late_left"]) {
    EXPECT_TRUE(b.schema() == *s.schema[0]);
    for (int64_t i = 0; i < b.num_rows(); ++i) {
      late_left.push_back(testing::join_cells(testing::row_cells(b, i)));
    }
  }
  int64_t late_right = 0;
  for (const auto& b : out.side["late_right"]) late_right += b.num_rows();
  for (const TestRow& r : s.rows) {
    if (r.late && r.side == 0) expected_left.push_back(testing::join_cells(r.cells));
  }
  int64_t expected_right = count_late(s) - static_cast<int64_t>(expected_left.size());
  std::sort(late_left.begin(), late_left.end());
  std::sort(expected_left.begin(), expected_left.end());
  EXPECT_EQ(late_left, expected_left);
  EXPECT_EQ(late_right, expected_right);
  EXPECT_GT(count_late(s), 0);
}

TEST_P(JoinOnBackend, IntervalJoinStateShrinksAsTheWatermarkAdvances) {
  GenOptions g;
  g.rows_per_side = 3000;
  g.late_fraction = 0;
  g.num_keys = 5;
  Script s = testing::make_script(g, 5);
  for (JoinKind kind : kAllKinds) {
    auto f = interval_join({keys_k(), times_t(), -200, 100, kind});
    CollectOutput out;
    runtime::OperatorCounters counters;
    std::vector<int64_t> sizes;
    testing::drive(*f, s, -1, &out, &counters, &sizes, nullptr, &backend());
    // 6000 rows arrive over ~240 s of event time; only those within a few hundred ms of the
    // watermark (plus the shuffle bound) may be buffered.
    int64_t peak = *std::max_element(sizes.begin(), sizes.end());
    EXPECT_LT(peak, 200) << "kind " << static_cast<int>(kind);
    EXPECT_EQ(sizes.back(), 0);
    ASSERT_EQ(testing::sorted_rows(out.batches), interval_reference(s, -200, 100, kind));
  }
}

TEST_P(JoinOnBackend, IntervalJoinOutputWatermarkIsHeldBackByTheBoundsAndLateness) {
  GenOptions g;
  g.late_fraction = 0;
  Script s = testing::make_script(g, 9);
  auto f = interval_join({keys_k(), times_t(50), -300, 100, JoinKind::kFull});
  CollectOutput out;
  runtime::OperatorCounters counters;
  testing::drive(*f, s, -1, &out, &counters, nullptr, nullptr, &backend());
  std::vector<int64_t> in_wms;
  for (const auto& st : s.steps) {
    if (st.watermark) in_wms.push_back(*st.watermark - 50 - 300);
  }
  in_wms.push_back(INT64_MAX);
  EXPECT_EQ(out.watermarks, in_wms);
}

TEST(IntervalJoin, ValidationNamesTheProblem) {
  auto ls = testing::left_schema(columnar::int64());
  auto rs = testing::right_schema(columnar::utf8());
  std::vector<columnar::SchemaPtr> in = {ls, rs};
  auto st = interval_join({keys_k(), times_t(), -1, 1, JoinKind::kInner})->output_schema(in);
  EXPECT_NE(st.status().message().find("right key 'k' is utf8"), std::string::npos)
      << st.status().to_string();
  in = {ls, testing::right_schema(columnar::int64())};
  st = interval_join({keys_k(), {"lv2", "t"}, -1, 1, JoinKind::kInner})->output_schema(in);
  EXPECT_NE(st.status().message().find("'lv2' not found"), std::string::npos);
  st = interval_join({keys_k(), {"ls", "t"}, -1, 1, JoinKind::kInner})->output_schema(in);
  EXPECT_NE(st.status().message().find("'ls' is utf8"), std::string::npos);
  st = interval_join({keys_k(), times_t(), 5, 1, JoinKind::kInner})->output_schema(in);
  EXPECT_FALSE(st.is_ok());
  st = interval_join({keys_k(), times_t(), -5, 1, JoinKind::kLeft})->output_schema(in);
  ASSERT_TRUE(st.is_ok());
  const auto& out = **st;
  EXPECT_EQ(out.field(5).name, "right_k");
  EXPECT_EQ(out.field(6).name, "right_t");
  EXPECT_EQ(out.field(7).name, "rv");
  EXPECT_TRUE(out.field(7).nullable);
}

TEST_P(JoinOnBackend, IntervalJoinRealJobWithKeyByOnBothInputsAtParallelismOneToFour) {
  for (int p = 1; p <= 4; ++p) {
    GenOptions g;
    g.late_fraction = 0;
    g.num_keys = 20;
    g.rows_per_side = 500;
    Script s = testing::make_script(g, 100 + p);
    for (JoinKind kind : {JoinKind::kInner, JoinKind::kFull}) {
      int64_t dropped = -1;
      auto rows = testing::sorted_rows(testing::run_job(
          interval_join({keys_k(), times_t(), -150, 50, kind}), s, p, &dropped, &backend()));
      ASSERT_EQ(rows, interval_reference(s, -150, 50, kind)) << "parallelism " << p;
      EXPECT_EQ(dropped, 0);
    }
  }
}

// ---- stream-table join ----

std::vector<std::string> stream_table_reference(const Script& s, JoinKind kind, bool deletes) {
  std::map<int64_t, const TestRow*> table;
  std::vector<std::string> out;
  for (const auto& st : s.steps) {
    for (size_t idx : st.rows) {
      const TestRow& r = s.rows[idx];
      if (st.side == 1) {
        // rflag (cell 4) is the delete marker when deletes are on.
        if (deletes && r.cells[4] == "true") {
          table.erase(r.key);
        } else {
          table[r.key] = &r;
        }
      } else {
        auto it = table.find(r.key);
        if (it != table.end()) {
          out.push_back(pair_row(s, &r, it->second));
        } else if (kind == JoinKind::kLeft) {
          out.push_back(pair_row(s, &r, nullptr));
        }
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_P(JoinOnBackend, StreamTableJoinEnrichesWithTheLatestRightRowAndHonoursDeletes) {
  uint32_t seed = 300;
  for (JoinKind kind : {JoinKind::kInner, JoinKind::kLeft}) {
    for (bool deletes : {false, true}) {
      for (auto kt : kKeyTypes) {
        ++seed;
        std::mt19937 rng(seed);
        GenOptions g;
        g.key_type = kt;
        g.num_keys = 1 + static_cast<int>(rng() % 10);
        g.rows_per_side = static_cast<int>(rng() % 300);
        g.max_batch = 1 + static_cast<int>(rng() % 30);
        g.right_delete_flag = deletes;
        Script s = testing::make_script(g, seed);
        StreamTableJoinOptions o{keys_k(), kind, deletes ? "rflag" : ""};
        auto f = stream_table_join(o);
        auto expected = stream_table_reference(s, kind, deletes);
        CollectOutput out;
        runtime::OperatorCounters c;
        std::vector<int64_t> sizes;
        testing::drive(*f, s, -1, &out, &c, &sizes, nullptr, &backend());
        ASSERT_EQ(testing::sorted_rows(out.batches), expected) << "seed " << seed;
        EXPECT_LE(sizes.back(), g.num_keys);
        if (!s.steps.empty()) {
          CollectOutput out2;
          testing::drive(*f, s, static_cast<int>(rng() % s.steps.size()), &out2, &c, nullptr,
                         nullptr, &backend());
          ASSERT_EQ(testing::sorted_rows(out2.batches), expected) << "seed " << seed;
        }
      }
    }
  }
}

TEST(StreamTableJoin, ValidatesKindAndDeleteMarker) {
  std::vector<columnar::SchemaPtr> in = {testing::left_schema(columnar::int64()),
                                         testing::right_schema(columnar::int64())};
  EXPECT_FALSE(stream_table_join({keys_k(), JoinKind::kFull, ""})->output_schema(in).is_ok());
  auto st = stream_table_join({keys_k(), JoinKind::kInner, "rv"})->output_schema(in);
  EXPECT_NE(st.status().message().find("'rv' is float64"), std::string::npos);
  st = stream_table_join({keys_k(), JoinKind::kInner, "nope"})->output_schema(in);
  EXPECT_NE(st.status().message().find("'nope' not found"), std::string::npos);
}

// ---- as-of join ----

std::vector<std::string> asof_reference(const Script& s, int64_t tol, JoinKind kind) {
  auto ls = on_time(s, 0), rs = on_time(s, 1);
  std::vector<std::string> out;
  for (const TestRow* l : ls) {
    const TestRow* best = nullptr;
    for (const TestRow* r : rs) {
      if (r->key != l->key || r->time > l->time) continue;
      if (tol >= 0 && l->time - r->time > tol) continue;
      if (!best || r->time > best->time || (r->time == best->time && r->seq > best->seq)) best = r;
    }
    if (best || kind == JoinKind::kLeft) out.push_back(pair_row(s, l, best));
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_P(JoinOnBackend, AsOfJoinPicksTheLatestRightRowAtOrBeforeEachLeftRow) {
  uint32_t seed = 500;
  for (JoinKind kind : {JoinKind::kInner, JoinKind::kLeft}) {
    for (int64_t tol : {int64_t{-1}, int64_t{0}, int64_t{150}}) {
      for (auto kt : kKeyTypes) {
        ++seed;
        std::mt19937 rng(seed);
        GenOptions g;
        g.key_type = kt;
        g.num_keys = 1 + static_cast<int>(rng() % 10);
        g.rows_per_side = static_cast<int>(rng() % 400);
        g.max_batch = 1 + static_cast<int>(rng() % 30);
        g.time_step = 1 + static_cast<int64_t>(rng() % 40);  // small steps give equal times
        g.allowed_lateness = (seed % 2) * 100;
        Script s = testing::make_script(g, seed);
        auto f = asof_join({keys_k(), times_t(g.allowed_lateness), tol, kind});
        auto expected = asof_reference(s, tol, kind);
        CollectOutput out;
        runtime::OperatorCounters c;
        std::vector<int64_t> sizes;
        testing::drive(*f, s, -1, &out, &c, &sizes, nullptr, &backend());
        ASSERT_EQ(testing::sorted_rows(out.batches), expected) << "seed " << seed;
        EXPECT_EQ(c.records_dropped.load(), count_late(s));
        EXPECT_EQ(sizes.back(), 0);
        if (g.rows_per_side > 200) {
          // Superseded right rows and resolved left rows are dropped as the watermark advances.
          EXPECT_LT(*std::max_element(sizes.begin(), sizes.end()),
                    g.rows_per_side / 2 + 8 * g.num_keys + 60)
              << "seed " << seed;
        }
        if (!s.steps.empty()) {
          CollectOutput out2;
          runtime::OperatorCounters c2;
          testing::drive(*f, s, static_cast<int>(rng() % s.steps.size()), &out2, &c2, nullptr,
                         nullptr, &backend());
          ASSERT_EQ(testing::sorted_rows(out2.batches), expected) << "seed " << seed;
        }
      }
    }
  }
}

// Many left rows wait for the watermark (a left input far ahead of the right one in event time):
// each watermark emits exactly the rows it resolves, in time order, and the output watermark stays
// below the oldest row still waiting.
TEST_P(JoinOnBackend, AsOfJoinAWatermarkResolvesOnlyTheRowsItPassesInTimeOrder) {
  using namespace columnar;
  const SchemaPtr left = schema({field("k", int64()), field("t", int64())});
  const SchemaPtr right = schema({field("k", int64()), field("t", int64()), field("v", int64())});
  auto f = asof_join({keys_k(), times_t(), -1, JoinKind::kLeft});
  std::vector<SchemaPtr> in = {left, right};
  runtime::OperatorContext ctx;
  ctx.state_backend = &backend();
  runtime::OperatorCounters counters;
  ctx.counters = &counters;
  auto op = f->create(in, ctx).value();
  ASSERT_TRUE(op->open(ctx).is_ok());
  CollectOutput out;
  // Right rows of key 1 at 0, 100, 200, ..., 9900 (value = time).
  Int64Builder rk(int64()), rt(int64()), rv(int64());
  for (int64_t t = 0; t < 10'000; t += 100) {
    rk.append(1);
    rt.append(t);
    rv.append(t);
  }
  ASSERT_TRUE(
      op->process_batch(RecordBatch::make(right, {rk.finish(), rt.finish(), rv.finish()}).value(),
                        1, out)
          .is_ok());
  // 5,000 left rows at times 1..10000 (odd), in a shuffled order, in batches of 100.
  std::vector<int64_t> times;
  for (int64_t t = 1; t < 10'000; t += 2) times.push_back(t);
  std::shuffle(times.begin(), times.end(), std::mt19937(7));
  for (size_t i = 0; i < times.size(); i += 100) {
    Int64Builder lk(int64()), lt(int64());
    for (size_t j = i; j < i + 100; ++j) {
      lk.append(1);
      lt.append(times[j]);
    }
    ASSERT_TRUE(
        op->process_batch(RecordBatch::make(left, {lk.finish(), lt.finish()}).value(), 0, out)
            .is_ok());
  }
  EXPECT_TRUE(out.batches.empty());
  int64_t next = 1;  // the next left time expected
  for (int64_t wm = 250; wm <= 10'250; wm += 250) {
    out.batches.clear();
    out.watermarks.clear();
    ASSERT_TRUE(op->process_watermark(Timestamp(wm), out).is_ok());
    for (const RecordBatch& b : out.batches) {
      for (int64_t i = 0; i < b.num_rows(); ++i) {
        ASSERT_EQ(b.column(1).value<int64_t>(i), next) << "watermark " << wm;
        EXPECT_EQ(b.column(4).value<int64_t>(i), next / 100 * 100);  // the as-of right row
        next += 2;
      }
    }
    EXPECT_EQ(next, std::min<int64_t>(wm % 2 == 0 ? wm + 1 : wm + 2, 10'001)) << "watermark " << wm;
    ASSERT_EQ(out.watermarks.size(), 1u);
    EXPECT_EQ(out.watermarks[0], wm);  // the oldest waiting row is at wm + 1: nothing held back
  }
  // The superseded right rows go when the key gets a newer one: only that one stays.
  EXPECT_EQ(dynamic_cast<StatefulOperator&>(*op).buffered_rows(), 100);
  Int64Builder nk(int64()), nt(int64()), nv(int64());
  nk.append(1);
  nt.append(10'300);
  nv.append(10'300);
  ASSERT_TRUE(
      op->process_batch(RecordBatch::make(right, {nk.finish(), nt.finish(), nv.finish()}).value(),
                        1, out)
          .is_ok());
  EXPECT_EQ(dynamic_cast<StatefulOperator&>(*op).buffered_rows(), 2);  // 9900 and 10300
}

// ---- window join ----

std::vector<std::string> window_reference(const Script& s, int64_t size, int64_t slide,
                                          JoinKind kind = JoinKind::kInner) {
  auto floor_div = [](int64_t a, int64_t b) {
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
  };
  // Rows of each side per (window start, key), in arrival order.
  std::map<std::pair<int64_t, int64_t>, std::vector<const TestRow*>> sides[2];
  for (int side = 0; side < 2; ++side) {
    for (const TestRow* x : on_time(s, side)) {
      for (int64_t st = floor_div(x->time, slide) * slide; st > x->time - size; st -= slide) {
        sides[side][{st, x->key}].push_back(x);
      }
    }
  }
  auto bounds = [&](int64_t st) {
    return std::vector<std::string>{
        columnar::Scalar::of_timestamp(st, columnar::TimeUnit::kMilli).to_string(),
        columnar::Scalar::of_timestamp(st + size, columnar::TimeUnit::kMilli).to_string()};
  };
  const bool left_outer = kind == JoinKind::kLeft || kind == JoinKind::kFull;
  const bool right_outer = kind == JoinKind::kRight || kind == JoinKind::kFull;
  std::vector<std::string> out;
  for (const auto& [wk, ls] : sides[0]) {
    auto rit = sides[1].find(wk);
    if (rit == sides[1].end()) {
      if (left_outer) {
        for (const TestRow* l : ls) out.push_back(pair_row(s, l, nullptr, bounds(wk.first)));
      }
      continue;
    }
    for (const TestRow* l : ls) {
      for (const TestRow* r : rit->second) out.push_back(pair_row(s, l, r, bounds(wk.first)));
    }
  }
  if (right_outer) {
    for (const auto& [wk, rs] : sides[1]) {
      if (sides[0].count(wk)) continue;
      for (const TestRow* r : rs) out.push_back(pair_row(s, nullptr, r, bounds(wk.first)));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_P(JoinOnBackend, WindowJoinJoinsRowsOfTheSameKeyAndWindowForTumblingAndSlidingWindows) {
  uint32_t seed = 700;
  for (auto [size, slide] :
       {std::pair<int64_t, int64_t>{500, 500}, {600, 200}, {100, 0}, {1000, 250}}) {
    for (auto kt : kKeyTypes) {
      ++seed;
      std::mt19937 rng(seed);
      GenOptions g;
      g.key_type = kt;
      g.num_keys = 1 + static_cast<int>(rng() % 8);
      g.rows_per_side = static_cast<int>(rng() % 300);
      g.max_batch = 1 + static_cast<int>(rng() % 30);
      g.allowed_lateness = (seed % 2) * 120;
      Script s = testing::make_script(g, seed);
      auto f = window_join({keys_k(), times_t(g.allowed_lateness), size, slide});
      auto expected = window_reference(s, size, slide == 0 ? size : slide);
      CollectOutput out;
      runtime::OperatorCounters c;
      std::vector<int64_t> sizes;
      testing::drive(*f, s, -1, &out, &c, &sizes, nullptr, &backend());
      ASSERT_EQ(testing::sorted_rows(out.batches), expected) << "seed " << seed;
      EXPECT_EQ(c.records_dropped.load(), count_late(s));
      EXPECT_EQ(sizes.back(), 0);
      if (!s.steps.empty()) {
        CollectOutput out2;
        runtime::OperatorCounters c2;
        testing::drive(*f, s, static_cast<int>(rng() % s.steps.size()), &out2, &c2, nullptr,
                       nullptr, &backend());
        ASSERT_EQ(testing::sorted_rows(out2.batches), expected) << "seed " << seed;
      }
    }
  }
}

TEST_P(JoinOnBackend, WindowJoinOuterKindsEmitRowsWithoutPartnerInTheirWindow) {
  uint32_t seed = 750;
  for (JoinKind kind : kAllKinds) {
    for (auto [size, slide] : {std::pair<int64_t, int64_t>{500, 500}, {600, 200}}) {
      ++seed;
      std::mt19937 rng(seed);
      GenOptions g;
      g.key_type = kKeyTypes[seed % 3];
      g.num_keys = 1 + static_cast<int>(rng() % 12);
      g.rows_per_side = static_cast<int>(rng() % 200);
      g.max_batch = 1 + static_cast<int>(rng() % 30);
      Script s = testing::make_script(g, seed);
      WindowJoinOptions o{keys_k(), times_t(), size, slide};
      o.kind = kind;
      auto f = window_join(o);
      auto expected = window_reference(s, size, slide, kind);
      CollectOutput out;
      runtime::OperatorCounters c;
      testing::drive(*f, s, -1, &out, &c, nullptr, nullptr, &backend());
      ASSERT_EQ(testing::sorted_rows(out.batches), expected) << "seed " << seed;
      if (!s.steps.empty()) {  // and across a snapshot
        CollectOutput out2;
        runtime::OperatorCounters c2;
        testing::drive(*f, s, static_cast<int>(rng() % s.steps.size()), &out2, &c2, nullptr,
                       nullptr, &backend());
        ASSERT_EQ(testing::sorted_rows(out2.batches), expected) << "seed " << seed;
      }
    }
  }
}

TEST(WindowJoin, RejectsBadWindowSizes) {
  std::vector<columnar::SchemaPtr> in = {testing::left_schema(columnar::int64()),
                                         testing::right_schema(columnar::int64())};
  EXPECT_FALSE(window_join({keys_k(), times_t(), 0, 0})->output_schema(in).is_ok());
  EXPECT_FALSE(window_join({keys_k(), times_t(), 100, 30})->output_schema(in).is_ok());
  auto ok = window_join({keys_k(), times_t(), 100, 50})->output_schema(in);
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ((*ok)->field((*ok)->num_fields() - 2).name, "window_start");
}

// ---- regular join ----

// Row arrival times follow drive(): step i runs at processing time 10 i ms.
std::vector<std::string> regular_reference(const Script& s, JoinKind kind, int64_t ttl) {
  std::vector<int64_t> arrival(s.rows.size());
  for (size_t i = 0; i < s.steps.size(); ++i) {
    for (size_t idx : s.steps[i].rows) arrival[idx] = static_cast<int64_t>(i) * 10;
  }
  std::vector<std::string> out;
  std::vector<bool> matched(s.rows.size(), false);
  for (size_t a = 0; a < s.rows.size(); ++a) {
    for (size_t b = 0; b < s.rows.size(); ++b) {
      const TestRow& l = s.rows[a];
      const TestRow& r = s.rows[b];
      if (l.side != 0 || r.side != 1 || l.key != r.key) continue;
      // The earlier row must still be stored when the later one arrives.
      int64_t first = std::min(arrival[a], arrival[b]), second = std::max(arrival[a], arrival[b]);
      if (ttl > 0 && first + ttl <= second) continue;
      out.push_back(pair_row(s, &l, &r));
      matched[a] = matched[b] = true;
    }
  }
  for (size_t a = 0; a < s.rows.size(); ++a) {
    const TestRow& x = s.rows[a];
    if (matched[a]) continue;
    if (x.side == 0 && (kind == JoinKind::kLeft || kind == JoinKind::kFull)) {
      out.push_back(pair_row(s, &x, nullptr));
    }
    if (x.side == 1 && (kind == JoinKind::kRight || kind == JoinKind::kFull)) {
      out.push_back(pair_row(s, nullptr, &x));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_P(JoinOnBackend, RegularJoinMatchesNestedLoopReferenceWithProcessingTimeTtl) {
  uint32_t seed = 900;
  for (JoinKind kind : kAllKinds) {
    for (int64_t ttl : {int64_t{0}, int64_t{35}, int64_t{200}}) {
      ++seed;
      std::mt19937 rng(seed);
      GenOptions g;
      g.key_type = kKeyTypes[seed % 3];
      g.num_keys = 1 + static_cast<int>(rng() % 10);
      g.rows_per_side = static_cast<int>(rng() % 150);
      g.max_batch = 1 + static_cast<int>(rng() % 20);
      g.late_fraction = 0;  // no event time here; "late" rows are ordinary rows
      Script s = testing::make_script(g, seed);
      auto f = regular_join({keys_k(), kind, ttl});
      auto expected = regular_reference(s, kind, ttl);
      ManualClock clock;
      CollectOutput out;
      runtime::OperatorCounters c;
      std::vector<int64_t> sizes;
      testing::drive(*f, s, -1, &out, &c, &sizes, &clock, &backend());
      ASSERT_EQ(testing::sorted_rows(out.batches), expected) << "seed " << seed;
      EXPECT_EQ(sizes.back(), 0);
      if (ttl > 0 && sizes.size() > 2) {
        // With a TTL of a few steps only the most recent batches stay buffered.
        EXPECT_LE(*std::max_element(sizes.begin(), sizes.end()), (ttl / 10 + 1) * g.max_batch);
      }
      if (!s.steps.empty()) {
        ManualClock clock2;
        CollectOutput out2;
        testing::drive(*f, s, static_cast<int>(rng() % s.steps.size()), &out2, &c, nullptr, &clock2,
                       &backend());
        ASSERT_EQ(testing::sorted_rows(out2.batches), expected) << "seed " << seed;
      }
    }
  }
}

// ---- every join through a real job ----

TEST_P(JoinOnBackend, RealJobsWithKeyByOnBothInputsMatchTheReferences) {
  for (int p = 1; p <= 4; ++p) {
    GenOptions g;
    g.late_fraction = 0;
    g.num_keys = 16;
    g.rows_per_side = 300;
    g.key_type = kKeyTypes[p % 3];
    Script s = testing::make_script(g, 1000 + p);
    int64_t dropped = -1;
    auto rows = testing::sorted_rows(testing::run_job(
        asof_join({keys_k(), times_t(), 100, JoinKind::kLeft}), s, p, &dropped, &backend()));
    EXPECT_EQ(rows, asof_reference(s, 100, JoinKind::kLeft)) << "asof, parallelism " << p;
    rows = testing::sorted_rows(
        testing::run_job(window_join({keys_k(), times_t(), 400, 200}), s, p, &dropped, &backend()));
    EXPECT_EQ(rows, window_reference(s, 400, 200)) << "window, parallelism " << p;
    // Without a TTL the regular join's result does not depend on the arrival interleaving.
    rows = testing::sorted_rows(
        testing::run_job(regular_join({keys_k(), JoinKind::kFull, 0}), s, p, &dropped, &backend()));
    EXPECT_EQ(rows, regular_reference(s, JoinKind::kFull, 0)) << "regular, parallelism " << p;
    EXPECT_EQ(dropped, 0);
  }
}

// ---- snapshots: one envelope, split by key group, restorable at another parallelism ----

// Runs `f` uninterrupted (one instance) and rescaled (P instances fed by key group, snapshot at a
// random step, restored into Q fresh instances each given every old snapshot) and checks both
// against the reference.
void check_rescaling(const std::string& what, const runtime::OperatorFactory& f, const Script& s,
                     const std::vector<std::string>& expected, bool with_clock, bool event_time,
                     std::mt19937& rng, const state::StateBackend* backend = nullptr) {
  ManualClock clock;
  CollectOutput out;
  runtime::OperatorCounters c;
  testing::drive(f, s, -1, &out, &c, nullptr, with_clock ? &clock : nullptr, backend);
  const auto uninterrupted = testing::sorted_rows(out.batches);
  ASSERT_EQ(uninterrupted, expected) << what;
  for (auto [p, q] : {std::pair{3, 2}, std::pair{1, 3}, std::pair{2, 2}, std::pair{3, 1}}) {
    const int at = s.steps.empty() ? -1 : static_cast<int>(rng() % s.steps.size());
    ManualClock clock2;
    runtime::OperatorCounters c2;
    auto rows = testing::sorted_rows(
        testing::drive_rescaled(f, s, p, q, at, 2, &c2, with_clock ? &clock2 : nullptr,
                                static_cast<uint32_t>(rng()), backend));
    ASSERT_EQ(rows, uninterrupted) << what << ": " << p << " -> " << q << " at step " << at;
    if (event_time) {
      EXPECT_EQ(c2.records_dropped.load(), count_late(s)) << what;
    }
  }
}

GenOptions random_gen(std::mt19937& rng, uint32_t seed) {
  GenOptions g;
  g.key_type = kKeyTypes[seed % 3];
  g.num_keys = 1 + static_cast<int>(rng() % 40);
  g.rows_per_side = static_cast<int>(rng() % 300);
  g.max_batch = 1 + static_cast<int>(rng() % 30);
  g.allowed_lateness = (seed % 2) * 100;
  return g;
}

TEST_P(JoinOnBackend, IntervalJoinRestoresAtAnotherParallelism) {
  for (uint32_t seed = 2000; seed < 2008; ++seed) {
    std::mt19937 rng(seed);
    Script s = testing::make_script(random_gen(rng, seed), seed);
    const JoinKind kind = kAllKinds[seed % 4];
    auto f = interval_join({keys_k(), times_t(seed % 2 * 100), -150, 80, kind});
    check_rescaling("interval seed " + std::to_string(seed), *f, s,
                    interval_reference(s, -150, 80, kind), false, true, rng, &backend());
  }
}

TEST_P(JoinOnBackend, StreamTableJoinRestoresAtAnotherParallelism) {
  for (uint32_t seed = 2100; seed < 2108; ++seed) {
    std::mt19937 rng(seed);
    GenOptions g = random_gen(rng, seed);
    g.right_delete_flag = seed % 2 == 0;
    Script s = testing::make_script(g, seed);
    const JoinKind kind = seed % 3 == 0 ? JoinKind::kInner : JoinKind::kLeft;
    auto f = stream_table_join({keys_k(), kind, g.right_delete_flag ? "rflag" : ""});
    check_rescaling("stream-table seed " + std::to_string(seed), *f, s,
                    stream_table_reference(s, kind, g.right_delete_flag), false, false, rng,
                    &backend());
  }
}

TEST_P(JoinOnBackend, AsOfJoinRestoresAtAnotherParallelism) {
  for (uint32_t seed = 2200; seed < 2208; ++seed) {
    std::mt19937 rng(seed);
    GenOptions g = random_gen(rng, seed);
    g.time_step = 1 + static_cast<int64_t>(rng() % 40);
    Script s = testing::make_script(g, seed);
    const JoinKind kind = seed % 2 == 0 ? JoinKind::kInner : JoinKind::kLeft;
    const int64_t tol = seed % 3 == 0 ? -1 : 120;
    auto f = asof_join({keys_k(), times_t(g.allowed_lateness), tol, kind});
    check_rescaling("asof seed " + std::to_string(seed), *f, s, asof_reference(s, tol, kind), false,
                    true, rng, &backend());
  }
}

TEST_P(JoinOnBackend, WindowJoinRestoresAtAnotherParallelism) {
  for (uint32_t seed = 2300; seed < 2308; ++seed) {
    std::mt19937 rng(seed);
    GenOptions g = random_gen(rng, seed);
    Script s = testing::make_script(g, seed);
    const int64_t slide = seed % 2 == 0 ? 500 : 200;
    WindowJoinOptions o{keys_k(), times_t(g.allowed_lateness), 600, slide == 500 ? 0 : slide};
    o.size_ms = slide == 500 ? 500 : 600;
    o.kind = kAllKinds[seed % 4];
    auto f = window_join(o);
    check_rescaling("window seed " + std::to_string(seed), *f, s,
                    window_reference(s, o.size_ms, slide, o.kind), false, true, rng, &backend());
  }
}

TEST_P(JoinOnBackend, RegularJoinRestoresAtAnotherParallelism) {
  for (uint32_t seed = 2400; seed < 2408; ++seed) {
    std::mt19937 rng(seed);
    GenOptions g = random_gen(rng, seed);
    g.rows_per_side = static_cast<int>(rng() % 150);
    g.late_fraction = 0;
    Script s = testing::make_script(g, seed);
    const JoinKind kind = kAllKinds[seed % 4];
    const int64_t ttl = seed % 3 == 0 ? 0 : 35 + static_cast<int64_t>(seed % 5) * 40;
    auto f = regular_join({keys_k(), kind, ttl});
    check_rescaling("regular seed " + std::to_string(seed), *f, s, regular_reference(s, kind, ttl),
                    true, false, rng, &backend());
  }
}

// A snapshot of `f` after the first half of a script (with state in several key groups).
std::string half_way_snapshot(const runtime::OperatorFactory& f, const Script& s,
                              const state::StateBackend& backend) {
  std::vector<columnar::SchemaPtr> in = {s.schema[0], s.schema[1]};
  runtime::OperatorContext ctx;
  ctx.uid = "under-test";
  ctx.state_backend = &backend;
  auto op = f.create(in, ctx).value();
  EXPECT_TRUE(op->open(ctx).is_ok());
  CollectOutput out;
  for (size_t i = 0; i < s.steps.size() / 2; ++i) {
    EXPECT_TRUE(op->process_batch(s.steps[i].batch, s.steps[i].side, out).is_ok());
  }
  std::string bytes;
  EXPECT_TRUE(op->snapshot_state(CheckpointId(1), &bytes).is_ok());
  return bytes;
}

TEST_P(JoinOnBackend, TruncatedFlippedAndForeignSnapshotsAreRefusedNamingUidAndOffset) {
  GenOptions g;
  g.late_fraction = 0;
  g.num_keys = 30;
  Script s = testing::make_script(g, 2500);
  std::vector<columnar::SchemaPtr> in = {s.schema[0], s.schema[1]};
  std::shared_ptr<const runtime::OperatorFactory> joins[] = {
      interval_join({keys_k(), times_t(), -100, 100, JoinKind::kFull}),
      stream_table_join({keys_k(), JoinKind::kLeft, ""}),
      asof_join({keys_k(), times_t(), -1, JoinKind::kLeft}),
      window_join({keys_k(), times_t(), 500, 0}), regular_join({keys_k(), JoinKind::kFull, 0})};
  for (size_t j = 0; j < std::size(joins); ++j) {
    std::string bytes = half_way_snapshot(*joins[j], s, backend());
    EXPECT_GT(bytes.size(), 1000u) << joins[j]->kind();
    testing::expect_corrupt_snapshots_refused(*joins[j], joins[(j + 1) % std::size(joins)].get(),
                                              in, bytes, static_cast<uint32_t>(j), &backend());
  }
}

// ---- bounded state ----

// Keys come and go: every window of 100 ms has ten new keys on both sides. Fired windows free
// their rows, and the window join forgets the keys no open window holds, so its key dictionary
// stays the size of the open windows instead of growing with every key ever seen.
TEST(WindowJoin, KeyDictionaryStaysBoundedWhenKeysComeAndGo) {
  using namespace columnar;
  const SchemaPtr left = schema({field("k", int64()), field("t", int64())});
  const SchemaPtr right = schema({field("k", int64()), field("t", int64()), field("v", int64())});
  auto f = window_join({keys_k(), times_t(), 100, 0});
  std::vector<SchemaPtr> in = {left, right};
  runtime::OperatorContext ctx;
  auto op = f->create(in, ctx).value();
  ASSERT_TRUE(op->open(ctx).is_ok());
  auto& stateful = dynamic_cast<StatefulOperator&>(*op);
  CollectOutput out;
  int64_t max_keys = 0;
  const int64_t kWindows = 3000;
  for (int64_t w = 0; w < kWindows; ++w) {
    Int64Builder lk(int64()), lt(int64()), rk(int64()), rt(int64()), rv(int64());
    for (int64_t j = 0; j < 10; ++j) {
      lk.append(w * 10 + j);
      lt.append(w * 100 + j);
      rk.append(w * 10 + j);
      rt.append(w * 100 + 50 + j);
      rv.append(w);
    }
    ASSERT_TRUE(
        op->process_batch(RecordBatch::make(left, {lk.finish(), lt.finish()}).value(), 0, out)
            .is_ok());
    ASSERT_TRUE(
        op->process_batch(RecordBatch::make(right, {rk.finish(), rt.finish(), rv.finish()}).value(),
                          1, out)
            .is_ok());
    // The previous window is complete: fire it (keys of two windows are live at most).
    ASSERT_TRUE(op->process_watermark(Timestamp(w * 100 - 1), out).is_ok());
    max_keys = std::max(max_keys, stateful.dictionary_keys());
  }
  ASSERT_TRUE(op->process_watermark(Timestamp::max(), out).is_ok());
  ASSERT_TRUE(op->finish(out).is_ok());
  EXPECT_LE(max_keys, 200) << "the key dictionary grew with every key ever seen";
  EXPECT_EQ(stateful.buffered_rows(), 0);
  // Every key met its partner in its window, once, with the right value.
  int64_t rows = 0;
  for (const RecordBatch& b : out.batches) {
    for (int64_t i = 0; i < b.num_rows(); ++i) {
      ASSERT_EQ(b.column(0).value<int64_t>(i), b.column(2).value<int64_t>(i));
      ASSERT_EQ(b.column(4).value<int64_t>(i), b.column(0).value<int64_t>(i) / 10);
      ++rows;
    }
  }
  EXPECT_EQ(rows, kWindows * 10);
}

// The interval join forgets keys without buffered rows in the same way.
TEST(IntervalJoin, KeyDictionaryStaysBoundedWhenKeysComeAndGo) {
  using namespace columnar;
  const SchemaPtr left = schema({field("k", int64()), field("t", int64())});
  const SchemaPtr right = schema({field("k", int64()), field("t", int64()), field("v", int64())});
  for (JoinKind kind : {JoinKind::kInner, JoinKind::kFull}) {
    auto f = interval_join({keys_k(), times_t(), -10, 10, kind});
    std::vector<SchemaPtr> in = {left, right};
    runtime::OperatorContext ctx;
    auto op = f->create(in, ctx).value();
    ASSERT_TRUE(op->open(ctx).is_ok());
    auto& stateful = dynamic_cast<StatefulOperator&>(*op);
    CollectOutput out;
    int64_t max_keys = 0;
    const int64_t kSteps = 3000;
    for (int64_t w = 0; w < kSteps; ++w) {
      Int64Builder lk(int64()), lt(int64()), rk(int64()), rt(int64()), rv(int64());
      for (int64_t j = 0; j < 10; ++j) {
        lk.append(w * 10 + j);
        lt.append(w * 100 + j);
        rk.append(w * 10 + j);
        rt.append(w * 100 + j + 5);
        rv.append(w);
      }
      ASSERT_TRUE(
          op->process_batch(RecordBatch::make(left, {lk.finish(), lt.finish()}).value(), 0, out)
              .is_ok());
      ASSERT_TRUE(
          op->process_batch(
                RecordBatch::make(right, {rk.finish(), rt.finish(), rv.finish()}).value(), 1, out)
              .is_ok());
      ASSERT_TRUE(op->process_watermark(Timestamp(w * 100 - 1), out).is_ok());
      max_keys = std::max(max_keys, stateful.dictionary_keys());
    }
    ASSERT_TRUE(op->process_watermark(Timestamp::max(), out).is_ok());
    ASSERT_TRUE(op->finish(out).is_ok());
    EXPECT_LE(max_keys, 200) << "the key dictionary grew with every key ever seen";
    EXPECT_EQ(stateful.buffered_rows(), 0);
    int64_t rows = 0;
    for (const RecordBatch& b : out.batches) {
      for (int64_t i = 0; i < b.num_rows(); ++i) {
        ASSERT_EQ(b.column(0).value<int64_t>(i), b.column(2).value<int64_t>(i));
        ASSERT_EQ(b.column(4).value<int64_t>(i), b.column(0).value<int64_t>(i) / 10);
        ++rows;
      }
    }
    EXPECT_EQ(rows, kSteps * 10);
  }
}

// A version 1 snapshot (per key group the table rows as an Arrow IPC stream, written before the
// table moved to the backend) restores at parallelism 1 and 3: every left row of a key 0..99 gets
// its table row, the keys 100..119 none.
TEST_P(JoinOnBackend, StreamTableJoinRestoresVersionOneSnapshots) {
  const columnar::SchemaPtr left = testing::left_schema(columnar::int64());
  const columnar::SchemaPtr right = testing::right_schema(columnar::int64());
  auto rows_of = [](const columnar::SchemaPtr& schema, int64_t from, int64_t to) {
    std::vector<std::unique_ptr<columnar::ArrayBuilder>> b;
    for (const auto& f : schema->fields()) b.push_back(columnar::make_builder(f.type));
    for (int64_t k = from; k < to; ++k) {
      b[0]->append_scalar(columnar::Scalar::of_int64(k));
      b[1]->append_scalar(columnar::Scalar::of_timestamp(k, schema->field(1).type.unit()));
      if (schema->num_fields() == 5) {  // left: lv, ls, lu
        b[2]->append_scalar(columnar::Scalar::of_int64(-k));
        b[3]->append_scalar(columnar::Scalar::of_utf8("l" + std::to_string(k)));
        b[4]->append_scalar(columnar::Scalar::of_uint64(static_cast<uint64_t>(k)));
      } else {  // right: rv, rb, rflag, ri
        b[2]->append_scalar(columnar::Scalar::of_float64(1.5 * static_cast<double>(k)));
        b[3]->append_scalar(columnar::Scalar::of_binary("r" + std::to_string(k)));
        b[4]->append_scalar(columnar::Scalar::of_bool(false));
        b[5]->append_scalar(columnar::Scalar::of_int32(static_cast<int32_t>(k)));
      }
    }
    std::vector<columnar::Array> cols;
    for (auto& x : b) cols.push_back(x->finish());
    return RecordBatch::make(schema, std::move(cols)).value();
  };
  const RecordBatch table = rows_of(right, 0, 100);
  std::string bytes;
  {
    state::SnapshotWriter w(&bytes, {"under-test", "stream-table-join", 1, 128});
    const columnar::SchemaPtr rows = internal::rows_schema(*right, {});
    for (int kg = 0; kg < 128; ++kg) {
      RecordBatch part = testing::rows_of_key_groups(table, [&](int g) { return g == kg; });
      if (part.num_rows() == 0) continue;
      internal::put_rows(w.begin_section(kg), rows, part.columns(), part.num_rows());
    }
    w.finish();
  }
  auto f = stream_table_join({keys_k(), JoinKind::kLeft, ""});
  std::vector<columnar::SchemaPtr> in = {left, right};
  const RecordBatch probes = rows_of(left, 0, 120);
  for (int p : {1, 3}) {
    std::vector<std::string> joined;
    int64_t held = 0;
    for (int i = 0; i < p; ++i) {
      auto op = testing::restored_subtask(*f, in, i, p, &backend(), bytes);
      held += dynamic_cast<StatefulOperator&>(*op).buffered_rows();
      CollectOutput out;
      RecordBatch mine = testing::rows_of_key_groups(
          probes, [&](int kg) { return subtask_for_key_group(kg, p, 128) == i; });
      ASSERT_TRUE(op->process_batch(mine, 0, out).is_ok());
      for (const auto& b : out.batches) {
        for (int64_t r = 0; r < b.num_rows(); ++r) {
          // k, then the right row's rv and ri (columns 5 + 2 and 5 + 5).
          joined.push_back(b.column(0).scalar_at(r).to_string() + " " +
                           b.column(7).scalar_at(r).to_string() + " " +
                           b.column(10).scalar_at(r).to_string());
        }
      }
    }
    EXPECT_EQ(held, 100) << "parallelism " << p;
    std::vector<std::string> expected;
    for (int64_t k = 0; k < 120; ++k) {
      expected.push_back(
          std::to_string(k) + " " +
          (k < 100 ? columnar::Scalar::of_float64(1.5 * static_cast<double>(k)).to_string() + " " +
                         std::to_string(k)
                   : std::string("null null")));
    }
    std::sort(expected.begin(), expected.end());
    std::sort(joined.begin(), joined.end());
    EXPECT_EQ(joined, expected) << "parallelism " << p;
  }
}

// On RocksDB the interval, as-of, window and regular joins keep their rows in the backend
// (join_keyed.cc): their snapshots wrap the keyed state under their own state type, and a snapshot
// of the memory backend's operator (rows in the operator) is refused with what to do instead.
TEST(JoinInRocksDb, RowsLiveInTheBackendAndMemorySnapshotsAreRefusedClearly) {
  GenOptions g;
  g.late_fraction = 0;
  g.num_keys = 30;
  Script s = testing::make_script(g, 2600);
  std::vector<columnar::SchemaPtr> in = {s.schema[0], s.schema[1]};
  const auto& rocksdb = state::testing::backend_of(state::testing::BackendKind::kRocksDb);
  const auto& memory = state::testing::backend_of(state::testing::BackendKind::kMemory);
  const std::pair<std::shared_ptr<const runtime::OperatorFactory>, std::string> joins[] = {
      {interval_join({keys_k(), times_t(), -100, 100, JoinKind::kFull}), "interval-join"},
      {asof_join({keys_k(), times_t(), -1, JoinKind::kLeft}), "asof-join"},
      {window_join({keys_k(), times_t(), 500, 0}), "window-join"},
      {regular_join({keys_k(), JoinKind::kFull, 0}), "regular-join"}};
  for (const auto& [f, type] : joins) {
    const std::string in_backend = half_way_snapshot(*f, s, rocksdb);
    auto header = state::SnapshotReader::peek_header(in_backend);
    ASSERT_TRUE(header.is_ok());
    EXPECT_EQ(header->state_type, "keyed-" + type);
    const std::string in_operator = half_way_snapshot(*f, s, memory);
    EXPECT_EQ(state::SnapshotReader::peek_header(in_operator)->state_type, type);
    runtime::OperatorContext ctx;
    ctx.uid = "under-test";
    ctx.state_backend = &rocksdb;
    auto op = f->create(in, ctx).value();
    ASSERT_TRUE(op->open(ctx).is_ok());
    Status st = op->restore_state(in_operator);
    EXPECT_NE(st.message().find("restore it with the memory state backend"), std::string::npos)
        << st.to_string();
  }
}

// An interval join whose buffered rows are ten times the memory its RocksDB backend may use
// (256 KiB block cache, 2 x 128 KiB memtables, 64 KiB write cache) runs to the end with the right
// pairs: the bounds keep every row until the final watermark, so the rows of most keys are read
// back from SST files when their partners arrive.
TEST(JoinInRocksDb, RowsTenTimesLargerThanCachesAndWriteBuffersJoinRight) {
  using namespace columnar;
  state::testing::ScratchRocksDb rocksdb("sabot_join_larger_than_memory",
                                         {.block_cache_bytes = size_t{256} << 10,
                                          .write_buffer_bytes = size_t{128} << 10,
                                          .max_write_buffers = 2,
                                          .write_cache_bytes = size_t{64} << 10});
  const SchemaPtr left = schema({field("k", int64()), field("t", int64()), field("lv", utf8())});
  const SchemaPtr right = schema({field("k", int64()), field("t", int64()), field("rv", int64())});
  auto f = interval_join({keys_k(), times_t(), -1'000'000, 1'000'000, JoinKind::kLeft});
  std::vector<SchemaPtr> in = {left, right};
  runtime::OperatorContext ctx;
  ctx.uid = "under-test";
  ctx.state_backend = rocksdb.get();
  auto op = f->create(in, ctx).value();
  ASSERT_TRUE(op->open(ctx).is_ok());
  CollectOutput out;
  // 60,000 keys, each with a 40-byte left row; then a right row for every even key.
  constexpr int64_t kKeys = 60'000;
  for (int64_t from = 0; from < kKeys; from += 5000) {
    Int64Builder k(int64()), t(int64());
    StringBuilder v(utf8());
    for (int64_t i = from; i < from + 5000; ++i) {
      k.append(i);
      t.append(i % 1000);
      v.append("left row " + std::to_string(i) + std::string(30, 'x'));
    }
    ASSERT_TRUE(op->process_batch(
                      RecordBatch::make(left, {k.finish(), t.finish(), v.finish()}).value(), 0, out)
                    .is_ok());
  }
  const uint64_t memory = (size_t{256} << 10) + 2 * (size_t{128} << 10) + (size_t{64} << 10);
  std::string snapshot;
  ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &snapshot).is_ok());  // flushes to SST files
  const uint64_t sst_bytes = rocksdb.sst_bytes();
  EXPECT_GE(snapshot.size(), 10 * memory) << "the rows, as the snapshot holds them";
  EXPECT_GE(sst_bytes, 4 * memory) << "the rows should live mostly in SST files";
  for (int64_t from = 0; from < kKeys; from += 5000) {
    Int64Builder k(int64()), t(int64()), v(int64());
    for (int64_t i = from; i < from + 5000; i += 2) {
      k.append(i);
      t.append(500);
      v.append(-i);
    }
    ASSERT_TRUE(
        op->process_batch(RecordBatch::make(right, {k.finish(), t.finish(), v.finish()}).value(), 1,
                          out)
            .is_ok());
  }
  ASSERT_TRUE(op->process_watermark(Timestamp::max(), out).is_ok());
  ASSERT_TRUE(op->finish(out).is_ok());
  // Every left row once: with its right row (rv = -k) for even keys, with nulls for odd ones.
  int64_t rows = 0;
  std::vector<char> seen(kKeys, 0);
  for (const RecordBatch& b : out.batches) {
    for (int64_t i = 0; i < b.num_rows(); ++i, ++rows) {
      const int64_t k = b.column(0).value<int64_t>(i);
      ASSERT_EQ(b.column(2).scalar_at(i).to_string(),
                "\"left row " + std::to_string(k) + std::string(30, 'x') + "\"");
      if (k % 2 == 0) {
        ASSERT_EQ(b.column(5).value<int64_t>(i), -k);
      } else {
        ASSERT_FALSE(b.column(5).is_valid(i));
      }
      ASSERT_EQ(seen[static_cast<size_t>(k)]++, 0) << "key " << k;
    }
  }
  EXPECT_EQ(rows, kKeys);
  EXPECT_EQ(dynamic_cast<StatefulOperator&>(*op).buffered_rows(), 0);
}

// Rows may still come after the final watermark and before finish() (a lateness that reaches
// back to time 0 keeps them on time): the interval join matches them with the rows the watermark
// left, and the as-of join resolves its waiting rows at finish() with the right rows that came
// meanwhile, on both backends.
TEST_P(JoinOnBackend, RowsAfterTheFinalWatermarkStillJoinAtFinish) {
  using namespace columnar;
  const SchemaPtr left = schema({field("k", int64()), field("t", int64())});
  const SchemaPtr right = schema({field("k", int64()), field("t", int64()), field("v", int64())});
  std::vector<SchemaPtr> in = {left, right};
  auto row = [&](bool is_left, int64_t t) {
    Int64Builder k(int64()), tb(int64()), v(int64());
    k.append(1);
    tb.append(t);
    v.append(t * 10);
    if (is_left) return RecordBatch::make(left, {k.finish(), tb.finish()}).value();
    return RecordBatch::make(right, {k.finish(), tb.finish(), v.finish()}).value();
  };
  const int64_t all_time = INT64_MAX;  // allowed lateness: the threshold stays <= 0
  const std::pair<std::shared_ptr<const runtime::OperatorFactory>, int64_t> joins[] = {
      {interval_join({keys_k(), times_t(all_time), -10, 10, JoinKind::kLeft}), 7},
      {asof_join({keys_k(), times_t(all_time), -1, JoinKind::kLeft}), 3}};
  for (const auto& [f, right_time] : joins) {
    runtime::OperatorContext ctx;
    ctx.uid = "under-test";
    ctx.state_backend = &backend();
    auto op = f->create(in, ctx).value();
    ASSERT_TRUE(op->open(ctx).is_ok());
    CollectOutput out;
    ASSERT_TRUE(op->process_batch(row(true, 5), 0, out).is_ok());
    ASSERT_TRUE(op->process_watermark(Timestamp::max(), out).is_ok());
    ASSERT_TRUE(op->process_batch(row(false, right_time), 1, out).is_ok());
    ASSERT_TRUE(op->finish(out).is_ok());
    std::vector<std::string> rows = testing::sorted_rows(out.batches);
    ASSERT_EQ(rows.size(), 1u) << f->kind();
    EXPECT_EQ(rows[0], testing::join_cells({"1", "5", "1", std::to_string(right_time),
                                            std::to_string(right_time * 10)}))
        << f->kind();
    EXPECT_EQ(dynamic_cast<StatefulOperator&>(*op).buffered_rows(), 0) << f->kind();
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, JoinOnBackend,
                         ::testing::Values(state::testing::BackendKind::kMemory,
                                           state::testing::BackendKind::kRocksDb),
                         state::testing::backend_kind_name);

}  // namespace
}  // namespace sabot::operators
