#include "sabot/operators/topn.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "sabot/api/environment.h"
#include "sabot/base/arith.h"
#include "sabot/columnar/builder.h"
#include "sabot/columnar/ipc.h"
#include "sabot/compute/hash.h"
#include "sabot/compute/selection.h"
#include "sabot/state/backend_testing.h"
#include "sabot/state/snapshot.h"

namespace sabot::operators {
namespace {

using columnar::field;
using columnar::RecordBatch;
using columnar::SchemaPtr;
using state::testing::BackendKind;

// Top-N's candidates are keyed state on the job's backend: the tests that keep state run on both.
class TopNOnBackend : public ::testing::TestWithParam<BackendKind> {
 protected:
  const state::StateBackend& backend() const { return state::testing::backend_of(GetParam()); }
};

SchemaPtr schema() {
  return columnar::schema({field("key", columnar::utf8()), field("value", columnar::float64()),
                           field("id", columnar::int64())});
}

struct Row {
  std::string key;
  std::optional<double> value;
  int64_t id;
};

std::vector<RecordBatch> random_batches(std::mt19937_64& rng, int rows, int keys,
                                        std::vector<Row>* all) {
  std::vector<RecordBatch> out;
  int id = 0;
  while (id < rows) {
    int size = 1 + static_cast<int>(rng() % 200);
    columnar::StringBuilder k;
    columnar::Float64Builder v;
    columnar::Int64Builder i;
    for (int r = 0; r < size && id < rows; ++r, ++id) {
      std::string key = "k";
      key += std::to_string(rng() % keys);
      Row row{key, std::nullopt, id};
      if (rng() % 10 != 0) row.value = static_cast<double>(static_cast<int>(rng() % 50) - 25);
      k.append(row.key);
      row.value ? v.append(*row.value) : v.append_null();
      i.append(id);
      all->push_back(row);
    }
    out.push_back(RecordBatch::make(schema(), {k.finish(), v.finish(), i.finish()}).value());
  }
  return out;
}

// Reference: per key, a stable sort by value (ties: arrival order), first n; as "key|id|rank".
// With `by_value`, rows are named by their value instead of their id: across parallel sources the
// arrival order of equal values (the tie-break) is not the id order.
// With `global`, all rows are ranked together (top-N without key columns).
std::vector<std::string> reference(const std::vector<Row>& rows, int64_t n, bool descending,
                                   bool by_value = false, bool global = false) {
  std::map<std::string, std::vector<Row>> by_key;
  for (const Row& r : rows) {
    if (r.value) by_key[global ? "" : r.key].push_back(r);
  }
  std::vector<std::string> out;
  for (auto& [key, list] : by_key) {
    std::stable_sort(list.begin(), list.end(), [&](const Row& a, const Row& b) {
      return descending ? *a.value > *b.value : *a.value < *b.value;
    });
    for (int64_t i = 0; i < n && i < static_cast<int64_t>(list.size()); ++i) {
      out.push_back(list[i].key + "|" +
                    (by_value ? std::to_string(*list[i].value) : std::to_string(list[i].id)) + "|" +
                    std::to_string(i + 1));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> rows_of(const RecordBatch& b, bool by_value = false) {
  std::vector<std::string> out;
  int rank = b.schema().field_index("rank");
  for (int64_t i = 0; i < b.num_rows(); ++i) {
    std::string name = by_value ? std::to_string(b.column(1).value<double>(i))
                                : std::to_string(b.column(2).value<int64_t>(i));
    out.push_back(std::string(b.column(0).string_view(i)) + "|" + name + "|" +
                  std::to_string(b.column(rank).value<int64_t>(i)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

class Collect final : public runtime::Output {
 public:
  Status emit(const RecordBatch& b) override {
    batches.push_back(b);
    return Status::ok();
  }
  Status emit_watermark(Timestamp) override { return Status::ok(); }
  std::vector<RecordBatch> batches;
};

// Every third trial ranks the whole stream (no key columns).
TEST_P(TopNOnBackend, MatchesStableSortReferenceAndSurvivesSnapshots) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 12; ++trial) {
    std::vector<Row> all;
    auto batches = random_batches(rng, 3000, 1 + static_cast<int>(rng() % 60), &all);
    int64_t n = 1 + static_cast<int64_t>(rng() % 5);
    bool descending = trial % 2 == 0;
    const bool global = trial % 3 == 2;
    auto factory =
        top_n({.key_columns = global ? std::vector<std::string>{} : std::vector<std::string>{"key"},
               .order_column = "value",
               .n = n,
               .descending = descending});
    std::vector<SchemaPtr> in{schema()};
    runtime::OperatorContext ctx;
    ctx.uid = "top";
    ctx.state_backend = &backend();
    auto op = factory->create(in, ctx).value();
    ASSERT_TRUE(op->open(ctx).is_ok());
    Collect out;
    size_t cut = rng() % batches.size();
    for (size_t i = 0; i < batches.size(); ++i) {
      if (i == cut) {  // snapshot, and continue in a fresh operator
        std::string snap;
        ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &snap).is_ok());
        op = factory->create(in, ctx).value();
        ASSERT_TRUE(op->open(ctx).is_ok());
        Status st = op->restore_state(snap);
        ASSERT_TRUE(st.is_ok()) << st.to_string();
      }
      ASSERT_TRUE(op->process_batch(batches[i], 0, out).is_ok());
    }
    ASSERT_TRUE(op->finish(out).is_ok());
    ASSERT_EQ(out.batches.size(), 1u);
    EXPECT_EQ(rows_of(out.batches[0]), reference(all, n, descending, false, global))
        << "trial " << trial;
  }
}

TEST_P(TopNOnBackend, PerKeyInAParallelJob) {
  std::mt19937_64 rng(5);
  std::vector<Row> all;
  auto batches = random_batches(rng, 5000, 40, &all);
  for (int p = 1; p <= 3; ++p) {
    Environment env({.parallelism = p,
                     .state_backend = std::shared_ptr<const state::StateBackend>(
                         &backend(), [](const state::StateBackend*) {})});
    auto out = env.from_batches(batches)
                   .key_by("key")
                   .apply(top_n({.key_columns = {"key"}, .order_column = "value", .n = 3}))
                   .collect();
    JobResult r = env.execute();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(rows_of(out->to_batch().value(), true), reference(all, 3, true, true))
        << "parallelism " << p;
  }
}

// Rows of `batch` per subtask, routed by the key group of column 0 like the keyed exchange.
std::vector<RecordBatch> route(const RecordBatch& batch, int parallelism) {
  std::vector<uint64_t> hashes;
  const columnar::Array key = batch.column(0);
  SABOT_CHECK_OK(compute::hash_columns(std::span(&key, 1), &hashes));
  std::vector<uint32_t> groups(hashes.size());
  compute::key_groups(hashes, 128, groups);
  std::vector<std::vector<int32_t>> rows(static_cast<size_t>(parallelism));
  for (size_t i = 0; i < groups.size(); ++i) {
    rows[static_cast<size_t>(subtask_for_key_group(static_cast<int>(groups[i]), parallelism, 128))]
        .push_back(static_cast<int32_t>(i));
  }
  std::vector<RecordBatch> out;
  for (const auto& r : rows) out.push_back(compute::take(batch, r).value());
  return out;
}

std::vector<std::unique_ptr<runtime::Operator>> instances(
    const runtime::OperatorFactory& f, int parallelism,
    const state::StateBackend* backend = nullptr) {
  std::vector<SchemaPtr> in{schema()};
  std::vector<std::unique_ptr<runtime::Operator>> ops;
  for (int s = 0; s < parallelism; ++s) {
    runtime::OperatorContext ctx;
    ctx.uid = "top";
    ctx.subtask_index = s;
    ctx.parallelism = parallelism;
    ctx.state_backend = backend;
    ops.push_back(f.create(in, ctx).value());
    SABOT_CHECK_OK(ops.back()->open(ctx));
  }
  return ops;
}

// P instances fed rows routed by key group, snapshot at a random batch, Q fresh instances each
// given every snapshot continue: the ranking equals the reference (ties by arrival order too).
TEST_P(TopNOnBackend, SnapshotAtPRestoresAtQLikeTheReference) {
  std::mt19937_64 rng(17);
  for (int trial = 0; trial < 8; ++trial) {
    std::vector<Row> all;
    auto batches = random_batches(rng, 2000, 1 + static_cast<int>(rng() % 80), &all);
    const int64_t n = 1 + static_cast<int64_t>(rng() % 4);
    const bool descending = trial % 2 == 1;
    auto factory =
        top_n({.key_columns = {"key"}, .order_column = "value", .n = n, .descending = descending});
    const size_t cut = rng() % batches.size();
    for (auto [p, q] : {std::pair{3, 2}, std::pair{1, 3}}) {
      auto ops = instances(*factory, p, &backend());
      Collect out;
      for (size_t i = 0; i < batches.size(); ++i) {
        auto parts = route(batches[i], static_cast<int>(ops.size()));
        for (size_t s = 0; s < ops.size(); ++s) {
          ASSERT_TRUE(ops[s]->process_batch(parts[s], 0, out).is_ok());
        }
        if (i == cut) {
          std::vector<std::string> snaps(ops.size());
          for (size_t s = 0; s < ops.size(); ++s) {
            ASSERT_TRUE(ops[s]->snapshot_state(CheckpointId(1), &snaps[s]).is_ok());
          }
          ops = instances(*factory, q, &backend());
          for (auto& op : ops) {
            for (const auto& snap : snaps) ASSERT_TRUE(op->restore_state(snap).is_ok());
          }
        }
      }
      for (auto& op : ops) ASSERT_TRUE(op->finish(out).is_ok());
      std::vector<std::string> got;
      for (const auto& b : out.batches) {
        auto rows = rows_of(b);
        got.insert(got.end(), rows.begin(), rows.end());
      }
      std::sort(got.begin(), got.end());
      EXPECT_EQ(got, reference(all, n, descending))
          << "trial " << trial << ", " << p << " -> " << q;
    }
  }
}

// Version 1 snapshots (written before top-N's candidates moved onto the keyed state layer: per key
// group the live candidates in arrival order as Arrow IPC rows) still restore, on either backend
// and at another parallelism, and the ranking goes on with the same tie order.
TEST_P(TopNOnBackend, RestoresVersionOneSnapshots) {
  std::mt19937_64 rng(29);
  std::vector<Row> all;
  auto batches = random_batches(rng, 2000, 50, &all);
  const int64_t n = 3;
  const size_t half = batches.size() / 2;
  int64_t rows_before = 0;
  for (size_t i = 0; i < half; ++i) rows_before += batches[i].num_rows();
  // The candidates after the first half: per key its best n (ties: arrival), in arrival order.
  std::map<std::string, std::vector<Row>> by_key;
  for (int64_t i = 0; i < rows_before; ++i) {
    if (all[static_cast<size_t>(i)].value)
      by_key[all[static_cast<size_t>(i)].key].push_back(all[static_cast<size_t>(i)]);
  }
  std::vector<int32_t> live_rows;
  for (auto& [key, list] : by_key) {
    std::stable_sort(list.begin(), list.end(),
                     [](const Row& a, const Row& b) { return *a.value > *b.value; });
    for (size_t i = 0; i < list.size() && i < static_cast<size_t>(n); ++i) {
      live_rows.push_back(static_cast<int32_t>(list[i].id));  // ids are row numbers
    }
  }
  std::sort(live_rows.begin(), live_rows.end());
  RecordBatch first = columnar::concat(std::span<const RecordBatch>(batches.data(), half)).value();
  RecordBatch live = compute::take(first, live_rows).value();
  std::vector<uint64_t> hashes;
  const columnar::Array key = live.column(0);
  ASSERT_TRUE(compute::hash_columns(std::span(&key, 1), &hashes).is_ok());
  std::map<uint32_t, std::vector<int32_t>> by_kg;
  for (size_t i = 0; i < hashes.size(); ++i) {
    by_kg[compute::key_group_of(hashes[i], 128)].push_back(static_cast<int32_t>(i));
  }
  std::string snap;
  {
    state::SnapshotWriter w(&snap, {.operator_uid = "top", .state_type = "top-n"});
    for (const auto& [kg, rows] : by_kg) {
      auto bytes = columnar::write_ipc_stream(schema(), {compute::take(live, rows).value()});
      ASSERT_TRUE(bytes.is_ok());
      w.begin_section(static_cast<int32_t>(kg))
          .put_bytes(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
    }
    w.finish();
  }
  auto factory = top_n({.key_columns = {"key"}, .order_column = "value", .n = n});
  for (int q : {1, 2}) {
    auto ops = instances(*factory, q, &backend());
    for (auto& op : ops) {
      Status st = op->restore_state(snap);
      ASSERT_TRUE(st.is_ok()) << st.to_string();
    }
    Collect out;
    for (size_t i = half; i < batches.size(); ++i) {
      auto parts = route(batches[i], q);
      for (size_t s = 0; s < ops.size(); ++s) {
        ASSERT_TRUE(ops[s]->process_batch(parts[s], 0, out).is_ok());
      }
    }
    std::vector<std::string> got;
    for (auto& op : ops) ASSERT_TRUE(op->finish(out).is_ok());
    for (const auto& b : out.batches) {
      auto rows = rows_of(b);
      got.insert(got.end(), rows.begin(), rows.end());
    }
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, reference(all, n, true)) << "parallelism " << q;
  }
}

TEST(TopN, TruncatedFlippedOrForeignSnapshotsAreRefusedNamingUidAndOffset) {
  std::mt19937_64 rng(23);
  std::vector<Row> all;
  auto batches = random_batches(rng, 500, 30, &all);
  auto factory = top_n({.key_columns = {"key"}, .order_column = "value", .n = 3});
  auto ops = instances(*factory, 1);
  Collect out;
  for (const auto& b : batches) ASSERT_TRUE(ops[0]->process_batch(b, 0, out).is_ok());
  std::string snap;
  ASSERT_TRUE(ops[0]->snapshot_state(CheckpointId(1), &snap).is_ok());
  for (int trial = 0; trial < 60; ++trial) {
    std::string bad = snap;
    if (trial % 2 == 0) {
      bad.resize(rng() % bad.size());
    } else {
      bad[rng() % bad.size()] ^= static_cast<char>(1 << (rng() % 8));
    }
    Status st = instances(*factory, 1)[0]->restore_state(bad);
    ASSERT_FALSE(st.is_ok()) << "trial " << trial;
    EXPECT_EQ(st.code(), StatusCode::kInvalidData) << st.to_string();
    EXPECT_NE(st.message().find("'top'"), std::string::npos) << st.to_string();
    EXPECT_NE(st.message().find("at byte"), std::string::npos) << st.to_string();
  }
  // A snapshot of another state type under the same uid is refused.
  std::string other;
  state::SnapshotWriter w(&other, {.operator_uid = "top", .state_type = "window"});
  w.finish();
  Status st = instances(*factory, 1)[0]->restore_state(other);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("'top'"), std::string::npos) << st.to_string();
}

TEST(TopN, ValidatesOptions) {
  std::vector<SchemaPtr> in{schema()};
  auto bad_type = top_n({.order_column = "key"})->output_schema(in);
  ASSERT_FALSE(bad_type.is_ok());
  EXPECT_NE(bad_type.status().message().find("must be numeric"), std::string::npos);
  EXPECT_FALSE(top_n({.order_column = "value", .n = 0})->output_schema(in).is_ok());
  EXPECT_FALSE(
      top_n({.key_columns = {"nope"}, .order_column = "value"})->output_schema(in).is_ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, TopNOnBackend,
                         ::testing::Values(BackendKind::kMemory, BackendKind::kRocksDb),
                         state::testing::backend_kind_name);

}  // namespace
}  // namespace sabot::operators
