#include "sabot/operators/join.h"

#include <gtest/gtest.h>

#include "operators/join_test_util.h"

namespace sabot::operators {
namespace {

using columnar::RecordBatch;
using testing::CollectOutput;
using testing::GenOptions;
using testing::Script;
using testing::TestRow;

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

TEST(IntervalJoin, MatchesNestedLoopReferenceForEveryKindOnRandomOutOfOrderData) {
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
        testing::drive(*f, s, -1, &out, &counters, &sizes);
        ASSERT_EQ(testing::sorted_rows(out.batches), expected) << "seed " << seed;
        EXPECT_EQ(counters.records_dropped.load(), count_late(s));
        EXPECT_EQ(sizes.back(), 0);
        // Snapshot at a random step, restore into a fresh operator: same result.
        if (!s.steps.empty()) {
          CollectOutput out2;
          runtime::OperatorCounters c2;
          testing::drive(*f, s, static_cast<int>(rng() % s.steps.size()), &out2, &c2);
          ASSERT_EQ(testing::sorted_rows(out2.batches), expected) << "seed " << seed;
        }
      }
    }
  }
}

TEST(IntervalJoin, LateRowsGoToSideOutputsWhenAsked) {
  GenOptions g;
  g.late_fraction = 0.1;
  Script s = testing::make_script(g, 77);
  auto f = interval_join({keys_k(), times_t(0, true), -100, 100, JoinKind::kInner});
  CollectOutput out;
  runtime::OperatorCounters counters;
  testing::drive(*f, s, -1, &out, &counters);
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

TEST(IntervalJoin, StateShrinksAsTheWatermarkAdvances) {
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
    testing::drive(*f, s, -1, &out, &counters, &sizes);
    // 6000 rows arrive over ~240 s of event time; only those within a few hundred ms of the
    // watermark (plus the shuffle bound) may be buffered.
    int64_t peak = *std::max_element(sizes.begin(), sizes.end());
    EXPECT_LT(peak, 200) << "kind " << static_cast<int>(kind);
    EXPECT_EQ(sizes.back(), 0);
    ASSERT_EQ(testing::sorted_rows(out.batches), interval_reference(s, -200, 100, kind));
  }
}

TEST(IntervalJoin, OutputWatermarkIsHeldBackByTheBoundsAndLateness) {
  GenOptions g;
  g.late_fraction = 0;
  Script s = testing::make_script(g, 9);
  auto f = interval_join({keys_k(), times_t(50), -300, 100, JoinKind::kFull});
  CollectOutput out;
  runtime::OperatorCounters counters;
  testing::drive(*f, s, -1, &out, &counters);
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

TEST(IntervalJoin, RealJobWithKeyByOnBothInputsAtParallelismOneToFour) {
  for (int p = 1; p <= 4; ++p) {
    GenOptions g;
    g.late_fraction = 0;
    g.num_keys = 20;
    g.rows_per_side = 500;
    Script s = testing::make_script(g, 100 + p);
    for (JoinKind kind : {JoinKind::kInner, JoinKind::kFull}) {
      int64_t dropped = -1;
      auto rows = testing::sorted_rows(
          testing::run_job(interval_join({keys_k(), times_t(), -150, 50, kind}), s, p, &dropped));
      ASSERT_EQ(rows, interval_reference(s, -150, 50, kind)) << "parallelism " << p;
      EXPECT_EQ(dropped, 0);
    }
  }
}

}  // namespace
}  // namespace sabot::operators
