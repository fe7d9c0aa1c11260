#include "sabot/columnar/array.h"

#include <gtest/gtest.h>

#include <cmath>

#include "sabot/columnar/builder.h"

namespace sabot::columnar {
namespace {

TEST(Array, DefaultIsEmptyInt64) {
  Array a;
  EXPECT_EQ(a.length(), 0);
  EXPECT_EQ(a.type(), int64());
  EXPECT_EQ(a.to_string(), "[]");
}

TEST(Array, ValuesNullsAndToString) {
  Array a = int64_array({1, std::nullopt, 3});
  EXPECT_EQ(a.length(), 3);
  EXPECT_EQ(a.null_count(), 1);
  EXPECT_TRUE(a.is_valid(0));
  EXPECT_TRUE(a.is_null(1));
  EXPECT_EQ(a.value<int64_t>(2), 3);
  EXPECT_EQ(a.to_string(), "[1, null, 3]");
  EXPECT_EQ(utf8_array({"a", std::nullopt, "cd"}).to_string(), "[\"a\", null, \"cd\"]");
  EXPECT_EQ(binary_array({"\x01\xff"}).to_string(), "[0x01ff]");
  EXPECT_EQ(float64_array({0.1, 2.5}).to_string(), "[0.1, 2.5]");
  EXPECT_EQ(bool_array({true, false, std::nullopt}).to_string(), "[true, false, null]");
}

TEST(Array, NoValidityBitmapWithoutNulls) {
  Array a = int64_array({1, 2, 3});
  EXPECT_EQ(a.validity_bits(), nullptr);
  EXPECT_EQ(a.null_count(), 0);
}

TEST(Array, ToStringTruncates) {
  Int64Builder b;
  for (int i = 0; i < 30; ++i) b.append(i);
  EXPECT_EQ(b.finish().to_string(3), "[0, 1, 2, ... 27 more]");
}

TEST(Array, SliceIsZeroCopyAndRecountsNulls) {
  Array a = utf8_array({"zero", std::nullopt, "two", "three", std::nullopt});
  Array s = a.slice(1, 3);
  EXPECT_EQ(s.length(), 3);
  EXPECT_EQ(s.offset(), 1);
  EXPECT_EQ(s.null_count(), 1);
  EXPECT_EQ(s.string_view(1), "two");
  EXPECT_EQ(s.raw_data(), a.raw_data());  // shares buffers
  EXPECT_TRUE(s.equals(utf8_array({std::nullopt, "two", "three"})));
  Array s2 = s.slice(1, 2);
  EXPECT_EQ(s2.null_count(), 0);
  EXPECT_EQ(s2.string_view(1), "three");
}

TEST(Array, SliceOfBooleansUsesBitOffsets) {
  Array a = bool_array({true, false, true, true, false, false, true, false, true, true});
  Array s = a.slice(3, 6);
  EXPECT_TRUE(s.equals(bool_array({true, false, false, true, false, true})));
}

TEST(Array, EqualsComparesLogicalContent) {
  EXPECT_TRUE(int64_array({1, std::nullopt}).equals(int64_array({1, std::nullopt})));
  EXPECT_FALSE(int64_array({1, std::nullopt}).equals(int64_array({1, 2})));
  EXPECT_FALSE(int64_array({1}).equals(int32_array({1})));
  EXPECT_FALSE(int64_array({1}).equals(timestamp_array(TimeUnit::kMilli, {1})));
  EXPECT_TRUE(float64_array({NAN}).equals(float64_array({NAN})));
  // Values under nulls do not matter.
  Int64Builder b;
  b.append_null();
  Array x = b.finish();
  EXPECT_TRUE(x.equals(Array::make_null(int64(), 1)));
}

TEST(Array, MakeValidatesBuffers) {
  auto values = Buffer::allocate(16);
  EXPECT_TRUE(Array::make(int64(), 2, nullptr, values).is_ok());
  auto too_long = Array::make(int64(), 3, nullptr, values);
  ASSERT_FALSE(too_long.is_ok());
  EXPECT_NE(too_long.status().message().find("too small"), std::string::npos);
  auto validity = Buffer::allocate(1);
  validity->mutable_data()[0] = 0b01;
  auto with_nulls = Array::make(int64(), 2, validity, values);
  ASSERT_TRUE(with_nulls.is_ok());
  EXPECT_EQ(with_nulls->null_count(), 1);
  EXPECT_FALSE(Array::make(int64(), 2, validity, values, nullptr, 0, 0).is_ok());  // wrong count

  auto offsets = Buffer::allocate(12);
  auto* o = reinterpret_cast<int32_t*>(offsets->mutable_data());
  o[0] = 0;
  o[1] = 2;
  o[2] = 9;  // beyond the 4 data bytes
  auto data = Buffer::copy_of("abcd", 4);
  auto bad = Array::make(utf8(), 2, nullptr, offsets, data);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("outside the data buffer"), std::string::npos);
  o[2] = 4;
  auto good = Array::make(utf8(), 2, nullptr, offsets, data);
  ASSERT_TRUE(good.is_ok());
  EXPECT_EQ(good->string_view(1), "cd");
}

TEST(Array, ValidateFullFindsBadUtf8AndNonMonotonicOffsets) {
  EXPECT_TRUE(utf8_array({"h\xc3\xa9llo", "\xe2\x82\xac"}).validate_full().is_ok());
  Status s = utf8_array({"ok", "\xc3\x28"}).validate_full();
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("element 1"), std::string::npos);
  EXPECT_TRUE(binary_array({"\xc3\x28"}).validate_full().is_ok());  // binary may hold any bytes

  auto offsets = Buffer::allocate(12);
  auto* o = reinterpret_cast<int32_t*>(offsets->mutable_data());
  o[0] = 0;
  o[1] = 3;
  o[2] = 1;
  auto arr = Array::make(binary(), 2, nullptr, offsets, Buffer::copy_of("abcd", 4));
  ASSERT_TRUE(arr.is_ok());  // cheap checks pass; the full check does not
  EXPECT_FALSE(arr->validate_full().is_ok());
}

TEST(Utf8, RejectsOverlongSurrogatesAndTruncation) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii text longer than eight bytes"));
  EXPECT_TRUE(is_valid_utf8("\xf0\x9f\x98\x80"));   // U+1F600
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(is_valid_utf8("abc\xe2\x82"));       // truncated
  EXPECT_FALSE(is_valid_utf8("\xff"));
}

TEST(Array, MakeNullAndRepeated) {
  Array n = Array::make_null(utf8(), 3);
  EXPECT_EQ(n.null_count(), 3);
  EXPECT_EQ(n.to_string(), "[null, null, null]");
  Array r = Array::make_repeated(Scalar::of_float64(1.5), 3);
  EXPECT_TRUE(r.equals(float64_array({1.5, 1.5, 1.5})));
  EXPECT_EQ(Array::make_repeated(Scalar::null(int32()), 2).null_count(), 2);
  EXPECT_EQ(Array::make_empty(binary()).length(), 0);
}

TEST(Array, ScalarAtForEveryType) {
  EXPECT_EQ(int32_array({-5}).scalar_at(0), Scalar::of_int32(-5));
  EXPECT_EQ(uint64_array({UINT64_MAX}).scalar_at(0), Scalar::of_uint64(UINT64_MAX));
  EXPECT_EQ(timestamp_array(TimeUnit::kNano, {7}).scalar_at(0),
            Scalar::of_timestamp(7, TimeUnit::kNano));
  EXPECT_EQ(utf8_array({"x"}).scalar_at(0), Scalar::of_utf8("x"));
  EXPECT_EQ(bool_array({std::nullopt}).scalar_at(0), Scalar::null(boolean()));
}

}  // namespace
}  // namespace sabot::columnar
