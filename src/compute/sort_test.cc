#include "sabot/compute/sort.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "compute/random_arrays_test_util.h"
#include "sabot/columnar/builder.h"
#include "sabot/compute/selection.h"

namespace sabot::compute {
namespace {

using columnar::Array;
using columnar::DataType;
using columnar::RecordBatch;
using columnar::Scalar;
using columnar::TypeId;
using testing::all_types;
using testing::random_array;

// The reference order of two non-null scalars of one type, ascending: -1, 0, 1. Written
// independently of the kernel: NaN is handled by the caller.
int compare_values(const Scalar& a, const Scalar& b) {
  auto cmp = [](const auto& x, const auto& y) { return (x > y) - (x < y); };
  switch (a.type.id()) {
    case TypeId::kBool:
      return cmp(int{a.as_bool()}, int{b.as_bool()});
    case TypeId::kInt32:
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      return cmp(a.as_int64(), b.as_int64());
    case TypeId::kUInt64:
      return cmp(a.as_uint64(), b.as_uint64());
    case TypeId::kFloat64:
      return cmp(a.as_float64(), b.as_float64());
    case TypeId::kUtf8:
    case TypeId::kBinary: {
      // Unsigned byte order, spelled out.
      const std::string& x = a.as_string();
      const std::string& y = b.as_string();
      for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
        const auto cx = static_cast<unsigned char>(x[i]);
        const auto cy = static_cast<unsigned char>(y[i]);
        if (cx != cy) return cx < cy ? -1 : 1;
      }
      return cmp(x.size(), y.size());
    }
  }
  return 0;
}

// Reference comparison under one key: nulls by nulls_first, NaN after all numbers either way.
int compare_under_key(const Scalar& a, const Scalar& b, const SortKey& key) {
  if (!a.is_valid || !b.is_valid) {
    if (a.is_valid == b.is_valid) return 0;
    return (!a.is_valid) == key.nulls_first ? -1 : 1;
  }
  if (a.type.id() == TypeId::kFloat64) {
    const bool na = std::isnan(a.as_float64());
    const bool nb = std::isnan(b.as_float64());
    if (na || nb) return na == nb ? 0 : (na ? 1 : -1);
  }
  const int c = compare_values(a, b);
  return key.ascending ? c : -c;
}

// The reference: std::stable_sort of row tuples (vectors of scalars).
std::vector<int32_t> sort_by_loop(const RecordBatch& batch, const std::vector<SortKey>& keys) {
  std::vector<std::vector<Scalar>> rows(static_cast<size_t>(batch.num_rows()));
  for (int64_t r = 0; r < batch.num_rows(); ++r) {
    for (const SortKey& key : keys) {
      rows[static_cast<size_t>(r)].push_back((*batch.column(key.column)).scalar_at(r));
    }
  }
  std::vector<int32_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    for (size_t k = 0; k < keys.size(); ++k) {
      const int c = compare_under_key(rows[static_cast<size_t>(a)][k],
                                      rows[static_cast<size_t>(b)][k], keys[k]);
      if (c != 0) return c < 0;
    }
    return false;
  });
  return order;
}

RecordBatch batch_of(std::vector<std::pair<std::string, Array>> columns) {
  std::vector<columnar::Field> fields;
  std::vector<Array> arrays;
  for (auto& [name, array] : columns) {
    fields.push_back(columnar::field(name, array.type()));
    arrays.push_back(array);
  }
  auto batch = RecordBatch::make(columnar::schema(std::move(fields)), std::move(arrays));
  EXPECT_TRUE(batch.is_ok()) << batch.status().to_string();
  return *batch;
}

std::vector<int32_t> indices_or_die(const Result<std::vector<int32_t>>& r) {
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : std::vector<int32_t>{};
}

TEST(SortIndicesTest, OrdersInt64AscendingAndDescendingStably) {
  Array values = columnar::int64_array({5, -1, 5, 3, -1, 9});
  EXPECT_EQ(indices_or_die(sort_indices(values)), (std::vector<int32_t>{1, 4, 3, 0, 2, 5}));
  EXPECT_EQ(indices_or_die(sort_indices(values, /*ascending=*/false)),
            (std::vector<int32_t>{5, 0, 2, 3, 1, 4}));
}

TEST(SortIndicesTest, PlacesNullsLastOrFirst) {
  Array values = columnar::int32_array({3, std::nullopt, 1, std::nullopt, 2});
  EXPECT_EQ(indices_or_die(sort_indices(values)), (std::vector<int32_t>{2, 4, 0, 1, 3}));
  EXPECT_EQ(indices_or_die(sort_indices(values, true, /*nulls_first=*/true)),
            (std::vector<int32_t>{1, 3, 2, 4, 0}));
  EXPECT_EQ(indices_or_die(sort_indices(values, false, true)),
            (std::vector<int32_t>{1, 3, 0, 4, 2}));
}

TEST(SortIndicesTest, PutsNaNAfterEveryNumberInBothDirections) {
  const double nan = std::nan("");
  const double inf = INFINITY;
  Array values = columnar::float64_array({nan, 1.0, inf, std::nullopt, -inf, nan, -2.5});
  EXPECT_EQ(indices_or_die(sort_indices(values)), (std::vector<int32_t>{4, 6, 1, 2, 0, 5, 3}));
  EXPECT_EQ(indices_or_die(sort_indices(values, false)),
            (std::vector<int32_t>{2, 1, 6, 4, 0, 5, 3}));
  EXPECT_EQ(indices_or_die(sort_indices(values, true, true)),
            (std::vector<int32_t>{3, 4, 6, 1, 2, 0, 5}));
}

TEST(SortIndicesTest, OrdersStringsAndBinaryByUnsignedBytes) {
  Array text = columnar::utf8_array({"b", "\xc3\xa9", "", "ab", std::nullopt, "a"});
  EXPECT_EQ(indices_or_die(sort_indices(text)), (std::vector<int32_t>{2, 5, 3, 0, 1, 4}));
  Array bytes = columnar::binary_array(
      {std::string_view("\x80", 1), std::string_view("\x7f", 1), std::string_view("\0", 1)});
  EXPECT_EQ(indices_or_die(sort_indices(bytes)), (std::vector<int32_t>{2, 1, 0}));
}

TEST(SortIndicesTest, OrdersUInt64AboveInt64Max) {
  Array values = columnar::uint64_array({~uint64_t{0}, 1, uint64_t{1} << 63, 0});
  EXPECT_EQ(indices_or_die(sort_indices(values)), (std::vector<int32_t>{3, 1, 2, 0}));
}

TEST(SortIndicesTest, OrdersBoolFalseFirst) {
  Array values = columnar::bool_array({true, false, std::nullopt, true, false});
  EXPECT_EQ(indices_or_die(sort_indices(values)), (std::vector<int32_t>{1, 4, 0, 3, 2}));
  EXPECT_EQ(indices_or_die(sort_indices(values, false, true)),
            (std::vector<int32_t>{2, 0, 3, 1, 4}));
}

TEST(SortIndicesTest, EmptyArrayGivesNoIndices) {
  for (const DataType& type : all_types()) {
    EXPECT_TRUE(indices_or_die(sort_indices(Array::make_empty(type))).empty()) << type;
  }
}

TEST(SortIndicesTest, HonoursSliceOffset) {
  Array values = columnar::int64_array({100, 7, std::nullopt, 3, 5, -100}).slice(1, 4);
  EXPECT_EQ(indices_or_die(sort_indices(values)), (std::vector<int32_t>{2, 3, 0, 1}));
}

TEST(SortIndicesTest, MatchesStableSortOnRandomArraysOfEveryType) {
  std::mt19937_64 rng(31);
  for (int round = 0; round < 400; ++round) {
    const DataType& type = all_types()[rng() % all_types().size()];
    const auto length = static_cast<int64_t>(rng() % 400);
    const double null_rate = (rng() % 2) ? 0.0 : 0.2;
    Array values = random_array(type, length, null_rate, rng);
    const SortKey key{"v", (rng() & 1) != 0, (rng() & 1) != 0};
    RecordBatch batch = batch_of({{"v", values}});
    const std::vector<int32_t> expected = sort_by_loop(batch, {key});
    ASSERT_EQ(indices_or_die(sort_indices(values, key.ascending, key.nulls_first)), expected)
        << type << " length " << length << " offset " << values.offset() << " asc " << key.ascending
        << " nulls_first " << key.nulls_first;
    ASSERT_EQ(indices_or_die(sort_indices(batch, std::vector<SortKey>{key})), expected);
  }
}

// Long enough for the radix path of fixed-width keys (the short test above covers the other).
TEST(SortIndicesTest, MatchesStableSortOnLongRandomArrays) {
  std::mt19937_64 rng(37);
  for (int round = 0; round < 40; ++round) {
    const DataType& type = all_types()[rng() % all_types().size()];
    const auto length = static_cast<int64_t>(200 + rng() % 4000);
    Array values = random_array(type, length, (rng() % 2) ? 0.0 : 0.1, rng);
    const SortKey key{"v", (rng() & 1) != 0, (rng() & 1) != 0};
    const std::vector<int32_t> expected = sort_by_loop(batch_of({{"v", values}}), {key});
    ASSERT_EQ(indices_or_die(sort_indices(values, key.ascending, key.nulls_first)), expected)
        << type << " length " << length << " asc " << key.ascending;
  }
}

TEST(SortIndicesTest, OrdersFullRangeInt64AndFloat64) {
  std::mt19937_64 rng(38);
  std::vector<int64_t> ints(3000);
  for (int64_t& v : ints) v = static_cast<int64_t>(rng());
  columnar::Int64Builder ib;
  ib.append_values(ints.data(), static_cast<int64_t>(ints.size()));
  auto order = indices_or_die(sort_indices(ib.finish()));
  ASSERT_EQ(order.size(), ints.size());
  for (size_t i = 1; i < order.size(); ++i) ASSERT_LE(ints[order[i - 1]], ints[order[i]]);
  std::vector<double> doubles(3000);
  for (double& d : doubles) d = std::ldexp(static_cast<double>(static_cast<int64_t>(rng())), -40);
  columnar::Float64Builder fb;
  fb.append_values(doubles.data(), static_cast<int64_t>(doubles.size()));
  order = indices_or_die(sort_indices(fb.finish(), /*ascending=*/false));
  for (size_t i = 1; i < order.size(); ++i) ASSERT_GE(doubles[order[i - 1]], doubles[order[i]]);
}

// Strings sharing their first 8 bytes must be ordered by the bytes after them.
TEST(SortIndicesTest, OrdersStringsThatShareLongPrefixes) {
  std::mt19937_64 rng(39);
  for (const DataType& type : {columnar::utf8(), columnar::binary()}) {
    for (int round = 0; round < 6; ++round) {
      columnar::BinaryBuilder builder(type);
      const auto length = static_cast<int64_t>(300 + rng() % 2000);
      for (int64_t i = 0; i < length; ++i) {
        if (rng() % 10 == 0) {
          builder.append_null();
          continue;
        }
        std::string s = (rng() % 2) ? "shared_prefix" : "shared_p";
        const int tail = static_cast<int>(rng() % 3);
        for (int t = 0; t < tail; ++t) s += static_cast<char>('x' + rng() % 3);
        builder.append(s);
      }
      Array values = builder.finish();
      const SortKey key{"v", (rng() & 1) != 0, (rng() & 1) != 0};
      ASSERT_EQ(indices_or_die(sort_indices(values, key.ascending, key.nulls_first)),
                sort_by_loop(batch_of({{"v", values}}), {key}))
          << type << " asc " << key.ascending;
    }
  }
}

TEST(SortBatchTest, SortsByMultipleKeysStably) {
  RecordBatch batch = batch_of({{"city", columnar::utf8_array({"b", "a", "b", "a", "b"})},
                                {"amount", columnar::int64_array({1, 2, 1, std::nullopt, 0})},
                                {"id", columnar::int32_array({0, 1, 2, 3, 4})}});
  const std::vector<SortKey> keys = {{"city", true, false}, {"amount", false, false}};
  // a: amount 2 (row 1), null (row 3, last); b: 1 (row 0), 1 (row 2, stable), 0 (row 4).
  EXPECT_EQ(indices_or_die(sort_indices(batch, keys)), (std::vector<int32_t>{1, 3, 0, 2, 4}));
  auto sorted = sort(batch, keys);
  ASSERT_TRUE(sorted.is_ok());
  EXPECT_TRUE((*sorted->column("id")).equals(columnar::int32_array({1, 3, 0, 2, 4})));
  EXPECT_TRUE((*sorted->column("city")).equals(columnar::utf8_array({"a", "a", "b", "b", "b"})));
}

TEST(SortBatchTest, UnknownColumnIsAnErrorListingTheColumns) {
  RecordBatch batch =
      batch_of({{"price", columnar::int64_array({1})}, {"qty", columnar::int64_array({2})}});
  auto r = sort_indices(batch, std::vector<SortKey>{{"prise"}});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  const std::string text = r.status().to_string();
  EXPECT_NE(text.find("prise"), std::string::npos) << text;
  EXPECT_NE(text.find("price"), std::string::npos) << text;
  EXPECT_NE(text.find("qty"), std::string::npos) << text;
  auto t = top_n(batch, std::vector<SortKey>{{"prise"}}, 1);
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
}

TEST(SortBatchTest, NoKeysIsAnError) {
  RecordBatch batch = batch_of({{"x", columnar::int64_array({1})}});
  EXPECT_EQ(sort_indices(batch, std::span<const SortKey>()).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(SortBatchTest, EmptyBatchSortsToEmptyBatch) {
  RecordBatch batch = batch_of({{"x", Array::make_empty(columnar::utf8())}});
  auto sorted = sort(batch, std::vector<SortKey>{{"x"}});
  ASSERT_TRUE(sorted.is_ok());
  EXPECT_EQ(sorted->num_rows(), 0);
  auto top = top_n(batch, std::vector<SortKey>{{"x"}}, 3);
  ASSERT_TRUE(top.is_ok());
  EXPECT_EQ(top->num_rows(), 0);
}

RecordBatch random_multi_key_batch(int64_t rows, std::mt19937_64& rng) {
  std::vector<std::pair<std::string, Array>> columns;
  for (const DataType& type : all_types()) {
    columns.emplace_back(type.to_string(), random_array(type, rows, (rng() % 2) ? 0.0 : 0.2, rng));
  }
  return batch_of(std::move(columns));
}

std::vector<SortKey> random_keys(const RecordBatch& batch, std::mt19937_64& rng) {
  std::vector<SortKey> keys;
  const int count = 1 + static_cast<int>(rng() % 3);
  for (int k = 0; k < count; ++k) {
    const auto c = static_cast<int>(rng() % static_cast<uint64_t>(batch.num_columns()));
    keys.push_back({batch.schema().field(c).name, (rng() & 1) != 0, (rng() & 1) != 0});
  }
  return keys;
}

TEST(SortBatchTest, MatchesStableSortOfRowTuplesOnRandomBatches) {
  std::mt19937_64 rng(41);
  for (int round = 0; round < 200; ++round) {
    // Every tenth batch is long enough for the radix and run-recursion paths.
    const auto rows = static_cast<int64_t>(round % 10 == 0 ? 1000 + rng() % 2000 : rng() % 300);
    RecordBatch batch = random_multi_key_batch(rows, rng);
    const std::vector<SortKey> keys = random_keys(batch, rng);
    const std::vector<int32_t> expected = sort_by_loop(batch, keys);
    ASSERT_EQ(indices_or_die(sort_indices(batch, keys)), expected) << "round " << round;
    auto sorted = sort(batch, keys);
    ASSERT_TRUE(sorted.is_ok());
    auto expected_batch = take(batch, expected);
    ASSERT_TRUE(sorted->equals(*expected_batch));
  }
}

TEST(TopNTest, ReturnsTheFirstRowsOfTheSortedOrder) {
  RecordBatch batch = batch_of(
      {{"score", columnar::float64_array({0.5, 9.0, std::nullopt, 3.0, 9.0, std::nan("")})}});
  auto top = top_n(batch, std::vector<SortKey>{{"score", false}}, 3);
  ASSERT_TRUE(top.is_ok());
  // Descending: 9.0 (row 1), 9.0 (row 4), 3.0; NaN and null come after all numbers.
  EXPECT_TRUE(top->column(0).equals(columnar::float64_array({9.0, 9.0, 3.0})))
      << top->column(0).to_string();
}

TEST(TopNTest, NegativeNIsAnErrorAndLargeNReturnsEverything) {
  RecordBatch batch = batch_of({{"x", columnar::int64_array({3, 1, 2})}});
  EXPECT_EQ(top_n(batch, std::vector<SortKey>{{"x"}}, -1).status().code(),
            StatusCode::kInvalidArgument);
  auto all = top_n(batch, std::vector<SortKey>{{"x"}}, 10);
  ASSERT_TRUE(all.is_ok());
  EXPECT_TRUE(all->column(0).equals(columnar::int64_array({1, 2, 3})));
  auto none = top_n(batch, std::vector<SortKey>{{"x"}}, 0);
  ASSERT_TRUE(none.is_ok());
  EXPECT_EQ(none->num_rows(), 0);
}

TEST(TopNTest, MatchesPrefixOfStableSortOnRandomBatches) {
  std::mt19937_64 rng(43);
  for (int round = 0; round < 200; ++round) {
    const auto rows = static_cast<int64_t>(rng() % 300);
    RecordBatch batch = random_multi_key_batch(rows, rng);
    const std::vector<SortKey> keys = random_keys(batch, rng);
    const auto n = static_cast<int64_t>(rng() % 320);
    std::vector<int32_t> expected = sort_by_loop(batch, keys);
    expected.resize(static_cast<size_t>(std::min(n, rows)));
    auto top = top_n(batch, keys, n);
    ASSERT_TRUE(top.is_ok()) << top.status().to_string();
    auto expected_batch = take(batch, expected);
    ASSERT_TRUE(top->equals(*expected_batch)) << "round " << round << " n " << n;
  }
}

}  // namespace
}  // namespace sabot::compute
