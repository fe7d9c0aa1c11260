#include "sabot/columnar/record_batch.h"

#include <gtest/gtest.h>

#include "sabot/columnar/builder.h"

namespace sabot::columnar {
namespace {

RecordBatch sample() {
  auto s = schema({field("id", int64(), false), field("name", utf8()), field("price", float64())});
  return RecordBatch::make(s, {int64_array({1, 2, 3}), utf8_array({"ann", std::nullopt, "cy"}),
                               float64_array({1.5, 2.25, std::nullopt})})
      .value();
}

TEST(RecordBatch, MakeChecksShape) {
  auto s = schema({field("a", int64()), field("b", utf8())});
  auto wrong_count = RecordBatch::make(s, {int64_array({1})});
  ASSERT_FALSE(wrong_count.is_ok());
  EXPECT_NE(wrong_count.status().message().find("1 columns but its schema has 2"),
            std::string::npos);
  auto wrong_type = RecordBatch::make(s, {int64_array({1}), int64_array({2})});
  ASSERT_FALSE(wrong_type.is_ok());
  EXPECT_EQ(wrong_type.status().message(), "column 'b' is int64 but the schema says utf8");
  auto wrong_len = RecordBatch::make(s, {int64_array({1}), utf8_array({"x", "y"})});
  ASSERT_FALSE(wrong_len.is_ok());
  EXPECT_NE(wrong_len.status().message().find("column 'b' has 2 rows"), std::string::npos);
  auto not_null =
      RecordBatch::make(schema({field("a", int64(), false)}), {int64_array({std::nullopt})});
  ASSERT_FALSE(not_null.is_ok());
  EXPECT_NE(not_null.status().message().find("declared not null"), std::string::npos);
}

TEST(RecordBatch, ColumnsByNameAndSelect) {
  RecordBatch b = sample();
  EXPECT_EQ(b.num_rows(), 3);
  EXPECT_EQ(b.num_columns(), 3);
  EXPECT_TRUE(b.column("name")->equals(utf8_array({"ann", std::nullopt, "cy"})));
  auto missing = b.column("nope");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find("columns: id, name, price"), std::string::npos);
  std::vector<std::string> names{"price", "id"};
  auto sel = b.select(names);
  ASSERT_TRUE(sel.is_ok());
  EXPECT_EQ(sel->schema().field(0).name, "price");
  EXPECT_TRUE(sel->column(1).equals(int64_array({1, 2, 3})));
}

TEST(RecordBatch, SliceAndConcatRoundTrip) {
  RecordBatch b = sample();
  std::vector<RecordBatch> parts{b.slice(0, 1), b.slice(1, 0), b.slice(1, 2)};
  auto joined = concat(std::span<const RecordBatch>(parts));
  ASSERT_TRUE(joined.is_ok());
  EXPECT_TRUE(joined->equals(b));
  EXPECT_FALSE(b.slice(0, 2).equals(b));
}

TEST(RecordBatch, ConcatRefusesDifferentSchemas) {
  RecordBatch a = sample();
  RecordBatch other = RecordBatch::make(schema({field("x", int64())}), {int64_array({1})}).value();
  std::vector<RecordBatch> parts{a, other};
  EXPECT_FALSE(concat(std::span<const RecordBatch>(parts)).is_ok());
}

TEST(RecordBatch, EmptyBatches) {
  RecordBatch e = RecordBatch::make_empty(sample().schema_ptr());
  EXPECT_EQ(e.num_rows(), 0);
  EXPECT_EQ(e.num_columns(), 3);
  EXPECT_TRUE(e.equals(sample().slice(3, 0)));
  RecordBatch none;
  EXPECT_EQ(none.num_columns(), 0);
}

TEST(RecordBatch, PrettyPrintsATable) {
  EXPECT_EQ(sample().to_string(),
            "id    | name | price\n"
            "int64 | utf8 | float64\n"
            "------+------+--------\n"
            "1     | ann  | 1.5\n"
            "2     | null | 2.25\n"
            "3     | cy   | null\n"
            "(3 rows)\n");
  EXPECT_NE(sample().to_string(1).find("... 2 more rows"), std::string::npos);
}

}  // namespace
}  // namespace sabot::columnar
