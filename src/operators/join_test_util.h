// Test helpers for the join and dedup tests: random two-sided event data with keys, times and
// payloads of every type, a collecting Output, row canonicalization for multiset comparison, a
// direct driver (with optional snapshot/restore midway) and a scripted source for real jobs.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "sabot/base/arith.h"
#include "sabot/columnar/builder.h"
#include "sabot/compute/hash.h"
#include "sabot/compute/selection.h"
#include "sabot/operators/join.h"
#include "sabot/operators/sources_sinks.h"
#include "sabot/runtime/executor.h"
#include "sabot/runtime/metrics.h"

namespace sabot::operators::testing {

using columnar::Array;
using columnar::DataType;
using columnar::RecordBatch;
using columnar::SchemaPtr;

class CollectOutput final : public runtime::Output {
 public:
  Status emit(const RecordBatch& b) override {
    batches.push_back(b);
    return Status::ok();
  }
  Status emit_watermark(Timestamp t) override {
    watermarks.push_back(t.millis());
    return Status::ok();
  }
  Status emit_side(std::string_view tag, const RecordBatch& b) override {
    side[std::string(tag)].push_back(b);
    return Status::ok();
  }
  std::vector<RecordBatch> batches;
  std::vector<int64_t> watermarks;
  std::map<std::string, std::vector<RecordBatch>> side;
};

inline std::string cell(const Array& a, int64_t i) { return a.scalar_at(i).to_string(); }

inline std::vector<std::string> row_cells(const RecordBatch& b, int64_t i) {
  std::vector<std::string> out;
  for (int c = 0; c < b.num_columns(); ++c) out.push_back(cell(b.column(c), i));
  return out;
}

inline std::string join_cells(const std::vector<std::string>& cells) {
  std::string s;
  for (const auto& c : cells) s += c + "|";
  return s;
}

inline std::vector<std::string> null_cells(const columnar::Schema& s) {
  std::vector<std::string> out;
  for (const auto& f : s.fields()) out.push_back(columnar::Scalar::null(f.type).to_string());
  return out;
}

inline std::vector<std::string> sorted_rows(const std::vector<RecordBatch>& batches) {
  std::vector<std::string> out;
  for (const auto& b : batches) {
    for (int64_t i = 0; i < b.num_rows(); ++i) out.push_back(join_cells(row_cells(b, i)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// One generated input row; `cells` are its canonical strings as read back from its batch.
struct TestRow {
  int side = 0;
  int64_t key = 0;
  int64_t time = 0;  // milliseconds
  int64_t seq = 0;   // arrival order within the whole script
  bool late = false;
  std::vector<std::string> cells;
};

// What arrives at the operator: a batch of one side, then optionally a watermark.
struct ScriptStep {
  int side = 0;
  RecordBatch batch;
  std::vector<size_t> rows;               // indices into Script::rows
  std::optional<int64_t> watermark;       // operator watermark after this step (min of both sides)
  std::optional<int64_t> side_watermark;  // this side's own watermark after this step
};

struct Script {
  SchemaPtr schema[2];
  std::vector<TestRow> rows;
  std::vector<ScriptStep> steps;
};

struct GenOptions {
  DataType key_type = columnar::int64();
  int num_keys = 8;
  int rows_per_side = 300;
  int64_t time_step = 40;       // average gap between consecutive event times per side
  int64_t disorder = 200;       // shuffle bound (watermark = max seen - disorder)
  double late_fraction = 0.03;  // rows sent far behind the watermark
  int max_batch = 17;
  double null_fraction = 0.2;
  int64_t allowed_lateness = 0;
  bool right_delete_flag = false;  // right "rflag" drives deletes in stream-table tests
};

inline SchemaPtr left_schema(DataType kt) {
  return columnar::schema({columnar::field("k", kt),
                           columnar::field("t", columnar::timestamp(columnar::TimeUnit::kMilli)),
                           columnar::field("lv", columnar::int64()),
                           columnar::field("ls", columnar::utf8()),
                           columnar::field("lu", columnar::uint64())});
}
inline SchemaPtr right_schema(DataType kt) {
  return columnar::schema(
      {columnar::field("k", kt),
       columnar::field("t", columnar::timestamp(columnar::TimeUnit::kMicro)),
       columnar::field("rv", columnar::float64()), columnar::field("rb", columnar::binary()),
       columnar::field("rflag", columnar::boolean()), columnar::field("ri", columnar::int32())});
}

inline columnar::Scalar key_scalar(DataType kt, int64_t k) {
  switch (kt.id()) {
    case columnar::TypeId::kInt32:
      return columnar::Scalar::of_int32(static_cast<int32_t>(k * 7 - 3));
    case columnar::TypeId::kUtf8:
      return columnar::Scalar::of_utf8("key-" + std::to_string(k));
    default:
      return columnar::Scalar::of_int64(k * 1000003);
  }
}

// Builds a script: per side, times increase by ~time_step, are shuffled within `disorder`, and
// cut into random batches; the two sides interleave randomly; each step carries the side's
// watermark (max time seen - disorder) and the operator watermark (min of both). A few rows are
// sent late (time <= current operator watermark - allowed lateness) and marked as such.
inline Script make_script(const GenOptions& g, uint32_t seed) {
  std::mt19937_64 rng(seed);
  Script s;
  s.schema[0] = left_schema(g.key_type);
  s.schema[1] = right_schema(g.key_type);
  struct Pending {
    int64_t key, time;
  };
  std::vector<Pending> per_side[2];
  for (int side = 0; side < 2; ++side) {
    int64_t t = 1000;
    for (int i = 0; i < g.rows_per_side; ++i) {
      t += static_cast<int64_t>(rng() % static_cast<uint64_t>(2 * g.time_step + 1));
      per_side[side].push_back(
          {static_cast<int64_t>(rng() % static_cast<uint64_t>(g.num_keys)), t});
    }
    // Shuffle within the disorder bound: sort by time + random jitter in [0, disorder].
    std::vector<std::pair<int64_t, Pending>> jit;
    for (auto& p : per_side[side]) {
      jit.push_back(
          {p.time + static_cast<int64_t>(rng() % static_cast<uint64_t>(g.disorder + 1)), p});
    }
    std::stable_sort(jit.begin(), jit.end(), [](auto& a, auto& b) { return a.first < b.first; });
    for (size_t i = 0; i < jit.size(); ++i) per_side[side][i] = jit[i].second;
  }
  size_t pos[2] = {0, 0};
  int64_t max_seen[2] = {INT64_MIN, INT64_MIN};
  int64_t side_wm[2] = {INT64_MIN, INT64_MIN};
  int64_t op_wm = INT64_MIN;
  std::uniform_real_distribution<double> u(0, 1);
  int64_t seq = 0;
  while (pos[0] < per_side[0].size() || pos[1] < per_side[1].size()) {
    int side = static_cast<int>(rng() % 2);
    if (pos[side] >= per_side[side].size()) side = 1 - side;
    size_t n = 1 + rng() % static_cast<uint64_t>(g.max_batch);
    n = std::min(n, per_side[side].size() - pos[side]);
    auto builders_schema = s.schema[side];
    std::vector<std::unique_ptr<columnar::ArrayBuilder>> b;
    for (const auto& f : builders_schema->fields()) b.push_back(columnar::make_builder(f.type));
    ScriptStep step;
    step.side = side;
    for (size_t j = 0; j < n; ++j) {
      Pending p = per_side[side][pos[side]++];
      TestRow r;
      r.side = side;
      r.key = p.key;
      r.time = p.time;
      if (op_wm != INT64_MIN && u(rng) < g.late_fraction) {
        r.time = op_wm - g.allowed_lateness - static_cast<int64_t>(rng() % 50);
        r.late = true;
      }
      max_seen[side] = std::max(max_seen[side], r.time);
      r.seq = seq++;
      auto nul = [&] { return u(rng) < g.null_fraction; };
      b[0]->append_scalar(key_scalar(g.key_type, r.key));
      if (side == 0) {
        b[1]->append_scalar(columnar::Scalar::of_timestamp(r.time, columnar::TimeUnit::kMilli));
        if (nul())
          b[2]->append_null();
        else
          b[2]->append_scalar(columnar::Scalar::of_int64(static_cast<int64_t>(rng() % 1000) - 500));
        if (nul())
          b[3]->append_null();
        else
          b[3]->append_scalar(columnar::Scalar::of_utf8(std::to_string(rng() % 100).append("s")));
        if (nul())
          b[4]->append_null();
        else
          b[4]->append_scalar(columnar::Scalar::of_uint64(rng()));
      } else {
        b[1]->append_scalar(columnar::Scalar::of_timestamp(
            r.time * 1000 + static_cast<int64_t>(rng() % 1000), columnar::TimeUnit::kMicro));
        if (nul())
          b[2]->append_null();
        else
          b[2]->append_scalar(
              columnar::Scalar::of_float64(static_cast<double>(rng() % 10000) / 8.0));
        if (nul())
          b[3]->append_null();
        else
          b[3]->append_scalar(columnar::Scalar::of_binary(std::string(rng() % 5, '\x01')));
        if (g.right_delete_flag) {
          b[4]->append_scalar(columnar::Scalar::of_bool(u(rng) < 0.15));
        } else if (nul()) {
          b[4]->append_null();
        } else {
          b[4]->append_scalar(columnar::Scalar::of_bool(rng() % 2));
        }
        if (nul())
          b[5]->append_null();
        else
          b[5]->append_scalar(columnar::Scalar::of_int32(static_cast<int32_t>(rng() % 100)));
      }
      step.rows.push_back(s.rows.size());
      s.rows.push_back(std::move(r));
    }
    std::vector<Array> cols;
    for (auto& x : b) cols.push_back(x->finish());
    // Sometimes deliver a slice of a larger batch (non-zero offsets).
    RecordBatch batch = RecordBatch::make(builders_schema, std::move(cols)).value();
    if (rng() % 3 == 0) {
      std::vector<RecordBatch> parts = {batch, batch};
      RecordBatch two = columnar::concat(parts).value();
      batch = two.slice(batch.num_rows(), batch.num_rows());
    }
    for (size_t j = 0; j < step.rows.size(); ++j) {
      s.rows[step.rows[j]].cells = row_cells(batch, static_cast<int64_t>(j));
    }
    step.batch = batch;
    int64_t w = max_seen[side] - g.disorder - 1;
    if (w > side_wm[side]) {
      side_wm[side] = w;
      step.side_watermark = w;
    }
    int64_t m = std::min(side_wm[0], side_wm[1]);
    if (m > op_wm) {
      op_wm = m;
      step.watermark = m;
    }
    s.steps.push_back(std::move(step));
  }
  return s;
}

// Drives an operator directly through the script, then a final Timestamp::max() watermark and
// finish(). With snapshot_at >= 0 the operator is snapshotted after that step and replaced by a
// fresh one restored from the bytes. `backend`: the job's state backend (null: memory).
inline std::vector<RecordBatch> drive(const runtime::OperatorFactory& f, const Script& s,
                                      int snapshot_at, CollectOutput* out,
                                      runtime::OperatorCounters* counters,
                                      std::vector<int64_t>* state_sizes = nullptr,
                                      ManualClock* clock = nullptr,
                                      const state::StateBackend* backend = nullptr) {
  std::vector<SchemaPtr> in = {s.schema[0], s.schema[1]};
  runtime::OperatorContext ctx;
  ctx.uid = "under-test";
  ctx.counters = counters;
  ctx.state_backend = backend;
  if (clock) ctx.clock = clock;
  auto op = f.create(in, ctx).value();
  EXPECT_TRUE(op->open(ctx).is_ok());
  for (size_t i = 0; i < s.steps.size(); ++i) {
    const ScriptStep& st = s.steps[i];
    if (clock) clock->set(Timestamp(static_cast<int64_t>(i) * 10));  // step i runs at 10 i ms
    Status status = op->process_batch(st.batch, st.side, *out);
    EXPECT_TRUE(status.is_ok()) << status.to_string();
    if (st.watermark) {
      EXPECT_TRUE(op->process_watermark(Timestamp(*st.watermark), *out).is_ok());
    }
    if (state_sizes) {
      state_sizes->push_back(dynamic_cast<StatefulOperator&>(*op).buffered_rows());
    }
    if (static_cast<int>(i) == snapshot_at) {
      std::string bytes;
      EXPECT_TRUE(op->snapshot_state(CheckpointId(1), &bytes).is_ok());
      op = f.create(in, ctx).value();
      EXPECT_TRUE(op->open(ctx).is_ok());  // restore_state runs after open()
      Status r = op->restore_state(bytes);
      EXPECT_TRUE(r.is_ok()) << r.to_string();
    }
  }
  EXPECT_TRUE(op->process_watermark(Timestamp::max(), *out).is_ok());
  EXPECT_TRUE(op->finish(*out).is_ok());
  if (state_sizes) state_sizes->push_back(dynamic_cast<StatefulOperator&>(*op).buffered_rows());
  return out->batches;
}

// Subtask `i` of a parallelism-`p` job (max parallelism 128, uid "under-test", on `backend`;
// null: memory) made by `f`, opened and given `snapshot`, as a restore after a rescale does.
inline std::unique_ptr<runtime::Operator> restored_subtask(const runtime::OperatorFactory& f,
                                                           std::span<const SchemaPtr> in, int i,
                                                           int p,
                                                           const state::StateBackend* backend,
                                                           std::string_view snapshot) {
  runtime::OperatorContext ctx;
  ctx.uid = "under-test";
  ctx.subtask_index = i;
  ctx.parallelism = p;
  ctx.state_backend = backend;
  auto op = f.create(in, ctx).value();
  EXPECT_TRUE(op->open(ctx).is_ok());
  Status st = op->restore_state(snapshot);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return op;
}

// The rows of `batch` whose key (column 0) hashes into a key group (of 128) `keep` accepts, as
// the keyed exchange routes them.
inline RecordBatch rows_of_key_groups(const RecordBatch& batch,
                                      const std::function<bool(int)>& keep) {
  std::vector<uint64_t> h;
  std::vector<int> cols = {0};
  EXPECT_TRUE(compute::hash_columns(batch, cols, &h).is_ok());
  std::vector<int32_t> mine;
  for (size_t r = 0; r < h.size(); ++r) {
    if (keep(static_cast<int>(compute::key_group_of(h[r], 128)))) {
      mine.push_back(static_cast<int32_t>(r));
    }
  }
  return compute::take(batch, mine).value();
}

// Drives `p` instances of `f` (subtasks of a parallelism-p job, max parallelism 128) through the
// script, each given the rows of its key groups (key column 0, routed like the keyed exchange)
// and every watermark; after step `snapshot_at` snapshots all of them, restores `q` fresh
// instances (each opened, then given every old snapshot, in a shuffled order) and continues with
// the rest of the input routed among the q. `inputs` = 1 drives only side 0 with its own
// watermarks (dedup). `backend`: the job's state backend (null: memory). Returns every batch
// emitted by any instance.
inline std::vector<RecordBatch> drive_rescaled(const runtime::OperatorFactory& f, const Script& s,
                                               int p, int q, int snapshot_at, int inputs,
                                               runtime::OperatorCounters* counters,
                                               ManualClock* clock = nullptr, uint32_t seed = 1,
                                               const state::StateBackend* backend = nullptr) {
  std::vector<SchemaPtr> in = {s.schema[0], s.schema[1]};
  in.resize(static_cast<size_t>(inputs));
  auto make = [&](int n) {
    std::vector<std::unique_ptr<runtime::Operator>> ops;
    for (int i = 0; i < n; ++i) {
      runtime::OperatorContext ctx;
      ctx.uid = "under-test";
      ctx.subtask_index = i;
      ctx.parallelism = n;
      ctx.counters = counters;
      ctx.state_backend = backend;
      if (clock) ctx.clock = clock;
      ops.push_back(f.create(in, ctx).value());
      Status st = ops.back()->open(ctx);
      EXPECT_TRUE(st.is_ok()) << st.to_string();
    }
    return ops;
  };
  auto ops = make(p);
  CollectOutput out;
  std::vector<uint64_t> hashes;
  std::vector<uint32_t> kgs;
  for (size_t i = 0; i < s.steps.size(); ++i) {
    const ScriptStep& st = s.steps[i];
    if (st.side >= inputs) continue;
    if (clock) clock->set(Timestamp(static_cast<int64_t>(i) * 10));  // as drive() does
    const int n = static_cast<int>(ops.size());
    std::vector<int> cols = {0};
    EXPECT_TRUE(compute::hash_columns(st.batch, cols, &hashes).is_ok());
    kgs.resize(hashes.size());
    compute::key_groups(hashes, 128, kgs);
    std::vector<std::vector<int32_t>> rows(static_cast<size_t>(n));
    for (size_t r = 0; r < kgs.size(); ++r) {
      rows[static_cast<size_t>(subtask_for_key_group(static_cast<int>(kgs[r]), n, 128))].push_back(
          static_cast<int32_t>(r));
    }
    const std::optional<int64_t>& wm = inputs == 1 ? st.side_watermark : st.watermark;
    for (int o = 0; o < n; ++o) {
      if (!rows[static_cast<size_t>(o)].empty()) {
        RecordBatch part = compute::take(st.batch, rows[static_cast<size_t>(o)]).value();
        Status status = ops[static_cast<size_t>(o)]->process_batch(part, st.side, out);
        EXPECT_TRUE(status.is_ok()) << status.to_string();
      }
      if (wm) {
        EXPECT_TRUE(ops[static_cast<size_t>(o)]->process_watermark(Timestamp(*wm), out).is_ok());
      }
    }
    if (static_cast<int>(i) == snapshot_at) {
      std::vector<std::string> snaps(ops.size());
      for (size_t o = 0; o < ops.size(); ++o) {
        EXPECT_TRUE(ops[o]->snapshot_state(CheckpointId(1), &snaps[o]).is_ok());
      }
      std::shuffle(snaps.begin(), snaps.end(), std::mt19937(seed));
      ops = make(q);
      for (auto& op : ops) {
        for (const std::string& b : snaps) {
          Status r = op->restore_state(b);
          EXPECT_TRUE(r.is_ok()) << r.to_string();
        }
      }
    }
  }
  for (auto& op : ops) {
    EXPECT_TRUE(op->process_watermark(Timestamp::max(), out).is_ok());
    EXPECT_TRUE(op->finish(out).is_ok());
  }
  return out.batches;
}

// Checks that `bytes` (a snapshot of an operator made by `f` with uid "under-test") is refused
// when truncated, bit-flipped or given to an operator with another uid, or to `other` (if given:
// an operator of another state type), on `backend` (null: memory), each with the uid and (for bad
// bytes) the byte offset in the message.
inline void expect_corrupt_snapshots_refused(const runtime::OperatorFactory& f,
                                             const runtime::OperatorFactory* other,
                                             std::span<const SchemaPtr> in,
                                             const std::string& bytes, uint32_t seed,
                                             const state::StateBackend* backend = nullptr) {
  auto fresh = [&](const runtime::OperatorFactory& g, const char* uid) {
    runtime::OperatorContext ctx;
    ctx.uid = uid;
    ctx.state_backend = backend;
    auto op = g.create(in, ctx).value();
    EXPECT_TRUE(op->open(ctx).is_ok());
    return op;
  };
  ASSERT_TRUE(fresh(f, "under-test")->restore_state(bytes).is_ok());
  std::mt19937 rng(seed);
  for (int rep = 0; rep < 20; ++rep) {
    std::string cut = bytes.substr(0, rng() % bytes.size());
    Status st = fresh(f, "under-test")->restore_state(cut);
    ASSERT_FALSE(st.is_ok()) << "truncated to " << cut.size();
    EXPECT_NE(st.message().find("'under-test'"), std::string::npos) << st.to_string();
    EXPECT_NE(st.message().find(" at byte "), std::string::npos) << st.to_string();
    std::string flipped = bytes;
    flipped[rng() % flipped.size()] ^= static_cast<char>(1 << (rng() % 8));
    st = fresh(f, "under-test")->restore_state(flipped);
    ASSERT_FALSE(st.is_ok()) << "bit flip";
    EXPECT_NE(st.message().find("'under-test'"), std::string::npos) << st.to_string();
    EXPECT_NE(st.message().find(" at byte "), std::string::npos) << st.to_string();
  }
  Status st = fresh(f, "someone-else")->restore_state(bytes);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("belongs to operator 'under-test'"), std::string::npos)
      << st.to_string();
  if (!other) return;
  st = fresh(*other, "under-test")->restore_state(bytes);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("holds state of type"), std::string::npos) << st.to_string();
}

// A one-split source replaying one side of a script with that side's own watermarks.
class ScriptSource final : public runtime::Source {
 public:
  ScriptSource(const Script* s, int side) : s_(s), side_(side) {}
  std::string name() const override { return side_ == 0 ? "left" : "right"; }
  SchemaPtr schema() const override { return s_->schema[side_]; }
  int num_splits() const override { return 1; }
  Result<std::unique_ptr<runtime::SourceReader>> open_reader(
      std::span<const int>, const runtime::OperatorContext&) const override {
    class Reader final : public runtime::SourceReader {
     public:
      Reader(const Script* s, int side) : s_(s), side_(side) {}
      Result<runtime::SourcePoll> poll(int64_t) override {
        while (i_ < s_->steps.size() && s_->steps[i_].side != side_) ++i_;
        if (i_ >= s_->steps.size()) return runtime::SourcePoll::end();
        const ScriptStep& st = s_->steps[i_++];
        runtime::SourcePoll p = runtime::SourcePoll::of(st.batch);
        if (st.side_watermark) p.watermark = Timestamp(*st.side_watermark);
        return p;
      }
      const Script* s_;
      int side_;
      size_t i_ = 0;
    };
    return std::unique_ptr<runtime::SourceReader>(new Reader(s_, side_));
  }

 private:
  const Script* s_;
  int side_;
};

// Runs `f` as a real job: both sides key_by "k" into the join at `parallelism`, collected.
// `backend`: the job's state backend (null: memory).
inline std::vector<RecordBatch> run_job(std::shared_ptr<const runtime::OperatorFactory> f,
                                        const Script& s, int parallelism, int64_t* dropped,
                                        const state::StateBackend* backend = nullptr) {
  runtime::LogicalPlan plan;
  int a = plan.add_source(std::make_shared<ScriptSource>(&s, 0), 1);
  int b = plan.add_source(std::make_shared<ScriptSource>(&s, 1), 1);
  runtime::PlanEdge ea{a, runtime::Partitioning::kHash, {"k"}, 0};
  runtime::PlanEdge eb{b, runtime::Partitioning::kHash, {"k"}, 1};
  int j = plan.add_operator(std::move(f), {ea, eb}, parallelism, "join");
  auto sink = std::make_shared<CollectedBatches>();
  runtime::PlanEdge ej{j};
  plan.add_operator(collect_sink(sink), {ej}, 1, "sink", true);
  std::shared_ptr<const runtime::JobMetrics> metrics;
  runtime::ExecutionOptions options{.worker_threads = 2};
  if (backend) {  // not owned: the tests' backends outlive the job
    options.state_backend =
        std::shared_ptr<const state::StateBackend>(backend, [](const state::StateBackend*) {});
  }
  Status st = runtime::execute_plan(plan, options, &metrics);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  if (dropped && metrics) *dropped = metrics->get("join").records_dropped;
  return sink->batches();
}

}  // namespace sabot::operators::testing
