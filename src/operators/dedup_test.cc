#include "sabot/operators/dedup.h"

#include <gtest/gtest.h>

#include <numeric>

#include "operators/join_state.h"
#include "operators/join_test_util.h"
#include "sabot/state/backend_testing.h"
#include "sabot/state/snapshot.h"

namespace sabot::operators {
namespace {

using columnar::Array;
using columnar::RecordBatch;
using columnar::SchemaPtr;
using state::testing::BackendKind;
using testing::CollectOutput;
using testing::GenOptions;
using testing::Script;

// Every test that keeps state runs on both backends: dedup's state is the job's keyed state.
class DedupOnBackend : public ::testing::TestWithParam<BackendKind> {
 protected:
  const state::StateBackend& backend() const { return state::testing::backend_of(GetParam()); }
};

// Row-at-a-time reference over the left side of a script, with the left side's own watermarks.
std::vector<std::string> dedup_reference(const Script& s, int64_t ttl, int64_t lateness,
                                         bool use_time, int64_t* late) {
  std::map<int64_t, int64_t> first;
  int64_t wm = INT64_MIN;
  std::vector<std::string> out;
  *late = 0;
  for (const auto& st : s.steps) {
    if (st.side != 0) continue;
    const int64_t t = wm == INT64_MIN ? INT64_MIN : wm - lateness;
    for (size_t idx : st.rows) {
      const auto& r = s.rows[idx];
      if (use_time && t != INT64_MIN && r.time <= t) {
        ++*late;
        continue;
      }
      auto it = first.find(r.key);
      if (it == first.end() || (use_time && ttl > 0 && t != INT64_MIN && t >= it->second + ttl)) {
        first[r.key] = r.time;
        out.push_back(testing::join_cells(r.cells));
      }
    }
    if (st.side_watermark) wm = std::max(wm, *st.side_watermark);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> drive_left(const runtime::OperatorFactory& f, const Script& s,
                                    int snapshot_at, runtime::OperatorCounters* counters,
                                    int64_t* remembered, const state::StateBackend& backend) {
  std::vector<columnar::SchemaPtr> in = {s.schema[0]};
  runtime::OperatorContext ctx;
  ctx.counters = counters;
  ctx.state_backend = &backend;
  auto op = f.create(in, ctx).value();
  EXPECT_TRUE(op->open(ctx).is_ok());
  CollectOutput out;
  for (size_t i = 0; i < s.steps.size(); ++i) {
    const auto& st = s.steps[i];
    if (st.side != 0) continue;
    EXPECT_TRUE(op->process_batch(st.batch, 0, out).is_ok());
    if (st.side_watermark) {
      EXPECT_TRUE(op->process_watermark(Timestamp(*st.side_watermark), out).is_ok());
    }
    if (static_cast<int>(i) == snapshot_at) {
      std::string bytes;
      EXPECT_TRUE(op->snapshot_state(CheckpointId(3), &bytes).is_ok());
      op = f.create(in, ctx).value();
      EXPECT_TRUE(op->open(ctx).is_ok());  // restore_state runs after open()
      EXPECT_TRUE(op->restore_state(bytes).is_ok());
    }
  }
  EXPECT_TRUE(op->finish(out).is_ok());
  *remembered = dynamic_cast<StatefulOperator&>(*op).buffered_rows();
  return testing::sorted_rows(out.batches);
}

TEST_P(DedupOnBackend, KeepsTheFirstRowPerKeyWithAndWithoutEventTimeTtl) {
  uint32_t seed = 40;
  for (int64_t ttl : {int64_t{0}, int64_t{100}, int64_t{1000}}) {
    for (bool use_time : {false, true}) {
      if (ttl > 0 && !use_time) continue;
      for (auto kt : {columnar::int64(), columnar::utf8(), columnar::int32()}) {
        ++seed;
        std::mt19937 rng(seed);
        GenOptions g;
        g.key_type = kt;
        g.num_keys = 1 + static_cast<int>(rng() % 30);
        g.rows_per_side = static_cast<int>(rng() % 500);
        g.max_batch = 1 + static_cast<int>(rng() % 30);
        g.allowed_lateness = (seed % 2) * 80;
        Script s = testing::make_script(g, seed);
        DedupOptions o{{"k"}, use_time ? "t" : "", ttl, g.allowed_lateness, false};
        auto f = deduplicate(o);
        int64_t late = 0;
        auto expected = dedup_reference(s, ttl, g.allowed_lateness, use_time, &late);
        runtime::OperatorCounters c;
        int64_t remembered = 0;
        ASSERT_EQ(drive_left(*f, s, -1, &c, &remembered, backend()), expected) << "seed " << seed;
        EXPECT_EQ(c.records_dropped.load(), late);
        EXPECT_LE(remembered, g.num_keys);
        if (!s.steps.empty()) {
          runtime::OperatorCounters c2;
          ASSERT_EQ(drive_left(*f, s, static_cast<int>(rng() % s.steps.size()), &c2, &remembered,
                               backend()),
                    expected)
              << "seed " << seed;
        }
      }
    }
  }
}

TEST(Deduplicate, ValidatesColumns) {
  std::vector<columnar::SchemaPtr> in = {testing::left_schema(columnar::int64())};
  EXPECT_NE(deduplicate({{"nope"}, "", 0, 0, false})
                ->output_schema(in)
                .status()
                .message()
                .find("'nope' not found"),
            std::string::npos);
  EXPECT_FALSE(deduplicate({{"k"}, "", 10, 0, false})->output_schema(in).is_ok());
  EXPECT_FALSE(deduplicate({{"k"}, "ls", 10, 0, false})->output_schema(in).is_ok());
  EXPECT_TRUE(deduplicate({{"k"}, "t", 10, 0, false})->output_schema(in).is_ok());
}

TEST_P(DedupOnBackend, RealJobWithKeyByAtParallelismOneToFour) {
  for (int p = 1; p <= 4; ++p) {
    GenOptions g;
    g.late_fraction = 0;
    g.num_keys = 25;
    Script s = testing::make_script(g, 60 + p);
    int64_t late = 0;
    auto expected = dedup_reference(s, 0, 0, false, &late);
    runtime::LogicalPlan plan;
    int a = plan.add_source(std::make_shared<testing::ScriptSource>(&s, 0), 1);
    int d = plan.add_operator(deduplicate({{"k"}, "", 0, 0, false}),
                              {runtime::PlanEdge{a, runtime::Partitioning::kHash, {"k"}, 0}}, p);
    auto sink = std::make_shared<CollectedBatches>();
    plan.add_operator(collect_sink(sink), {runtime::PlanEdge{d}}, 1, "sink", true);
    runtime::ExecutionOptions eo;
    eo.worker_threads = 2;
    eo.state_backend = std::shared_ptr<const state::StateBackend>(&backend(), [](auto*) {});
    ASSERT_TRUE(runtime::execute_plan(plan, eo).is_ok());
    EXPECT_EQ(testing::sorted_rows(sink->batches()), expected) << "parallelism " << p;
  }
}

TEST_P(DedupOnBackend, RestoresAtAnotherParallelism) {
  for (uint32_t seed = 80; seed < 92; ++seed) {
    std::mt19937 rng(seed);
    GenOptions g;
    g.key_type = seed % 3 == 0 ? columnar::utf8() : columnar::int64();
    g.num_keys = 1 + static_cast<int>(rng() % 60);
    g.rows_per_side = static_cast<int>(rng() % 500);
    g.max_batch = 1 + static_cast<int>(rng() % 30);
    g.allowed_lateness = (seed % 2) * 80;
    Script s = testing::make_script(g, seed);
    const bool use_time = seed % 4 != 0;
    const int64_t ttl = use_time ? (seed % 3) * 300 : 0;
    auto f = deduplicate({{"k"}, use_time ? "t" : "", ttl, g.allowed_lateness, false});
    int64_t late = 0;
    auto expected = dedup_reference(s, ttl, g.allowed_lateness, use_time, &late);
    runtime::OperatorCounters c;
    int64_t remembered = 0;
    ASSERT_EQ(drive_left(*f, s, -1, &c, &remembered, backend()), expected) << "seed " << seed;
    for (auto [p, q] : {std::pair{3, 2}, std::pair{1, 3}, std::pair{2, 1}}) {
      const int at = s.steps.empty() ? -1 : static_cast<int>(rng() % s.steps.size());
      runtime::OperatorCounters c2;
      auto rows = testing::sorted_rows(
          testing::drive_rescaled(*f, s, p, q, at, 1, &c2, nullptr, seed, &backend()));
      ASSERT_EQ(rows, expected) << "seed " << seed << ": " << p << " -> " << q << " at " << at;
      EXPECT_EQ(c2.records_dropped.load(), late);
    }
  }
}

TEST(Deduplicate, TruncatedFlippedAndForeignSnapshotsAreRefusedNamingUidAndOffset) {
  GenOptions g;
  g.num_keys = 40;
  Script s = testing::make_script(g, 93);
  std::vector<columnar::SchemaPtr> in = {s.schema[0]};
  auto f = deduplicate({{"k"}, "t", 500, 0, false});
  runtime::OperatorContext ctx;
  ctx.uid = "under-test";
  auto op = f->create(in, ctx).value();
  ASSERT_TRUE(op->open(ctx).is_ok());
  CollectOutput out;
  for (const auto& st : s.steps) {
    if (st.side == 0) {
      ASSERT_TRUE(op->process_batch(st.batch, 0, out).is_ok());
    }
  }
  std::string bytes;
  ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &bytes).is_ok());
  runtime::OperatorContext octx;
  octx.uid = "under-test";
  std::vector<columnar::SchemaPtr> two = {s.schema[0], s.schema[1]};
  auto join = interval_join({{{"k"}, {"k"}, "right_"}, {"t", "t", 0, false}, -1, 1});
  auto j = join->create(two, octx).value();
  ASSERT_TRUE(j->open(octx).is_ok());
  Status st = j->restore_state(bytes);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("holds state of type 'deduplicate'"), std::string::npos)
      << st.to_string();
  testing::expect_corrupt_snapshots_refused(*f, nullptr, in, bytes, 94);
}

// A batch of (k, t) rows.
RecordBatch key_time_batch(const SchemaPtr& schema,
                           const std::vector<std::pair<int64_t, int64_t>>& rows) {
  auto k = columnar::make_builder(columnar::int64());
  auto t = columnar::make_builder(schema->field(1).type);
  for (auto [key, time] : rows) {
    k->append_scalar(columnar::Scalar::of_int64(key));
    t->append_scalar(columnar::Scalar::of_timestamp(time, columnar::TimeUnit::kMilli));
  }
  return RecordBatch::make(schema, {k->finish(), t->finish()}).value();
}

// Version 1 snapshots (written before dedup's state moved onto the keyed state backend: per key
// group its keys and the time of the row last emitted for each) still restore, on either backend
// and at another parallelism: each subtask takes the keys of its key groups. Keys 0..99 were
// emitted at time 10 k, the watermark was 500, the TTL is 300 ms: after the restore, a row of key
// k is emitted only when k >= 100 (a new key) or its entry expired (10 k + 300 <= 500, k <= 20).
TEST_P(DedupOnBackend, RestoresVersionOneSnapshots) {
  const SchemaPtr schema =
      columnar::schema({columnar::field("k", columnar::int64()),
                        columnar::field("t", columnar::timestamp(columnar::TimeUnit::kMilli))});
  std::vector<int64_t> keys(100);
  std::iota(keys.begin(), keys.end(), 0);
  std::vector<uint64_t> hashes;
  ASSERT_TRUE(
      compute::hash_columns(std::vector<Array>{internal::int64_array(keys)}, &hashes).is_ok());
  std::map<uint32_t, std::vector<int64_t>> by_kg;
  for (size_t i = 0; i < keys.size(); ++i)
    by_kg[compute::key_group_of(hashes[i], 128)].push_back(keys[i]);
  std::string bytes;
  {
    state::SnapshotWriter w(&bytes, {"under-test", "deduplicate", 1, 128});
    w.begin_section(state::kOperatorWide).put<int64_t>(500);
    const SchemaPtr rows = internal::rows_schema(*columnar::schema({schema->field(0)}), {"first"});
    for (const auto& [kg, ks] : by_kg) {
      std::vector<int64_t> first;
      for (int64_t k : ks) first.push_back(10 * k);
      internal::put_rows(w.begin_section(static_cast<int32_t>(kg)), rows,
                         {internal::int64_array(ks), internal::int64_array(first)},
                         static_cast<int64_t>(ks.size()));
    }
    w.finish();
  }
  auto f = deduplicate({{"k"}, "t", 300, 0, false});
  std::vector<SchemaPtr> in = {schema};
  for (int p : {1, 3}) {
    std::vector<std::string> emitted;
    int64_t remembered = 0;
    for (int i = 0; i < p; ++i) {
      auto op = testing::restored_subtask(*f, in, i, p, &backend(), bytes);
      remembered += dynamic_cast<StatefulOperator&>(*op).buffered_rows();
      // Every key 0..119 at time 600 (on time: the watermark is 500), to the subtask owning it.
      std::vector<std::pair<int64_t, int64_t>> rows;
      for (int64_t k = 0; k < 120; ++k) rows.push_back({k, 600});
      RecordBatch mine = testing::rows_of_key_groups(key_time_batch(schema, rows), [&](int kg) {
        return subtask_for_key_group(kg, p, 128) == i;
      });
      CollectOutput out;
      ASSERT_TRUE(op->process_batch(mine, 0, out).is_ok());
      for (const auto& b : out.batches) {
        for (int64_t r = 0; r < b.num_rows(); ++r)
          emitted.push_back(b.column(0).scalar_at(r).to_string());
      }
    }
    std::vector<std::string> expected;
    for (int64_t k = 0; k < 120; ++k) {
      if (k <= 20 || k >= 100) expected.push_back(std::to_string(k));
    }
    std::sort(emitted.begin(), emitted.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(emitted, expected) << "parallelism " << p;
    EXPECT_EQ(remembered, 100) << "parallelism " << p;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, DedupOnBackend,
                         ::testing::Values(BackendKind::kMemory, BackendKind::kRocksDb),
                         state::testing::backend_kind_name);

}  // namespace
}  // namespace sabot::operators
