#include "sabot/operators/topn.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "sabot/api/environment.h"
#include "sabot/columnar/builder.h"

namespace sabot::operators {
namespace {

using columnar::field;
using columnar::RecordBatch;
using columnar::SchemaPtr;

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
std::vector<std::string> reference(const std::vector<Row>& rows, int64_t n, bool descending,
                                   bool by_value = false) {
  std::map<std::string, std::vector<Row>> by_key;
  for (const Row& r : rows) {
    if (r.value) by_key[r.key].push_back(r);
  }
  std::vector<std::string> out;
  for (auto& [key, list] : by_key) {
    std::stable_sort(list.begin(), list.end(), [&](const Row& a, const Row& b) {
      return descending ? *a.value > *b.value : *a.value < *b.value;
    });
    for (int64_t i = 0; i < n && i < static_cast<int64_t>(list.size()); ++i) {
      out.push_back(key + "|" +
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

TEST(TopN, MatchesStableSortReferenceAndSurvivesSnapshots) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 12; ++trial) {
    std::vector<Row> all;
    auto batches = random_batches(rng, 3000, 1 + static_cast<int>(rng() % 60), &all);
    int64_t n = 1 + static_cast<int64_t>(rng() % 5);
    bool descending = trial % 2 == 0;
    auto factory =
        top_n({.key_columns = {"key"}, .order_column = "value", .n = n, .descending = descending});
    std::vector<SchemaPtr> in{schema()};
    runtime::OperatorContext ctx;
    auto op = factory->create(in, ctx).value();
    Collect out;
    size_t cut = rng() % batches.size();
    for (size_t i = 0; i < batches.size(); ++i) {
      if (i == cut) {  // snapshot, and continue in a fresh operator
        std::string snap;
        ASSERT_TRUE(op->snapshot_state(CheckpointId(1), &snap).is_ok());
        op = factory->create(in, ctx).value();
        ASSERT_TRUE(op->restore_state(snap).is_ok());
      }
      ASSERT_TRUE(op->process_batch(batches[i], 0, out).is_ok());
    }
    ASSERT_TRUE(op->finish(out).is_ok());
    ASSERT_EQ(out.batches.size(), 1u);
    EXPECT_EQ(rows_of(out.batches[0]), reference(all, n, descending)) << "trial " << trial;
  }
}

TEST(TopN, PerKeyInAParallelJob) {
  std::mt19937_64 rng(5);
  std::vector<Row> all;
  auto batches = random_batches(rng, 5000, 40, &all);
  for (int p = 1; p <= 3; ++p) {
    Environment env({.parallelism = p});
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

TEST(TopN, ValidatesOptions) {
  std::vector<SchemaPtr> in{schema()};
  auto bad_type = top_n({.order_column = "key"})->output_schema(in);
  ASSERT_FALSE(bad_type.is_ok());
  EXPECT_NE(bad_type.status().message().find("must be numeric"), std::string::npos);
  EXPECT_FALSE(top_n({.order_column = "value", .n = 0})->output_schema(in).is_ok());
  EXPECT_FALSE(
      top_n({.key_columns = {"nope"}, .order_column = "value"})->output_schema(in).is_ok());
}

}  // namespace
}  // namespace sabot::operators
