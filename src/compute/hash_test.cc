#include "sabot/compute/hash.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "compute/grouping_test_util.h"
#include "sabot/columnar/builder.h"

namespace sabot::compute {
namespace {

using columnar::TypeId;
using testing::all_test_types;
using testing::random_array;

// The plain scalar definition of the column hash, element by element.
uint64_t scalar_hash(const Array& a, int64_t i) {
  if (a.is_null(i)) return kNullHash;
  switch (a.type().id()) {
    case TypeId::kBool:
      return hash_int64(a.bool_value(i) ? 1 : 0);
    case TypeId::kInt32:
      return hash_int64(a.value<int32_t>(i));
    case TypeId::kInt64:
    case TypeId::kTimestamp:
      return hash_int64(a.value<int64_t>(i));
    case TypeId::kUInt64:
      return hash_int64(static_cast<int64_t>(a.value<uint64_t>(i)));
    case TypeId::kFloat64:
      return hash_float64(a.value<double>(i));
    case TypeId::kUtf8:
    case TypeId::kBinary:
      return hash_bytes(a.string_view(i));
  }
  return 0;
}

// These values are part of the on-disk contract (key groups and state placement). If this test
// fails, the hash changed: do not update the numbers, restore the hash.
TEST(HashTest, ValuesArePinnedForStability) {
  EXPECT_EQ(hash_int64(0), 0xa6eb836f38ab259aULL);
  EXPECT_EQ(hash_int64(1), 0x2d2c6e43f8c1f082ULL);
  EXPECT_EQ(hash_int64(-1), 0xaef4223a88374ffcULL);
  EXPECT_EQ(hash_bytes(""), 0x76550ce819ca8845ULL);
  EXPECT_EQ(hash_bytes("a"), 0xf809f8e407240ca1ULL);
  EXPECT_EQ(hash_bytes("hello world"), 0xbca5129dcedea030ULL);
  EXPECT_EQ(hash_bytes("abcde"), 0x2a7a613736925fdfULL);
  EXPECT_EQ(hash_bytes("twenty bytes of text"), 0xe6ff0abee3a6ee26ULL);
  EXPECT_EQ(hash_bytes(std::string(100, 'z')), 0x2f8acc05f254fb48ULL);
}

TEST(HashTest, ColumnHashEqualsScalarHashForEveryTypeWithNullsAndSlices) {
  std::mt19937_64 rng(42);
  for (const DataType& type : all_test_types()) {
    for (int round = 0; round < 20; ++round) {
      const int64_t len = static_cast<int64_t>(rng() % 3000);
      const double null_rate = (rng() % 3) * 0.3;
      Array a = random_array(type, len, null_rate, 1000, rng);
      std::vector<uint64_t> out(static_cast<size_t>(len) + 5, 7);
      hash_column(a, out);
      for (int64_t i = 0; i < len; ++i) {
        ASSERT_EQ(out[i], scalar_hash(a, i)) << type << " row " << i << " offset " << a.offset();
      }
      EXPECT_EQ(out[len], 7u) << "wrote past the array's length";
    }
  }
}

TEST(HashTest, EmptyColumnWritesNothing) {
  std::vector<uint64_t> out;
  hash_column(Array::make_empty(columnar::utf8()), out);
  std::vector<uint64_t> rows;
  Array empty = Array::make_empty(columnar::int64());
  ASSERT_TRUE(hash_columns(std::span<const Array>(&empty, 1), &rows).is_ok());
  EXPECT_TRUE(rows.empty());
}

TEST(HashTest, NullsHashToTheFixedNullHashInEveryType) {
  for (const DataType& type : all_test_types()) {
    Array a = Array::make_null(type, 5);
    std::vector<uint64_t> out(5);
    hash_column(a, out);
    for (uint64_t h : out) EXPECT_EQ(h, kNullHash) << type;
  }
}

TEST(HashTest, NegativeZeroEqualsZeroAndAllNaNsAreEqual) {
  const double nan1 = std::numeric_limits<double>::quiet_NaN();
  const double nan2 = -std::nan("0x123");
  ASSERT_NE(std::bit_cast<uint64_t>(nan1), std::bit_cast<uint64_t>(nan2));
  Array a = columnar::float64_array({0.0, -0.0, nan1, nan2, 1.0});
  std::vector<uint64_t> out(5);
  hash_column(a, out);
  EXPECT_EQ(out[0], out[1]);
  EXPECT_EQ(out[2], out[3]);
  EXPECT_NE(out[0], out[2]);
  EXPECT_NE(out[0], out[4]);
  EXPECT_EQ(hash_float64(-0.0), hash_float64(0.0));
}

TEST(HashTest, EqualStringsHashEqualAcrossArraysOffsetsAndUtf8OrBinary) {
  Array a = columnar::utf8_array({"x", "apple", "banana split with a long tail", "", "apple"});
  Array b = columnar::binary_array({"apple", "banana split with a long tail", ""});
  std::vector<uint64_t> ha(5);
  std::vector<uint64_t> hb(3);
  hash_column(a, ha);
  hash_column(b, hb);
  EXPECT_EQ(ha[1], hb[0]);
  EXPECT_EQ(ha[2], hb[1]);
  EXPECT_EQ(ha[3], hb[2]);
  EXPECT_EQ(ha[1], ha[4]);
  Array slice = a.slice(1, 3);
  std::vector<uint64_t> hs(3);
  hash_column(slice, hs);
  EXPECT_EQ(hs[0], ha[1]);
  EXPECT_EQ(hs[2], ha[3]);
}

TEST(HashTest, DifferentStringsOfEveryLengthHashDifferently) {
  // Strings of lengths 0..80 that differ in one or two bytes, at the start, middle or end.
  std::set<std::string> distinct;
  for (size_t len = 0; len <= 80; ++len) {
    for (int variant = 0; variant < 50; ++variant) {
      std::string s(len, 'a');
      if (len > 0) s[static_cast<size_t>(variant) % len] = static_cast<char>('b' + variant % 20);
      if (len > 1) s[len - 1 - static_cast<size_t>(variant) % len] ^= static_cast<char>(variant);
      distinct.insert(s);
    }
  }
  std::set<uint64_t> hashes;
  for (const std::string& s : distinct) hashes.insert(hash_bytes(s));
  EXPECT_GT(distinct.size(), 2000u);
  EXPECT_EQ(hashes.size(), distinct.size());
}

TEST(HashTest, FlippingOneInputBitFlipsAboutHalfTheOutputBits) {
  std::mt19937_64 rng(7);
  double int_total = 0;
  double bytes_total = 0;
  int trials = 0;
  for (int t = 0; t < 2000; ++t) {
    const uint64_t x = rng();
    const int bit = static_cast<int>(rng() % 64);
    int_total += std::popcount(hash_int64(static_cast<int64_t>(x)) ^
                               hash_int64(static_cast<int64_t>(x ^ (uint64_t{1} << bit))));
    std::string s(1 + rng() % 40, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    std::string s2 = s;
    const size_t pos = rng() % s.size();
    s2[pos] = static_cast<char>(s2[pos] ^ (1 << (rng() % 8)));
    bytes_total += std::popcount(hash_bytes(s) ^ hash_bytes(s2));
    ++trials;
  }
  EXPECT_NEAR(int_total / trials, 32.0, 1.5);
  EXPECT_NEAR(bytes_total / trials, 32.0, 1.5);
}

TEST(HashTest, SequentialKeysSpreadEvenlyOverKeyGroups) {
  constexpr int kGroups = 128;
  constexpr int kKeys = 128 * 1000;
  std::vector<int> counts(kGroups, 0);
  for (int64_t k = 0; k < kKeys; ++k) ++counts[key_group_of(hash_int64(k), kGroups)];
  for (int c : counts) {
    EXPECT_GT(c, 850);
    EXPECT_LT(c, 1150);
  }
}

TEST(HashTest, BatchKeyGroupsEqualScalarModuloForAnyParallelism) {
  std::mt19937_64 rng(8);
  std::vector<uint64_t> hashes(1000 + rng() % 100);
  for (uint64_t& h : hashes) h = rng();
  for (uint32_t p : {1u, 7u, 128u, 1000u, 4096u}) {
    std::vector<uint32_t> groups(hashes.size());
    key_groups(hashes, p, groups);
    for (size_t i = 0; i < hashes.size(); ++i) {
      ASSERT_EQ(groups[i], key_group_of(hashes[i], p)) << "parallelism " << p;
      ASSERT_EQ(groups[i], hashes[i] % p);
    }
  }
}

TEST(HashTest, HashColumnsCombinesKeyColumnsInOrder) {
  std::mt19937_64 rng(3);
  for (int round = 0; round < 30; ++round) {
    const int64_t len = static_cast<int64_t>(rng() % 2500);
    std::vector<Array> cols;
    const int ncols = 1 + static_cast<int>(rng() % 3);
    for (int c = 0; c < ncols; ++c) {
      const DataType& type = all_test_types()[rng() % all_test_types().size()];
      cols.push_back(random_array(type, len, 0.2, 50, rng));
    }
    std::vector<uint64_t> rows;
    ASSERT_TRUE(hash_columns(cols, &rows).is_ok());
    ASSERT_EQ(rows.size(), static_cast<size_t>(len));
    for (int64_t i = 0; i < len; ++i) {
      uint64_t h = scalar_hash(cols[0], i);
      for (int c = 1; c < ncols; ++c) h = hash_combine(h, scalar_hash(cols[c], i));
      ASSERT_EQ(rows[i], h) << "row " << i;
    }
    // The batch form over column indices gives the same hashes.
    std::vector<columnar::Field> fields;
    std::vector<int> idx;
    for (int c = 0; c < ncols; ++c) {
      std::string name(1, 'c');
      name += std::to_string(c);
      fields.push_back(columnar::field(name, cols[c].type()));
      idx.push_back(ncols - 1 - c);
    }
    auto batch = RecordBatch::make(columnar::schema(fields), cols);
    ASSERT_TRUE(batch.is_ok());
    std::vector<uint64_t> reversed;
    ASSERT_TRUE(hash_columns(*batch, idx, &reversed).is_ok());
    for (int64_t i = 0; i < len; ++i) {
      uint64_t h = scalar_hash(cols[ncols - 1], i);
      for (int c = ncols - 2; c >= 0; --c) h = hash_combine(h, scalar_hash(cols[c], i));
      ASSERT_EQ(reversed[i], h);
    }
  }
}

TEST(HashTest, SingleInt64KeyRowHashIsTheScalarHash) {
  Array a = columnar::int64_array({5, -7, std::nullopt});
  std::vector<uint64_t> rows;
  ASSERT_TRUE(hash_columns(std::span<const Array>(&a, 1), &rows).is_ok());
  EXPECT_EQ(rows[0], hash_int64(5));
  EXPECT_EQ(rows[1], hash_int64(-7));
  EXPECT_EQ(rows[2], kNullHash);
}

TEST(HashTest, HashColumnsRejectsBadArguments) {
  std::vector<uint64_t> rows;
  EXPECT_EQ(hash_columns(std::span<const Array>(), &rows).code(), StatusCode::kInvalidArgument);
  std::vector<Array> uneven = {columnar::int64_array({1, 2}), columnar::int64_array({1})};
  Status st = hash_columns(uneven, &rows);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("key column 1 has 1 rows"), std::string::npos) << st.to_string();
  auto batch = RecordBatch::make(columnar::schema({columnar::field("a", columnar::int64())}),
                                 {columnar::int64_array({1})});
  ASSERT_TRUE(batch.is_ok());
  std::vector<int> bad = {1};
  EXPECT_EQ(hash_columns(*batch, bad, &rows).code(), StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace sabot::compute
