#include "sabot/compute/grouper.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <vector>

#include "compute/grouping_test_util.h"
#include "sabot/columnar/builder.h"
#include "sabot/compute/hash.h"

namespace sabot::compute {
namespace {

using testing::all_test_types;
using testing::random_array;
using testing::Val;
using testing::val_at;

// Reference: a std::map from key row to the id of its first appearance.
struct ReferenceGrouper {
  std::map<std::vector<Val>, uint32_t> ids;
  std::vector<std::vector<Val>> keys;

  std::vector<uint32_t> consume(const std::vector<Array>& cols) {
    std::vector<uint32_t> out;
    for (int64_t i = 0; i < cols[0].length(); ++i) {
      std::vector<Val> row;
      for (const Array& c : cols) row.push_back(val_at(c, i));
      auto [it, inserted] = ids.emplace(row, static_cast<uint32_t>(keys.size()));
      if (inserted) keys.push_back(row);
      out.push_back(it->second);
    }
    return out;
  }
};

void expect_keys_equal(const Grouper& g, const ReferenceGrouper& ref) {
  auto keys = g.keys();
  ASSERT_TRUE(keys.is_ok()) << keys.status().to_string();
  ASSERT_EQ(keys->size(), g.key_types().size());
  for (size_t c = 0; c < keys->size(); ++c) {
    const Array& col = (*keys)[c];
    ASSERT_EQ(col.type(), g.key_types()[c]);
    ASSERT_EQ(col.length(), static_cast<int64_t>(ref.keys.size()));
    for (int64_t r = 0; r < col.length(); ++r) {
      ASSERT_EQ(val_at(col, r), ref.keys[static_cast<size_t>(r)][c]) << "group " << r;
    }
  }
}

// keys_of() of a selection of groups (backwards, every third one twice) equals the reference rows.
void expect_keys_of_equal(const Grouper& g, const ReferenceGrouper& ref) {
  std::vector<uint32_t> groups;
  for (uint32_t i = g.num_groups(); i-- > 0;) {
    groups.push_back(i);
    if (i % 3 == 0) groups.push_back(i);
  }
  auto keys = g.keys_of(groups);
  ASSERT_TRUE(keys.is_ok()) << keys.status().to_string();
  ASSERT_EQ(keys->size(), g.key_types().size());
  for (size_t c = 0; c < keys->size(); ++c) {
    const Array& col = (*keys)[c];
    ASSERT_EQ(col.type(), g.key_types()[c]);
    ASSERT_EQ(col.length(), static_cast<int64_t>(groups.size()));
    for (int64_t r = 0; r < col.length(); ++r) {
      ASSERT_EQ(val_at(col, r), ref.keys[groups[static_cast<size_t>(r)]][c]) << "row " << r;
    }
  }
  auto none = g.keys_of({});
  ASSERT_TRUE(none.is_ok());
  for (const Array& col : *none) EXPECT_EQ(col.length(), 0);
}

// Runs random batches through a grouper and the reference and compares ids and keys.
void check_against_reference(const std::vector<DataType>& types, uint64_t seed, int batches,
                             int domain) {
  std::mt19937_64 rng(seed);
  auto grouper = Grouper::make(types);
  ASSERT_TRUE(grouper.is_ok());
  ReferenceGrouper ref;
  std::vector<uint32_t> ids;
  for (int b = 0; b < batches; ++b) {
    const int64_t len = static_cast<int64_t>(rng() % 1500);
    const double null_rate = (rng() % 4) * 0.1;
    std::vector<Array> cols;
    for (const DataType& t : types) cols.push_back(random_array(t, len, null_rate, domain, rng));
    ASSERT_TRUE((*grouper)->consume(cols, &ids).is_ok());
    std::vector<uint32_t> expected = ref.consume(cols);
    ASSERT_EQ(ids, expected) << "batch " << b;
    ASSERT_EQ((*grouper)->num_groups(), ref.keys.size());
  }
  expect_keys_equal(**grouper, ref);
  expect_keys_of_equal(**grouper, ref);
}

TEST(GrouperTest, SingleKeyOfEveryTypeMatchesReference) {
  uint64_t seed = 1;
  for (const DataType& t : all_test_types()) {
    SCOPED_TRACE(t.to_string());
    check_against_reference({t}, seed++, 12, 300);
  }
}

TEST(GrouperTest, SeveralKeyColumnsIncludingStringsMatchReference) {
  const std::vector<std::vector<DataType>> combos = {
      {columnar::utf8(), columnar::int64()},
      {columnar::int32(), columnar::boolean(), columnar::binary()},
      {columnar::float64(), columnar::timestamp(columnar::TimeUnit::kNano)},
      {columnar::uint64(), columnar::utf8(), columnar::utf8()},
  };
  uint64_t seed = 100;
  for (const auto& types : combos) check_against_reference(types, seed++, 10, 20);
}

TEST(GrouperTest, RandomTypeCombinationsMatchReference) {
  std::mt19937_64 rng(77);
  for (int round = 0; round < 12; ++round) {
    std::vector<DataType> types;
    const int n = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < n; ++i) types.push_back(all_test_types()[rng() % all_test_types().size()]);
    check_against_reference(types, rng(), 6, 1 + static_cast<int>(rng() % 100));
  }
}

TEST(GrouperTest, GroupHashesEqualRowHashesOfTheKeys) {
  std::mt19937_64 rng(21);
  const std::vector<std::vector<DataType>> combos = {{columnar::int64()},
                                                     {columnar::int32()},
                                                     {columnar::uint64()},
                                                     {columnar::utf8()},
                                                     {columnar::binary()},
                                                     {columnar::float64()},
                                                     {columnar::utf8(), columnar::int32()}};
  for (const auto& types : combos) {
    auto g = Grouper::make(types);
    ASSERT_TRUE(g.is_ok());
    std::vector<uint32_t> ids;
    for (int b = 0; b < 3; ++b) {
      std::vector<Array> cols;
      for (const DataType& t : types) cols.push_back(random_array(t, 3000, 0.1, 500, rng));
      ASSERT_TRUE((*g)->consume(cols, &ids).is_ok());
    }
    auto keys = (*g)->keys();
    ASSERT_TRUE(keys.is_ok());
    std::vector<uint64_t> expected;
    ASSERT_TRUE(hash_columns(*keys, &expected).is_ok());
    std::vector<uint64_t> actual;
    (*g)->group_hashes(&actual);
    EXPECT_EQ(actual, expected) << types[0];
  }
}

TEST(GrouperTest, NullIsAKeyOfItsOwn) {
  for (const DataType& t : {columnar::int64(), columnar::utf8()}) {
    auto g = Grouper::make({t});
    ASSERT_TRUE(g.is_ok());
    std::vector<uint32_t> ids;
    Array nulls = Array::make_null(t, 3);
    ASSERT_TRUE((*g)->consume(std::span<const Array>(&nulls, 1), &ids).is_ok());
    EXPECT_EQ(ids, (std::vector<uint32_t>{0, 0, 0}));
    Array vals = t == columnar::int64() ? columnar::int64_array({0, std::nullopt, 0})
                                        : columnar::utf8_array({"", std::nullopt, ""});
    ASSERT_TRUE((*g)->consume(std::span<const Array>(&vals, 1), &ids).is_ok());
    // 0 / "" are not null: a group of their own.
    EXPECT_EQ(ids, (std::vector<uint32_t>{1, 0, 1}));
    auto keys = (*g)->keys();
    ASSERT_TRUE(keys.is_ok());
    EXPECT_TRUE((*keys)[0].is_null(0));
    EXPECT_TRUE((*keys)[0].is_valid(1));
  }
}

TEST(GrouperTest, NegativeZeroGroupsWithZeroAndNaNsGroupTogether) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Array a = columnar::float64_array({0.0, -0.0, nan, -std::nan("7"), 1.0, std::nullopt});
  auto g = Grouper::make({columnar::float64()});
  ASSERT_TRUE(g.is_ok());
  std::vector<uint32_t> ids;
  ASSERT_TRUE((*g)->consume(std::span<const Array>(&a, 1), &ids).is_ok());
  EXPECT_EQ(ids, (std::vector<uint32_t>{0, 0, 1, 1, 2, 3}));
}

TEST(GrouperTest, GrowsAcrossManyBatchesKeepingIds) {
  for (const DataType& t : {columnar::int64(), columnar::int32(), columnar::utf8()}) {
    SCOPED_TRACE(t.to_string());
    // 200 batches over a 100 K key domain: the table grows many times mid-batch.
    check_against_reference({t}, 9, 200, 100'000);
  }
}

TEST(GrouperTest, LookupFindsKnownKeysAndReturnsSentinelForUnknown) {
  for (const std::vector<DataType>& types : std::vector<std::vector<DataType>>{
           {columnar::int64()}, {columnar::utf8()}, {columnar::int64(), columnar::utf8()}}) {
    auto g = Grouper::make(types);
    ASSERT_TRUE(g.is_ok());
    std::vector<Array> known;
    std::vector<Array> probe;
    if (types.size() == 1 && types[0] == columnar::int64()) {
      known = {columnar::int64_array({10, 20, std::nullopt})};
      probe = {columnar::int64_array({20, 30, std::nullopt, 10})};
    } else if (types.size() == 1) {
      known = {columnar::utf8_array({"x", "y", std::nullopt})};
      probe = {columnar::utf8_array({"y", "z", std::nullopt, "x"})};
    } else {
      known = {columnar::int64_array({1, 2, std::nullopt}), columnar::utf8_array({"x", "y", "n"})};
      probe = {columnar::int64_array({2, 2, std::nullopt, 1}),
               columnar::utf8_array({"y", "x", "n", "x"})};
    }
    std::vector<uint32_t> ids;
    ASSERT_TRUE((*g)->consume(known, &ids).is_ok());
    auto found = (*g)->lookup(probe);
    ASSERT_TRUE(found.is_ok());
    EXPECT_EQ(*found, (std::vector<uint32_t>{1, Grouper::kUnknownGroup, 2, 0}));
    EXPECT_EQ((*g)->num_groups(), 3u) << "lookup must not insert";
  }
}

TEST(GrouperTest, EmptyBatchAssignsNothing) {
  auto g = Grouper::make({columnar::utf8(), columnar::int64()});
  ASSERT_TRUE(g.is_ok());
  std::vector<Array> cols = {Array::make_empty(columnar::utf8()),
                             Array::make_empty(columnar::int64())};
  std::vector<uint32_t> ids = {5, 6};
  ASSERT_TRUE((*g)->consume(cols, &ids).is_ok());
  EXPECT_TRUE(ids.empty());
  EXPECT_EQ((*g)->num_groups(), 0u);
  auto keys = (*g)->keys();
  ASSERT_TRUE(keys.is_ok());
  EXPECT_EQ((*keys)[0].length(), 0);
}

TEST(GrouperTest, ClearForgetsKeysAndStartsIdsAgain) {
  for (const DataType& t : {columnar::int64(), columnar::utf8()}) {
    auto g = Grouper::make({t});
    ASSERT_TRUE(g.is_ok());
    std::mt19937_64 rng(5);
    Array a = random_array(t, 500, 0.1, 50, rng);
    std::vector<uint32_t> first;
    ASSERT_TRUE((*g)->consume(std::span<const Array>(&a, 1), &first).is_ok());
    (*g)->clear();
    EXPECT_EQ((*g)->num_groups(), 0u);
    std::vector<uint32_t> again;
    ASSERT_TRUE((*g)->consume(std::span<const Array>(&a, 1), &again).is_ok());
    EXPECT_EQ(first, again);
  }
}

TEST(GrouperTest, SerializeRoundTripRestoresIdsAndContinues) {
  const std::vector<std::vector<DataType>> combos = {{columnar::int64()},
                                                     {columnar::uint64()},
                                                     {columnar::utf8()},
                                                     {columnar::binary()},
                                                     {columnar::utf8(), columnar::float64()}};
  for (const auto& types : combos) {
    std::mt19937_64 rng(11);
    auto g = Grouper::make(types);
    ASSERT_TRUE(g.is_ok());
    std::vector<uint32_t> ids;
    auto batch = [&]() {
      std::vector<Array> cols;
      for (const DataType& t : types) cols.push_back(random_array(t, 700, 0.1, 400, rng));
      return cols;
    };
    for (int b = 0; b < 3; ++b) ASSERT_TRUE((*g)->consume(batch(), &ids).is_ok());
    std::string snapshot;
    (*g)->serialize(&snapshot);
    auto restored = Grouper::make(types);
    ASSERT_TRUE(restored.is_ok());
    ASSERT_TRUE((*restored)->deserialize(snapshot).is_ok());
    EXPECT_EQ((*restored)->num_groups(), (*g)->num_groups());
    for (int b = 0; b < 3; ++b) {
      std::vector<Array> cols = batch();
      std::vector<uint32_t> a_ids;
      std::vector<uint32_t> b_ids;
      ASSERT_TRUE((*g)->consume(cols, &a_ids).is_ok());
      ASSERT_TRUE((*restored)->consume(cols, &b_ids).is_ok());
      ASSERT_EQ(a_ids, b_ids);
    }
    auto ka = (*g)->keys();
    auto kb = (*restored)->keys();
    ASSERT_TRUE(ka.is_ok() && kb.is_ok());
    for (size_t c = 0; c < ka->size(); ++c) EXPECT_TRUE((*ka)[c].equals((*kb)[c]));
  }
}

TEST(GrouperTest, DeserializeRejectsCorruptOrMismatchedSnapshots) {
  auto g = Grouper::make({columnar::int64()});
  ASSERT_TRUE(g.is_ok());
  Array a = columnar::int64_array({1, 2, 3});
  std::vector<uint32_t> ids;
  ASSERT_TRUE((*g)->consume(std::span<const Array>(&a, 1), &ids).is_ok());
  std::string snapshot;
  (*g)->serialize(&snapshot);
  auto other = Grouper::make({columnar::int32()});
  ASSERT_TRUE(other.is_ok());
  EXPECT_EQ((*other)->deserialize(snapshot).code(), StatusCode::kInvalidData);
  auto same = Grouper::make({columnar::int64()});
  ASSERT_TRUE(same.is_ok());
  EXPECT_EQ((*same)->deserialize(snapshot.substr(0, snapshot.size() - 3)).code(),
            StatusCode::kInvalidData);
  EXPECT_EQ((*same)->deserialize("garbage").code(), StatusCode::kInvalidData);
  auto generic = Grouper::make({columnar::utf8()});
  ASSERT_TRUE(generic.is_ok());
  EXPECT_EQ((*generic)->deserialize(snapshot).code(), StatusCode::kInvalidData);
}

TEST(GrouperTest, KeysOfRejectsUnknownGroupIds) {
  for (const std::vector<DataType>& types : std::vector<std::vector<DataType>>{
           {columnar::int64()}, {columnar::utf8()}, {columnar::utf8(), columnar::int64()}}) {
    auto g = Grouper::make(types);
    ASSERT_TRUE(g.is_ok());
    std::mt19937_64 rng(5);
    std::vector<Array> cols;
    for (const DataType& t : types) cols.push_back(random_array(t, 50, 0.0, 10, rng));
    std::vector<uint32_t> ids;
    ASSERT_TRUE((*g)->consume(cols, &ids).is_ok());
    const uint32_t n = (*g)->num_groups();
    EXPECT_TRUE((*g)->keys_of(std::vector<uint32_t>{0, n - 1}).is_ok());
    auto bad = (*g)->keys_of(std::vector<uint32_t>{0, n});
    ASSERT_FALSE(bad.is_ok());
    EXPECT_NE(bad.status().message().find("out of range"), std::string::npos)
        << bad.status().to_string();
  }
}

TEST(GrouperTest, RejectsKeysThatDoNotFit) {
  EXPECT_EQ(Grouper::make({}).status().code(), StatusCode::kInvalidArgument);
  auto g = Grouper::make({columnar::int64(), columnar::utf8()});
  ASSERT_TRUE(g.is_ok());
  std::vector<uint32_t> ids;
  std::vector<Array> one = {columnar::int64_array({1})};
  EXPECT_EQ((*g)->consume(one, &ids).code(), StatusCode::kInvalidArgument);
  std::vector<Array> wrong_type = {columnar::int64_array({1}), columnar::int64_array({1})};
  Status st = (*g)->consume(wrong_type, &ids);
  EXPECT_EQ(st.code(), StatusCode::kTypeError);
  EXPECT_NE(st.message().find("key column 1 has type int64, expected utf8"), std::string::npos)
      << st.to_string();
  std::vector<Array> uneven = {columnar::int64_array({1, 2}), columnar::utf8_array({"a"})};
  EXPECT_EQ((*g)->consume(uneven, &ids).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sabot::compute
