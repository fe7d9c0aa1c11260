#include "sabot/compute/selection.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "compute/random_arrays_test_util.h"
#include "sabot/columnar/builder.h"

namespace sabot::compute {
namespace {

using columnar::Array;
using columnar::DataType;
using columnar::RecordBatch;
using testing::all_types;
using testing::random_array;
using testing::random_mask;

// The reference: a plain row loop over the mask with WHERE semantics.
std::vector<int32_t> selected_rows(const Array& mask) {
  std::vector<int32_t> rows;
  for (int64_t i = 0; i < mask.length(); ++i) {
    if (mask.is_valid(i) && mask.bool_value(i)) rows.push_back(static_cast<int32_t>(i));
  }
  return rows;
}

// The reference take: one scalar at a time through a builder.
Array take_by_loop(const Array& values, const std::vector<int32_t>& indices) {
  auto builder = columnar::make_builder(values.type());
  for (int32_t i : indices) builder->append_scalar(values.scalar_at(i));
  return builder->finish();
}

std::vector<int32_t> to_vector(const SelectionVector& s) {
  return {s.indices().begin(), s.indices().end()};
}

int64_t random_length(std::mt19937_64& rng) {
  switch (rng() % 4) {
    case 0:
      return static_cast<int64_t>(rng() % 8);
    case 1:
      return 64 * static_cast<int64_t>(1 + rng() % 4);  // whole words
    default:
      return static_cast<int64_t>(rng() % 700);
  }
}

TEST(SelectionVectorTest, HoldsRowsWhereMaskIsTrue) {
  Array mask = columnar::bool_array({true, false, false, true, true, false});
  auto s = SelectionVector::from_mask(mask);
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(to_vector(*s), (std::vector<int32_t>{0, 3, 4}));
  EXPECT_EQ(s->size(), 3);
}

TEST(SelectionVectorTest, NullInMaskMeansNotSelected) {
  Array mask = columnar::bool_array({true, std::nullopt, true, std::nullopt, false});
  auto s = SelectionVector::from_mask(mask);
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(to_vector(*s), (std::vector<int32_t>{0, 2}));
}

TEST(SelectionVectorTest, HonoursMaskOffset) {
  columnar::BooleanBuilder b;
  for (int i = 0; i < 200; ++i) b.append(i % 3 == 0);
  Array mask = b.finish().slice(7, 150);
  auto s = SelectionVector::from_mask(mask);
  ASSERT_TRUE(s.is_ok());
  std::vector<int32_t> expected;
  for (int i = 0; i < 150; ++i) {
    if ((i + 7) % 3 == 0) expected.push_back(i);
  }
  EXPECT_EQ(to_vector(*s), expected);
}

TEST(SelectionVectorTest, EmptyMaskGivesEmptySelection) {
  auto s = SelectionVector::from_mask(Array::make_empty(columnar::boolean()));
  ASSERT_TRUE(s.is_ok());
  EXPECT_TRUE(s->empty());
}

TEST(SelectionVectorTest, ReusesItsBufferForMasksThatFit) {
  std::mt19937_64 rng(7);
  SelectionVector s;
  ASSERT_TRUE(s.assign_from_mask(random_mask(1000, 0.5, 0.1, rng)).is_ok());
  const int32_t* storage = s.data();
  const int64_t capacity = s.capacity();
  for (int round = 0; round < 20; ++round) {
    Array mask = random_mask(static_cast<int64_t>(rng() % 1001), 0.5, 0.1, rng);
    ASSERT_TRUE(s.assign_from_mask(mask).is_ok());
    EXPECT_EQ(s.data(), storage);
    EXPECT_EQ(s.capacity(), capacity);
    EXPECT_EQ(to_vector(s), selected_rows(mask));
  }
}

TEST(SelectionVectorTest, RejectsMaskThatIsNotBool) {
  auto s = SelectionVector::from_mask(columnar::int64_array({1, 0}));
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kTypeError);
  EXPECT_NE(s.status().message().find("int64"), std::string::npos);
}

TEST(SelectionVectorTest, MatchesRowLoopOnRandomMasks) {
  std::mt19937_64 rng(42);
  const double densities[] = {0.0, 0.02, 0.5, 0.98, 1.0};
  SelectionVector reused;
  for (int round = 0; round < 400; ++round) {
    const int64_t length = random_length(rng);
    const double density = densities[rng() % 5];
    const double null_rate = (rng() % 2) ? 0.0 : 0.2;
    Array mask = random_mask(length, density, null_rate, rng);
    ASSERT_TRUE(reused.assign_from_mask(mask).is_ok());
    ASSERT_EQ(to_vector(reused), selected_rows(mask))
        << "length " << length << " offset " << mask.offset() << " density " << density;
    auto count = count_selected(mask);
    ASSERT_TRUE(count.is_ok());
    EXPECT_EQ(*count, static_cast<int64_t>(selected_rows(mask).size()));
  }
}

TEST(TakeTest, GathersEveryTypeAndKeepsNulls) {
  std::mt19937_64 rng(1);
  for (const DataType& type : all_types()) {
    Array values = random_array(type, 50, 0.3, rng);
    std::vector<int32_t> indices = {49, 0, 3, 3, 17, 0, 25};
    auto taken = take(values, indices);
    ASSERT_TRUE(taken.is_ok()) << type << ": " << taken.status().to_string();
    Array expected = take_by_loop(values, indices);
    EXPECT_TRUE(taken->equals(expected))
        << type << "\n got " << taken->to_string() << "\n want " << expected.to_string();
  }
}

TEST(TakeTest, OutputHasNoValidityWhenInputHasNone) {
  std::mt19937_64 rng(2);
  for (const DataType& type : all_types()) {
    Array values = random_array(type, 40, 0.0, rng);
    auto taken = take(values, std::vector<int32_t>{5, 1, 39});
    ASSERT_TRUE(taken.is_ok());
    EXPECT_EQ(taken->validity_bits(), nullptr) << type;
    EXPECT_EQ(taken->null_count(), 0);
  }
}

TEST(TakeTest, NullsSurviveTake) {
  Array values = columnar::utf8_array({"x", std::nullopt, "zz"});
  auto taken = take(values, std::vector<int32_t>{1, 2, 1, 0});
  ASSERT_TRUE(taken.is_ok());
  EXPECT_TRUE(taken->equals(columnar::utf8_array({std::nullopt, "zz", std::nullopt, "x"})))
      << taken->to_string();
  EXPECT_EQ(taken->null_count(), 2);
}

TEST(TakeTest, EmptyIndicesGiveEmptyArrayOfSameType) {
  std::mt19937_64 rng(3);
  for (const DataType& type : all_types()) {
    auto taken = take(random_array(type, 10, 0.5, rng), std::span<const int32_t>());
    ASSERT_TRUE(taken.is_ok());
    EXPECT_EQ(taken->length(), 0);
    EXPECT_EQ(taken->type(), type);
  }
  auto from_empty = take(Array::make_empty(columnar::utf8()), std::span<const int32_t>());
  ASSERT_TRUE(from_empty.is_ok());
  EXPECT_EQ(from_empty->length(), 0);
}

TEST(TakeTest, OutOfRangeIndexIsAnErrorNamingIndexAndPosition) {
  Array values = columnar::int64_array({1, 2, 3});
  auto too_big = take(values, std::vector<int32_t>{0, 2, 3, 1});
  ASSERT_FALSE(too_big.is_ok());
  EXPECT_EQ(too_big.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(too_big.status().message().find("index 3 at position 2"), std::string::npos)
      << too_big.status().to_string();
  EXPECT_NE(too_big.status().message().find("length 3"), std::string::npos);
  auto negative = take(values, std::vector<int32_t>{-1});
  ASSERT_FALSE(negative.is_ok());
  EXPECT_EQ(negative.status().code(), StatusCode::kOutOfRange);
  auto from_empty = take(Array::make_empty(columnar::int64()), std::vector<int32_t>{0});
  EXPECT_FALSE(from_empty.is_ok());
}

TEST(TakeTest, MatchesRowLoopOnRandomData) {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 300; ++round) {
    const DataType& type = all_types()[rng() % all_types().size()];
    const int64_t length = 1 + random_length(rng);
    const double null_rate = (rng() % 3 == 0) ? 0.0 : 0.25;
    Array values = random_array(type, length, null_rate, rng);
    std::vector<int32_t> indices(static_cast<size_t>(rng() % 500));
    for (int32_t& i : indices) i = static_cast<int32_t>(rng() % static_cast<uint64_t>(length));
    auto taken = take(values, indices);
    ASSERT_TRUE(taken.is_ok()) << taken.status().to_string();
    Array expected = take_by_loop(values, indices);
    ASSERT_TRUE(taken->equals(expected)) << type << " length " << length << " offset "
                                         << values.offset() << "\n got " << taken->to_string();
  }
}

columnar::SchemaPtr all_types_schema() {
  std::vector<columnar::Field> fields;
  for (const DataType& type : all_types())
    fields.push_back(columnar::field(type.to_string(), type));
  return columnar::schema(std::move(fields));
}

RecordBatch random_batch(int64_t rows, double null_rate, std::mt19937_64& rng) {
  std::vector<Array> columns;
  for (const DataType& type : all_types())
    columns.push_back(random_array(type, rows, null_rate, rng));
  auto batch = RecordBatch::make(all_types_schema(), std::move(columns));
  EXPECT_TRUE(batch.is_ok());
  return *batch;
}

TEST(TakeTest, RecordBatchTakeGathersEveryColumn) {
  std::mt19937_64 rng(5);
  RecordBatch batch = random_batch(100, 0.2, rng);
  std::vector<int32_t> indices = {99, 5, 5, 0, 42};
  auto taken = take(batch, indices);
  ASSERT_TRUE(taken.is_ok());
  EXPECT_EQ(taken->num_rows(), 5);
  EXPECT_EQ(taken->schema(), batch.schema());
  for (int c = 0; c < batch.num_columns(); ++c) {
    EXPECT_TRUE(taken->column(c).equals(take_by_loop(batch.column(c), indices))) << c;
  }
  auto bad = take(batch, std::vector<int32_t>{100});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kOutOfRange);
}

TEST(FilterTest, AllTrueMaskReturnsTheInputWithoutCopying) {
  std::mt19937_64 rng(8);
  for (const DataType& type : all_types()) {
    Array values = random_array(type, 130, 0.2, rng);
    Array mask = random_mask(130, 1.0, 0.0, rng);
    auto out = filter(values, mask);
    ASSERT_TRUE(out.is_ok());
    EXPECT_EQ(out->data_ptr(), values.data_ptr()) << type;
  }
}

TEST(FilterTest, AllFalseMaskReturnsEmptyArrayOfSameType) {
  std::mt19937_64 rng(9);
  for (const DataType& type : all_types()) {
    Array values = random_array(type, 70, 0.2, rng);
    auto out = filter(values, random_mask(70, 0.0, 0.3, rng));
    ASSERT_TRUE(out.is_ok());
    EXPECT_EQ(out->length(), 0);
    EXPECT_EQ(out->type(), type);
  }
}

TEST(FilterTest, NullMaskEntriesDropTheirRows) {
  Array values = columnar::int64_array({10, 20, std::nullopt, 40, 50});
  Array mask = columnar::bool_array({true, std::nullopt, true, false, std::nullopt});
  auto out = filter(values, mask);
  ASSERT_TRUE(out.is_ok());
  EXPECT_TRUE(out->equals(columnar::int64_array({10, std::nullopt}))) << out->to_string();
}

TEST(FilterTest, RejectsMaskOfWrongTypeOrLength) {
  Array values = columnar::int64_array({1, 2, 3});
  auto wrong_type = filter(values, columnar::int32_array({1, 0, 1}));
  ASSERT_FALSE(wrong_type.is_ok());
  EXPECT_EQ(wrong_type.status().code(), StatusCode::kTypeError);
  EXPECT_NE(wrong_type.status().message().find("int32"), std::string::npos);
  auto wrong_length = filter(values, columnar::bool_array({true, false}));
  ASSERT_FALSE(wrong_length.is_ok());
  EXPECT_EQ(wrong_length.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong_length.status().message().find("mask length 2"), std::string::npos);
  EXPECT_NE(wrong_length.status().message().find("length 3"), std::string::npos);
}

TEST(FilterTest, EmptyInputGivesEmptyOutput) {
  auto out = filter(Array::make_empty(columnar::float64()), Array::make_empty(columnar::boolean()));
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(out->length(), 0);
}

TEST(FilterTest, MatchesRowLoopOnRandomData) {
  std::mt19937_64 rng(13);
  const double densities[] = {0.0, 0.05, 0.5, 0.95, 1.0};
  for (int round = 0; round < 400; ++round) {
    const DataType& type = all_types()[rng() % all_types().size()];
    const int64_t length = random_length(rng);
    const double null_rate = (rng() % 2) ? 0.0 : 0.25;
    const double mask_null_rate = (rng() % 2) ? 0.0 : 0.1;
    Array values = random_array(type, length, null_rate, rng);
    Array mask = random_mask(length, densities[rng() % 5], mask_null_rate, rng);
    auto out = filter(values, mask);
    ASSERT_TRUE(out.is_ok()) << out.status().to_string();
    Array expected = take_by_loop(values, selected_rows(mask));
    ASSERT_TRUE(out->equals(expected))
        << type << " length " << length << " values offset " << values.offset() << " mask offset "
        << mask.offset() << "\n got " << out->to_string() << "\n want " << expected.to_string();
    if (values.validity_bits() == nullptr) {
      EXPECT_EQ(out->validity_bits(), nullptr);
    }
  }
}

TEST(FilterTest, BatchAllTrueReturnsTheInputBatch) {
  std::mt19937_64 rng(21);
  RecordBatch batch = random_batch(90, 0.2, rng);
  auto out = filter(batch, random_mask(90, 1.0, 0.0, rng));
  ASSERT_TRUE(out.is_ok());
  for (int c = 0; c < batch.num_columns(); ++c) {
    EXPECT_EQ(out->column(c).data_ptr(), batch.column(c).data_ptr());
  }
}

TEST(FilterTest, BatchAllFalseReturnsEmptyBatchWithSameSchema) {
  std::mt19937_64 rng(22);
  RecordBatch batch = random_batch(90, 0.2, rng);
  auto out = filter(batch, random_mask(90, 0.0, 0.5, rng));
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(out->num_rows(), 0);
  EXPECT_EQ(out->schema(), batch.schema());
  EXPECT_EQ(out->num_columns(), batch.num_columns());
}

TEST(FilterTest, BatchRejectsMaskOfWrongLength) {
  std::mt19937_64 rng(23);
  RecordBatch batch = random_batch(10, 0.0, rng);
  auto out = filter(batch, random_mask(11, 0.5, 0.0, rng));
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("batch length 10"), std::string::npos);
}

TEST(FilterTest, BatchMatchesRowLoopOnRandomData) {
  std::mt19937_64 rng(24);
  for (int round = 0; round < 60; ++round) {
    const int64_t rows = random_length(rng);
    RecordBatch batch = random_batch(rows, (rng() % 2) ? 0.0 : 0.2, rng);
    Array mask = random_mask(rows, 0.5, (rng() % 2) ? 0.0 : 0.2, rng);
    auto out = filter(batch, mask);
    ASSERT_TRUE(out.is_ok());
    const std::vector<int32_t> rows_kept = selected_rows(mask);
    ASSERT_EQ(out->num_rows(), static_cast<int64_t>(rows_kept.size()));
    for (int c = 0; c < batch.num_columns(); ++c) {
      ASSERT_TRUE(out->column(c).equals(take_by_loop(batch.column(c), rows_kept)))
          << "column " << batch.schema().field(c).name << " rows " << rows;
    }
  }
}

}  // namespace
}  // namespace sabot::compute
