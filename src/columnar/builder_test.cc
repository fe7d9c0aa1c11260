#include "sabot/columnar/builder.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "sabot/columnar/record_batch.h"

namespace sabot::columnar {
namespace {

TEST(Builder, MillionInt64RowsAfterReserveDoNotReallocate) {
  Int64Builder b;
  b.reserve(1'000'000);
  const int64_t* before = b.mutable_values();
  for (int64_t i = 0; i < 1'000'000; ++i) b.unsafe_append(i);
  EXPECT_EQ(b.mutable_values(), before);
  Array a = b.finish();
  EXPECT_EQ(a.length(), 1'000'000);
  EXPECT_EQ(a.value<int64_t>(999'999), 999'999);
  EXPECT_EQ(b.length(), 0);  // reset after finish
}

TEST(Builder, ValidityAppearsOnlyWithTheFirstNull) {
  Int64Builder b;
  for (int i = 0; i < 100; ++i) b.append(i);
  b.append_null();
  b.append(5);
  Array a = b.finish();
  EXPECT_EQ(a.null_count(), 1);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(a.is_valid(i));
  EXPECT_TRUE(a.is_null(100));
  EXPECT_TRUE(a.is_valid(101));
}

TEST(Builder, ReusableAfterFinish) {
  BinaryBuilder b;
  b.append("a");
  b.append_null();
  Array first = b.finish();
  b.append("bc");
  Array second = b.finish();
  EXPECT_TRUE(first.equals(utf8_array({"a", std::nullopt})));
  EXPECT_TRUE(second.equals(utf8_array({"bc"})));
}

TEST(Builder, AppendValuesBulk) {
  Float64Builder b;
  b.append_null();
  double v[] = {1.0, 2.0, 3.0};
  b.append_values(v, 3);
  EXPECT_TRUE(b.finish().equals(float64_array({std::nullopt, 1.0, 2.0, 3.0})));
}

TEST(Builder, MakeBuilderCoversEveryType) {
  for (DataType t : {boolean(), int32(), int64(), uint64(), float64(), utf8(), binary(),
                     timestamp(TimeUnit::kMicro)}) {
    auto b = make_builder(t);
    b->append_null();
    Array a = b->finish();
    EXPECT_EQ(a.type(), t);
    EXPECT_EQ(a.null_count(), 1);
  }
}

// A random array of any type plus its row-by-row model, for randomized tests.
struct RandomColumn {
  Array array;
  std::vector<Scalar> model;
};

Scalar random_scalar(DataType t, std::mt19937_64& rng) {
  switch (t.id()) {
    case TypeId::kBool:
      return Scalar::of_bool(rng() & 1);
    case TypeId::kInt32:
      return Scalar::of_int32(static_cast<int32_t>(rng()));
    case TypeId::kInt64:
      return Scalar::of_int64(static_cast<int64_t>(rng()));
    case TypeId::kUInt64:
      return Scalar::of_uint64(rng());
    case TypeId::kFloat64:
      return Scalar::of_float64(static_cast<double>(rng() % 100000) / 7.0);
    case TypeId::kTimestamp:
      return Scalar::of_timestamp(static_cast<int64_t>(rng() >> 20), t.unit());
    case TypeId::kUtf8:
    case TypeId::kBinary: {
      std::string s(rng() % 12, 'a');
      for (char& c : s) c = static_cast<char>('a' + rng() % 26);
      return Scalar{t, true, s};
    }
  }
  return Scalar::null(t);
}

RandomColumn random_column(DataType t, int64_t n, double null_share, std::mt19937_64& rng) {
  auto b = make_builder(t);
  RandomColumn out;
  std::uniform_real_distribution<double> u(0, 1);
  for (int64_t i = 0; i < n; ++i) {
    Scalar s = u(rng) < null_share ? Scalar::null(t) : random_scalar(t, rng);
    b->append_scalar(s);
    out.model.push_back(s);
  }
  out.array = b->finish();
  return out;
}

const DataType kAllTypes[] = {boolean(), int32(), int64(),  uint64(),
                              float64(), utf8(),  binary(), timestamp(TimeUnit::kNano)};

void expect_matches(const Array& a, const std::vector<Scalar>& model, size_t from = 0) {
  ASSERT_EQ(a.length(), static_cast<int64_t>(model.size() - from));
  int64_t nulls = 0;
  for (int64_t i = 0; i < a.length(); ++i) {
    ASSERT_EQ(a.scalar_at(i), model[from + static_cast<size_t>(i)]) << a.type() << " row " << i;
    nulls += model[from + static_cast<size_t>(i)].is_valid ? 0 : 1;
  }
  EXPECT_EQ(a.null_count(), nulls);
  EXPECT_TRUE(a.validate_full().is_ok());
}

TEST(BuilderRandomized, BuildSliceAndConcatMatchRowModel) {
  std::mt19937_64 rng(42);
  for (DataType t : kAllTypes) {
    for (int trial = 0; trial < 30; ++trial) {
      int64_t n = static_cast<int64_t>(rng() % 200);
      double null_share = (trial % 3) * 0.3;
      RandomColumn c = random_column(t, n, null_share, rng);
      expect_matches(c.array, c.model);

      // Slices see the right rows.
      int64_t off = n == 0 ? 0 : static_cast<int64_t>(rng() % static_cast<uint64_t>(n));
      int64_t len = static_cast<int64_t>(rng() % static_cast<uint64_t>(n - off + 1));
      Array s = c.array.slice(off, len);
      std::vector<Scalar> sub(c.model.begin() + off, c.model.begin() + off + len);
      expect_matches(s, sub);

      // Appending slices of arrays (copying with bit offsets) and concat agree with the model.
      RandomColumn d = random_column(t, static_cast<int64_t>(rng() % 50), 0.5, rng);
      std::vector<Array> parts{s, d.array, s};
      auto joined = concat(std::span<const Array>(parts));
      ASSERT_TRUE(joined.is_ok());
      std::vector<Scalar> expected = sub;
      expected.insert(expected.end(), d.model.begin(), d.model.end());
      expected.insert(expected.end(), sub.begin(), sub.end());
      expect_matches(*joined, expected);
      EXPECT_TRUE(joined->slice(0, len).equals(s));
    }
  }
}

TEST(Concat, RefusesMixedTypes) {
  std::vector<Array> parts{int64_array({1}), int32_array({1})};
  auto r = concat(std::span<const Array>(parts));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTypeError);
  EXPECT_NE(r.status().message().find("array 1 is int32"), std::string::npos);
}

}  // namespace
}  // namespace sabot::columnar
