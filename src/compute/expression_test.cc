#include "sabot/compute/expression.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sabot/columnar/builder.h"
#include "sabot/columnar/record_batch.h"

namespace sabot::compute {
namespace {

using columnar::Array;
using columnar::DataType;
using columnar::RecordBatch;
using columnar::Scalar;
using columnar::TimeUnit;
using columnar::TypeId;
using OptBool = std::optional<bool>;

RecordBatch batch_of(std::vector<std::pair<std::string, Array>> cols) {
  std::vector<columnar::Field> fields;
  std::vector<Array> arrays;
  for (auto& [name, a] : cols) {
    fields.push_back(columnar::field(name, a.type()));
    arrays.push_back(a);
  }
  auto b = RecordBatch::make(columnar::schema(std::move(fields)), std::move(arrays));
  EXPECT_TRUE(b.is_ok()) << b.status().to_string();
  return *b;
}

Array eval(const Expr& e, const RecordBatch& batch) {
  auto bound = bind(e, batch.schema());
  EXPECT_TRUE(bound.is_ok()) << e.to_string() << ": " << bound.status().to_string();
  if (!bound.is_ok()) return Array();
  auto out = bound->evaluate(batch);
  EXPECT_TRUE(out.is_ok()) << e.to_string() << ": " << out.status().to_string();
  if (!out.is_ok()) return Array();
  EXPECT_EQ(out->length(), batch.num_rows());
  EXPECT_EQ(out->type(), bound->type());
  return *out;
}

std::vector<OptBool> to_bools(const Array& a) {
  std::vector<OptBool> out;
  for (int64_t i = 0; i < a.length(); ++i) {
    out.push_back(a.is_valid(i) ? OptBool(a.bool_value(i)) : std::nullopt);
  }
  return out;
}

Status bind_error(const Expr& e, const RecordBatch& batch) {
  auto bound = bind(e, batch.schema());
  EXPECT_FALSE(bound.is_ok()) << e.to_string() << " bound to " << bound->type();
  return bound.status();
}

constexpr auto N = std::nullopt;

RecordBatch sample() {
  return batch_of({
      {"i", columnar::int64_array({1, 5, std::nullopt, -3, 10})},
      {"j", columnar::int64_array({2, 5, 7, std::nullopt, -10})},
      {"i32", columnar::int32_array({1, 2, 3, std::nullopt, -5})},
      {"u", columnar::uint64_array({1, 2, 3, 4, std::nullopt})},
      {"f", columnar::float64_array({1.5, -2.0, std::nullopt, 0.0, 8.25})},
      {"b", columnar::bool_array({true, false, std::nullopt, true, false})},
      {"s", columnar::utf8_array({"apple", "banana", std::nullopt, "", "apricot"})},
      {"bin", columnar::binary_array({"\x01\x02", "", std::nullopt, "ab", "\xff"})},
      {"ts", columnar::timestamp_array(TimeUnit::kMilli, {1000, 2000, std::nullopt, 4000, 0})},
      {"ts_us", columnar::timestamp_array(TimeUnit::kMicro, {1, 2, 3, 4, 5})},
  });
}

// ---------------------------------------------------------------------------------------------
// Building and printing

TEST(ExprBuild, ToStringIsReadable) {
  EXPECT_EQ((col("price") > lit(1'000)).to_string(), "(price > 1000)");
  EXPECT_EQ((col("a") + 2 * col("b")).to_string(), "(a + (2 * b))");
  EXPECT_EQ((col("a") >= 1 && !is_null(col("b"))).to_string(), "((a >= 1) and (not is_null(b)))");
  EXPECT_EQ(starts_with(col("name"), "ab").to_string(), "starts_with(name, \"ab\")");
  EXPECT_EQ(cast(col("x"), columnar::float64()).to_string(), "cast(x as float64)");
  EXPECT_EQ(if_else(col("c"), lit("y"), lit("n")).to_string(), "if_else(c, \"y\", \"n\")");
  EXPECT_EQ(or_(col("a"), contains(col("s"), "q")).to_string(), "(a or contains(s, \"q\"))");
}

TEST(ExprBuild, IntegerLiteralsDefaultToInt64) {
  EXPECT_EQ(lit(5).node().literal.type, columnar::int64());
  EXPECT_EQ(lit(int64_t{5}).node().literal.type, columnar::int64());
  EXPECT_EQ(lit(uint64_t{5}).node().literal.type, columnar::uint64());
  EXPECT_EQ(lit(5u).node().literal.type, columnar::uint64());
  EXPECT_EQ(lit(true).node().literal.type, columnar::boolean());
  EXPECT_EQ(lit(1.5).node().literal.type, columnar::float64());
  EXPECT_EQ(lit("x").node().literal.type, columnar::utf8());
  EXPECT_EQ(lit(std::string("x")).node().literal.type, columnar::utf8());
  EXPECT_EQ(lit(Scalar::of_int32(3)).node().literal.type, columnar::int32());
  EXPECT_EQ((col("a") > 1).node().args[1].node().literal.type, columnar::int64());
}

TEST(ExprBuild, NameUsesAliasThenColumnThenText) {
  EXPECT_EQ(col("a").name(), "a");
  EXPECT_EQ((col("a") + 1).name(), "(a + 1)");
  EXPECT_EQ((col("a") + 1).as("b").name(), "b");
  EXPECT_EQ((col("a") + 1).as("b").to_string(), "(a + 1)");
}

TEST(ExprBuild, EqualsIsStructural) {
  EXPECT_TRUE((col("a") > 1).equals(col("a") > 1));
  EXPECT_FALSE((col("a") > 1).equals(col("a") >= 1));
  EXPECT_FALSE((col("a") > 1).equals(col("a") > 2));
  EXPECT_FALSE((col("a") > 1).equals(col("b") > 1));
  EXPECT_FALSE(col("a").equals(col("a").as("b")));
}

TEST(ExprBuild, ReferencedColumnsInFirstUseOrder) {
  auto e = if_else(col("c") > col("a"), col("b") + col("a"), col("d"));
  EXPECT_EQ(e.referenced_columns(), (std::vector<std::string>{"c", "a", "b", "d"}));
  EXPECT_TRUE(lit(1).referenced_columns().empty());
}

// ---------------------------------------------------------------------------------------------
// Evaluation semantics

TEST(ExprEval, ColumnReferenceReturnsTheColumnItself) {
  RecordBatch b = sample();
  Array out = eval(col("s"), b);
  EXPECT_EQ(out.data_ptr(), b.column(6).data_ptr());
}

TEST(ExprEval, CompareInt64WithLiteralAllOperators) {
  RecordBatch b = sample();  // i = 1, 5, null, -3, 10
  EXPECT_EQ(to_bools(eval(col("i") > 1, b)), (std::vector<OptBool>{false, true, N, false, true}));
  EXPECT_EQ(to_bools(eval(col("i") >= 1, b)), (std::vector<OptBool>{true, true, N, false, true}));
  EXPECT_EQ(to_bools(eval(col("i") < 1, b)), (std::vector<OptBool>{false, false, N, true, false}));
  EXPECT_EQ(to_bools(eval(col("i") <= 1, b)), (std::vector<OptBool>{true, false, N, true, false}));
  EXPECT_EQ(to_bools(eval(col("i") == 5, b)), (std::vector<OptBool>{false, true, N, false, false}));
  EXPECT_EQ(to_bools(eval(col("i") != 5, b)), (std::vector<OptBool>{true, false, N, true, true}));
  // Literal on the left.
  EXPECT_EQ(to_bools(eval(1 < col("i"), b)), (std::vector<OptBool>{false, true, N, false, true}));
}

TEST(ExprEval, CompareColumnsPropagatesNullsFromEitherSide) {
  RecordBatch b = sample();  // i = 1, 5, null, -3, 10; j = 2, 5, 7, null, -10
  EXPECT_EQ(to_bools(eval(col("i") < col("j"), b)),
            (std::vector<OptBool>{true, false, N, N, false}));
  EXPECT_EQ(to_bools(eval(col("i") == col("j"), b)),
            (std::vector<OptBool>{false, true, N, N, false}));
}

TEST(ExprEval, CompareEveryType) {
  RecordBatch b = sample();
  EXPECT_EQ(to_bools(eval(col("i32") > 1, b)), (std::vector<OptBool>{false, true, true, N, false}));
  EXPECT_EQ(to_bools(eval(col("i32") < int64_t{1} << 40, b)),
            (std::vector<OptBool>{true, true, true, N, true}));
  EXPECT_EQ(to_bools(eval(col("u") >= 3, b)), (std::vector<OptBool>{false, false, true, true, N}));
  EXPECT_EQ(to_bools(eval(col("u") == uint64_t{2}, b)),
            (std::vector<OptBool>{false, true, false, false, N}));
  EXPECT_EQ(to_bools(eval(col("f") > 0, b)), (std::vector<OptBool>{true, false, N, false, true}));
  EXPECT_EQ(to_bools(eval(col("f") <= 1.5, b)), (std::vector<OptBool>{true, true, N, true, false}));
  EXPECT_EQ(to_bools(eval(col("b") == true, b)),
            (std::vector<OptBool>{true, false, N, true, false}));
  EXPECT_EQ(to_bools(eval(col("b") > false, b)),
            (std::vector<OptBool>{true, false, N, true, false}));
  EXPECT_EQ(to_bools(eval(col("s") == "apple", b)),
            (std::vector<OptBool>{true, false, N, false, false}));
  EXPECT_EQ(to_bools(eval(col("s") < "b", b)), (std::vector<OptBool>{true, false, N, true, true}));
  EXPECT_EQ(to_bools(eval(col("bin") == lit(Scalar::of_binary("ab")), b)),
            (std::vector<OptBool>{false, false, N, true, false}));
  // Bytes compare unsigned: 0xff sorts after 'a'.
  EXPECT_EQ(to_bools(eval(col("bin") > lit(Scalar::of_binary("a")), b)),
            (std::vector<OptBool>{false, false, N, true, true}));
  EXPECT_EQ(to_bools(eval(col("ts") >= 2000, b)),
            (std::vector<OptBool>{false, true, N, true, false}));
  EXPECT_EQ(to_bools(eval(col("ts") < lit(Scalar::of_timestamp(1500, TimeUnit::kMilli)), b)),
            (std::vector<OptBool>{true, false, N, false, true}));
}

TEST(ExprEval, MixedNumericTypesPromote) {
  RecordBatch b = sample();
  // int32 vs int64 columns, int64 vs float64 columns.
  EXPECT_EQ(to_bools(eval(col("i32") < col("i"), b)),
            (std::vector<OptBool>{false, true, N, N, true}));
  EXPECT_EQ(to_bools(eval(col("i") > col("f"), b)),
            (std::vector<OptBool>{false, true, N, false, true}));
  EXPECT_EQ(eval(col("i32") + col("i"), b).type(), columnar::int64());
  EXPECT_EQ(eval(col("i32") + col("i32"), b).type(), columnar::int32());
  EXPECT_EQ(eval(col("i") * 0.5, b).type(), columnar::float64());
  EXPECT_EQ(eval(col("u") + 1, b).type(), columnar::uint64());
  Array x = eval(col("i") * 0.5, b);
  EXPECT_EQ(x.value<double>(1), 2.5);
}

TEST(ExprEval, ArithmeticInt64) {
  RecordBatch b = sample();  // i = 1, 5, null, -3, 10; j = 2, 5, 7, null, -10
  EXPECT_TRUE(eval(col("i") + col("j"), b).equals(columnar::int64_array({3, 10, N, N, 0})));
  EXPECT_TRUE(eval(col("i") - col("j"), b).equals(columnar::int64_array({-1, 0, N, N, 20})));
  EXPECT_TRUE(eval(col("i") * col("j"), b).equals(columnar::int64_array({2, 25, N, N, -100})));
  EXPECT_TRUE(eval(col("j") / col("i"), b).equals(columnar::int64_array({2, 1, N, N, -1})));
  EXPECT_TRUE(eval(col("j") % col("i"), b).equals(columnar::int64_array({0, 0, N, N, 0})));
  EXPECT_TRUE(eval(col("i") / 2, b).equals(columnar::int64_array({0, 2, N, -1, 5})));
  EXPECT_TRUE(eval(col("i") % 3, b).equals(columnar::int64_array({1, 2, N, 0, 1})));
  EXPECT_TRUE(eval(10 - col("i"), b).equals(columnar::int64_array({9, 5, N, 13, 0})));
  EXPECT_TRUE(eval(100 / col("i"), b).equals(columnar::int64_array({100, 20, N, -33, 10})));
}

TEST(ExprEval, IntegerDivisionByZeroIsNull) {
  RecordBatch b = batch_of({{"a", columnar::int64_array({7, 8, N, 9})},
                            {"z", columnar::int64_array({0, 2, 0, N})},
                            {"u", columnar::uint64_array({4, 0, 1, 2})},
                            {"x", columnar::int32_array({5, 6, 7, 8})}});
  EXPECT_TRUE(eval(col("a") / col("z"), b).equals(columnar::int64_array({N, 4, N, N})));
  EXPECT_TRUE(eval(col("a") % col("z"), b).equals(columnar::int64_array({N, 0, N, N})));
  EXPECT_TRUE(eval(col("a") / 0, b).equals(columnar::int64_array({N, N, N, N})));
  EXPECT_TRUE(eval(col("u") / col("u"), b).equals(columnar::uint64_array({1, N, 1, 1})));
  EXPECT_TRUE(
      eval(col("x") % lit(Scalar::of_int32(0)), b).equals(columnar::int32_array({N, N, N, N})));
  auto bound = bind(col("a") / col("z"), b.schema());
  ASSERT_TRUE(bound.is_ok());
  EXPECT_TRUE(bound->output_field().nullable);
}

TEST(ExprEval, IntegerOverflowWraps) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  RecordBatch b = batch_of({{"a", columnar::int64_array({kMax, kMin, kMin})},
                            {"m", columnar::int64_array({1, -1, -1})},
                            {"x", columnar::int32_array({2147483647, -2147483647 - 1, 3})}});
  EXPECT_TRUE(eval(col("a") + 1, b).equals(columnar::int64_array({kMin, kMin + 1, kMin + 1})));
  EXPECT_TRUE(eval(col("a") / col("m"), b).equals(columnar::int64_array({kMax, kMin, kMin})));
  EXPECT_TRUE(eval(col("a") % col("m"), b).equals(columnar::int64_array({0, 0, 0})));
  Array x = eval(col("x") + lit(Scalar::of_int32(1)), b);
  EXPECT_TRUE(x.equals(columnar::int32_array({-2147483647 - 1, -2147483647, 4})));
  Array y = eval(col("x") * lit(Scalar::of_int32(2)), b);
  EXPECT_TRUE(y.equals(columnar::int32_array({-2, 0, 6})));
}

TEST(ExprEval, TimestampArithmetic) {
  RecordBatch b = sample();  // ts = 1000, 2000, null, 4000, 0 (ms); i = 1, 5, null, -3, 10
  Array shifted = eval(col("ts") + 500, b);
  EXPECT_TRUE(
      shifted.equals(columnar::timestamp_array(TimeUnit::kMilli, {1500, 2500, N, 4500, 500})));
  EXPECT_TRUE(eval(col("i") + col("ts"), b)
                  .equals(columnar::timestamp_array(TimeUnit::kMilli, {1001, 2005, N, 3997, 10})));
  EXPECT_TRUE(eval(col("ts") - col("i32"), b)
                  .equals(columnar::timestamp_array(TimeUnit::kMilli, {999, 1998, N, N, 5})));
  Array delta = eval(col("ts") - lit(Scalar::of_timestamp(1000, TimeUnit::kMilli)), b);
  EXPECT_TRUE(delta.equals(columnar::int64_array({0, 1000, N, 3000, -1000})));
  EXPECT_EQ(to_bools(eval(col("ts") - 1000 > 500, b)),
            (std::vector<OptBool>{false, true, N, true, false}));
}

TEST(ExprEval, FloatDivisionFollowsIeee) {
  RecordBatch b = batch_of({{"f", columnar::float64_array({1.0, -1.0, 0.0})}});
  Array out = eval(col("f") / 0.0, b);
  EXPECT_EQ(out.null_count(), 0);
  EXPECT_EQ(out.value<double>(0), std::numeric_limits<double>::infinity());
  EXPECT_EQ(out.value<double>(1), -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(out.value<double>(2)));
}

TEST(ExprEval, KleeneAndOrNotTruthTables) {
  // Every pair of {true, false, null}.
  RecordBatch b = batch_of({
      {"p", columnar::bool_array({true, true, true, false, false, false, N, N, N})},
      {"q", columnar::bool_array({true, false, N, true, false, N, true, false, N})},
  });
  EXPECT_EQ(to_bools(eval(col("p") && col("q"), b)),
            (std::vector<OptBool>{true, false, N, false, false, false, N, false, N}));
  EXPECT_EQ(to_bools(eval(col("p") || col("q"), b)),
            (std::vector<OptBool>{true, true, true, true, false, N, true, N, N}));
  EXPECT_EQ(to_bools(eval(!col("p"), b)),
            (std::vector<OptBool>{false, false, false, true, true, true, N, N, N}));
  EXPECT_EQ(to_bools(eval(and_(col("p"), lit(false)), b)), std::vector<OptBool>(9, false));
  EXPECT_EQ(to_bools(eval(or_(lit(true), col("q")), b)), std::vector<OptBool>(9, true));
  EXPECT_EQ(to_bools(eval(and_(col("p"), null_lit(columnar::boolean())), b)),
            (std::vector<OptBool>{N, N, N, false, false, false, N, N, N}));
  EXPECT_EQ(to_bools(eval(not_(null_lit(columnar::boolean())), b)), std::vector<OptBool>(9, N));
}

TEST(ExprEval, IsNullAndIsValidNeverNull) {
  RecordBatch b = sample();
  EXPECT_EQ(to_bools(eval(is_null(col("i")), b)),
            (std::vector<OptBool>{false, false, true, false, false}));
  EXPECT_EQ(to_bools(eval(is_valid(col("s")), b)),
            (std::vector<OptBool>{true, true, false, true, true}));
  EXPECT_EQ(to_bools(eval(is_null(col("ts_us")), b)), std::vector<OptBool>(5, false));
  EXPECT_EQ(to_bools(eval(is_null(col("i") + col("j")), b)),
            (std::vector<OptBool>{false, false, true, true, false}));
  auto bound = bind(is_null(col("i")), b.schema());
  ASSERT_TRUE(bound.is_ok());
  EXPECT_FALSE(bound->output_field().nullable);
}

TEST(ExprEval, StringPredicates) {
  RecordBatch b = sample();  // s = apple, banana, null, "", apricot
  EXPECT_EQ(to_bools(eval(starts_with(col("s"), "ap"), b)),
            (std::vector<OptBool>{true, false, N, false, true}));
  EXPECT_EQ(to_bools(eval(starts_with(col("s"), ""), b)),
            (std::vector<OptBool>{true, true, N, true, true}));
  EXPECT_EQ(to_bools(eval(contains(col("s"), "an"), b)),
            (std::vector<OptBool>{false, true, N, false, false}));
  EXPECT_EQ(to_bools(eval(contains(col("s"), ""), b)),
            (std::vector<OptBool>{true, true, N, true, true}));
  EXPECT_EQ(to_bools(eval(str_equals(col("s"), ""), b)),
            (std::vector<OptBool>{false, false, N, true, false}));
  EXPECT_EQ(to_bools(eval(str_equals(col("s"), "banana"), b)),
            (std::vector<OptBool>{false, true, N, false, false}));
  EXPECT_EQ(to_bools(eval(starts_with(col("bin"), "a"), b)),
            (std::vector<OptBool>{false, false, N, true, false}));
  EXPECT_EQ(to_bools(eval(starts_with(lit("xyz"), "xy"), b)), std::vector<OptBool>(5, true));
}

TEST(ExprEval, ContainsIgnoresMatchesAcrossRowBoundaries) {
  RecordBatch b =
      batch_of({{"s", columnar::utf8_array({"xab", "cd", "", "abc", N, "bc", "b", "c"})}});
  EXPECT_EQ(to_bools(eval(contains(col("s"), "bc"), b)),
            (std::vector<OptBool>{false, false, false, true, N, true, false, false}));
  EXPECT_EQ(to_bools(eval(contains(col("s"), "abcd"), b)),
            (std::vector<OptBool>{false, false, false, false, N, false, false, false}));
  RecordBatch sliced = b.slice(3, 5);  // abc, null, bc, b, c
  EXPECT_EQ(to_bools(eval(contains(col("s"), "c"), sliced)),
            (std::vector<OptBool>{true, N, true, false, true}));
}

TEST(ExprEval, StringPredicatesWithPatternsLongerThanAWord) {
  RecordBatch b = batch_of({{"s", columnar::utf8_array({"hello wonderful world", "hello wonder",
                                                        "hello", N, "say hello wonderful"})}});
  EXPECT_EQ(to_bools(eval(starts_with(col("s"), "hello wonderful"), b)),
            (std::vector<OptBool>{true, false, false, N, false}));
  EXPECT_EQ(to_bools(eval(contains(col("s"), "hello wonderful"), b)),
            (std::vector<OptBool>{true, false, false, N, true}));
  EXPECT_EQ(to_bools(eval(str_equals(col("s"), "hello wonder"), b)),
            (std::vector<OptBool>{false, true, false, N, false}));
  EXPECT_EQ(to_bools(eval(col("s") == "hello", b)),
            (std::vector<OptBool>{false, false, true, N, false}));
}

TEST(ExprEval, CastBetweenTypes) {
  RecordBatch b = sample();
  EXPECT_TRUE(eval(cast(col("i"), columnar::float64()), b)
                  .equals(columnar::float64_array({1.0, 5.0, N, -3.0, 10.0})));
  EXPECT_TRUE(
      eval(cast(col("f"), columnar::int64()), b).equals(columnar::int64_array({1, -2, N, 0, 8})));
  EXPECT_TRUE(
      eval(cast(col("i"), columnar::int32()), b).equals(columnar::int32_array({1, 5, N, -3, 10})));
  EXPECT_TRUE(
      eval(cast(col("b"), columnar::int64()), b).equals(columnar::int64_array({1, 0, N, 1, 0})));
  EXPECT_EQ(to_bools(eval(cast(col("i"), columnar::boolean()), b)),
            (std::vector<OptBool>{true, true, N, true, true}));
  EXPECT_TRUE(eval(cast(col("ts"), columnar::int64()), b)
                  .equals(columnar::int64_array({1000, 2000, N, 4000, 0})));
  EXPECT_TRUE(eval(cast(col("ts"), columnar::timestamp(TimeUnit::kSecond)), b)
                  .equals(columnar::timestamp_array(TimeUnit::kSecond, {1, 2, N, 4, 0})));
  EXPECT_TRUE(
      eval(cast(col("ts"), columnar::timestamp(TimeUnit::kMicro)), b)
          .equals(columnar::timestamp_array(TimeUnit::kMicro, {1000000, 2000000, N, 4000000, 0})));
  EXPECT_TRUE(eval(cast(col("s"), columnar::binary()), b)
                  .equals(columnar::binary_array({"apple", "banana", N, "", "apricot"})));
  EXPECT_TRUE(
      eval(cast(col("u"), columnar::int64()), b).equals(columnar::int64_array({1, 2, 3, 4, N})));
}

TEST(ExprEval, CastBetweenTimestampAndInt64SharesValues) {
  RecordBatch b = sample().slice(1, 3);
  Array out = eval(cast(col("ts"), columnar::int64()), b);
  EXPECT_TRUE(out.equals(columnar::int64_array({2000, N, 4000})));
  EXPECT_EQ(out.data().values, b.column(8).data().values);
  Array back = eval(cast(col("i"), columnar::timestamp(TimeUnit::kNano)), b);
  EXPECT_TRUE(back.equals(columnar::timestamp_array(TimeUnit::kNano, {5, N, -3})));
}

TEST(ExprEval, CastFloorsNegativeTimestampsToCoarserUnit) {
  RecordBatch b =
      batch_of({{"t", columnar::timestamp_array(TimeUnit::kMilli, {-1, -1000, -1001, 999})}});
  EXPECT_TRUE(eval(cast(col("t"), columnar::timestamp(TimeUnit::kSecond)), b)
                  .equals(columnar::timestamp_array(TimeUnit::kSecond, {-1, -1, -2, 0})));
}

TEST(ExprEval, CastOutOfRangeIsAnErrorNamingTheRow) {
  RecordBatch b = batch_of({{"i", columnar::int64_array({1, N, int64_t{1} << 40})},
                            {"f", columnar::float64_array({1.0, std::nan(""), 2.0})},
                            {"n", columnar::int64_array({1, -1, 2})},
                            {"bin", columnar::binary_array({"ok", "\xff\xfe", "x"})}});
  auto bound = bind(cast(col("i"), columnar::int32()), b.schema());
  ASSERT_TRUE(bound.is_ok());
  auto out = bound->evaluate(b);
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("1099511627776 at row 2"), std::string::npos)
      << out.status().to_string();
  EXPECT_FALSE(bind(cast(col("f"), columnar::int64()), b.schema())->evaluate(b).is_ok());
  EXPECT_FALSE(bind(cast(col("n"), columnar::uint64()), b.schema())->evaluate(b).is_ok());
  auto utf = bind(cast(col("bin"), columnar::utf8()), b.schema())->evaluate(b);
  ASSERT_FALSE(utf.is_ok());
  EXPECT_NE(utf.status().message().find("row 1"), std::string::npos);
  // A null row may hold any value: only valid rows are checked.
  RecordBatch nulls = b.slice(1, 1);
  EXPECT_TRUE(bind(cast(col("i"), columnar::int32()), b.schema())->evaluate(nulls).is_ok());
}

TEST(ExprEval, IfElseChoosesPerRowAndNullConditionGivesNull) {
  RecordBatch b = sample();  // b = true, false, null, true, false
  EXPECT_TRUE(eval(if_else(col("b"), col("i"), col("j")), b)
                  .equals(columnar::int64_array({1, 5, N, -3, -10})));
  EXPECT_TRUE(eval(if_else(col("b"), col("s"), lit("no")), b)
                  .equals(columnar::utf8_array({"apple", "no", N, "", "no"})));
  // i32 is promoted to float64 where chosen.
  EXPECT_TRUE(eval(if_else(col("i") > 2, col("i32"), col("f")), b)
                  .equals(columnar::float64_array({1.5, 2.0, N, 0.0, -5.0})));
  EXPECT_EQ(to_bools(eval(if_else(col("b"), lit(true), col("b")), b)),
            (std::vector<OptBool>{true, false, N, true, false}));
  EXPECT_TRUE(eval(if_else(col("b"), col("ts"), col("ts")), b)
                  .equals(columnar::timestamp_array(TimeUnit::kMilli, {1000, 2000, N, 4000, 0})));
}

TEST(ExprEval, ConstantExpressionsRepeatToBatchLength) {
  RecordBatch b = sample();
  EXPECT_TRUE(eval(lit(1) + lit(2), b).equals(columnar::int64_array({3, 3, 3, 3, 3})));
  EXPECT_EQ(to_bools(eval(lit(1) < 2, b)), std::vector<OptBool>(5, true));
  EXPECT_TRUE(eval(lit("x"), b).equals(columnar::utf8_array({"x", "x", "x", "x", "x"})));
  EXPECT_TRUE(
      eval(lit(Scalar::of_binary("")), b).equals(columnar::binary_array({"", "", "", "", ""})));
  EXPECT_TRUE(eval(lit(2.5) * 2, b).equals(columnar::float64_array({5.0, 5.0, 5.0, 5.0, 5.0})));
  EXPECT_TRUE(
      eval(lit(Scalar::of_int32(-7)), b).equals(columnar::int32_array({-7, -7, -7, -7, -7})));
  EXPECT_TRUE(eval(null_lit(columnar::utf8()), b).equals(columnar::utf8_array({N, N, N, N, N})));
  EXPECT_EQ(to_bools(eval(lit(false) || lit(true), b)), std::vector<OptBool>(5, true));
  EXPECT_TRUE(eval(lit(5) / 0, b).equals(columnar::int64_array({N, N, N, N, N})));
  EXPECT_TRUE(eval(col("i") + null_lit(columnar::int64()), b)
                  .equals(columnar::int64_array({N, N, N, N, N})));
}

TEST(ExprEval, EmptyBatchGivesEmptyResults) {
  RecordBatch full = sample();
  RecordBatch b = full.slice(0, 0);
  std::vector<Expr> exprs = {col("i") > 1,
                             col("i") + col("j"),
                             col("i") / col("j"),
                             col("b") && col("b"),
                             !col("b"),
                             is_null(col("s")),
                             starts_with(col("s"), "a"),
                             cast(col("i"), columnar::int32()),
                             if_else(col("b"), col("s"), col("s")),
                             lit(3),
                             col("s") < "x"};
  for (const auto& e : exprs) {
    Array out = eval(e, b);
    EXPECT_EQ(out.length(), 0) << e.to_string();
  }
}

TEST(ExprEval, SlicedBatchAtUnalignedOffsetMatchesRows) {
  RecordBatch full = sample();
  RecordBatch b = full.slice(1, 4);  // i = 5, null, -3, 10
  EXPECT_EQ(to_bools(eval(col("i") > 1, b)), (std::vector<OptBool>{true, N, false, true}));
  EXPECT_TRUE(eval(col("i") + col("j"), b).equals(columnar::int64_array({10, N, N, 0})));
  EXPECT_EQ(to_bools(eval(!col("b"), b)), (std::vector<OptBool>{true, N, false, true}));
  EXPECT_EQ(to_bools(eval(starts_with(col("s"), "ap"), b)),
            (std::vector<OptBool>{false, N, false, true}));
}

TEST(ExprEval, BatchOfAnotherSchemaIsRejected) {
  RecordBatch b = sample();
  auto bound = bind(col("i") > 1, b.schema());
  ASSERT_TRUE(bound.is_ok());
  RecordBatch other = batch_of({{"x", columnar::int64_array({1})}});
  auto out = bound->evaluate(other);
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("expected column 'i'"), std::string::npos);
}

TEST(ExprEval, OutputFieldNamesAndNullability) {
  auto schema = columnar::schema({columnar::field("a", columnar::int64(), false),
                                  columnar::field("b", columnar::int64(), true)});
  auto f1 = bind((col("a") + 1).as("a1"), *schema)->output_field();
  EXPECT_EQ(f1, columnar::field("a1", columnar::int64(), false));
  auto f2 = bind(col("a") > col("b"), *schema)->output_field();
  EXPECT_EQ(f2, columnar::field("(a > b)", columnar::boolean(), true));
}

TEST(ExprEval, OneBoundExpressionEvaluatesConcurrently) {
  RecordBatch b = sample();
  auto bound =
      bind(if_else(col("i") > 1 && starts_with(col("s"), "a"), col("i") * 2, lit(0)), b.schema());
  ASSERT_TRUE(bound.is_ok());
  Array expected = *bound->evaluate(b);
  std::vector<int> mismatches(2, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 200; ++k) {
        auto out = bound->evaluate(b);
        if (!out.is_ok() || !out->equals(expected)) ++mismatches[static_cast<size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, (std::vector<int>{0, 0}));
}

// ---------------------------------------------------------------------------------------------
// Bind errors

TEST(ExprBind, UnknownColumnListsAvailableColumns) {
  auto schema = columnar::schema(
      {columnar::field("price", columnar::int64()), columnar::field("name", columnar::utf8())});
  auto r = bind(col("pricee") > 1, *schema);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(),
            "unknown column 'pricee' in (pricee > 1); available columns: price, name");
}

TEST(ExprBind, TypeErrorsNameOperatorOperandsAndTypes) {
  RecordBatch b = sample();
  auto check = [&](const Expr& e, const std::string& message) {
    Status s = bind_error(e, b);
    EXPECT_EQ(s.code(), StatusCode::kTypeError) << s.to_string();
    EXPECT_EQ(s.message(), message);
  };
  check(col("s") > 1000, "cannot compare utf8 column 's' with int64 literal 1000 in (s > 1000)");
  check(col("i") == col("u"), "cannot compare int64 column 'i' with uint64 column 'u' in (i == u)");
  check(col("i") < -1 + col("u"),
        "cannot apply '+' to int64 literal -1 and uint64 column 'u' in (-1 + u)");
  check(col("ts") == col("ts_us"),
        "cannot compare timestamp[ms] column 'ts' with timestamp[us] column 'ts_us' in (ts == "
        "ts_us)");
  check(col("ts") == col("i"),
        "cannot compare timestamp[ms] column 'ts' with int64 column 'i' in (ts == i)");
  check(col("s") == col("bin"),
        "cannot compare utf8 column 's' with binary column 'bin' in (s == bin)");
  check(col("b") < 1, "cannot compare bool column 'b' with int64 literal 1 in (b < 1)");
  check(col("s") + col("i"), "cannot apply '+' to utf8 column 's' and int64 column 'i' in (s + i)");
  check(col("b") * 2, "cannot apply '*' to bool column 'b' and int64 literal 2 in (b * 2)");
  check(col("f") % 2,
        "'%' needs integer operands, got float64 column 'f' and int64 literal 2 in (f % 2)");
  check(col("i") && col("b"),
        "'and' needs bool operands, got int64 column 'i' and bool column 'b' in (i and b)");
  check(or_(col("b"), col("i") + 1),
        "'or' needs bool operands, got bool column 'b' and int64 expression (i + 1) in (b or (i + "
        "1))");
  check(!col("i"), "'not' needs a bool operand, got int64 column 'i' in (not i)");
  check(
      starts_with(col("i"), "x"),
      "starts_with needs a utf8 or binary operand, got int64 column 'i' in starts_with(i, \"x\")");
  check(contains(col("f"), "x"),
        "contains needs a utf8 or binary operand, got float64 column 'f' in contains(f, \"x\")");
  check(if_else(col("i"), lit(1), lit(2)),
        "if_else needs a bool condition, got int64 column 'i' in if_else(i, 1, 2)");
  check(if_else(col("b"), col("s"), lit(2)),
        "if_else branches have incompatible types: utf8 column 's' and int64 literal 2 in "
        "if_else(b, s, 2)");
  check(col("ts") * 2,
        "cannot apply '*' to timestamp[ms] column 'ts' and int64 literal 2 in (ts * 2) (timestamps "
        "allow timestamp +- integer and timestamp - timestamp of the same unit)");
  check(
      col("ts") - col("ts_us"),
      "cannot apply '-' to timestamp[ms] column 'ts' and timestamp[us] column 'ts_us' in (ts - "
      "ts_us) (timestamps allow timestamp +- integer and timestamp - timestamp of the same unit)");
  check(col("ts") + col("f"),
        "cannot apply '+' to timestamp[ms] column 'ts' and float64 column 'f' in (ts + f) "
        "(timestamps allow timestamp +- integer and timestamp - timestamp of the same unit)");
  check(cast(col("s"), columnar::int64()),
        "cannot cast utf8 column 's' to int64 in cast(s as int64)");
  check(cast(col("ts"), columnar::float64()),
        "cannot cast timestamp[ms] column 'ts' to float64 in cast(ts as float64)");
}

TEST(ExprBind, ErrorsInsideSubexpressionsSurface) {
  RecordBatch b = sample();
  Status s = bind_error((col("i") > 1) && (col("nope") < 2), b);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("unknown column 'nope' in ((i > 1) and (nope < 2))"),
            std::string::npos);
}

TEST(ExprBind, ConstantFoldingReportsErrorsAtBind) {
  RecordBatch b = sample();
  Status s = bind_error(cast(lit(int64_t{1} << 40), columnar::int32()), b);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.to_string().find("out of range"), std::string::npos);
}

TEST(ExprBind, LiteralsAdaptToColumnTypes) {
  RecordBatch b = sample();
  // A non-negative integer literal works with uint64; an int literal compares within int32.
  EXPECT_EQ(bind(col("u") + 1, b.schema())->type(), columnar::uint64());
  EXPECT_FALSE(bind(col("u") + -1, b.schema()).is_ok());
  EXPECT_EQ(bind(col("i32") + 1, b.schema())->type(), columnar::int64());
  EXPECT_EQ(bind(col("ts") > 5, b.schema())->type(), columnar::boolean());
}

// ---------------------------------------------------------------------------------------------
// Randomized comparison against a row-at-a-time model

class Random {
 public:
  explicit Random(uint64_t seed) : rng_(seed) {}
  int64_t uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  double real() { return std::uniform_real_distribution<double>(0, 1)(rng_); }

  // Values from a small domain so that equal values (and zero divisors) occur often.
  Scalar value(DataType t) {
    switch (t.id()) {
      case TypeId::kBool:
        return Scalar::of_bool(uniform(0, 1) == 1);
      case TypeId::kInt32:
        return uniform(0, 9) == 0
                   ? Scalar::of_int32(static_cast<int32_t>(uniform(INT32_MIN, INT32_MAX)))
                   : Scalar::of_int32(static_cast<int32_t>(uniform(-20, 20)));
      case TypeId::kInt64:
        return uniform(0, 9) == 0 ? Scalar::of_int64(uniform(INT64_MIN, INT64_MAX))
                                  : Scalar::of_int64(uniform(-20, 20));
      case TypeId::kUInt64:
        return uniform(0, 9) == 0 ? Scalar::of_uint64(~uint64_t{0} - uniform(0, 5))
                                  : Scalar::of_uint64(static_cast<uint64_t>(uniform(0, 40)));
      case TypeId::kFloat64:
        return Scalar::of_float64(static_cast<double>(uniform(-40, 40)) / 4);
      case TypeId::kTimestamp:
        return Scalar{t, true, uniform(-5, 5)};
      case TypeId::kUtf8:
      case TypeId::kBinary: {
        std::string s;
        int64_t len = uniform(0, 6);
        for (int64_t k = 0; k < len; ++k) {
          s += t.id() == TypeId::kUtf8 ? static_cast<char>('a' + uniform(0, 2))
                                       : static_cast<char>(uniform(0, 255));
        }
        return Scalar{t, true, s};
      }
    }
    return Scalar::null(t);
  }

  // A random array, sliced at a random offset so kernels see non-zero offsets.
  Array array(DataType t, int64_t length, double null_density) {
    int64_t offset = uniform(0, 70);
    auto builder = columnar::make_builder(t);
    for (int64_t i = 0; i < offset + length; ++i) {
      if (real() < null_density) {
        builder->append_null();
      } else {
        builder->append_scalar(value(t));
      }
    }
    return builder->finish().slice(offset, length);
  }

 private:
  std::mt19937_64 rng_;
};

const std::vector<DataType> kAllTypes = {
    columnar::boolean(), columnar::int32(),
    columnar::int64(),   columnar::uint64(),
    columnar::float64(), columnar::utf8(),
    columnar::binary(),  columnar::timestamp(TimeUnit::kMicro)};
const std::vector<BinaryOp> kComparisons = {BinaryOp::kEq, BinaryOp::kNe, BinaryOp::kLt,
                                            BinaryOp::kLe, BinaryOp::kGt, BinaryOp::kGe};

template <typename T>
bool compare_values(BinaryOp op, const T& a, const T& b) {
  switch (op) {
    case BinaryOp::kEq:
      return a == b;
    case BinaryOp::kNe:
      return a != b;
    case BinaryOp::kLt:
      return a < b;
    case BinaryOp::kLe:
      return a <= b;
    case BinaryOp::kGt:
      return a > b;
    case BinaryOp::kGe:
      return a >= b;
    default:
      ADD_FAILURE();
      return false;
  }
}

// The model: one row at a time, through Scalar values.
OptBool model_compare(BinaryOp op, const Scalar& a, const Scalar& b) {
  if (!a.is_valid || !b.is_valid) return std::nullopt;
  return std::visit(
      [&](const auto& x) -> OptBool {
        using T = std::decay_t<decltype(x)>;
        return compare_values<T>(op, x, std::get<T>(b.value));
      },
      a.value);
}

TEST(ExprRandom, ComparisonsMatchRowModelForEveryTypeAndShape) {
  Random rnd(42);
  for (int round = 0; round < 6; ++round) {
    for (const DataType& t : kAllTypes) {
      const int64_t n = rnd.uniform(0, 300);
      const double density = rnd.real() * 0.5;
      Array a = rnd.array(t, n, density);
      Array c = rnd.array(t, n, density);
      Scalar s = rnd.real() < 0.1 ? Scalar::null(t) : rnd.value(t);
      RecordBatch b = batch_of({{"a", a}, {"c", c}});
      for (BinaryOp op : kComparisons) {
        Array cols = eval(binary(op, col("a"), col("c")), b);
        Array right = eval(binary(op, col("a"), lit(s)), b);
        Array left = eval(binary(op, lit(s), col("c")), b);
        for (int64_t i = 0; i < n; ++i) {
          SCOPED_TRACE(t.to_string() + " " + std::string(binary_op_symbol(op)) + " row " +
                       std::to_string(i));
          ASSERT_EQ(to_bools(cols.slice(i, 1))[0],
                    model_compare(op, a.scalar_at(i), c.scalar_at(i)));
          ASSERT_EQ(to_bools(right.slice(i, 1))[0], model_compare(op, a.scalar_at(i), s));
          ASSERT_EQ(to_bools(left.slice(i, 1))[0], model_compare(op, s, c.scalar_at(i)));
        }
      }
    }
  }
}

TEST(ExprRandom, Int32ColumnComparedWithWideLiteralIsExact) {
  Random rnd(7);
  Array a = rnd.array(columnar::int32(), 200, 0.1);
  RecordBatch b = batch_of({{"a", a}});
  for (int64_t v : {int64_t{3}, int64_t{1} << 33, -(int64_t{1} << 33), int64_t{INT32_MIN}}) {
    Array out = eval(col("a") < v, b);
    for (int64_t i = 0; i < a.length(); ++i) {
      OptBool want = a.is_valid(i) ? OptBool(int64_t{a.value<int32_t>(i)} < v) : std::nullopt;
      ASSERT_EQ(to_bools(out.slice(i, 1))[0], want) << "row " << i << " literal " << v;
    }
  }
}

template <typename T>
std::optional<T> model_arith(BinaryOp op, T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    // Written independently of the kernels: wrap via unsigned, division by zero is null.
    switch (op) {
      case BinaryOp::kAdd:
        return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
      case BinaryOp::kSub:
        return static_cast<T>(static_cast<U>(a) - static_cast<U>(b));
      case BinaryOp::kMul:
        return static_cast<T>(static_cast<uint64_t>(static_cast<U>(a)) *
                              static_cast<uint64_t>(static_cast<U>(b)));
      case BinaryOp::kDiv:
        if (b == 0) return std::nullopt;
        if constexpr (std::is_signed_v<T>) {
          if (a == std::numeric_limits<T>::min() && b == -1) return a;
        }
        return static_cast<T>(a / b);
      case BinaryOp::kMod:
        if (b == 0) return std::nullopt;
        if constexpr (std::is_signed_v<T>) {
          if (b == -1) return T{0};
        }
        return static_cast<T>(a % b);
      default:
        break;
    }
  } else {
    switch (op) {
      case BinaryOp::kAdd:
        return a + b;
      case BinaryOp::kSub:
        return a - b;
      case BinaryOp::kMul:
        return a * b;
      case BinaryOp::kDiv:
        return a / b;
      default:
        break;
    }
  }
  ADD_FAILURE();
  return std::nullopt;
}

template <typename T>
void check_arithmetic(DataType t, Random& rnd) {
  std::vector<BinaryOp> ops = {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul, BinaryOp::kDiv};
  if (std::is_integral_v<T>) ops.push_back(BinaryOp::kMod);
  for (int round = 0; round < 8; ++round) {
    const int64_t n = rnd.uniform(0, 300);
    const double density = rnd.real() * 0.5;
    Array a = rnd.array(t, n, density);
    Array c = rnd.array(t, n, density);
    Scalar s = rnd.real() < 0.1 ? Scalar::null(t) : rnd.value(t);
    RecordBatch b = batch_of({{"a", a}, {"c", c}});
    for (BinaryOp op : ops) {
      Array cols = eval(binary(op, col("a"), col("c")), b);
      Array right = eval(binary(op, col("a"), lit(s)), b);
      Array left = eval(binary(op, lit(s), col("c")), b);
      auto expect_row = [&](const Array& out, int64_t i, const Scalar& x, const Scalar& y) {
        std::optional<T> want;
        if (x.is_valid && y.is_valid) {
          want = model_arith<T>(
              op,
              static_cast<T>(
                  std::get<std::conditional_t<std::is_same_v<T, int32_t>, int64_t, T>>(x.value)),
              static_cast<T>(
                  std::get<std::conditional_t<std::is_same_v<T, int32_t>, int64_t, T>>(y.value)));
        }
        ASSERT_EQ(out.is_valid(i), want.has_value())
            << t.to_string() << " " << binary_op_symbol(op) << " row " << i;
        if (want) {
          if constexpr (std::is_floating_point_v<T>) {
            if (std::isnan(*want)) {
              ASSERT_TRUE(std::isnan(out.value<T>(i)));
              return;
            }
          }
          ASSERT_EQ(out.value<T>(i), *want)
              << t.to_string() << " " << binary_op_symbol(op) << " row " << i << ": "
              << x.to_string() << ", " << y.to_string();
        }
      };
      for (int64_t i = 0; i < n; ++i) {
        expect_row(cols, i, a.scalar_at(i), c.scalar_at(i));
        expect_row(right, i, a.scalar_at(i), s);
        expect_row(left, i, s, c.scalar_at(i));
      }
    }
  }
}

TEST(ExprRandom, ArithmeticMatchesRowModelForEveryNumericType) {
  Random rnd(1234);
  check_arithmetic<int32_t>(columnar::int32(), rnd);
  check_arithmetic<int64_t>(columnar::int64(), rnd);
  check_arithmetic<uint64_t>(columnar::uint64(), rnd);
  check_arithmetic<double>(columnar::float64(), rnd);
}

OptBool model_and(OptBool a, OptBool b) {
  if (a == false || b == false) return false;
  if (!a || !b) return std::nullopt;
  return true;
}
OptBool model_or(OptBool a, OptBool b) {
  if (a == true || b == true) return true;
  if (!a || !b) return std::nullopt;
  return false;
}

TEST(ExprRandom, KleeneLogicMatchesRowModel) {
  Random rnd(99);
  for (int round = 0; round < 20; ++round) {
    const int64_t n = rnd.uniform(0, 400);
    const double density = rnd.real() * 0.6;
    Array p = rnd.array(columnar::boolean(), n, density);
    Array q = rnd.array(columnar::boolean(), n, density);
    RecordBatch b = batch_of({{"p", p}, {"q", q}});
    auto pv = to_bools(p);
    auto qv = to_bools(q);
    auto and_out = to_bools(eval(col("p") && col("q"), b));
    auto or_out = to_bools(eval(col("p") || col("q"), b));
    auto not_out = to_bools(eval(!col("p"), b));
    auto nested = to_bools(eval(!(col("p") && !col("q")) || col("p"), b));
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(and_out[i], model_and(pv[i], qv[i])) << "row " << i;
      ASSERT_EQ(or_out[i], model_or(pv[i], qv[i])) << "row " << i;
      ASSERT_EQ(not_out[i], pv[i] ? OptBool(!*pv[i]) : std::nullopt) << "row " << i;
      OptBool inner = model_and(pv[i], qv[i] ? OptBool(!*qv[i]) : std::nullopt);
      ASSERT_EQ(nested[i], model_or(inner ? OptBool(!*inner) : std::nullopt, pv[i])) << "row " << i;
    }
  }
}

TEST(ExprRandom, StringPredicatesMatchRowModel) {
  Random rnd(5);
  for (DataType t : {columnar::utf8(), columnar::binary()}) {
    for (int round = 0; round < 10; ++round) {
      const int64_t n = rnd.uniform(0, 300);
      Array a = rnd.array(t, n, rnd.real() * 0.5);
      std::string pat = rnd.value(t).as_string() + (round % 3 == 0 ? rnd.value(t).as_string() : "");
      RecordBatch b = batch_of({{"a", a}});
      auto sw = to_bools(eval(starts_with(col("a"), pat), b));
      auto ct = to_bools(eval(contains(col("a"), pat), b));
      auto eq = to_bools(eval(str_equals(col("a"), pat), b));
      for (int64_t i = 0; i < n; ++i) {
        if (a.is_null(i)) {
          ASSERT_FALSE(sw[i] || ct[i] || eq[i]);
          continue;
        }
        std::string v(a.string_view(i));
        ASSERT_EQ(sw[i], OptBool(v.rfind(pat, 0) == 0)) << v << " / " << pat;
        ASSERT_EQ(ct[i], OptBool(v.find(pat) != std::string::npos)) << v << " / " << pat;
        ASSERT_EQ(eq[i], OptBool(v == pat)) << v << " / " << pat;
      }
    }
  }
}

TEST(ExprRandom, IfElseIsNullAndCastMatchRowModel) {
  Random rnd(77);
  for (const DataType& t : kAllTypes) {
    for (int round = 0; round < 4; ++round) {
      const int64_t n = rnd.uniform(0, 300);
      const double density = rnd.real() * 0.5;
      Array cond = rnd.array(columnar::boolean(), n, density);
      Array x = rnd.array(t, n, density);
      Array y = rnd.array(t, n, density);
      RecordBatch b = batch_of({{"c", cond}, {"x", x}, {"y", y}});
      Array sel = eval(if_else(col("c"), col("x"), col("y")), b);
      // A literal branch is broadcast to the batch length.
      Scalar s = rnd.real() < 0.2 ? Scalar::null(t) : rnd.value(t);
      Array sel_lit = eval(if_else(col("c"), lit(s), col("y")), b);
      Array nul = eval(is_null(col("x")), b);
      Array val = eval(is_valid(col("x")), b);
      for (int64_t i = 0; i < n; ++i) {
        Scalar want = cond.is_null(i)      ? Scalar::null(t)
                      : cond.bool_value(i) ? x.scalar_at(i)
                                           : y.scalar_at(i);
        ASSERT_EQ(sel.scalar_at(i), want) << t.to_string() << " row " << i;
        Scalar want_lit = cond.is_null(i)      ? Scalar::null(t)
                          : cond.bool_value(i) ? s
                                               : y.scalar_at(i);
        ASSERT_EQ(sel_lit.scalar_at(i), want_lit) << t.to_string() << " row " << i;
        ASSERT_EQ(nul.bool_value(i), x.is_null(i));
        ASSERT_EQ(val.bool_value(i), x.is_valid(i));
      }
      EXPECT_EQ(nul.null_count(), 0);
      if (t.id() == TypeId::kInt32) {
        Array wide = eval(cast(col("x"), columnar::int64()), b);
        Array dbl = eval(cast(col("x"), columnar::float64()), b);
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(wide.is_valid(i), x.is_valid(i));
          if (x.is_valid(i)) {
            ASSERT_EQ(wide.value<int64_t>(i), x.value<int32_t>(i));
            ASSERT_EQ(dbl.value<double>(i), static_cast<double>(x.value<int32_t>(i)));
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace sabot::compute
