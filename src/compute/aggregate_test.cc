#include "sabot/compute/aggregate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "compute/grouping_test_util.h"
#include "sabot/columnar/builder.h"

namespace sabot::compute {
namespace {

using columnar::field;
using columnar::TypeId;
using testing::all_test_types;
using testing::random_array;
using testing::Val;
using testing::val_at;

const std::vector<AggregateKind>& all_kinds() {
  static const std::vector<AggregateKind> kinds = {
      AggregateKind::kCount,    AggregateKind::kCountAll,     AggregateKind::kSum,
      AggregateKind::kMin,      AggregateKind::kMax,          AggregateKind::kAvg,
      AggregateKind::kVariance, AggregateKind::kStddev,       AggregateKind::kFirst,
      AggregateKind::kLast,     AggregateKind::kCountDistinct};
  return kinds;
}

double as_double(const Val& v) {
  if (auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  if (auto* u = std::get_if<uint64_t>(&v)) return static_cast<double>(*u);
  return std::get<double>(v);
}

// The plain reference for one group's values in arrival order (monostate = null).
Val reference(AggregateKind kind, const std::vector<Val>& vals) {
  std::vector<Val> present;
  for (const Val& v : vals) {
    if (!std::holds_alternative<std::monostate>(v)) present.push_back(v);
  }
  const size_t n = present.size();
  switch (kind) {
    case AggregateKind::kCount:
      return static_cast<int64_t>(n);
    case AggregateKind::kCountAll:
      return static_cast<int64_t>(vals.size());
    case AggregateKind::kCountDistinct:
      return static_cast<int64_t>(std::set<Val>(present.begin(), present.end()).size());
    case AggregateKind::kFirst:
      return n == 0 ? Val{} : present.front();
    case AggregateKind::kLast:
      return n == 0 ? Val{} : present.back();
    case AggregateKind::kMin:
      return n == 0 ? Val{} : *std::min_element(present.begin(), present.end());
    case AggregateKind::kMax:
      return n == 0 ? Val{} : *std::max_element(present.begin(), present.end());
    case AggregateKind::kSum: {
      if (n == 0) return Val{};
      if (std::holds_alternative<int64_t>(present[0])) {
        int64_t s = 0;
        for (const Val& v : present) s += std::get<int64_t>(v);
        return s;
      }
      if (std::holds_alternative<uint64_t>(present[0])) {
        uint64_t s = 0;
        for (const Val& v : present) s += std::get<uint64_t>(v);
        return s;
      }
      double s = 0;
      for (const Val& v : present) s += std::get<double>(v);
      return s;
    }
    case AggregateKind::kAvg:
    case AggregateKind::kVariance:
    case AggregateKind::kStddev: {
      if (n == 0 || (kind != AggregateKind::kAvg && n < 2)) return Val{};
      double mean = 0;
      for (const Val& v : present) mean += as_double(v);
      mean /= static_cast<double>(n);
      if (kind == AggregateKind::kAvg) return mean;
      double ss = 0;
      for (const Val& v : present) ss += (as_double(v) - mean) * (as_double(v) - mean);
      const double var = ss / static_cast<double>(n - 1);
      return kind == AggregateKind::kVariance ? var : std::sqrt(var);
    }
  }
  return Val{};
}

// Exact for everything but doubles, which differ with summation order. The tolerance is loose
// because the uint64 test values sit near 2^40 with a spread near 2^14: centring them costs about
// 1e-8 relative precision in any double-based variance, the reference's included.
void expect_val_eq(const Val& actual, const Val& expected, const std::string& where) {
  if (std::holds_alternative<double>(actual) && std::holds_alternative<double>(expected)) {
    const double a = std::get<double>(actual);
    const double e = std::get<double>(expected);
    EXPECT_NEAR(a, e, 1e-6 * std::max(1.0, std::abs(e))) << where;
  } else {
    EXPECT_TRUE(actual == expected)
        << where << ": actual index " << actual.index() << " expected index " << expected.index();
  }
}

bool supported(AggregateKind kind, const DataType& type) {
  return aggregate_output_type(kind, type).is_ok();
}

// Streams random batches (key column "k" then value column "v") through a GroupedAggregation
// with every aggregate the value type supports, and compares with per-group references.
TEST(AggregateTest, EveryAggregateOverEveryTypeMatchesReferenceAcrossBatches) {
  std::mt19937_64 rng(2024);
  for (const DataType& type : all_test_types()) {
    for (bool global : {false, true}) {
      SCOPED_TRACE(type.to_string() + (global ? " global" : " grouped"));
      auto schema = columnar::schema({field("k", columnar::int64()), field("v", type)});
      std::vector<Aggregate> aggs;
      for (AggregateKind kind : all_kinds()) {
        if (!supported(kind, type)) continue;
        aggs.push_back(Aggregate{kind, kind == AggregateKind::kCountAll ? "" : "v", ""});
      }
      std::vector<std::string> keys;
      if (!global) keys.push_back("k");
      auto agg = GroupedAggregation::make(*schema, keys, aggs);
      ASSERT_TRUE(agg.is_ok()) << agg.status().to_string();
      std::map<Val, size_t> group_of;
      std::vector<std::vector<Val>> values;  // per group, arrival order
      if (global) values.emplace_back();
      for (int b = 0; b < 8; ++b) {
        const int64_t len = b == 3 ? 0 : static_cast<int64_t>(rng() % 1200);
        const double null_rate = (rng() % 4) * 0.2;
        Array k = random_array(columnar::int64(), len, 0.1, 25, rng);
        Array v = random_array(type, len, null_rate, 60, rng, /*extreme=*/false);
        auto batch = RecordBatch::make(schema, {k, v});
        ASSERT_TRUE(batch.is_ok());
        ASSERT_TRUE((*agg)->consume(*batch).is_ok());
        for (int64_t i = 0; i < len; ++i) {
          size_t g = 0;
          if (!global) {
            auto [it, inserted] = group_of.emplace(val_at(k, i), values.size());
            if (inserted) values.emplace_back();
            g = it->second;
          }
          values[g].push_back(val_at(v, i));
        }
      }
      auto out = (*agg)->finalize();
      ASSERT_TRUE(out.is_ok()) << out.status().to_string();
      ASSERT_EQ(out->num_rows(), static_cast<int64_t>(values.size()));
      const int first_agg_col = global ? 0 : 1;
      for (size_t a = 0; a < aggs.size(); ++a) {
        const Array& col = out->column(first_agg_col + static_cast<int>(a));
        for (size_t g = 0; g < values.size(); ++g) {
          expect_val_eq(val_at(col, static_cast<int64_t>(g)), reference(aggs[a].kind, values[g]),
                        aggs[a].resolved_name() + " group " + std::to_string(g));
        }
      }
    }
  }
}

TEST(AggregateTest, UnsupportedTypesAreRejectedNamingTheColumn) {
  auto st = make_accumulator(AggregateKind::kSum, columnar::utf8(), "name").status();
  EXPECT_EQ(st.code(), StatusCode::kTypeError);
  EXPECT_EQ(st.message(), "sum is not defined for utf8 column 'name'");
  EXPECT_EQ(make_accumulator(AggregateKind::kAvg, columnar::boolean()).status().code(),
            StatusCode::kTypeError);
  EXPECT_EQ(make_accumulator(AggregateKind::kSum, columnar::timestamp(columnar::TimeUnit::kMilli))
                .status()
                .code(),
            StatusCode::kTypeError);
  auto schema = columnar::schema({field("name", columnar::utf8())});
  auto agg = GroupedAggregation::make(*schema, {}, {variance("name")});
  EXPECT_EQ(agg.status().code(), StatusCode::kTypeError);
  EXPECT_NE(agg.status().message().find("column 'name'"), std::string::npos);
  EXPECT_EQ(GroupedAggregation::make(*schema, {}, {sum("missing")}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(GroupedAggregation::make(*schema, {"nope"}, {count()}).status().code(),
            StatusCode::kNotFound);
}

TEST(AggregateTest, EmptyInputGivesZeroCountsAndNullValues) {
  auto schema = columnar::schema({field("x", columnar::int64()), field("s", columnar::utf8())});
  RecordBatch empty = RecordBatch::make_empty(schema);
  std::vector<Aggregate> aggs = {count_all(), count("x"),  sum("x"),   min("s"),
                                 avg("x"),    stddev("x"), first("s"), count_distinct("s")};
  auto out = aggregate(empty, aggs);
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  ASSERT_EQ(out->num_rows(), 1);
  EXPECT_EQ(out->column(0).value<int64_t>(0), 0);
  EXPECT_EQ(out->column(1).value<int64_t>(0), 0);
  for (int c = 2; c <= 6; ++c) EXPECT_TRUE(out->column(c).is_null(0)) << c;
  EXPECT_EQ(out->column(7).value<int64_t>(0), 0);
  auto grouped = group_by(empty, std::vector<std::string>{"s"}, aggs);
  ASSERT_TRUE(grouped.is_ok());
  EXPECT_EQ(grouped->num_rows(), 0);
  EXPECT_EQ(grouped->num_columns(), 9);
}

TEST(AggregateTest, GroupByOutputsKeysThenNamedAggregates) {
  auto schema = columnar::schema({field("city", columnar::utf8()), field("zone", columnar::int32()),
                                  field("price", columnar::int64())});
  auto batch =
      RecordBatch::make(schema, {columnar::utf8_array({"b", "a", "b", std::nullopt, "a", "b"}),
                                 columnar::int32_array({1, 1, 1, 2, 1, 2}),
                                 columnar::int64_array({10, 20, 30, 40, std::nullopt, 60})});
  ASSERT_TRUE(batch.is_ok());
  std::vector<std::string> keys = {"city", "zone"};
  std::vector<Aggregate> aggs = {sum("price").as("total"), count(), max("price")};
  auto out = group_by(*batch, keys, aggs);
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  ASSERT_EQ(out->schema().num_fields(), 5);
  EXPECT_EQ(out->schema().field(0).name, "city");
  EXPECT_EQ(out->schema().field(1).name, "zone");
  EXPECT_EQ(out->schema().field(2).name, "total");
  EXPECT_EQ(out->schema().field(3).name, "count_all");
  EXPECT_EQ(out->schema().field(4).name, "max(price)");
  // Groups in order of first appearance: (b,1) (a,1) (null,2) (b,2).
  EXPECT_TRUE(out->column(0).equals(columnar::utf8_array({"b", "a", std::nullopt, "b"})));
  EXPECT_TRUE(out->column(1).equals(columnar::int32_array({1, 1, 2, 2})));
  EXPECT_TRUE(out->column(2).equals(columnar::int64_array({40, 20, 40, 60})));
  EXPECT_TRUE(out->column(3).equals(columnar::int64_array({2, 2, 1, 1})));
  EXPECT_TRUE(out->column(4).equals(columnar::int64_array({30, 20, 40, 60})));
  std::vector<Aggregate> dup = {sum("price"), sum("price")};
  EXPECT_EQ(group_by(*batch, keys, dup).status().code(), StatusCode::kInvalidArgument);
}

TEST(AggregateTest, IntegerSumOverflowIsAnErrorNotAWrap) {
  auto s64 = make_accumulator(AggregateKind::kSum, columnar::int64());
  ASSERT_TRUE(s64.is_ok());
  (*s64)->resize(1);
  std::vector<uint32_t> ids = {0, 0};
  Status st = (*s64)->update(columnar::int64_array({std::numeric_limits<int64_t>::max(), 1}), ids);
  EXPECT_EQ(st.code(), StatusCode::kOutOfRange);
  EXPECT_NE(st.message().find("overflowed int64"), std::string::npos) << st.to_string();
  auto u64 = make_accumulator(AggregateKind::kSum, columnar::uint64());
  ASSERT_TRUE(u64.is_ok());
  (*u64)->resize(1);
  EXPECT_EQ(
      (*u64)->update(columnar::uint64_array({std::numeric_limits<uint64_t>::max(), 1}), ids).code(),
      StatusCode::kOutOfRange);
  // Overflow through merging partials is caught too.
  auto a = make_accumulator(AggregateKind::kSum, columnar::int64());
  auto b = make_accumulator(AggregateKind::kSum, columnar::int64());
  (*a)->resize(1);
  (*b)->resize(1);
  std::vector<uint32_t> one = {0};
  ASSERT_TRUE(
      (*a)->update(columnar::int64_array({std::numeric_limits<int64_t>::min()}), one).is_ok());
  ASSERT_TRUE((*b)->update(columnar::int64_array({-1}), one).is_ok());
  EXPECT_EQ((*a)->merge(**b, one).code(), StatusCode::kOutOfRange);
  // int32 sums go to int64 and do not overflow at int32's limits.
  auto s32 = make_accumulator(AggregateKind::kSum, columnar::int32());
  (*s32)->resize(1);
  ASSERT_TRUE((*s32)->update(columnar::int32_array({INT32_MAX, INT32_MAX}), ids).is_ok());
  auto r = (*s32)->finalize();
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->value<int64_t>(0), 2 * int64_t{INT32_MAX});
}

TEST(AggregateTest, VarianceIsStableForLargeOffsets) {
  // Naive sum-of-squares loses everything here; Welford keeps the exact answer.
  auto schema = columnar::schema({field("x", columnar::float64())});
  auto batch =
      RecordBatch::make(schema, {columnar::float64_array({1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16})});
  ASSERT_TRUE(batch.is_ok());
  std::vector<Aggregate> aggs = {variance("x"), stddev("x")};
  auto out = aggregate(*batch, aggs);
  ASSERT_TRUE(out.is_ok());
  EXPECT_NEAR(out->column(0).value<double>(0), 30.0, 1e-6);
  EXPECT_NEAR(out->column(1).value<double>(0), std::sqrt(30.0), 1e-6);
  auto single = aggregate(batch->slice(0, 1), aggs);
  ASSERT_TRUE(single.is_ok());
  EXPECT_TRUE(single->column(0).is_null(0)) << "sample variance of one value is null";
}

TEST(AggregateTest, FloatMinMaxIgnoreNaNUnlessAllValuesAreNaN) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto schema = columnar::schema({field("k", columnar::int64()), field("x", columnar::float64())});
  auto batch = RecordBatch::make(schema, {columnar::int64_array({1, 1, 1, 2, 2}),
                                          columnar::float64_array({nan, 3.0, -1.0, nan, nan})});
  ASSERT_TRUE(batch.is_ok());
  std::vector<std::string> keys = {"k"};
  std::vector<Aggregate> aggs = {min("x"), max("x"), count_distinct("x")};
  auto out = group_by(*batch, keys, aggs);
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(out->column(1).value<double>(0), -1.0);
  EXPECT_EQ(out->column(2).value<double>(0), 3.0);
  EXPECT_TRUE(std::isnan(out->column(1).value<double>(1)));
  EXPECT_TRUE(std::isnan(out->column(2).value<double>(1)));
  EXPECT_EQ(out->column(3).value<int64_t>(0), 3);
  EXPECT_EQ(out->column(3).value<int64_t>(1), 1) << "all NaNs are one distinct value";
}

TEST(AggregateTest, FirstAndLastFollowArrivalOrderAcrossBatchesSkippingNulls) {
  auto schema = columnar::schema({field("k", columnar::utf8()), field("v", columnar::utf8())});
  auto agg = GroupedAggregation::make(*schema, {"k"}, {first("v"), last("v")});
  ASSERT_TRUE(agg.is_ok());
  auto b1 = RecordBatch::make(schema, {columnar::utf8_array({"a", "b", "a"}),
                                       columnar::utf8_array({std::nullopt, "b1", "a1"})});
  auto b2 = RecordBatch::make(schema, {columnar::utf8_array({"a", "b", "a"}),
                                       columnar::utf8_array({"a2", std::nullopt, std::nullopt})});
  ASSERT_TRUE((*agg)->consume(*b1).is_ok());
  ASSERT_TRUE((*agg)->consume(*b2).is_ok());
  auto out = (*agg)->finalize();
  ASSERT_TRUE(out.is_ok());
  EXPECT_TRUE(out->column(1).equals(columnar::utf8_array({"a1", "b1"})));
  EXPECT_TRUE(out->column(2).equals(columnar::utf8_array({"a2", "b1"})));
}

// Splits one random stream between an "earlier" and a "later" aggregation, merges the later into
// the earlier, and compares with aggregating the whole stream in one.
TEST(AggregateTest, MergingPartialsEqualsAggregatingEverythingAtOnce) {
  std::mt19937_64 rng(99);
  for (const DataType& type : all_test_types()) {
    SCOPED_TRACE(type.to_string());
    auto schema = columnar::schema(
        {field("k1", columnar::utf8()), field("k2", columnar::int32()), field("v", type)});
    std::vector<Aggregate> aggs;
    for (AggregateKind kind : all_kinds()) {
      if (supported(kind, type)) aggs.push_back(Aggregate{kind, "v", ""});
    }
    std::vector<std::string> keys = {"k1", "k2"};
    auto whole = GroupedAggregation::make(*schema, keys, aggs);
    auto early = GroupedAggregation::make(*schema, keys, aggs);
    auto late = GroupedAggregation::make(*schema, keys, aggs);
    ASSERT_TRUE(whole.is_ok() && early.is_ok() && late.is_ok());
    const int batches = 6;
    const int split = 1 + static_cast<int>(rng() % (batches - 1));
    for (int b = 0; b < batches; ++b) {
      const int64_t len = static_cast<int64_t>(rng() % 900);
      auto batch =
          RecordBatch::make(schema, {random_array(columnar::utf8(), len, 0.1, 8, rng),
                                     random_array(columnar::int32(), len, 0.1, 3, rng),
                                     random_array(type, len, 0.3, 40, rng, /*extreme=*/false)});
      ASSERT_TRUE(batch.is_ok());
      ASSERT_TRUE((*whole)->consume(*batch).is_ok());
      ASSERT_TRUE((b < split ? *early : *late)->consume(*batch).is_ok());
    }
    ASSERT_TRUE((*early)->merge(**late).is_ok());
    auto expected = (*whole)->finalize();
    auto actual = (*early)->finalize();
    ASSERT_TRUE(expected.is_ok() && actual.is_ok());
    ASSERT_EQ(actual->num_rows(), expected->num_rows());
    // Groups may come in another order after a merge: match rows by key.
    std::map<std::pair<Val, Val>, int64_t> row_of;
    for (int64_t r = 0; r < expected->num_rows(); ++r) {
      row_of[{val_at(expected->column(0), r), val_at(expected->column(1), r)}] = r;
    }
    for (int64_t r = 0; r < actual->num_rows(); ++r) {
      auto it = row_of.find({val_at(actual->column(0), r), val_at(actual->column(1), r)});
      ASSERT_NE(it, row_of.end());
      for (int c = 2; c < actual->num_columns(); ++c) {
        expect_val_eq(val_at(actual->column(c), r), val_at(expected->column(c), it->second),
                      actual->schema().field(c).name);
      }
    }
  }
}

TEST(AggregateTest, SnapshotRoundTripRestoresStateAndKeepsAggregating) {
  std::mt19937_64 rng(5);
  for (const DataType& type : all_test_types()) {
    for (bool global : {false, true}) {
      SCOPED_TRACE(type.to_string());
      auto schema = columnar::schema({field("k", columnar::utf8()), field("v", type)});
      std::vector<Aggregate> aggs;
      for (AggregateKind kind : all_kinds()) {
        if (supported(kind, type)) {
          aggs.push_back(Aggregate{kind, kind == AggregateKind::kCountAll ? "" : "v", ""});
        }
      }
      std::vector<std::string> keys;
      if (!global) keys.push_back("k");
      auto a = GroupedAggregation::make(*schema, keys, aggs);
      auto b = GroupedAggregation::make(*schema, keys, aggs);
      ASSERT_TRUE(a.is_ok() && b.is_ok());
      auto batch = [&]() {
        const int64_t len = static_cast<int64_t>(rng() % 600);
        return *RecordBatch::make(schema,
                                  {random_array(columnar::utf8(), len, 0.1, 30, rng),
                                   random_array(type, len, 0.2, 50, rng, /*extreme=*/false)});
      };
      for (int i = 0; i < 3; ++i) ASSERT_TRUE((*a)->consume(batch()).is_ok());
      std::string snapshot;
      (*a)->serialize(&snapshot);
      ASSERT_TRUE((*b)->deserialize(snapshot).is_ok());
      for (int i = 0; i < 2; ++i) {
        RecordBatch next = batch();
        ASSERT_TRUE((*a)->consume(next).is_ok());
        ASSERT_TRUE((*b)->consume(next).is_ok());
      }
      auto ra = (*a)->finalize();
      auto rb = (*b)->finalize();
      ASSERT_TRUE(ra.is_ok() && rb.is_ok());
      EXPECT_TRUE(ra->equals(*rb)) << ra->to_string() << "\n" << rb->to_string();
      EXPECT_EQ((*b)->deserialize(snapshot.substr(0, snapshot.size() / 2)).code(),
                StatusCode::kInvalidData);
    }
  }
}

// Per-group snapshots (a key group's share of the groups): the listed groups' state lands in other
// groups of a fresh accumulator, which then keeps aggregating like the original.
TEST(AggregateTest, GroupSnapshotsMoveGroupsIntoAnotherAccumulator) {
  std::mt19937_64 rng(77);
  for (const DataType& type : all_test_types()) {
    for (AggregateKind kind : all_kinds()) {
      if (!supported(kind, type)) continue;
      SCOPED_TRACE(std::string(aggregate_kind_name(kind)) + " over " + type.to_string());
      auto a = make_accumulator(kind, type).value();
      auto b = make_accumulator(kind, type).value();
      constexpr uint32_t kGroups = 40;
      a->resize(kGroups);
      auto feed = [&](GroupedAccumulator& acc, std::span<const uint32_t> to) {
        const int64_t len = static_cast<int64_t>(rng() % 300);
        Array v = random_array(type, len, 0.2, 30, rng, /*extreme=*/false);
        std::vector<uint32_t> ids(static_cast<size_t>(len)), mapped(ids.size());
        for (auto& g : ids) g = static_cast<uint32_t>(rng() % to.size());
        for (size_t i = 0; i < ids.size(); ++i) mapped[i] = to[ids[i]];
        ASSERT_TRUE(acc.update(v, mapped).is_ok());
      };
      std::vector<uint32_t> all(kGroups);
      for (uint32_t g = 0; g < kGroups; ++g) all[g] = g;
      for (int i = 0; i < 4; ++i) feed(*a, all);
      // A random subset in random order, into other ids of `b`, which already holds a group.
      std::vector<uint32_t> groups = all;
      std::shuffle(groups.begin(), groups.end(), rng);
      groups.resize(1 + rng() % kGroups);
      b->resize(1);
      std::vector<uint32_t> targets(groups.size());
      b->resize(static_cast<uint32_t>(groups.size() + 1));
      for (size_t i = 0; i < targets.size(); ++i) targets[i] = static_cast<uint32_t>(i + 1);
      std::shuffle(targets.begin(), targets.end(), rng);
      std::string bytes;
      ByteWriter w(&bytes);
      a->serialize_groups(groups, w);
      ByteReader r(bytes, "groups");
      ASSERT_TRUE(b->deserialize_groups(r, targets).is_ok());
      EXPECT_TRUE(r.at_end());
      // Both keep aggregating the same values into the corresponding groups.
      for (int i = 0; i < 2; ++i) {
        const int64_t len = static_cast<int64_t>(rng() % 200);
        Array v = random_array(type, len, 0.2, 30, rng, /*extreme=*/false);
        std::vector<uint32_t> pick(static_cast<size_t>(len)), ga(pick.size()), gb(pick.size());
        for (size_t j = 0; j < pick.size(); ++j) {
          pick[j] = static_cast<uint32_t>(rng() % groups.size());
          ga[j] = groups[pick[j]];
          gb[j] = targets[pick[j]];
        }
        ASSERT_TRUE(a->update(v, ga).is_ok());
        ASSERT_TRUE(b->update(v, gb).is_ok());
      }
      Array fa = a->finalize().value(), fb = b->finalize().value();
      for (size_t i = 0; i < groups.size(); ++i) {
        EXPECT_EQ(fa.scalar_at(groups[i]).to_string(), fb.scalar_at(targets[i]).to_string())
            << "group " << groups[i];
      }
      // Every truncation is refused naming the byte; so is another kind's state.
      for (size_t len = 0; len < bytes.size(); len += 1 + bytes.size() / 7) {
        auto c = make_accumulator(kind, type).value();
        c->resize(static_cast<uint32_t>(groups.size()));
        ByteReader cut(std::string_view(bytes).substr(0, len), "groups");
        Status st = c->deserialize_groups(cut, std::span(all).subspan(0, groups.size()));
        EXPECT_EQ(st.code(), StatusCode::kInvalidData) << len;
        EXPECT_NE(st.message().find("at byte"), std::string::npos) << st.to_string();
      }
      AggregateKind other =
          kind == AggregateKind::kCountAll ? AggregateKind::kCount : AggregateKind::kCountAll;
      auto c = make_accumulator(other, type).value();
      c->resize(static_cast<uint32_t>(groups.size()));
      ByteReader again(bytes, "groups");
      EXPECT_EQ(c->deserialize_groups(again, std::span(all).subspan(0, groups.size())).code(),
                StatusCode::kInvalidData);
    }
  }
}

// Snapshots come from storage: every truncation must be refused, and corrupted bytes must give an
// error or some state, never a crash (run under ASan in CI).
TEST(AggregateTest, TruncatedOrCorruptedSnapshotsAreRefusedWithoutCrashing) {
  std::mt19937_64 rng(17);
  auto schema = columnar::schema(
      {field("k", columnar::utf8()), field("n", columnar::int64()), field("s", columnar::utf8())});
  std::vector<Aggregate> aggs = {sum("n"),    min("s"),   last("s"),          stddev("n"),
                                 count_all(), count("s"), count_distinct("s")};
  for (const std::vector<std::string>& keys :
       std::vector<std::vector<std::string>>{{"k", "n"}, {"k"}, {"n"}, {}}) {
    SCOPED_TRACE(keys.size());
    auto agg = GroupedAggregation::make(*schema, keys, aggs);
    ASSERT_TRUE(agg.is_ok());
    auto batch = RecordBatch::make(schema, {random_array(columnar::utf8(), 60, 0.1, 5, rng),
                                            random_array(columnar::int64(), 60, 0.1, 3, rng),
                                            random_array(columnar::utf8(), 60, 0.2, 9, rng)});
    ASSERT_TRUE(batch.is_ok());
    ASSERT_TRUE((*agg)->consume(*batch).is_ok());
    std::string snapshot;
    (*agg)->serialize(&snapshot);
    for (size_t len = 0; len < snapshot.size(); ++len) {
      auto fresh = GroupedAggregation::make(*schema, keys, aggs);
      ASSERT_TRUE(fresh.is_ok());
      ASSERT_EQ((*fresh)->deserialize(std::string_view(snapshot).substr(0, len)).code(),
                StatusCode::kInvalidData)
          << "prefix of " << len << " bytes";
    }
    for (int trial = 0; trial < 300; ++trial) {
      std::string corrupt = snapshot;
      corrupt[rng() % corrupt.size()] = static_cast<char>(rng());
      auto fresh = GroupedAggregation::make(*schema, keys, aggs);
      ASSERT_TRUE(fresh.is_ok());
      if ((*fresh)->deserialize(corrupt).is_ok()) {
        // Whatever was restored must still finalize into a well-formed batch.
        auto out = (*fresh)->finalize();
        EXPECT_TRUE(out.is_ok()) << out.status().to_string();
      }
    }
  }
}

TEST(AggregateTest, AccumulatorRefusesSnapshotOfAnotherKind) {
  auto sum_acc = make_accumulator(AggregateKind::kSum, columnar::int64());
  auto min_acc = make_accumulator(AggregateKind::kMin, columnar::int64());
  ASSERT_TRUE(sum_acc.is_ok() && min_acc.is_ok());
  std::string snapshot;
  (*sum_acc)->serialize(&snapshot);
  EXPECT_EQ((*min_acc)->deserialize(snapshot).code(), StatusCode::kInvalidData);
}

TEST(AggregateTest, AccumulatorChecksLengthsTypesAndGroupIds) {
  auto acc = make_accumulator(AggregateKind::kMax, columnar::int64());
  ASSERT_TRUE(acc.is_ok());
  (*acc)->resize(2);
  std::vector<uint32_t> ids = {0, 2};
  EXPECT_EQ((*acc)->update(columnar::int64_array({1, 2}), ids).code(), StatusCode::kOutOfRange);
  std::vector<uint32_t> short_ids = {0};
  EXPECT_EQ((*acc)->update(columnar::int64_array({1, 2}), short_ids).code(),
            StatusCode::kInvalidArgument);
  std::vector<uint32_t> ok_ids = {0, 1};
  EXPECT_EQ((*acc)->update(columnar::int32_array({1, 2}), ok_ids).code(), StatusCode::kTypeError);
}

TEST(AggregateTest, ClearStartsTheNextWindowFromNothing) {
  auto schema = columnar::schema({field("k", columnar::int64()), field("v", columnar::int64())});
  auto agg = GroupedAggregation::make(*schema, {"k"}, {sum("v"), count_distinct("v")});
  ASSERT_TRUE(agg.is_ok());
  auto w1 = RecordBatch::make(schema,
                              {columnar::int64_array({1, 2, 1}), columnar::int64_array({5, 6, 7})});
  auto w2 =
      RecordBatch::make(schema, {columnar::int64_array({3, 1}), columnar::int64_array({1, 1})});
  ASSERT_TRUE((*agg)->consume(*w1).is_ok());
  (*agg)->clear();
  ASSERT_TRUE((*agg)->consume(*w2).is_ok());
  auto out = (*agg)->finalize();
  ASSERT_TRUE(out.is_ok());
  EXPECT_TRUE(out->column(0).equals(columnar::int64_array({3, 1})));
  EXPECT_TRUE(out->column(1).equals(columnar::int64_array({1, 1})));
  EXPECT_TRUE(out->column(2).equals(columnar::int64_array({1, 1})));
}

// Sliding windows keep one partial per pane and build each window by merging its panes; a pane
// must stay usable after being merged into a window.
TEST(AggregateTest, SlidingWindowsFromSharedPanePartialsEqualDirectAggregation) {
  std::mt19937_64 rng(31);
  auto schema = columnar::schema({field("user", columnar::utf8()), field("v", columnar::int64())});
  std::vector<std::string> keys = {"user"};
  std::vector<Aggregate> aggs = {sum("v"), count_all(), avg("v"),  stddev("v"),
                                 min("v"), first("v"),  last("v"), count_distinct("v")};
  constexpr int kPanes = 5;
  std::vector<std::unique_ptr<GroupedAggregation>> panes;
  std::vector<std::vector<RecordBatch>> pane_batches(kPanes);
  for (int p = 0; p < kPanes; ++p) {
    auto pane = GroupedAggregation::make(*schema, keys, aggs);
    ASSERT_TRUE(pane.is_ok());
    for (int b = 0; b < 2; ++b) {
      const int64_t len = static_cast<int64_t>(rng() % 400);
      auto batch = RecordBatch::make(schema, {random_array(columnar::utf8(), len, 0.05, 12, rng),
                                              random_array(columnar::int64(), len, 0.2, 30, rng)});
      ASSERT_TRUE(batch.is_ok());
      ASSERT_TRUE((*pane)->consume(*batch).is_ok());
      pane_batches[p].push_back(*batch);
    }
    panes.push_back(std::move(*pane));
  }
  // Windows of 3 panes sliding by one pane.
  for (int start = 0; start + 3 <= kPanes; ++start) {
    auto window = GroupedAggregation::make(*schema, keys, aggs);
    auto direct = GroupedAggregation::make(*schema, keys, aggs);
    ASSERT_TRUE(window.is_ok() && direct.is_ok());
    for (int p = start; p < start + 3; ++p) {
      ASSERT_TRUE((*window)->merge(*panes[p]).is_ok());
      for (const RecordBatch& b : pane_batches[p]) ASSERT_TRUE((*direct)->consume(b).is_ok());
    }
    auto w = (*window)->finalize();
    auto d = (*direct)->finalize();
    ASSERT_TRUE(w.is_ok() && d.is_ok());
    // Both see the keys in the same first-appearance order, so rows line up.
    ASSERT_EQ(w->num_rows(), d->num_rows());
    for (int c = 0; c < w->num_columns(); ++c) {
      for (int64_t r = 0; r < w->num_rows(); ++r) {
        expect_val_eq(val_at(w->column(c), r), val_at(d->column(c), r),
                      "window " + std::to_string(start) + " " + w->schema().field(c).name);
      }
    }
  }
}

TEST(AggregateTest, AggregationRejectsMismatchedBatchesAndMerges) {
  auto schema = columnar::schema({field("k", columnar::int64()), field("v", columnar::int64())});
  auto agg = GroupedAggregation::make(*schema, {"k"}, {sum("v")});
  ASSERT_TRUE(agg.is_ok());
  auto other_schema =
      columnar::schema({field("k", columnar::int64()), field("v", columnar::float64())});
  auto batch =
      RecordBatch::make(other_schema, {columnar::int64_array({1}), columnar::float64_array({1.5})});
  ASSERT_TRUE(batch.is_ok());
  Status st = (*agg)->consume(*batch);
  EXPECT_EQ(st.code(), StatusCode::kTypeError);
  EXPECT_NE(st.message().find("column 'v' has type float64, expected int64"), std::string::npos)
      << st.to_string();
  auto different = GroupedAggregation::make(*schema, {"k"}, {max("v")});
  ASSERT_TRUE(different.is_ok());
  EXPECT_EQ((*agg)->merge(**different).code(), StatusCode::kInvalidArgument);
  std::string snapshot;
  (*different)->serialize(&snapshot);
  EXPECT_EQ((*agg)->deserialize(snapshot).code(), StatusCode::kInvalidData);
}

TEST(AggregateTest, GlobalAggregateOverSlicedBatchSeesOnlyTheSlice) {
  auto schema = columnar::schema({field("v", columnar::int64())});
  auto batch = RecordBatch::make(schema, {columnar::int64_array({100, 1, 2, std::nullopt, 200})});
  ASSERT_TRUE(batch.is_ok());
  std::vector<Aggregate> aggs = {sum("v"), count("v"), count_all(), min("v"), last("v")};
  auto out = aggregate(batch->slice(1, 3), aggs);
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(out->column(0).value<int64_t>(0), 3);
  EXPECT_EQ(out->column(1).value<int64_t>(0), 2);
  EXPECT_EQ(out->column(2).value<int64_t>(0), 3);
  EXPECT_EQ(out->column(3).value<int64_t>(0), 1);
  EXPECT_EQ(out->column(4).value<int64_t>(0), 2);
}

}  // namespace
}  // namespace sabot::compute
