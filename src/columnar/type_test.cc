#include "sabot/columnar/type.h"

#include <gtest/gtest.h>

namespace sabot::columnar {
namespace {

TEST(DataType, NamesRoundTripThroughParse) {
  for (DataType t : {boolean(), int32(), int64(), uint64(), float64(), utf8(), binary(),
                     timestamp(TimeUnit::kSecond), timestamp(TimeUnit::kMilli),
                     timestamp(TimeUnit::kMicro), timestamp(TimeUnit::kNano)}) {
    auto parsed = parse_data_type(t.to_string());
    ASSERT_TRUE(parsed.is_ok()) << t.to_string();
    EXPECT_EQ(*parsed, t);
  }
  EXPECT_EQ(timestamp(TimeUnit::kMicro).to_string(), "timestamp[us]");
  auto bad = parse_data_type("int128");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("int128"), std::string::npos);
}

TEST(DataType, TimestampUnitsAreDistinctTypes) {
  EXPECT_NE(timestamp(TimeUnit::kMilli), timestamp(TimeUnit::kNano));
  EXPECT_NE(timestamp(TimeUnit::kMilli), int64());
  EXPECT_EQ(int64(), DataType(TypeId::kInt64, TimeUnit::kNano));  // unit ignored for non-timestamps
}

TEST(DataType, LayoutProperties) {
  EXPECT_EQ(boolean().bit_width(), 1);
  EXPECT_EQ(int32().bit_width(), 32);
  EXPECT_EQ(float64().bit_width(), 64);
  EXPECT_TRUE(utf8().is_var_length());
  EXPECT_EQ(utf8().num_buffers(), 3);
  EXPECT_EQ(int64().num_buffers(), 2);
  EXPECT_TRUE(uint64().is_integer());
  EXPECT_FALSE(float64().is_integer());
  EXPECT_TRUE(float64().is_numeric());
  EXPECT_FALSE(timestamp(TimeUnit::kMilli).is_numeric());
}

TEST(Schema, FindsFieldsAndNamesMissingOnes) {
  auto s = schema({field("id", int64(), false), field("name", utf8())});
  EXPECT_EQ(s->num_fields(), 2);
  EXPECT_EQ(s->field_index("name"), 1);
  EXPECT_EQ(s->field_index("nope"), -1);
  auto missing = s->require_field_index("nope");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "no column named 'nope' (columns: id, name)");
  EXPECT_EQ(s->to_string(), "id: int64 not null\nname: utf8");
}

TEST(Schema, MakeRefusesDuplicateAndEmptyNames) {
  EXPECT_FALSE(Schema::make({field("a", int64()), field("a", utf8())}).is_ok());
  EXPECT_FALSE(Schema::make({field("", int64())}).is_ok());
  EXPECT_TRUE(Schema::make({field("a", int64()), field("b", utf8())}).is_ok());
}

}  // namespace
}  // namespace sabot::columnar
